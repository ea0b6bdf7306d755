"""Printed registers: the receive register, the daily log and the licence register, each as our
PDF and as its workbook rendered by LibreOffice headless. Every page is A4 landscape and shows
the whole header row on one line above the data; rows are never split across pages (side to
side or top to bottom); Thai text wraps between words and copies out of the PDF as written."""
from __future__ import annotations

import html
import json
import re
import subprocess
import unicodedata
import zipfile
from datetime import date, datetime, timedelta, timezone

import openpyxl
import pytest
from newmm_tokenizer.tokenizer import word_tokenize

from mailbot.documents import printable
from mailbot.registers import daily as report
from mailbot.registers import licences
from mailbot.registers import receive as register
from mailbot.store import State, iso
from mailbot.thai import BANGKOK

from .conftest import letter
from .printcheck import (
    RECEIVE_HEADERS,
    bare,
    check_pages,
    fill_cases,
    header_row_y,
    is_ci,
    landscape_a4,
    missing_tools,
    page_count,
    split_units,
    to_pdf,
    words_by_page,
)

pytestmark = pytest.mark.slow   # PDF rendering and poppler

AGENCY = "เทศบาลตำบลบ้านตัวอย่าง"
RECEIPT = re.compile(r"(\d+)/2569")
MARKER = re.compile(r"\[r(\d+)\]")
NOW = datetime(2026, 12, 1, 3, tzinfo=timezone.utc)


def need_tools() -> None:
    why = missing_tools()
    if why:
        assert not is_ci(), f"CI must install libreoffice-calc-nogui and poppler-utils: {why}"
        pytest.skip(why)


def need_poppler() -> None:
    if subprocess.run(["which", "pdftotext"], capture_output=True).returncode:
        assert not is_ci(), "CI must install poppler-utils"
        pytest.skip("poppler-utils not installed here")


# ---------------------------------------------------------------------------------- wrapping

def _width(text: str) -> float:
    return sum(0 if unicodedata.category(ch) == "Mn" else 1 for ch in text)


@pytest.mark.parametrize("width", [11, 13, 21, 34])
def test_thai_lines_break_between_words_only(width):
    text = ("ขอรับใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ (ร้านอาหารและจำหน่ายเครื่องดื่ม) "
            "ครั้งที่ 12 เดินทางไปมาๆ ส่งต่อกองช่าง 27 พ.ย. 2569")
    lines = printable.wrap(text, width, _width)
    assert len(lines) > 1
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")       # nothing lost, nothing added
    assert "\u200b" not in "".join(lines)
    for line in lines:
        assert _width(line) <= width, line
        assert line == line.strip()
        assert unicodedata.category(line[0]) != "Mn" and line[0] not in ")ๆ", line     # no orphan mark
        assert not line.endswith("(")
    # every break falls on a word boundary of the dictionary segmenter
    bounds, at = set(), 0
    for chunk in text.split():
        for token in word_tokenize(chunk):
            at += len(token)
            bounds.add(at)
    at = 0
    for line in lines[:-1]:
        at += len(line.replace(" ", ""))
        assert at in bounds, (line, width)


def test_a_word_longer_than_the_line_is_cut_between_letters():
    lines = printable.wrap("สมชาย ใจดี citizen1234567@example.co.th", 12, _width)
    assert lines[:2] == ["สมชาย ใจดี", "citizen12345"] or lines[0] == "สมชาย ใจดี"
    assert "".join(lines).replace(" ", "") == "สมชายใจดีcitizen1234567@example.co.th"
    assert all(_width(x) <= 12 for x in lines)
    cut = printable.wrap("กิ้งก่าเปลี่ยนสีได้ตลอดเวลาโดยไม่มีเหตุผล", 5, _width)
    assert all(unicodedata.category(x[0]) != "Mn" for x in cut)           # marks stay with their letter


