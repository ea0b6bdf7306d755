"""Classify (pure): a subject against the rules, and which receipt numbers are ours.

Owns: matching a subject to ``rules.yaml`` (``match_subject``: services before referrals, in
file order, after Thai normalisation), the signals a message gives about itself that the
verdict's rules read (``loop_signal``, ``claims_to_be_us``, ``is_inquiry``), and which receipt
numbers in a subject are ours (``receipt_refs`` / ``reference``): our tag, an explicit
"เลขรับ N/YYYY" or a status inquiry, never a number another agency is named with (before or
after it), another numbering format or a year that is not Buddhist Era. What happens to the
message is decided in ``verdict.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ..config import Referral, Rules, Service
from ..mail.parse import Letter
from ..thai import clean_text, normalise, thai_digits_to_arabic

_N = r"(\d{1,7})\s*/\s*(\d{4})(?![\d/])"
# our own tag, as replies.TAG_FORMAT writes it: "[เลขรับ 15/2569]" (spaces and Thai digits tolerated)
_OWN_TAG = re.compile(r"\[\s*เลข\s*รับ\s*" + _N + r"\s*\]")
# an explicit receipt number: "เลขรับ 15/2569", "เลขทะเบียนรับ ๑๕/๒๕๖๙", "เลขที่รับ 7 / 2569", "receipt no. 3/2570"
_EXPLICIT = re.compile(
    r"(?:เลข\s*(?:ที่\s*)?(?:ทะเบียน\s*)?รับ(?:\s*ที่)?|receipt(?:\s*(?:no\.?|number|#))?)\s*[:#]?\s*" + _N,
    re.IGNORECASE,
)
# a status inquiry naming a number the way our replies teach: "สถานะ 15/2569", "status 15/2569"
_STATUS = re.compile(r"(?:สถานะ\s*(?:เรื่อง)?|status)\s*[:#]?\s*" + _N, re.IGNORECASE)
# Words that name an agency other than this one (Thai, abbreviations, English). Not the agency's
# own units (กอง..., สำนักปลัด): a citizen may name the unit that has the case.
_AGENCY = (
    r"ที่ว่าการ|อำเภอ|อ\.|จังหวัด|จ\.|ศาลากลาง|สำนักงาน|สนง\.?|สำนักนายก(?:รัฐมนตรี)?|สปน\.?|กรม|กระทรวง|ศาล|"
    r"เทศบาล|ทต\.|ทม\.|ทน\.|อบต\.?|อบจ\.?|องค์การ|สถานี|สภ\.|สน\.|โรงพยาบาล|รพ\.|การไฟฟ้า|การประปา|ธนาคาร|"
    r"บริษัท|มหาวิทยาลัย|โรงเรียน|ตำรวจ|เขต|หน่วยงานอื่น|ศูนย์ดำรงธรรม|ศูนย์|ผู้ว่า(?:ราชการ)?(?:จังหวัด)?|นายอำเภอ|"
    r"ปลัดอำเภอ|ที่ดิน|สรรพากร|ป\.?ป\.?ช\.?|ป\.?ป\.?ท\.?|สตง\.?|สำนักงานการตรวจเงินแผ่นดิน|ผู้ตรวจการแผ่นดิน|"
    r"คณะกรรมการ|กกต\.?|สปสช\.?|ประกันสังคม|"
    r"district|province|provincial|office|court|ministry|department|police|bank|company|revenue|land\s+office|"
    r"governor|agency|bureau|commission|authority|municipality|city\s+hall|government"
)
# after a number: it belongs to someone else ("เลขรับ 1/2569 ของอำเภอ", "... ที่ว่าการอำเภอ", "(สนง.ที่ดิน)")
_FOREIGN_AFTER = re.compile(
    r"^\s*[(\[,:\-]?\s*(?:ของ|จาก|ที่|ณ|แห่ง|of|from|at|by|the)?\s*(?:the\s+)?(?P<who>" + _AGENCY + ")",
    re.IGNORECASE,
)
# before a number: an agency named first ("ศูนย์ดำรงธรรม เลขรับ 12/2569", "Revenue Department receipt no. 3/2569").
# Only names that cannot be the citizen's own words or one of our units: a subject says "ภาษีที่ดิน" or
# "ศูนย์เด็กเล็ก" before our number often enough. Read up to a separator before the number's words.
_AGENCY_BEFORE = (
    r"ศูนย์ดำรงธรรม|สำนักนายกรัฐมนตรี|สปน\.|ผู้ว่าราชการ|นายอำเภอ|ปลัดอำเภอ|ที่ว่าการอำเภอ|ศาลากลาง|ที่ดินจังหวัด|"
    r"สำนักงานที่ดิน|กรม\S+|กระทรวง\S+|สรรพากร|ป\.ป\.ช\.?|ป\.ป\.ท\.?|สตง\.?|สำนักงานการตรวจเงินแผ่นดิน|"
    r"ผู้ตรวจการแผ่นดิน|อำเภอ\S*|จังหวัด\S*|อบต\.\s*\S+|อบจ\.\s*\S+|เทศบาล\S*|ศาล\S*|โรงพยาบาล\S*|สภ\.\s*\S+|"
    r"revenue\s+department|land\s+office|district\s+office|provincial\s+\w+|ministry\s+of|department\s+of|"
    r"police|court|governor"
)
_FOREIGN_BEFORE = re.compile(r"(?P<who>" + _AGENCY_BEFORE + r")[^|;\[\]]{0,40}$", re.IGNORECASE)
OUR_YEARS = range(2500, 2700)    # receipt numbers are N/<Buddhist-Era year>
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
class ReceiptRef:
    """One receipt number found in a text, and whether it can be ours."""

    receipt: str                         # "15/2569" (Arabic digits)
    form: Literal["tag", "explicit", "status"]   # our tag / "เลขรับ N/YYYY" / "สถานะ N/YYYY"
    ours: bool                           # may name one of our cases
    why_not: str = ""                    # why it is not ours (another agency's, not a BE year)


@dataclass(frozen=True)
class Reference:
    """The receipt number a letter names, for the pipeline: look it up, then route it."""

    receipt: str
    tag: bool                            # our own subject tag "[เลขรับ N/YYYY]"
    inquiry: bool                        # a status question, not a submission


def match_subject(subject: str, rules: Rules) -> Match:
    """Services first, then referrals; within each, file order; first hit wins."""
    norm = normalise(subject)
    readable = thai_digits_to_arabic(clean_text(subject))
    for i, service in enumerate(rules.services):
        if (kw := _fires(service, norm, readable)) is not None:
            return Match(kind="service", service=service, rule=f"services[{i}] {service.code}", keyword=kw,
                         normalised=norm, number=i + 1)
    for i, referral in enumerate(rules.referrals):
        if (kw := _fires(referral, norm, readable)) is not None:
            return Match(kind="referral", referral=referral, rule=f"referrals[{i}] {referral.agency}", keyword=kw,
                         normalised=norm, number=i + 1)
    return Match(kind="none", normalised=norm)


@lru_cache(maxsize=4096)
def _keyword(keyword: str) -> str:
    """A rule's keyword normalised as subjects are (once, not for every message)."""
    return normalise(keyword)


