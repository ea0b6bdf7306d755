"""Intake benchmark against a real Dovecot on loopback: a script that prints figures.

    python -m pip install -e ".[bench]"      # getmail6
    python bench/run.py [--n N] [--rows 10000 100000]

Seeds N realistic messages (Thai subjects; UTF-8, windows-874 and TIS-620; 20% with an
attachment of 100 KB - 2 MB) into Dovecot, then measures on the same server:
  (a) raw fetch, the limit: imapclient UID FETCH BODY.PEEK[] of all N in batches of 100;
      also with imaplib's protocol trace off, as mailbot runs it (c/a_trace_off);
  (b) getmail6, a peer: the same N into a Maildir;
  (c) mailbot: `mailbot poll` end to end, replies to a local aiosmtpd sink.
Each is a separate process, with compiled bytecode as an installed program has it (compiled
once first: this sandbox sets PYTHONDONTWRITEBYTECODE); wall time, msgs/s and that process's peak RSS are printed, then
the register scaling (per-message register cost with 10k and 100k existing rows) and the peak
RSS of `mailbot poll` on one message with a 25 MB attachment. Needs Debian's dovecot-imapd.

``--repeat R`` measures (a), (a0), (b) and (c) R times in turn, on the same messages put back in
the INBOX (each poll in a new workspace), and prints every round's ratios and their medians. On a
shared or virtual machine one run's (a) can vary by half from one minute to the next, and a
ratio is only as steady as its denominator; the medians of ratios measured side by side are what
this benchmark reports when R > 1.
The last line reads: RESULT c/a=<x.xx> c/a_trace_off=<x.xx> c/b=<x.xx> register=<x.xx> rss_mb=<n>
(with R > 1, the ratios are the medians over the rounds; ``rounds=R`` is added)
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USER, PASSWORD, AGENCY = "saraban@example.go.th", "bench-pass", "saraban@example.go.th"
SUBJECTS = ["ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i}", "ร้องเรียนไฟฟ้าสาธารณะดับ ซอย {i}", "ภาษีที่ดินและสิ่งปลูกสร้าง แปลง {i}",
            "ขอทำบัตรประชาชนใหม่ {i}", "สอบถามเรื่องทั่วไป {i}", "เบี้ยยังชีพผู้สูงอายุ {i}"]


# ---------------------------------------------------------------------------- seeding

def message(i: int, rng: random.Random) -> bytes:
    subject = SUBJECTS[i % len(SUBJECTS)].format(i=i)
    body = f"เรียน เจ้าหน้าที่\n\n{subject} รายละเอียดตามเอกสารแนบ\n\nขอบคุณครับ\nผู้ยื่น {i}\n"
    kind = i % 3
    if kind == 1 and rng.random() >= 0.2:   # Thai Outlook: windows-874, quoted-printable
        import quopri

        return (f"From: p{i}@example.com\r\nTo: {AGENCY}\r\nSubject: =?windows-874?B?"
                f"{base64.b64encode(subject.encode('cp874')).decode()}?=\r\nDate: {format_datetime(datetime.now(timezone.utc))}\r\n"
                f"Message-ID: <bench{i}@example.com>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=windows-874\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                ).encode() + quopri.encodestring(body.encode("cp874").replace(b"\n", b"\r\n"))
    msg = EmailMessage()
    msg["From"] = f"ผู้ยื่น {i} <p{i}@example.com>"
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(body, charset="tis-620" if kind == 2 else "utf-8")
    if rng.random() < 0.2:
        size = rng.randint(100_000, 2_000_000)
        msg.add_attachment(rng.randbytes(size), maintype="application", subtype="pdf", filename=f"เอกสาร {i}.pdf")
    return bytes(msg).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def seed(port: int, n: int, seed_value: int = 7) -> int:
    from imapclient import IMAPClient

    rng = random.Random(seed_value)
    total = 0
    with IMAPClient("127.0.0.1", port=port, ssl=False) as c:
        c.login(USER, PASSWORD)
        for i in range(n):
            raw = message(i, rng)
            total += len(raw)
            c.append("INBOX", raw)
    return total


# ---------------------------------------------------------------------------- phases (child processes)

def phase_raw(port: int, quiet: bool = False) -> dict:
    from imapclient import IMAPClient

    t = time.perf_counter()
    n = 0
    with IMAPClient("127.0.0.1", port=port, ssl=False) as c:
        if quiet:       # as mailbot runs it: imaplib's protocol trace off (mail.mailbox.quiet_imaplib)
            c._imap.debug = 0
        c.login(USER, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        uids = c.search()
        for i in range(0, len(uids), 100):
            n += len(c.fetch(uids[i:i + 100], ["BODY.PEEK[]"]))
    return {"n": n, "wall": time.perf_counter() - t}


def installed_env() -> dict:
    """The environment of an installed program: Python may keep compiled bytecode (``pip
    install`` and the Windows installer ship it). A sandbox that sets PYTHONDONTWRITEBYTECODE
    would have every child compile mailbot and its libraries from source on each start (about
    0.3 s of every `mailbot poll` here), which no office pays."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_bytecode() -> None:
    """Byte-compile mailbot and the installed libraries once, as installing them does."""
    import site

    folders = [str(ROOT / "mailbot"), *site.getsitepackages()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *folders], env=installed_env(),
                   capture_output=True)


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run a command; its wall time and peak RSS (this wrapper has no other children)."""
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, env={**installed_env(), **(env or {})})
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall": wall, "rss_mb": rss_kb / 1024, "stdout": r.stdout}


def measured(kind: str, *extra: str) -> dict:
    """Run one phase in a fresh wrapper process so RUSAGE_CHILDREN sees only that phase."""
    out = subprocess.run([sys.executable, __file__, "--phase", kind, *extra], capture_output=True, text=True,
                         env=installed_env())
    if out.returncode != 0:
        raise SystemExit(out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def phase_wrapper(kind: str, rest: list[str]) -> None:
    if kind in ("raw", "raw-quiet"):
        res = run_child([sys.executable, __file__, "--phase", kind + "-inner", *rest])
        inner = json.loads(res["stdout"].strip().splitlines()[-1])
        print(json.dumps({"wall": inner["wall"], "rss_mb": res["rss_mb"], "n": inner["n"]}))
    elif kind in ("raw-inner", "raw-quiet-inner"):
        print(json.dumps(phase_raw(int(rest[0]), quiet=kind == "raw-quiet-inner")))
    elif kind == "getmail":
        port, folder = int(rest[0]), Path(rest[1])
        maildir = folder / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        as_user = ""
        if os.geteuid() == 0:   # getmail refuses to deliver as root: deliver as "nobody"
            import pwd

            nobody = pwd.getpwnam("nobody")
            for p in [folder, *folder.parents]:
                if p == Path("/"):
                    break
                p.chmod(p.stat().st_mode | 0o011)      # traversable
            for p in [maildir, *maildir.rglob("*")]:
                os.chown(p, nobody.pw_uid, nobody.pw_gid)
            as_user = "user = nobody\n"
        rc = folder / "getmailrc"
        rc.write_text(f"""[retriever]
