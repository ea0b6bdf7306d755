"""App: the one application core that every face (command line, service, demo, console) calls.

Owns: wiring an office from its config (state database, rules, templates, outbox, case desk,
alerts, registers) and offering the officer's actions as plain methods, each handed to the
service of its role: ``intake.service`` (poll, quarantine, rules test), ``casework.officer``
(cases, held replies), ``casework.desk_views`` (what the faces read), ``casework.result_desk``
(results), ``registers.service`` (registers, daily log, publish), ``ops.service`` (status,
backup, privacy, audit, alerts). Every change runs under the work lock (``Office.work``), never
at the same moment as a cycle on the same data folder; a person who must wait is told so.
Faces only parse their input, call one method and show the result.
"""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Sequence

from .casework.cases import Desk
from .casework.desk_views import BANGKOK_TZ, QUEUE_LIMIT, CasePage, DeskViews, MessageView, Today, WorkItem
from .casework.officer import CaseView, Officer
from .casework.replies import Templates, template_globals
from .casework.result_desk import ResultDesk, ResultProblem, ResultsRun
from .casework.workflow import unknown_status
from .clock import Clock, utcnow
from .config import Config, load_rules
from .errors import MailbotError
from .intake.cycle import CycleReport, Progress
from .intake.record import Recorder
from .intake.service import Intake, RulesTest, rules_test
from .mail.outbox import Delivery, Outbox
from .mail.wire import REAL, Wire
from .ops import anchors
from .ops.alerts import Alerts
from .ops.archive import Archive
from .ops.line import Channel, Round
from .ops.locks import WorkLock
from .ops.service import Status, Upkeep, recorded_heads
from .registers.numbering import normalise_receipt
from .registers.service import Registers
from .setup.service import SetupDesk
from .store import Row, audit, open_state

__all__ = ["BANGKOK_TZ", "QUEUE_LIMIT", "CasePage", "CaseView", "MessageView", "Notify", "Office", "ResultProblem",
           "ResultsRun", "RulesTest", "Status", "Today", "WorkItem", "alert_anyhow", "normalise_receipt",
           "recorded_heads", "restore", "rules_test", "run_cycle", "unknown_status"]

log = logging.getLogger(__name__)

Notify = Callable[[str, str], None]     # (thai, english): something a person should know now


def _quiet(thai: str, english: str) -> None:
    log.info("%s / %s", thai, english)