def _fires(item: Service | Referral, norm: str, readable: str) -> str | None:
    """The rule's first keyword found in the normalised subject, else its first regex found in the
    readable subject ("regex <pattern>"), else None."""
    for kw in item.keywords:
        if _keyword(kw) in norm:
            return kw
    for pattern in item.regex:
        if re.search(pattern, readable, re.IGNORECASE):
            return f"regex {pattern}"
    return None


def receipt_refs(text: str, own_names: tuple[str, ...] = ()) -> list[ReceiptRef]:
    """Every receipt number a text names, in order, each marked ours or not.

    Ours: our tag "[เลขรับ N/YYYY]"; an explicit "เลขรับ N/YYYY" (also เลขทะเบียนรับ, เลขที่รับ, receipt no.)
    or "สถานะ N/YYYY" / "status N/YYYY" unless what follows names another agency ("... ของอำเภอ") that
    is not one of ``own_names``. Never ours: a year that is not Buddhist Era, and any other format
    ("เลขที่ 1/2569", "ที่ มท 0808/123", "หนังสือที่ 1/2569", "ref 1/2569") is not even a reference.
    """
    text = " ".join(thai_digits_to_arabic(clean_text(text or "")).split())
    found: dict[int, ReceiptRef] = {}
    forms: tuple[tuple[Literal["tag", "explicit", "status"], re.Pattern[str]], ...] = (
        ("tag", _OWN_TAG), ("explicit", _EXPLICIT), ("status", _STATUS))
    for form, pattern in forms:
        for m in pattern.finditer(text):
            if m.start(1) in found:   # this number was read already (inside our tag)
                continue
            receipt = f"{int(m.group(1))}/{m.group(2)}"
            why = ""
            if int(m.group(2)) not in OUR_YEARS:
                why = f"year {m.group(2)} is not a Buddhist-Era year"
            elif form != "tag":
                after = text[m.end(): m.end() + 80]
                before = text[max(0, m.start() - 60): m.start()]
                before = re.split(r"[\]|;]|\bRe\s*:|\bFwd?\s*:|ตอบกลับ\s*:", before)[-1]
                named = _FOREIGN_BEFORE.search(before)
                if _FOREIGN_AFTER.match(after) and not _names_us(after, own_names):
                    why = f"another agency's number ({' '.join(after.split()[:3])})"
                elif named and not _names_us(before[named.start():], own_names):
                    why = f"another agency's number ({named.group('who')} ...)"
            found[m.start(1)] = ReceiptRef(receipt, form, not why, why)
    return [found[k] for k in sorted(found)]


