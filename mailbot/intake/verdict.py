"""Verdict (pure): what happens to one message, decided once, by one chain of small named rules.

Owns: the chain every message goes through, declared as a table in the manner of Mailman's
``chains/builtin.py`` (first rule that decides wins), and the ``Verdict`` it returns — the
outcome (a key of ``kinds.OUTCOMES``, whose row gives the folder), the reason for the officer,
the case to open or the case the message belongs to, the reply kind (a key of
``kinds.MAIL_KINDS``) and whether it is held, and the notes for the register.

  ==================  =====================================================================
  too_large           over limits.max_message_mb: quarantined with its bytes, the sender told
                      the limit (not when automatic or held)
  own_alert           an alert mailbot sent to its own mailbox: left in the inbox, flagged
  duplicate           the same message again: filed with the first copy, no number, no reply
  (staff forward)     ``prepare``: a trusted staff forward is acted on as the citizen's original
  automatic           bounce, auto-reply, list, no-reply sender, X-Loop naming us
  claims_to_be_us     our own address, or our domain failing SPF/DKIM/DMARC: registered,
                      flagged, never answered
  empty_answer        an answer to our automatic reply with nothing new: automatic
  inquiry             a status inquiry naming our receipt number: the requester gets the
                      status; anyone else, or a number we never issued, the neutral note
  held                trust says hold (authentication failed, spam, blocklist): registered,
                      flagged, the reply composed but held; linked to a case it names
  followup            names a known case and the sender may act on it
  automatic_cap       a new case from an automatic-looking sender over its daily cap
  classify            a service's keyword (registered, receipt), a referral's (wrong agency,
                      referral), or nothing (registered for the officer, unclassified)
  ==================  =====================================================================

No I/O: the cycle (and the console, for a message an officer registers by hand) calls
``prepare`` on the parsed letter, looks up what the chain needs (``Facts``: a duplicate, the
case it names, today's count from the sender), then ``verdict``; ``intake.record`` carries the
verdict out. Quarantine for an unreadable message is decided by the cycle before any of this.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable

from .. import kinds
from ..casework import trust
from ..casework.triage import Triage, mask_subject, triage
from ..config import Config, Rules, Service, TrustConfig
from ..mail import forwarded
from ..mail.parse import Letter
from .classify import (
    Match,
    Reference,
    claims_to_be_us,
    is_inquiry,
    loop_signal,
    match_subject,
    receipt_refs,
    reference,
)

O = kinds.Outcome


@dataclass(frozen=True)
class Settings:
    """What the chain reads from the configuration (made once per cycle)."""

    rules: Rules
    own_address: str
    own_domains: tuple[str, ...] = ()
    own_names: tuple[str, ...] = ()          # the agency's name: "เลขรับ 1/2569 ของ<our name>" is ours
    staff: frozenset[str] = frozenset()
    trust: TrustConfig = field(default_factory=TrustConfig)
    max_message_mb: float = 25.0

    @classmethod
    def of(cls, cfg: Config, rules: Rules) -> "Settings":
        return cls(rules=rules, own_address=cfg.agency.address, own_domains=tuple(cfg.agency.own_domains),
                   own_names=(cfg.agency.name,), staff=frozenset(a.lower() for a in cfg.staff), trust=cfg.trust,
                   max_message_mb=cfg.limits.max_message_mb)


@dataclass(frozen=True)
class Prepared:
    """The letter as the chain sees it, before anything is looked up."""

    outer: Letter                  # as it arrived
    letter: Letter                 # what is acted on: the citizen's original for a trusted staff forward
    received: datetime
    screening: trust.Screening     # judged on the outer message
    hold: str                      # why no automatic reply may go out ("" : it may)
    via: str | None                # the staff address a trusted forward came from
    ref: Reference | None          # the receipt number of ours the subject names
    looks_automatic: str           # why the sender looks machine-made ("" : it does not)
    triage: Triage                 # urgency and secrecy

    @property
    def public_subject(self) -> str:
        """The subject as replies and public outputs may show it ("(เรื่องลับ)" when secret)."""
        return mask_subject(self.letter.subject, self.triage)


def prepare(letter: Letter, received: datetime, settings: Settings) -> Prepared:
    """Screen the outer message, unpack a trusted staff forward, find the receipt number named."""
    screening = trust.screen(letter, settings.trust)
    hold = screening.hold
    via = None
    fwd = trust.staff_forward(letter, screening, staff=settings.staff, own_address=settings.own_address,
                              own_domains=settings.own_domains)
    if fwd.flag:
        hold = fwd.flag
    acted_on = letter
    if fwd.take:
        original = forwarded.extract(letter, letter.embedded)
        if original is not None:   # wrong channel: registered under the citizen who wrote
            via = letter.from_addr
            acted_on = replace(letter, subject=original.subject, from_name=original.from_name,
                               from_addr=original.from_addr, reply_to=original.from_addr,
                               body_text=original.text, new_text=original.text,
                               attachments=original.attachments, message_id=None,
                               in_reply_to=(), references=())
    return Prepared(letter, acted_on, received, screening, hold, via,
                    reference(acted_on, own_names=settings.own_names), trust.looks_automatic(acted_on),
                    triage(acted_on.subject, received))


@dataclass(frozen=True)
class KnownCase:
    """The case a message names (by our tag, an explicit number, or its threading headers)."""

    receipt: str
    addresses: tuple[str | None, ...]   # its sender and reply addresses on file


@dataclass(frozen=True)
class Duplicate:
    """The first copy of the same message, already decided."""

    row: int
    outcome: str
    target_folder: str | None
    case_id: int | None = None
    case_receipt: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the cycle looked up for the chain (no I/O happens after this)."""

    too_large: bool = False
    size_mb: float = 0.0
    own_alert: bool = False
    duplicate: Duplicate | None = None
    known: KnownCase | None = None
    replies_to_us: bool = False            # its threading headers name a reply mailbot sent
    cases_today: int = 0                   # new cases this sender opened today (Asia/Bangkok)


