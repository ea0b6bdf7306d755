"""Replies in the sender's language (issue 25, part 3): the detector (pure), the template it picks,
the dates and subjects of an English-first reply, and how often it is right on real mail — the
shared corpus (412 public fixtures, labelled by hand in tests/fixtures/corpus_languages.tsv; none
of them is Thai, so every one with words should get the English-first reply) and Thai mail as this
project's tests and demo send it and as Thai writers write it (every one should get the Thai one).

The share is printed: MAILBOT_CORPUS=<corpus> python -m pytest tests/test_language.py -s -k share
"""
from __future__ import annotations

import csv
from datetime import date, datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.casework.replies import Templates, reply_subject, sample_context
from mailbot.config import AgencyConfig
from mailbot.mail.language import ENGLISH, THAI, detect, language_of, split, written_now
from mailbot.mail.parse import Unparseable, parse
from mailbot.thai import english_date, english_datetime

from .conftest import CORPUS, REPO
from .test_corpus import FILES, need_corpus

AGENCY = AgencyConfig(name="เทศบาลตำบลบ้านตัวอย่าง", address="saraban@example.go.th")
NOW = datetime(2026, 12, 4, 3, tzinfo=timezone.utc)
LABELS = Path(__file__).parent / "fixtures" / "corpus_languages.tsv"
OUR_REPLY = ("> เรียน ผู้ยื่นคำขอ\n> เทศบาลตำบลบ้านตัวอย่าง ได้รับเรื่องของท่านและลงทะเบียนรับแล้ว\n"
             "> เลขทะเบียนรับ : 15/2569\n> ------\n> Dear applicant,\n> Your request was received.\n")


@pytest.mark.parametrize("subject, body, expected", [
    ("ขออนุญาตก่อสร้างอาคาร", "รายละเอียดตามไฟล์แนบ", THAI),
    ("Building permit application", "Please find the plans attached.\nRegards, John", ENGLISH),
    # Thai with English terms is Thai
    ("ขอข้อมูล PDPA และ GDPR compliance", "ขอสอบถามเรื่อง data retention policy ของหน่วยงาน", THAI),
    ("ขอใบอนุญาต Work Permit ของพนักงานบริษัท ABC Trading Co., Ltd.",
     "เรียน เจ้าหน้าที่\nบริษัทขอยื่นเอกสาร Work Permit และ Visa ของ Mr. John Smith ตามไฟล์แนบ", THAI),
    # our Thai reply quoted, or an older message below a reply header: not what the sender wrote now
    ("Re: Request", "Thank you, the documents are attached.\n\n" + OUR_REPLY, ENGLISH),
    ("Re: Request", "Thanks.\n\nOn Mon, 1 Dec 2026 at 10:00, saraban wrote:\nเรียน ผู้ยื่นคำขอ เทศบาลได้รับเรื่อง"
     "ของท่านและลงทะเบียนรับแล้ว " * 3, ENGLISH),
    ("Re: Request", "Thanks.\n\nOn Mon, 1 Dec 2026 at 10:00 saraban <saraban@example.go.th>\nwrote:\n"
     "เรียน ผู้ยื่นคำขอ เทศบาลได้รับเรื่องของท่านและลงทะเบียนรับแล้ว " * 3, ENGLISH),   # Gmail folds the line
    ("ตอบกลับ: ขออนุญาตก่อสร้าง", "ได้แนบเอกสารเพิ่มเติมแล้วครับ\n\n-----Original Message-----\nFrom: saraban\n"
     "Dear applicant, your request was received and registered, please send the missing files.", THAI),
    # a reply to our English-first reply: our Thai tag in the subject is not the sender's words
    ("Re: Building permit [เลขรับ 15/2569]", "Here are the missing files.", ENGLISH),
    ("Re: [เลขรับ 15/2569]", "", THAI),                        # nothing written: the agency's language
    # a Thai subject (a service's name, copied) over an English body: a body of a few words does
    # not outweigh it, a request written out in English does
    ("สอบถาม", "Please see the attached file.", THAI),
    ("ขออนุญาตก่อสร้างอาคาร", "Plans attached, thank you.", THAI),
    ("สอบถาม", "Hello, I would like to ask about the land tax for my house in your area.", ENGLISH),
    ("ขออนุญาตก่อสร้างอาคาร", "Dear Sir or Madam, I am a foreign resident of the municipality and would like to "
     "apply for a building permit for a small extension to my house. The plans and my passport are attached. "
     "Please let me know which other documents you need. Kind regards, John Smith", ENGLISH),
    ("", "", THAI),                                              # nothing at all: the agency's
    ("๑๒๓/๒๕๖๙", "๑๒๓", THAI),                                  # Thai digits only
    ("123/2569", "456 789", THAI),                               # Arabic digits only
    ("土地税について", "私の家の土地税について質問があります。", ENGLISH),       # another script: English first
    ("Заявление", "Прошу выдать разрешение на строительство", ENGLISH),
    ("Antrag auf Baugenehmigung", "Sehr geehrte Damen und Herren, anbei die Unterlagen.", ENGLISH),
    ("Visa letter for embassy staff", "Dear Sir, please issue the letter. ขอบคุณครับ", ENGLISH),  # a Thai thank-you
    # links and addresses are not words: a short Thai note with a long link stays Thai
    ("ส่งเอกสาร", "ส่งเอกสารตามลิงก์นี้ครับ https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz0123"
     "?usp=sharing ติดต่อ somchai.jaidee.company@example.com", THAI),
    # a Thai request over an English disclaimer or signature
    ("ขอหนังสือรับรอง", "เรียน เจ้าหน้าที่ ขอหนังสือรับรองการเสียภาษีของบริษัทครับ\n\n-- \nSomchai Jaidee\n"
     "Senior Accountant, Example Trading Co., Ltd.\nDISCLAIMER: This e-mail and any attachments are confidential "
     "and intended solely for the addressee. If you have received it in error, please notify the sender and "
     "delete it. Any views expressed are those of the author and not of the company.", THAI),
    ("Request for a certificate", "Please issue a tax certificate for our company.\n\nSent from my iPhone\n"
     "สมชาย ใจดี บริษัท ตัวอย่าง จำกัด", ENGLISH),
    # forwarded with next to nothing of the sender's own: the forwarded text decides
    ("Fwd:", "FYI\n\n---------- Forwarded message ---------\nFrom: สมชาย <somchai@example.com>\n"
     "เรียน นายกเทศมนตรี ขอร้องเรียนเรื่องน้ำประปาไม่ไหลมาสามวันแล้ว", THAI),
    ("Fwd: Complaint", "\n---------- Forwarded message ---------\nFrom: John <john@example.com>\n"
     "The street light in front of my house has been broken for a week.", ENGLISH),
    # spam and advertising: whatever its script says
    ("V1AGRA 90% OFF!!! $$$ Limited offer", "CLICK HERE http://spam.example.com/buy NOW!!! Best price $$$", ENGLISH),
    ("รับทำเว็บไซต์ ราคาถูก SEO ติดหน้าแรก Google", "สนใจติดต่อ Line: @example โทร 080-000-0000", THAI),
])
def test_the_language_a_sender_wrote_in(subject, body, expected):
    assert detect(subject, body) == expected


