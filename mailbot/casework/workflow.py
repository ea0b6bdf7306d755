"""Workflow (pure): the case state machine as a table, and working-day arithmetic.

Owns: the statuses a case can have (key -> Thai label, and its English words for a reply written
English first), which event moves a case from which
status to which, and the effect that goes with it (what the citizen is told). The caller
performs the effects; nothing here touches the database, the clock or the network.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from ..errors import MailbotError

STATUSES: dict[str, str] = {
    "received": "รับเรื่องแล้ว",
    "review": "รอเจ้าหน้าที่ตรวจสอบ",
    "awaiting_documents": "รอเอกสารเพิ่มเติม",
    "in_progress": "อยู่ระหว่างดำเนินการ",
    "completed": "ส่งผลการพิจารณาแล้ว",
    "closed_incomplete": "ยุติเรื่อง — เอกสารไม่ครบ",
    "closed": "ยุติเรื่อง",
    "cancelled": "ยกเลิก",
}
# the same statuses in a reply's English (mail/language.py: to a sender who wrote in English)
STATUSES_EN: dict[str, str] = {
    "received": "received",
    "review": "waiting for an officer's review",
    "awaiting_documents": "waiting for more documents",
    "in_progress": "in progress",
    "completed": "decided; the result has been sent",
    "closed_incomplete": "closed: documents incomplete",
    "closed": "closed",
    "cancelled": "cancelled",
}
# outcomes of a result notice (mailbot results letter --outcome ...)
RESULT_OUTCOMES: dict[str, str] = {
    "approved": "อนุมัติตามคำขอ",
    "rejected": "ไม่อนุมัติตามคำขอ",
    "incomplete": "ยุติเรื่องเนื่องจากเอกสารไม่ครบถ้วน",
}
OPEN = frozenset({"received", "review", "awaiting_documents", "in_progress"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class InvalidTransition(ValueError):
    pass


class Cancelled(InvalidTransition):
    """Cancelling is `case cancel` (with a reason); a cancelled case changes no more."""


# (status, event) -> (new status, effect); "*" stands for any open status.
TABLE: dict[tuple[str, str], tuple[str, str | None]] = {
    ("awaiting_documents", "documents_complete"): ("received", "documents_complete"),
    ("awaiting_documents", "documents_unsure"): ("received", "documents_unsure"),
    ("awaiting_documents", "documents_incomplete"): ("awaiting_documents", "documents_still_missing"),
    ("awaiting_documents", "reminder_due"): ("awaiting_documents", "reminder"),
    ("awaiting_documents", "close_due"): ("closed_incomplete", "closing_notice"),
    ("*", "result_sent"): ("completed", None),
}


def label(status: str) -> str:
    return STATUSES.get(status, status)


def label_en(status: str) -> str:
    """A status in English words; one without them (an agency's own): its Thai label."""
    return STATUSES_EN.get(status) or label(status)


def status_key(text: str) -> str | None:
    """A status given by key or by its Thai label."""
    text = text.strip()
    if text in STATUSES:
        return text
    for key, thai in STATUSES.items():
        if thai == text:
            return key
    return None


def unknown_status(text: str) -> MailbotError:
    """The error for a status a person typed that is neither a key nor a Thai label."""
    return MailbotError(f"ไม่รู้จักสถานะ '{text}'", f"unknown status '{text}'",
                        "ใช้ได้ / known: " + ", ".join(f"{k} ({v})" for k, v in STATUSES.items()))


def initial(service_known: bool, verdict: str) -> str:
    """The status of a newly registered case."""
    if not service_known:
        return "review"
    return "awaiting_documents" if verdict == "incomplete" else "received"


def transition(status: str, event: str) -> tuple[str, str | None]:
    """(new status, effect) for an event; InvalidTransition if the table has no row for it."""
    if (status, event) in TABLE:
        return TABLE[(status, event)]
    if status in OPEN and ("*", event) in TABLE:
        return TABLE[("*", event)]
    raise InvalidTransition(f"{event} is not possible in status {status}")


def officer_set(status: str, new: str) -> tuple[str, str | None]:
    """An officer may put a case in any status but ยกเลิก (that is `case cancel`, with a reason) and
    none once it is cancelled; the effect names the notification template."""
    if new not in STATUSES:
        raise InvalidTransition(f"unknown status {new!r}; known: {', '.join(STATUSES)}")
    if "cancelled" in (new, status):
        raise Cancelled(status)
    return new, f"status_{new}"


# the agency's own clock runs in these statuses (waiting for the citizen's documents stops it)
AGENCY_CLOCK = frozenset({"received", "review", "in_progress"})
NOTICE_EVERY_DAYS = 7        # Licensing Facilitation Act B.E. 2558: the reason, every 7 days while late
RESULT_WITHIN_DAYS = 7       # ... and the result within 7 days of the decision


def due_date(start: date, days: int | None, workdays: Iterable[str], holidays: Iterable[date]) -> date | None:
    """A service's time limit (working days) from the day a case was received (or completed)."""
    if not days:
        return None
    return add_working_days(start, days, workdays, holidays)


def late_notice_due(status: str, due: date | None, today: date, last_notice: date | None) -> bool:
    """A case past its due date gets the Act's notice when it first runs late, then every 7 days,
    for as long as the agency's clock runs."""
    if due is None or status not in AGENCY_CLOCK or today <= due:
        return False
    return last_notice is None or (today - last_notice).days >= NOTICE_EVERY_DAYS


def result_overdue(decided: date | None, status: str, today: date) -> bool:
    """Decided (the result letter written) but the result not sent within 7 days."""
    return decided is not None and status in OPEN and (today - decided).days >= RESULT_WITHIN_DAYS


def working_days_between(start: date, end: date, workdays: Iterable[str], holidays: Iterable[date]) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
    days = {WEEKDAYS.index(d) for d in workdays}
    off = set(holidays)
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if current.weekday() in days and current not in off:
            count += 1
    return count


def add_working_days(start: date, n: int, workdays: Iterable[str], holidays: Iterable[date]) -> date:
    """The date ``n`` working days after ``start``."""
    days = {WEEKDAYS.index(d) for d in workdays}
    if not days:
        return start + timedelta(days=n)
    off = set(holidays)
    current, left = start, n
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() in days and current not in off:
            left -= 1
    return current
