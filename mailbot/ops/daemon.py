"""Daemon: ``mailbot run`` — the long-running office service on apscheduler.

Owns: when the application core's actions run — a cycle whenever ``schedule.next_poll`` says
(and at once when the mailbox reports new mail, if ``schedule.idle`` and the server offers
IDLE), the daily supervisors' log at ``schedule.daily_report`` on working days, the nightly
backup — and a clean stop on Ctrl-C / SIGTERM: the running cycle finishes its batch first.
Each job opens the office (``app.Office``) and calls one of its methods; between cycles the
work lock is free, so officers' commands run while the service is up. The single-instance
lock is taken by the caller.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ..app import Notify, Office, alert_anyhow
from ..clock import Clock, utcnow
from ..config import Config, reloaded
from ..errors import ConnectionFailure, MailbotError, explain_environment
from ..intake.cycle import CycleReport
from ..mail.wire import REAL, Wire
from ..thai import BANGKOK
from . import schedule

log = logging.getLogger(__name__)


def _print(thai: str, english: str) -> None:
    print(f"{thai}\n{english}", flush=True)


class Daemon:
    def __init__(self, cfg: Config, clock: Clock = utcnow,
                 on_report: Callable[[CycleReport], None] | None = None, notify: Notify = _print,
                 wire: Wire = REAL, adjust: Callable[[Config], None] | None = None) -> None:
        self.cfg = cfg
        self.adjust = adjust      # what the command line set over the file (--every), kept across reloads
        self.wire = wire          # how the mail servers are reached (mail/wire.py)
        self.clock = clock
        self.on_report = on_report or (lambda report: None)
        self.notify = notify
        self.stop_event = threading.Event()
        self.sched = BackgroundScheduler(timezone=BANGKOK, executors={"default": ThreadPoolExecutor(1)},
                                         job_defaults={"coalesce": True, "max_instances": 1,
                                                       "misfire_grace_time": 3600})
        self.idle_thread: threading.Thread | None = None
        self.cycles = 0
        self.failures = 0      # cycles failed in a row
        self._running = threading.Lock()
        self._again = threading.Event()      # new mail announced while a cycle was running

    def office(self) -> Office:
        """The office for one job, with the settings as they are now (a change made in the console
        or by hand is seen on the next cycle, without a restart)."""
        fresh = reloaded(self.cfg)
        if fresh is not self.cfg and self.adjust is not None:
            self.adjust(fresh)
        self.cfg = fresh
        return Office.open(self.cfg, clock=self.clock, notify=self.notify, wire=self.wire)

    # ------------------------------------------------------------------ jobs

    def poll(self) -> None:
        with self._running:
            self._poll_once()
            while self._again.is_set() and not self.stop_event.is_set():
                self._again.clear()
                self._poll_once()
        if self._again.is_set() and not self.stop_event.is_set():   # announced just as the lock was let go
            self._again.clear()
            self.poll_now()
        if not self.stop_event.is_set():   # the regular schedule is never lost
            self.sched.add_job(self.poll, "date", run_date=schedule.next_poll(self.clock(), self.cfg.schedule),
                               id="poll", replace_existing=True)

    def _poll_once(self) -> None:
        try:
            with self.office() as office:
                if office.setup.waiting():      # setup not through yet: the mailbox is left alone
                    log.info("setup not finished; no poll")
                    return
                report = office.poll(stop=self.stop_event)
        except ConnectionFailure as exc:   # alerted by the core; the next cycle retries
            self.notify(exc.thai, exc.english)
        except MailbotError as exc:        # broken rules or templates, a missing password ...
            self.notify(exc.thai, exc.english)
            self._failed(exc.thai, exc.english)
        except Exception as exc:  # noqa: BLE001 - the service keeps going; next cycle retries
            known = explain_environment(exc, self.cfg.data_dir)
            if known is not None:
                self.notify(known.thai, known.english)
                self._alert_environment(known)
            else:
                log.exception("cycle failed")
                self.notify("รอบนี้ล้มเหลว จะลองใหม่รอบถัดไป", "cycle failed; retrying next cycle")
                self._failed("รอบการทำงานล้มเหลว (ข้อผิดพลาดภายใน ดูรายละเอียดใน data/logs/mailbot.log)",
                             f"the cycle failed: {type(exc).__name__}: {str(exc)[:160]}")
        else:
            self.cycles += 1
            self.failures = 0
            self.on_report(report)

    def _failed(self, thai: str, english: str) -> None:
        """A cycle that fails for a reason no one will see (a setting, a template, a bug): the
        second time in a row, the officers are alerted (at most hourly)."""
        self.failures += 1
        if self.failures >= 2:
            alert_anyhow(self.cfg, "cycle-failed", f"mailbot หยุดรับอีเมล ({self.failures} รอบติดกัน): {thai}",
                         english, self.clock(), title="mailbot หยุดรับอีเมล", wire=self.wire)

    def _alert_environment(self, failure: MailbotError) -> None:
        try:
            with self.office() as office:
                office.alerts.alert("environment", failure.thai, failure.english, self.clock(),
                                    title=failure.thai.split(" ")[0])
                office.send_alerts()
                office.send_line()
        except Exception:  # noqa: BLE001 - the disk may be the problem: the log has it
            log.warning("could not record the alert: %s", failure.english)

    def poll_now(self) -> None:
        """New mail announced by IDLE, or an IDLE connection that has begun to watch: run a cycle
        at once (or right after the one running)."""
        if self._running.locked():
            self._again.set()
        else:
            self.sched.add_job(self.poll, "date", run_date=datetime.now(BANGKOK), id="poll-now",
                               replace_existing=True)

    def daily_report(self) -> None:
        try:
            with self.office() as office:
                if not office.setup.waiting():
                    office.daily_log(self.clock().astimezone(BANGKOK).date(), email=True)
        except Exception:  # noqa: BLE001
            log.exception("daily report failed")
        self.sched.add_job(self.daily_report, "date", id="daily_report", replace_existing=True,
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.daily_report, self.cfg.schedule))

    def backup(self) -> None:
        if self.cfg.backup.dir is not None:
            try:
                with self.office() as office:
                    try:
                        office.backup()
                    except MailbotError as exc:
                        office.alerts.alert("backup", exc.thai, exc.english, self.clock(), title="สำรองข้อมูลไม่สำเร็จ")
                        office.send_alerts()
                        office.send_line()
            except Exception:  # noqa: BLE001
                log.exception("backup failed")
        self.sched.add_job(self.backup, "date", id="backup", replace_existing=True,
                           run_date=schedule.next_daily(self.clock(), self.cfg.schedule.backup_at))

    # ------------------------------------------------------------------ IDLE

    def watch_idle(self) -> None:
        """Wait on the mailbox for new mail (IMAP IDLE); each arrival triggers a cycle."""
        from ..mail.mailbox import NoIdle

        pause = 1.0
        while not self.stop_event.is_set():
            try:
                with self.wire.mailbox(self.cfg.imap) as mb:
                    # watched from here on; what came before (while no connection watched, or
                    # between the start's poll and this) is for a cycle that starts after it
                    mb.watch()
                    self.poll_now()
                    while not self.stop_event.is_set():
                        if mb.wait_for_new_mail(self.stop_event):
                            self.poll_now()
                        pause = 1.0
            except NoIdle:
                log.warning("IMAP server has no IDLE; polling every %s minutes", self.cfg.schedule.every_minutes)
                self.notify("เซิร์ฟเวอร์ไม่รองรับ IDLE ใช้การตรวจตามรอบเวลา", "server has no IDLE: polling")
                return
            except Exception as exc:  # noqa: BLE001 - reconnect soon (1, 2, 4 ... 60 s); polling goes on anyway
                log.warning("IDLE connection lost (%s: %s); reconnecting in %.0f s", type(exc).__name__,
                            str(exc)[:200], pause)
                self.stop_event.wait(pause)
                pause = min(pause * 2, 60.0)

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
        self.start_console()

    def start_console(self) -> None:
        """The officer's console on its own thread while ``console.enabled``; when it cannot start
        (port taken, listening beyond this computer without accounts) the service runs without it."""
        self.console = None
        if not self.cfg.console.enabled:
            return
        try:
            from ..console.server import ConsoleServer

            self.console = ConsoleServer(self.cfg, self.clock, notify=self.notify, wire=self.wire).start()
        except MailbotError as exc:
            self.notify("หน้าจอเจ้าหน้าที่ไม่ได้เปิด: " + exc.thai, "the console is not served: " + exc.english)
        except Exception as exc:  # noqa: BLE001 - the service never stops for its console
            log.exception("console failed to start")
            self.notify("หน้าจอเจ้าหน้าที่ไม่ได้เปิด (ดูรายละเอียดใน log)",
                        f"the console is not served ({type(exc).__name__}); see the log")
        else:
            self.notify(f"หน้าจอเจ้าหน้าที่ / officer console: {self.console.url}",
                        f"officer console at {self.console.url}")

    def stop(self) -> None:
        console = getattr(self, "console", None)     # not set when stopped before start_console
        if console is not None:
            console.stop()
        self.stop_event.set()
        self.sched.shutdown(wait=True)     # the running cycle ends at its next batch boundary
        if self.idle_thread is not None:
            self.idle_thread.join(10)      # leaves IDLE and logs out within a second

    def run_forever(self) -> None:
        """Block until Ctrl-C or SIGTERM, then stop cleanly."""
        def request_stop(signum, frame):
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