def test_pdf_text_copies_as_written():
    need_poppler()
    words = "ดำเนินการ น้ำประปา ซ้ำกับเรื่องเดิม ที่ตั้ง ตำบลบ้านตัวอย่าง กิ้งก่า ปี่พาทย์ ญาติ ฐานะ"
    table = printable.Table("ทะเบียนทดสอบ", AGENCY, "ประจำปี พ.ศ. 2569",
                            [printable.Column("เรื่อง", 40), printable.Column("หมายเหตุ", 20)], [[words, "ต่ำกว่า"]])
    text = subprocess.run(["pdftotext", "-", "-"], input=printable.render(table), capture_output=True,
                          check=True).stdout.decode()
    for word in [*words.split(), "ต่ำกว่า", "ทะเบียนทดสอบ", "หน้า 1/1"]:
        assert word in text, word
    assert "\u200b" not in text


# ---------------------------------------------------------------------------------- receive register

def test_receive_register_prints_whole_header_on_every_page(tmp_path):
    need_tools()
    folder = tmp_path / "registers"
    state = State(tmp_path / "state.sqlite3")
    fill_cases(state, 50)
    [xlsx] = register.write_registers(state, folder, AGENCY, NOW).written
    first, before = xlsx.read_bytes(), json.loads(state.get("register_layout:2569"))
    # 40 more cases: appended to the file (the rows already there are not rewritten), print set-up kept
    more = State(tmp_path / "more.sqlite3")
    fill_cases(more, 90)
    with state.tx():
        for row in more.db.execute("SELECT * FROM cases WHERE seq > 50 ORDER BY seq"):
            state.new_case(2569, **{k: row[k] for k in row.keys() if k not in ("id", "receipt", "year_be", "seq")})
    more.close()
    register.write_registers(state, folder, AGENCY, NOW)
    after = json.loads(state.get("register_layout:2569"))
    assert after["rows"] == 90 and after["sheet_header"] == before["sheet_header"]
    rows_at = before["sheet_header"] + 30 + len(register.SHEET)
    assert xlsx.read_bytes()[rows_at:before["tail_at"]] == first[rows_at:before["tail_at"]]

    ws = openpyxl.load_workbook(xlsx).active
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"
    assert ws.print_area.endswith("$A$1:$H$1048576")
    with zipfile.ZipFile(xlsx) as z:
        sheet = z.read(register.SHEET).decode()
    head = html.unescape(re.search(r"<oddHeader>(.*?)</oddHeader>", sheet).group(1))
    assert f"ทะเบียนหนังสือรับ {AGENCY}" in head and "ประจำปี พ.ศ. 2569" in head
    assert "หน้า &P/&N" in html.unescape(re.search(r"<oddFooter>(.*?)</oddFooter>", sheet).group(1))
    assert ws["F60"].alignment.wrap_text and ws["G60"].alignment.wrap_text and not ws["M60"].alignment.wrap_text
    assert ws["F60"].font.name == "TH Sarabun New" and ws["F60"].font.size == 16
    assert printable.effective_pt(register.COLUMNS) >= 12          # 16 pt at the fit-to-width scale
    assert ws.row_dimensions[60].height and ws.row_dimensions[60].height > 15   # LibreOffice needs the height

    ours = register.write_pdf(state, folder, 2569, AGENCY, now=datetime(2026, 12, 1, 3, tzinfo=timezone.utc))
    starts = register.page_starts_of(state, 2569)
    state.close()
    # the workbook carries the page breaks, and the PDF breaks at the same rows
    breaks = [b.id for b in openpyxl.load_workbook(xlsx).active.row_breaks.brk]
    assert breaks == [s + 1 for s in starts] and len(starts) >= 3
    [lo] = to_pdf([xlsx], tmp_path / "lo")
    for pdf in (lo, ours):
        pages = page_count(pdf)
        assert pages == len(starts) + 1, (pdf, pages)         # the same pages in Excel's print and the PDF
        assert landscape_a4(pdf), pdf
        assert check_pages(pdf, RECEIVE_HEADERS, RECEIPT, MARKER) == [], pdf
        seen: list[str] = []
        for words in words_by_page(pdf):
            seen += sorted({m.group(1) for m in RECEIPT.finditer(" ".join(w.text for w in words))})
        assert sorted(seen, key=int) == [str(i) for i in range(1, 91)], pdf   # each row once, on one page
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(ours), "-"], capture_output=True, text=True).stdout
    assert f"ทะเบียนหนังสือรับ {AGENCY} ประจำปี พ.ศ. 2569" in text and "หน้า 1/" in text
    assert "ข้อมูล ณ 1 ธันวาคม 2569 เวลา 10:00 น." in text


