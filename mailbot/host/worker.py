"""``mailbot host worker``: the host's agencies served by procrastinate, a job queue that lives
in the host's own PostgreSQL (no broker to run), with periodic tasks and locks.

Why procrastinate (not Celery or Dramatiq): the host already runs PostgreSQL for the agencies'
records, and procrastinate needs nothing else — no Redis or RabbitMQ to deploy, back up and
watch. Its ``lock`` runs the jobs of one agency one after another across every worker, its
``queueing_lock`` keeps at most one waiting, periodic tasks are deduplicated in the database (any
number of workers, each tick deferred once), and workers send heartbeats, so the jobs of a worker
that died are found.

Owns: the tasks — ``mailbot.cycle`` (one agency's cycle), ``mailbot.daily`` (its daily log),
``mailbot.tick`` (periodic: defers each agency whose cycle or daily job is due) and
``mailbot.rescue`` (periodic: a cycle whose worker stopped sending heartbeats is closed as failed,
so the agency's next cycle is not held behind it; the cycle itself lost nothing — intake records
its intent before each effect). Each cycle also holds the agency's session advisory lock
(``store.host.AgencyLock``), so that even a worker taken for dead but still running never runs
an agency's cycle beside another.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import procrastinate
from procrastinate import exceptions as pexc
from procrastinate.jobs import Status

from ..app import Office
from ..clock import Clock, from_environment
from ..errors import MailbotError, explain_environment
from ..ops import schedule
from ..store.host import AgencyLock, HostStore
from ..thai import BANGKOK
from .service import agency_config, measure, use_host_secrets

log = logging.getLogger(__name__)


@dataclass
class Options:
    tick_seconds: int = 10          # how often due agencies are looked for
    heartbeat: float = 10.0         # seconds between a worker's heartbeats
    stalled: float = 30.0           # a worker silent this long is taken for dead
    concurrency: int = 4            # cycles one worker runs at once (each in a thread: IMAP waits)
    idle: bool = False              # this worker watches mailboxes (IMAP IDLE) instead of running cycles


def make_app(url: str, options: Options | None = None, clock: Clock | None = None) -> procrastinate.App:
    """The procrastinate app over the host's database, with mailbot's tasks."""
    options = options or Options()
    clock = clock or from_environment()[0]
    use_host_secrets(url)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    worker_name = f"{socket.gethostname()}:{os.getpid()}"

    # an agency whose cycle was cut off (its worker died) is due again after this long
    lease = timedelta(seconds=2 * options.stalled + options.tick_seconds + 5)

    @app.task(name="mailbot.cycle", queue="agencies")
    def cycle(agency: str) -> str:
        return run_cycle(url, agency, clock, worker_name, lease)

    @app.task(name="mailbot.daily", queue="agencies")
    def daily(agency: str) -> str:
        return run_daily(url, agency, clock)

    @app.task(name="mailbot.idle", queue="idle", pass_context=True)
    def idle(context: procrastinate.JobContext, agency: str) -> str:
        return run_idle(url, agency, clock, context.should_abort)

    @app.periodic(cron=f"* * * * * */{max(1, min(options.tick_seconds, 59))}", periodic_id="tick")
    @app.task(name="mailbot.tick", queue="host", queueing_lock="tick")
    async def tick(timestamp: int) -> int:
        now = clock()
        due, daily_due, watch = await asyncio.to_thread(_due, url, now)
        for name, cut_off in due:       # an agency whose cycle a dead worker cut off goes first
            await _defer(cycle, name, f"agency:{name}", f"cycle:{name}", RESCUED if cut_off else 0)
        for name in daily_due:
            await _defer(daily, name, f"agency:{name}", f"daily:{name}")
        for name in watch:               # one long-lived watch per agency, on whichever IDLE worker takes it
            await _defer(idle, name, f"idle:{name}", f"idle:{name}")
        return len(due)

    @app.periodic(cron=f"* * * * * */{max(1, min(int(options.heartbeat), 59))}", periodic_id="rescue")
    @app.task(name="mailbot.rescue", queue="host", queueing_lock="rescue")
    async def rescue(timestamp: int) -> int:
        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=options.stalled)
        closed = 0
        for job in stalled:
            # (no lock on tick and rescue themselves: a job of a dead worker would hold it for
            # good; two at once are harmless, each deferral deduplicated by its queueing lock)
            if job.task_name in ("mailbot.cycle", "mailbot.daily", "mailbot.idle", "mailbot.tick", "mailbot.rescue"):
                try:
                    await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
                except pexc.ConnectorException as exc:     # another process's rescue closed it first
                    log.info("stalled job %s already closed elsewhere (%s)", job.id, exc)
                    continue
                log.warning("job %s of %s stalled (its worker stopped): closed", job.id, job.lock)
                closed += 1
                agency = str((job.task_kwargs or {}).get("agency", ""))
                if job.task_name == "mailbot.cycle" and agency:
                    await asyncio.to_thread(_poll_soon, url, agency, clock())
                    # queued now, ahead of the agencies merely due (not at the next tick)
                    await _defer(cycle, agency, f"agency:{agency}", f"cycle:{agency}", RESCUED)
        return closed

    return app


def prepare_queue(url: str) -> bool:
    """procrastinate's tables in the host's database (``mailbot host init``); False if there already."""
    with HostStore(url) as reg:
        if reg.has_queue():
            return False
    app = make_app(url)
    with app.open():
        app.schema_manager.apply_schema()
    return True


RESCUED = 10        # the priority of a cycle that takes on an agency a dead worker cut off (others: 0)


async def _defer(task: procrastinate.tasks.Task, name: str, lock: str, queueing_lock: str, priority: int = 0) -> None:
    """The agency's job, unless one is waiting already (its queueing lock)."""
    try:
        await task.configure(lock=lock, queueing_lock=queueing_lock, priority=priority).defer_async(agency=name)
    except pexc.AlreadyEnqueued:
        pass


