"""Record: carrying out a verdict — the one place a message becomes a case, a follow-up, a
referral or a filed copy in the store, with the reply it is owed queued in the outbox.

Owns: ``Recorder.record`` (what the cycle does with each verdict, inside the batch's
transaction), ``Recorder.quarantine`` (a message kept with its bytes and a reason), and the
steps the officer's own registrations share with it — opening a case (``open_case``: the next
number, the register row, the checklist and the due date) and answering it with the service's
receipt and forwarding it to the service's units (``answer_opened``) — so that the cycle, the
console's "classify" and "register by hand" register one way. The decision itself is
``verdict.py``'s; nothing here decides an outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import kinds
from ..casework import completeness, triage, trust, wording, workflow
from ..casework.replies import context
from ..config import Config, Service
from ..documents import promptpay
from ..mail.language import detect
from ..mail.outbox import day_start
from ..mail.parse import BASE64_GROWTH, Letter, our_message_ids, size_people_see
from ..ops.archive import Archive
from ..registers.numbering import numbering_year
from ..store import Row, iso
from ..thai import one_line, thai_date_short, to_bangkok
from .verdict import Prepared, Verdict

if TYPE_CHECKING:
    from ..casework.cases import Desk
    from ..mail.outbox import Outbox
    from ..store import State

O = kinds.Outcome


@dataclass
class Handled:
    """One line of the cycle report."""

    uid: int
    sender: str
    subject: str
    outcome: str
    receipt: str | None = None
    reason: str = ""
    reply: str = ""


@dataclass
class Arrival:
    """One message as fetched and archived (what recording needs besides the verdict)."""

    uid: int
    row_id: int
    raw: bytes
    received: datetime
    archive: str | None = None
    sha256: str | None = None


@dataclass
class Recorded:
    """What recording one message did, for the cycle to gather."""

    folder: str | None                       # where the server copy goes (None: it stays)
    handled: Handled
    opened: Row | None = None                # a new case (for the archive's receipt index)
    marked: tuple[Row, triage.Triage] | None = None   # urgent or secret: the officers are alerted
    flag: bool = False                       # left in the watched folder, flagged (our own alert)
    warnings: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self, cfg: Config, state: "State", desk: "Desk", outbox: "Outbox", archive: Archive) -> None:
        self.cfg, self.state, self.desk, self.outbox, self.archive = cfg, state, desk, outbox, archive
        self._warnings: list[str] = []

    def take_warnings(self) -> list[str]:
        """Warnings since the last call (a quarantine copy that could not be written)."""
        out, self._warnings = self._warnings, []
        return out

    # ------------------------------------------------------------------ quarantine

    def quarantine(self, m: Arrival, reason: str, now: datetime) -> str | None:
        """The bytes and the reason to data/quarantine; the ledger records the copy's path in its
        own column (never inside the reason's text). None when the copy cannot be written."""
        local = to_bangkok(m.received)      # the file name carries the Buddhist-Era date, like the rest
        name = f"{local.year + 543}{local:%m%d-%H%M%S}-uid{m.uid}"
        try:
            copy = self.archive.quarantine(m.raw, name, reason)
        except OSError as exc:
            self._warnings.append(f"quarantine copy failed for UID {m.uid}: {exc}")
            return None  # stays in the inbox
        folder = self.cfg.folders.quarantined
        self.state.record_message(
            m.row_id, outcome=O.QUARANTINED, reason=reason, quarantine_copy=copy, target_folder=folder,
            archive=m.archive, sha256=m.sha256, size=len(m.raw), received_at=iso(m.received), decided_at=iso(now),
            last_error=reason[:500])
        return folder

    # ------------------------------------------------------------------ a verdict

    def record(self, m: Arrival, p: Prepared, v: Verdict, now: datetime) -> Recorded:
        """Carry out one verdict inside the caller's transaction."""
        outer, letter = p.outer, p.letter
        base = dict(message_id=outer.message_id, content_hash=outer.content_hash, sha256=m.sha256,
                    archive=m.archive, size=outer.size, received_at=iso(m.received), sender=outer.from_addr,
                    subject=outer.subject[:500], decided_at=iso(now), last_error=None)
        # the report names the citizen of a staff forward; a copy filed as it came names its sender
        shown = outer if v.outcome in (O.QUARANTINED, O.OWN_ALERT, O.DUPLICATE) else letter
        handled = Handled(m.uid, shown.from_addr or "", shown.subject, v.outcome, reason=v.reason)
        folders = self.cfg.folders
        st = self.state
        if v.outcome == O.QUARANTINED:       # too large: kept whole, the sender told the limit
            folder = self.quarantine(m, v.reason, now)
            if folder is None:
                return Recorded(None, handled)
            st.record_message(m.row_id, message_id=outer.message_id, content_hash=outer.content_hash,
                              sender=outer.from_addr, subject=outer.subject[:500])
            if v.reply is not None:
                ctx = context(self.cfg.agency, receipt=None, received_at=m.received, subject=p.public_subject,
                              sender_name=outer.from_name)
                # sizes as the sender sees their files (the limit counts the mail as it travels,
                # ~37% larger for attachments): what they sent, and how much fits in one mail
                limit = self.cfg.limits.max_message_mb
                ctx["note"] = f"{limit:g}"
                ctx["size"] = f"{size_people_see(m.raw) / 1024 / 1024:.1f}"
                ctx["fits"] = f"{max(1, int(limit / BASE64_GROWTH))}"
                handled.reply = self._reply(v.reply, outer, m, p.public_subject, ctx, now)
            return Recorded(folder, handled)
        if v.outcome == O.OWN_ALERT:           # for a person: kept in the inbox, flagged
            st.record_message(m.row_id, **base, outcome=O.OWN_ALERT, moved=1, reason=v.reason)
            handled.reason = "mailbot alert: kept in the inbox, flagged"
            return Recorded(None, handled, flag=True)
        if v.outcome == O.DUPLICATE:           # filed with the first copy: no number, no reply
            d = v.duplicate
            assert d is not None
            st.record_message(m.row_id, **base, outcome=O.DUPLICATE, duplicate_of=d.row, case_id=d.case_id,
                              target_folder=d.target_folder, reason=v.reason)
            handled.reason, handled.receipt = "duplicate: same message already handled", d.case_receipt
            return Recorded(d.target_folder, handled)
        if v.outcome == O.AUTOMATIC:
            bounced = self._bounced_replies(m)
            if bounced:
                handled.reason += f"; bounce of our {', '.join(bounced)}"
            st.record_message(m.row_id, **base, outcome=O.AUTOMATIC, target_folder=folders.automatic,
                              reason=handled.reason)
            return Recorded(folders.automatic, handled)
        if v.outcome == O.FOLLOWUP:
            return Recorded(folders.followup, self._followup(m, p, v, base, handled, now))
        if v.outcome == O.REGISTERED:
            return self._registered(m, p, v, base, handled, now)
        # any other outcome (wrong agency, and one added to the table later): filed in its folder,
        # answered with its reply kind when the verdict names one, about no case
        folder = getattr(folders, v.folder_key) if v.folder_key else None
        st.record_message(m.row_id, **base, outcome=v.outcome, reason=v.reason, target_folder=folder)
        if v.reply is not None:
            referral = v.match.referral if v.match is not None else None
            ctx = context(self.cfg.agency, receipt=None, received_at=m.received, subject=p.public_subject,
                          sender_name=letter.from_name, referral=referral.model_dump() if referral else None)
            handled.reply = self._reply(v.reply, letter, m, p.public_subject, ctx, now)
        return Recorded(folder, handled)

    # ------------------------------------------------------------------ registered

    def _registered(self, m: Arrival, p: Prepared, v: Verdict, base: dict, handled: Handled,
                    now: datetime) -> Recorded:
        opening = v.opening
        assert opening is not None and v.reply is not None
        letter, tri = p.letter, p.triage
        files = [a for a in letter.attachments if not a.inline]
        checklist = completeness.check(opening.service, [completeness.File(a.name, a.size, a.content_type)
                                                         for a in files])
        # urgency claimed by a sender nothing vouched for (spam-flagged, failed or forged checks):
        # a note for the officer, never an alarm or the top of the work queue
        doubtful = bool(v.flag or opening.held)
        remarks = list(opening.remarks)
        if doubtful and tri.urgent:
            remarks = [r for r in remarks if r != tri.urgency_label]     # said below, as a claim
            remarks.append(f"อีเมลระบุว่า{tri.urgency_label} แต่ผู้ส่งยังไม่ผ่านการตรวจสอบ "
                           "จึงยังไม่ถือเป็นเรื่องด่วน")
        case = self.open_case(
            received=m.received, now=now, service=opening.service, checklist=checklist, message_row=m.row_id,
            sender_name=letter.from_name, sender_addr=letter.from_addr, reply_to=letter.reply_to,
            subject=letter.subject, remark="; ".join(remarks), message_id=letter.message_id,
            attachments=len(files), archive=m.archive, sha256=m.sha256, via=p.via,
            doc_date=iso(letter.date) if letter.date else None,
            urgency=None if doubtful else tri.urgency_label or None,
            urgency_rank=0 if doubtful else tri.urgency_rank,
            deadline=iso(tri.deadline) if tri.deadline else None, secrecy=tri.secrecy or None,
            linked_to=opening.linked_to, held=opening.held or None,
            language=detect(letter.subject, letter.body_text))
        self.desk.add_files(case["id"], m.row_id, letter.attachments, m.received)
        self.state.record_message(m.row_id, **base, outcome=O.REGISTERED, reason=v.reason, case_id=case["id"],
                                  target_folder=self.cfg.folders.registered)
        handled.receipt = case["receipt"]
        out = Recorded(self.cfg.folders.registered, handled, opened=case,
                       marked=(case, tri) if (tri.urgent or tri.secret) and not doubtful else None)
        if v.linked_case:                 # someone else's case named: linked, its owner not mailed
            named = self.state.case(v.linked_case)
            if named is not None:
                mine, theirs = trust.linked_notes(case["receipt"], named["receipt"])
                self.desk.event(case, m.received, "linked", mine, message_row=m.row_id)
                self.desk.event(named, m.received, "linked", theirs, message_row=m.row_id)
        if not v.answered:                # claims to be us: never answered, never forwarded
            self.state.update_case(case["id"], reply_status="ไม่ตอบอัตโนมัติ (ผู้ส่งตรวจสอบไม่ผ่าน)")
            handled.reply = "flagged: not answered"
            return out
        handled.reply, out.warnings = self.answer_opened(
            case, opening.service, checklist, now, kind=v.reply, key=m.row_id, received_at=m.received,
            message_row=m.row_id, raw=m.raw, secret=tri.secret, subject=p.public_subject,
            hold=f"flagged: {v.flag}" if v.flag else None, letter=letter)
        return out

    def open_case(self, *, received: datetime, now: datetime, service: Service | None,
                  checklist: completeness.Checklist, message_row: int, subject: str, status: str | None = None,
                  **fields: Any) -> Row:
        """A new case with the next number of its numbering year: the register's row, its status
        (``workflow.initial``, unless given), checklist and due date. Inside the caller's transaction."""
        status = status or workflow.initial(service is not None, checklist.verdict)
        for key in ("sender_name",):
            if key in fields:
                fields[key] = one_line(fields[key] or "", 120)
        return self.state.new_case(
            numbering_year(received, self.cfg.registers.year_reset),
            message_row=message_row, received_at=iso(received), subject=one_line(subject, 500),
            service_code=service.code if service else None, service_name=service.name if service else None,
            status=status, action=f"รับเรื่อง: {service.name}" if service else "รอเจ้าหน้าที่คัดแยก",
            awaiting_since=iso(now) if status == "awaiting_documents" else None,
            checklist=json.dumps(checklist.as_dict(), ensure_ascii=False),
            due_date=self.due(service, received) if status != "awaiting_documents" else None,
            **fields)

    def answer_opened(self, case: Row, service: Service | None, checklist: completeness.Checklist,
                      now: datetime, *, kind: str, key: int, received_at: datetime, message_row: int | None,
                      raw: bytes | None, secret: bool, subject: str | None = None, hold: str | None = None,
                      letter: Letter | None = None, actor: str = "mailbot") -> tuple[str, list[str]]:
        """The receipt (the service's wording, checklist and fee QR code) and, unless held or
        secret, the forward to the service's units. Returns (the reply's label, warnings)."""
        # a fee asked at intake (an application fee): its Thai QR code; a fee asked with the approval
        # (a licence fee) is only named, so nobody pays before anything is decided (wording.fee_moment)
        moment = wording.fee_moment(service)
        fee = promptpay.fee_qr(service, case["receipt"]) if moment == wording.RECEIPT else None
        extra: dict[str, Any] = {"fee": fee.context} if fee is not None else {}
        if moment == wording.APPROVAL and service is not None and service.fee is not None:
            extra["fee_later"] = {"name": service.fee.name, "amount": f"{service.fee.amount:,.2f}"}
        files = (fee.attachment,) if fee is not None else ()
        if letter is not None:      # in the citizen's thread
            ctx = self.desk.case_context(case, received_at, checklist=checklist, **extra)
            if secret:
                ctx["subject"] = triage.SECRET_MASK
            told = self.outbox.queue(
                kind, recipient=letter.reply_to, subject=subject if subject is not None else letter.subject,
                receipt=case["receipt"], in_reply_to=letter.message_id, references=letter.references, key=key,
                key_hash=letter.content_hash, now=now, ctx=ctx, case_id=case["id"], message_row=message_row,
                files=files, hold=hold)
        else:
            told = self.desk.reply_about(case, kind, now, key=key, received_at=received_at, checklist=checklist,
                                         files=files, hold=hold, **extra)
        warnings: list[str] = []
        if hold is None and not secret and service is not None and service.forward_to and raw is not None:
            warnings = self.desk.forward(self.state.case_by_id(case["id"]), raw, checklist, now, actor=actor)
        return told, warnings

    def due(self, service: Service | None, received: datetime) -> str | None:
        """The service's time limit in working days, from the day received (ISO date)."""
        s = self.cfg.schedule
        due = workflow.due_date(to_bangkok(received).date(), service.days if service else None, s.workdays,
                                s.holidays)
        return due.isoformat() if due else None

    # ------------------------------------------------------------------ follow-ups

    def _followup(self, m: Arrival, p: Prepared, v: Verdict, base: dict, handled: Handled,
                  now: datetime) -> Handled:
        st, letter = self.state, p.letter
        case = st.case(v.case_receipt) if v.case_receipt else None
        st.record_message(m.row_id, **base, outcome=O.FOLLOWUP, reason=v.reason,
                          case_id=case["id"] if case is not None else None, target_folder=self.cfg.folders.followup)
        if case is None:                        # an inquiry about a number we never issued
            if v.flag:
                handled.reply = "held: " + v.flag
                return handled
            ctx = context(self.cfg.agency, receipt=None, received_at=m.received, subject=p.public_subject,
                          sender_name=letter.from_name)
            handled.reply = self._reply("status_private", letter, m, p.public_subject, ctx, now)
            return handled
        handled.receipt = case["receipt"]
        if v.inquiry:
            handled.reply = self._answer_inquiry(case, m, p, v, now)
        else:
            handled.reply = self._more(case, m, p, now)
        return handled

    def _more(self, case: Row, m: Arrival, p: Prepared, now: datetime) -> str:
        """More from the citizen on an existing case: noted; documents re-checked when awaited."""
        desk = self.desk
        files = [a for a in p.letter.attachments if not a.inline]
        note = f"ติดตาม/ส่งเพิ่มเติม {thai_date_short(m.received)}"
        if files:
            note += f" (ไฟล์แนบ {len(files)})"
            desk.add_files(case["id"], m.row_id, files, m.received)
            self.state.update_case(case["id"], attachments=(case["attachments"] or 0) + len(files))
        desk.event(case, m.received, "followup", note, message_row=m.row_id)
        if files and case["status"] == "awaiting_documents":
            checklist = desk.checklist(case)
            desk.store_checklist(case["id"], checklist)
            event = {"complete": "documents_complete", "unsure": "documents_unsure"}.get(
                checklist.verdict, "documents_incomplete")
            effect = desk.apply(self.state.case_by_id(case["id"]), event, now, message_row=m.row_id,
                                received_at=m.received)
            return f"documents re-checked: {checklist.verdict} ({effect})"
        if self.state.followup_ack_since(case["id"], day_start(now)):
            return "acknowledged today already"
        fresh = self.state.case_by_id(case["id"])
        return desk.reply_about(fresh, "followup", now, key=m.row_id, received_at=m.received,
                                message_row=m.row_id, attachments=len(files))   # this message's files only

    def _answer_inquiry(self, case: Row, m: Arrival, p: Prepared, v: Verdict, now: datetime) -> str:
        """Status goes only to the requester's address on file; anyone else is told so, nothing more."""
        desk, letter = self.desk, p.letter
        requester = desk.is_requester(case, letter.from_addr)
        desk.event(case, m.received, "inquiry", f"สอบถามสถานะ {thai_date_short(m.received)}"
                   + ("" if requester else " (ผู้อื่น)"), message_row=m.row_id)
        if v.flag:
            return "held: " + v.flag
        if requester:
            fresh = self.state.case_by_id(case["id"])
            return desk.reply_about(fresh, "status", now, key=m.row_id, received_at=m.received,
                                    message_row=m.row_id, history=desk.history(fresh, citizen=True))
        ctx = context(self.cfg.agency, receipt=None, received_at=m.received, subject=p.public_subject,
                      sender_name=letter.from_name)
        return self._reply("status_private", letter, m, p.public_subject, ctx, now)

    # ------------------------------------------------------------------ helpers

    def _reply(self, kind: str, letter: Letter, m: Arrival, subject: str, ctx: dict, now: datetime) -> str:
        """A reply about no case, in the sender's thread (and language)."""
        ctx["language"] = detect(letter.subject, letter.body_text)
        return self.outbox.queue(kind, recipient=letter.reply_to, subject=subject, in_reply_to=letter.message_id,
                                 references=letter.references, key=m.row_id, key_hash=letter.content_hash,
                                 now=now, ctx=ctx, message_row=m.row_id)

    def _bounced_replies(self, m: Arrival) -> list[str]:
        """A delivery report about one of our messages: mark it and its case "ส่งอีเมลไม่สำเร็จ"."""
        found = []
        for mid in our_message_ids(m.raw):
            row = self.state.outbox_by_message_id(mid)
            if row is None:
                continue
            self.state.mark_bounced(row["id"])
            found.append(row["kind"])
            if row["case_id"] is not None:
                case = self.state.case_by_id(row["case_id"])
                self.desk.event(case, m.received, "bounce",
                                f"ส่งอีเมลไม่สำเร็จ {thai_date_short(m.received)} ({kinds.kind_label(row['kind'])})",
                                message_row=m.row_id)
                self.state.update_case(case["id"], reply_status="ส่งอีเมลไม่สำเร็จ — ติดต่อผู้ยื่นทางอื่น (bounced)")
        return found
