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
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

from ..config import PLACEHOLDER_HOLD, Config, Rules, Service, is_placeholder_address
from ..errors import TemplateError, explain_environment
from ..files import write_atomic
from ..intake.classify import receipt_tags
from ..mail.outbox import Outbox
from ..mail.parse import pdf_attachments, without_pdfs
from ..store import Row, State, from_iso, iso
from ..thai import one_line, thai_date, thai_date_short, thai_datetime, to_bangkok
from . import completeness, workflow
from .completeness import Checklist, File
from .replies import Templates, context, tag
from .triage import SECRET_MASK
from .trust import add_note, defang_filename

log = logging.getLogger(__name__)


def append_note(old: str | None, note: str) -> str:
    """One more register note; warnings are never pushed out, routine notes fold (trust.add_note)."""
    return add_note(old, note)


@dataclass
class Desk:
    cfg: Config
    rules: Rules
    state: State
    templates: Templates
    outbox: Outbox

    # ------------------------------------------------------------------ replies

    def case_context(self, case: Row, received_at: datetime, *, checklist: Checklist | None = None,
                     **extra: object) -> dict:
        service = self.service(case["service_code"])
        ctx = context(
            self.cfg.agency, receipt=case["receipt"], received_at=received_at, subject=case["subject"] or "",
            sender_name=case["sender_name"] or "", service=_service_dict(service),
            attachments=case["attachments"] or 0, sender_title=case["sender_title"] or "",
            language=case["language"],
        )
        ctx["checklist"] = echoed((checklist or self.checklist(case)).as_dict())
        if case["secrecy"]:          # a secret request is never echoed: its replies carry the number only
            ctx["subject"] = SECRET_MASK
        ctx["status"] = workflow.label(case["status"])
        ctx["status_en"] = workflow.label_en(case["status"])
        ctx["via_staff"] = case["via"] or ""
        ctx["deadline"] = ""
        ctx.update(extra)
        return ctx

    def reply_about(self, case: Row, kind: str, now: datetime, *, key: int,
                    received_at: datetime | None = None, message_row: int | None = None,
                    recipient: str | None = None, files: tuple[tuple[str, bytes], ...] = (),
                    hold: str | None = None, checklist: Checklist | None = None, **extra: object) -> str:
        """A message to the requester about their case, in the thread of their request."""
        ctx = self.case_context(case, received_at or now, checklist=checklist, **extra)
        subject = SECRET_MASK if case["secrecy"] else (case["subject"] or "")
        return self.outbox.queue(kind, recipient=recipient or case["reply_to"], subject=subject,
                                 receipt=case["receipt"], in_reply_to=case["message_id"],
                                 references=(case["message_id"],) if case["message_id"] else (),
                                 key=key, key_hash=case["sha256"] or case["receipt"], now=now, ctx=ctx,
                                 case_id=case["id"], message_row=message_row, files=files, hold=hold)

    # ------------------------------------------------------------------ documents

    def service(self, code: str | None) -> Service | None:
        for s in self.rules.services:
            if s.code == code:
                return s
        return None

    def add_files(self, case_id: int, message_row: int | None, attachments, at: datetime) -> None:
        self.state.add_case_files(case_id, message_row,
                                  [(a.name, a.size, a.content_type) for a in attachments if not a.inline], at)

    def checklist(self, case: Row) -> Checklist:
        files = [File(r["name"], r["size"], r["content_type"]) for r in self.state.case_files(case["id"])]
        found = completeness.check(self.service(case["service_code"]), files)
        return found.confirmed() if confirmed_by_officer(case) else found

    def store_checklist(self, case_id: int, checklist: Checklist) -> None:
        self.state.update_case(case_id, checklist=json.dumps(checklist.as_dict(), ensure_ascii=False))

    # ------------------------------------------------------------------ events

    def event(self, case: Row, at: datetime, kind: str, note: str, *, actor: str = "mailbot",
              message_row: int | None = None, action: bool = False) -> int:
        """Record a case event; it shows in the register (การปฏิบัติ if action, else หมายเหตุ)."""
        event_id = self.state.add_case_event(case["id"], at, kind, note, actor=actor, message_row=message_row)
        self.state.audit(at, actor, f"event:{kind}", case["receipt"], {"note": note})
        fresh = self.state.case_by_id(case["id"])
        column = "action" if action else "remark"
        self.state.update_case(case["id"], **{column: append_note(fresh[column], note)})
        return event_id

    def set_status(self, case: Row, status: str, at: datetime, actor: str = "mailbot",
                   **fields: object) -> Row:
        self.state.update_case(case["id"], status=status, **fields)
        if status != case["status"]:
            self.state.audit(at, actor, "status", case["receipt"], {"from": case["status"], "to": status})
        return self.state.case_by_id(case["id"])

    def apply(self, case: Row, event: str, now: datetime, *, actor: str = "mailbot",
              message_row: int | None = None, received_at: datetime | None = None) -> str | None:
        """Run one workflow event on a case: new status, event row, and the citizen told."""
        new, effect = workflow.transition(case["status"], event)
        fields: dict[str, object] = {}
        if new == "awaiting_documents" and event == "documents_incomplete":
            fields.update(awaiting_since=iso(now), reminded_at=None)   # the citizen answered: clock restarts
        if event == "reminder_due":
            fields["reminded_at"] = iso(now)
        if case["status"] == "awaiting_documents" and new in workflow.AGENCY_CLOCK:   # the service time starts
            service = self.service(case["service_code"])
            due = workflow.due_date(to_bangkok(now).date(), service.days if service else None,
                                    self.cfg.schedule.workdays, self.cfg.schedule.holidays)
            if due:
                fields["due_date"] = due.isoformat()
        case = self.set_status(case, new, now, actor=actor, **fields)
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
            extra: dict[str, Any] = {}      # template context
            if effect == "reminder":
                extra["deadline"] = thai_date(self.close_date(now))
            extra["confirmed_by_officer"] = bool(confirmed_by_officer(case))
            self.reply_about(case, effect, now, key=event_id, received_at=received_at or now,
                             message_row=message_row, **extra)
        return effect

    def close_date(self, reminded: datetime) -> datetime:
        s = self.cfg.schedule
        day = workflow.add_working_days(to_bangkok(reminded).date(), self.cfg.workflow.close_days,
                                        s.workdays, s.holidays)
        return to_bangkok(reminded).replace(year=day.year, month=day.month, day=day.day)

    def tick(self, now: datetime) -> list[tuple[str, str | None]]:
        """Reminders and closures that are due; returns (receipt, effect) pairs."""
        s, w = self.cfg.schedule, self.cfg.workflow
        today = to_bangkok(now).date()
        done: list[tuple[str, str | None]] = []
        # a case whose receipt is held (unauthenticated sender) gets nothing automatic: no backscatter
        rows = self.state.unheld_cases_in("awaiting_documents")
        for case in rows:
            with self._one_case(case):
                with self.state.tx():
                    if case["reminded_at"]:
                        since = to_bangkok(from_iso(case["reminded_at"])).date()
                        if workflow.working_days_between(since, today, s.workdays, s.holidays) >= w.close_days:
                            done.append((case["receipt"], self.apply(case, "close_due", now)))
                    else:
                        since = to_bangkok(from_iso(case["awaiting_since"] or case["received_at"])).date()
                        if workflow.working_days_between(since, today, s.workdays, s.holidays) >= w.reminder_days:
                            done.append((case["receipt"], self.apply(case, "reminder_due", now)))
        done += self._late(now, today)
        return done

    def _late(self, now: datetime, today) -> list[tuple[str, str]]:
        """Cases past their service time: the Act's notice (reason, expected date) every 7 days;
        results decided but not sent within 7 days: an alert to the officers (once a day)."""
        done: list[tuple[str, str]] = []
        rows = self.state.late_cases(today.isoformat())
        for case in rows:
            last = to_bangkok(from_iso(case["late_notified_at"])).date() if case["late_notified_at"] else None
            if not workflow.late_notice_due(case["status"], date.fromisoformat(case["due_date"]), today, last):
                continue
            with self._one_case(case), self.state.tx():
                reason = case["delay_reason"] or "อยู่ระหว่างการพิจารณาของเจ้าหน้าที่"
                expected = (thai_date(date.fromisoformat(case["expected_date"])) if case["expected_date"]
                            else thai_date(workflow.add_working_days(today, workflow.NOTICE_EVERY_DAYS,
                                                                     self.cfg.schedule.workdays,
                                                                     self.cfg.schedule.holidays)))
                event_id = self.event(case, now, "late_notice", f"แจ้งเหตุล่าช้า {thai_date_short(now)}: {reason}",
                                      action=True)
                self.state.update_case(case["id"], late_notified_at=iso(now))
                self.reply_about(case, "late_notice", now, key=event_id, received_at=from_iso(case["received_at"]),
                                 note=reason, message=expected,
                                 deadline=thai_date(date.fromisoformat(case["due_date"])))
            done.append((case["receipt"], "late_notice"))
        return done

    @contextmanager
    def _one_case(self, case: Row) -> Iterator[None]:
        """One case's scheduled work: a bug on one case is logged and the others go on; a failure
        of the machine stops the cycle (errors.explain_environment)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001
            if explain_environment(exc, self.cfg.data_dir) is not None:
                raise
            log.exception("scheduled work on case %s failed", case["receipt"])

    def results_not_sent(self, today) -> list[Row]:
        """Cases decided (result letter written) whose result has not gone out within 7 days."""
        rows = self.state.decided_open_cases()
        return [c for c in rows if workflow.result_overdue(to_bangkok(from_iso(c["decided_at"])).date(),
                                                            c["status"], today)]

    def due_soon(self, today, days: int = 7) -> list[Row]:
        """Open cases overdue or due within ``days`` (for the daily log and the console)."""
        until = (today + timedelta(days=days)).isoformat()
        return self.state.cases_due_by(until)

    # ------------------------------------------------------------------ forwarding

    def allowed(self, address: str) -> bool:
        domain = address.rsplit("@", 1)[-1].lower()
        return domain in self.cfg.agency.own_domains

    def forward(self, case: Row, raw: bytes, checklist: Checklist, now: datetime,
                units: list[str] | None = None, actor: str = "mailbot") -> list[str]:
        """Send the case to its service's units (or to ``units``, an officer's choice), with the
        original e-mail and a copy of each PDF it brought stamped ตรารับ (the original bytes stay
        in the archive); returns warnings. The stamped copies come from ``StampCache``: when one
        is not made yet, the forward waits (``forwards_wanted``) for ``stamp_wanted`` to make it
        outside the batch and the work lock, and ``send_wanted`` to send it."""
        service = self.service(case["service_code"])
        warnings: list[str] = []
        targets = list(units) if units is not None else (list(service.forward_to) if service else [])
        if not targets:
            return warnings
        stamped: list[tuple[str, bytes]] = []
        pdfs = pdf_attachments(raw)
        if pdfs:
            from ..documents.stamp import StampCache, stamped_name

            cache = StampCache(self.cfg.data_dir)
            found = [(name, cache.get(data, case["receipt"])) for name, data in pdfs]
            if any(f is None for _, f in found):
                self.state.want_forward(case["id"], targets, actor, now)
                return warnings
            for name, f in found:
                assert f is not None
                copy, why = f
                if copy is not None:
                    stamped.append((stamped_name(name), copy))
                else:
                    warnings.append(f"ประทับตรารับไฟล์ {name} ของเรื่อง {case['receipt']} ไม่ได้ ส่งต่อฉบับเดิม / "
                                    f"could not stamp {name}: {(why or '').splitlines()[0] if why else ''}")
        for entry in targets:
            unit, address = email.utils.parseaddr(entry)
            # a starter example address left in rules.yaml: never sent, held for the officer (and
            # alerted at the end of the cycle); a workspace that is itself an example (the demo,
            # the tests) forwards within its example domain as usual
            placeholder = is_placeholder_address(address) and not is_placeholder_address(self.cfg.agency.address)
            if not placeholder and (not address or not self.allowed(address)):
                warnings.append(
                    f"ไม่ส่งต่อเรื่อง {case['receipt']} ไปยัง {entry}: อยู่นอกโดเมนของหน่วยงาน / "
                    f"not forwarded to {entry}: outside the agency's own domains")
                continue
            unit = unit or address.split("@")[0]
            note = f"ส่ง {unit} {thai_date_short(now)}"
            event_id = self.event(case, now, "forwarded", note, action=True, actor=actor)
            ctx = self.case_context(case, from_iso(case["received_at"]), checklist=checklist, unit=unit,
                                    sender_addr=case["sender_addr"] or "")
            ctx["stamped"] = [name for name, _ in stamped]
            # the stamped copies travel beside the original: its own PDFs are left out of it
            kept = without_pdfs(raw, "แนบแยกเป็นฉบับประทับตรารับ / attached stamped") if stamped else raw
            original: bytes | None = kept
            files: tuple[tuple[str, bytes], ...] = tuple(stamped)
            limit = self.outbox.size_limit()
            if limit and len(kept) * 4 // 3 + sum(len(d) for _, d in files) * 4 // 3 > limit * 0.95:
                # over what the mail server takes (its SIZE): the files stay at the saraban desk, the
                # unit opens them in the console; nothing is refused with 552
                ctx["too_large"] = {"limit_mb": f"{limit / 1024 / 1024:.0f}",
                                    "files": [name for name, _ in pdfs] or ["(อีเมลต้นฉบับ)"],
                                    "link": self.console_link(case["receipt"])}
                ctx["stamped"] = []
                original, files = None, ()
            self.outbox.queue("forward", recipient=address,
                              subject=f"ส่งต่อ {tag(case['receipt'])} {case['subject'] or ''}", key=event_id,
                              key_hash=case["sha256"] or case["receipt"], now=now, ctx=ctx, case_id=case["id"],
                              attach=original, files=files,
                              hold=f"{PLACEHOLDER_HOLD}: {address}" if placeholder else None)
        return warnings

    def console_link(self, receipt: str) -> str:
        """Where the case opens in the officer's console (as the machine running mailbot serves it)."""
        listen = self.cfg.console.listen if isinstance(self.cfg.console.listen, str) else "localhost"
        host = "localhost" if listen in ("", "*", "0.0.0.0", "::", "127.0.0.1", "localhost") else listen
        seq, _, year = receipt.partition("/")
        return f"http://{host}:{self.cfg.console.port}/cases/{year}/{seq}"

    def case_raw(self, case: Row) -> bytes | None:
        """The raw message a case was registered from (its archive copy), if it is still there."""
        root = self.cfg.data_dir.resolve()
        if not case["archive"]:
            return None
        path = (root / case["archive"]).resolve()
        return path.read_bytes() if root in path.parents and path.is_file() else None

    def stamps_ready(self, case: Row, raw: bytes) -> bool:
        """Every PDF of the message has its stamped copy made (or its reason why not)."""
        from ..documents.stamp import StampCache

        cache = StampCache(self.cfg.data_dir)
        return all(cache.get(data, case["receipt"]) is not None for _, data in pdf_attachments(raw))

    def stamp_for(self, case: Row, raw: bytes) -> int:
        """Make the stamped copies of a case's PDFs that are not made yet (slow: call it outside
        the batch's transaction and the work lock); returns how many files were tried."""
        pdfs = pdf_attachments(raw)
        if not pdfs:
            return 0
        from ..documents.stamp import StampCache

        limits = self.cfg.limits
        return StampCache(self.cfg.data_dir).fill(pdfs, agency=self.cfg.agency.name, receipt=case["receipt"],
                                                  when=from_iso(case["received_at"]), timeout=limits.stamp_seconds,
                                                  max_pages=limits.stamp_max_pages)

    # ------------------------------------------------------------------ status inquiries

    def history(self, case: Row, citizen: bool = False) -> list[dict]:
        """The case's events, oldest first. For the citizen (status answers): no internal notes,
        no officer names, no other people's inquiries — only what happened to the case."""
        out = [{"at": thai_datetime(from_iso(case["received_at"])), "note": f"รับเรื่อง เลขรับ {case['receipt']}",
                "actor": "mailbot"}]
        for r in self.state.case_events(case["id"]):
            note = r["note"]
            if citizen:
                note = _public_note(r["kind"], r["note"])
                if note is None:
                    continue
            out.append({"at": thai_datetime(from_iso(r["at"])), "note": note,
                        "actor": "" if citizen else (r["actor"] or "")})
        return out

    def known_case(self, letter, ref=None) -> tuple[Row | None, bool]:
        """The case a letter refers to (by its receipt reference or its threading headers), and whether
        its threading headers name a reply mailbot sent. ``ref``: classify.reference(letter)."""
        st = self.state
        for receipt in ([ref.receipt] if ref is not None else receipt_tags(letter.subject)):
            row = st.case(receipt)
            if row is not None:
                _, ours = st.case_for_thread(list(letter.in_reply_to + letter.references))
                return row, ours
        return st.case_for_thread(list(letter.in_reply_to + letter.references))

    def is_requester(self, case: Row, address: str | None) -> bool:
        if not address:
            return False
        known = {a.lower() for a in (case["sender_addr"], case["reply_to"]) if a}
        return address.lower() in known

    # ------------------------------------------------------------------ outbox hooks

    def mail_sent(self, row: Row, now: datetime) -> None:
        """A result e-mail left: only now is the case ส่งผลการพิจารณาแล้ว (inside the outbox's
        transaction)."""
        if row["kind"] != "result" or row["case_id"] is None:
            return
        from ..registers import dispatch

        dispatch.mail_done(self.state, row["message_id"], now, sent=True)
        case = self.state.case_by_id(row["case_id"])
        self.state.set_result_status(row["message_id"], "sent")
        self.event(case, now, "result_sent", f"{workflow.label('completed')} {thai_date_short(now)}", action=True)
        try:
            new, _ = workflow.transition(case["status"], "result_sent")
        except workflow.InvalidTransition:
            return   # already closed: the result went out, the status stays
        self.set_status(case, new, now)

    def mail_failed(self, row: Row, error: str, now: datetime) -> None:
        """A message the server refused for good: the case says so; a result is a problem file."""
        if row["case_id"] is None:
            return
        case = self.state.case_by_id(row["case_id"])
        if row["kind"] == "result":
            from ..registers import dispatch

            dispatch.mail_done(self.state, row["message_id"], now, sent=False, error=error)
            self.state.set_result_status(row["message_id"], "failed")
            self.event(case, now, "result_failed",
                       f"ส่งผลการพิจารณาทางอีเมลไม่สำเร็จ {thai_date_short(now)}: {error[:120]}", action=True)
            result = self.state.result_by_message(row["message_id"])
            refused_note(self.cfg, case, result["file_name"] if result else case["receipt"], error, now)

    # ------------------------------------------------------------------ officer actions

    def officer_set(self, receipt: str, status: str | None, note: str, tell: str, actor: str,
                    now: datetime) -> tuple[Row, str]:
        """An officer's action on a case: a new status and/or an internal note (never sent to
        anyone) and/or a message to the citizen (``tell``, sent only when given). When the status
        changes and ``templates/status_<status>.txt.j2`` exists the citizen is told of the new
        status (with the message, if any). Returns the case and what the citizen was told."""
        case = self.state.case(receipt)
        if case is None:
            raise KeyError(receipt)
        key = None
        if status:
            key = workflow.status_key(status)
            if key is None:
                raise workflow.InvalidTransition(status)
        with self.state.tx():
            told = "ไม่ได้แจ้งผู้ยื่น"
            if key is not None and key != case["status"]:
                new, effect = workflow.officer_set(case["status"], key)
                fields: dict[str, object] = {}
                if new == "awaiting_documents":
                    fields.update(awaiting_since=iso(now), reminded_at=None)
                case = self.set_status(case, new, now, actor=actor, **fields)
                text = f"{workflow.label(new)} {thai_date_short(now)} ({actor})" + (f": {note}" if note else "")
                event_id = self.event(case, now, f"officer:{new}", text, actor=actor, action=True)
                if effect and self.templates.has(effect):
                    try:
                        told = self.reply_about(case, "officer_status", now, key=event_id, message=tell,
                                                received_at=from_iso(case["received_at"]), status_key=new)
                        tell = ""
                    except TemplateError as exc:      # a broken optional template: the change stands
                        told = f"ไม่ได้แจ้งผู้ยื่น: แม่แบบ {effect} มีข้อผิดพลาด / not told: {exc.english}"
            elif note:
                self.event(case, now, "officer:note", f"บันทึก {thai_date_short(now)} ({actor}): {note}",
                           actor=actor, action=True)
            if tell:
                event_id = self.event(case, now, "officer:tell", f"แจ้งผู้ยื่น {thai_date_short(now)} ({actor}): {tell}",
                                      actor=actor, action=True)
                told = self.reply_about(case, "officer_message", now, key=event_id, message=tell,
                                        received_at=from_iso(case["received_at"]))
        return self.state.case_by_id(case["id"]), told


