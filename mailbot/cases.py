"""Cases: what happens to a registered case after intake — the glue between the pure
workflow table and the state, templates and outbox.

Owns: queuing replies about a case (with the per-sender cap), recording the files a case
received and re-running the completeness check over all of them, forwarding a case to the
agency's own units (never outside its domains), the reminder / closing clock for cases
awaiting documents (working days, holidays), status-inquiry answers (status only ever goes
to the requester's own address), and officer actions (`mailbot case set`). Every change is
a case event with who and when; the register shows them.
"""
from __future__ import annotations

import email.utils
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from . import completeness, workflow
from .completeness import Checklist, File
from .config import Config, Rules, Service
from .replies import Templates, build, context, message_id_for, tag
from .state import State, from_iso, iso
from .thai import thai_date, thai_date_short, thai_datetime, to_bangkok


def day_start(now: datetime) -> datetime:
    """Midnight of today in Asia/Bangkok."""
    return to_bangkok(now).replace(hour=0, minute=0, second=0, microsecond=0)


def append_note(old: str | None, note: str, keep: int = 8) -> str:
    parts = [p for p in (old or "").split("; ") if p]
    parts.append(note)
    return "; ".join(parts[-keep:])


@dataclass
class Desk:
    cfg: Config
    rules: Rules
    state: State
    templates: Templates

    # ------------------------------------------------------------------ replies

    def queue(self, *, kind: str, recipient: str | None, subject: str, receipt: str | None,
              in_reply_to: str | None, references: tuple[str, ...], key: int, key_hash: str,
              now: datetime, ctx: dict, case_id: int | None = None, message_row: int | None = None,
              capped: bool = True, attach: bytes | None = None,
              files: tuple[tuple[str, bytes], ...] = ()) -> str:
        """Compose one message and put it in the outbox; returns a short label for reports."""
        st = self.state
        own = self.cfg.agency.address.lower()
        if recipient and recipient.lower() == own:
            recipient = None  # never answer ourselves (a forged Reply-To would loop)
        if not recipient:
            return "no reply: no usable address"
        mid = message_id_for(kind, key, key_hash, self.cfg.agency.domain)
        raw = build(kind=kind, templates=self.templates, agency=self.cfg.agency, to=recipient,
                    subject=subject, receipt=receipt, in_reply_to=in_reply_to, references=references,
                    message_id=mid, now=now, ctx=ctx, attach=attach, files=files)
        status, hold, label = "queued", None, "queued"
        cap = self.cfg.limits.replies_per_sender_per_day
        if capped and st.replies_to_since(recipient, day_start(now)) >= cap:
            status, hold = "held", f"per-sender limit {cap}/day"
            label = f"held: over {cap} replies/day to this address"
        st.queue_reply(message_id=mid, kind=kind, case_id=case_id, message_row=message_row,
                       recipient=recipient, subject=subject, raw=raw, status=status,
                       hold_reason=hold, now=now)
        if case_id is not None and kind not in ("forward",):
            st.update_case(case_id, reply_status=(
                "รอส่ง / queued" if status == "queued"
                else f"ระงับ: เกิน {cap} ฉบับ/วัน ต่อผู้ส่ง (held: per-sender limit)"))
        return label

    def case_context(self, case: sqlite3.Row, received_at: datetime, *, checklist: Checklist | None = None,
                     **extra: object) -> dict:
        service = self.service(case["service_code"])
        ctx = context(
            self.cfg.agency, receipt=case["receipt"], received_at=received_at, subject=case["subject"] or "",
            sender_name=case["sender_name"] or "", service=_service_dict(service),
            attachments=case["attachments"] or 0,
        )
        ctx["checklist"] = (checklist or self.checklist(case)).as_dict()
        ctx["status"] = workflow.label(case["status"])
        ctx["via_staff"] = case["via"] or ""
        ctx["deadline"] = ""
        ctx.update(extra)
        return ctx

    def reply_about(self, case: sqlite3.Row, kind: str, now: datetime, *, key: int,
                    received_at: datetime | None = None, message_row: int | None = None,
                    recipient: str | None = None, files: tuple[tuple[str, bytes], ...] = (),
                    capped: bool = True, **extra: object) -> str:
        """A message to the requester about their case, in the thread of their request."""
        ctx = self.case_context(case, received_at or now, **extra)
        return self.queue(kind=kind, recipient=recipient or case["reply_to"], subject=case["subject"] or "",
                          receipt=case["receipt"], in_reply_to=case["message_id"],
                          references=(case["message_id"],) if case["message_id"] else (),
                          key=key, key_hash=case["sha256"] or case["receipt"], now=now, ctx=ctx,
                          case_id=case["id"], message_row=message_row, files=files, capped=capped)

    # ------------------------------------------------------------------ documents

    def service(self, code: str | None) -> Service | None:
        for s in self.rules.services:
            if s.code == code:
                return s
        return None

    def add_files(self, case_id: int, message_row: int | None, attachments, at: datetime) -> None:  # type: ignore[no-untyped-def]
        self.state.db.executemany(
            "INSERT INTO case_files (case_id, message_row, name, size, content_type, at) VALUES (?,?,?,?,?,?)",
            [(case_id, message_row, a.name, a.size, a.content_type, iso(at)) for a in attachments if not a.inline],
        )

    def checklist(self, case: sqlite3.Row) -> Checklist:
        files = [File(r["name"], r["size"], r["content_type"]) for r in self.state.db.execute(
            "SELECT name, size, content_type FROM case_files WHERE case_id=? ORDER BY id", (case["id"],))]
        return completeness.check(self.service(case["service_code"]), files)

    def store_checklist(self, case_id: int, checklist: Checklist) -> None:
        self.state.update_case(case_id, checklist=json.dumps(checklist.as_dict(), ensure_ascii=False))

    # ------------------------------------------------------------------ events

    def event(self, case: sqlite3.Row, at: datetime, kind: str, note: str, *, actor: str = "mailbot",
              message_row: int | None = None, action: bool = False) -> int:
        """Record a case event; it shows in the register (การปฏิบัติ if action, else หมายเหตุ)."""
        cur = self.state.db.execute(
            "INSERT INTO case_events (case_id, at, kind, note, message_row, actor) VALUES (?,?,?,?,?,?)",
            (case["id"], iso(at), kind, note, message_row, actor),
        )
        fresh = self.state.case_by_id(case["id"])
        column = "action" if action else "remark"
        self.state.update_case(case["id"], **{column: append_note(fresh[column], note)})
        return int(cur.lastrowid)

    def set_status(self, case: sqlite3.Row, status: str, at: datetime, **fields: object) -> sqlite3.Row:
        self.state.update_case(case["id"], status=status, **fields)
        return self.state.case_by_id(case["id"])

    def apply(self, case: sqlite3.Row, event: str, now: datetime, *, actor: str = "mailbot",
              message_row: int | None = None, received_at: datetime | None = None) -> str | None:
        """Run one workflow event on a case: new status, event row, and the citizen told."""
        new, effect = workflow.transition(case["status"], event)
        fields: dict[str, object] = {}
        if new == "awaiting_documents" and event == "documents_incomplete":
            fields.update(awaiting_since=iso(now), reminded_at=None)   # the citizen answered: clock restarts
        if event == "reminder_due":
            fields["reminded_at"] = iso(now)
        case = self.set_status(case, new, now, **fields)
        note = {
            "documents_complete": f"เอกสารครบ {thai_date_short(now)}",
            "documents_unsure": f"ได้รับเอกสารเพิ่ม รอเจ้าหน้าที่ตรวจ {thai_date_short(now)}",
            "documents_still_missing": f"เอกสารยังไม่ครบ {thai_date_short(now)}",
            "reminder": f"แจ้งเตือนส่งเอกสาร {thai_date_short(now)}",
            "closing_notice": f"ยุติเรื่อง เอกสารไม่ครบ {thai_date_short(now)}",
        }.get(effect or "", f"{workflow.label(new)} {thai_date_short(now)}")
        event_id = self.event(case, now, event, note, actor=actor, message_row=message_row,
                              action=event in ("close_due",))
        if effect:
            extra: dict[str, object] = {}
            if effect == "reminder":
                extra["deadline"] = thai_date(self.close_date(now))
            self.reply_about(case, effect, now, key=event_id, received_at=received_at or now,
                             message_row=message_row, **extra)
        return effect

    def close_date(self, reminded: datetime) -> datetime:
        s = self.cfg.schedule
        day = workflow.add_working_days(to_bangkok(reminded).date(), self.cfg.workflow.close_days,
                                        s.workdays, s.holidays)
        return to_bangkok(reminded).replace(year=day.year, month=day.month, day=day.day)

    def tick(self, now: datetime) -> list[tuple[str, str]]:
        """Reminders and closures that are due; returns (receipt, effect) pairs."""
        s, w = self.cfg.schedule, self.cfg.workflow
        today = to_bangkok(now).date()
        done = []
        rows = self.state.db.execute(
            "SELECT * FROM cases WHERE status='awaiting_documents' ORDER BY id").fetchall()
        for case in rows:
            with self.state.tx():
                if case["reminded_at"]:
                    since = to_bangkok(from_iso(case["reminded_at"])).date()
                    if workflow.working_days_between(since, today, s.workdays, s.holidays) >= w.close_days:
                        done.append((case["receipt"], self.apply(case, "close_due", now)))
                else:
                    since = to_bangkok(from_iso(case["awaiting_since"] or case["received_at"])).date()
                    if workflow.working_days_between(since, today, s.workdays, s.holidays) >= w.reminder_days:
                        done.append((case["receipt"], self.apply(case, "reminder_due", now)))
        return done  # type: ignore[return-value]

    # ------------------------------------------------------------------ forwarding

    def allowed(self, address: str) -> bool:
        domain = address.rsplit("@", 1)[-1].lower()
        return domain in self.cfg.agency.own_domains

    def forward(self, case: sqlite3.Row, raw: bytes, checklist: Checklist, now: datetime) -> list[str]:
        """Send the case to its service's units; returns warnings for refused addresses."""
        service = self.service(case["service_code"])
        warnings: list[str] = []
        if service is None:
            return warnings
        for entry in service.forward_to:
            unit, address = email.utils.parseaddr(entry)
            if not address or not self.allowed(address):
                warnings.append(
                    f"ไม่ส่งต่อเรื่อง {case['receipt']} ไปยัง {entry}: อยู่นอกโดเมนของหน่วยงาน / "
                    f"not forwarded to {entry}: outside the agency's own domains")
                continue
            unit = unit or address.split("@")[0]
            note = f"ส่ง {unit} {thai_date_short(now)}"
            event_id = self.event(case, now, "forwarded", note, action=True)
            ctx = self.case_context(case, from_iso(case["received_at"]), checklist=checklist, unit=unit,
                                    sender_addr=case["sender_addr"] or "")
            self.queue(kind="forward", recipient=address, subject=f"ส่งต่อ {tag(case['receipt'])} {case['subject'] or ''}",
                       receipt=None, in_reply_to=None, references=(), key=event_id,
                       key_hash=case["sha256"] or case["receipt"], now=now, ctx=ctx, case_id=case["id"],
                       capped=False, attach=raw)
        return warnings

    # ------------------------------------------------------------------ status inquiries

    def history(self, case: sqlite3.Row) -> list[dict]:
        out = [{"at": thai_datetime(from_iso(case["received_at"])), "note": f"รับเรื่อง เลขรับ {case['receipt']}",
                "actor": "mailbot"}]
        for r in self.state.db.execute(
                "SELECT at, note, actor FROM case_events WHERE case_id=? ORDER BY id", (case["id"],)):
            out.append({"at": thai_datetime(from_iso(r["at"])), "note": r["note"], "actor": r["actor"] or ""})
        return out

    def is_requester(self, case: sqlite3.Row, address: str | None) -> bool:
        if not address:
            return False
        known = {a.lower() for a in (case["sender_addr"], case["reply_to"]) if a}
        return address.lower() in known

    # ------------------------------------------------------------------ officer actions

    def officer_set(self, receipt: str, status: str, note: str, actor: str, now: datetime) -> tuple[sqlite3.Row, str]:
        """Set a case's status by hand; the citizen is told if a template for it exists."""
        case = self.state.case(receipt)
        if case is None:
            raise KeyError(receipt)
        key = workflow.status_key(status)
        if key is None:
            raise workflow.InvalidTransition(status)
        with self.state.tx():
            new, effect = workflow.officer_set(case["status"], key)
            fields: dict[str, object] = {}
            if new == "awaiting_documents":
                fields.update(awaiting_since=iso(now), reminded_at=None)
            case = self.set_status(case, new, now, **fields)
            text = f"{workflow.label(new)} {thai_date_short(now)} ({actor})" + (f": {note}" if note else "")
            event_id = self.event(case, now, f"officer:{new}", text, actor=actor, action=True)
            told = "not notified (no template)"
            if effect and self.templates.has(effect):
                told = self.reply_about(case, effect, now, key=event_id, note=note,
                                        received_at=from_iso(case["received_at"]))
        return self.state.case(receipt), told  # type: ignore[return-value]


def _service_dict(service: Service | None) -> dict | None:
    if service is None:
        return None
    return {"code": service.code, "name": service.name, "next_steps": service.next_steps, "days": service.days}