def test_rows_cached_by_an_older_version_are_rendered_again(tmp_path):
    state = State(tmp_path / "state.sqlite3")
    fill_cases(state, 3)
    register.write_registers(state, tmp_path, AGENCY, NOW)
    with state.tx():   # as the previous version left them: no styles, no height
        state.db.execute("UPDATE register_rows SET xml = replace(replace(xml, ' s=\"2\"', ''), ' s=\"1\"', '')")
        state.db.execute("DELETE FROM meta WHERE key='register_row_format'")
    fill_cases(state, 1, seed=9)
    register.write_registers(state, tmp_path, AGENCY, NOW)
    ws = openpyxl.load_workbook(register.register_path(tmp_path, 2569)).active
    assert all(ws.cell(r, 6).alignment.wrap_text for r in range(2, 6))


# ---------------------------------------------------------------------------------- daily log

DAILY_HEADERS = ["เวลา", "ผู้ส่ง", "เรื่อง", "ผลการจัดการ", "เลขรับ", "การตอบกลับ", "ข้อผิดพลาด/หมายเหตุ"]


def fill_day(state: State, n: int) -> date:
    services = [("BLD", "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร"), ("WEL", "เบี้ยยังชีพผู้สูงอายุ ผู้พิการ และผู้ป่วยเอดส์")]
    outcomes = ["registered", "registered", "registered", "wrong_agency", "automatic", "followup", "quarantined"]
    statuses = [["sent"], ["sent", "queued"], ["held"], ["failed"], ["bounced"], []]
    start = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)
    with state.tx():
        for i in range(n):
            at = start + timedelta(minutes=13 * i)
            outcome = outcomes[i % len(outcomes)]
            row = state.db.execute(
                "INSERT INTO messages (account, folder, uidvalidity, uid, received_at, sender, subject, outcome, "
                "reason, decided_at) VALUES ('a','INBOX',1,?,?,?,?,?,?,?)",
                (i + 1, iso(at), f"นางสาวพรทิพย์ ศรีสวัสดิ์ <citizen{i}@example.co.th>",
                 f"ขอรับใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ ครั้งที่ {i}", outcome,
                 "ไฟล์แนบที่รันได้ (.exe)" if outcome == "quarantined" else None, iso(at))).lastrowid
            if outcome == "registered":
                code, name = services[i % 2]
                case = state.new_case(2569, message_row=row, received_at=iso(at), service_code=code,
                                      service_name=name, status="received")
                state.db.execute("UPDATE messages SET case_id=? WHERE id=?", (case["id"], row))
            if outcome not in ("automatic", "quarantined"):
                for k, status in enumerate(statuses[i % len(statuses)]):
                    state.queue_reply(message_id=f"<r{i}.{k}@x>", kind="receipt", case_id=None, message_row=row,
                                      recipient="p@example.co.th", subject="s", raw=b"", status=status,
                                      hold_reason=None, now=at)
    return date(2026, 11, 27)


