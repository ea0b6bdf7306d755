"""Upkeep: the office's health, its copies and its outgoing alerts, for ``app.Office``.

Owns: what the office reports about itself (``status``: last and next poll, what waits in the
outbox and in quarantine, the last backup, the signing certificate, a Graph mailbox's folders), the backup, the privacy
(PDPA) export, due list and prune, the audit chain checked against the heads kept in backups and
daily logs (``recorded_heads``), and sending what the outbox owes over SMTP alone
(``deliver``), so that alerts go out even when IMAP is down (``send_alerts``,
``environment_failed``), and pushing what is owed to LINE (``send_line``: outside the work lock,
never raising; ``line_daily``: the day's summary and overdue cases). Changes run under the work
lock it is given (``app.Office.work``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..config import Config
from ..errors import ConfigError, MailbotError
from ..mail.outbox import Delivery, Outbox
from ..mail.wire import REAL, Wire
from ..store import State, from_iso, iso
from ..thai import to_bangkok
from . import anchors, line
from .alerts import Alerts
from .anchors import recorded_heads
from .line import Channel, LineStatus, Round
from .locks import Work

if TYPE_CHECKING:
    from ..store import audit

log = logging.getLogger(__name__)


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
    line: "LineStatus | None" = None        # alerts.line: last sent, last failure, what is owed
    # mailbox: graph: the mailbox, and each folder read through Graph (name, last synced, messages)
    graph: tuple[str, list[tuple[str, datetime | None, int]]] | None = None





class Upkeep:
    """Status, backup, privacy, the audit check and the SMTP-only delivery of one office."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], state: State, outbox: Outbox,
                 alerts: Alerts, work: Work, wire: Wire = REAL) -> None:
        self.cfg = cfg
        self.wire = wire
        self.clock = clock
        self.state = state
        self.outbox = outbox
        self.alerts = alerts
        self.work = work
        self.line = Channel(cfg, state, clock)

    # ------------------------------------------------------------------ sending

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
        with self.wire.smtp(self.cfg.smtp, self.cfg.agency.address) as smtp:
            return self.outbox.deliver(smtp, self.clock)

    def send_alerts(self) -> None:
        """Deliver queued alerts over SMTP even when IMAP is down; never raises."""
        try:
            self.deliver()
        except Exception:  # noqa: BLE001 - SMTP down too: the log and the console have it
            log.warning("alerts could not be emailed (SMTP unavailable)")

    def send_line(self) -> Round:
        """Push what is owed to LINE (alerts.line), with no lock held: never raises, a few seconds
        at most (ops.line.Channel.deliver)."""
        return self.line.deliver()

    def line_daily(self, day: date) -> int:
        """The day's summary and its overdue cases owed to LINE (once a day each); how many texts."""
        if self.cfg.alerts.line is None or not self.cfg.alerts.line.daily_summary:
            return 0
        now = self.clock()
        with self.state.tx():
            return sum(line.queue(self.cfg, self.state, kind, f"{kind}|{day.isoformat()}", text, now)
                       for kind, text in line.daily_texts(self.cfg, self.state, day))

    def set_line_token(self, token: str) -> str:
        """A channel access token tried (GET /v2/bot/info) and kept in the credential store; what
        LINE said of the account. A token LINE refuses is not kept."""
        token = token.strip()
        if not token:
            raise ConfigError("ไม่ได้ใส่โทเค็น", "no token entered")
        said = line.try_token(self.cfg, token, self.clock)
        line.secret_store(self.cfg).set(line.TOKEN, token)
        self.line.token_changed()
        return said

    def forget_line_token(self) -> None:
        line.secret_store(self.cfg).delete(line.TOKEN)

    # ------------------------------------------------------------------ copies and the record

    def audit_verify(self, pasted: Sequence[str] = ()) -> "audit.Verification":
        """The audit chain checked end to end, and against every head kept outside the database:
        backups, daily logs, the credential store, the daily log mails in the Sent folder (their
        subject carries the head), and heads pasted from the supervisors' copies."""
        heads = recorded_heads(self.cfg, anchors.store(self.cfg))
        notes = []
        for text in pasted:
            found = anchors.parse_heads(text, "สำเนาของผู้บังคับบัญชา (supervisor's copy)")
            if not found:
                raise MailbotError(f"ไม่พบรหัสบันทึกตรวจสอบ (#เลข ตามด้วยรหัส) ในข้อความที่วาง: {text[:60]}",
                                   f"no audit head (#N followed by its hash) in the text given: {text[:60]}")
            heads += found
        try:
            with self.wire.mailbox(self.cfg.imap) as mb:
                sent = anchors.parse_heads("\n".join(mb.sent_subjects("mailbot.daily_report.")),
                                           "อีเมลบันทึกประจำวันในโฟลเดอร์ Sent")
            heads += sent
            notes.append(f"ตรวจกับอีเมลบันทึกประจำวันในโฟลเดอร์ Sent {len(sent)} ฉบับ / "
                         f"checked against {len(sent)} daily log mails in the Sent folder")
        except MailbotError as exc:
            notes.append(f"อ่านโฟลเดอร์ Sent ไม่ได้ ({exc.thai}) ตรวจกับแหล่งอื่นเท่านั้น / "
                         f"the Sent folder could not be read ({exc.english}): checked against the other copies only")
        keyed_from = self.state.get("audit_keyed_from")
        result = self.state.audit_verify(heads, keyed_from=int(keyed_from) if keyed_from else None)
        result.notes = result.notes + notes + [f"ตรวจกับจุดอ้างอิงที่เก็บไว้นอกฐานข้อมูล {len(heads)} จุด / "
                                f"checked against {len(heads)} heads kept outside the database"]
        return result

    def backup(self):
        from .backup import backup

        with self.work():
            result = backup(self.cfg, self.clock())
            self.state.put("last_backup", f"{iso(self.clock())} {result.folder}")
            return result

    # ------------------------------------------------------------------ what the office sees

    def status(self) -> Status:
        from . import schedule
        from .backup import latest

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
        if self.cfg.mailbox == "graph":
            st.graph = (self.cfg.graph_mailbox, [(r["name"], from_iso(r["synced_at"]) if r["synced_at"] else None,
                                                  r["messages"]) for r in state.graph_sync_times(self.cfg.account)])
        st.line = self.line.status()
        if self.cfg.signing is not None:
            from ..documents.certs import certificate_info

            try:
                info = certificate_info(self.cfg.resolve(self.cfg.signing.pkcs12), self.cfg.signing.key_password())
                st.certificate = (info.not_after, info.days_left(now), "")
            except MailbotError as exc:
                st.certificate = (None, 0, exc.thai)
        return st

    # ------------------------------------------------------------------ privacy (PDPA)

    def privacy_export(self, address: str, target: Path):
        from . import privacy

        with self.work():
            return privacy.export(self.state, self.cfg, address, target, self.clock())

    def privacy_due(self):
        from . import privacy

        return privacy.due(self.state, self.cfg, self.clock())

    def privacy_prune(self, plan) -> int:
        from . import privacy

        with self.work():
            return privacy.prune(self.state, self.cfg, plan, self.clock())
