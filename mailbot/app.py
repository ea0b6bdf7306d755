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

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from . import workflow
from .alerts import Alerts
from .cases import Desk
from .clock import Clock, utcnow
from .config import Config, load_rules
from .errors import ConnectionFailure, MailbotError, explain_environment
from .fetch import CONNECTION_ERRORS, Mailbox
from .locks import WorkLock
from .outbox import Delivery, Outbox
from .pipeline import Cycle, CycleReport, Progress
from . import audit, dispatch
from .numbering import numbering_year
from .register import Numbering, write_registers
from .replies import Templates, template_globals, context
from .send import Smtp
from .state import State, from_iso, iso
from .thai import thai_date, thai_digits_to_arabic, to_bangkok

log = logging.getLogger(__name__)

Notify = Callable[[str, str], None]     # (thai, english): something a person should know now


def _quiet(thai: str, english: str) -> None:
    log.info("%s / %s", thai, english)


def normalise_receipt(text: str) -> str:
    return thai_digits_to_arabic(text).replace(" ", "").strip()


@dataclass
class CaseView:
    case: sqlite3.Row
    checklist: object
    history: list[dict]
    mail: list[sqlite3.Row]          # everything mailbot sent about the case, oldest first


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

    def work(self, officer: bool = True):  # type: ignore[no-untyped-def]
        """The work lock for one action (see locks.WorkLock)."""
        return self.work_lock.hold(self.notify, officer=officer)

    # ------------------------------------------------------------------ intake

    def poll(self, stop=None, progress: Progress | None = None) -> CycleReport:  # type: ignore[no-untyped-def]
        """One cycle: fetch, decide, reply, move; results, reminders; registers; alerts."""
        with self.work(officer=False):
            now = self.clock()
            self.templates.check(self.cfg.agency, now)
            try:
                try:
                    with Mailbox(self.cfg.imap) as mb, Smtp(self.cfg.smtp, self.cfg.agency.address) as smtp:
                        report = Cycle(self, mb, smtp, stop, progress).run()
                except CONNECTION_ERRORS as exc:  # connection lost mid-cycle: state is consistent
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
                lines = report.recovery.lines()  # type: ignore[attr-defined]
                self.alerts.alert("recovery", "\n".join(lines[:1] + lines[1:21]), lines[0].split(" / ")[-1], now,
                                  title="พบเลขรับที่ออกไปแล้วแต่ไม่มีในฐานข้อมูล")
            if report.smtp_error is not None:
                self.alerts.connection_failed(report.smtp_error, now)
            self._registers(report)
            self.alerts.routine(now)
            today = to_bangkok(now).date()
            for case in self.desk.results_not_sent(today):   # the Act: the result within 7 days of the decision
                self.alerts.alert(f"result-not-sent-{case['receipt']}-{today}",
                                  f"เรื่องเลขรับ {case['receipt']} พิจารณาแล้วแต่ยังไม่ได้ส่งผลถึงผู้ยื่นเกิน 7 วัน",
                                  f"case {case['receipt']} was decided more than 7 days ago and its result has not "
                                  "been sent", now, since=from_iso(case["decided_at"]),
                                  title=f"ยังไม่ได้ส่งผลการพิจารณา เลขรับ {case['receipt']}")
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
        from .results import Results

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
        from .results import Results

        return Results(self.cfg, self.desk, self.clock).letter(normalise_receipt(receipt), outcome, note,
                                                               self.clock(), preview=True)

    # ------------------------------------------------------------------ cases

    def case(self, receipt: str) -> CaseView:
        receipt = normalise_receipt(receipt)
        case = self.state.case(receipt)
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        mail = self.state.db.execute("SELECT * FROM outbox WHERE case_id=? ORDER BY id", (case["id"],)).fetchall()
        return CaseView(case, self.desk.checklist(case), self.desk.history(case), mail)

    def cases(self, status: str | None = None) -> list[sqlite3.Row]:
        key = None
        if status:
            key = workflow.status_key(status)
            if key is None:
                raise unknown_status(status)
        # urgent requests first, then in order of their numbers
        sql = ("SELECT * FROM cases" + (" WHERE status=?" if key else "")
               + " ORDER BY urgency_rank DESC, year_be, seq")
        return self.state.db.execute(sql, (key,) if key else ()).fetchall()

    def set_case(self, receipt: str, *, status: str | None, note: str = "", tell: str = "",
                 actor: str) -> tuple[sqlite3.Row, str]:
        """An officer's change; the citizen is mailed only what ``tell`` says (or the status
        template, when one exists for the new status). Returns the case and what was sent."""
        receipt = normalise_receipt(receipt)
        with self.work():
            try:
                case, told = self.desk.officer_set(receipt, status, note, tell, actor, self.clock())
            except KeyError:
                raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}") from None
            except workflow.InvalidTransition:
                raise unknown_status(status or "") from None
            self._registers()
            return case, told

    def cancel_case(self, receipt: str, reason: str, actor: str) -> sqlite3.Row:
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
                audit.append(self.state.db, now, actor, "cancelled", receipt, {"reason": reason.strip()})
                self.state.db.execute("UPDATE outbox SET status='discarded', hold_reason='case cancelled' "
                                      "WHERE case_id=? AND status IN ('queued','held')", (case["id"],))
            self._registers()
            return self.state.case(receipt)  # type: ignore[return-value]

    def set_delay(self, receipt: str, reason: str, expected: str, actor: str) -> sqlite3.Row:
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
            self.desk.event(case, self.clock(), "officer:delay", f"เหตุที่ล่าช้า ({actor}): {reason} {expected}".strip(),
                            actor=actor, action=True)
            return self.state.case(receipt)  # type: ignore[return-value]

    def audit_verify(self) -> "audit.Verification":
        """The audit chain checked end to end, and against the heads kept in backups and daily logs."""
        return audit.verify(self.state.db, recorded_heads(self.cfg))

    def held(self) -> list[sqlite3.Row]:
        return self.outbox.held()

    def release(self, outbox_id: int, actor: str) -> sqlite3.Row:
        with self.work():
            row = self.outbox.release(outbox_id, actor, self.clock())
            self._registers()
            return row

    def discard(self, outbox_id: int, actor: str) -> sqlite3.Row:
        with self.work():
            row = self.outbox.discard(outbox_id, actor, self.clock())
            self._registers()
            return row

    # ------------------------------------------------------------------ reports

    def daily_log(self, day: date, email: bool = False) -> Path:
        """registers/daily/<BE date>.xlsx and .pdf, and the year's receive register as PDF
        (registers/ทะเบียนรับ-<BE year>.pdf); the log queued to the supervisors when ``email``."""
        from . import register, report

        with self.work():
            now = self.clock()
            late = [[c["receipt"], "(เรื่องลับ)" if c["secrecy"] else (c["subject"] or ""),
                     c["service_name"] or "", thai_date(date.fromisoformat(c["due_date"])), workflow.label(c["status"]),
                     max(0, (day - date.fromisoformat(c["due_date"])).days)] for c in self.desk.due_soon(day)]
            path, pdf = report.write(self.state, day, self.cfg.registers_dir, self.cfg.agency.name, now,
                                     audit_head=audit.head_text(self.state.db), late=late)
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
        from . import licences

        with self.work():
            return licences.publish(self.state, self.cfg.resolve(self.cfg.publish.folder), self.cfg.agency.name,
                                    self.clock())

    def backup(self):  # type: ignore[no-untyped-def]
        from .backup import backup

        with self.work():
            result = backup(self.cfg, self.clock())
            self.state.put("last_backup", f"{iso(self.clock())} {result.folder}")
            return result

    # ------------------------------------------------------------------ what the office sees

    def status(self) -> "Status":
        from . import schedule
        from .backup import latest

        now = self.clock()
        db = self.state.db
        last = self.state.get("last_poll_ok")
        count = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        st = Status(
            last_poll=from_iso(last) if last else None,
            next_poll=schedule.next_poll(now, self.cfg.schedule),
            next_daily=schedule.next_daily(now, self.cfg.schedule.daily_report, self.cfg.schedule),
            queued=count("SELECT count(*) FROM outbox WHERE status='queued'"),
            held=count("SELECT count(*) FROM outbox WHERE status='held'"),
            failed=count("SELECT count(*) FROM outbox WHERE status='failed'"),
            quarantined=count("SELECT count(*) FROM messages WHERE outcome='quarantined'"),
            before_since=count("SELECT count(*) FROM messages WHERE outcome='before_since'"),
            overdue=db.execute("SELECT count(*) FROM cases WHERE due_date < ? AND status IN ('received','review',"
                               "'in_progress')", (to_bangkok(now).date().isoformat(),)).fetchone()[0],
        )
        backup_info = self.state.get("last_backup")
        if backup_info:
            when, _, folder = backup_info.partition(" ")
            try:
                st.last_backup = (from_iso(when), folder)
            except ValueError:
                st.last_backup = None
        elif (folder := latest(self.cfg)) is not None:
            st.last_backup = (None, str(folder))
        st.failed_replies = db.execute(
            "SELECT o.recipient, o.kind, o.last_error, c.receipt FROM outbox o LEFT JOIN cases c ON c.id=o.case_id "
            "WHERE o.status='failed' ORDER BY o.id DESC LIMIT 10").fetchall()
        if self.cfg.signing is not None:
            from .certs import read_pkcs12

            try:
                _, info = read_pkcs12(self.cfg.resolve(self.cfg.signing.pkcs12), self.cfg.signing.secret())
                st.certificate = (info.not_after, info.days_left(now), "")
            except MailbotError as exc:
                st.certificate = (None, 0, exc.thai)
        return st

    # ------------------------------------------------------------------ privacy (PDPA)

    def privacy_export(self, address: str, target: Path):  # type: ignore[no-untyped-def]
        from . import privacy

        with self.work():
            return privacy.export(self.state, self.cfg, address, target, self.clock())

    def privacy_due(self):  # type: ignore[no-untyped-def]
        from . import privacy

        return privacy.due(self.state, self.cfg, self.clock())

    def privacy_prune(self, plan) -> int:  # type: ignore[no-untyped-def]
        from . import privacy

        with self.work():
            return privacy.prune(self.state, self.cfg, plan, self.clock())

    def rules_test(self, subject: str) -> "RulesTest":
        """The decision the pipeline would make for a mail with this subject, explained."""
        return rules_test(self.cfg, self.rules, subject, self.desk)

    def mailbox_waiting(self) -> int:
        with Mailbox(self.cfg.imap) as mb:
            mb.select()
            return len(mb.uids())


