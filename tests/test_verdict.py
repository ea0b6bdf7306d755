"""The verdict (pure): one chain of small named rules decides what happens to a message.
Letters are built with email.message.EmailMessage and read with mailbot.mail.parse.parse,
as the cycle reads them; facts (a duplicate, the case named, today's count) are given."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot import kinds
from mailbot.config import TrustConfig, load_rules
from mailbot.intake import verdict as v
from mailbot.intake.verdict import Duplicate, Facts, KnownCase, Settings, decide, prepare
from mailbot.mail.parse import parse

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "rules.yaml")
OWN = "saraban@example.go.th"
WHEN = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)
SETTINGS = Settings(rules=RULES, own_address=OWN, own_domains=("example.go.th",), own_names=("เทศบาลตำบลบ้านตัวอย่าง",),
                    staff=frozenset({"clerk@example.go.th"}), trust=TrustConfig(authserv_id="mx.example.go.th"))


def mail(subject="ขออนุญาตก่อสร้างอาคาร", sender="somchai@example.com", body="เรียน นายกเทศมนตรี", headers=(),
         attach=False):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = OWN
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@example.com>"
    for k, val in headers:
        msg[k] = val
    msg.set_content(body)
    if attach:
        msg.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="คำขอ.pdf")
    return parse(bytes(msg))


def test_the_chain_is_a_table_in_the_documented_order():
    assert [name for name, _ in v.CHAIN] == [
        "too_large", "own_alert", "duplicate", "automatic", "claims_to_be_us", "empty_answer", "inquiry", "held",
        "followup", "automatic_cap", "classify"]
    assert all(callable(rule) for _, rule in v.CHAIN)


def test_every_verdict_names_an_outcome_and_a_reply_kind_from_the_tables():
    letters = [mail(), mail("ทำบัตรประชาชน"), mail("hello"), mail(headers=[("Auto-Submitted", "auto-replied")]),
               mail(sender=OWN), mail("สถานะ 1/2569")]
    facts = [Facts(), Facts(known=KnownCase("1/2569", ("somchai@example.com",))), Facts(too_large=True, size_mb=30),
             Facts(own_alert=True), Facts(duplicate=Duplicate(1, "registered", "registered", "1/2569"))]
    for letter, f in itertools.product(letters, facts):
        out = decide(letter, WHEN, SETTINGS, f)
        assert out.outcome in kinds.OUTCOMES, out
        assert out.reply is None or out.reply in kinds.MAIL_KINDS, out
        assert out.rule in dict(v.CHAIN)
        assert out.folder_key == kinds.OUTCOMES[out.outcome].folder


@pytest.mark.parametrize("letter,facts,outcome,rule,reply", [
    (mail(), Facts(), "registered", "classify", "receipt"),
    (mail("ทำบัตรประชาชน"), Facts(), "wrong_agency", "classify", "referral"),
    (mail("hello"), Facts(), "registered", "classify", "unclassified"),
    (mail(), Facts(too_large=True, size_mb=40), "quarantined", "too_large", "too_large"),
    (mail(headers=[("Auto-Submitted", "auto-replied")]), Facts(too_large=True, size_mb=40), "quarantined", "too_large",
     None),                                                                    # an automatic message is not told
    (mail(), Facts(own_alert=True), "own_alert", "own_alert", None),
    (mail(), Facts(duplicate=Duplicate(3, "registered", "Registered", "1/2569")), "duplicate", "duplicate", None),
    (mail(headers=[("Auto-Submitted", "auto-replied")]), Facts(known=KnownCase("1/2569", ("somchai@example.com",))),
     "automatic", "automatic", None),                                          # an out-of-office answering a receipt
    (mail(headers=[("X-Loop", OWN)]), Facts(), "automatic", "automatic", None),
    (mail(sender=OWN), Facts(), "registered", "claims_to_be_us", "receipt"),   # composed? no: answered=False
    (mail("Re: x", body="> quoted"), Facts(replies_to_us=True), "automatic", "empty_answer", None),
    (mail("สถานะ 9/2569"), Facts(), "followup", "inquiry", "status_private"),   # a number never issued
    (mail("สถานะ 1/2569"), Facts(known=KnownCase("1/2569", ("somchai@example.com",))), "followup", "inquiry", "status"),
    (mail("สถานะ 1/2569", sender="other@example.com"), Facts(known=KnownCase("1/2569", ("somchai@example.com",))),
     "followup", "inquiry", "status_private"),
    (mail(headers=[("X-Spam-Flag", "YES")]), Facts(), "registered", "held", "receipt"),
    (mail("[เลขรับ 1/2569] เพิ่มเติม", attach=True), Facts(known=KnownCase("1/2569", ("somchai@example.com",))),
     "followup", "followup", "followup"),
    (mail("[เลขรับ 1/2569] เพิ่มเติม", sender="x@example.com"), Facts(known=KnownCase("1/2569", ("somchai@example.com",))),
     "registered", "classify", "unclassified"),                               # someone else's case: linked
    (mail("ขอข้อมูล", sender="notifications@example.com"), Facts(cases_today=3), "automatic", "automatic_cap", None),
    (mail("ขอข้อมูล", sender="notifications@example.com"), Facts(cases_today=2), "registered", "classify", "unclassified"),
])
def test_each_rule(letter, facts, outcome, rule, reply):
    out = decide(letter, WHEN, SETTINGS, facts)
    assert (out.outcome, out.rule, out.reply) == (outcome, rule, reply), out.reason


def test_flags_holds_and_links():
    spoof = decide(mail(sender=OWN), WHEN, SETTINGS)
    assert spoof.flag and not spoof.answered and spoof.opening is not None
    assert any("อ้างเป็นอีเมลของหน่วยงาน" in r for r in spoof.opening.remarks)
    spam = decide(mail(headers=[("X-Spam-Flag", "YES")]), WHEN, SETTINGS)
    assert spam.flag and spam.answered and spam.opening.held == spam.flag     # composed, held for the officer
    linked = decide(mail("[เลขรับ 1/2569] เพิ่มเติม", sender="x@example.com"), WHEN, SETTINGS,
                    Facts(known=KnownCase("1/2569", ("somchai@example.com",))))
    assert linked.linked_case == "1/2569" and linked.opening.linked_to == "1/2569"


def test_a_secret_urgent_request_is_marked_and_its_subject_masked():
    p = prepare(mail("ลับ ด่วนที่สุด ขออนุญาตก่อสร้าง"), WHEN, SETTINGS)
    assert p.triage.secret and p.triage.urgent and p.public_subject == "(เรื่องลับ)"
    out = v.verdict(p, Facts(), SETTINGS)
    assert "ชั้นความลับ: ลับ" in out.opening.remarks


def test_the_verdict_does_no_io():
    """Only pure modules: the boundary test holds the import rule; here, no clock either."""
    import ast

    tree = ast.parse((REPO / "mailbot" / "intake" / "verdict.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not {"now", "utcnow", "today", "open", "execute", "connect"} & names


OTHER_AGENCIES = [
    "สอบถามเรื่อง เลขรับ 12/2569 ของศูนย์ดำรงธรรม", "ศูนย์ดำรงธรรม เลขรับ 12/2569 ขอทราบผล",
    "เลขรับ 45/2569 สำนักนายกรัฐมนตรี", "สำนักนายกรัฐมนตรี เลขรับที่ 45/2569", "หนังสือถึงผู้ว่าราชการจังหวัด เลขรับ 3/2569",
    "เลขรับ 3/2569 ผู้ว่าราชการจังหวัด", "นายอำเภอ เลขรับ 8/2569 เรื่องที่ดิน", "เลขรับ 8/2569 ของนายอำเภอเมือง",
    "ที่ดินจังหวัด เลขรับ 77/2569", "เลขรับ 77/2569 (ที่ดินจังหวัด)", "ป.ป.ช. เลขรับ 5/2569", "เลขรับ 5/2569 ของ ป.ป.ช.",
    "สตง. เลขรับ 9/2569 ตรวจสอบ", "เลขรับ 9/2569 สตง.", "Revenue Department receipt no. 3/2569",
    "receipt no. 3/2569 of the Revenue Department", "Land Office receipt 4/2569", "receipt 4/2569 from the Land Office",
    "กรมที่ดิน เลขที่รับ 15/2569", "สถานะ 15/2569 ของกรมที่ดิน", "สรรพากร เลขรับ 2/2569 คืนภาษี",
    "ติดตามเลขรับ 6/2569 ที่ว่าการอำเภอเมือง", "ที่ว่าการอำเภอเมือง สถานะ 6/2569", "อบต.หนองบัว เลขรับ 11/2569",
    "เลขรับ 11/2569 อบต.หนองบัว", "เทศบาลนครขอนแก่น เลขรับ 31/2569", "เลขรับ 31/2569 ของเทศบาลนครขอนแก่น",
    "โรงพยาบาลศูนย์ เลขรับ 10/2569", "สภ.เมือง เลขรับ 13/2569 แจ้งความ", "ศาลากลางจังหวัด สถานะ 14/2569",
    "ผู้ตรวจการแผ่นดิน เลขรับ 16/2569", "เลขรับ 16/2569 ผู้ตรวจการแผ่นดิน", "กระทรวงมหาดไทย เลขรับ 17/2569",
    "ป.ป.ท. เลขรับ 18/2569",
]


@pytest.mark.parametrize("subject", OTHER_AGENCIES)
def test_another_agencys_number_is_a_new_case_with_the_number_in_a_note(subject):
    """Only our own tag or our own number links a mail to a case: an agency named before or after
    the number makes it someone else's; the mail is a new case and the number is kept in a note."""
    known = Facts(known=KnownCase(subject.split("/")[0].split()[-1] + "/2569", ("somchai@example.com",)))
    letter = mail(subject)
    p = prepare(letter, WHEN, SETTINGS)
    assert p.ref is None, subject
    out = v.verdict(p, Facts(), SETTINGS)
    assert out.outcome in ("registered", "wrong_agency"), (subject, out.reason)
    if out.outcome == "registered":
        assert any("อ้างถึงเลขของหน่วยงานอื่น" in r for r in out.opening.remarks), out.opening.remarks
    assert known.known is not None


@pytest.mark.parametrize("subject,receipt", [
    ("ภาษีที่ดิน เลขรับ 3/2569", "3/2569"), ("ศูนย์เด็กเล็ก สถานะ 4/2569", "4/2569"),
    ("กองช่าง เลขรับ 5/2569", "5/2569"), ("เลขรับ 6/2569 ของเทศบาลตำบลบ้านตัวอย่าง", "6/2569"),
    ("Re: ขออนุญาตก่อสร้าง [เลขรับ 7/2569]", "7/2569"), ("สถานะ 8/2569", "8/2569"),
])
def test_our_own_numbers_still_link(subject, receipt):
    p = prepare(mail(subject), WHEN, SETTINGS)
    assert p.ref is not None and p.ref.receipt == receipt, subject
