"""Daemon: ``mailbot run`` — the long-running office service on apscheduler.

Owns: running a cycle whenever ``schedule.next_poll`` says (and at once when IMAP IDLE reports
new mail, if enabled and offered by the server), the daily supervisors' log at
``schedule.daily_report`` on working days (emailed to ``supervisors``), the nightly backup,
alerts, and a clean stop on Ctrl-C / SIGTERM: the running cycle finishes its batch first. The
single-instance lock is taken by the caller.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from . import schedule
from .config import Config
from .errors import ConnectionFailure, MailbotError
from .pipeline import CycleReport, run_cycle, utcnow
from .thai import BANGKOK

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, cfg: Config, clock: Callable[[], datetime] = utcnow,
                 on_report: Callable[[CycleReport], None] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.on_report = on_report or (lambda report: None)
        self.stop_event = threading.Event()
        self.sched = BackgroundScheduler(timezone=BANGKOK, executors={"default": ThreadPoolExecutor(1)},
                                         job_defaults={"coalesce": True, "max_instances": 1,
                                                       "misfire_grace_time": 3600})
        self.idle_thread: threading.Thread | None = None
        self.cycles = 0
        self._running = threading.Lock()
        self._again = threading.Event()      # new mail announced while a cycle was running

    # ------------------------------------------------------------------ jobs

    def poll(self) -> None:
        with self._running:
            self._poll_once()
            while self._again.is_set() and not self.stop_event.is_set():
                self._again.clear()
                self._poll_once()
        if not self.stop_event.is_set():   # the regular schedule is never lost
            self.sched.add_job(self.poll, "date", run_date=schedule.next_poll(self.clock(), self.cfg.schedule),
                               id="poll", replace_existing=True)

    def _poll_once(self) -> None:
        from .cli import open_side  # state + alerts helpers shared with the CLI

        now = self.clock()
        state, alerts = open_side(self.cfg)
        try:
            try:
                report = run_cycle(self.cfg, clock=self.clock, stop=self.stop_event)
            except ConnectionFailure as exc:
                print(exc.plain())
                alerts.connection_failed(exc, now)
                send_alerts(self.cfg, state)
            except MailbotError as exc:
                print(exc.plain())
            except Exception:  # noqa: BLE001 - the daemon keeps going; next cycle retries
                log.exception("cycle failed")
                print("รอบนี้ล้มเหลว จะลองใหม่รอบถัดไป / cycle failed; retrying next cycle")
            else:
                self.cycles += 1
                alerts.connection_ok()
                state.put("last_poll_ok", now.isoformat())
                if report.smtp_error is not None:
                    alerts.connection_failed(report.smtp_error, now)
                self.on_report(report)
            alerts.routine(now)
        finally:
            state.close()

    def poll_now(self) -> None:
        """New mail announced by IDLE: run a cycle at once (or right after the one running)."""
        if self._running.locked():
            self._again.set()
        else:
            self.sched.add_job(self.poll, "date", run_date=datetime.now(BANGKOK), id="poll-now",
                               replace_existing=True)

    def daily_report(self) -> None:
        from .cli import send_daily_report

        try:
            send_daily_report(self.cfg, (self.clock().astimezone(BANGKOK)).date(), self.clock())
        except Exception:  # noqa: BLE001
            log.exception("daily report failed")
        self.sched.add_job(self.daily_report, "date", id="daily_report", replace_existing=True,
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.daily_report, self.cfg.schedule))

    def backup(self) -> None:
        from .backup import backup
        from .cli import open_side

        state, alerts = open_side(self.cfg)
        try:
            if self.cfg.backup.dir is not None:
                try:
                    result = backup(self.cfg, self.clock())
                    state.put("last_backup", f"{self.clock().isoformat()} {result.folder}")
                except MailbotError as exc:
                    alerts.alert("backup", exc.thai, exc.english, self.clock())
                    send_alerts(self.cfg, state)
        finally:
            state.close()
        self.sched.add_job(self.backup, "date", id="backup", replace_existing=True,
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.backup_at))

    # ------------------------------------------------------------------ IDLE

    def watch_idle(self) -> None:
        """Hold an IMAP connection in IDLE; new mail triggers a poll. Falls back to polling."""
        from .fetch import Mailbox

        while not self.stop_event.is_set():
            try:
                with Mailbox(self.cfg.imap) as mb:
                    if not mb.c.has_capability("IDLE"):
                        log.warning("IMAP server has no IDLE; polling every %s minutes", self.cfg.schedule.every_minutes)
                        print("เซิร์ฟเวอร์ไม่รองรับ IDLE ใช้การตรวจตามรอบเวลา / server has no IDLE: polling")
                        return
                    mb.select()
                    known = int(mb.c.folder_status(self.cfg.imap.folder, [b"MESSAGES"])[b"MESSAGES"])
                    while not self.stop_event.is_set():
                        mb.c.idle()
                        try:
                            responses = []
                            deadline = datetime.now() + timedelta(minutes=9)   # re-IDLE well before 29 min
                            while not responses and datetime.now() < deadline and not self.stop_event.is_set():
                                responses = mb.c.idle_check(timeout=1)
                        finally:
                            mb.c.idle_done()
                        # only a growing mailbox is new mail; our own moves shrink it (EXPUNGE)
                        grew = False
                        for r in responses:
                            if len(r) > 1 and r[1] == b"EXPUNGE":
                                known = max(0, known - 1)
                            elif len(r) > 1 and r[1] == b"EXISTS":
                                grew = grew or int(r[0]) > known
                                known = int(r[0])
                        if grew:
                            self.poll_now()
            except Exception as exc:  # noqa: BLE001 - reconnect after a pause; polling continues anyway
                log.warning("IDLE connection lost (%s); retrying in 60 s", type(exc).__name__)
                self.stop_event.wait(60)

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        self.sched.start()
        self.sched.add_job(self.poll, "date", run_date=datetime.now(BANGKOK), id="poll")
        self.sched.add_job(self.daily_report, "date", id="daily_report",
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.daily_report, self.cfg.schedule))
        self.sched.add_job(self.backup, "date", id="backup",
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.backup_at))
        if self.cfg.schedule.idle:
            self.idle_thread = threading.Thread(target=self.watch_idle, name="imap-idle", daemon=True)
            self.idle_thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.sched.shutdown(wait=True)     # the running cycle ends at its next batch boundary
        if self.idle_thread is not None:
            self.idle_thread.join(10)      # leaves IDLE and logs out within a second

    def run_forever(self) -> None:
        """Block until Ctrl-C or SIGTERM, then stop cleanly."""
        def request_stop(signum, frame):  # type: ignore[no-untyped-def]
            self.stop_event.set()

        signal.signal(signal.SIGINT, request_stop)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, request_stop)
        if hasattr(signal, "SIGBREAK"):   # Windows console close / Ctrl-Break
            signal.signal(signal.SIGBREAK, request_stop)
        self.start()
        while not self.stop_event.wait(0.5):
            pass
        self.stop()


def send_alerts(cfg: Config, state) -> None:  # type: ignore[no-untyped-def]
    """Deliver queued alerts over SMTP even when IMAP is down."""
    from .pipeline import deliver
    from .send import Smtp

    try:
        with Smtp(cfg.smtp, cfg.agency.address) as smtp:
            deliver(state, smtp, utcnow, cfg.limits.replies_per_hour, CycleReport())
    except Exception:  # noqa: BLE001 - SMTP down too: the log and the console have it
        log.warning("alerts could not be emailed (SMTP unavailable)")
