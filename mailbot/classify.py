"""Classify (pure): Letter + Rules -> Decision.

Owns: the decision table. In order, first row that applies wins:

  ==============  ==========================================================
  automatic       bounce / auto-reply / list / no-reply sender,
                  or a reply to our automatic reply with nothing new in it
  registered      claims to be us (our own address, or our domain failing
   (flagged)      SPF/DKIM/DMARC): registered for the officer, never answered
  followup        subject carries a known receipt tag, or the threading
                  headers name our reply or the original request
  registered      a service's keyword or regex matches the subject
  wrong_agency    a referral's keyword or regex matches (and no service did)
  registered      nothing matched: unclassified, needs officer review
  ==============  ==========================================================

``quarantined`` is decided by the pipeline (unparseable / failed 3 times), not here.
What the message refers to (a known case) is looked up by the caller and passed in, so
this module stays free of I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .config import Referral, Rules, Service
from .parse import Letter
from .thai import clean_text, normalise, thai_digits_to_arabic

Outcome = Literal["registered", "wrong_agency", "automatic", "followup", "quarantined"]
OUTCOMES: tuple[str, ...] = ("registered", "wrong_agency", "automatic", "followup", "quarantined")

# "[เลขรับ 15/2569]", "เลขรับ ๑๕/๒๕๖๙", "เลขที่รับ 15/2569", "receipt 15/2569", "สถานะ 15/2569"
_TAG = re.compile(
    r"(?:เลข(?:ที่)?\s*(?:ทะเบียน)?\s*รับ(?:ที่)?|receipt(?:\s*no\.?)?|ref\.?|สถานะ(?:เรื่อง)?|status)"
    r"\s*[:#]?\s*(\d{1,7})\s*/\s*(\d{4})",
    re.IGNORECASE,
)
# words that make a message naming a receipt number a status inquiry (ติดตามสถานะ)
INQUIRY_WORDS = ("สถานะ", "status", "ติดตามเรื่อง", "ติดตามสถานะ", "ความคืบหน้า", "ถึงไหนแล้ว")


@dataclass(frozen=True)
class Match:
    kind: Literal["service", "referral", "none"]
    service: Service | None = None
    referral: Referral | None = None
    rule: str = ""          # e.g. "services[0] BLD"
    keyword: str = ""       # the keyword or regex that fired
    normalised: str = ""    # the subject as compared
    number: int = 0         # the rule's place in its list, counted from 1 as people count

    @property
    def label(self) -> str:
        """The first line of `mailbot rules test`: service code, agency, or 'unclassified'."""
        if self.service:
            return self.service.code
        if self.referral:
            return self.referral.agency
        return "unclassified"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    match: Match
    reason: str                          # one line, for the officer and the log
    case_receipt: str | None = None      # followup: the case it belongs to
    inquiry: bool = False                # followup that asks for the case's status
    flag: str = ""                       # registered but never answered automatically: why


def match_subject(subject: str, rules: Rules) -> Match:
    """Services first, then referrals; within each, file order; first hit wins."""
    norm = normalise(subject)
    readable = thai_digits_to_arabic(clean_text(subject))
    for kind, items in (("service", rules.services), ("referral", rules.referrals)):
        for i, item in enumerate(items):
            label = f"{kind}s[{i}] " + (item.code if kind == "service" else item.agency)  # type: ignore[union-attr]
            for kw in item.keywords:
                if normalise(kw) in norm:
                    return _hit(kind, item, label, kw, norm)
            for pattern in item.regex:
                if re.search(pattern, readable, re.IGNORECASE):
                    return _hit(kind, item, label, f"regex {pattern}", norm)
    return Match(kind="none", normalised=norm)


def _hit(kind: str, item: Service | Referral, label: str, kw: str, norm: str) -> Match:
    number = int(label.split("[", 1)[1].split("]", 1)[0]) + 1
    if kind == "service":
        return Match(kind="service", service=item, rule=label, keyword=kw, normalised=norm,  # type: ignore[arg-type]
                     number=number)
    return Match(kind="referral", referral=item, rule=label, keyword=kw, normalised=norm,  # type: ignore[arg-type]
                 number=number)


def explain(decision: "Decision") -> tuple[str, str]:
    """The decision as an officer reads it (Thai) and its English line; rules counted from 1."""
    m = decision.match
    how_th = f'คำสำคัญ "{m.keyword}"' if not m.keyword.startswith("regex ") else f"รูปแบบ {m.keyword[6:]}"
    if decision.outcome == "automatic":
        return (f"อีเมลอัตโนมัติ ไม่ตอบกลับ ({decision.reason})", f"automatic mail, not answered ({decision.reason})")
    if decision.outcome == "followup" and decision.inquiry:
        return (f"สอบถามสถานะเรื่องเลขรับ {decision.case_receipt}: ตอบสถานะเฉพาะผู้ยื่นเรื่อง ไม่ออกเลขรับใหม่",
                f"status inquiry about case {decision.case_receipt}: answered only to its requester, no new number")
    if decision.outcome == "followup":
        return (f"ติดตามเรื่องเดิมเลขรับ {decision.case_receipt}: บันทึกในเรื่องเดิม ไม่ออกเลขรับใหม่",
                f"follow-up on case {decision.case_receipt}: noted on that case, no new number")
    if decision.flag:
        return (f"ลงทะเบียนรับและทำเครื่องหมายให้เจ้าหน้าที่ตรวจ ไม่ตอบอัตโนมัติ ({decision.flag})",
                f"registered and flagged for the officer, no automatic reply ({decision.flag})")
    if decision.outcome == "registered" and m.service is not None:
        return (f'ลงทะเบียนรับ: บริการ "{m.service.name}" ({m.service.code}) ตามกฎบริการข้อที่ {m.number} {how_th}',
                f"registered: service {m.service.code} (services rule {m.number}, {m.keyword})")
    if decision.outcome == "wrong_agency" and m.referral is not None:
        return (f"แนะนำหน่วยงานอื่น: {m.referral.agency} ตามกฎหน่วยงานอื่นข้อที่ {m.number} {how_th} ไม่ออกเลขรับ",
                f"wrong agency: referred to {m.referral.agency} (referrals rule {m.number}, {m.keyword}); no number")
    return ("ลงทะเบียนรับ รอเจ้าหน้าที่คัดแยก: ไม่ตรงกฎใด (คำขอทางอิเล็กทรอนิกส์ไม่ถูกปฏิเสธ)",
            "registered for officer review: no rule matched (an electronic request is never refused)")


def receipt_tags(text: str) -> list[str]:
    """Receipt numbers named in a text, as 'N/YYYY' (Thai digits accepted)."""
    text = thai_digits_to_arabic(clean_text(text or ""))
    return list(dict.fromkeys(f"{int(n)}/{y}" for n, y in _TAG.findall(text)))


def is_inquiry(letter: Letter) -> bool:
    """A short question about a case's progress, not a submission of documents."""
    if letter.attachments and any(not a.inline for a in letter.attachments):
        return False
    subject = normalise(letter.subject)
    return any(normalise(w) in subject for w in INQUIRY_WORDS)