def _poll_soon(url: str, agency: str, now: datetime) -> None:
    with HostStore(url) as reg:
        reg.poll_soon(agency, now)


def _due(url: str, now: datetime) -> tuple[list[tuple[str, bool]], list[str], list[str]]:
    with HostStore(url) as reg:
        return reg.due(now), reg.daily_due(now), reg.idle_wanted()


def run_cycle(url: str, agency: str, clock: Clock, worker: str, lease: timedelta = timedelta(minutes=2)) -> str:
    """One agency's cycle, under its lock; the registry told how it went and when it is next due."""
    lock = AgencyLock(url, agency)
    if not lock.acquire():
        return "running elsewhere"
    try:
        with HostStore(url) as reg:
            row = reg.agency(agency)
            if row is None or row["removed_at"] is not None:
                return "not served"
            now = clock()
            reg.started(agency, now, worker, now + lease)
            error: str | None = None
            error_th: str | None = None
            health: dict | None = None
            handled = 0
            cfg = None
            try:
                cfg = agency_config(agency, row["config"])
                with Office.open(cfg, clock=clock) as office:
                    try:
                        if not office.setup.waiting():
                            handled = len(office.poll().handled)
                    finally:
                        health = measure(office, clock())
            except MailbotError as exc:
                error, error_th = exc.english, exc.thai
            except Exception as exc:  # noqa: BLE001 - the agency's failure, never the worker's
                known = explain_environment(exc, cfg.data_dir if cfg else None)
                error = known.english if known else f"{type(exc).__name__}: {str(exc)[:200]}"
                error_th = known.thai if known else "ข้อผิดพลาดที่ไม่คาดคิดในรอบทำงาน (รายละเอียดภาษาอังกฤษด้านล่าง)"
                if known is None:
                    log.exception("cycle of %s failed", agency)
            end = clock()
            if error and row["last_error"] and cfg is not None:
                # the second failure in a row: the agency's officers are told (at most hourly), as
                # `mailbot run` tells them
                from ..app import alert_anyhow

                alert_anyhow(cfg, "cycle-failed", f"mailbot หยุดรับอีเมล (หลายรอบติดกัน): {error}", error, end,
                             title="mailbot หยุดรับอีเมล")
            if cfg is not None:
                reg.set_idle(agency, cfg.schedule.idle)
                next_poll = schedule.next_poll(end, cfg.schedule)
                next_daily = schedule.next_daily(end, cfg.schedule.daily_report, cfg.schedule)
            else:
                next_poll, next_daily = end + timedelta(minutes=10), None
            reg.finished(agency, end, error=error, error_th=error_th, handled=handled, next_poll=next_poll,
                         next_daily=next_daily)
            if health is not None:
                reg.measured(agency, **health)
            return error or f"{handled} handled"
    finally:
        lock.release()


