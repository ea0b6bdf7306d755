"""App: the one application core that every face (command line, service, demo, console) calls.

Owns: wiring an office from its config — state database, rules, templates, outbox, case desk,
alerts, registers — and offering the officer's actions as plain methods: poll, process
results, write a result letter, show/list/set a case, release or discard a held reply, the
daily log, backup, restore, status, publish, check and the rules test. Every action that
changes data runs under the work lock (``locks.WorkLock``): never at the same moment as a
cycle on the same data folder; a person who must wait is told so. Faces only parse their
input, call one method and show the result.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from .casework import workflow
from .casework.cases import Desk
from .casework.replies import Templates, context, template_globals
from .clock import Clock, utcnow
from .config import Config, load_rules
from .errors import ConnectionFailure, MailbotError, explain_environment
from .intake.cycle import Cycle, CycleReport, Progress
from .intake.record import Recorder
from . import kinds
from .kinds import send_state
from .mail.mailbox import CONNECTION_ERRORS, Mailbox, refused_by_server
from .mail.outbox import Delivery, Outbox, day_start
from .mail.smtp import Smtp
from .ops.alerts import Alerts
from .ops.archive import Archive
from .ops.locks import WorkLock
from .registers import dispatch
from .registers.numbering import numbering_year
from .registers.receive import Numbering, write_registers
from .store import CaseSearch, Row, State, audit, from_iso, iso
from .thai import BANGKOK as _BANGKOK
from .thai import thai_date, thai_date_short, thai_digits_to_arabic, to_bangkok

log = logging.getLogger(__name__)

Notify = Callable[[str, str], None]     # (thai, english): something a person should know now


def _quiet(thai: str, english: str) -> None:
    log.info("%s / %s", thai, english)


def normalise_receipt(text: str) -> str:
    return thai_digits_to_arabic(text).replace(" ", "").strip()


@dataclass
class CaseView:
    case: Row
    checklist: object
    history: list[dict]
    mail: list[Row]                  # everything mailbot sent about the case, oldest first


@dataclass
class ResultsRun:
    report: object                   # results.ResultsReport
    delivery: Delivery = field(default_factory=Delivery)
    letter: Path | None = None


class Office:
    """One agency's data folder, opened from its config."""

    def __init__(self, cfg: Config, clock: Clock = utcnow, notify: Notify = _quiet) -> None:
        self.cfg = cfg
        self.clock = clock
        self.notify = notify
        self.work_lock = WorkLock(cfg.data_dir)
        self.state = State(cfg.data_dir / "state.sqlite3")
        try:
            self.rules = load_rules(cfg.rules_path)
            self.templates = Templates(cfg.templates_dir, template_globals(cfg))
        except BaseException:
            self.state.close()
            raise
        self.outbox = Outbox(cfg, self.state, self.templates)
        self.desk = Desk(cfg, self.rules, self.state, self.templates, self.outbox)
        self.recorder = Recorder(cfg, self.state, self.desk, self.outbox, Archive(cfg.data_dir))
        self.alerts = Alerts(cfg, self.state, self.outbox)
        self.outbox.on_sent.append(self.desk.mail_sent)
        self.outbox.on_failed.append(self.desk.mail_failed)

    @classmethod
    def open(cls, cfg: Config, clock: Clock = utcnow, notify: Notify = _quiet) -> "Office":
        return cls(cfg, clock, notify)

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> "Office":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def work(self, officer: bool = True):
        """The work lock for one action (see locks.WorkLock)."""
        return self.work_lock.hold(self.notify, officer=officer)

    # ------------------------------------------------------------------ intake

    def poll(self, stop=None, progress: Progress | None = None) -> CycleReport:
        """One cycle: fetch, decide, reply, move; results, reminders; registers; alerts."""
        with self.work(officer=False):
            now = self.clock()
            template_problems: list[str] = []
            self.templates.check(self.cfg.agency, now, template_problems)
            try:
                try:
                    with Mailbox(self.cfg.imap) as mb, Smtp(self.cfg.smtp, self.cfg.agency.address) as smtp:
                        report = Cycle(self, mb, smtp, stop, progress).run()
                except CONNECTION_ERRORS as exc:  # connection lost mid-cycle: state is consistent
                    if explain_environment(exc, self.cfg.data_dir) is not None:
                        raise                       # the disk, not the connection: handled below
                    if refused_by_server(exc):          # the server answered NO or BAD to a command
                        raise ConnectionFailure(
                            "เซิร์ฟเวอร์อีเมลไม่ยอมทำตามคำสั่ง (เช่น กล่องเต็ม) งานที่บันทึกแล้วไม่สูญหาย รอบถัดไปจะทำต่อ",
                            f"the mail server refused a command ({str(exc)[:160]}); "
                            "committed work is safe and the next cycle continues",
                        ) from None
                    raise ConnectionFailure(
                        "การเชื่อมต่อกับเซิร์ฟเวอร์อีเมลขาดระหว่างทำงาน งานที่บันทึกแล้วไม่สูญหาย รอบถัดไปจะทำต่อ",
                        f"connection to the mail server lost mid-cycle ({type(exc).__name__}); "
                        "committed work is safe and the next cycle continues",
                    ) from None
            except ConnectionFailure as exc:
                self.alerts.connection_failed(exc, now)
                self.send_alerts()
                raise
            except Exception as exc:
                failure = explain_environment(exc, self.cfg.data_dir)
                if failure is None:
                    raise
                self.environment_failed(failure)
                raise failure from None
            self.state.put("last_poll_ok", iso(now))
            self.alerts.connection_ok()
            if report.recovery:
                lines = report.recovery.lines()
                self.alerts.alert("recovery", "\n".join(lines[:21]), lines[0].split(" / ")[-1], now,
                                  title="พบเลขรับที่ออกไปแล้วแต่ไม่มีในฐานข้อมูล")
            if report.smtp_error is not None:
                self.alerts.connection_failed(report.smtp_error, now, server="smtp")
            elif report.delivery.sent:
                self.alerts.connection_ok(server="smtp")
            self._registers(report)
            self.alerts.routine(now)
            today = to_bangkok(now).date()
            for case in self.desk.results_not_sent(today):   # the Act: the result within 7 days of the decision
                self.alerts.alert(f"result-not-sent-{case['receipt']}-{today}",
                                  f"เรื่องเลขรับ {case['receipt']} พิจารณาแล้วแต่ยังไม่ได้ส่งผลถึงผู้ยื่นเกิน 7 วัน",
                                  f"case {case['receipt']} was decided more than 7 days ago and its result has not "
                                  "been sent", now, since=from_iso(case["decided_at"]),
                                  title=f"ยังไม่ได้ส่งผลการพิจารณา เลขรับ {case['receipt']}")
            for problem in template_problems:
                report.warnings.append("แม่แบบข้อความมีข้อผิดพลาด จึงไม่ส่งข้อความนี้ / template not used: " + problem)
                self.alerts.alert("template", "แม่แบบข้อความมีข้อผิดพลาด: " + problem, "a template does not render",
                                  now, title="แม่แบบข้อความมีข้อผิดพลาด")
            if self.state.queued(limit=1):     # alerts raised at the end of the cycle go out now
                self.send_alerts()
            report.warnings.extend(report.delivery.warnings)
            for w in report.warnings:
                log.warning(w)
            return report

    def _registers(self, report: CycleReport | None = None) -> list[str]:
        result = write_registers(self.state, self.cfg.registers_dir, self.cfg.agency.name, self.clock(),
                                 Numbering.of(self.cfg.registers))
        try:
            dispatch.write(self.state, self.cfg)
        except OSError as exc:
            result.failed.append((self.cfg.registers_dir / "ทะเบียนส่ง", f"{type(exc).__name__}: {exc}"))
        warnings = [f"เขียนทะเบียนไม่ได้ (เปิดค้างใน Excel หรือไม่?) จะลองใหม่รอบถัดไป: {path.name} / "
                    f"register not written ({why}); retried next cycle" for path, why in result.failed]
        for target, kept in result.kept:
            text = (f"ทะเบียน {target.name} ถูกแก้ไขหรือแทนที่โดยผู้อื่น จึงเก็บฉบับนั้นไว้เป็น {kept.name} "
                    f"และเขียนทะเบียนใหม่จากฐานข้อมูล (อย่าแก้ทะเบียนใน Excel ให้ใช้คำสั่ง mailbot case set) / "
                    f"{target.name} was changed by someone else: kept as {kept.name}, a fresh one written")
            warnings.append(text)
            self.state.event(self.clock(), "warning", "register_kept", text)
            self.notify(text.split(" / ")[0], text.split(" / ")[-1])
        if report is not None:
            report.registers, report.register_failures = result.written, result.failed
            report.warnings.extend(warnings)
        return warnings

    def environment_failed(self, failure: MailbotError) -> None:
        """Disk full, no permission, database locked or damaged: alert, best effort (the disk
        may be what failed); the log always has it."""
        log.error("%s / %s", failure.thai, failure.english)
        try:
            self.alerts.alert("environment", failure.thai, failure.english, self.clock(),
                              title="เครื่องคอมพิวเตอร์มีปัญหา mailbot หยุดรอ")
            self.send_alerts()
        except Exception:  # noqa: BLE001
            log.warning("the alert could not be recorded either")

    def deliver(self) -> Delivery:
        """Send what the outbox owes (SMTP only: no mailbox needed)."""
        with Smtp(self.cfg.smtp, self.cfg.agency.address) as smtp:
            return self.outbox.deliver(smtp, self.clock)

    def send_alerts(self) -> None:
        """Deliver queued alerts over SMTP even when IMAP is down; never raises."""
        try:
            self.deliver()
        except Exception:  # noqa: BLE001 - SMTP down too: the log and the console have it
            log.warning("alerts could not be emailed (SMTP unavailable)")

    # ------------------------------------------------------------------ results

    def results(self, letter: tuple | None = None) -> ResultsRun:
        """Sign and send what is in results/outbox (after writing a result letter, if asked)."""
        from .casework.results import Results

        with self.work():
            results = Results(self.cfg, self.desk, self.clock)
            path = None
            if letter is not None:
                receipt, outcome, note, location, holder = (*letter, "")[:5]
                path = results.letter(normalise_receipt(receipt), outcome, note, self.clock(), location=location,
                                      holder=holder)
            report = results.process(self.clock())
            run = ResultsRun(report, letter=path)
            try:
                run.delivery = self.deliver()
            except ConnectionFailure as exc:
                run.delivery.smtp_error = exc
            results.settle(report)
            self._registers()
            return run

    def preview_letter(self, receipt: str, outcome: str, note: str) -> Path:
        """The result letter exactly as it would be signed and sent, written to results/preview/
        only: nothing signed, sent or recorded."""
        from .casework.results import Results

        return Results(self.cfg, self.desk, self.clock).letter(normalise_receipt(receipt), outcome, note,
                                                               self.clock(), preview=True)

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
            self._registers()
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
            self._registers()
            return self.state.case_by_id(case["id"])

    def set_delay(self, receipt: str, reason: str, expected: str, actor: str) -> Row:
        """Why a case is late and when it should be done: what the Act's 7-day notice tells the citizen."""
        from .config import person_date

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

    def audit_verify(self) -> "audit.Verification":
        """The audit chain checked end to end, and against the heads kept in backups and daily logs."""
        return self.state.audit_verify(recorded_heads(self.cfg))

    def held(self, failed: bool = False) -> list[Row]:
        return self.outbox.held(failed)

    def release(self, outbox_id: int, actor: str) -> Row:
        with self.work():
            row = self.outbox.release(outbox_id, actor, self.clock())
            self._registers()
            return row

    def discard(self, outbox_id: int, actor: str) -> Row:
        with self.work():
            row = self.outbox.discard(outbox_id, actor, self.clock())
            self._registers()
            return row

    # ------------------------------------------------------------------ reports

    def daily_log(self, day: date, email: bool = False) -> Path:
        """registers/daily/<BE date>.xlsx and .pdf, and the year's receive register as PDF
        (registers/ทะเบียนรับ-<BE year>.pdf); the log queued to the supervisors when ``email``."""
        from .registers import daily as report
        from .registers import receive as register

        with self.work():
            now = self.clock()
            late = [[c["receipt"], "(เรื่องลับ)" if c["secrecy"] else (c["subject"] or ""),
                     c["service_name"] or "", thai_date(date.fromisoformat(c["due_date"])), workflow.label(c["status"]),
                     max(0, (day - date.fromisoformat(c["due_date"])).days)] for c in self.desk.due_soon(day)]
            path, pdf = report.write(self.state, day, self.cfg.registers_dir, self.cfg.agency.name, now,
                                     audit_head=self.state.audit_head_text(), late=late)
            register.write_pdf(self.state, self.cfg.registers_dir, numbering_year(day, self.cfg.registers.year_reset),
                               self.cfg.agency.name, now, Numbering.of(self.cfg.registers))
            if email and self.cfg.supervisors:
                ctx = context(self.cfg.agency, receipt=None, received_at=now, subject="", sender_name="")
                ctx["received_date"] = thai_date(day)
                with self.state.tx():
                    for i, to in enumerate(self.cfg.supervisors):
                        self.outbox.queue("daily_report", recipient=to, subject=f"บันทึกประจำวัน {thai_date(day)}",
                                          now=now, ctx=ctx, key=int(f"{day:%Y%m%d}"),
                                          key_hash=_digest(f"{to}|{i}"),
                                          files=((path.name, path.read_bytes()), (pdf.name, pdf.read_bytes())))
                self.send_alerts()
            return path

    def publish(self) -> list[Path]:
        from .registers import licences

        with self.work():
            return licences.publish(self.state, self.cfg.resolve(self.cfg.publish.folder), self.cfg.agency.name,
                                    self.clock())

    def backup(self):
        from .ops.backup import backup

        with self.work():
            result = backup(self.cfg, self.clock())
            self.state.put("last_backup", f"{iso(self.clock())} {result.folder}")
            return result

    # ------------------------------------------------------------------ what the office sees

    def status(self) -> "Status":
        from .ops import schedule
        from .ops.backup import latest

        now = self.clock()
        state = self.state
        last = state.get("last_poll_ok")
        st = Status(
            last_poll=from_iso(last) if last else None,
            next_poll=schedule.next_poll(now, self.cfg.schedule),
            next_daily=schedule.next_daily(now, self.cfg.schedule.daily_report, self.cfg.schedule),
            queued=state.count_outbox("queued"),
            held=state.count_outbox("held"),
            failed=state.count_outbox("failed"),
            quarantined=state.count_messages("quarantined"),
            before_since=state.count_messages("before_since"),
            overdue=state.count_overdue(to_bangkok(now).date().isoformat()),
        )
        backup_info = self.state.get("last_backup")
        if backup_info:
            when, _, folder = backup_info.partition(" ")
            try:
                st.last_backup = (from_iso(when), folder)
            except ValueError:
                st.last_backup = None
        elif (newest := latest(self.cfg)) is not None:
            st.last_backup = (None, str(newest))
        st.failed_replies = state.failed_replies(10)
        if self.cfg.signing is not None:
            from .documents.certs import read_pkcs12

            try:
                _, info = read_pkcs12(self.cfg.resolve(self.cfg.signing.pkcs12), self.cfg.signing.secret())
                st.certificate = (info.not_after, info.days_left(now), "")
            except MailbotError as exc:
                st.certificate = (None, 0, exc.thai)
        return st

    # ------------------------------------------------------------------ privacy (PDPA)

    def privacy_export(self, address: str, target: Path):
        from .ops import privacy

        with self.work():
            return privacy.export(self.state, self.cfg, address, target, self.clock())

    def privacy_due(self):
        from .ops import privacy

        return privacy.due(self.state, self.cfg, self.clock())

    def privacy_prune(self, plan) -> int:
        from .ops import privacy

        with self.work():
            return privacy.prune(self.state, self.cfg, plan, self.clock())

    def rules_test(self, subject: str) -> "RulesTest":
        """The decision the pipeline would make for a mail with this subject, explained."""
        return rules_test(self.cfg, self.rules, subject, self.desk, self.clock())

    def mailbox_waiting(self) -> int:
        with Mailbox(self.cfg.imap) as mb:
            mb.select()
            return len(mb.uids())

    # --- actions added for the console -------------------------------------------------------
    # What the officer's desk (mailbot/console/) shows and does that the command line did not
    # have yet: today's summary and work queue, searching cases, a message of a case as text,
    # classifying, forwarding by hand, documents complete, quarantine (reprocess, register by
    # hand), result files (stage, send, retry a problem), marking an item dealt with. Each change
    # runs under the work lock like the others and records who did it (``actor``).

    def today(self) -> "Today":
        """Arrivals today by outcome, what needs an officer (urgent first, then oldest first) and
        the service's health."""
        from .thai import BANGKOK

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
            lambda r: WorkItem("flagged", True, from_iso(r["received_at"]), r["subject"] or "", _who(r),
                               receipt=r["receipt"], ref=r["id"], detail=f"ไม่ผ่านการตรวจสอบ: {r['held']}"))
        add("quarantined", state.work_quarantined(limit),
            lambda r: WorkItem("quarantined", True, from_iso(r["received_at"] or r["decided_at"] or iso(now)),
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
        queue.sort(key=lambda w: (not w.urgent, w.at))
        events = state.recent_events(8)
        alerts = state.recent_alerts(5)
        return Today(day=to_bangkok(now).date(), arrivals=arrivals, registered=registered, queue=queue,
                     counts=counts, status=self.status(), events=events, alerts=alerts,
                     now=now.astimezone(BANGKOK))

    def due_cases(self, limit: int = 50, warn_days: int = 3) -> tuple[list["WorkItem"], int, int]:
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
                   until: date | None = None, page: int = 1, per_page: int = 50) -> "CasePage":
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

    def case_messages(self, receipt: str) -> list["MessageView"]:
        """Every message of a case (the request and what followed), read from the archive as text."""
        case = self.state.case(normalise_receipt(receipt))
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        rows = self.state.case_messages(case["id"], case["message_row"])
        return [self.message_view(r["id"]) for r in rows]

    def message_view(self, row_id: int) -> "MessageView":
        """One stored message as the officer may read it: headers and body as plain text (HTML mail
        reduced to its text), and its attached files (numbered for download)."""
        from .mail.parse import Unparseable, parse

        row = self._message_row(row_id)
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
        row = self._message_row(row_id)
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

    def classify(self, receipt: str, code: str, actor: str, note: str = "") -> tuple[Row, str, list[str]]:
        """An unclassified request gets its service: the status, checklist and register follow, the
        citizen gets the service's receipt (its wording, checklist and fee), and the case goes to the
        service's units as the pipeline would have sent it (never a secret one). Held (flagged) mail
        gets its receipt held too, for the officer to release once sure of the sender."""
        from .casework import completeness
        from .casework.completeness import File

        receipt = normalise_receipt(receipt)
        with self.work():
            now = self.clock()
            case = self._case_or_fail(receipt)
            service = self.desk.service(code)
            if service is None:
                raise MailbotError(f"ไม่รู้จักบริการรหัส {code}", f"no service with code {code} in rules.yaml")
            if case["service_code"]:
                raise MailbotError(f"เรื่อง {receipt} คัดแยกแล้ว ({case['service_name']})",
                                   f"case {receipt} is classified already ({case['service_code']})")
            if case["cancelled_at"] or case["status"] not in workflow.OPEN:
                raise MailbotError(f"เรื่อง {receipt} ยุติหรือยกเลิกแล้ว คัดแยกไม่ได้",
                                   f"case {receipt} is closed or cancelled; it cannot be classified")
            flagged = bool(case["held"]) or "(flagged:" in (case["remark"] or "")
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
                    received_at=from_iso(case["received_at"]), message_row=None, raw=self._case_raw(case),
                    secret=bool(case["secrecy"]), actor=actor,
                    hold=f"flagged: {case['held'] or 'claims to be the agency'}" if flagged else None)
            self._registers()
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
            case = self._case_or_fail(receipt)
            raw = self._case_raw(case)
            if raw is None:
                raise MailbotError("ไม่พบต้นฉบับอีเมลของเรื่องนี้ในคลัง ส่งต่อไม่ได้",
                                   "the case's original message is not in the archive; cannot forward")
            with self.state.tx():
                if note:
                    self.desk.event(case, now, "officer:note", f"บันทึก {thai_date_short(now)} ({actor}): {note}",
                                    actor=actor, action=True)
                warnings = self.desk.forward(self.state.case_by_id(case["id"]), raw, self.desk.checklist(case), now,
                                             units=[unit], actor=actor)
            self._registers()
            return warnings

    def documents_complete(self, receipt: str, actor: str) -> tuple[Row, str]:
        """The officer checked the files: the documents are complete. A case awaiting documents
        returns to รับเรื่องแล้ว and the citizen is told; otherwise it is noted."""
        receipt = normalise_receipt(receipt)
        with self.work():
            now = self.clock()
            case = self._case_or_fail(receipt)
            told = "ไม่ได้แจ้งผู้ยื่น"
            with self.state.tx():
                data = self.desk.checklist(case).as_dict()
                data.update(verdict="complete", confirmed_by=actor, confirmed_at=iso(now))
                self.state.update_case(case["id"], checklist=json.dumps(data, ensure_ascii=False))
                if case["status"] == "awaiting_documents":
                    effect = self.desk.apply(self.state.case_by_id(case["id"]), "documents_complete", now, actor=actor)
                    told = "รอส่ง" if effect else told
                self.desk.event(self.state.case_by_id(case["id"]), now, "officer:documents_complete",
                                f"ตรวจเอกสารแล้ว ครบ {thai_date_short(now)} ({actor})", actor=actor, action=True)
            self._registers()
            return self.state.case_by_id(case["id"]), told

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
                                    f"ตรวจอีเมลที่อ้างเป็นของหน่วยงานแล้ว {thai_date_short(now)} ({actor})",
                                    actor=actor, action=True)
                else:
                    self.state.acknowledge(kind, ref, actor, now)
                    if kind == "mail":
                        row = self.state.outbox_case_kind(ref)
                        if row is not None and row["case_id"] is not None:
                            self.desk.event(self.state.case_by_id(row["case_id"]), now, "officer:mail_seen",
                                            f"รับทราบว่าส่งอีเมลไม่สำเร็จ ({row['kind']}) {thai_date_short(now)} ({actor})",
                                            actor=actor)
                    else:
                        self.state.event(now, "info", "quarantine_dismissed", f"ข้อความกักกัน #{ref} ไม่ต้องดำเนินการ โดย {actor} / message #{ref} dismissed by {actor}")
            self._registers()

    # quarantine

    def quarantined(self, limit: int = 500) -> list[Row]:
        return self.state.quarantined_messages(limit)

    def reprocess(self, row_id: int, actor: str) -> str:
        """A quarantined message goes through the pipeline again (after a fix: a higher size limit,
        a new mailbot version). Its server copy is moved from the quarantine folder back to the
        watched folder (or, when it is no longer there, the stored raw bytes are put back), and only
        then its ledger row stops being 'quarantined' — so a crash in between leaves a copy that the
        next cycle files as a duplicate of the quarantined one, never a lost message. The next cycle
        decides it afresh, with fresh attempts. Returns what was done, in Thai."""
        with self.work():
            now = self.clock()
            row = self._quarantined_row(row_id)
            raw = self.raw_message(row_id)
            if raw is None:
                raise MailbotError("ไม่พบต้นฉบับของอีเมลนี้ (คลังหรือโฟลเดอร์กักกัน) ประมวลผลใหม่ไม่ได้",
                                   "the raw message is in neither the archive nor data/quarantine; cannot reprocess")
            digest = hashlib.sha256(raw).hexdigest()
            with Mailbox(self.cfg.imap) as mb:
                uid = mb.find_raw(self.cfg.folders.quarantined, digest, len(raw))
                if uid is not None:
                    mb.move([uid], self.cfg.imap.folder)
                    how = f"ย้ายจากโฟลเดอร์ {self.cfg.folders.quarantined} กลับไปที่ {self.cfg.imap.folder}"
                else:
                    when = from_iso(row["received_at"]) if row["received_at"] else None
                    mb.append(self.cfg.imap.folder, raw, when=when)
                    how = f"นำต้นฉบับที่เก็บไว้ใส่กลับใน {self.cfg.imap.folder}"
            with self.state.tx():
                self.state.unquarantine(row_id, f"reprocessed by {actor} {iso(now)} (was: {row['reason']})"[:2000])
                self.state.forget_acknowledged("quarantine", row_id)
            self.state.event(now, "info", "reprocessed", f"ประมวลผลข้อความกักกัน #{row_id} ใหม่ โดย {actor} / message #{row_id} reprocessed by {actor}: {how}")
            return how + " รอบตรวจถัดไปจะประมวลผลใหม่ / it is processed again at the next cycle"

    def register_by_hand(self, row_id: int, *, sender_name: str, sender_addr: str, subject: str,
                         service_code: str = "", actor: str, reply: bool = True) -> tuple[Row, str, list[str]]:
        """Register a quarantined message as a case by hand: the next receipt number, the sender and
        subject the officer read, optionally a service; the receipt goes to the address given. The
        server copy moves from the quarantine folder to the registered folder (best effort)."""
        from .casework import completeness
        from .mail.addresses import problem

        sender_addr = (sender_addr or "").strip()
        if sender_addr and (bad := problem(sender_addr)) is not None:
            raise MailbotError(f"ที่อยู่อีเมลผู้ยื่นใช้ไม่ได้: {bad[0]}", f"unusable sender address: {bad[1]}")
        if not subject.strip():
            raise MailbotError("ต้องระบุเรื่อง", "a subject is needed")
        with self.work():
            now = self.clock()
            row = self._quarantined_row(row_id)
            service = self.desk.service(service_code) if service_code else None
            if service_code and service is None:
                raise MailbotError(f"ไม่รู้จักบริการรหัส {service_code}", f"no service with code {service_code}")
            received = from_iso(row["received_at"]) if row["received_at"] else now
            if self.cfg.imap.since is not None:        # as the pipeline: never a year before imap.since
                start = datetime.combine(self.cfg.imap.since, datetime.min.time(), to_bangkok(now).tzinfo)
                received = max(received, start)
            checklist = completeness.check(service, [])
            with self.state.tx():
                case = self.recorder.open_case(
                    received=received, now=now, service=service, checklist=checklist, message_row=row_id,
                    subject=subject, status=workflow.initial(service is not None, "none"),   # files not known
                    sender_name=sender_name, sender_addr=sender_addr or None, reply_to=sender_addr or None,
                    remark=f"ลงทะเบียนโดยเจ้าหน้าที่จากอีเมลที่กักกัน ({actor})", message_id=row["message_id"],
                    attachments=0, archive=row["archive"], sha256=row["sha256"])
                self.state.record_message(row_id, outcome=kinds.Outcome.REGISTERED, case_id=case["id"],
                                          target_folder=self.cfg.folders.registered,
                                          reason=f"registered by hand by {actor} (was: {row['reason']})"[:2000])
                event_id = self.desk.event(case, now, "officer:register",
                                           f"ลงทะเบียนด้วยมือ {thai_date_short(now)} ({actor})", actor=actor,
                                           action=True)
                told = "ไม่ได้แจ้งผู้ยื่น"
                if reply and sender_addr:    # the same receipt as the pipeline's (the fee's QR code too)
                    told, _ = self.recorder.answer_opened(
                        case, service, checklist, now, kind="receipt" if service else "unclassified", key=event_id,
                        received_at=received, message_row=None, raw=None, secret=False, actor=actor)
            try:
                Archive(self.cfg.data_dir).record_receipts([case])
            except OSError as exc:
                log.warning("receipt index not written: %s", exc)
            warnings: list[str] = []
            raw = self.raw_message(row_id)
            if raw is not None:
                try:
                    with Mailbox(self.cfg.imap) as mb:
                        uid = mb.find_raw(self.cfg.folders.quarantined, hashlib.sha256(raw).hexdigest(), len(raw))
                        if uid is not None:
                            mb.move([uid], self.cfg.folders.registered)
                except MailbotError as exc:
                    warnings.append(f"ย้ายอีเมลในกล่องไปโฟลเดอร์ {self.cfg.folders.registered} ไม่ได้: {exc.thai} / "
                                    f"could not move the server copy: {exc.english}")
            self._registers()
            return self.state.case_by_id(case["id"]), told, warnings

    # results

    def result_problems(self) -> list["ResultProblem"]:
        """Files in results/problems with their Thai explanation (.txt), oldest first; notes of
        signed results the mail server refused (``.ส่งไม่สำเร็จ.txt``) too."""
        from .casework.results import receipt_from_filename

        folder = self.cfg.resolve(self.cfg.results.problems)
        if not folder.is_dir():
            return []
        out = []
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            refused = path.name.endswith(".ส่งไม่สำเร็จ.txt")
            if path.suffix.lower() == ".txt" and not refused:
                continue
            note = path if refused else path.with_name(path.name + ".txt")
            try:
                text = note.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            receipt = (re.search(r"เรื่องเลขทะเบียนรับ (\S+)", text) or [None, None])[1] if refused \
                else receipt_from_filename(path.name)
            out.append(ResultProblem(path.name, text.strip(), at, receipt or "", refused))
        return sorted(out, key=lambda p: p.at)

    def retry_result(self, name: str, actor: str, receipt: str = "") -> ResultsRun:
        """A problem file back to results/outbox (renamed for ``receipt`` when given), then signed
        and sent at once like ``mailbot results``."""
        from .casework.results import receipt_from_filename
        from .files import write_atomic
        from .mail.parse import safe_filename

        folder = self.cfg.resolve(self.cfg.results.problems)
        path = folder / safe_filename(name)
        if path.name != name or not path.is_file() or path.suffix.lower() == ".txt":
            raise MailbotError(f"ไม่พบไฟล์ {name} ใน results/problems", f"no file {name!r} in results/problems")
        target_name = path.name
        if receipt.strip():
            receipt = normalise_receipt(receipt)
            if self.state.case(receipt) is None:
                raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
            if receipt_from_filename(target_name) != receipt:
                target_name = f"{receipt.replace('/', '-')} {target_name}"
        with self.work():
            outbox = self.cfg.resolve(self.cfg.results.outbox)
            outbox.mkdir(parents=True, exist_ok=True)
            write_atomic(outbox / target_name, path.read_bytes())
            path.unlink()
            path.with_name(path.name + ".txt").unlink(missing_ok=True)
            self.state.event(self.clock(), "info", "result_retry", f"ลองไฟล์ผลการพิจารณา {name} ใหม่เป็น {target_name} โดย {actor} / {name} retried by {actor}")
        return self.results()

    def stage_result(self, receipt: str, data: bytes, outcome: str, actor: str) -> Path:
        """An uploaded result PDF for a case, kept in results/preview/ until the officer signs and
        sends it (``send_staged``): nothing is signed, sent or recorded yet."""
        from .files import write_atomic

        receipt = normalise_receipt(receipt)
        self._case_or_fail(receipt)
        if not data.startswith(b"%PDF-"):
            raise MailbotError("ไฟล์นี้ไม่ใช่ PDF เลือกไฟล์ PDF ของผลการพิจารณา", "the file is not a PDF")
        if len(data) > 50 * 1024 * 1024:
            raise MailbotError("ไฟล์ใหญ่เกิน 50 MB", "the file is larger than 50 MB")
        word = {"approved": " อนุมัติ", "rejected": " ไม่อนุมัติ", "incomplete": " ไม่ครบ"}.get(outcome, "")
        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{receipt.replace('/', '-')}{word} (อัปโหลด).pdf"
        write_atomic(target, data)
        log.info("result for %s uploaded by %s", receipt, actor)
        return target

    def send_staged(self, name: str, actor: str) -> ResultsRun:
        """An uploaded result (``stage_result``) into results/outbox, then signed and sent at once."""
        from .mail.parse import safe_filename

        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        path = folder / safe_filename(name)
        if path.name != name or not name.endswith(" (อัปโหลด).pdf") or not path.is_file():
            raise MailbotError("ไม่พบไฟล์ที่อัปโหลดไว้ อัปโหลดใหม่อีกครั้ง", f"no uploaded file {name!r}")
        with self.work():
            outbox = self.cfg.resolve(self.cfg.results.outbox)
            outbox.mkdir(parents=True, exist_ok=True)
            path.replace(outbox / name.replace(" (อัปโหลด)", ""))
            self.state.event(self.clock(), "info", "result_upload", f"ส่งไฟล์ {name} ไปลงนาม โดย {actor} / {name} sent for signing by {actor}")
        return self.results()

    def preview_file(self, name: str) -> Path:
        """A file of results/preview/ (a letter preview or an uploaded result), by its name."""
        from .mail.parse import safe_filename

        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        path = folder / safe_filename(name)
        if path.name != name or not path.is_file():
            raise MailbotError("ไม่พบไฟล์ตัวอย่าง", f"no preview file {name!r}")
        return path

    def recent_results(self, limit: int = 20) -> list[Row]:
        return self.state.recent_results(limit)

    # helpers of this section

    def _case_or_fail(self, receipt: str) -> Row:
        case = self.state.case(receipt)
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        return case

    def _case_raw(self, case: Row) -> bytes | None:
        root = self.cfg.data_dir.resolve()
        if not case["archive"]:
            return None
        path = (root / case["archive"]).resolve()
        return path.read_bytes() if root in path.parents and path.is_file() else None

    def _message_row(self, row_id: int) -> Row:
        row = self.state.message_row(row_id)
        if row is None:
            raise MailbotError(f"ไม่พบอีเมลหมายเลข {row_id}", f"no message #{row_id}")
        return row

    def _quarantined_row(self, row_id: int) -> Row:
        row = self._message_row(row_id)
        if row["outcome"] != "quarantined":
            raise MailbotError(f"อีเมลหมายเลข {row_id} ไม่ได้อยู่ในกักกันแล้ว", f"message #{row_id} is not quarantined")
        return row

    def _inside(self, entry: str) -> bool:
        import email.utils

        _, address = email.utils.parseaddr(entry)
        return bool(address) and "@" in address and self.desk.allowed(address)