def is_own(addr: str | None, own_address: str) -> bool:
    return bool(addr) and addr.strip().lower() == own_address.strip().lower()


def claims_to_be_us(letter: Letter, own_address: str, own_domains: tuple[str, ...] = ()) -> str:
    """Why a letter pretends to come from the agency, or "" (our address; our domain failing SPF/DKIM/DMARC)."""
    if is_own(letter.from_addr, own_address):
        return "sent from our own address"
    domain = (letter.from_addr or "").rsplit("@", 1)[-1].lower()
    domains = own_domains or (own_address.rsplit("@", 1)[-1].lower(),)
    if domain in domains and letter.auth_failures:
        return f"from our own domain but {', '.join(letter.auth_failures)}"
    return ""


def decide(
    letter: Letter,
    rules: Rules,
    *,
    own_address: str,
    own_domains: tuple[str, ...] = (),
    known_case: str | None = None,
    replies_to_us: bool = False,
) -> Decision:
    """The outcome for one letter.

    known_case: receipt number of the existing case this letter refers to (by tag or by
    threading headers), as found by the caller; replies_to_us: its threading headers name a
    reply mailbot sent.
    """
    match = match_subject(letter.subject, rules)
    if letter.auto_signals:
        return Decision("automatic", match, "; ".join(letter.auto_signals))
    spoof = claims_to_be_us(letter, own_address, own_domains)
    if spoof:   # registered for the officer, flagged, never answered automatically
        return Decision("registered", match, f"flagged: {spoof}", flag=spoof)
    if replies_to_us and not letter.new_text and not letter.attachments:
        return Decision("automatic", match, "answer to our automatic reply with no new content")
    if known_case:
        if is_inquiry(letter):
            return Decision("followup", match, f"status inquiry about case {known_case}",
                            case_receipt=known_case, inquiry=True)
        return Decision("followup", match, f"refers to case {known_case}", case_receipt=known_case)
    if match.kind == "service":
        return Decision("registered", match, f"service {match.service.code} ({match.keyword})")  # type: ignore[union-attr]
    if match.kind == "referral":
        return Decision("wrong_agency", match, f"referral to {match.referral.agency} ({match.keyword})")  # type: ignore[union-attr]
    return Decision("registered", match, "unclassified: needs officer review")
