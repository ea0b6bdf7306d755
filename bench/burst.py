"""A morning's burst (issue 23): 100 requests, each with a 1–3 MB PDF, for a service that
forwards to a unit — the time until every citizen has their receipt, and the time the work lock
is held — with the receipt stamp on, and with it off (the forwards carry the original PDFs).
The goal is a ratio on/off of at most 1.3 for both: stamping never holds the batch.

pymap and aiosmtpd on loopback (mailbot/mail/servers.py); the workspace is the demo's. "off"
replaces the stamp cache's answer with "no copy" (the forward then carries the original, as it
does when stamping fails), so everything else is the same code.

    python bench/burst.py [--n 100] [--runs 1]

The last line is ``RESULT receipts_on=<s> receipts_off=<s> ratio_receipts=<x> lock_on=<s>
lock_off=<s> ratio_lock=<x> stamped=<n>``.
"""
from __future__ import annotations

import argparse
import email
import io
import logging
import random
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient  # noqa: E402

from mailbot.app import run_cycle  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from mailbot.demo import make_workspace  # noqa: E402
from mailbot.mail.servers import HOST, ImapServer, SmtpServer  # noqa: E402
from mailbot.ops import locks  # noqa: E402

AGENCY, PASSWORD = "saraban@example.go.th", "bench-pass"
UNIT = "กองช่าง <kongchang@example.go.th>"


def pdf(i: int, size: int) -> bytes:
    """A one-page application form with a scanned-looking image, about ``size`` bytes."""
    from fpdf import FPDF
    from PIL import Image

    rnd = random.Random(i)
    side = int((size / 3) ** 0.5)                  # RGB noise: about 3 bytes a pixel, incompressible
    img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=0)
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(0, 10, f"Application form No. {i}")
    doc.image(io.BytesIO(buf.getvalue()), x=20, y=40, w=170)
    return bytes(doc.output())


def request(i: int, size: int, now: datetime) -> bytes:
    m = EmailMessage()
    m["From"] = f"ผู้ยื่นคำขอ {i} <citizen{i}@example.com>"
    m["To"] = AGENCY
    m["Subject"] = f"ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i}"
    m["Date"] = format_datetime(now)
    m["Message-ID"] = make_msgid(domain="example.com")
    m.set_content("เรียน นายกเทศมนตรี\nขอยื่นคำขออนุญาตก่อสร้างอาคาร ตามเอกสารแนบ")
    m.add_attachment(pdf(i, size), maintype="application", subtype="pdf", filename=f"ข1-{i}.pdf")
    return bytes(m)


class LockClock:
    """Time spent inside WorkLock.hold, summed (every holder: the cycle, the forwards, the registers)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.original = locks.WorkLock.hold

    def install(self) -> None:
        original, me = self.original, self

        @contextmanager
        def hold(lock, *a, **kw):  # type: ignore[no-untyped-def]
            with original(lock, *a, **kw):
                t = time.perf_counter()
                try:
                    yield
                finally:
                    me.total += time.perf_counter() - t

        locks.WorkLock.hold = hold  # type: ignore[method-assign]

    def remove(self) -> None:
        locks.WorkLock.hold = self.original  # type: ignore[method-assign]


def run(n: int, stamping: bool, mails: list[bytes]) -> tuple[float, float, int]:
    from mailbot.documents import stamp

    folder = Path(tempfile.mkdtemp(prefix=f"mailbot-bench-burst-{'on' if stamping else 'off'}-"))
    with ImapServer(AGENCY, PASSWORD) as imap, SmtpServer(AGENCY, PASSWORD) as smtp:
        cfg_path = make_workspace(folder, imap.port, smtp.port, PASSWORD, since=date(2026, 1, 1))
        import yaml

        rules_path = folder / "rules.yaml"
        rules = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
        for s in rules["services"]:
            s["forward_to"] = [UNIT] if s["code"] == "BLD" else []
        rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
        cfg = load_config(cfg_path)
        with IMAPClient(HOST, port=imap.port, ssl=False) as c:
            c.login(AGENCY, PASSWORD)
            for raw in mails:
                c.append("INBOX", raw)
        original_get = stamp.StampCache.get
        if not stamping:
            stamp.StampCache.get = lambda self, data, receipt: (None, "stamping off (bench)")  # type: ignore[method-assign]
        lock = LockClock()
        lock.install()
        receipts_at: list[float] = []

        def receipts() -> int:
            return sum(1 for m in smtp.messages if m.rcpt_tos and m.rcpt_tos[0].startswith("citizen"))

        start = time.perf_counter()
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                if receipts() >= n and not receipts_at:
                    receipts_at.append(time.perf_counter() - start)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            for _ in range(20):                  # cycles until every forward is out
                run_cycle(cfg)
                forwards = sum(1 for m in smtp.messages if "kongchang@example.go.th" in m.rcpt_tos)
                if receipts() >= n and forwards >= n:
                    break
        finally:
            stop.set()
            watcher.join(1)
            lock.remove()
            stamp.StampCache.get = original_get  # type: ignore[method-assign]
        stamped = 0
        for m in smtp.messages:
            if "kongchang@example.go.th" in m.rcpt_tos:
                msg = email.message_from_bytes(m.data, policy=policy.default)
                stamped += sum(1 for p in msg.iter_attachments() if "ตรารับ" in (p.get_filename() or "")
                               or "stamped" in (p.get_filename() or ""))
        forwards = sum(1 for m in smtp.messages if "kongchang@example.go.th" in m.rcpt_tos)
        if receipts() < n or forwards < n:
            raise SystemExit(f"not every request went through: receipts {receipts()}, forwards {forwards}")
        return (receipts_at[0] if receipts_at else time.perf_counter() - start), lock.total, stamped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(7)
    now = datetime.now(timezone.utc)
    t = time.perf_counter()
    mails = [request(i, rnd.randint(1_000_000, 3_000_000), now) for i in range(1, a.n + 1)]
    print(f"{a.n} requests, {sum(map(len, mails)) / 1e6:.0f} MB of mail, made in {time.perf_counter() - t:.1f} s",
          flush=True)
    logging.disable(logging.WARNING)            # "could not stamp" warnings of the off runs: expected
    run(2, True, mails[:2])                     # warm up: imports, fonts, the stamping helper's first start
    figures: dict[str, list[tuple[float, float, int]]] = {"on": [], "off": []}
    for _ in range(a.runs):
        for mode in ("off", "on"):
            r = run(a.n, mode == "on", mails)
            figures[mode].append(r)
            print(f"stamping {mode:3}: every receipt sent after {r[0]:6.1f} s; work lock held {r[1]:6.1f} s; "
                  f"stamped copies forwarded {r[2]}", flush=True)
    on = [min(x[i] for x in figures["on"]) for i in range(2)]
    off = [min(x[i] for x in figures["off"]) for i in range(2)]
    print(f"RESULT receipts_on={on[0]:.1f} receipts_off={off[0]:.1f} ratio_receipts={on[0] / off[0]:.2f} "
          f"lock_on={on[1]:.1f} lock_off={off[1]:.1f} ratio_lock={on[1] / off[1]:.2f} "
          f"stamped={figures['on'][0][2]}")


if __name__ == "__main__":
    main()