def run_cycle(cfg: Config, clock: Clock = utcnow, stop: threading.Event | None = None) -> CycleReport:
    """One full cycle against the configured servers (opens the office, polls, closes)."""
    with Office.open(cfg, clock=clock) as office:
        return office.poll(stop=stop)


def restore(cfg: Config, source: Path, force: bool, now: datetime):
    """`mailbot restore`: the files back from a verified backup, then every receipt number issued
    after that backup found again (recovery.py), so none is ever issued twice. The Sent folder
    is searched too, at the next cycle."""
    from .ops.backup import restore as restore_files
    from .ops.recovery import local_evidence, recover

    with WorkLock(cfg.data_dir).hold(officer=True):   # no console action while the files are replaced
        result = restore_files(cfg, source, force=force, now=now)
        state = State(cfg.data_dir / "state.sqlite3")
        try:
            state.put("recovery_pending", "restore")     # the next cycle also reads the Sent folder
            with state.tx():   # heads recorded after this backup are superseded, on the record
                chain = state.audit_hashes()
                superseded = [[where, n, h] for where, n, h in recorded_heads(cfg) if chain.get(n) != h]
                state.audit(now, "mailbot restore", "restored", result.source.name,
                             {"backup": result.source.name, "superseded": superseded})
            found = recover(state, local_evidence(cfg), cfg, load_rules(cfg.rules_path), now)
        finally:
            state.close()
    if found:
        result.notes.append("เลขรับที่ออกหลังจากวันที่สำรองข้อมูล / numbers issued after this backup:")
        result.notes.extend(found.lines())
    else:
        result.notes.append("ไม่พบเลขรับที่ออกหลังจากวันที่สำรองข้อมูล / no receipt number was issued after this backup")
    result.notes.append("รอบถัดไปจะตรวจสำเนาอีเมลตอบกลับในโฟลเดอร์ Sent อีกครั้ง / "
                        "the next cycle also checks the copies in the Sent folder")
    return result


