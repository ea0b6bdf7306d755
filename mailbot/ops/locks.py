"""Locks: who may work on a data folder, and when.

Owns: two OS file locks under the data folder (released by the OS if the process dies) —

* ``mailbot.lock``, the instance lock: one ``mailbot run`` or ``mailbot poll`` per data folder;
* ``work.lock``, the work lock: one cycle or one officer action at a time. An officer's command
  run while the service works waits for the running cycle (saying so, in Thai) and then goes
  ahead before the next cycle starts: a waiting officer leaves ``work.wanted`` and the service
  lets them in first.

Inside one process (the service with its console) a thread lock keeps threads in turn.

A third, ``sending.lock``, belongs to the outbox (mail/outbox.py): a delivery round holds it
until its fates are recorded, so that no other delivery sends or reads the sending journal
meanwhile.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

from filelock import FileLock, Timeout

from ..errors import AlreadyRunning, MailbotError

WAITING = ("รอให้รอบการทำงานที่กำลังทำอยู่เสร็จก่อน แล้วจะทำต่อทันที…",
           "waiting for the running cycle to finish, then going ahead…")


class Work(Protocol):
    """``app.Office.work``: the work lock for one action, as the per-role services are given it."""

    def __call__(self, officer: bool = True) -> AbstractContextManager[None]: ...


_thread_locks: dict[Path, threading.RLock] = {}
_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    with _guard:
        return _thread_locks.setdefault(path, threading.RLock())


def instance_lock(data_dir: Path) -> FileLock:
    """The one-service-per-data-folder lock, taken at once or refused (exit code 4)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / "mailbot.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunning(
            "mailbot อีกตัวกำลังทำงานกับข้อมูลชุดนี้อยู่ ไม่เริ่มซ้ำ",
            f"another mailbot is already working on {data_dir}; not starting a second one",
        ) from None
    return lock


class WorkLock:
    def __init__(self, data_dir: Path, tenant: tuple[str, str] | None = None) -> None:
        """``tenant``: (database URL, tenant) of a host's agency: the lock is also held in
        PostgreSQL, so that a worker and a console on different machines exclude each other."""
        self.tenant = tenant
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = (data_dir / "work.lock").resolve()
        self.wanted = data_dir / "work.wanted"
        self.file = FileLock(str(self.path))
        self.thread = _thread_lock(self.path)

    @contextmanager
    def hold(self, on_wait: Callable[[str, str], None] | None = None, timeout: float = 3600,
             officer: bool = True) -> Iterator[None]:
        """Hold the work lock for a block. ``officer``: a person waits here (the service lets them
        in before its next cycle); the service itself passes False and yields to waiting officers."""
        if not officer:
            self._let_officers_in()
        told = wanted = False
        deadline = time.monotonic() + timeout
        got = self.thread.acquire(blocking=False)
        if not got:
            if on_wait:
                on_wait(*WAITING)
                told = True
            if officer:
                wanted = self._want()
            try:
                got = self.thread.acquire(timeout=max(0.0, deadline - time.monotonic()))
            finally:
                if not got and wanted:       # gave up (timeout, Ctrl-C): the service must not wait for us
                    self.wanted.unlink(missing_ok=True)
            if not got:
                raise self._busy()
        try:
            try:
                self.file.acquire(timeout=0)
            except Timeout:
                if on_wait and not told:
                    on_wait(*WAITING)
                if officer:
                    wanted = self._want()
                try:
                    self.file.acquire(timeout=max(0.0, deadline - time.monotonic()), poll_interval=0.05)
                except BaseException:     # gave up (timeout, Ctrl-C): the service must not wait for us
                    if wanted:
                        self.wanted.unlink(missing_ok=True)
                    raise self._busy() from None
            if officer:
                self.wanted.unlink(missing_ok=True)
            try:
                shared = None
                if self.tenant is not None:
                    from ..store.host import TenantWorkLock

                    shared = TenantWorkLock(*self.tenant)
                    if not shared.acquire(max(1.0, deadline - time.monotonic())):
                        raise self._busy()
                try:
                    yield
                finally:
                    if shared is not None:
                        shared.release()
            finally:
                self.file.release()
        finally:
            self.thread.release()

    def _want(self) -> bool:
        try:
            self.wanted.touch()
            return True
        except OSError:
            return False

    def _let_officers_in(self, patience: float = 120.0) -> None:
        """Before a cycle: give an officer who is waiting (a fresh work.wanted) the first turn."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            try:
                age = time.time() - os.stat(self.wanted).st_mtime
            except OSError:
                return
            if age > 600:      # left behind by a command that was killed
                self.wanted.unlink(missing_ok=True)
                return
            time.sleep(0.1)

    @staticmethod
    def _busy() -> MailbotError:
        return MailbotError("รอนานเกินไป ระบบยังทำงานรอบเดิมอยู่ ลองสั่งใหม่อีกครั้งภายหลัง",
                            "gave up waiting: the running cycle has not finished; try again later")
