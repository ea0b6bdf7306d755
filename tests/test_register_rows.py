"""A receive register row as the supervisor reads it (pure): the urgency and secrecy marks once."""
from __future__ import annotations

from mailbot.registers.receive import case_row

BASE = {"received_at": "2026-11-27T03:00:00+00:00", "doc_date": None, "sender_name": "สมชาย ใจดี",
        "sender_addr": "somchai@example.com", "due_date": None, "seq": 7, "year_be": 2569, "action": "",
        "cancelled_at": None, "cancelled_by": None, "cancel_reason": None, "remark": "", "service_code": "INF",
        "status": "received", "message_id": "<m@x>", "attachments": 0, "archive": "", "sha256": "",
        "reply_status": "", "urgency": None, "secrecy": None}


def _subject(**fields: object) -> str:
    case = {**BASE, **fields}
    row = case_row(case, "เทศบาลตำบลบ้านตัวอย่าง")
    return str(row[5])


def test_the_urgency_is_written_once_in_the_subject_column():
    assert _subject(subject="ด่วนที่สุด สอบถามการชำระภาษี", urgency="ด่วนที่สุด") == "ด่วนที่สุด สอบถามการชำระภาษี"
    assert _subject(subject="สอบถามการชำระภาษี", urgency="ด่วนที่สุด") == "[ด่วนที่สุด] สอบถามการชำระภาษี"
    assert _subject(subject="ด่วน สอบถาม", urgency="ด่วน", secrecy="ลับ") == "[ลับ] ด่วน สอบถาม"
    assert _subject(subject="สอบถาม") == "สอบถาม"


def test_the_urgency_is_written_once_in_the_daily_log(tmp_path):
    """The daily log's เรื่อง column follows the same rule: "[ด่วนที่สุด] ด่วนที่สุด …" never."""
    from datetime import date, datetime, timezone

    from mailbot.registers import daily
    from mailbot.store import State, iso

    state = State(tmp_path / "state.sqlite3")
    at = datetime(2026, 11, 27, 3, tzinfo=timezone.utc)
    with state.tx():
        for uid, (subject, urgency) in enumerate([("ด่วนที่สุด สอบถามการชำระภาษี", "ด่วนที่สุด"),
                                                  ("สอบถามการชำระภาษี", "ด่วน")], start=1):
            row = state.db.execute(
                "INSERT INTO messages (account, folder, uidvalidity, uid, received_at, sender, subject, outcome, "
                "decided_at) VALUES ('a','INBOX',1,?,?,'s@example.com',?,'registered',?)",
                (uid, iso(at), subject, iso(at))).lastrowid
            case = state.new_case(2569, message_row=row, received_at=iso(at), subject=subject, status="received")
            state.db.execute("UPDATE cases SET urgency=? WHERE id=?", (urgency, case["id"]))
            state.db.execute("UPDATE messages SET case_id=? WHERE id=?", (case["id"], row))
    subjects = sorted(str(r[2]) for r in daily.rows_for(state, date(2026, 11, 27)))
    state.close()
    assert subjects == ["[ด่วน] สอบถามการชำระภาษี", "ด่วนที่สุด สอบถามการชำระภาษี"]