def restore(cfg: Config, source: Path, force: bool, now: datetime):  # type: ignore[no-untyped-def]
    """`mailbot restore`: the files back from a verified backup, then every receipt number issued
    after that backup found again (recovery.py), so none is ever issued twice. The Sent folder
    is searched too, at the next cycle."""
    from .backup import restore as restore_files
    from .recovery import local_evidence, recover

    result = restore_files(cfg, source, force=force, now=now)
    state = State(cfg.data_dir / "state.sqlite3")
    try:
        state.put("recovery_pending", "restore")     # the next cycle also reads the Sent folder
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


def rules_test(cfg: Config | None, rules, subject: str, desk: Desk | None = None) -> RulesTest:  # type: ignore[no-untyped-def]
    """`mailbot rules test`: the same decision as the pipeline (automatic-mail signals of the
    subject, receipt tags and known cases when the office's data is at hand), explained."""
    from email.message import EmailMessage

    from .classify import decide, explain, receipt_tags, reference
    from .parse import parse

    msg = EmailMessage()
    msg["From"] = "ผู้ทดสอบ <tester@example.com>"
    msg["To"] = cfg.agency.address if cfg else "saraban@example.go.th"
    msg["Subject"] = subject
    msg["Message-ID"] = "<rules-test@example.com>"
    msg.set_content("ทดสอบ")
    letter = parse(bytes(msg))
    ref = reference(letter, own_names=(cfg.agency.name,) if cfg else ())
    known, ours = (None, False)
    if desk is not None:
        known, ours = desk.known_case(letter, ref)
    decision = decide(letter, rules, own_address=msg["To"],
                      own_domains=tuple(cfg.agency.own_domains) if cfg else (),
                      known_case=known["receipt"] if known else None, replies_to_us=ours, ref=ref)
    thai, english = explain(decision)
    tags = receipt_tags(subject)
    if desk is None and tags and decision.outcome != "automatic":
        thai += f" (ถ้ามีเรื่องเลขรับ {tags[0]} ในระบบ จะเป็นการติดตามเรื่องเดิมแทน)"
        english += f" (if case {tags[0]} exists, it is a follow-up on it instead)"
    return RulesTest(thai, english, decision.match.normalised, decision)


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
        m = re.match(r"#(\d+) ([0-9a-f]{64})", path.read_text(encoding="utf-8").strip())
        if m:
            out.append((path.name, int(m[1]), m[2]))
    return out


def unknown_status(text: str) -> MailbotError:
    return MailbotError(f"ไม่รู้จักสถานะ '{text}'", f"unknown status '{text}'",
                        "ใช้ได้ / known: " + ", ".join(f"{k} ({v})" for k, v in workflow.STATUSES.items()))


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


