"""The words of a result (issue 26), pure: the request phrase of every starter service (no "ขอขอ"),
one decision word for the letter, the e-mail and the file name, when a fee is asked, how a person
is addressed, one digit style, and where a letter's pages break."""
from __future__ import annotations

from datetime import date

import pytest

from mailbot.casework.wording import (APPROVAL, RECEIPT, decision, fee_moment, licence_name, outcome_from_name,
                                      request_phrase, undouble)
from mailbot.config import Fee, LettersConfig, Service, load_rules
from mailbot.documents.letters import LINE, _BodyLine, continuation_word, in_digits, legal_break, paginate
from mailbot.starter import init
from mailbot.thai import addressee, is_organisation, name_title

from .conftest import REPO

BILLER = "099400016550100"
DOUBLED = ("ขอขอ", "คำขอคำ", "เรื่องเรื่อง", "คำขอเรื่อง", "ยุติเรื่องเรื่อง")


def starter_services(tmp_path) -> list[Service]:
    """The services of the repository's rules.yaml and of a workspace `mailbot init` writes."""
    init(tmp_path / "fresh", today=date(2026, 1, 1))
    repo = load_rules(REPO / "rules.yaml").services
    fresh = load_rules(tmp_path / "fresh" / "rules.yaml").services
    assert repo and fresh
    return repo + fresh


# ---------------------------------------------------------------------------- the licence's own name

@pytest.mark.parametrize("service, licence", [
    ("ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร", "ใบอนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร"),
    ("ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร", "ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร"),
    ("ขอต่อใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ", "ใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ"),
    ("ขอรับใบอนุญาตจำหน่ายสินค้าในที่สาธารณะ", "ใบอนุญาตจำหน่ายสินค้าในที่สาธารณะ"),
    ("ขอขุดดินและถมดิน", "ใบอนุญาตขุดดินและถมดิน"),
    ("", ""),
])
def test_the_licence_register_names_the_licence_not_the_request(service, licence):
    assert licence_name(service) == licence
    assert licence_name(licence_name(service)) == licence_name(service)      # rows stored before read the same
    assert licence_name(service, "ใบอนุญาตให้ใช้สถานที่") == "ใบอนุญาตให้ใช้สถานที่"   # a service may name it


def test_every_starter_licence_service_gives_a_licence_name(tmp_path):
    for service in starter_services(tmp_path):
        if service.licence:
            name = licence_name(service.name, service.licence_name)
            assert name.startswith("ใบอนุญาต") and not name.startswith("ใบอนุญาตขอ"), (service.name, name)


# ---------------------------------------------------------------------------- the request phrase

def test_every_starter_service_is_asked_for_without_a_doubled_word(tmp_path):
    services = starter_services(tmp_path)
    assert any(s.name.startswith("ขอ") for s in services)        # the case the issue is about is there
    for s in services:
        phrase = request_phrase(s.name)
        for text in (phrase, f"แจ้งผลการพิจารณา{phrase}", f"ตามที่ท่านได้ยื่น{phrase}", f"แจ้งการยุติการพิจารณา{phrase}"):
            assert not any(d in text for d in DOUBLED), (s.name, text)
        assert phrase.endswith(s.name) or phrase.endswith(s.name[2:]), (s.name, phrase)   # the name is all there
        assert phrase.startswith(("คำขอ", "เรื่อง")), phrase


@pytest.mark.parametrize("name,phrase", [
    ("ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร", "คำขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร"),
    ("ขอข้อมูลข่าวสารของราชการ", "คำขอข้อมูลข่าวสารของราชการ"),
    ("ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร", "คำขอใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร"),
    ("เรื่องร้องเรียน ร้องทุกข์", "เรื่องร้องเรียน ร้องทุกข์"),
    ("แจ้งซ่อมไฟฟ้าสาธารณะ ถนน", "เรื่องแจ้งซ่อมไฟฟ้าสาธารณะ ถนน"),
    ("คำขอรับเงินอุดหนุน", "คำขอรับเงินอุดหนุน"),
    ("  ขอ  อนุญาต ", "คำขอ อนุญาต"),
    ("", "คำขอ"),
])
def test_the_request_phrase_of_a_name(name, phrase):
    assert request_phrase(name) == phrase


def test_an_older_template_that_wrote_the_doubled_word_is_read_without_it():
    name = "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร"
    old = f"ตามที่ท่านได้ยื่นคำขอ{name} มายัง"
    assert undouble(old, name) == "ตามที่ท่านได้ยื่นคำขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร มายัง"
    assert undouble("ตามที่ท่านได้ยื่นคำขอภาษีป้าย", "ภาษีป้าย") == "ตามที่ท่านได้ยื่นคำขอภาษีป้าย"   # nothing doubled
    assert undouble("ขอขอบคุณ", name) == "ขอขอบคุณ"                       # only the name's own phrase changes