def test_daily_log_prints_header_on_every_page_and_the_summary_with_its_chart_on_one(tmp_path):
    need_tools()
    state = State(tmp_path / "state.sqlite3")
    day = fill_day(state, 70)
    head = "#812 " + "ab12" * 16
    xlsx, ours = report.write(state, day, tmp_path, AGENCY, audit_head=head)
    state.close()
    assert ours == xlsx.with_suffix(".pdf") and ours.is_file()
    wb = openpyxl.load_workbook(xlsx)
    # the audit head sits above the chart, which starts below every used row; the summary prints
    # landscape like the list; counts are whole numbers; every outcome is labelled
    audit_row = [r for r in range(1, wb["สรุป"].max_row + 1) if wb["สรุป"].cell(r, 2).value == head]
    [chart] = wb["สรุป"]._charts
    assert audit_row and chart.anchor._from.row + 1 > audit_row[0] + 1
    assert {ws.page_setup.orientation for ws in wb.worksheets} == {"landscape"}
    assert chart.y_axis.majorUnit >= 1 and chart.y_axis.number_format.formatCode == "0" and chart.x_axis.tickLblSkip == 1
    replies = {row[5] for row in wb["รายการ"].iter_rows(min_row=2, values_only=True)}
    assert replies == {"ส่งแล้ว", "ส่งแล้ว, รอส่ง", "ระงับไว้ รอเจ้าหน้าที่", "ส่งไม่สำเร็จ", "ส่งอีเมลไม่สำเร็จ (ตีกลับ)",
                       "ไม่ได้ตอบ", "-"}
    summary = {r[0]: r[1] for r in wb["สรุป"].iter_rows(values_only=True) if r and r[0]}
    assert summary["เบี้ยยังชีพผู้สูงอายุ ผู้พิการ และผู้ป่วยเอดส์"] == 15 and "WEL" not in summary
    assert wb["สรุป"].page_setup.fitToHeight == 1 and wb["สรุป"].page_setup.fitToWidth == 1

    [lo] = to_pdf([xlsx], tmp_path / "lo")
    for pdf in (lo, ours):
        pages = words_by_page(pdf)
        assert len(pages) >= 3 and landscape_a4(pdf), pdf        # the list runs over pages; summary last
        *listing, last = pages
        for n, words in enumerate(listing, start=1):
            assert header_row_y(words, DAILY_HEADERS) is not None, (pdf, n)
        text = bare(" ".join(w.text for w in last))
        labels = list(report.OUTCOME_TH.values())
        for label in labels:       # LibreOffice: in the table and on the chart's axis (a long one may wrap,
            head_of = bare(label)[:12]                # read in pieces); ours: one row each
            assert text.count(head_of) >= (2 if pdf == lo else 1) and bare(label) in text, (pdf, label)
        assert bare("รวม (total)") in text and bare("เบี้ยยังชีพผู้สูงอายุ ผู้พิการ และผู้ป่วยเอดส์") in text
        everything = " ".join(w.text for page in pages for w in page)
        assert not re.search(r"\b(sent|queued|held|bounced|failed)\b", everything), pdf   # Thai replies only
    lo_last = bare(" ".join(w.text for w in words_by_page(lo)[-1]))
    assert bare("จำนวนข้อความตามผลการจัดการ") in lo_last                  # the chart's title: chart on that page
    assert not [w.text for w in words_by_page(lo)[-1] if re.fullmatch(r"\d+[.,]\d+", w.text)]   # no 0.5 ticks
    assert len(words_by_page(lo)) == len(words_by_page(ours))              # the list breaks at the same rows


# ---------------------------------------------------------------------------------- licence register

LICENCE_HEADERS = ["เลขที่ใบอนุญาต", "ผู้ได้รับอนุญาต", "ประเภทกิจการ/ใบอนุญาต", "สถานที่", "วันที่ออก", "วันหมดอายุ",
                   "เลขทะเบียนรับ"]


def test_licence_register_prints_whole_header_on_every_page(tmp_path):
    need_tools()
    state = State(tmp_path / "state.sqlite3")
    issued = datetime(2026, 11, 27, 3, tzinfo=timezone.utc)
    with state.tx():
        for i in range(1, 61):
            state.db.execute(
                "INSERT INTO licences (number, year_be, seq, holder, activity, location, issued, expires, receipt, "
                "case_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (f"ใบอนุญาต {i}/2569", 2569, i, "ห้างหุ้นส่วนจำกัด บ้านสวนพัฒนา" if i % 2 else "นายวีระพงษ์ เจริญสุขสมบูรณ์",
                 "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร" if i % 3 == 0 else    # as round 2 stored it
                 "ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร (พื้นที่เกิน 200 ตารางเมตร)",
                 f"บ้านเลขที่ {i} หมู่ที่ 3 ตำบลบ้านตัวอย่าง อำเภอเมือง จังหวัดตัวอย่าง [L{i}]", iso(issued),
                 iso(issued.replace(year=2027)), f"{i + 1000}/2569", i))
    files = licences.publish(state, tmp_path / "public", AGENCY, issued)
    state.close()
    xlsx, ours = files[0], files[1]
    assert ours.suffix == ".pdf" and ours.is_file()
    kinds = {row[2] for row in openpyxl.load_workbook(xlsx).active.iter_rows(min_row=2, values_only=True)}
    assert "ใบอนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร" in kinds            # the licence, not the request
    assert not [k for k in kinds if str(k).startswith("ขอ")]
    [lo] = to_pdf([xlsx], tmp_path / "lo")
    assert split_units(lo) == [] and split_units(ours) == []       # Excel's wrap too: no date cut in two
    for pdf in (lo, ours):
        assert page_count(pdf) >= 2 and landscape_a4(pdf), pdf
        # a row's first cell: the licence number (1..60); its last: the receipt it came from (1001..1060)
        assert check_pages(pdf, LICENCE_HEADERS, re.compile(r"(?<![\d/])(\d{1,2})/2569"),
                           re.compile(r"(?<![\d/])1(\d{3})/2569")) == [], pdf
        seen = set()
        for words in words_by_page(pdf):
            seen |= {m.group(1) for m in re.finditer(r"\[L(\d+)\]", " ".join(w.text for w in words))}
        assert seen == {str(i) for i in range(1, 61)}