_CONNECTOR = re.compile(r"^\s*[(\[,]?\s*(?:ของ|จาก|ที่|ณ|of|from|at)?\s*", re.IGNORECASE)


def _names_us(after: str, own_names: tuple[str, ...]) -> bool:
    """What follows a number names this agency: its full name, or a first word its name starts with
    ("ของเทศบาล" for เทศบาลตำบลบ้านตัวอย่าง; not "ของเทศบาลนครขอนแก่น")."""
    tail = _CONNECTOR.sub("", after, count=1)     # the pattern matches at 0 always (all of it optional)
    rest = normalise(tail)
    word = normalise((re.match(r"[^\s,;:()\[\]]+", tail) or [""])[0])
    for name in own_names:
        own = normalise(name)
        if own and (rest.startswith(own) or (word and own.startswith(word))):
            return True
    return False


def receipt_tags(text: str, own_names: tuple[str, ...] = ()) -> list[str]:
    """Receipt numbers of ours named in a text, as 'N/YYYY' (Thai digits accepted)."""
    return list(dict.fromkeys(r.receipt for r in receipt_refs(text, own_names) if r.ours))


def is_inquiry(letter: Letter) -> bool:
    """A short question about a case's progress, not a submission of documents."""
    if letter.attachments and any(not a.inline for a in letter.attachments):
        return False
    subject = normalise(letter.subject)
    return any(normalise(w) in subject for w in INQUIRY_WORDS)


def reference(letter: Letter, own_names: tuple[str, ...] = ()) -> Reference | None:
    """The first receipt number of ours the subject names: which, our tag or not, an inquiry or not."""
    for ref in receipt_refs(letter.subject, own_names):
        if ref.ours:
            return Reference(ref.receipt, tag=ref.form == "tag", inquiry=is_inquiry(letter))
    return None


def is_own(addr: str | None, own_address: str) -> bool:
    return bool(addr and addr.strip().lower() == own_address.strip().lower())


def loop_signal(letter: Letter, own_address: str) -> str:
    """An X-Loop header naming our own address: the message went round through us already."""
    own = own_address.strip().lower()
    for value in letter.loops:
        if own and own in value.lower():
            return f"X-Loop: {own}"
    return ""


def claims_to_be_us(letter: Letter, own_address: str, own_domains: tuple[str, ...] = ()) -> str:
    """Why a letter pretends to come from the agency, or "" (our address; our domain failing SPF/DKIM/DMARC)."""
    if is_own(letter.from_addr, own_address):
        return "sent from our own address"
    domain = (letter.from_addr or "").rsplit("@", 1)[-1].lower()
    domains = own_domains or (own_address.rsplit("@", 1)[-1].lower(),)
    if domain in domains and letter.auth_failures:
        return f"from our own domain but {', '.join(letter.auth_failures)}"
    return ""