def _public_note(kind: str, note: str) -> str | None:
    """What a citizen may read of a case event (None: internal)."""
    if kind.startswith("officer:"):
        status = kind.split(":", 1)[1]
        if status in workflow.STATUSES:
            return workflow.label(status)
        return "เจ้าหน้าที่แจ้งข้อความถึงท่านทางอีเมล" if status == "tell" else None
    if kind in ("inquiry", "bounce") or kind.startswith("reply_"):
        return None
    return note


def _service_dict(service: Service | None) -> dict | None:
    if service is None:
        return None
    return {"code": service.code, "name": service.name, "name_en": service.name_en or service.name,
            "next_steps": service.next_steps, "days": service.days}


def refused_note(cfg: Config, case, file_name: str, error: str, now: datetime) -> Path:
    """results/problems/<file>.ส่งไม่สำเร็จ.txt: the signed result could not be e-mailed."""
    folder = cfg.resolve(cfg.results.problems)
    target = folder / f"{Path(file_name).stem}.ส่งไม่สำเร็จ.txt"
    text = (f"เรื่องเลขทะเบียนรับ {case['receipt']}\nไฟล์: {file_name}\nเวลา: {thai_datetime(now)}\n\n"
            f"ลงนามแล้ว แต่เซิร์ฟเวอร์อีเมลไม่ยอมส่งผลการพิจารณาถึง {case['reply_to']}\n"
            f"คำตอบของเซิร์ฟเวอร์: {error}\n"
            "ไฟล์ที่ลงนามแล้วอยู่ใน results/sent ให้ส่งผลทางช่องทางอื่น (เช่น ลดขนาดไฟล์ ไปรษณีย์ หรือรับด้วยตนเอง)\n\n"
            f"The signed result for case {case['receipt']} was refused by the mail server: {error}\n"
            "The signed file is in results/sent; deliver it another way.\n")
    write_atomic(target, text.encode("utf-8"))
    return target


def confirmed_by_officer(case: Row) -> str:
    """Who confirmed the case's documents complete (the stored checklist), or ""."""
    try:
        stored = json.loads(case["checklist"] or "{}")
    except (TypeError, ValueError):
        return ""
    who = stored.get("confirmed_by") if isinstance(stored, dict) else None
    return who if isinstance(who, str) else ""


def echoed(checklist: dict) -> dict:
    """The checklist as mail shows it to people: every file name a sender chose made inert
    ("ชำระที่ www.evil-pay.com ด่วน.pdf" gives no working link), one line each."""
    out = dict(checklist)
    for key in ("files", "rejected"):
        out[key] = [{**f, "name": defang_filename(one_line(str(f.get("name", "")), 200))}
                    for f in checklist.get(key, [])]
    return out
