"""A receive register row as the supervisor reads it (pure): the urgency and secrecy marks once."""
from __future__ import annotations

from mailbot.documents import printable
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


def test_page_breaks_carried_on_as_the_register_grows_are_the_ones_counted_from_scratch(tmp_path):
    """A cycle that only adds rows reads only their heights (register_pages in the state); the
    breaks it gets are the ones all the rows give, and a change to an old row counts again."""
    from datetime import datetime, timezone

    from mailbot.documents import printable
    from mailbot.registers import receive
    from mailbot.store import State

    from .printcheck import fill_cases

    state = State(tmp_path / "state.sqlite3")
    now = datetime(2026, 12, 4, 3, tzinfo=timezone.utc)
    try:
        def from_scratch() -> list[int]:
            heights = [float(receive._HEIGHT.match(h).group(1)) for h in state.register_row_heads(2569)]
            return printable.page_starts(heights, receive.COLUMNS, printable.header_height(receive.COLUMNS))

        fill_cases(state, 120)
        receive.write_registers(state, tmp_path, "เทศบาลตำบลบ้านตัวอย่าง", now)
        assert receive.page_starts_of(state, 2569, set()) == from_scratch() and from_scratch()
        read: list[int] = []
        heads = state.register_row_heads

        def counting(year_be, after=0):  # type: ignore[no-untyped-def]
            rows = heads(year_be, after)
            read.append(len(rows))
            return rows

        state.register_row_heads = counting  # type: ignore[method-assign]
        for more in (7, 30, 1):
            with state.tx():
                for i in range(more):
                    top = state.register_case_top(2569)
                    state.new_case(2569, message_row=10_000 + top, received_at="2026-12-04T03:00:00+00:00",
                                   sender_name="ผู้ยื่น", sender_addr=f"n{top}@example.com", reply_to="",
                                   subject="ขออนุญาตก่อสร้างอาคาร " * (1 + i % 4), service_code="BLD",
                                   service_name="ขออนุญาตก่อสร้าง", status="received", action="", remark="",
                                   message_id=f"<n{top}@x>", attachments=0, archive="", sha256=f"{top:064x}",
                                   reply_status="")
            read.clear()
            receive.write_registers(state, tmp_path, "เทศบาลตำบลบ้านตัวอย่าง", now)
            assert read == [more]                       # only the new rows' heights were read
            state.register_row_heads = heads  # type: ignore[method-assign]
            assert receive.page_starts_of(state, 2569, set()) == from_scratch()
            state.register_row_heads = counting  # type: ignore[method-assign]
        state.register_row_heads = heads  # type: ignore[method-assign]
        # an old row changed: counted again from the first row
        assert receive.page_starts_of(state, 2569, {3}) == from_scratch()
    finally:
        state.close()


def test_a_cell_that_fits_whole_is_one_line_as_wrapping_it_says():
    """cell_lines skips the word segmenter for a text that fits its cell whole: for every text
    and width it answers what wrapping the text gives (fits or not, with dates, addresses,
    numbers with their labels, runs of spaces, tabs and zero-width marks), and a text that
    does not fit is still wrapped."""
    import random

    rng = random.Random(23)
    parts = ["ขออนุญาตก่อสร้างอาคาร", "บ้านเลขที่ 12/3", "นายสมชาย  ใจดี", "<somchai.jaidee@example.co.th>",
             "27 พฤศจิกายน 2569", "เวลา 09:30 น.", "ที่ มท 0808.2/ว 123", "ร้องเรียน\tไฟฟ้า", "ซอย\u200b5",
             "(ด่วนที่สุด)", "Request for a building permit", "ๆ", "0812345678", "ภาษีที่ดินและสิ่งปลูกสร้าง"]
    texts = [" ".join(rng.choice(parts) for _ in range(rng.randint(1, 6))) for _ in range(400)]
    fitted = 0
    for text in texts:
        for width in (8, 14, 24, 40, 70):
            expected = len(printable.wrap(text, printable._cell_px(width), printable._text_px))
            assert printable.cell_lines(text, width) == expected, (text, width)
            fitted += expected == 1
    assert 200 < fitted < 1800          # both sides are tried: texts that fit, texts that wrap