@dataclass(frozen=True)
class Opening:
    """A case to open: what the register row gets besides the letter itself."""

    service: Service | None
    remarks: tuple[str, ...] = ()
    linked_to: str | None = None           # receipt of the case this request named (someone else's)
    held: str = ""                          # never answered automatically until released: why


@dataclass(frozen=True)
class Verdict:
    outcome: kinds.Outcome                  # its row in kinds.OUTCOMES gives the folder
    reason: str                             # one line, for the officer and the log
    rule: str = ""                          # the chain's rule that decided
    match: Match | None = None              # what the subject matched
    reply: str | None = None                # a key of kinds.MAIL_KINDS, or no reply
    flag: str = ""                          # never answered automatically: why (a reply is held)
    answered: bool = True                   # False: nothing is composed at all (claims to be us)
    case_receipt: str | None = None         # followup: the case it belongs to
    inquiry: bool = False                   # followup asking for the case's status
    neutral: bool = False                   # inquiry answered only with the neutral note
    linked_case: str | None = None          # registered as a new request naming this case
    opening: Opening | None = None          # registered: the case to open
    duplicate: Duplicate | None = None
    kept_in_inbox: bool = False             # left in the watched folder, flagged (our own alert)

    @property
    def folder_key(self) -> str:
        """The outcome's folder (a key of ``folders:`` in mailbot.yaml; "" : no folder of its own)."""
        return kinds.OUTCOMES[self.outcome].folder


Rule = Callable[[Prepared, Facts, Settings], "Verdict | None"]


# ---------------------------------------------------------------------------- the rules