class Office:
    """One agency's data folder, opened from its config."""

    def __init__(self, cfg: Config, clock: Clock = utcnow, notify: Notify = _quiet, wire: Wire = REAL) -> None:
        self.cfg = cfg
        self.clock = clock
        self.notify = notify
        self.wire = wire          # how the mail servers are reached (mail/wire.py): the real ones by default
        self.work_lock = WorkLock(cfg.data_dir, (cfg.database.url(), cfg.database.tenant) if cfg.database else None)
        self.state = open_state(cfg)
        try:
            self.rules = load_rules(cfg.rules_path)
            self.templates = Templates(cfg.templates_dir, template_globals(cfg), cfg.data_dir / "cache")
        except BaseException:
            self.state.close()
            raise
        self.outbox = Outbox(cfg, self.state, self.templates)
        self.desk = Desk(cfg, self.rules, self.state, self.templates, self.outbox)
        self.recorder = Recorder(cfg, self.state, self.desk, self.outbox, Archive(cfg.data_dir))
        self.alerts = Alerts(cfg, self.state, self.outbox)
        self.secrets = anchors.store(cfg)     # the audit chain's key and head, outside the database
        try:
            anchors.use_key(self.state, self.secrets)
        except MailbotError as exc:          # no credential store: the chain goes on unsigned, verify says so
            log.warning("audit chain key: %s", exc.english)
        self.outbox.on_sent.append(self.desk.mail_sent)
        self.outbox.on_failed.append(self.desk.mail_failed)
        # the services of each role, each given the parts it works with
        state, desk, outbox, work = self.state, self.desk, self.outbox, self.work
        self.upkeep = Upkeep(cfg=cfg, clock=clock, state=state, outbox=outbox, alerts=self.alerts, work=work,
                             wire=wire)
        self.registers = Registers(cfg=cfg, clock=clock, state=state, desk=desk, outbox=outbox, notify=notify,
                                   work=work, send_alerts=self.upkeep.send_alerts)
        self.officer = Officer(cfg=cfg, clock=clock, rules=self.rules, state=state, desk=desk, outbox=outbox,
                               recorder=self.recorder, registers=self.registers, work=work)
        self.result_desk = ResultDesk(cfg=cfg, clock=clock, state=state, desk=desk, registers=self.registers,
                                      deliver=self.upkeep.deliver, work=work)
        self.views = DeskViews(cfg=cfg, clock=clock, state=state, status=self.upkeep.status,
                               result_problems=self.result_desk.result_problems)
        self.intake = Intake(cfg=cfg, clock=clock, rules=self.rules, templates=self.templates, state=state, desk=desk,
                             outbox=outbox, alerts=self.alerts, recorder=self.recorder, registers=self.registers,
                             upkeep=self.upkeep, views=self.views, work=work, wire=wire)
        self.setup = SetupDesk(cfg, clock, state, wire, self.templates)   # the first hour, the settings forms

    @classmethod
    def open(cls, cfg: Config, clock: Clock = utcnow, notify: Notify = _quiet, wire: Wire | None = None) -> "Office":
        """``wire``: how the mail servers are reached (default: the configured IMAP and SMTP servers;
        a test passes ``memory.MemoryServer.wire()``)."""
        return cls(cfg, clock, notify, wire or REAL)

    def close(self) -> None:
        try:
            anchors.remember_head(self.state, self.secrets)
        except Exception as exc:  # noqa: BLE001 - a credential store out of reach never stops closing
            log.warning("audit chain head not kept: %s", exc)
        finally:
            self.state.close()

    def __enter__(self) -> "Office":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def work(self, officer: bool = True):
        """The work lock for one action (see locks.WorkLock)."""
        return self.work_lock.hold(self.notify, officer=officer)

    # ------------------------------------------------------------------ intake (intake/service.py)

    def poll(self, stop=None, progress: Progress | None = None) -> CycleReport:
        """One cycle: fetch, decide, reply, move; results, reminders; registers; alerts."""
        return self.intake.poll(stop, progress)

    def rules_test(self, subject: str) -> "RulesTest":
        """The decision the pipeline would make for a mail with this subject, explained."""
        return self.intake.rules_test(subject)

    def mailbox_waiting(self) -> int:
        return self.intake.mailbox_waiting()

    def quarantined(self, limit: int = 500) -> list[Row]:
        return self.intake.quarantined(limit)

    def reprocess(self, row_id: int, actor: str) -> str:
        """A quarantined message goes through the pipeline again (after a fix); what was done, in Thai."""
        return self.intake.reprocess(row_id, actor)

    def register_by_hand(self, row_id: int, *, sender_name: str, sender_addr: str, subject: str,
                         service_code: str = "", actor: str, reply: bool = True) -> tuple[Row, str, list[str]]:
        """Register a quarantined message as a case by hand: the next receipt number, sender and subject."""
        return self.intake.register_by_hand(row_id, sender_name=sender_name, sender_addr=sender_addr,
                                            subject=subject, service_code=service_code, actor=actor, reply=reply)

    # ------------------------------------------------------------------ cases (casework/officer.py)

    def case(self, receipt: str) -> CaseView:
        return self.officer.case(receipt)

    def cases(self, status: str | None = None) -> list[Row]:
        return self.officer.cases(status)

    def set_case(self, receipt: str, *, status: str | None, note: str = "", tell: str = "",
                 actor: str) -> tuple[Row, str]:
        """An officer's change; the citizen is mailed only what ``tell`` says (or the status template)."""
        return self.officer.set_case(receipt, status=status, note=note, tell=tell, actor=actor)

    def cancel_case(self, receipt: str, reason: str, actor: str) -> Row:
        """A registration cancelled: the row stays, marked ยกเลิก with the reason, who and when."""
        return self.officer.cancel_case(receipt, reason, actor)

    def set_delay(self, receipt: str, reason: str, expected: str, actor: str) -> Row:
        """Why a case is late and when it should be done: what the Act's 7-day notice tells the citizen."""
        return self.officer.set_delay(receipt, reason, expected, actor)

    def set_title(self, receipt: str, title: str, actor: str) -> Row:
        """The requester's title (นาย, นาง, นางสาว, a rank) for the letter's เรียน and the licence register."""
        return self.officer.set_title(receipt, title, actor)

    def classify(self, receipt: str, code: str, actor: str, note: str = "") -> tuple[Row, str, list[str]]:
        """An unclassified request gets its service: status, checklist, register, receipt and units follow."""
        case, told, warnings = self.officer.classify(receipt, code, actor, note)
        return case, told, warnings + self.intake.forwards()      # stamped outside the work lock

    def units(self) -> list[str]:
        """The internal units named in rules.yaml (``forward_to``), for forwarding by hand."""
        return self.officer.units()

    def forward_case(self, receipt: str, unit: str, actor: str, note: str = "") -> list[str]:
        """Send a case to an internal unit by hand (an address of the agency's own domains); warnings."""
        return self.officer.forward_case(receipt, unit, actor, note) + self.intake.forwards()

    def confirm_forward(self, receipt: str, actor: str) -> tuple[Row, str, list[str]]:
        """A held staff forward confirmed by the officer: the case becomes the citizen's, who gets the receipt."""
        case, told, warnings = self.officer.confirm_forward(receipt, actor)
        return case, told, warnings + self.intake.forwards()

    def documents_complete(self, receipt: str, actor: str) -> tuple[Row, str]:
        """The officer checked the files: the documents are complete."""
        return self.officer.documents_complete(receipt, actor)

    # ------------------------------------------------------------------ setup (setup/service.py)

    def is_admin(self, officer: str | None) -> bool:
        """Whether ``officer`` may change settings (with accounts: an administrator only)."""
        return officer is not None and self.state.officer_is_admin(officer)

    def acknowledge(self, kind: str, ref: int, actor: str) -> None:
        """The officer has dealt with an item of the work queue another way (mail, quarantine, flagged)."""
        return self.officer.acknowledge(kind, ref, actor)

    def held(self, failed: bool = False) -> list[Row]:
        return self.officer.held(failed)

    def release(self, outbox_id: int, actor: str) -> Row:
        return self.officer.release(outbox_id, actor)

    def discard(self, outbox_id: int, actor: str) -> Row:
        return self.officer.discard(outbox_id, actor)

    # ------------------------------------------------------------------ what the faces read (casework/desk_views.py)

    def today(self) -> "Today":
        """Arrivals today by outcome, what needs an officer (urgent first, then oldest) and the health."""
        return self.views.today()

    def due_cases(self, limit: int = 50, warn_days: int = 3) -> tuple[list["WorkItem"], int, int]:
        """Open cases late or nearly due by their service time: the first ``limit``, how many late, nearly due."""
        return self.views.due_cases(limit, warn_days)

    def find_cases(self, text: str = "", status: str = "", service: str = "", since: date | None = None,
                   until: date | None = None, page: int = 1, per_page: int = 50) -> "CasePage":
        """Cases by receipt number, name, address or subject, status, service and day received, by page."""
        return self.views.find_cases(text, status, service, since, until, page, per_page)

    def case_messages(self, receipt: str) -> list["MessageView"]:
        """Every message of a case (the request and what followed), read from the archive as text."""
        return self.views.case_messages(receipt)

    def message_view(self, row_id: int) -> "MessageView":
        """One stored message as the officer may read it: headers and body as text, its attached files."""
        return self.views.message_view(row_id)

    def raw_message(self, row_id: int) -> bytes | None:
        """The raw bytes of a stored message: the archive copy, else its quarantine copy."""
        return self.views.raw_message(row_id)

    def attachment(self, row_id: int, index: int) -> tuple[str, str, bytes]:
        """(safe file name, content type, bytes) of one attached file of a stored message."""
        return self.views.attachment(row_id, index)

    # ------------------------------------------------------------------ results (casework/result_desk.py)

    def results(self, letter: tuple | None = None) -> ResultsRun:
        """Sign and send what is in results/outbox (after writing a result letter, if asked)."""
        return self.result_desk.results(letter)

    def preview_letter(self, receipt: str, outcome: str, note: str) -> Path:
        """The result letter exactly as it would be signed and sent, written to results/preview/ only."""
        return self.result_desk.preview_letter(receipt, outcome, note)

    def result_problems(self) -> list["ResultProblem"]:
        """Files in results/problems with their Thai explanation (.txt), oldest first."""
        return self.result_desk.result_problems()

    def retry_result(self, name: str, actor: str, receipt: str = "") -> ResultsRun:
        """A problem file back to results/outbox (renamed for ``receipt`` when given), signed and sent."""
        return self.result_desk.retry_result(name, actor, receipt)

    def stage_result(self, receipt: str, data: bytes, outcome: str, actor: str) -> Path:
        """An uploaded result PDF for a case, kept in results/preview/ until the officer sends it."""
        return self.result_desk.stage_result(receipt, data, outcome, actor)

    def send_staged(self, name: str, actor: str) -> ResultsRun:
        """An uploaded result (``stage_result``) into results/outbox, then signed and sent at once."""
        return self.result_desk.send_staged(name, actor)

    def preview_file(self, name: str) -> Path:
        """A file of results/preview/ (a letter preview or an uploaded result), by its name."""
        return self.result_desk.preview_file(name)

    def recent_results(self, limit: int = 20) -> list[Row]:
        return self.result_desk.recent_results(limit)

    # ------------------------------------------------------------------ registers (registers/service.py)

    def daily_log(self, day: date, email: bool = False) -> Path:
        """registers/daily/<BE date>.xlsx and .pdf, and the year's receive register as PDF; when sent
        (``email``), also the day's summary and overdue cases to LINE (alerts.line), pushed after
        the work lock is let go."""
        path = self.registers.daily_log(day, email)
        if email and self.upkeep.line_daily(day):
            self.upkeep.send_line()
        return path

    def publish(self) -> list[Path]:
        return self.registers.publish()

    def receive_register_pdf(self, year_be: int) -> Path:
        """The year's receive register as PDF, made now if missing or older than its workbook."""
        return self.registers.receive_register_pdf(year_be)

    # ------------------------------------------------------------------ upkeep (ops/service.py)

    def status(self) -> "Status":
        return self.upkeep.status()

    def backup(self):
        return self.upkeep.backup()

    def audit_verify(self, pasted: Sequence[str] = ()) -> "audit.Verification":
        """The audit chain checked end to end, and against every head kept outside the database."""
        return self.upkeep.audit_verify(pasted)

    def privacy_export(self, address: str, target: Path):
        return self.upkeep.privacy_export(address, target)

    def privacy_due(self):
        return self.upkeep.privacy_due()

    def privacy_prune(self, plan) -> int:
        return self.upkeep.privacy_prune(plan)

    def deliver(self) -> Delivery:
        """Send what the outbox owes (SMTP only: no mailbox needed)."""
        return self.upkeep.deliver()

    def send_now(self) -> Delivery:
        """An officer's "send now": what the outbox owes, under the work lock like any officer action."""
        with self.work():
            return self.upkeep.deliver()

    def send_alerts(self) -> None:
        """Deliver queued alerts over SMTP even when IMAP is down; never raises."""
        return self.upkeep.send_alerts()

    def send_line(self) -> "Round":
        """Push what is owed to LINE (alerts.line): no lock held, never raises, a few seconds at most."""
        return self.upkeep.send_line()

    def set_line_token(self, token: str) -> str:
        """`mailbot secret set line`: the channel access token tried and kept in the credential store."""
        return self.upkeep.set_line_token(token)

    def forget_line_token(self) -> None:
        return self.upkeep.forget_line_token()

    def environment_failed(self, failure: MailbotError) -> None:
        """Disk full, no permission, database locked or damaged: alert, best effort."""
        return self.upkeep.environment_failed(failure)


