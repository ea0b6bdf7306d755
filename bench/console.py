"""Console page times with 100,000 cases and several officers at once (issue 23: p95 ≤ 200 ms).

Builds a workspace from the starter files, fills its state database directly with SQL — 100,000
cases over two Buddhist-Era years with Thai names, subjects and services, one ledger row each,
a few case events and replies, some open, unclassified, flagged, awaiting documents — then
serves the console's own Flask app on a threaded loopback server (an ``Office`` opened per
request, the session read from the database, templates rendered, headers set) and times, from
1 and then ``--clients`` browsers at once (each with its own cookie), the pages an officer
opens most:

  today     the work queue and the day's summary
  filter    the case list, one status and one service
  search    the case list, a name searched anywhere (the trigram index; ``--no-index``: LIKE)
  receipt   the case list, one receipt number
  case      one case page (its message read from the archive)

    python bench/console.py [--cases 100000] [--runs 15] [--clients 5] [--no-index]

Prints p50, p95 and the slowest of each; the last line is
``RESULT clients=N today_p50=<ms> today_p95=<ms> … worst_p95=<ms>`` (for N clients at once).
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailbot.app import Office  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from mailbot.console.web import create_app  # noqa: E402
from mailbot.starter import init  # noqa: E402
from mailbot.thai import be_year, to_bangkok  # noqa: E402

FIRST = ["สมชาย", "สมหญิง", "มาลี", "ประยุทธ์", "วิชัย", "นิดา", "สุนทร", "กนกพร", "ธนากร", "ปราณี", "อำนาจ", "วรรณา",
         "สุรชัย", "จันทร์เพ็ญ", "บุญมี", "ศิริพร", "ชัยวัฒน์", "อรุณี", "พิมพ์ใจ", "เกียรติศักดิ์"]
LAST = ["ใจดี", "ศรีสุข", "มั่นคง", "ทองดี", "รักไทย", "แก้วมณี", "บุญเรือง", "สายทอง", "พงษ์พานิช", "วงศ์ใหญ่",
        "ชัยชนะ", "สุขสวัสดิ์", "อินทร์แก้ว", "เพชรรัตน์", "กาญจนา"]
SUBJECTS = {
    "BLD": ["ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {n}", "ขอต่อเติมบ้าน หมู่ {m}", "ขออนุญาตรื้อถอนอาคาร เลขที่ {n}"],
    "TAX": ["สอบถามภาษีที่ดินและสิ่งปลูกสร้าง โฉนด {n}", "ยื่นแบบภาษีป้าย ร้าน{f}"],
    "CMP": ["ร้องเรียนเสียงดังจากโรงงาน ซอย {m}", "ร้องเรียนน้ำเสีย หมู่ {m}", "ร้องทุกข์ ถนนชำรุด ซอย {m}"],
    "WEL": ["ขอรับเบี้ยยังชีพผู้สูงอายุ", "ลงทะเบียนเบี้ยความพิการ"],
    "BIZ": ["ขอต่อใบอนุญาตประกอบกิจการ ร้าน{f}", "ขออนุญาตจำหน่ายอาหาร ตลาดนัด"],
    "INF": ["ขอข้อมูลข่าวสาร สัญญาจ้างปี {y}", "ขอคัดสำเนาเอกสาร โครงการ {n}"],
    "PUB": ["แจ้งซ่อมไฟฟ้าสาธารณะ ซอย {m}", "แจ้งเก็บขยะ หมู่ {m}", "ประปาหมู่บ้านไม่ไหล หมู่ {m}"],
    None: ["สอบถามการรับสมัครพนักงานจ้าง", "ขอความอนุเคราะห์ใช้สถานที่", "เรื่องทั่วไป {n}"],
}
DAYS = {"BLD": 45, "TAX": 15, "CMP": 15, "WEL": 30, "BIZ": 30, "INF": 15, "PUB": 7}
NAMES = {"BLD": "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร", "TAX": "ภาษีที่ดินและสิ่งปลูกสร้าง และภาษีป้าย",
         "CMP": "เรื่องร้องเรียน ร้องทุกข์", "WEL": "เบี้ยยังชีพผู้สูงอายุ ผู้พิการ และผู้ป่วยเอดส์",
         "BIZ": "ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร", "INF": "ขอข้อมูลข่าวสารของราชการ",
         "PUB": "แจ้งซ่อมไฟฟ้าสาธารณะ ถนน ประปาหมู่บ้าน และเก็บขยะ"}


def fill(office: Office, n: int, now: datetime, rng: random.Random) -> str:
    """n cases straight into the database; returns a receipt whose case page is timed."""
    db = office.state.db
    codes = list(NAMES) + [None]
    weights = [18, 12, 15, 10, 8, 7, 20, 10]
    start = now - timedelta(days=730)
    cases, messages, events, outbox = [], [], [], []
    seqs: dict[int, int] = {}
    for i in range(1, n + 1):
        when = start + timedelta(seconds=int(730 * 86400 * i / n))
        year = be_year(to_bangkok(when))
        seqs[year] = seqs.get(year, 0) + 1
        code = rng.choices(codes, weights)[0]
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        addr = f"user{i}@{rng.choice(['gmail.com', 'hotmail.com', 'yahoo.co.th', 'outlook.co.th'])}"
        subject = rng.choice(SUBJECTS[code]).format(n=rng.randint(1, 999), m=rng.randint(1, 12), f=rng.choice(LAST),
                                                    y=year)
        age = (now - when).days
        if age > 60:
            status = rng.choices(["completed", "closed", "closed_incomplete", "in_progress"], [70, 20, 8, 2])[0]
        else:
            status = rng.choice(["received", "in_progress", "awaiting_documents", "completed"])
        if code is None and status not in ("closed", "closed_incomplete"):
            status = "review" if age < 30 else "closed"
        verdict = "unsure" if (code == "BLD" and rng.random() < 0.2) else "complete"
        held = "dmarc=fail" if rng.random() < 0.001 else None
        remark = f"ระงับการตอบกลับอัตโนมัติ รอเจ้าหน้าที่ตรวจสอบ (flagged: {held})" if held else ""
        iso = when.isoformat(timespec="seconds")
        cases.append((i, f"{seqs[year]}/{year}", year, seqs[year], i, iso, name, addr, addr, subject, code,
                      NAMES.get(code or ""), status, "รับเรื่อง", remark, f"<m{i}@example.com>",
                      json.dumps({"verdict": verdict, "items": []}, ensure_ascii=False), "ส่งแล้ว", held,
                      "ด่วนที่สุด" if rng.random() < 0.01 else None,
                      # working days, roughly: the service's days x 7/5 calendar days
                      (to_bangkok(when).date() + timedelta(days=DAYS[code] * 7 // 5)).isoformat() if code else None))
        messages.append((i, "saraban@example.go.th@imap", "INBOX", 1, i, f"<m{i}@example.com>", f"h{i}", f"s{i}",
                         f"archive/{year}/01/s{i}.eml", 4000, iso, addr, subject, "registered", i, iso))
        events.append((i, iso, "officer:in_progress", f"อยู่ระหว่างดำเนินการ ({name})", "เจ้าหน้าที่"))
        outbox.append((f"<r{i}@example.go.th>", "receipt", i, i, addr, subject, b"x", "sent", iso, iso))
    db.execute("BEGIN")
    db.executemany("INSERT INTO cases (id, receipt, year_be, seq, message_row, received_at, sender_name, sender_addr, "
                   "reply_to, subject, service_code, service_name, status, action, remark, message_id, checklist, "
                   "reply_status, held, urgency, due_date) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cases)
    db.execute("UPDATE cases SET urgency_rank=3 WHERE urgency IS NOT NULL")
    db.executemany("INSERT INTO messages (id, account, folder, uidvalidity, uid, message_id, content_hash, sha256, "
                   "archive, size, received_at, sender, subject, outcome, case_id, decided_at) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", messages)
    db.executemany("INSERT INTO case_events (case_id, at, kind, note, actor) VALUES (?,?,?,?,?)", events)
    db.executemany("INSERT INTO outbox (message_id, kind, case_id, message_row, recipient, subject, raw, status, "
                   "created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?)", outbox)
    for year, top in seqs.items():
        db.execute("INSERT INTO counters (year_be, last) VALUES (?, ?)", (year, top))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    target = cases[n // 2]
    raw = (f"From: {target[6]} <{target[7]}>\r\nTo: saraban@example.go.th\r\nSubject: {target[9]}\r\n"
           f"Message-ID: {target[15]}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "เรียน เจ้าหน้าที่\r\n\r\nรายละเอียดตามเรื่อง\r\n").encode("utf-8")
    path = office.cfg.data_dir / f"archive/{target[2]}/01/s{target[0]}.eml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    db.execute("UPDATE messages SET archive=? WHERE id=?", (f"archive/{target[2]}/01/s{target[0]}.eml", target[0]))
    return target[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=15, help="requests of each page, for each client")
    p.add_argument("--clients", type=int, default=5, help="officers' browsers at once")
    p.add_argument("--no-index", action="store_true", help="drop the search index first (the search as before)")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-console-"))
    init(folder)
    cfg = load_config(folder / "mailbot.yaml")
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with Office.open(cfg) as office:
        receipt = fill(office, args.cases, now, random.Random(14))
    print(f"{args.cases:,} cases written in {time.perf_counter() - t0:.1f} s "
          f"({(cfg.data_dir / 'state.sqlite3').stat().st_size / 1e6:.0f} MB): {folder}")
    if args.no_index:          # the search as it was before the index: every case read (LIKE)
        import sqlite3

        con = sqlite3.connect(cfg.data_dir / "state.sqlite3")
        con.executescript("DROP TRIGGER cases_fts_insert; DROP TRIGGER cases_fts_delete; "
                          "DROP TRIGGER cases_fts_update; DROP TABLE cases_fts;")
        con.close()
    app = create_app(cfg)
    seq, year = receipt.split("/")
    pages = {
        "today": "/",
        "filter": "/cases?status=in_progress&service=CMP",
        "search": "/cases?q=" + quote("ศรีสุข"),
        "receipt": f"/cases?q={quote(receipt)}",
        "case": f"/cases/{year}/{seq}",
    }
    logging.getLogger("werkzeug").setLevel(logging.ERROR)           # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)     # the console's own threaded server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    host = f"127.0.0.1:{cfg.console.port}"

    def client(times: dict[str, list[float]], runs: int, seed: int) -> None:
        """One officer's browser: its own cookie (one session), the pages in a random order."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        order = [name for name in pages for _ in range(runs)]
        random.Random(seed).shuffle(order)
        for name in ["today", *order]:           # the first request makes the session (not timed)
            req = urllib.request.Request(base + pages[name], headers={"Host": host})
            t = time.perf_counter()
            with opener.open(req) as resp:
                resp.read()
                assert resp.status == 200, (name, resp.status)
            times.setdefault(name, []).append((time.perf_counter() - t) * 1000)

    results = {}
    for clients in sorted({1, args.clients}):
        per_client: list[dict[str, list[float]]] = [{} for _ in range(clients)]
        workers = [threading.Thread(target=client, args=(per_client[i], args.runs, i)) for i in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print(f"-- {clients} client(s) at once, {args.runs} requests of each page each"
              + (" (no search index)" if args.no_index else ""))
        for name in pages:
            times = sorted(t for c in per_client for t in c.get(name, [])[1 if name == "today" else 0:])
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            results[(clients, name)] = (p50, p95)
            print(f"{name:8} {urllib.parse.unquote(pages[name]):45} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   "
                  f"slowest {times[-1]:6.1f} ms   (n={len(times)})")
    server.shutdown()
    worst = max(p95 for (c, _), (_, p95) in results.items() if c == args.clients)
    print(f"RESULT clients={args.clients} " + " ".join(
        f"{name}_p50={results[(args.clients, name)][0]:.0f} {name}_p95={results[(args.clients, name)][1]:.0f}"
        for name in pages) + f" worst_p95={worst:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
