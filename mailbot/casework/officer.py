"""Officer: what an officer does to a case, for ``app.Office`` (command line and console alike).

Owns: showing and listing cases (``case``, ``cases``), changing one (``set_case``: status,
note, what the citizen is told), cancelling a registration, recording why a case is late,
classifying an unclassified request (the service's receipt and its units follow, as the
pipeline would have sent them), forwarding a case to an internal unit by hand, confirming the
documents complete, marking a work-queue item dealt with, and releasing or discarding a reply
the service held back. Each change runs under the work lock it is given (``app.Office.work``),
records who did it (``actor``) and rewrites the registers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Callable

from .. import kinds
from ..config import Config, Rules
from ..errors import MailbotError
from ..mail.outbox import Outbox
from ..registers.numbering import normalise_receipt
from ..store import Row, State, from_iso, iso
from ..thai import thai_date, thai_date_short
from . import workflow
from .cases import Desk
from . import trust
from .trust import add_note
from .workflow import unknown_status

if TYPE_CHECKING:
    from ..intake.record import Recorder
    from ..ops.locks import Work
    from ..registers.service import Registers


@dataclass
class CaseView:
    case: Row
    checklist: object
    history: list[dict]
    mail: list[Row]                  # everything mailbot sent about the case, oldest first


def case_or_fail(state: State, receipt: str) -> Row:
    """The case with this receipt number, or the officer is told there is none."""
    case = state.case(receipt)
    if case is None:
        raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
    return case


class Officer:
    """An officer's actions on the cases of one office."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], rules: Rules, state: State, desk: Desk,
                 outbox: Outbox, recorder: "Recorder", registers: "Registers", work: "Work") -> None:
        self.cfg = cfg
        self.clock = clock
        self.rules = rules
        self.state = state
        self.desk = desk
        self.outbox = outbox
        self.recorder = recorder
        self.registers = registers
        self.work = work

    # ------------------------------------------------------------------ cases

    def case(self, receipt: str) -> CaseView:
        receipt = normalise_receipt(receipt)
        case = self.state.case(receipt)
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        mail = self.state.case_mail(case["id"])
        return CaseView(case, self.desk.checklist(case), self.desk.history(case), mail)

    def cases(self, status: str | None = None) -> list[Row]:
        key = None
        if status:
            key = workflow.status_key(status)
            if key is None:
                raise unknown_status(status)
        return self.state.cases_listed(key)     # urgent requests first, then in order of their numbers

    def set_case(self, receipt: str, *, status: str | None, note: str = "", tell: str = "",
                 actor: str) -> tuple[Row, str]:
        """An officer's change; the citizen is mailed only what ``tell`` says (or the status
        template, when one exists for the new status). Returns the case and what was sent."""
        receipt = normalise_receipt(receipt)
        with self.work():
            try:
                case, told = self.desk.officer_set(receipt, status, note, tell, actor, self.clock())
            except KeyError:
                raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}") from None
            except workflow.Cancelled:
                raise MailbotError(
                    "ยกเลิกเรื่องได้ด้วยคำสั่ง mailbot case cancel เลขรับ --reason \"เหตุผล\" เท่านั้น "
                    "และเรื่องที่ยกเลิกแล้วเปลี่ยนสถานะไม่ได้",
                    "cancel with `mailbot case cancel N --reason ...`; a cancelled case changes no more") from None
            except workflow.InvalidTransition:
                raise unknown_status(status or "") from None
            self.registers.write()
            return case, told

    def cancel_case(self, receipt: str, reason: str, actor: str) -> Row:
        """A registration cancelled: the row stays, marked ยกเลิก with the reason, who and when; its
        number is never given again."""
        receipt = normalise_receipt(receipt)
        if not reason.strip():
            raise MailbotError("ต้องระบุเหตุผลการยกเลิก (--reason \"...\")", "a cancellation needs a reason (--reason)")
        with self.work():
            now = self.clock()
            with self.state.tx():
                case = self.state.case(receipt)
                if case is None:
                    raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
                if case["cancelled_at"]:
                    raise MailbotError(f"เรื่อง {receipt} ถูกยกเลิกไปแล้ว", f"case {receipt} is already cancelled")
                self.state.update_case(case["id"], cancelled_at=iso(now), cancelled_by=actor,
                                       cancel_reason=reason.strip())
                case = self.desk.set_status(case, "cancelled", now, actor=actor)
                self.state.audit(now, actor, "cancelled", receipt, {"reason": reason.strip()})
                discarded = self.state.discard_case_mail(case["id"])
                if discarded:
                    self.state.update_case(case["id"], reply_status="ยกเลิก ไม่ส่งอีเมลที่ค้างอยู่")
            self.registers.write()
            return self.state.case_by_id(case["id"])

    def set_delay(self, receipt: str, reason: str, expected: str, actor: str) -> Row:
        """Why a case is late and when it should be done: what the Act's 7-day notice tells the citizen."""
        from ..config import person_date

        receipt = normalise_receipt(receipt)
        fields: dict[str, object] = {}
        if reason:
            fields["delay_reason"] = reason.strip()
        if expected:
            try:
                fields["expected_date"] = person_date(expected).isoformat()
            except ValueError:
                raise MailbotError(f"วันที่ไม่ถูกต้อง: {expected} (เขียนเช่น 15/1/2570)",
                                   f"bad date {expected!r}: write e.g. 15/1/2570") from None
        with self.work(), self.state.tx():
            case = self.state.case(receipt)
            if case is None:
                raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
            self.state.update_case(case["id"], **fields)
            when = (f" คาดว่าแล้วเสร็จ {thai_date(date.fromisoformat(str(fields['expected_date'])))}"
                    if "expected_date" in fields else "")
            self.desk.event(case, self.clock(), "officer:delay", f"เหตุที่ล่าช้า ({actor}): {reason}{when}".strip(),
                            actor=actor, action=True)
            return self.state.case_by_id(case["id"])

    def set_title(self, receipt: str, title: str, actor: str) -> Row:
        """The requester's title as the officer knows it (นาย, นาง, นางสาว, a rank): the result
        letter's เรียน and the licence register name them with it. Empty: none set (the title their
        name carries, else คุณ). Kept in the case's history, not in the register's columns."""
        from ..thai import addressee, one_line

        receipt = normalise_receipt(receipt)
        title = one_line(title, 200)
        if len(title) > 40 or any(ch.isdigit() or ch in "<>@/\\" for ch in title):
            raise MailbotError("คำนำหน้าชื่อไม่ถูกต้อง เขียนเช่น นาย นาง นางสาว หรือยศ เช่น ร.ต.อ. (ไม่เกิน 40 ตัวอักษร)",
                               "not a title: write e.g. นาย, นาง, นางสาว or a rank such as ร.ต.อ. "
                               "(40 characters at most)")
        with self.work(), self.state.tx():
            case = case_or_fail(self.state, receipt)
            now = self.clock()
            self.state.update_case(case["id"], sender_title=title or None)
            named = addressee(case["sender_name"] or "", title) or "-"
            note = (f"คำนำหน้าชื่อผู้ยื่น: {title} (เรียน {named})" if title
                    else f"ล้างคำนำหน้าชื่อผู้ยื่น (เรียน {named})")
            self.state.add_case_event(case["id"], now, "officer:title", note, actor=actor)
            self.state.audit(now, actor, "event:officer:title", receipt, {"note": note})
            return self.state.case_by_id(case["id"])

    # ------------------------------------------------------------------ held replies

    def held(self, failed: bool = False) -> list[Row]:
        return self.outbox.held(failed)

    def release(self, outbox_id: int, actor: str) -> Row:
        with self.work():
            row = self.outbox.release(outbox_id, actor, self.clock())
            self.registers.write()
            return row

    def discard(self, outbox_id: int, actor: str) -> Row:
        with self.work():
            row = self.outbox.discard(outbox_id, actor, self.clock())
            self.registers.write()
            return row

    # ------------------------------------------------------------------ the console's case actions

    def classify(self, receipt: str, code: str, actor: str, note: str = "") -> tuple[Row, str, list[str]]:
        """An unclassified request gets its service: the status, checklist and register follow, the
        citizen gets the service's receipt (its wording, checklist and fee), and the case goes to the
        service's units as the pipeline would have sent it (never a secret one). Held (flagged) mail
        gets its receipt held too, for the officer to release once sure of the sender."""
        from . import completeness
        from .completeness import File

        receipt = normalise_receipt(receipt)
        with self.work():
            now = self.clock()
            case = case_or_fail(self.state, receipt)
            service = self.desk.service(code)
            if service is None:
                raise MailbotError(f"ไม่รู้จักบริการรหัส {code}", f"no service with code {code} in rules.yaml")
            if case["service_code"]:
                raise MailbotError(f"เรื่อง {receipt} คัดแยกแล้ว ({case['service_name']})",
                                   f"case {receipt} is classified already ({case['service_code']})")
            if case["cancelled_at"] or case["status"] not in workflow.OPEN:
                raise MailbotError(f"เรื่อง {receipt} ยุติหรือยกเลิกแล้ว คัดแยกไม่ได้",
                                   f"case {receipt} is closed or cancelled; it cannot be classified")
            flagged = trust.is_flagged(case["held"], case["remark"])
            with self.state.tx():
                files = [File(r["name"], r["size"], r["content_type"]) for r in self.state.case_files(case["id"])]
                checklist = completeness.check(service, files)
                fields: dict[str, object] = dict(service_code=service.code, service_name=service.name,
                                                 checklist=json.dumps(checklist.as_dict(), ensure_ascii=False))
                status = workflow.initial(True, checklist.verdict) if case["status"] == "review" else case["status"]
                if status == "awaiting_documents" and case["status"] != status:
                    fields.update(awaiting_since=iso(now), reminded_at=None)
                elif status in workflow.AGENCY_CLOCK:     # the service's time, from the day received
                    fields["due_date"] = self.recorder.due(service, from_iso(case["received_at"]))
                case = self.desk.set_status(case, status, now, actor=actor, **fields)
                text = f"คัดแยกเป็น {service.name} {thai_date_short(now)} ({actor})" + (f": {note}" if note else "")
                event_id = self.desk.event(case, now, "officer:classify", text, actor=actor, action=True)
                # as the pipeline: the service's receipt, and its units (never a secret case, never
                # a held one: the officer releases the receipt once sure of the sender)
                told, warnings = self.recorder.answer_opened(
                    case, service, checklist, now, kind="receipt", key=event_id,
                    received_at=from_iso(case["received_at"]), message_row=None, raw=self.desk.case_raw(case),
                    secret=bool(case["secrecy"]), actor=actor,
                    hold=f"flagged: {case['held'] or 'claims to be the agency'}" if flagged else None)
            self.registers.write()
            return self.state.case_by_id(case["id"]), told, warnings

    def units(self) -> list[str]:
        """The internal units named in rules.yaml (``forward_to``), for forwarding by hand."""
        return list(dict.fromkeys(u for s in self.rules.services for u in s.forward_to if self._inside(u)))

    def forward_case(self, receipt: str, unit: str, actor: str, note: str = "") -> list[str]:
        """Send a case to an internal unit by hand (an address of the agency's own domains), with
        the original e-mail and stamped copies of its PDFs; returns warnings."""
        receipt = normalise_receipt(receipt)
        unit = " ".join((unit or "").split())
        if not self._inside(unit):
            raise MailbotError(f"ส่งต่อได้เฉพาะที่อยู่อีเมลในโดเมนของหน่วยงาน ({', '.join(self.cfg.agency.own_domains)}): {unit}",
                               f"forwarding goes only to the agency's own domains: {unit!r}")
        with self.work():
            now = self.clock()
            case = case_or_fail(self.state, receipt)
            raw = self.desk.case_raw(case)
            if raw is None:
                raise MailbotError("ไม่พบต้นฉบับอีเมลของเรื่องนี้ในคลัง ส่งต่อไม่ได้",
                                   "the case's original message is not in the archive; cannot forward")
            with self.state.tx():
                if note:
                    self.desk.event(case, now, "officer:note", f"บันทึก {thai_date_short(now)} ({actor}): {note}",
                                    actor=actor, action=True)
                warnings = self.desk.forward(self.state.case_by_id(case["id"]), raw, self.desk.checklist(case), now,
                                             units=[unit], actor=actor)
            self.registers.write()
            return warnings

    def documents_complete(self, receipt: str, actor: str) -> tuple[Row, str]:
        """The officer checked the files: the documents are complete. A case awaiting documents
        returns to รับเรื่องแล้ว and the citizen is told; otherwise it is noted."""
        receipt = normalise_receipt(receipt)
        with self.work():
            now = self.clock()
            case = case_or_fail(self.state, receipt)
            told = "ไม่ได้แจ้งผู้ยื่น"
            with self.state.tx():
                data = self.desk.checklist(case).confirmed().as_dict()
                data.update(confirmed_by=actor, confirmed_at=iso(now))
                self.state.update_case(case["id"], checklist=json.dumps(data, ensure_ascii=False))
                if case["status"] == "awaiting_documents":
                    effect = self.desk.apply(self.state.case_by_id(case["id"]), "documents_complete", now, actor=actor)
                    told = "รอส่ง" if effect else told
                self.desk.event(self.state.case_by_id(case["id"]), now, "officer:documents_complete",
                                f"ตรวจเอกสารแล้ว ครบ {thai_date_short(now)} ({actor})", actor=actor, action=True)
            self.registers.write()
            return self.state.case_by_id(case["id"]), told

    def confirm_forward(self, receipt: str, actor: str) -> tuple[Row, str, list[str]]:
        """A staff forward nothing could vouch for (no trust.authserv_id) was registered under the
        forwarding address and held: the officer, having checked with the colleague, confirms it.
        The case is then the citizen's (the register's sender columns; its number, date of receipt
        and subject stay), the receipt held for the colleague is withdrawn, and the citizen gets
        the service's receipt; the units get the case as the pipeline would have sent it."""
        from ..mail import forwarded
        from ..mail.parse import parse
        from .trust import UNVOUCHED_FORWARD

        receipt = normalise_receipt(receipt)
        marker = UNVOUCHED_FORWARD.split("{sender}")[-1]
        with self.work():
            now = self.clock()
            case = case_or_fail(self.state, receipt)
            if not case["held"] or marker not in case["held"]:
                raise MailbotError(f"เรื่อง {receipt} ไม่ได้รอการยืนยันการส่งต่อของเจ้าหน้าที่",
                                   f"case {receipt} is not a staff forward waiting for confirmation")
            raw = self.desk.case_raw(case)
            letter = parse(raw) if raw is not None else None
            original = forwarded.extract(letter, letter.embedded) if letter is not None else None
            if original is None or not original.from_addr:
                raise MailbotError("หาผู้ยื่นต้นทางในอีเมลที่ส่งต่อไม่พบ ให้ลงทะเบียนด้วยมือแทน",
                                   "the citizen inside the forward cannot be found; register it by hand instead")
            staff = case["sender_addr"]
            service = self.desk.service(case["service_code"])
            with self.state.tx():
                self.state.discard_case_mail(case["id"])           # the receipt held for the colleague
                self.state.update_case(
                    case["id"], sender_name=original.from_name or None, sender_addr=original.from_addr,
                    reply_to=original.from_addr, via=staff, held=None,
                    remark=add_note(case["remark"] or "", f"รับผ่านช่องทางอื่น ส่งต่อโดย {staff} "
                                                          f"(ยืนยันโดย {actor} {thai_date_short(now)})"))
                case = self.state.case_by_id(case["id"])
                event_id = self.desk.event(case, now, "officer:confirm_forward",
                                           f"ยืนยันการส่งต่อจาก {staff}: ผู้ยื่นคือ {original.from_addr} "
                                           f"{thai_date_short(now)} ({actor})", actor=actor, action=True)
                told, warnings = self.recorder.answer_opened(
                    case, service, self.desk.checklist(case), now, kind="receipt" if service else "unclassified",
                    key=event_id, received_at=from_iso(case["received_at"]), message_row=None, raw=raw,
                    secret=bool(case["secrecy"]), actor=actor)
            self.registers.write()
            return self.state.case_by_id(case["id"]), told, warnings

    def acknowledge(self, kind: str, ref: int, actor: str) -> None:
        """The officer has dealt with an item of the work queue another way: a bounced or failed
        mail (``mail``), a quarantined message that needs nothing (``quarantine``), or flagged mail
        looked at (``flagged``, a case id)."""
        if kind not in ("mail", "quarantine", "flagged"):
            raise MailbotError("ไม่รู้จักรายการนี้", f"unknown item kind {kind!r}")
        with self.work():
            now = self.clock()
            with self.state.tx():
                if kind == "flagged":
                    case = self.state.case_by_id(ref)
                    if case is None:
                        raise MailbotError("ไม่พบเรื่องนี้", "no such case")
                    self.desk.event(case, now, "officer:reviewed",
                                    f"{trust.reviewed_note(case['held'], case['remark'])} {thai_date_short(now)} ({actor})",
                                    actor=actor, action=True)
                else:
                    if kind == "mail" and self.state.outbox_case_kind(ref) is None:
                        raise MailbotError("ไม่พบอีเมลนี้", f"no outgoing message #{ref}")
                    held = self.state.message_row(ref) if kind == "quarantine" else None
                    if kind == "quarantine" and (held is None or held["outcome"] != kinds.Outcome.QUARANTINED):
                        raise MailbotError("ไม่พบข้อความกักกันนี้", f"no quarantined message #{ref}")
                    self.state.acknowledge(kind, ref, actor, now)
                    if kind == "mail":
                        row = self.state.outbox_case_kind(ref)
                        if row is not None and row["case_id"] is not None:
                            self.desk.event(self.state.case_by_id(row["case_id"]), now, "officer:mail_seen",
                                            f"รับทราบว่าส่งอีเมลไม่สำเร็จ ({kinds.kind_label(row['kind'])}) {thai_date_short(now)} ({actor})",
                                            actor=actor)
                    else:
                        self.state.event(now, "info", "quarantine_dismissed", f"ข้อความกักกัน #{ref} ไม่ต้องดำเนินการ โดย {actor} / message #{ref} dismissed by {actor}")
            self.registers.write()

    # helpers of this section

    def _inside(self, entry: str) -> bool:
        import email.utils

        _, address = email.utils.parseaddr(entry)
        return bool(address) and "@" in address and self.desk.allowed(address)