def run_cycle(cfg: Config, clock: Clock = utcnow, stop: threading.Event | None = None,
              wire: Wire | None = None) -> CycleReport:
    """One full cycle against the configured servers, or those ``wire`` reaches (opens the office,
    polls, closes)."""
    with Office.open(cfg, clock=clock, wire=wire) as office:
        return office.poll(stop=stop)


def restore(cfg: Config, source: Path, force: bool, now: datetime):
    """`mailbot restore`: the files back from a verified backup, then every receipt number issued
    after that backup found again (recovery.py), so none is ever issued twice. The Sent folder
    is searched too, at the next cycle."""
    from .ops.backup import restore as restore_files
    from .ops.recovery import local_evidence, recover

    if cfg.database is not None:
        raise MailbotError("หน่วยงานที่ใช้บริการของผู้ให้บริการ ข้อมูลอยู่ในฐานข้อมูลของผู้ให้บริการ "
                           "ให้ผู้ให้บริการกู้คืนจากข้อมูลสำรองของฐานข้อมูล (pg_dump)",
                           "an agency served by a host keeps its records in the host's PostgreSQL: the host "
                           "restores them from its database backup (pg_dump); mailbot restore is for one office")
    with WorkLock(cfg.data_dir).hold(officer=True):   # no console action while the files are replaced
        result = restore_files(cfg, source, force=force, now=now)
        state = open_state(cfg)
        secrets_store = anchors.store(cfg)
        try:
            anchors.use_key(state, secrets_store)
            state.put("recovery_pending", "restore")     # the next cycle also reads the Sent folder
            with state.tx():   # heads recorded after this backup are superseded, on the record
                chain = state.audit_hashes()
                superseded = [[where, n, h] for where, n, h in recorded_heads(cfg, secrets_store)
                              if not chain.get(n, "").startswith(h)]
                state.audit(now, "mailbot restore", "restored", result.source.name,
                             {"backup": result.source.name, "superseded": superseded})
            found = recover(state, local_evidence(cfg), cfg, load_rules(cfg.rules_path), now)
            anchors.remember_head(state, secrets_store)
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


