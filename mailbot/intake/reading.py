"""Reading ahead: while one batch is committed, sent and moved, the next is parsed elsewhere.

Owns: the helper process that turns the next batch's raw bytes into ``Letter``s with
``mail.parse.parse`` (the same pure function the cycle calls), the thread in this process
that waits for it, and the thread that archives that batch meanwhile. It is used only in a
cycle with several batches of new mail, where parsing (a third of a busy poll) can run on a
second core while this process commits, sends and moves the batch before.

It only saves time; it decides nothing:
- whatever it cannot answer, the cycle parses itself, in the same place and with the same
  outcome as without it: the helper could not start, died or ran past its limit; a parse raised
  anything but ``Unparseable``; or ``parse`` was replaced in the cycle;
- fetching ahead is a read (BODY.PEEK), and a batch read ahead has no attempt opened and no
  effect anywhere until the cycle works on it. Its messages are archived meanwhile, in a thread
  (hashing, writing and fsync let the interpreter go on): the archive is content-addressed, so
  this is the file the batch's turn would write, and a run stopped before that turn leaves only
  files the next run writes again, unchanged.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from ..documents.limits import Helper
from ..mail.parse import Letter, Unparseable, parse

if TYPE_CHECKING:
    from ..mail.mailbox import Fetched

log = logging.getLogger(__name__)

FROM_BATCHES = 3             # a cycle with fewer batches of new mail reads them in turn
LIMIT_SECONDS = 30.0         # a job's parsing in the helper, plus a second a megabyte
START_SECONDS = 30.0         # the helper's start (a new interpreter importing mail.parse)
MEGABYTE = 1024 * 1024
JOB_BYTES = 4 * MEGABYTE     # mail sent to the helper at once (a larger message goes alone)
BEHIND = 5                   # the helper's nice value above the cycle's (see _behind)

Answer = tuple[str, "Letter | str | None"]    # ("ok", Letter) | ("unparseable", why) | ("again", None)


def read_many(raws: list[bytes]) -> list[Answer]:
    """In the helper: each message parsed, or why not. "again": the cycle parses it itself,
    so that an error of ours is logged and counted there, as always."""
    out: list[Answer] = []
    for raw in raws:
        try:
            out.append(("ok", parse(raw)))
        except Unparseable as exc:
            out.append(("unparseable", str(exc)))
        except Exception:  # noqa: BLE001 - reproduced, logged and counted in the cycle
            out.append(("again", None))
    return out


def _ready() -> bool:
    return True


Kept = dict[int, tuple[datetime, str, str]]    # uid -> (received, archive path, sha256)


@dataclass
class Early:
    """A batch read ahead: its bytes, and calls that wait for what was done with them meanwhile."""

    fetched: dict[int, Fetched]
    answers: Callable[[], dict[int, Answer]]      # what the helper made of each message
    kept: Callable[[], Kept]                      # each message already in the archive


def _waited(future: Future) -> Callable[[], dict]:
    def result() -> dict:
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - the jobs answer {} rather than raise; cancelled: read in turn
            return {}
    return result


def _behind(steps: int = BEHIND) -> None:
    """In the helper, before its first job: it runs at a lower priority than the cycle's process
    (POSIX ``nice``). Its parsing has a batch of slack, and on a small machine (two cores, the
    mail server and the SMTP server on them too) the cycle's thread, which every batch waits for,
    was kept from a core 0.9 s of a 1,000-message poll by work that could wait. The price, on a
    machine kept busy by other programs: the helper gets less of a core (about a third against
    each busy one), and a batch it has not parsed yet is waited for, at worst until its job's
    limit, then parsed in the cycle. Windows: as it is (no ``os.nice``; a lower priority class
    there can starve a process outright)."""
    if hasattr(os, "nice"):
        try:
            os.nice(steps)
        except OSError:     # not allowed: it only saves time
            pass


class Ahead:
    """The helper for one cycle; ``close()`` it when the cycle ends (also on an error).

    One helper a cycle, never started again: once it fails (it did not start, died, ran past
    its limit) reading ahead is off until the cycle ends, and the cycle parses in turn."""

    def __init__(self) -> None:
        self._helper = Helper(_behind, start_timeout=START_SECONDS)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailbot-read-ahead")
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailbot-keep-ahead")
        self._read: dict[tuple[int, ...], Early] = {}
        self._busy: list[Future] = []
        self._off = False
        try:     # launched here (see Helper.launch), made ready in the thread while batch 1 is worked on
            self._helper.launch()
            self._busy.append(self._pool.submit(self._start))
        except Exception as exc:  # noqa: BLE001 - no process, no thread: the cycle parses in its own process
            self._turn_off("the helper did not start", exc)

    def _turn_off(self, why: str, exc: BaseException) -> None:
        if not self._off:
            log.info("reading ahead is off for this cycle: %s (%s: %s)", why, type(exc).__name__, exc)
        self._off = True

    @property
    def on(self) -> bool:
        """Still reading ahead (off once the helper failed, until the cycle ends)."""
        return not self._off

    def _start(self) -> None:
        try:
            self._helper.run(_ready, timeout=START_SECONDS, start=False)
        except BaseException as exc:  # noqa: BLE001 - the cycle parses in its own process
            self._turn_off("the helper did not start", exc)

    def read(self, uids: list[int], fetched: dict[int, Fetched], largest: int,
             keep: Callable[[Fetched], tuple[datetime, str, str] | None]) -> None:
        """Parse ``fetched`` in the helper and ``keep`` each message (the archive: content-addressed,
        so its turn would write the very same file; a message ``keep`` answers None for is archived
        in its turn instead) while the cycle goes on. Messages over
        ``largest`` bytes are left to the cycle (it reads only their header)."""
        if self._off:
            return
        self._busy = [f for f in self._busy if not f.done()]    # a done job's answers go with its batch
        order = [u for u in uids if u in fetched and len(fetched[u].raw) <= largest]
        try:
            parsed = self._pool.submit(self._parse, order, [fetched[u].raw for u in order])
            kept = self._disk.submit(self._keep, [fetched[u] for u in uids if u in fetched], keep)
        except Exception as exc:  # noqa: BLE001 - no thread to be had: read in turn
            self._turn_off("no thread", exc)
            return
        self._busy += [parsed, kept]
        self._read[tuple(uids)] = Early(fetched, _waited(parsed), _waited(kept))

    def _parse(self, order: list[int], raws: list[bytes]) -> dict[int, Answer]:
        """The helper's answers, a few megabytes of mail at a time (each job is copied whole into
        the pipe and out of it); what it did not answer is left to the cycle."""
        answers: dict[int, Answer] = {}
        at = 0
        while at < len(raws) and not self._off:
            upto, size = at + 1, len(raws[at])
            while upto < len(raws) and size + len(raws[upto]) <= JOB_BYTES:
                size += len(raws[upto])
                upto += 1
            try:
                got = self._helper.run(read_many, raws[at:upto], timeout=LIMIT_SECONDS + size / MEGABYTE,
                                       start=False)
            except BaseException as exc:  # noqa: BLE001 - died, timed out, interrupted: the cycle parses
                self._turn_off("no answer from the helper", exc)
                break
            answers.update(zip(order[at:upto], got))
            at = upto
        return answers

    @staticmethod
    def _keep(items: list[Fetched], keep: Callable[[Fetched], tuple[datetime, str, str] | None]) -> Kept:
        done: Kept = {}
        for item in items:
            try:
                kept = keep(item)
            except Exception as exc:  # noqa: BLE001 - disk full, no permission: the cycle meets it in turn
                log.info("reading ahead: archiving failed (%s); the batch is archived in turn", type(exc).__name__)
                break
            if kept is not None:
                done[item.uid] = kept
        return done

    def take(self, uids: list[int]) -> Early | None:
        """The batch read ahead for exactly these UIDs, or None when this batch was not."""
        return self._read.pop(tuple(uids), None)

    def close(self) -> None:
        """Stop the helper at once (it is never started again) and the waiting threads."""
        self._off = True
        self._read.clear()
        self._helper.kill()           # a thread waiting for it sees it die and returns
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._disk.shutdown(wait=True, cancel_futures=True)
        self._helper.close()


def letter_from(answer: Answer | None) -> Letter | None:
    """The helper's Letter; raises ``Unparseable`` as ``parse`` would have; None: parse it here."""
    if answer is None:
        return None
    kind, value = answer
    if kind == "ok" and isinstance(value, Letter):
        return value
    if kind == "unparseable":
        raise Unparseable(str(value))
    return None