def run_daily(url: str, agency: str, clock: Clock) -> str:
    """The agency's daily log (made and mailed to its supervisors) and, where it has a backup
    folder, its backup (its records exported as a SQLite file, with its folders); then its next time."""
    with HostStore(url) as reg:
        row = reg.agency(agency)
        if row is None or row["removed_at"] is not None:
            return "not served"
        now = clock()
        next_daily = now + timedelta(days=1)        # a broken settings file: tried again tomorrow, not every tick
        try:
            cfg = agency_config(agency, row["config"])
            next_daily = schedule.next_daily(now, cfg.schedule.daily_report, cfg.schedule)
            with Office.open(cfg, clock=clock) as office:
                if not office.setup.waiting():
                    office.daily_log(now.astimezone(BANGKOK).date(), email=True)
                if cfg.backup.dir is not None:
                    try:
                        office.backup()
                    except MailbotError as exc:
                        office.alerts.alert("backup", exc.thai, exc.english, now, title="สำรองข้อมูลไม่สำเร็จ")
                        office.send_alerts()
        finally:
            reg.daily_done(agency, next_daily)
        return "done"


def run_idle(url: str, agency: str, clock: Clock, aborted: Callable[[], bool]) -> str:
    """Watch one agency's mailbox with IMAP IDLE; each arrival makes its cycle due at once. Ends
    when the worker stops, the agency is removed or no longer wants IDLE, or the server has none."""
    from ..mail.mailbox import NoIdle
    from ..mail.wire import REAL

    stop = threading.Event()

    def watch() -> None:
        checks = 0
        while not stop.wait(1):
            checks += 1
            if aborted():
                stop.set()
            elif checks % 10 == 0:
                with HostStore(url) as reg:
                    if not reg.still_idle(agency):
                        stop.set()

    threading.Thread(target=watch, name=f"idle-watch-{agency}", daemon=True).start()
    pause = 1.0
    try:
        while not stop.is_set():
            with HostStore(url) as reg:
                row = reg.agency(agency)
            if row is None:
                return "not served"
            cfg = agency_config(agency, row["config"])
            try:
                with REAL.mailbox(cfg.imap) as mb:
                    mb.watch()                            # watched from here on; what came before:
                    _poll_soon(url, agency, clock())      # a cycle that starts after this
                    while not stop.is_set():
                        if mb.wait_for_new_mail(stop):
                            _poll_soon(url, agency, clock())
                        pause = 1.0
            except NoIdle:
                return "the server has no IDLE"
            except Exception as exc:  # noqa: BLE001 - reconnect soon (1, 2, 4 ... 60 s); polling goes on anyway
                log.warning("IDLE of %s lost (%s); reconnecting in %.0f s", agency, type(exc).__name__, pause)
                stop.wait(pause)
                pause = min(pause * 2, 60.0)
        return "stopped"
    finally:
        stop.set()


HOUSEKEEPING = 2    # tick and rescue: quick jobs, never queued behind the cycles (see run_worker)