@dataclass
class Status:
    last_poll: datetime | None
    next_poll: datetime
    next_daily: datetime
    queued: int
    held: int
    failed: int
    quarantined: int
    before_since: int
    overdue: int = 0
    last_backup: tuple[datetime | None, str] | None = None
    failed_replies: list = field(default_factory=list)
    certificate: tuple[datetime | None, int, str] | None = None


@dataclass
class RulesTest:
    thai: str
    english: str
    normalised: str
    decision: object


def rules_test(cfg: Config | None, rules, subject: str, desk: Desk | None = None,
               now: datetime | None = None) -> RulesTest:
    """`mailbot rules test`: the same verdict as the pipeline (automatic-mail signals of the
    subject, receipt tags and known cases when the office's data is at hand), explained."""
    from email.message import EmailMessage

    from .intake import verdict
    from .intake.classify import receipt_tags
    from .mail.parse import parse

    msg = EmailMessage()
    msg["From"] = "ผู้ทดสอบ <tester@example.com>"
    msg["To"] = cfg.agency.address if cfg else "saraban@example.go.th"
    msg["Subject"] = subject
    msg["Message-ID"] = "<rules-test@example.com>"
    msg.set_content("ทดสอบ")
    letter = parse(bytes(msg))
    settings = verdict.Settings.of(cfg, rules) if cfg else verdict.Settings(rules=rules, own_address=msg["To"])
    prepared = verdict.prepare(letter, now or utcnow(), settings)
    known, ours = (None, False)
    if desk is not None:
        known, ours = desk.known_case(prepared.letter, prepared.ref)
    # the tester stands for the case's requester: what happens to their follow-up or inquiry
    facts = verdict.Facts(known=verdict.KnownCase(known["receipt"], (letter.from_addr,)) if known is not None
                          else None, replies_to_us=ours)
    decision = verdict.verdict(prepared, facts, settings)
    thai, english = verdict.explain(decision)
    tags = receipt_tags(subject)
    if desk is None and tags and decision.outcome != kinds.Outcome.AUTOMATIC:
        thai += f" (ถ้ามีเรื่องเลขรับ {tags[0]} ในระบบ จะเป็นการติดตามเรื่องเดิมแทน)"
        english += f" (if case {tags[0]} exists, it is a follow-up on it instead)"
    assert decision.match is not None
    return RulesTest(thai, english, decision.match.normalised, decision)


