"""Wording of a result (pure): the one source of the words a result is told in.

Owns: the phrase for a request built from its service's name ("คำขออนุญาตก่อสร้าง…" from
"ขออนุญาตก่อสร้าง…", never "คำขอขอ…"); the decision word of a service (อนุญาต for a service that
grants a licence, อนุมัติ otherwise) and from it the words of each outcome in the letter, the
covering e-mail and the letter's file name; reading an outcome back from a file name; when a
service's fee is asked (with the receipt, or with the approval letter); and the name of the
licence a service grants, for the licence register ("ใบอนุญาตก่อสร้าง…" for "ขออนุญาตก่อสร้าง…").
"""
from __future__ import annotations

from dataclasses import dataclass

# a service's name that is already a phrase for a request or a matter: used as it is
_AS_IS = ("คำขอ", "คำร้อง", "เรื่อง", "หนังสือ")
# a name that says what the person reports or complains of: "เรื่อง…" ("เรื่องแจ้งซ่อมไฟฟ้า…")
_A_MATTER = ("แจ้ง", "ร้อง", "การ")


def request_phrase(service_name: str | None) -> str:
    """The phrase for a request of this service: "คำขอ" and the name, without saying ขอ twice.

    "ขออนุญาตก่อสร้าง…" -> "คำขออนุญาตก่อสร้าง…", "ใบอนุญาตประกอบกิจการ…" -> "คำขอใบอนุญาตประกอบกิจการ…",
    "เรื่องร้องเรียน…" stays, "แจ้งซ่อมไฟฟ้า…" -> "เรื่องแจ้งซ่อมไฟฟ้า…"; no name: "คำขอ"."""
    name = " ".join((service_name or "").split())
    if not name:
        return "คำขอ"
    if name.startswith(_AS_IS):
        return name
    if name.startswith("ขอ"):
        return "คำ" + name
    if name.startswith(_A_MATTER):
        return "เรื่อง" + name
    return "คำขอ" + name


# what a service's name may start with before the licence's own name: a request for it
_ASKING = ("ขอต่อใบอนุญาต", "ขอรับใบอนุญาต", "ขอใบอนุญาต", "ขอต่ออายุใบอนุญาต", "ต่อใบอนุญาต", "ขออนุญาต")


def licence_name(service_name: str | None, declared: str = "") -> str:
    """The licence a service grants, named as a licence (not as the request for it): the name the
    service declares (``licence_name`` in rules.yaml), else made from its name — "ขออนุญาตก่อสร้าง
    ดัดแปลง…" -> "ใบอนุญาตก่อสร้าง ดัดแปลง…", "ขอต่อใบอนุญาตประกอบกิจการ…" -> "ใบอนุญาตประกอบกิจการ…";
    a name that is one already stays. Applied to what the register stored before (idempotent)."""
    if declared.strip():
        return " ".join(declared.split())
    name = " ".join((service_name or "").split())
    if not name or name.startswith("ใบอนุญาต"):
        return name
    for opening in _ASKING:
        if name.startswith(opening):
            rest = name[len(opening):].strip()
            return "ใบอนุญาต" + rest if rest else name
    if name.startswith("ขอ"):
        return "ใบอนุญาต" + name[2:].strip()
    return name


def undouble(text: str, service_name: str | None) -> str:
    """Text a workspace's older letter template wrote as "คำขอ" + the service's name, with the
    request phrase instead (so "คำขอขออนุญาต…" reads "คำขออนุญาต…"). Nothing else changes."""
    name = " ".join((service_name or "").split())
    if not name.startswith("ขอ"):
        return text
    return text.replace("คำขอ" + name, request_phrase(name))


@dataclass(frozen=True)
class Decision:
    """The words of one outcome for one kind of service."""

    outcome: str          # approved | rejected | incomplete
    verb: str             # อนุญาต (a licence) or อนุมัติ: what the letter says the agency does
    text: str             # the outcome in a sentence: the covering e-mail, the console
    file_word: str        # the outcome in the letter's file name (read back by outcome_from_name)


def decision(outcome: str, licence: bool) -> Decision:
    verb = "อนุญาต" if licence else "อนุมัติ"
    if outcome == "approved":
        return Decision(outcome, verb, f"{verb}ตามคำขอ", verb)
    if outcome == "rejected":
        return Decision(outcome, verb, f"ไม่{verb}ตามคำขอ", f"ไม่{verb}")
    if outcome == "incomplete":
        return Decision(outcome, verb, "ยุติเรื่องเนื่องจากเอกสารไม่ครบถ้วน", "เอกสารไม่ครบ")
    return Decision(outcome, verb, "", "")


def outcome_from_name(name: str) -> str:
    """The outcome a result file's name states (the words of ``decision``, Thai or English), or ""."""
    low = name.lower()
    if "ไม่อนุมัติ" in name or "ไม่อนุญาต" in name or "reject" in low:
        return "rejected"
    if "incomplete" in low or "ไม่ครบ" in name:
        return "incomplete"
    if "อนุมัติ" in name or "อนุญาต" in name or "approv" in low:
        return "approved"
    return ""


RECEIPT, APPROVAL = "receipt", "approval"


def fee_moment(service) -> str | None:
    """When a service's fee is asked: "receipt" (with the receipt e-mail, at intake) or
    "approval" (with the approval letter); None without a fee. ``fee.when`` decides; without it
    a licence fee (a ``licence: true`` service, or a fee named ค่าธรรมเนียมใบอนุญาต…) comes with the
    approval, and any other fee (an application fee) with the receipt."""
    fee = getattr(service, "fee", None)
    if fee is None:
        return None
    if getattr(fee, "when", None):
        return fee.when
    return APPROVAL if service.licence or "ใบอนุญาต" in (fee.name or "") else RECEIPT
