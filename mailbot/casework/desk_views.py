"""Desk views: what the faces read about the office's work, for ``app.Office`` (mostly the console).

Owns: the Today page (arrivals by outcome, the work queue of what needs an officer — urgent
first, then oldest — and the service's health), the cases due or late by their service time,
searching cases a page at a time, a case's messages as text, one stored message with its
attached files (numbered for download) and its raw bytes from the archive or the quarantine
copy. Reading only: nothing here takes the work lock or changes data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Callable

from ..config import Config
from ..errors import MailbotError
from ..kinds import O, explain, send_state
from ..mail.outbox import day_start
from ..registers.numbering import normalise_receipt
from ..store import CaseSearch, Row, State, from_iso, iso
from ..thai import BANGKOK as _BANGKOK
from ..thai import thai_date, to_bangkok
from . import workflow
from .workflow import unknown_status

if TYPE_CHECKING:
    from ..ops.service import Status
    from .result_desk import ResultProblem


QUEUE_LIMIT = 50         # items of one kind listed in the work queue (the count says how many there are)
BANGKOK_TZ = _BANGKOK


# the work items whose detail is a recorded reason (said in Thai by kinds.explain); a quarantined
# message's item is named by its outcome
QUARANTINED = O.QUARANTINED.value
REASONED = frozenset({"held", "flagged", QUARANTINED})


@dataclass
class WorkItem:
    """One thing that needs an officer (Today page)."""

    kind: str          # unclassified | held | flagged | quarantined | bounced | result_problem | overdue | due_soon | documents
    urgent: bool
    at: datetime       # since when it waits
    title: str
    who: str
    receipt: str | None = None
    ref: int = 0       # case id, outbox id or message row id, by kind
    detail: str = ""
    name: str = ""     # result_problem: the file name
    due: date | None = None
    also: list["WorkItem"] = field(default_factory=list)   # the same case's other reasons, on this row

    @property
    def parts(self) -> list["WorkItem"]:
        """This row's reasons: itself first, then the same case's others."""
        return [self, *self.also]

    @property
    def details(self) -> list["WorkItem"]:
        """The parts with something to say, each thing said once (a mail held and flagged for the
        same spam verdict shows it one time)."""
        seen: set[str] = set()
        out = []
        for p in self.parts:
            said = explain(p.detail) if p.kind in REASONED else p.detail
            if p.detail and said not in seen:
                seen.add(said)
                out.append(p)
        return out


def one_row_per_case(items: list[WorkItem]) -> list[WorkItem]:
    """Each case once: a mail that is unclassified, held and flagged is one row with its three
    reasons (in the order found), urgent if any reason is."""
    out: list[WorkItem] = []
    first: dict[str, WorkItem] = {}
    for item in items:
        lead = first.get(item.receipt) if item.receipt else None
        if lead is None:
            out.append(item)
            if item.receipt:
                first[item.receipt] = item
            continue
        lead.also.append(item)
        lead.urgent = lead.urgent or item.urgent
        lead.at = min(lead.at, item.at)
    return out


@dataclass
class Today:
    day: date
    arrivals: dict[str, int]
    registered: int
    queue: list[WorkItem]
    counts: dict[str, int]
    status: Status
    events: list
    alerts: list
    now: datetime

    @property
    def waiting(self) -> int:
        """How many things wait: each kind's count, a case with several reasons once (of those shown)."""
        return sum(self.counts.values()) - sum(len(w.also) for w in self.queue)


@dataclass
class CasePage:
    rows: list
    total: int
    page: int
    pages: int
    per_page: int


@dataclass
class MessageView:
    row: Row
    letter: object | None                     # parse.Letter, or None when it cannot be read
    files: list[tuple[int, str, str, int]]    # (number, safe name, content type, size)
    problem: str = ""


def _who(row) -> str:
    name, addr = row["sender_name"] or "", row["sender_addr"] or ""
    return f"{name} <{addr}>" if name and addr else (name or addr)


def _quarantine_reason(reason: str | None) -> str:
    return re.sub(r"\s*\(copy: [^)]*\)", "", reason or "").strip()