def alert_anyhow(cfg: Config, key: str, thai: str, english: str, now: datetime, title: str = "") -> None:
    """An alert when the office cannot even be opened (broken rules, a template that does not
    render, a bug): through the office if it opens, else with the starter templates. Never raises;
    the log has it whatever happens."""
    log.error("%s / %s", thai, english)
    try:
        with Office.open(cfg, clock=lambda: now) as office:
            office.alerts.alert(key, thai, english, now, title=title)
            office.send_alerts()
        return
    except Exception:  # noqa: BLE001 - fall back to the starter templates below
        pass
    try:
        from .starter import starter_dir

        state = State(cfg.data_dir / "state.sqlite3")
        try:
            outbox = Outbox(cfg, state, Templates(starter_dir() / "templates"))
            Alerts(cfg, state, outbox).alert(key, thai, english, now, title=title)
            with Smtp(cfg.smtp, cfg.agency.address) as smtp:
                outbox.deliver(smtp, lambda: now)
        finally:
            state.close()
    except Exception:  # noqa: BLE001 - SMTP or the disk may be the problem: the log has it
        log.warning("the alert could not be sent either: %s", english)


def recorded_heads(cfg: Config) -> list[tuple[str, int, str]]:
    """The audit chain heads written into backups (MANIFEST.json) and daily logs (.audit files)."""
    import json
    import re

    out: list[tuple[str, int, str]] = []
    folders = []
    if cfg.backup.dir is not None and cfg.resolve(cfg.backup.dir).is_dir():
        folders = sorted(cfg.resolve(cfg.backup.dir).glob("mailbot-backup-*"))
    for folder in folders:
        try:
            head = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8")).get("audit_head")
        except (OSError, ValueError):
            continue
        if head:
            out.append((folder.name, int(head[0]), head[1]))
    for path in sorted((cfg.registers_dir / "daily").glob("*.audit")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"#(\d+) ([0-9a-f]{64})", line.strip())
            if m:
                out.append((path.name, int(m[1]), m[2]))
    return out


def unknown_status(text: str) -> MailbotError:
    return MailbotError(f"ไม่รู้จักสถานะ '{text}'", f"unknown status '{text}'",
                        "ใช้ได้ / known: " + ", ".join(f"{k} ({v})" for k, v in workflow.STATUSES.items()))


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()




# --- for the console's actions (see the section at the end of Office) ----------------------

QUEUE_LIMIT = 50         # items of one kind listed in the work queue (the count says how many there are)
BANGKOK_TZ = _BANGKOK


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


@dataclass
class ResultProblem:
    name: str
    explanation: str
    at: datetime
    receipt: str
    refused: bool       # a signed result the mail server refused (a note only, nothing to retry)


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

    from .mail.parse import safe_filename

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