# ---------------------------------------------------------------------------- one decision word

@pytest.mark.parametrize("licence,verb", [(True, "อนุญาต"), (False, "อนุมัติ")])
def test_one_word_for_the_letter_the_mail_and_the_file(licence, verb):
    other = "อนุมัติ" if licence else "อนุญาต"
    for outcome in ("approved", "rejected"):
        d = decision(outcome, licence)
        assert d.verb == verb and verb in d.text and verb in d.file_word
        assert other not in d.text + d.file_word
        assert outcome_from_name(f"15-2569 {d.file_word}.pdf") == outcome      # the file name reads back
    assert decision("approved", licence).text == f"{verb}ตามคำขอ"
    assert decision("rejected", licence).text == f"ไม่{verb}ตามคำขอ"
    assert outcome_from_name(f"15-2569 {decision('incomplete', licence).file_word}.pdf") == "incomplete"


# ---------------------------------------------------------------------------- when a fee is asked

def service(**kw) -> Service:
    return Service(code="X", name="ขออนุญาตก่อสร้างอาคาร", **kw)


def test_a_licence_fee_is_asked_with_the_approval_and_an_application_fee_with_the_receipt():
    assert fee_moment(service()) is None
    assert fee_moment(service(fee=Fee(amount=1500, biller_id=BILLER, name="ค่าธรรมเนียมใบอนุญาต"))) == APPROVAL
    assert fee_moment(service(licence=True, fee=Fee(amount=100, biller_id=BILLER))) == APPROVAL
    assert fee_moment(service(fee=Fee(amount=20, biller_id=BILLER, name="ค่าคำขอ"))) == RECEIPT
    assert fee_moment(service(fee=Fee(amount=20, biller_id=BILLER))) == RECEIPT       # the default name
    # the setting decides when it is given, in English or in Thai
    assert fee_moment(service(licence=True, fee=Fee(amount=20, biller_id=BILLER, when="receipt"))) == RECEIPT
    assert fee_moment(service(fee=Fee(amount=20, biller_id=BILLER, when="approval"))) == APPROVAL
    assert Fee(amount=1, biller_id=BILLER, when="อนุญาต").when == "approval"
    assert Fee(amount=1, biller_id=BILLER, when="").when is None
    with pytest.raises(ValueError):
        Fee(amount=1, biller_id=BILLER, when="later")


def test_letters_digits_setting_defaults_to_arabic_and_reads_thai_words():
    assert LettersConfig().digits == "arabic"                 # a config file without the key: as before
    assert LettersConfig(digits="thai").digits == "thai"
    assert LettersConfig(digits="เลขไทย").digits == "thai"
    with pytest.raises(ValueError):
        LettersConfig(digits="roman")


# ---------------------------------------------------------------------------- addressing a person

@pytest.mark.parametrize("name,title,addressed", [
    ("สมชาย ใจดี", "", "คุณสมชาย ใจดี"),
    ("นายสมชาย ใจดี", "", "นายสมชาย ใจดี"),
    ("นางสาวมาลี สีสวย", "", "นางสาวมาลี สีสวย"),
    ("นางมาลี สีสวย", "", "นางมาลี สีสวย"),
    ("ร.ต.อ.สมชาย ใจดี", "", "ร.ต.อ.สมชาย ใจดี"),
    ("พ.ต.ท. สมศักดิ์ กล้าหาญ", "", "พ.ต.ท. สมศักดิ์ กล้าหาญ"),
    ("ร้อยตำรวจเอกสมชาย ใจดี", "", "ร้อยตำรวจเอกสมชาย ใจดี"),
    ("ว่าที่ร้อยตรีสมชาย ใจดี", "", "ว่าที่ร้อยตรีสมชาย ใจดี"),
    ("ผศ.ดร.สมหญิง ใจงาม", "", "ผศ.ดร.สมหญิง ใจงาม"),
    ("บริษัท ตัวอย่าง จำกัด", "", "บริษัท ตัวอย่าง จำกัด"),
    ("ห้างหุ้นส่วนจำกัด ช่างดี", "", "ห้างหุ้นส่วนจำกัด ช่างดี"),
    ("John Smith", "", "คุณ John Smith"),
    ("สมชาย ใจดี", "นาย", "นายสมชาย ใจดี"),             # the officer set it on the case
    ("นายสมชาย ใจดี", "ร.ต.อ.", "ร.ต.อ.สมชาย ใจดี"),     # the officer's title in place of the name's own
    ("  สมชาย   ใจดี ", "", "คุณสมชาย ใจดี"),
    ("", "นาย", ""),
])
def test_a_person_is_addressed_with_a_title(name, title, addressed):
    assert addressee(name, title) == addressed


