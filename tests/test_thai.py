"""Thai conventions: normalisation, Buddhist-Era dates."""
from datetime import date, datetime, timezone

import pytest

from mailbot.thai import (
    BANGKOK,
    be_year,
    clean_text,
    normalise,
    one_line,
    thai_date,
    thai_datetime,
    thai_digits_to_arabic,
)


def test_buddhist_era_and_official_date_forms():
    assert be_year(date(2026, 11, 27)) == 2569
    assert thai_date(date(2026, 11, 27)) == "27 พฤศจิกายน 2569"
    when = datetime(2026, 11, 27, 3, 42, tzinfo=timezone.utc)  # 10:42 in Bangkok
    assert thai_datetime(when) == "27 พฤศจิกายน 2569 เวลา 10:42 น."


def test_bangkok_day_boundary():
    # 31 Dec 2026 17:30 UTC is already 1 January 2027 in Bangkok: year 2570
    when = datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc)
    assert thai_date(when) == "1 มกราคม 2570"
    assert when.astimezone(BANGKOK).year + 543 == 2570


def test_normalise_spaces_digits_zero_width_case():
    assert normalise("ขออนุญาต ก่อ สร้าง") == normalise("ขออนุญาตก่อสร้าง")
    assert normalise("ขออนุญาต\u200bก่อสร้าง") == "ขออนุญาตก่อสร้าง"
    assert normalise("บ้านเลขที่ ๑๒") == "บ้านเลขที่12"
    assert normalise("Building PERMIT") == "buildingpermit"
    assert thai_digits_to_arabic("๑๕/๒๕๖๙") == "15/2569"


def test_common_thai_typing_slips():
    assert clean_text("ทํางาน") == "ทำงาน"          # nikhahit + sara aa typed for sara am
    assert clean_text("ก่่อสร้าง") == "ก่อสร้าง"      # doubled tone mark
    assert clean_text("ที่") == clean_text("ท่ี")      # tone typed before the vowel


@pytest.mark.parametrize("typed,meant", [
    ("ขออนุญาตก่อสร้่าง", "ขออนุญาตก่อสร้าง"),     # two tone marks on one consonant: the first is kept
    ("ก่่อสร้าง", "ก่อสร้าง"),                       # the same tone mark twice
    ("ไม่่", "ไม่"),
    ("ข้อมููล", "ข้อมูล"),                            # a lower vowel twice
    ("ภาษีีที่ดิน", "ภาษีที่ดิน"),                      # an upper vowel twice
    ("สำำนัก", "สำนัก"), ("โโรง", "โรง"),             # following and leading vowels twice
    ("เเจ้ง", "แจ้ง"),                                # sara e twice is sara ae
    ("ทํางาน", "ทำงาน"), ("นํ้า", "น้ำ"),              # nikhahit + (tone) + sara aa is sara am
    ("ท่ี", "ที่"), ("ก์ุ", "กุ์"),                      # tone or thanthakhat before the upper/lower vowel
    ("กา่", "ก่า"),                                  # following vowel before the tone mark
    ("คำ ่ที่สอง", "คำ ที่สอง"), ("่ก", "ก"),          # a mark with no consonant
    ("การร", "การร"), ("ขอ  อนุญาต", "ขอ  อนุญาต"),  # left alone: consonants, spaces
    ("Re: ABC", "Re: ABC"),
])
def test_thai_typing_normalised(typed, meant):
    assert clean_text(typed) == meant
    assert clean_text(meant) == meant                 # idempotent on what it produced


def test_one_line_strips_controls_and_bidi():
    assert one_line("a\u202eb\x00c\nd") == "ab c d"
    assert len(one_line("ก" * 500, 50)) == 50
