"""IDLE benchmark: does the service notice every arrival, and how fast is the receipt?

    python bench/idle.py [--n 100]

Runs `mailbot run`'s service (``daemon.Daemon``) with ``schedule.idle: true`` and a regular poll
interval of 10 hours (so only IDLE can bring mail in quickly) against pymap and, where Debian's
dovecot-imapd is installed, a real Dovecot. Delivers N single messages one at a time, at random
gaps of 0.05-3 s, so that some arrive while a cycle is running and its own moves are expunging
messages. For each arrival it waits for the receipt at the local aiosmtpd sink. Prints, per
server: arrivals, missed (no receipt within 60 s), the median and the 95th percentile of the
time from APPEND to receipt. The last line per server reads:
RESULT server=<name> n=<n> missed=<m> median_s=<x.xx> p95_s=<x.xx>
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.config import load_config  # noqa: E402
from mailbot.demo import make_workspace, seed  # noqa: E402
from mailbot.mail.servers import ImapServer, SmtpServer  # noqa: E402
from mailbot.ops.daemon import Daemon  # noqa: E402

USER, PASSWORD = "saraban@example.go.th", "bench-pass"


def letter(i: int) -> bytes:
    from email.message import EmailMessage
    from email.utils import make_msgid

    msg = EmailMessage()
    msg["From"] = f"p{i}@example.com"
    msg["To"] = USER
    msg["Subject"] = f"ร้องเรียนถนนชำรุด จุดที่ {i}"
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content("รายละเอียด")
    return bytes(msg)


def run(kind: str, n: int, rng: random.Random) -> tuple[int, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "dovecot":
            sys.path.insert(0, str(ROOT / "tests"))
            from dovecot import Dovecot  # type: ignore[import-not-found]

            imap_cm = Dovecot(Path(tmp) / "dovecot", USER, PASSWORD)
        else:
            imap_cm = ImapServer(USER, PASSWORD)
        with imap_cm as imap, SmtpServer(USER, PASSWORD) as smtp:
            path = make_workspace(Path(tmp) / "office", imap.port, smtp.port, PASSWORD)
            text = path.read_text(encoding="utf-8")
            path.write_text(text + "\nschedule:\n  idle: true\n  every_minutes: 600\n  after_hours_every_minutes: 600\n"
                            "  workdays: []\nlimits:\n  replies_per_sender_per_day: 100\n  replies_per_hour: 100000\n",
                            encoding="utf-8")
            cfg = load_config(path)
            daemon = Daemon(cfg, notify=lambda th, en: None)
            seen: dict[str, float] = {}          # recipient -> when the sink had its reply
            stop = threading.Event()

            def watch() -> None:
                count = 0
                while not stop.is_set():
                    messages = list(smtp.messages)
                    for m in messages[count:]:
                        seen.setdefault(m.rcpt_tos[0], time.monotonic())
                    count = len(messages)
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            daemon.start()
            try:
                time.sleep(2.0)                                     # the first cycle and the IDLE connection
                sent_at: dict[str, float] = {}
                for i in range(n):
                    address = f"p{i}@example.com"
                    sent_at[address] = time.monotonic()
                    seed(imap.port, USER, PASSWORD, [letter(i)])
                    time.sleep(rng.uniform(0.05, 3.0))
                deadline = time.monotonic() + 60
                while len(set(sent_at) - set(seen)) and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                daemon.stop()
                stop.set()
            delays = [seen[a] - t for a, t in sent_at.items() if a in seen]
            missed = len(set(sent_at) - set(seen))
            return missed, delays


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--servers", default="pymap,dovecot", help="which IMAP servers (comma-separated)")
    args = p.parse_args()
    rng = random.Random(20261128)
    import shutil

    have_dovecot = shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists()
    kinds = [k for k in args.servers.split(",") if k == "pymap" or (k == "dovecot" and have_dovecot)]
    for kind in kinds:
        started = time.monotonic()
        missed, delays = run(kind, args.n, rng)
        # from the moment the APPEND was sent until the sink had the receipt (sampled every 10 ms)
        median = statistics.median(delays) if delays else float("nan")
        p95 = sorted(delays)[int(0.95 * (len(delays) - 1))] if delays else float("nan")
        print(f"{kind}: {args.n} arrivals in {time.monotonic() - started:.0f} s, missed {missed}, "
              f"median {median:.2f} s, p95 {p95:.2f} s to the receipt")
        print(f"RESULT server={kind} n={args.n} missed={missed} median_s={median:.2f} p95_s={p95:.2f}")


if __name__ == "__main__":
    main()