def _parts(raw: bytes) -> list[tuple[int, str, str, int, bytes]]:
    """The attached files of a raw message, numbered in MIME walk order: (number, safe name,
    content type, size, bytes). Attached messages count as one file (.eml)."""
    import email as _email
    from email import policy as _policy

    from ..mail.parse import safe_filename

    if not raw:
        return []
    try:
        msg = _email.message_from_bytes(raw, policy=_policy.default)
        parts = list(msg.walk())[:500]
    except Exception:  # noqa: BLE001 - an unreadable message has no files to offer
        return []
    out: list[tuple[int, str, str, int, bytes]] = []
    inside: set[int] = set()
    for i, part in enumerate(parts):
        if id(part) in inside:
            continue
        try:
            ctype = part.get_content_type()
            if ctype == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if hasattr(inner, "walk"):
                    inside.update(id(p) for p in inner.walk())
                data = inner.as_bytes() if hasattr(inner, "as_bytes") else b""
                name = safe_filename(part.get_filename() or "", fallback=f"message-{i}") 
                out.append((i, name if name.lower().endswith(".eml") else name + ".eml", ctype, len(data), data))
                continue
            if part.is_multipart():
                continue
            disposition = (part.get_content_disposition() or "").lower()
            filename = part.get_filename()
            if not (disposition == "attachment" or filename or not ctype.startswith("text/")):
                continue
            if ctype.startswith("message/"):
                continue
            payload = part.get_payload(decode=True)    # bytes (None only for a multipart, skipped above)
            data = payload if isinstance(payload, bytes) else b""
            out.append((i, safe_filename(str(filename or ""), fallback=f"attachment-{i}"), ctype, len(data), data))
        except Exception:  # noqa: BLE001 - one bad part never hides the others
            continue
    return out


