"""Bounded: third-party steps that may loop (PDF parsing, signing, stamping) run in a helper
process under a wall-clock limit (intake's reading ahead uses the same helper to parse mail on a
second core).

Owns: one helper process started with the "spawn" method (the same on Windows, macOS and
Linux; nothing is inherited but what is sent), the jobs sent to it over a pipe, and killing it
when a job outlives its limit or when it dies; the next job starts a fresh helper. A job is a
module-level function and picklable arguments; its result or its exception comes back.
The helper's own set-up (e.g. loading the signing key once) runs before the first job and is
not counted in a job's limit.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
from typing import Any, Callable

from ..errors import EnvironmentFailure

_STATE: Any = None          # in the helper: what the set-up function returned


class TimedOut(Exception):
    """The job ran past its limit; the helper was killed."""


class HelperDied(Exception):
    """The helper process ended without an answer (crash, out of memory, killed)."""


class HelperUnavailable(EnvironmentFailure):
    """The helper process could not be started at all: a fault of the machine, not of a file."""

    def __init__(self, why: str) -> None:
        super().__init__("เริ่มโปรแกรมช่วยประมวลผลไฟล์ PDF ไม่ได้ (ตรวจสอบหน่วยความจำและสิทธิ์ของเครื่อง)",
                         f"cannot start the PDF helper process ({why})")


def state() -> Any:
    """In a job: the object the helper's set-up function returned."""
    return _STATE


def _helper(conn, setup: Callable[..., Any] | None, setup_args: tuple) -> None:
    global _STATE
    # Ctrl-C in a console reaches every process in it: the parent decides what stops, and
    # ends this one (an interrupt caught here would come back to the parent as a job's answer)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _STATE = setup(*setup_args) if setup is not None else None
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        try:
            conn.send(("error", _portable(exc)))
        except (OSError, EOFError):
            pass
        return
    try:
        conn.send(("ready", None))
    except (OSError, EOFError):   # the parent is gone
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if job is None:
            return
        fn, args, kwargs = job
        try:
            answer = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            answer = ("error", _portable(exc))
        try:
            conn.send(answer)
        except (OSError, EOFError):   # the parent is gone (killed, crashed): nobody waits for it
            return
        except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
            try:
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
            except (OSError, EOFError):
                return


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError naming it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class Helper:
    """A helper process for bounded jobs; use as a context manager, or call close()."""

    def __init__(self, setup: Callable[..., Any] | None = None, setup_args: tuple = (),
                 start_timeout: float = 120.0) -> None:
        self.setup = setup
        self.setup_args = setup_args
        self.start_timeout = start_timeout
        self._proc: Any = None
        self._conn: Any = None
        self._ready = False
        self.started = 0           # helpers started so far (a killed one is replaced)

    def __enter__(self) -> "Helper":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._launch()
        self._await_ready()

    def launch(self) -> None:
        """Start the helper process now and return at once; the first job (from any thread)
        waits until it is ready. ``start`` hands the helper its start-up data from the calling
        thread: a process stopped dead in the middle of that leaves the helper printing a
        traceback, so a program whose other threads may stop it at a fault point starts the
        helper this way, from the thread that would stop it."""
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._launch()

    def _launch(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_helper, args=(child, self.setup, self.setup_args), daemon=True,
                           name="mailbot-helper")
        try:
            proc.start()
        except Exception as exc:  # noqa: BLE001 - out of processes, memory, a bad __main__
            parent.close()
            child.close()
            raise HelperUnavailable(f"{type(exc).__name__}: {exc}") from None
        child.close()
        self._proc, self._conn = proc, parent
        self._ready = False
        self.started += 1

    def _await_ready(self) -> None:
        proc, parent = self._proc, self._conn
        if not parent.poll(self.start_timeout):
            self._kill()
            raise HelperUnavailable(f"not ready within {self.start_timeout:g} s")
        try:
            kind, value = parent.recv()
        except (EOFError, OSError):
            code = proc.exitcode
            self._kill()
            raise HelperUnavailable(f"it ended while starting, exit code {code}") from None
        if kind != "ready":
            self._kill()
            raise value
        self._ready = True

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float, start: bool = True, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in the helper; TimedOut after ``timeout`` seconds (helper killed).
        A helper that is not running is started, unless ``start`` is False (HelperDied then)."""
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            if not start:
                raise HelperDied("the helper is not running")
            self._start()
        elif not self._ready:        # launched, not yet heard from
            self._await_ready()
        try:
            self._conn.send((fn, args, kwargs))
        except (OSError, EOFError):
            self._kill()
            raise HelperDied("helper is gone") from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise TimedOut(f"no answer within {timeout:g} s")
            try:
                if self._conn.poll(min(left, 0.5)):
                    kind, value = self._conn.recv()
                    break
            except (EOFError, OSError):
                self._kill()
                raise HelperDied("helper ended without an answer") from None
            if not self._proc.is_alive() and not self._conn.poll(0):
                self._kill()
                raise HelperDied(f"helper ended (exit code {self._proc.exitcode})")
        if kind == "ok":
            return value
        raise value

    def kill(self) -> None:
        """End the helper process now, from any thread: a job waiting for it ends in HelperDied
        (the waiting thread closes the pipe itself)."""
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    def _kill(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._ready = False
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(10)

    def close(self) -> None:
        """Ask the helper to stop, and kill it if it does not."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (OSError, EOFError):
                pass
            if self._proc is not None:
                self._proc.join(5)
        self._kill()


__all__ = ["Helper", "HelperDied", "HelperUnavailable", "TimedOut", "state"]
