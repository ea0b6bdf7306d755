"""Console page times with 100,000 cases (issue 14: each page under 200 ms).

Builds a workspace from the starter files, fills its state database directly with SQL — 100,000
cases over two Buddhist-Era years with Thai names, subjects and services, one ledger row each,
a few case events and replies, some open, unclassified, flagged, awaiting documents — then
times, through the console's own Flask app (an ``Office`` opened per request, templates
rendered, headers set), the pages an officer opens most:

  today     the work queue and the day's summary
  filter    the case list, one status and one service
  search    the case list, a name searched anywhere (LIKE over name, address and subject)
  receipt   the case list, one receipt number
  case      one case page (its message read from the archive)

    python bench/console.py [--cases 100000] [--runs 15]

Prints the median and the slowest of each; the last line is
``RESULT today=<ms> filter=<ms> search=<ms> receipt=<ms> case=<ms>`` (medians).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
    p.add_argument("--runs", type=int, default=15)
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
    app = create_app(cfg)
    client = app.test_client()
    seq, year = receipt.split("/")
    pages = {
        "today": "/",
        "filter": "/cases?status=in_progress&service=CMP",
        "search": "/cases?q=" + "ศรีสุข",
        "receipt": f"/cases?q={receipt}",
        "case": f"/cases/{year}/{seq}",
    }
    medians = {}
    for name, url in pages.items():
        times, first = [], 0.0
        for i in range(args.runs + 1):
            t = time.perf_counter()
            resp = client.get(url, headers={"Host": f"127.0.0.1:{cfg.console.port}"})
            elapsed = (time.perf_counter() - t) * 1000
            assert resp.status_code == 200, (url, resp.status_code, resp.get_data(as_text=True)[:500])
            if i:                      # the first request warms the caches (printed on its own)
                times.append(elapsed)
            else:
                first = elapsed
        medians[name] = statistics.median(times)
        print(f"{name:8} {url:45} median {medians[name]:6.1f} ms   slowest {max(times):6.1f} ms   "
              f"first {first:6.1f} ms   ({len(resp.get_data()):,} bytes)")
    print("RESULT " + " ".join(f"{k}={v:.0f}" for k, v in medians.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
