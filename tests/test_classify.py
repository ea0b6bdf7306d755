"""Classification (pure): the rule table and the decision table, no I/O."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailbot.config import Rules, load_rules
from mailbot.intake.classify import match_subject, receipt_tags
from mailbot.intake.verdict import Facts, KnownCase, Settings
from mailbot.intake.verdict import decide as verdict_of
from mailbot.mail.parse import parse

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "rules.yaml")
OWN = "saraban@example.go.th"


@pytest.mark.parametrize("subject,label", [
    ("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", "BLD"),
    ("ขออนุญาต ก่อ สร้าง บ้าน", "BLD"),                      # spaces anywhere
    ("ขออนุญาต\u200bก่อสร้าง", "BLD"),                        # zero-width space
    ("ขออนุญาตก่่อสร้าง", "BLD"),                              # doubled tone mark
    ("ขออนุญาตก่อสร้่าง", "BLD"),                              # two tone marks on one consonant
    ("ขออนุญาตก่อสรา้ง", "BLD"),                               # tone mark typed after the vowel
    ("ชําระภาษีีที่ดิน", "TAX"),                                 # nikhahit + sara aa, doubled sara ii
    ("Building Permit request", "BLD"),                        # Latin, any case
    ("ชำระภาษีที่ดินและสิ่งปลูกสร้าง", "TAX"),
    ("ร้องเรียน เสียงดังจากโรงงาน", "CMP"),
    ("ขอทำบัตรประชาชนใหม่", "สำนักทะเบียนอำเภอเมือง (ที่ว่าการอำเภอ)"),
    ("ย้ายทะเบียนบ้าน", "สำนักทะเบียนอำเภอเมือง (ที่ว่าการอำเภอ)"),
    ("ขออนุญาตก่อสร้าง แนบสำเนาทะเบียนบ้าน", "BLD"),         # services before referrals
    ("ต่อภาษีรถยนต์", "สำนักงานขนส่งจังหวัด"),
    ("สวัสดีครับ", "unclassified"),
    ("", "unclassified"),
])
def test_starter_rules(subject, label):
    assert match_subject(subject, RULES).label == label


def test_match_reports_rule_keyword_and_normalised_subject():
    m = match_subject("ขออนุญาต ก่อ สร้าง บ้านเลขที่ ๑๒", RULES)
    assert m.rule == "services[0] BLD" and m.keyword == "ก่อสร้าง"
    assert m.normalised == "ขออนุญาตก่อสร้างบ้านเลขที่12"


def test_regex_rules_and_thai_digits():
    rules = Rules.model_validate({"services": [{"code": "X", "name": "x", "regex": [r"คำร้องที่\s*\d+"]}]})
    assert match_subject("คำร้องที่ ๔๒", rules).label == "X"


@pytest.mark.parametrize("text,tags", [
    ("Re: เรื่อง [เลขรับ 15/2569]", ["15/2569"]),
    ("ติดตามเรื่อง เลขรับ ๑๕/๒๕๖๙", ["15/2569"]),
    ("สอบถาม เลขที่รับ 7 / 2569", ["7/2569"]),
    ("receipt 3/2570", ["3/2570"]),
    ("บ้านเลขที่ 12/3", []),
])
def test_receipt_tags(text, tags):
    assert receipt_tags(text) == tags


def mk(headers: str, body: str = "ข้อความ") -> bytes:
    return (headers.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


def test_decision_table_order():
    settings = Settings(rules=RULES, own_address=OWN)
    when = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)

    def decide(letter, known_case=None, replies_to_us=False):
        known = KnownCase(known_case, (letter.from_addr,)) if known_case else None
        return verdict_of(letter, when, settings, Facts(known=known, replies_to_us=replies_to_us))

    base = "From: a@example.com\nSubject: ขออนุญาตก่อสร้าง"
    assert decide(parse(mk(base))).outcome == "registered"
    assert decide(parse(mk(base + "\nAuto-Submitted: auto-replied"))).outcome == "automatic"
    # a follow-up beats a fresh classification
    d = decide(parse(mk(base)), known_case="1/2569")
    assert d.outcome == "followup" and d.case_receipt == "1/2569"
    # automatic beats follow-up (an out-of-office answering our receipt)
    d = decide(parse(mk(base + "\nAuto-Submitted: auto-replied")), known_case="1/2569")
    assert d.outcome == "automatic"
    # our own address: registered for the officer, flagged, never answered
    d = decide(parse(mk(f"From: {OWN}\nSubject: x")))
    assert d.outcome == "registered" and d.flag
    # wrong agency
    assert decide(parse(mk("From: a@example.com\nSubject: ทำบัตรประชาชน"))).outcome == "wrong_agency"
    # nothing matched: still registered
    d = decide(parse(mk("From: a@example.com\nSubject: hello")))
    assert d.outcome == "registered" and d.match.kind == "none"
    # a reply to our reply with nothing new
    d = decide(parse(mk("From: a@example.com\nSubject: Re: x", "> quoted")), replies_to_us=True)
    assert d.outcome == "automatic"
