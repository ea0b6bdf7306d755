"""Forwards from staff (pure): the original sender, subject and text recovered from each
client's format."""
from pathlib import Path

import pytest

from mailbot.mail.forwarded import extract, strip_prefixes
from mailbot.mail.parse import parse

FIXTURES = Path(__file__).parent / "fixtures" / "forwards"


@pytest.mark.parametrize("name,addr,person,subject,how", [
    ("gmail_en.eml", "somying.r@gmail.com", "สมหญิง รักดี", "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 45", "inline"),
    ("gmail_th.eml", "somying.r@gmail.com", "สมหญิง รักดี", "ร้องเรียนกลิ่นเหม็นจากฟาร์มสุกร", "inline"),
    ("outlook_en.eml", "somying.r@hotmail.com", "Somying Rakdee", "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 45", "inline"),
    ("outlook_original_message.eml", "somying.r@hotmail.com", "Somying Rakdee", "ภาษีที่ดินและสิ่งปลูกสร้าง", "inline"),
    ("outlook_th.eml", "somying.r@hotmail.com", "สมหญิง รักดี", "ขอรับเบี้ยยังชีพผู้สูงอายุ", "inline"),
    ("thunderbird.eml", "somying.r@gmail.com", "สมหญิง รักดี", "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 45", "inline"),
    ("thunderbird_attached.eml", "somying.r@gmail.com", "สมหญิง รักดี", "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 45",
     "message/rfc822"),
])
def test_each_client_format(name, addr, person, subject, how):
    letter = parse((FIXTURES / name).read_bytes())
    original = extract(letter, letter.embedded)
    assert original is not None, letter.body_text[:500]
    assert (original.from_addr, original.from_name, original.subject, original.how) == (addr, person, subject, how)
    assert "somsak.officer" not in original.from_addr


def test_text_and_attachments_come_with_the_original():
    letter = parse((FIXTURES / "thunderbird_attached.eml").read_bytes())
    original = extract(letter, letter.embedded)
    assert [a.name for a in original.attachments] == ["kor1.pdf", "idcard.jpg"]
    assert "แนบคำขอ" in original.text
    gmail = parse((FIXTURES / "gmail_en.eml").read_bytes())
    assert [a.name for a in extract(gmail, gmail.embedded).attachments] == ["แบบ ข1.pdf"]
    th = parse((FIXTURES / "outlook_th.eml").read_bytes())
    assert "เบี้ยยังชีพ" in extract(th, None).text


def test_plain_message_has_no_forward():
    letter = parse(b"From: a@example.com\r\nSubject: hello\r\n\r\nFrom: nobody\r\njust text\r\n")
    assert extract(letter, letter.embedded) is None


def test_strip_prefixes():
    assert strip_prefixes("FW: Fwd: ส่งต่อ: เรื่อง") == "เรื่อง"