def run_worker(url: str, options: Options, wait: bool = True) -> None:
    """A worker: takes jobs until stopped (SIGTERM/SIGINT: the running cycles finish first, IDLE
    watches end within seconds). ``options.idle``: a worker of IDLE watches (each one a thread
    that mostly waits: give it a concurrency of about the number of agencies it may watch).

    Two procrastinate workers share the process: one for the agencies' cycles (or IDLE watches),
    ``options.concurrency`` at once, and one for the host's own quick jobs (tick, rescue). With
    a single pool of slots, a busy host's long cycles held every slot, so the tick and the
    rescue of a dead worker's cycles waited behind them: an agency cut off by a dead worker was
    served again only when some cycle happened to end (measured: 20 s and more under load)."""
    with HostStore(url) as reg:
        reg.upgrade()                  # a registry prepared by an earlier release: this one's columns
    app = make_app(url, options)
    name = f"mailbot-{socket.gethostname()}-{os.getpid()}"
    common = dict(wait=wait, shutdown_graceful_timeout=30, update_heartbeat_interval=options.heartbeat,
                  stalled_worker_timeout=options.stalled, delete_jobs="successful", install_signal_handlers=False)

    async def serve() -> None:
        # procrastinate runs a sync job (a cycle, an IDLE watch) in the loop's default thread pool,
        # and tick and rescue wait on it too (asyncio.to_thread): room for every slot and for them
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(options.concurrency + HOUSEKEEPING + 2, "mailbot-job"))
        async with app.open_async():
            workers = [
                asyncio.create_task(app.run_worker_async(
                    queues=["idle"] if options.idle else ["agencies"], concurrency=options.concurrency,
                    name=name, **common)),  # type: ignore[arg-type]
                asyncio.create_task(app.run_worker_async(
                    queues=["host"], concurrency=HOUSEKEEPING, name=f"{name}-host", **common)),  # type: ignore[arg-type]
            ]
            stop = _Stop(workers)
            _stop_on_signals(stop)
            try:
                await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED if wait else asyncio.ALL_COMPLETED)
                # one worker ended by itself (procrastinate stops a worker whose heartbeat or
                # listener failed): the other is stopped too, and the process ends with an error,
                # so that its supervisor starts it again with both
                alone = not stop.asked and any(not t.done() for t in workers)
                if alone:
                    stop()
                await asyncio.wait(workers)
            except asyncio.CancelledError:
                # the process itself interrupted (Ctrl-C where no handler is installed, as on
                # Windows): the workers stop while the database pool is still open; a second
                # interrupt cuts the running jobs off
                stop(again=stop.asked)
                await asyncio.gather(*workers, return_exceptions=True)
                raise
            for task in workers:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if alone:
                raise WorkerEnded()

    asyncio.run(serve())


class WorkerEnded(MailbotError):
    def __init__(self) -> None:
        super().__init__("ตัวรับงานของโฮสต์หยุดทำงานเอง (การติดต่อฐานข้อมูลขัดข้อง) โปรแกรมจึงปิดตัว ให้ระบบเริ่มใหม่",
                         "a host worker stopped by itself (its heartbeat or its database listener failed): "
                         "the process ends so that its supervisor starts it again")


class _Stop:
    """Asks each worker once to stop: a cancelled procrastinate worker takes no more jobs and
    lets its running ones finish (within its grace); asked again, they are cut off."""

    def __init__(self, workers: list[asyncio.Task]) -> None:
        self.workers, self.asked = workers, False

    def __call__(self, again: bool = False) -> None:
        if not self.asked or again:
            self.asked = True
            for task in self.workers:
                task.cancel()


def _stop_on_signals(stop: _Stop) -> None:
    """SIGTERM / SIGINT: both workers asked to stop; a second one acts as if mailbot had no
    handler (SIGTERM ends the process, Ctrl-C cuts the jobs off). As procrastinate itself: not
    on Windows, where Ctrl-C interrupts the loop and serve() stops the workers."""
    import signal

    if os.name == "nt" or threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def asked() -> None:
        log.info("stop requested: the running cycles finish first (a second signal stops at once)")
        for sig in (signal.SIGTERM, signal.SIGINT):     # the defaults again, as procrastinate does
            loop.remove_signal_handler(sig)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, asked)
