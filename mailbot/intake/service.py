"""Intake service: the cycle and the quarantine, as ``app.Office`` offers them.

Owns: one poll (the cycle over one IMAP and one SMTP session under the work lock; a connection
lost or refused mid-cycle, or a failure of the machine, told as such and alerted; then the
registers, the routine alerts, results not sent within the Act's 7 days and broken templates),
how many messages wait in the mailbox, the quarantine (listing, sending a message through the
pipeline again, registering one by hand) and the rules test (``rules_test``: the pipeline's
verdict for a subject, explained).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from .. import faults, kinds
from ..casework import workflow
from ..casework.cases import Desk
from ..casework.replies import Templates
from ..clock import utcnow
from ..config import PLACEHOLDER_HOLD, Config, Rules
from ..errors import ConnectionFailure, MailbotError, explain_environment
from ..mail.language import detect
from ..mail.mailbox import CONNECTION_ERRORS, refused_by_server
from ..mail.outbox import Outbox
from ..mail.parse import Unparseable, parse
from ..mail.wire import REAL, Wire
from ..ops.alerts import Alerts
from ..ops.archive import Archive
from ..store import Row, State, from_iso, iso
from ..thai import thai_date_short, to_bangkok
from .cycle import Cycle, CycleReport, Progress
from .record import Recorder

if TYPE_CHECKING:
    from ..casework.desk_views import DeskViews
    from ..ops.locks import Work
    from ..ops.service import Upkeep
    from ..registers.service import Registers

log = logging.getLogger(__name__)


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

    from ..mail.parse import parse
    from . import verdict
    from .classify import receipt_tags

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



class Intake:
    """The cycle and the quarantine of one office; it has the parts a cycle works with
    (``cycle.Parts``)."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], rules: Rules, templates: Templates,
                 state: State, desk: Desk, outbox: Outbox, alerts: Alerts, recorder: Recorder,
                 registers: "Registers", upkeep: "Upkeep", views: "DeskViews", work: "Work",
                 wire: Wire = REAL) -> None:
        self.cfg = cfg
        self.wire = wire
        self.clock = clock
        self.rules = rules
        self.templates = templates
        self.state = state
        self.desk = desk
        self.outbox = outbox
        self.alerts = alerts
        self.recorder = recorder
        self.registers = registers
        self.upkeep = upkeep
        self.views = views
        self.work = work

    def poll(self, stop=None, progress: Progress | None = None) -> CycleReport:
        """One cycle: fetch, decide, reply, move; results, reminders; registers; alerts. Then the
        forwards to units that wait for stamped copies: made outside the work lock, sent under it.
        What the cycle owes to LINE is pushed once the work lock is let go, also when the cycle
        failed (a mailbox sign-in that fails is told there, where no mail can go)."""
        try:
            report = self._poll(stop, progress)
        finally:
            self.upkeep.send_line()         # never raises; a few seconds at most
        report.warnings.extend(self.forwards())
        self._alert_placeholder_forwards()
        return report

    def _alert_placeholder_forwards(self) -> None:
        """Forwards held because rules.yaml still names the starter's example units: the officers
        are told (at most hourly), and the alert goes out now."""
        _, held = self.state.work_held_mail(50)
        examples = sorted({r["recipient"] for r in held if (r["hold_reason"] or "").startswith(PLACEHOLDER_HOLD)})
        if not examples:
            return
        with self.work(officer=False):
            raised = self.alerts.alert(
                "placeholder-forward",
                "เรื่องที่ต้องส่งต่อส่วนงานถูกระงับไว้ เพราะที่อยู่ส่วนงานในไฟล์กฎยังเป็นค่าตัวอย่าง: "
                + ", ".join(examples) + " แก้ที่อยู่แล้วปล่อยส่งจากหน้าวันนี้",
                "forwards to units are held: rules.yaml still has example addresses: " + ", ".join(examples),
                self.clock(), title="ที่อยู่ส่วนงานยังเป็นค่าตัวอย่าง")
        if raised:
            self.upkeep.send_alerts()

    def forwards(self) -> list[str]:
        """The forwards waiting for stamped copies of their PDFs: the copies made first, with no
        lock and no transaction held (an officer's action never waits for pyHanko), then each
        forward queued under the work lock and sent. Returns warnings."""
        wanted = self.state.forwards_wanted()
        if not wanted:
            return []
        warnings: list[str] = []
        for row in wanted:
            case = self.state.case_by_id(row["case_id"])
            raw = self.desk.case_raw(case)
            if raw is not None:
                faults.point("stamping")             # (a slow file, in the tests: no lock is held here)
                try:
                    self.desk.stamp_for(case, raw)
                except Exception as exc:  # noqa: BLE001 - the helper could not start: tried again next cycle
                    log.warning("stamping for %s failed: %s", case["receipt"], exc)
        with self.work(officer=False):
            now = self.clock()
            for row in self.state.forwards_wanted():
                case = self.state.case_by_id(row["case_id"])
                raw = self.desk.case_raw(case)
                if raw is not None and not self.desk.stamps_ready(case, raw):
                    continue                      # not made yet: the next cycle tries again
                with self.state.tx():
                    if raw is None:
                        warnings.append(f"ส่งต่อเรื่อง {case['receipt']} ไม่ได้: ไม่พบต้นฉบับอีเมลในคลัง / "
                                        f"case {case['receipt']} not forwarded: its original is not in the archive")
                    else:
                        warnings += self.desk.forward(case, raw, self.desk.checklist(case), now,
                                                      units=row["targets"].split("\n"), actor=row["actor"])
                    self.state.forward_done(row["id"], now)
            self.registers.write()
        try:
            self.upkeep.deliver()
        except MailbotError as exc:   # queued: the next cycle sends them
            warnings.append(exc.plain())
        return warnings

    def _poll(self, stop=None, progress: Progress | None = None) -> CycleReport:
        with self.work(officer=False):
            now = self.clock()
            template_problems: list[str] = []
            self.templates.check(self.cfg.agency, now, template_problems)
            try:
                try:
                    with (self.wire.mailbox(self.cfg.imap) as mb,
                          self.wire.smtp(self.cfg.smtp, self.cfg.agency.address) as smtp):
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
                self.upkeep.send_alerts()
                raise
            except Exception as exc:
                failure = explain_environment(exc, self.cfg.data_dir)
                if failure is None:
                    raise
                self.upkeep.environment_failed(failure)
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
            self.registers.write(report)
            self.alerts.routine(now)
            today = to_bangkok(now).date()
            for case in self.desk.results_not_sent(today):   # the Act: the result within 7 days of the decision
                self.alerts.alert(f"result-not-sent-{case['receipt']}-{today}",
                                  f"เรื่องเลขรับ {case['receipt']} พิจารณาแล้วแต่ยังไม่ได้ส่งผลถึงผู้ยื่นเกิน 7 วัน",
                                  f"case {case['receipt']} was decided more than 7 days ago and its result has not "
                                  "been sent", now, since=from_iso(case["decided_at"]),
                                  title=f"ยังไม่ได้ส่งผลการพิจารณา เลขรับ {case['receipt']}", receipt=case["receipt"])
            for problem in template_problems:
                report.warnings.append("แม่แบบข้อความมีข้อผิดพลาด จึงไม่ส่งข้อความนี้ / template not used: " + problem)
                self.alerts.alert("template", "แม่แบบข้อความมีข้อผิดพลาด: " + problem, "a template does not render",
                                  now, title="แม่แบบข้อความมีข้อผิดพลาด")
            if self.state.queued(limit=1):     # alerts raised at the end of the cycle go out now
                self.upkeep.send_alerts()
            report.warnings.extend(report.delivery.warnings)
            for w in report.warnings:
                log.warning(w)
            return report

    def rules_test(self, subject: str) -> RulesTest:
        """The decision the pipeline would make for a mail with this subject, explained."""
        return rules_test(self.cfg, self.rules, subject, self.desk, self.clock())

    def mailbox_waiting(self) -> int:
        with self.wire.mailbox(self.cfg.imap) as mb:
            mb.select()
            return len(mb.uids())

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
            raw = self.views.raw_message(row_id)
            if raw is None:
                raise MailbotError("ไม่พบต้นฉบับของอีเมลนี้ (คลังหรือโฟลเดอร์กักกัน) ประมวลผลใหม่ไม่ได้",
                                   "the raw message is in neither the archive nor data/quarantine; cannot reprocess")
            digest = hashlib.sha256(raw).hexdigest()
            with self.wire.mailbox(self.cfg.imap) as mb:
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
        from ..casework import completeness
        from ..mail.addresses import problem

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
            raw = self.views.raw_message(row_id)
            with self.state.tx():
                case = self.recorder.open_case(
                    received=received, now=now, service=service, checklist=checklist, message_row=row_id,
                    subject=subject, status=workflow.initial(service is not None, "none"),   # files not known
                    sender_name=sender_name, sender_addr=sender_addr or None, reply_to=sender_addr or None,
                    remark=f"ลงทะเบียนโดยเจ้าหน้าที่จากอีเมลที่กักกัน ({actor})", message_id=row["message_id"],
                    attachments=0, archive=row["archive"], sha256=row["sha256"], language=_language(raw))
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
            if raw is not None:
                try:
                    with self.wire.mailbox(self.cfg.imap) as mb:
                        uid = mb.find_raw(self.cfg.folders.quarantined, hashlib.sha256(raw).hexdigest(), len(raw))
                        if uid is not None:
                            mb.move([uid], self.cfg.folders.registered)
                except MailbotError as exc:
                    warnings.append(f"ย้ายอีเมลในกล่องไปโฟลเดอร์ {self.cfg.folders.registered} ไม่ได้: {exc.thai} / "
                                    f"could not move the server copy: {exc.english}")
            self.registers.write()
            return self.state.case_by_id(case["id"]), told, warnings

    # helpers of this section

    def _quarantined_row(self, row_id: int) -> Row:
        row = self.views.message_row(row_id)
        if row["outcome"] != kinds.Outcome.QUARANTINED:
            raise MailbotError(f"อีเมลหมายเลข {row_id} ไม่ได้อยู่ในกักกันแล้ว", f"message #{row_id} is not quarantined")
        return row


def _language(raw: bytes | None) -> str | None:
    """The language a quarantined message was written in, for the replies about the case an
    officer registers from it (mail/language.py); unknown (Thai) when it cannot be read."""
    if raw is None:
        return None
    try:
        letter = parse(raw)
    except Unparseable:
        return None
    return detect(letter.subject, letter.body_text)