def alert_anyhow(cfg: Config, key: str, thai: str, english: str, now: datetime, title: str = "",
                 wire: Wire | None = None) -> None:
    """An alert when the office cannot even be opened (broken rules, a template that does not
    render, a bug): through the office if it opens, else with the starter templates. Never raises;
    the log has it whatever happens."""
    log.error("%s / %s", thai, english)
    try:
        with Office.open(cfg, clock=lambda: now, wire=wire) as office:
            office.alerts.alert(key, thai, english, now, title=title)
            office.send_alerts()
            office.send_line()
        return
    except Exception:  # noqa: BLE001 - fall back to the starter templates below
        pass
    try:
        from .starter import starter_dir

        state = open_state(cfg)
        try:
            outbox = Outbox(cfg, state, Templates(starter_dir() / "templates"))
            Alerts(cfg, state, outbox).alert(key, thai, english, now, title=title)
            try:
                with (wire or REAL).smtp(cfg.smtp, cfg.agency.address) as smtp:
                    outbox.deliver(smtp, lambda: now)
            finally:
                Channel(cfg, state, lambda: now).deliver()     # LINE needs no mail server; never raises
        finally:
            state.close()
    except Exception:  # noqa: BLE001 - SMTP or the disk may be the problem: the log has it
        log.warning("the alert could not be sent either: %s", english)