type = SimpleIMAPRetriever
server = 127.0.0.1
port = {port}
username = {USER}
password = {PASSWORD}
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{as_user}
[options]
read_all = true
delete = false
verbose = 0
message_log_syslog = false
""", encoding="utf-8")
        getmail = Path(sys.executable).with_name("getmail")
        res = run_child([str(getmail), "--getmaildir", str(folder), "--rcfile", str(rc)])
        n = len(list((maildir / "new").iterdir())) + len(list((maildir / "cur").iterdir()))
        print(json.dumps({"wall": res["wall"], "rss_mb": res["rss_mb"], "n": n}))
    elif kind == "mailbot":
        cfg = rest[0]
        profile = ["-m", "cProfile", "-o", rest[1]] if len(rest) > 1 else []
        res = run_child([sys.executable, *profile, "-m", "mailbot", "--config", cfg, "poll"])
        print(json.dumps({"wall": res["wall"], "rss_mb": res["rss_mb"]}))


# ---------------------------------------------------------------------------- register scaling

def register_cost(rows: int, new: int = 50) -> float:
    """Seconds per message for registering `new` cases and rewriting the register, with `rows` existing."""
    from mailbot.registers.receive import write_registers
    from mailbot.store import State, iso

    folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-reg-"))
    st = State(folder / "state.sqlite3")
    now = datetime.now(timezone.utc)

    def add(count: int, start: int) -> None:
        with st.tx():
            for i in range(start, start + count):
                st.new_case(2569, message_row=i, received_at=iso(now), sender_name="สมชาย ใจดี",
                            sender_addr=f"p{i}@example.com", reply_to=f"p{i}@example.com",
                            subject=f"ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i}", service_code="BLD",
                            service_name="ขออนุญาตก่อสร้าง", status="received", action="รับเรื่อง", remark="",
                            message_id=f"<{i}@example.com>", attachments=1, archive="archive/x.eml", sha256="0" * 64)

    add(rows, 0)
    write_registers(st, folder / "registers", "เทศบาล", datetime.now(timezone.utc))       # the existing register
    t = time.perf_counter()
    add(new, rows)
    write_registers(st, folder / "registers", "เทศบาล", datetime.now(timezone.utc))       # one cycle's worth of new cases
    return (time.perf_counter() - t) / new


# ---------------------------------------------------------------------------- main

def workspace(folder: Path, imap_port: int, smtp_port: int) -> Path:
    import yaml

    from mailbot.demo import make_workspace

    cfg = make_workspace(folder, imap_port, smtp_port, PASSWORD)
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["imap"]["username"] = USER
    data["limits"] = {"replies_per_sender_per_day": 1000, "replies_per_hour": 1_000_000, "max_message_mb": 60}
    data["imap"]["batch_size"] = 100
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rules = yaml.safe_load((folder / "rules.yaml").read_text(encoding="utf-8"))
    for s in rules["services"]:
        s["forward_to"] = []
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return cfg


def put_back(port: int, count: int) -> None:
    """Every message the poll moved, back in the INBOX, and the copies of its replies gone from
    the Sent folder (else the next round would read them as new mail)."""
    from imapclient import IMAPClient
    from imapclient.imapclient import SENT

    with IMAPClient("127.0.0.1", port=port, ssl=False) as c:
        c.login(USER, PASSWORD)
        sent = c.find_special_folder(SENT)
        for folder in [name for flags, _, name in c.list_folders() if name != "INBOX" and b"\\Noselect" not in flags]:
            c.select_folder(folder)
            uids = c.search("ALL")
            if uids and folder == sent:
                c.delete_messages(uids)
                c.expunge()
            elif uids:
                c.move(uids, "INBOX")
        c.select_folder("INBOX", readonly=True)
        assert len(c.search("ALL")) == count, "the INBOX does not hold the seeded messages again"


LABELS = (("a", "raw fetch (limit)"), ("a0", "raw fetch, trace off"), ("b", "getmail6 -> Maildir"),
          ("c", "mailbot poll"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rows", type=int, nargs=2, default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=1, help="rounds of (a), (a0), (b), (c); the ratios' medians are reported")
    ap.add_argument("--phase", default=None)
    ap.add_argument("--profile", default=None, help="also poll under cProfile and keep its figures in this file")
    ap.add_argument("rest", nargs="*")
    args = ap.parse_args()
    if args.phase:
        phase_wrapper(args.phase, args.rest)
        return

    from imapclient import IMAPClient

    from mailbot.mail.servers import SmtpServer
    from tests.dovecot import Dovecot, available

    if not available():
        raise SystemExit("Dovecot is needed: apt-get install dovecot-imapd")
    base = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    rounds: list[dict[str, dict]] = []
    t = time.perf_counter()
    compile_bytecode()
    print(f"bytecode compiled, as an installed program has it, in {time.perf_counter() - t:.1f} s")
    with Dovecot(base / "dovecot", USER, PASSWORD) as dc, SmtpServer(USER, PASSWORD) as smtp:
        t = time.perf_counter()
        size = seed(dc.port, args.n)
        print(f"seeded N={args.n} messages, {size / 1e6:.1f} MB, in {time.perf_counter() - t:.1f} s")
        for r in range(max(1, args.repeat)):
            if r:
                put_back(dc.port, args.n)
            results: dict[str, dict] = {}
            results["a"] = measured("raw", str(dc.port))
            results["a0"] = measured("raw-quiet", str(dc.port))
            results["b"] = measured("getmail", str(dc.port), str(base / f"getmail{r}"))
            cfg = workspace(base / f"office{r}", dc.port, smtp.port)
            sent = len(smtp.messages)
            results["c"] = measured("mailbot", str(cfg))
            results["c"]["replies"] = len(smtp.messages) - sent
            assert results["c"]["replies"] > 0, "the poll sent no reply"
            if rounds and results["c"]["replies"] != rounds[0]["c"]["replies"]:   # not the same work: not comparable
                raise SystemExit(f"round {r + 1} sent {results['c']['replies']} replies, round 1 "
                                 f"{rounds[0]['c']['replies']}")
            rounds.append(results)
            if args.repeat > 1:
                walls = "  ".join(f"({k}) {results[k]['wall']:.2f} s" for k, _ in LABELS)
                print(f"round {r + 1}: {walls}  c/a={results['c']['wall'] / results['a']['wall']:.2f}"
                      f"  c/a_trace_off={results['c']['wall'] / results['a0']['wall']:.2f}"
                      f"  c/b={results['c']['wall'] / results['b']['wall']:.2f}  replies={results['c']['replies']}",
                      flush=True)
        if args.profile:      # the same poll again, under cProfile, on the same messages put back
            put_back(dc.port, args.n)
            cfg = workspace(base / "office-profiled", dc.port, smtp.port)
            profiled = measured("mailbot", str(cfg), args.profile)
            print(f"(c) under cProfile: wall={profiled['wall']:.2f} s; the profile is in {args.profile}")
        for key, label in LABELS:
            walls = [res[key]["wall"] for res in rounds]
            wall = statistics.median(walls)
            rss = max(res[key]["rss_mb"] for res in rounds)
            spread = f"  (min {min(walls):.2f}, max {max(walls):.2f})" if len(walls) > 1 else ""
            print(f"({key}) {label:<22} wall={wall:.2f} s  msgs/s={args.n / wall:.1f}  peak_rss={rss:.0f} MB{spread}")
        print(f"replies delivered to the sink: {rounds[0]['c']['replies']} per poll"
              + (f", {len(smtp.messages)} in {len(rounds)} rounds" if len(rounds) > 1 else ""))

    small, large = args.rows
    cost_small, cost_large = register_cost(small), register_cost(large)
    print(f"register: {cost_small * 1000:.1f} ms/msg at {small} rows, {cost_large * 1000:.1f} ms/msg at {large} rows")

    # memory: one message with a 25 MB attachment
    with Dovecot(base / "dovecot2", USER, PASSWORD) as dc, SmtpServer(USER, PASSWORD) as smtp:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "big@example.com", AGENCY, "ขออนุญาตก่อสร้าง แนบแบบแปลน"
        msg.set_content("แบบแปลนตามแนบ")
        msg.add_attachment(random.Random(1).randbytes(25 * 1024 * 1024), maintype="application", subtype="pdf",
                           filename="แบบแปลน.pdf")
        with IMAPClient("127.0.0.1", port=dc.port, ssl=False) as c:
            c.login(USER, PASSWORD)
            c.append("INBOX", bytes(msg))
        cfg = workspace(base / "office-big", dc.port, smtp.port)
        big = measured("mailbot", str(cfg))
        print(f"25 MB attachment: mailbot poll peak_rss={big['rss_mb']:.0f} MB wall={big['wall']:.2f} s")

    def ratio(top: str, bottom: str) -> float:
        """One round's ratio, or the median of the rounds' (each measured side by side)."""
        return statistics.median(res[top]["wall"] / res[bottom]["wall"] for res in rounds)

    ca, cb, ca0 = ratio("c", "a"), ratio("c", "b"), ratio("c", "a0")
    if len(rounds) > 1:
        print("medians over the rounds: " + "  ".join(f"{name}={ratio('c', k):.2f}" for name, k in
                                                      (("c/a", "a"), ("c/a_trace_off", "a0"), ("c/b", "b"))))
    tail = f" rounds={len(rounds)}" if len(rounds) > 1 else ""
    print(f"RESULT c/a={ca:.2f} c/a_trace_off={ca0:.2f} c/b={cb:.2f} register={cost_large / cost_small:.2f} "
          f"rss_mb={big['rss_mb']:.0f}{tail}")


if __name__ == "__main__":
    main()