DISPATCH_HEADERS = ["เลขทะเบียนส่ง", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ", "เลขรับที่ตอบ"]


def test_a_dispatch_register_prints_with_one_call(tmp_path):
    """Any register reuses the printing: one call writes its workbook and PDF, both printable."""
    need_tools()
    columns = [printable.Column("เลขทะเบียนส่ง", 14, align="C"), printable.Column("ที่", 16, wrap=True),
               printable.Column("ลงวันที่", 13), printable.Column("จาก", 20, wrap=True),
               printable.Column("ถึง", 28, wrap=True), printable.Column("เรื่อง", 40, wrap=True),
               printable.Column("การปฏิบัติ", 28, wrap=True), printable.Column("หมายเหตุ", 24, wrap=True),
               printable.Column("เลขรับที่ตอบ", 13, align="C")]
    rows = [[f"{i}/2569", f"มท 0808.2/{i}", "27 พ.ย. 2569", AGENCY, f"นางสาวพรทิพย์ ศรีสวัสดิ์ <citizen{i}@example.co.th>",
             "แจ้งผลการพิจารณาคำขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 หมู่ที่ 3", "ส่งทางอีเมลแล้ว 27 พ.ย. 2569",
             "ลงนามอิเล็กทรอนิกส์", f"{i + 1000}/2569"] for i in range(1, 46)]
    table = printable.Table("ทะเบียนหนังสือส่ง", AGENCY, "ประจำปี พ.ศ. 2569", columns, rows)
    xlsx, ours = register.write_table(tmp_path, "ทะเบียนส่ง-2569", table)
    [lo] = to_pdf([xlsx], tmp_path / "lo")
    first, last = re.compile(r"(?<![\d/.])(\d{1,2})/2569"), re.compile(r"(?<![\d/])1(\d{3})/2569")
    breaks = [b.id for b in openpyxl.load_workbook(xlsx).active.row_breaks.brk]
    assert split_units(lo) == [] and split_units(ours) == []
    for pdf in (lo, ours):
        assert page_count(pdf) == len(breaks) + 1 >= 2 and landscape_a4(pdf), pdf     # the same pages
        assert check_pages(pdf, DISPATCH_HEADERS, first, last) == [], pdf
    assert first_receipt_per_page(lo, last) == first_receipt_per_page(ours, last)      # the same rows on each


def first_receipt_per_page(pdf, pattern) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for words in words_by_page(pdf):
        found = [m.group(1) for m in pattern.finditer(" ".join(w.text for w in words))]
        out.append(found[0] if found else "")
    return out


def test_check_pages_finds_a_page_without_the_header(tmp_path):
    """The checker itself: a table printed without its header row on later pages is caught."""
    need_poppler()
    table = printable.Table("ทะเบียนหนังสือรับ", AGENCY, "ประจำปี พ.ศ. 2569",
                            [printable.Column(h, 10) for h in RECEIVE_HEADERS],
                            [[f"{i}/2569", "-", "", "สมชาย", AGENCY, "เรื่อง " * 30, "", f"[r{i}]"]
                             for i in range(1, 40)])
    good = tmp_path / "good.pdf"
    good.write_bytes(printable.render(table))
    assert page_count(good) >= 2 and check_pages(good, RECEIVE_HEADERS, RECEIPT, MARKER) == []
    table.columns = [printable.Column(h, 10, printed=h != "หมายเหตุ") for h in RECEIVE_HEADERS]   # one left out
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(printable.render(table))
    assert len(check_pages(bad, RECEIVE_HEADERS, RECEIPT, MARKER)) == page_count(bad)


# ---------------------------------------------------------------------------------- mailbot report

def test_report_command_writes_the_pdfs_beside_the_workbooks(env):
    need_poppler()
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 ตำบลบ้านตัวอย่าง"))
    [handled] = env.cycle().handled
    r = env.cli("report")
    assert r.returncode == 0, r.stderr
    year = int(handled.receipt.split("/")[1])
    # the daily job writes this month's pages (and last month's), not the year's
    month = env.root / "registers" / f"ทะเบียนรับ-{year}-{env.clock().astimezone(BANGKOK).month:02d}.pdf"
    assert str(month) in r.stdout and month.is_file()
    assert handled.receipt in subprocess.run(["pdftotext", str(month), "-"], capture_output=True, text=True).stdout
    pdf = env.root / "registers" / f"ทะเบียนรับ-{year}.pdf"
    assert not pdf.exists()
    r = env.cli("report", "--year")                                   # the year's: when asked
    assert r.returncode == 0, r.stderr
    assert str(pdf) in r.stdout and pdf.is_file()
    # -raw: in the order drawn, each cell's lines together (the subject may wrap at the size a short register gets)
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True).stdout
    assert handled.receipt in text and bare("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 ตำบลบ้านตัวอย่าง") in bare(text)
    daily = sorted((env.root / "registers" / "daily").glob("*.pdf"))
    assert len(daily) == 1 and str(daily[0]) in r.stdout