def too_large(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    if not f.too_large:
        return None
    told = not p.outer.auto_signals and not p.screening.hold
    return Verdict(O.QUARANTINED, f"too large: {f.size_mb:.1f} MB > limit {s.max_message_mb:g} MB",
                   reply="too_large" if told else None)


def own_alert(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    if not f.own_alert:
        return None
    return Verdict(O.OWN_ALERT, "mailbot alert kept in the inbox", kept_in_inbox=True)


def duplicate(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    d = f.duplicate
    if d is None:
        return None
    return Verdict(O.DUPLICATE, f"duplicate of message #{d.row} ({d.outcome})", duplicate=d,
                   case_receipt=d.case_receipt)


def automatic(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    signals = list(p.letter.auto_signals)
    loop = loop_signal(p.letter, s.own_address)
    if loop:
        signals.append(loop)
    return Verdict(O.AUTOMATIC, "; ".join(signals)) if signals else None


def claims_to_be_us_rule(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    spoof = claims_to_be_us(p.letter, s.own_address, s.own_domains)
    if not spoof:
        return None
    return _register(p, f, s, f"flagged: {spoof}", flag=spoof, answered=False, linked=_receipt(f))


def empty_answer(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    if f.replies_to_us and not p.letter.new_text and not p.letter.attachments:
        return Verdict(O.AUTOMATIC, "answer to our automatic reply with no new content")
    return None


def inquiry(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    known = _receipt(f)
    asks = (p.ref.inquiry if p.ref is not None else False) or (known is not None and is_inquiry(p.letter))
    if not asks:
        return None
    if known is None and p.ref is not None:
        # a number we never issued (or not yet): no case, the neutral note, the counter never shown
        return Verdict(O.FOLLOWUP, f"status inquiry about unknown number {p.ref.receipt}: neutral note",
                       reply="status_private", inquiry=True, neutral=True, flag=p.hold)
    if f.known is None:
        return None
    if _may_act(p, f, s):
        requester = (p.letter.from_addr or "").lower() in {a.lower() for a in f.known.addresses if a}
        return Verdict(O.FOLLOWUP, f"status inquiry about case {known}" + (f" (held: {p.hold})" if p.hold else ""),
                       reply="status" if requester else "status_private", case_receipt=known, inquiry=True,
                       flag=p.hold)
    return Verdict(O.FOLLOWUP, f"status inquiry about case {known} from someone else: neutral note",
                   reply="status_private", case_receipt=known, inquiry=True, neutral=True, flag=p.hold)


def held(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    if not p.hold:
        return None
    known = _receipt(f)
    return _register(p, f, s, f"flagged: {p.hold}" + (f"; names case {known}" if known else ""), flag=p.hold,
                     linked=known)


def followup(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    known = _receipt(f)
    if known is None or not _may_act(p, f, s):
        return None
    return Verdict(O.FOLLOWUP, f"refers to case {known}", reply=kinds.OUTCOMES[O.FOLLOWUP].reply, case_receipt=known)


def automatic_cap(p: Prepared, f: Facts, s: Settings) -> Verdict | None:
    if f.known is not None or not p.letter.from_addr:
        return None
    over = trust.new_case_cap(p.looks_automatic, f.cases_today, s.trust.automatic_new_cases_per_day)
    return Verdict(O.AUTOMATIC, over) if over else None


def classify(p: Prepared, f: Facts, s: Settings) -> Verdict:
    known = _receipt(f)
    linked = f"names case {known} but is not from its requester: a new request linked to it" if known else ""
    tail = f"; {linked}" if linked else ""
    match = match_subject(p.letter.subject, s.rules)
    if match.service is not None:
        return _register(p, f, s, f"service {match.service.code} ({match.keyword}){tail}", linked=known, match=match)
    if match.referral is not None and not known:
        return Verdict(O.WRONG_AGENCY, f"referral to {match.referral.agency} ({match.keyword})", match=match,
                       reply=kinds.OUTCOMES[O.WRONG_AGENCY].reply)
    return _register(p, f, s, f"unclassified: needs officer review{tail}", linked=known, match=match)


# The chain, in order: the first rule that returns a verdict decides. ``classify`` always does.
CHAIN: tuple[tuple[str, Rule], ...] = (
    ("too_large", too_large),
    ("own_alert", own_alert),
    ("duplicate", duplicate),
    ("automatic", automatic),
    ("claims_to_be_us", claims_to_be_us_rule),
    ("empty_answer", empty_answer),
    ("inquiry", inquiry),
    ("held", held),
    ("followup", followup),
    ("automatic_cap", automatic_cap),
    ("classify", classify),
)


def verdict(p: Prepared, facts: Facts, settings: Settings) -> Verdict:
    """The one decision for one message."""
    for name, rule in CHAIN:
        found = rule(p, facts, settings)
        if found is not None:
            if found.match is None:
                found = replace(found, match=match_subject(p.letter.subject, settings.rules))
            return replace(found, rule=name)
    raise AssertionError("classify always decides")   # pragma: no cover


def decide(letter: Letter, received: datetime, settings: Settings, facts: Facts = Facts()) -> Verdict:
    """``prepare`` and ``verdict`` in one call (``mailbot rules test``, the console's checks)."""
    return verdict(prepare(letter, received, settings), facts, settings)


def explain(decision: Verdict) -> tuple[str, str]:
    """The decision as an officer reads it (Thai) and its English line; rules counted from 1."""
    m = decision.match
    assert m is not None
    how_th = f'คำสำคัญ "{m.keyword}"' if not m.keyword.startswith("regex ") else f"รูปแบบ {m.keyword[6:]}"
    if decision.outcome == O.AUTOMATIC:
        return (f"อีเมลอัตโนมัติ ไม่ตอบกลับ ({decision.reason})", f"automatic mail, not answered ({decision.reason})")
    if decision.outcome == O.FOLLOWUP and decision.neutral:
        return ("สอบถามสถานะเลขรับที่ไม่มีในระบบ: ตอบข้อความกลาง ไม่สร้างเรื่องใหม่ ไม่เปิดเผยเลขรับล่าสุด",
                "inquiry about a number never issued: the neutral note, no case, the counter never shown")
    if decision.outcome == O.FOLLOWUP and decision.inquiry:
        return (f"สอบถามสถานะเรื่องเลขรับ {decision.case_receipt}: ตอบสถานะเฉพาะผู้ยื่นเรื่อง ไม่ออกเลขรับใหม่",
                f"status inquiry about case {decision.case_receipt}: answered only to its requester, no new number")
    if decision.outcome == O.FOLLOWUP:
        return (f"ติดตามเรื่องเดิมเลขรับ {decision.case_receipt}: บันทึกในเรื่องเดิม ไม่ออกเลขรับใหม่",
                f"follow-up on case {decision.case_receipt}: noted on that case, no new number")
    if decision.flag:
        return (f"ลงทะเบียนรับและทำเครื่องหมายให้เจ้าหน้าที่ตรวจ ไม่ตอบอัตโนมัติ ({kinds.explain(decision.flag)})",
                f"registered and flagged for the officer, no automatic reply ({decision.flag})")
    if decision.outcome == O.REGISTERED and m.service is not None:
        return (f'ลงทะเบียนรับ: บริการ "{m.service.name}" ({m.service.code}) ตามกฎบริการข้อที่ {m.number} {how_th}',
                f"registered: service {m.service.code} (services rule {m.number}, {m.keyword})")
    if decision.outcome == O.WRONG_AGENCY and m.referral is not None:
        return (f"แนะนำหน่วยงานอื่น: {m.referral.agency} ตามกฎหน่วยงานอื่นข้อที่ {m.number} {how_th} ไม่ออกเลขรับ",
                f"wrong agency: referred to {m.referral.agency} (referrals rule {m.number}, {m.keyword}); no number")
    return ("ลงทะเบียนรับ รอเจ้าหน้าที่คัดแยก: ไม่ตรงกฎใด (คำขอทางอิเล็กทรอนิกส์ไม่ถูกปฏิเสธ)",
            "registered for officer review: no rule matched (an electronic request is never refused)")


# ---------------------------------------------------------------------------- helpers

def _receipt(f: Facts) -> str | None:
    return f.known.receipt if f.known is not None else None


def _may_act(p: Prepared, f: Facts, s: Settings) -> bool:
    if f.known is None:
        return True
    return trust.who_may_act(
        case_addresses=f.known.addresses, sender=p.letter.from_addr,
        sender_is_staff=(p.letter.from_addr or "").lower() in s.staff,
        authenticated=p.screening.authenticated, held=bool(p.hold)) == "may_act"


def _register(p: Prepared, f: Facts, s: Settings, reason: str, *, flag: str = "", answered: bool = True,
              linked: str | None = None, match: Match | None = None) -> Verdict:
    match = match or match_subject(p.letter.subject, s.rules)
    service = match.service
    remarks: list[str] = []
    if flag and flag == p.hold:
        remarks.append(trust.hold_remark(flag))
    elif flag:
        remarks.append(trust.CLAIMS_US_NOTE)
    if p.triage.urgent:
        remarks.append(p.triage.urgency_label)
    if p.triage.secret:
        remarks.append(f"ชั้นความลับ: {p.triage.secrecy}")
    if not p.letter.reply_to:
        remarks.append(REMARK_NO_ADDRESS)
    if p.via:
        remarks.append(f"รับผ่านช่องทางอื่น ส่งต่อโดย {p.via}")
    quoted = [r.receipt for r in receipt_refs(p.letter.subject, s.own_names) if not r.ours]
    if quoted:   # another agency's number links nothing here: a new case, the number kept for the officer
        remarks.append(f"อ้างถึงเลขของหน่วยงานอื่น {', '.join(quoted)} (ไม่ใช่เลขรับของหน่วยงานนี้)")
    return Verdict(O.REGISTERED, reason, match=match,
                   reply=kinds.OUTCOMES[O.REGISTERED].reply if service is not None else "unclassified",
                   flag=flag, answered=answered, linked_case=linked,
                   opening=Opening(service, tuple(remarks), linked, flag))


REMARK_NO_ADDRESS = "ไม่มีที่อยู่สำหรับตอบกลับ"