class DeskViews:
    """What the faces read about one office's cases, messages and work queue."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], state: State,
                 status: Callable[[], "Status"], result_problems: Callable[[], list["ResultProblem"]]) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state
        self.status = status                      # Upkeep.status: the service's health
        self.result_problems = result_problems    # ResultDesk.result_problems: files in results/problems

    def today(self) -> Today:
        """Arrivals today by outcome, what needs an officer (urgent first, then oldest first) and
        the service's health."""
        from ..thai import BANGKOK

        now = self.clock()
        state = self.state
        start = day_start(now)
        end = start + timedelta(days=1)
        arrivals = state.arrivals_by_outcome(iso(start), iso(end))
        registered = state.count_registered(iso(start), iso(end))
        queue: list[WorkItem] = []
        limit = QUEUE_LIMIT
        counts: dict[str, int] = {}

        def add(kind: str, found: tuple[int, list[Row]], make: Callable[[Row], WorkItem]) -> None:
            """The kind's count, and the oldest ``limit`` of its items (read by the store)."""
            counts[kind], rows = found
            queue.extend(make(r) for r in rows)

        add("unclassified", state.work_unclassified(limit),
            lambda r: WorkItem("unclassified", bool(r["urgency_rank"]), from_iso(r["received_at"]),
                               r["subject"] or "", _who(r), receipt=r["receipt"], ref=r["id"],
                               detail=r["urgency"] or ""))
        add("held", state.work_held_mail(limit),
            lambda r: WorkItem("held", False, from_iso(r["created_at"]), r["subject"] or "", r["recipient"],
                               receipt=r["receipt"], ref=r["id"], detail=r["hold_reason"] or ""))
        add("flagged", state.work_flagged(limit),
            lambda r: WorkItem("flagged", False, from_iso(r["received_at"]), r["subject"] or "", _who(r),
                               receipt=r["receipt"], ref=r["id"], detail=r["held"] or ""))
        add(QUARANTINED, state.work_quarantined(limit),
            lambda r: WorkItem(QUARANTINED, True, from_iso(r["received_at"] or r["decided_at"] or iso(now)),
                               r["subject"] or "", r["sender"] or "", ref=r["id"],
                               detail=_quarantine_reason(r["reason"])))
        add("bounced", state.work_undelivered(limit),
            lambda r: WorkItem("bounced", True, from_iso(r["created_at"]), r["subject"] or "", r["recipient"],
                               receipt=r["receipt"], ref=r["id"],
                               detail=f"{send_state(r['status'])}: {r['last_error'] or ''}".rstrip(": ")))
        problems = self.result_problems()
        counts["result_problem"] = len(problems)
        queue.extend(WorkItem("result_problem", True, p.at, p.name, "", receipt=p.receipt or None, ref=0,
                              detail=p.explanation.splitlines()[0] if p.explanation else "", name=p.name)
                     for p in problems[:limit])
        due, counts["overdue"], counts["due_soon"] = self.due_cases(limit)
        queue.extend(due)
        add("documents", state.work_documents_unsure(limit),
            lambda r: WorkItem("documents", bool(r["urgency_rank"]), from_iso(r["received_at"]), r["subject"] or "",
                               _who(r), receipt=r["receipt"], ref=r["id"], detail=r["urgency"] or ""))
        queue = one_row_per_case(queue)
        queue.sort(key=lambda w: (not w.urgent, w.at))
        events = state.recent_events(8)
        alerts = state.recent_alerts(5)
        return Today(day=to_bangkok(now).date(), arrivals=arrivals, registered=registered, queue=queue,
                     counts=counts, status=self.status(), events=events, alerts=alerts,
                     now=now.astimezone(BANGKOK))

    def due_cases(self, limit: int = 50, warn_days: int = 3) -> tuple[list[WorkItem], int, int]:
        """Open cases past their service time (``cases.due_date``: the service's ``days`` in working
        days, see workflow.due_date) or due within ``warn_days`` working days: the most urgent
        and oldest ``limit`` of them, how many are late and how many nearly due. Only while the
        agency's clock runs (workflow.AGENCY_CLOCK): a case awaiting documents waits for the citizen."""
        s = self.cfg.schedule
        today = to_bangkok(self.clock()).date()
        horizon = workflow.add_working_days(today, warn_days, s.workdays, s.holidays)
        late = self.state.count_late(today.isoformat())
        soon = self.state.count_due_by(horizon.isoformat()) - late
        out = []
        for r in self.state.due_soon(horizon.isoformat(), limit):
            when = date.fromisoformat(r["due_date"])
            out.append(WorkItem("overdue" if when < today else "due_soon", when < today or bool(r["urgency_rank"]),
                                from_iso(r["received_at"]), r["subject"] or "", _who(r), receipt=r["receipt"],
                                ref=r["id"], detail=f"{r['service_name'] or ''}: ครบกำหนด {thai_date(when)}",
                                due=when))
        return out, late, soon

    def find_cases(self, text: str = "", status: str = "", service: str = "", since: date | None = None,
                   until: date | None = None, page: int = 1, per_page: int = 50) -> CasePage:
        """Cases by receipt number, name, address or subject, status, service and the day received
        (Bangkok days), newest first, one page at a time."""
        year_be: int | None = None
        seq: int | None = None
        words = ""
        text = " ".join((text or "").split())
        if text:
            plain = normalise_receipt(text)
            if re.fullmatch(r"\d{1,7}/\d{4}", plain):
                number, year = plain.split("/")
                year_be, seq = int(year), int(number)
            elif re.fullmatch(r"\d{1,7}", plain):
                seq = int(plain)
            else:
                words = text
        key = ""
        if status:
            key = workflow.status_key(status) or ""
            if not key:
                raise unknown_status(status)
        search = CaseSearch(
            year_be=year_be, seq=seq, words=words, status=key, service=service or "",
            received_from=iso(datetime.combine(since, datetime.min.time(), BANGKOK_TZ)) if since is not None else "",
            received_before=(iso(datetime.combine(until + timedelta(days=1), datetime.min.time(), BANGKOK_TZ))
                             if until is not None else ""))
        total = self.state.count_cases_found(search)
        per_page = max(1, min(per_page, 500))
        pages = max(1, -(-total // per_page))
        page = max(1, min(page, pages))
        rows = self.state.cases_found(search, per_page, (page - 1) * per_page)
        return CasePage(rows, total, page, pages, per_page)

    def case_messages(self, receipt: str) -> list[MessageView]:
        """Every message of a case (the request and what followed), read from the archive as text."""
        case = self.state.case(normalise_receipt(receipt))
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        rows = self.state.case_messages(case["id"], case["message_row"])
        return [self.message_view(r["id"]) for r in rows]

    def message_view(self, row_id: int) -> MessageView:
        """One stored message as the officer may read it: headers and body as plain text (HTML mail
        reduced to its text), and its attached files (numbered for download)."""
        from ..mail.parse import Unparseable, parse

        row = self.message_row(row_id)
        raw = self.raw_message(row_id)
        letter, problem = None, ""
        if raw is None:
            problem = "ไม่พบต้นฉบับอีเมลในคลัง / the raw message is not in the archive"
        else:
            try:
                letter = parse(raw)
            except Unparseable as exc:
                problem = f"อ่านอีเมลฉบับนี้ไม่ได้ / cannot be read: {exc}"
        files = [(i, name, ctype, size) for i, name, ctype, size, _ in _parts(raw)] if raw is not None else []
        return MessageView(row, letter, files, problem)

    def raw_message(self, row_id: int) -> bytes | None:
        """The raw bytes of a stored message: the archive copy, else its quarantine copy."""
        row = self.message_row(row_id)
        root = self.cfg.data_dir.resolve()
        for rel in (row["archive"], row["quarantine_copy"]):
            if not rel:
                continue
            path = (root / rel).resolve()
            if root in path.parents and path.is_file():
                return path.read_bytes()
        return None

    def attachment(self, row_id: int, index: int) -> tuple[str, str, bytes]:
        """(safe file name, content type, bytes) of one attached file of a stored message."""
        raw = self.raw_message(row_id)
        for i, name, ctype, _size, data in _parts(raw or b""):
            if i == index:
                return name, ctype, data
        raise MailbotError("ไม่พบไฟล์แนบนี้", "no such attachment")

    def message_row(self, row_id: int) -> Row:
        """The ledger row of a stored message, or the officer is told there is none."""
        row = self.state.message_row(row_id)
        if row is None:
            raise MailbotError(f"ไม่พบอีเมลหมายเลข {row_id}", f"no message #{row_id}")
        return row