def _dispatch_table(n: int) -> printable.Table:
    from mailbot.registers import dispatch

    agencies = [AGENCY, "องค์การบริหารส่วนตำบลหนองบัวแดงพัฒนาเศรษฐกิจชุมชน", "เทศบาลเมืองตัวอย่าง"]
    rows = [[str(i), f"ทดลอง 0000.1/{i}", f"{1 + i % 28} พ.ย. 2569", agencies[i % 3],
             f"นางสาวพรทิพย์ ศรีสวัสดิ์ <citizen.number{i}@mail.example.co.th>",
             f"แจ้งผลการพิจารณาคำขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i} หมู่ที่ 3 (เลขรับ {i}/2569)",
             f"ส่งทางอีเมลแล้ว {1 + i % 28} พ.ย. 2569 เวลา 10:{i % 60:02d} น.",
             "ยกเลิก: ส่งผิดคน" if i % 17 == 0 else "", f"{i}/2569"] for i in range(1, n + 1)]
    return printable.Table(dispatch.TITLE, AGENCY, "ประจำปี พ.ศ. 2569", dispatch.COLUMNS, rows)


@pytest.mark.parametrize("rows", [200, pytest.param(2000, marks=pytest.mark.slow)])
def test_no_date_number_or_address_is_broken_across_lines(tmp_path, rows):
    """The receive and the dispatch registers, read back with pdftotext -bbox: no ลงวันที่ or
    หมายเหตุ date, no ที่, no "(เลขรับ 1/2569)", no e-mail address is split over two lines."""
    need_poppler()
    state = State(tmp_path / "state.sqlite3")
    fill_cases(state, rows)
    receive = register.write_pdf(state, tmp_path, 2569, AGENCY, NOW)
    state.close()
    _xlsx, dispatched = register.write_table(tmp_path, "ทะเบียนส่ง-2569", _dispatch_table(rows))
    for pdf in (receive, dispatched):
        assert split_units(pdf) == [], pdf
        assert page_count(pdf) >= rows // 40


def test_the_split_check_finds_a_split(tmp_path):
    """The check above is not blind: narrow columns that must break a date, a ที่ and an address."""
    need_poppler()
    columns = [printable.Column("ที่", 4, wrap=True), printable.Column("ลงวันที่", 4, wrap=True),
               printable.Column("ถึง", 4, wrap=True), printable.Column("เรื่อง", 80, wrap=True)]
    rows = [["ทดลอง 0000.1/12345678", "27 พ.ย. 2569", "a.very.long.address.of.someone@mail.example.co.th", "x"]]
    table = printable.Table("ทดสอบ", AGENCY, "", columns, rows, fit=False)
    path = tmp_path / "split.pdf"
    path.write_bytes(printable.render(table))
    assert len(split_units(path)) >= 2, split_units(path)