def test_titles_and_organisations_are_told_apart():
    assert name_title("นางสาวมาลี") == "นางสาว" and name_title("นางมาลี") == "นาง" and name_title("สมชาย") == ""
    assert name_title("จ.ส.อ.สมชาย") == "จ.ส.อ." and name_title("พล.ต.ท.สมชาย") == "พล.ต.ท."
    assert is_organisation("มูลนิธิตัวอย่าง") and is_organisation("ABC Co., Ltd.") and not is_organisation("สมชาย")


# ---------------------------------------------------------------------------- one digit style

def test_one_digit_style_keeps_addresses_as_typed():
    text = "เลขรับ 15/2569 โทร. 0 2000 0000 ไปรษณีย์อิเล็กทรอนิกส์ saraban1@example.go.th ๑,๕๐๐.๐๐ บาท"
    thai = in_digits(text, "thai")
    assert thai == "เลขรับ ๑๕/๒๕๖๙ โทร. ๐ ๒๐๐๐ ๐๐๐๐ ไปรษณีย์อิเล็กทรอนิกส์ saraban1@example.go.th ๑,๕๐๐.๐๐ บาท"
    arabic = in_digits(text, "arabic")
    assert arabic == "เลขรับ 15/2569 โทร. 0 2000 0000 ไปรษณีย์อิเล็กทรอนิกส์ saraban1@example.go.th 1,500.00 บาท"


# ---------------------------------------------------------------------------- where pages break

def body(*counts: int) -> list[_BodyLine]:
    """Paragraphs of these many lines (their text names the paragraph and the line)."""
    return [_BodyLine(0.0, 100.0, f"p{p}l{i}", LINE * 0.25 if i == n - 1 else 0.0, i, n)
            for p, n in enumerate(counts) for i in range(n)]


def pages_of(lines: list[_BodyLine], breaks: list[int]) -> list[list[_BodyLine]]:
    cuts = [0, *breaks, len(lines)]
    return [lines[a:b] for a, b in zip(cuts, cuts[1:])]


def test_short_paragraphs_stay_whole_and_long_ones_leave_two_lines_a_side():
    for counts in [(4, 3, 2, 1), (4, 7, 2, 1), (2, 2, 2, 2, 2, 2, 2, 2, 2, 1), (12, 1), (5, 5, 5, 5, 5, 5, 1)]:
        for first_lines in range(2, 30):          # how far down page 1 the body starts
            lines = body(*counts)
            breaks = paginate(lines, first_top=100.0 - first_lines * LINE, top=20.0, bottom=100.0,
                              last_bottom=120.0, tail=50.0)
            pages = pages_of(lines, breaks)
            assert all(legal_break(lines, b) for b in breaks), (counts, first_lines, breaks)
            for before, after in zip(pages, pages[1:]):
                last, first = before[-1], after[0]
                if first.index:                       # a paragraph split: two lines at least on each page
                    assert first.count > 3 and first.index >= 2 and first.count - first.index >= 2
                assert last.index == last.count - 1 or first.index > 0
            if len(pages) > 1:
                assert len(pages[-1]) >= 2, (counts, first_lines, breaks)    # never the closing alone
            for page in pages[1:]:                    # each page holds what fits under its number
                height = sum(LINE + ln.after for ln in page[:-1]) + LINE
                assert 20.0 + height <= 100.0 + 0.01


def test_a_page_breaks_only_where_it_must():
    lines = body(4, 3, 2, 1)                            # 10 lines: all fit on one page with the closing
    assert paginate(lines, first_top=0.0, top=20.0, bottom=200.0, last_bottom=300.0, tail=50.0) == []
    # the closing does not fit after the body: the last two paragraphs (three lines) go over with it
    breaks = paginate(lines, first_top=0.0, top=20.0, bottom=200.0, last_bottom=100.0, tail=50.0)
    assert [ln.text for ln in pages_of(lines, breaks)[-1]] == ["p2l0", "p2l1", "p3l0"]


def test_the_continuation_word_is_the_next_pages_first_word():
    assert continuation_word("หนังสือฉบับนี้เป็นเอกสารอิเล็กทรอนิกส์") == "/หนังสือ..."
    assert continuation_word("๑,๕๐๐.๐๐ บาท โดยสแกน") == "/๑,๕๐๐.๐๐ บาท..."     # an amount is one word
    assert continuation_word("") == ""