def _mail(subject: str, *, plain: str | None = None, html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "x@example.com", "saraban@example.go.th", subject
    if plain is not None:
        msg.set_content(plain)
    if html is not None:
        if plain is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


@pytest.mark.parametrize("raw, expected", [
    # HTML only: the text the parser takes out of it (tags, styles and links are not words)
    (_mail("Permit", html="<html><head><style>p{font-family:Tahoma}</style></head><body><p>ขออนุญาตก่อสร้าง"
                          "อาคารพาณิชย์ <a href='https://example.com/a/very/long/link/to/the/plans'>แบบแปลน</a></p>"
                          "</body></html>"), THAI),
    (_mail("คำขอ", html="<div>Dear officer,<br>please find attached our request for a business licence for "
                        "our restaurant.<br>Best regards</div>"), ENGLISH),
    (_mail("ขออนุญาต", plain="ขออนุญาตจัดงานประจำปี", html="<p>ขออนุญาตจัดงานประจำปี</p>"), THAI),
    (_mail("", plain=""), THAI),
])
def test_the_language_of_a_parsed_mail(raw, expected):
    letter = parse(raw)
    assert detect(letter.subject, letter.body_text) == expected


def test_what_the_sender_wrote_now():
    body = "New text here.\n> quoted line\nMore new text.\n-----Original Message-----\nFrom: x\nold"
    assert written_now(body) == "New text here.\nMore new text."
    now, signature, quoted = split("ขอบคุณครับ\n-- \nSomchai\n> old\n")
    assert (now.strip(), signature.split(), quoted.strip()) == ("ขอบคุณครับ", ["--", "Somchai"], "> old")
    assert language_of("en") == ENGLISH and language_of(None) == THAI and language_of("xx") == THAI


def test_dates_in_english():
    assert english_date(date(2026, 12, 4)) == "4 December 2026"
    assert english_date(datetime(2026, 12, 3, 20, tzinfo=timezone.utc)) == "4 December 2026"   # Bangkok's day
    assert english_datetime(NOW) == "4 December 2026, 10:00"
    # a date the context carries in Thai is read back: BE -> CE, Thai digits, the short month
    assert english_date("4 ธันวาคม 2569") == english_date("๔ ธ.ค. ๒๕๖๙") == "4 December 2026"
    assert english_date("4 ธันวาคม 2569 เวลา 10:00 น.") == "4 December 2026, 10:00"
    assert english_date("ภายในสัปดาห์หน้า") == "ภายในสัปดาห์หน้า"          # not a date: as it is


def test_the_subject_of_a_reply_in_the_senders_language():
    assert reply_subject("", "15/2569") == "Re: (ไม่มีชื่อเรื่อง / no subject) [เลขรับ 15/2569]"
    assert reply_subject("", "15/2569", ENGLISH) == "Re: (no subject / ไม่มีชื่อเรื่อง) [เลขรับ 15/2569]"
    assert reply_subject("(เรื่องลับ)", "3/2569", ENGLISH) == "Re: (confidential / เรื่องลับ) [เลขรับ 3/2569]"
    assert reply_subject("(เรื่องลับ)", "3/2569") == "Re: (เรื่องลับ) [เลขรับ 3/2569]"
    # the citizen's own subject as they wrote it; the tag, the thread's key, as it always is
    assert reply_subject("Building permit", "15/2569", ENGLISH) == "Re: Building permit [เลขรับ 15/2569]"


def _ctx(**extra) -> dict:
    ctx = sample_context(AGENCY, NOW)
    if not ctx.get("referral"):
        ctx["referral"] = {"agency": "องค์การบริหารส่วนตำบลอื่น", "contact": "02-000-0000"}
    ctx.update(extra)
    return ctx


def test_the_english_variant_puts_english_first_and_keeps_the_thai():
    templates = Templates(REPO / "templates")
    kinds = sorted(p.name[: -len(".en.txt.j2")] for p in (REPO / "templates").glob("*.en.txt.j2"))
    assert len(kinds) >= 17
    for kind in kinds:
        thai = templates.render(kind, _ctx())
        english = templates.render(kind, _ctx(language=ENGLISH))
        assert thai.index("เรียน") < thai.index("Dear"), kind
        assert english.index("Dear") < english.index("เรียน"), kind
        first = english.split("-" * 64)[0]
        assert "above" not in first, kind                             # the Thai is below it now
        assert "2569" not in first.replace("/2569", ""), kind           # no Buddhist-Era date in the English
        # the same Thai, below
        assert thai.split("-" * 64)[0].strip() in english, kind
        # the footer turned round too
        assert english.index("never asks for passwords") < english.index("ไม่เคยขอรหัสผ่าน"), kind
    # dates: English (CE) in the English half, Thai (BE) in the Thai half
    receipt = templates.render("receipt", _ctx(language=ENGLISH))
    english_half, thai_half = receipt.split("-" * 64, 1)
    assert "Received       : 4 December 2026, 10:00 (Bangkok time)" in english_half
    assert "4 ธันวาคม 2569 เวลา 10:00 น." in thai_half
    reminder = templates.render("reminder", _ctx(language=ENGLISH)).split("-" * 64)[0]
    assert "by 4 December 2026," in reminder
    status = templates.render("status", _ctx(language=ENGLISH)).split("-" * 64)[0]
    assert "waiting for more documents" in status
    # a kind without an English variant: the Thai-first template, as it is
    assert not Path(REPO / "templates" / "forward.en.txt.j2").exists()        # to a unit: Thai
    assert templates.render("forward", _ctx(language=ENGLISH)) == templates.render("forward", _ctx())


def labels() -> dict[str, str]:
    """file -> the language it is written in (tests/fixtures/corpus_languages.tsv)."""
    with LABELS.open(encoding="utf-8") as fh:
        rows = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        return {row["file"]: row["language"] for row in rows}


def _thai_mail() -> list[tuple[str, str]]:
    """Thai mail: as this project sends it in its demo and tests, and as Thai writers write it —
    with English terms, links, an English signature or disclaimer, a quoted bilingual reply of
    ours. (subject, body)"""
    from mailbot.demo import sample_messages

    from .printcheck import SUBJECTS

    out = []
    for raw in sample_messages(NOW):
        letter = parse(raw)
        if any("\u0e00" <= ch <= "\u0e7f" for ch in letter.subject + letter.body_text):
            out.append((letter.subject, letter.body_text))
    out += [(s.format(i=i), "รายละเอียดตามไฟล์แนบ") for i, s in enumerate(SUBJECTS)]
    out += [(s.format(i=i), "") for i, s in enumerate(SUBJECTS)]               # a subject alone
    out += [
        ("Re: [เลขรับ 12/2569] ขออนุญาตก่อสร้าง", "ส่งเอกสารเพิ่มเติมตามที่แจ้งครับ\n\n" + OUR_REPLY),
        ("ขอสำเนา Statement ภาษีโรงเรือน", "เรียน เจ้าหน้าที่\nขอสำเนา statement ภาษีที่ดินและสิ่งปลูกสร้างปี 2568 "
         "ของบริษัท Siam Example Co., Ltd. เพื่อใช้ประกอบการ audit ครับ\nขอบคุณครับ\n-- \nSomchai Jaidee | Finance "
         "Manager\nSiam Example Co., Ltd. | Tel. +66 2 000 0000 | www.siam-example.co.th"),
        ("แจ้งซ่อมไฟฟ้าส่องสว่าง", "ไฟถนนหน้าบ้านเลขที่ 12 หมู่ 3 ดับครับ รูปตามลิงก์ https://photos.app.goo.gl/"
         "AbCdEfGhIjKlMnOp"),
        ("ขอใบอนุญาตประกอบกิจการ", "<เนื้อหาอยู่ในไฟล์แนบ>\n\nSent from my iPhone"),
        ("FW: ร้องเรียนเสียงดังจากโรงงาน", "FYI\n\n________________________________\nFrom: สมหญิง\n"
         "ขอร้องเรียนเสียงดังจากโรงงานข้างบ้านตอนกลางคืนค่ะ"),
        ("ขอข้อมูลข่าวสารตาม พ.ร.บ. ข้อมูลข่าวสาร", "ขอสำเนา TOR และสัญญาจ้างโครงการ Smart City ปี 2568\n\n"
         "CONFIDENTIALITY NOTICE: The information in this e-mail is confidential and may be legally privileged. "
         "It is intended solely for the addressee."),
        ("สมัครงาน ตำแหน่ง IT Support", "เรียน ฝ่ายบุคคล\nดิฉันขอสมัครงานตำแหน่ง IT Support แนบ Resume และ "
         "Transcript มาด้วยค่ะ"),
    ]
    return out


def test_the_share_of_mail_that_gets_the_right_language():
    """Printed: the share of the corpus, labelled by hand, that gets the reply in its language
    (English first for every language but Thai), and the share of Thai mail that gets it Thai
    first. The goal is 98 % or more of each."""
    need_corpus()
    labelled = labels()
    assert set(labelled) == set(FILES), "tests/fixtures/corpus_languages.tsv labels every corpus mail"
    right = total = 0
    missed = []
    for name in FILES:
        language = labelled[name]
        if language in ("-", "none"):        # unparseable (never answered), or no letters (no language)
            if language == "none":
                letter = parse((CORPUS / name).read_bytes())
                assert detect(letter.subject, letter.body_text) == THAI, name    # the agency's own
            continue
        try:
            letter = parse((CORPUS / name).read_bytes())
        except Unparseable:
            pytest.fail(f"{name} is labelled {language} but does not parse")
        expected = THAI if language == "th" else ENGLISH
        total += 1
        if detect(letter.subject, letter.body_text) == expected:
            right += 1
        else:
            missed.append(f"{name} ({language})")
    thai = _thai_mail()
    thai_right = sum(detect(s, b) == THAI for s, b in thai)
    thai_missed = [s for s, b in thai if detect(s, b) != THAI]
    print(f"\nreply language: corpus {right}/{total} = {right / total:.1%} in the sender's language "
          f"(English first for every language but Thai); Thai mail {thai_right}/{len(thai)} = "
          f"{thai_right / len(thai):.1%} Thai first; missed {missed[:5]} {thai_missed[:5]}")
    assert total >= 400 and len(thai) >= 20
    assert right / total >= 0.98 and thai_right / len(thai) >= 0.98


def test_a_message_registered_by_hand_keeps_its_language():
    """An officer registering a quarantined message: the language of the message as it came."""
    from mailbot.intake.service import _language

    assert _language(_mail("Building permit", plain="Please find the plans attached.")) == ENGLISH
    assert _language(_mail("ขออนุญาตก่อสร้าง", plain="รายละเอียดตามไฟล์แนบ")) == THAI
    assert _language(None) is None and _language(b"\r\n\r\n") is None       # unreadable: Thai, the agency's


def test_a_hostile_subject_or_body_is_read_in_linear_time():
    """A megabyte subject with no space and a body of addresses-like runs: the detector's patterns
    never backtrack over them (an unbounded \\S+@\\S+ took minutes on the hostile corpus)."""
    from mailbot.mail.language import detect

    assert detect("A" * 1_000_000, "") == "en"
    assert detect("ก" * 1_000_000, "") == "th" and detect("ก" * 1_000_000, "b" * 1_000_000) in ("th", "en")
    assert detect("x", ("y" * 63 + "@") * 20_000) == "en"
