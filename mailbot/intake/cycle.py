"""Pipeline: one polling cycle, the only place that knows the order of the steps.

Before anything is fetched: the receipt counters stand above every number ever issued (a lost
or restored database is caught up from the archive's index, the registers and the Sent folder:
recovery.py), queued mail is sent and decided messages are moved. Then, per message, in this
order (isync spirit: record intent before an effect; every effect after the commit is
idempotent on retry):

  1. fetch      BODY.PEEK in batches; the attempt is opened first (poison detection: a run cut
                off while working on one message alone counts against it, max_interruptions;
                a failure the run saw counts too, max_attempts; messages a run was cut off on
                in a batch are tried again in halves, then alone: suspect_batches); mail older
                than imap.since is left alone
  2. archive    raw bytes to data/archive (content-addressed, atomic)
  3. decide     parse + classify; trust, duplicates, follow-ups and numbers looked up in the state
  4. commit     outcome, case with its receipt number, reply queued with a fixed Message-ID:
                one transaction per batch; the numbers then go into the archive's receipt index
  5. send       the queued mail over one SMTP connection (outbox.py), each marked at once: on
                one office's own database by a thread of its own (marks in the outbox's
                journal, fates recorded when the round is finished, before the next batch's
                round or the cycle's end), while this thread goes on with step 6 and the next
                batch; on a host's database in this thread (marks in the database)
  6. move       out of the watched folder into the outcome folder, by UID set, on the IMAP
                connection while step 5 waits on SMTP (and the copies of mail sent before go
                to Sent); marked once done

With three or more batches of new mail, the next batch is read ahead (reading.py) once this
batch is parsed, while it is decided and committed (after the commit when the batch is one message
alone, whose attempt counts a kill against it): fetched (in a thread, on an IMAP connection), then
parsed in a helper process and archived in a thread while this batch is decided, sent and moved.
Its attempts still open in its own turn, before its results are used.

A crash anywhere, followed by a rerun, loses no message and gives none a second number; a
second reply is possible only between SMTP accepting it and step 5's mark (in the journal or
the database). A failure belongs
to what caused it: a message that cannot be processed is quarantined after max_attempts (or,
when the process stops every time it works on it alone, after max_interruptions), a
mail that cannot be sent fails on its own; a failure of the machine (disk full, no permission,
database locked) stops the cycle cleanly without counting against any message.
"""
from __future__ import annotations

import email.utils
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from .. import faults, kinds
from ..casework import triage
from ..config import Config
from ..errors import ConnectionFailure, EnvironmentFailure, MailbotError, explain_environment
from ..mail.mailbox import Fetched
from ..mail.outbox import Delivery, Sending, day_start
from ..mail.parse import Letter, Unparseable, parse
from ..mail.wire import MailboxSession, SmtpSession
from ..ops import recovery
from ..ops.archive import Archive
from ..ops.recovery import Recovery
from ..store import from_iso, iso
from ..thai import BANGKOK, to_bangkok
from . import reading, verdict
from .record import Arrival, Handled, Recorder

if TYPE_CHECKING:
    from ..casework.cases import Desk
    from ..casework.replies import Templates
    from ..casework.results import ResultsReport
    from ..config import Rules
    from ..mail.outbox import Outbox
    from ..ops.alerts import Alerts
    from ..store import State
    from ..store.ledger import Ledger


class Parts(Protocol):
    """What a cycle works with: the office's parts (app.Office has them all)."""

    cfg: Config
    rules: "Rules"
    templates: "Templates"
    state: "State"
    desk: "Desk"
    outbox: "Outbox"
    alerts: "Alerts"
    clock: Clock

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]     # (messages done, messages to do)

REMARK_NO_ADDRESS = "ไม่มีที่อยู่สำหรับตอบกลับ"




@dataclass
class CycleReport:
    handled: list[Handled] = field(default_factory=list)
    delivery: Delivery = field(default_factory=Delivery)   # what the outbox sent in this cycle
    backlog: int = 0              # replies still queued (global cap or SMTP trouble)
    batches: int = 0              # fetch batches used
    workflow: list[tuple[str, str]] = field(default_factory=list)  # (receipt, reminder/closing)
    results: "ResultsReport | None" = None
    registers: list[Path] = field(default_factory=list)
    register_failures: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    left_before_since: int = 0    # messages older than imap.since, left where they are
    recovery: Recovery | None = None   # when numbers issued earlier had to be found

    @property
    def smtp_error(self) -> MailbotError | None:
        return self.delivery.smtp_error

    @property
    def replies_sent(self) -> int:
        """Mail sent to citizens in this cycle (internal forwards, alerts and daily logs not counted)."""
        return self.delivery.replies_sent

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for h in self.handled:
            out[h.outcome] += 1
        return dict(out)


@dataclass
class _Plan:
    """What step 3 found out about one fetched message, before the commit."""

    fetched: Fetched
    row_id: int
    received: datetime
    archive: str | None = None
    sha256: str | None = None
    letter: Letter | None = None
    error: str | None = None      # parse/processing failure, for the failure counter
    failures: int = 0             # earlier runs that saw it fail
    interruptions: int = 0        # earlier runs cut off while working on it alone
    give_up: str = ""             # quarantined without trying again: why
    too_large: bool = False


class Cycle:
    """One cycle over one IMAP and one SMTP session, with the office's state and rules."""

    def __init__(self, office: Parts, mailbox: MailboxSession, smtp: SmtpSession, stop: threading.Event | None = None,
                 progress: Progress | None = None) -> None:
        self.office = office
        self.cfg = office.cfg
        self.rules = office.rules
        self.templates = office.templates
        self.state = office.state
        self.desk = office.desk
        self.outbox = office.outbox
        self.clock = office.clock
        self.mb = mailbox
        self.smtp = smtp
        self.stop = stop   # set by the daemon on Ctrl-C / SIGTERM: finish the batch, then stop
        self.progress = progress
        self.archive = Archive(self.cfg.data_dir)
        self.report = CycleReport()
        self.account = self.cfg.account
        self.folder = self.cfg.imap.folder
        self.uidvalidity = 0
        self.smtp_down = False
        self._sending: Sending | None = None   # the round sent beside the batch before (Outbox.start)
        self.staff = {a.lower() for a in self.cfg.staff}
        self._new_cases: list = []  # numbered in this batch, for the receipt index
        self._flag: list[int] = []   # our own alerts in this batch: flagged, left in the inbox
        self._marked: list = []  # urgent or secret cases: officers alerted
        self.settings = verdict.Settings.of(self.cfg, self.rules)
        self.recorder = Recorder(self.cfg, self.state, self.desk, self.outbox, self.archive)
        self._ahead: reading.Ahead | None = None     # the next batch read while this one is committed and sent
        self._following: list[int] | None = None     # the batch after this one, when it may be read ahead
        self._more = False        # another batch follows this one in this cycle

    # ------------------------------------------------------------------ the cycle

    def run(self) -> CycleReport:
        self.uidvalidity = self.mb.select(self.folder)
        self._recover()
        if self.state.get("private_files") is None:   # once: files an older release left readable to all
            self.archive.tighten()
            self.state.put("private_files", iso(self.clock()))
        old = self.state.check_uidvalidity(self.account, self.folder, self.uidvalidity, self.clock())
        if old is not None:
            text = (f"UIDVALIDITY ของโฟลเดอร์ {self.folder} เปลี่ยนจาก {old} เป็น {self.uidvalidity}: "
                    f"จับคู่ข้อความเดิมด้วย Message-ID/ค่าแฮช ไม่ประมวลผลซ้ำ / UIDVALIDITY of {self.folder} "
                    f"changed {old} -> {self.uidvalidity}; known messages are matched through the ledger")
            self.state.event(self.clock(), "warning", "uidvalidity", text)
            self.report.warnings.append(text)
        self._ensure_folders()
        uids = self.mb.uids()
        ledger = self.state.ledger(self.account, self.folder, self.uidvalidity, uids)

        # finish what an earlier run left: replies owed, messages decided but not moved
        self._send_queued()
        self._move_decided(set(uids))

        todo = [u for u in uids if u not in ledger or ledger[u].outcome is None]
        suspects = [u for u in todo if u in ledger]   # an earlier attempt did not finish
        fresh = [u for u in todo if u not in ledger]
        arrivals = self.mb.arrivals(fresh) if fresh else {}
        fresh = self._leave_old_mail(fresh, arrivals)
        self.report.left_before_since = self.state.before_since_count(self.account, self.folder, self.uidvalidity)
        # an earlier run was cut off while working on these: tried again in halves, then alone
        # (suspect_batches), within the batch limits
        held = suspect_batches(suspects, ledger)
        if any(len(b) > 1 for b in held):
            sizes = self.mb.arrivals([u for b in held if len(b) > 1 for u in b])
            held = [part for b in held for part in (self._batches(b, sizes) if len(b) > 1 else [b])]
        new = self._batches(fresh, arrivals)
        batches = held + new
        self.report.batches = len(batches)
        total, done = sum(len(b) for b in batches), 0
        # several batches of new mail: each next one is read while this one is committed and sent (reading.py)
        if len(new) >= reading.FROM_BATCHES and parse is reading.parse:
            try:
                self._ahead = reading.Ahead()
            except Exception as exc:  # noqa: BLE001 - it only saves time: read every batch in turn
                log.warning("reading ahead is off for this cycle: %s: %s", type(exc).__name__, exc)
        try:
            for i, batch in enumerate(batches):
                if self.stop is not None and self.stop.is_set():
                    self.report.warnings.append("หยุดตามคำสั่ง งานที่เหลือทำรอบถัดไป / stop requested: the rest waits")
                    break
                self._following = batches[i + 1] if len(held) <= i < len(batches) - 1 else None
                self._more = i < len(batches) - 1
                self._process_batch(batch)
                done += len(batch)
                if self.progress is not None:
                    self.progress(done, total)
            self._finish_sending()
        except Exception as exc:
            # the replies the batches before sent are copied to Sent now, not next cycle (the copies
            # are the recovery's witness, off this machine); not when the connection is what failed
            if not isinstance(exc, ConnectionFailure):
                try:
                    self._finish_sending()
                    self._copy_to_sent()
                except Exception as also:  # noqa: BLE001 - the batch's failure is the one raised
                    log.warning("copy to Sent after a failed batch: %s: %s", type(also).__name__, also)
            raise
        finally:
            if self._sending is not None:   # a batch failed: the round beside it still ends recorded
                try:
                    self._finish_sending()
                except BaseException as also:  # noqa: BLE001 - the batch's failure is the one raised
                    log.warning("finishing the sending after a failed batch: %s: %s (its journal keeps "
                                "the marks for the next delivery)", type(also).__name__, also)
                    if self._sending is not None and self._sending.thread is None:
                        self._sending.release()     # the alert about the failure may go out
                        self._sending = None
            self._following = None
            if self._ahead is not None:
                self._ahead.close()
                self._ahead = None
        for receipt, effect in self.desk.tick(self.clock()):   # reminders and closures due today
            self.report.workflow.append((receipt, effect or ""))
        results = self._results()
        self._send_queued()
        if results is not None and self.report.results is not None:
            results.settle(self.report.results)
        self.report.backlog = len(self.state.queued())
        return self.report

    def _recover(self) -> None:
        """Before any number is issued: the counters stand above every number ever issued (see
        recovery.py). Every start asks every witness, cheaply: the receipt index, the register
        workbooks the database did not write as they are, and the tags of mailbot's copies in
        the Sent folder since the newest case it knows (one SEARCH SINCE). Only when one of them
        knows a higher number (or the database is new, or restored) is everything gathered."""
        st = self.state
        pending = st.get("recovery_pending")
        issued = st.issued()
        last = st.last_received()
        day = (to_bangkok(from_iso(last)).date() if last else to_bangkok(self.clock()).date()) - timedelta(days=1)
        recent_sent, _ = recovery.sent_tops(self.mb.sent_headers_since(day), self.cfg.agency.domain)
        witnesses = (recovery.journal_top(self.cfg.data_dir), recovery.register_tops(self.cfg, st), recent_sent)
        behind = any(top > issued.get(year, 0) for tops in witnesses for year, top in tops.items())
        if not pending and not behind:
            return
        evidence = list(recovery.local_evidence(self.cfg).values())
        evidence += recovery.sent_tops(self.mb.sent_headers(), self.cfg.agency.domain)[1]
        result = recovery.recover(st, evidence, self.cfg, self.rules, self.clock())
        st.put("recovery_pending", None)
        if result:
            text = "\n".join(result.lines())
            st.event(self.clock(), "warning", "recovery", text)
            self.report.warnings.append(text)
            self.report.recovery = result

    def since(self) -> datetime | None:
        """The start of imap.since (midnight in Bangkok), if configured."""
        day = self.cfg.imap.since
        return datetime.combine(day, time(0), BANGKOK) if day else None

    def _leave_old_mail(self, uids: list[int], arrivals: dict[int, tuple[int, datetime | None]]) -> list[int]:
        """Mail that reached the mailbox before imap.since is left where it is, unanswered; the
        ledger remembers it so it is not looked at again."""
        start = self.since()
        if start is None:
            return uids
        old = [u for u in uids if (arrivals.get(u, (0, None))[1] or start) < start]
        if old:
            self.state.leave_alone(self.account, self.folder, self.uidvalidity, old, iso(self.clock()))
        left = set(old)
        return [u for u in uids if u not in left]

    def _batches(self, uids: list[int], arrivals: dict[int, tuple[int, datetime | None]]) -> list[list[int]]:
        """Groups of at most batch_size UIDs and batch_megabytes of raw mail (one big message alone)."""
        if not uids:
            return []
        sizes = {u: arrivals.get(u, (0, None))[0] for u in uids}
        budget = self.cfg.imap.batch_megabytes * 1024 * 1024
        out: list[list[int]] = []
        current: list[int] = []
        used = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if current and (len(current) >= self.cfg.imap.batch_size or used + size > budget):
                out.append(current)
                current, used = [], 0
            current.append(uid)
            used += size
        out.append(current)
        return out

    def _ensure_folders(self) -> None:
        for name in self.cfg.folders.model_dump().values():
            self.mb.ensure_folder(name)

    # ------------------------------------------------------------------ steps 1-4

    def _process_batch(self, uids: list[int]) -> None:
        early = self._ahead.take(uids) if self._ahead is not None else None
        fetched = early.fetched if early is not None else self.mb.fetch(uids)
        faults.point("after_fetch")
        # intent before work: the attempt counter goes up before parsing, so a message that
        # crashes the process every time is quarantined after max_attempts; a lost
        # connection before this point costs the messages nothing
        self.state.start_attempts(self.account, self.folder, self.uidvalidity, sorted(fetched), self.clock())
        ledger = self.state.ledger(self.account, self.folder, self.uidvalidity, sorted(fetched))
        try:
            self._work_batch(uids, fetched, ledger, early)
        except Exception as exc:
            self._new_cases = []     # the batch's transaction was rolled back: no number was issued
            self._marked = []
            failure = explain_environment(exc, self.cfg.data_dir)
            if failure is None:
                raise
            # the machine failed, not these messages: their attempts do not count (best effort:
            # with the disk still full this write may fail too, and the next cycle tries again)
            try:
                self.state.release_attempts([entry.id for entry in ledger.values()])
            except Exception:  # noqa: BLE001
                log.warning("could not release the attempt counters after: %s", failure.english)
            raise failure from None

    def _received(self, item: Fetched, first_seen: datetime) -> datetime:
        """When a message counts as received: its arrival on the server, never before imap.since
        (no register year before it); with no arrival time from the server (no INTERNALDATE),
        when mailbot first started work on it (the ledger's first_seen: the same on a retry in
        the next month, so one archive copy and one received date)."""
        received = item.internal_date or first_seen
        start = self.since()
        return start if start is not None and received < start else received

    def _keep(self, item: Fetched) -> tuple[datetime, str, str] | None:
        """Archive one message read ahead (in reading.py's thread): (received, path, sha256).
        One without an arrival time is left to its turn (None): its received time is the ledger's
        first_seen, written only when its attempt starts."""
        if item.internal_date is None:
            return None
        received = self._received(item, item.internal_date)      # (dated: first_seen plays no part)
        return (received, *self.archive.store(item.raw, received))

    def _work_batch(self, uids: list[int], fetched: dict, ledger: dict, early: reading.Early | None) -> None:
        plans: list[_Plan] = []
        now = self.clock()
        for uid in uids:
            item = fetched.get(uid)
            if item is None:   # expunged by someone else meanwhile: nothing to do
                continue
            entry = ledger[uid]
            plans.append(_Plan(item, entry.id, self._received(item, _first_seen(entry.first_seen, now)),
                               error=entry.last_error, failures=entry.failures, interruptions=entry.interruptions))
        kept = early.kept() if early is not None else {}     # archived while the batch before was worked on
        for plan in plans:   # disk full, no permission: the cycle stops (see _process_batch)
            done = kept.get(plan.fetched.uid)
            if done is not None and done[0] == plan.received:
                plan.archive, plan.sha256 = done[1], done[2]
            else:
                plan.archive, plan.sha256 = self.archive.store(plan.fetched.raw, plan.received)
        self.archive.sync()       # their manifest lines on disk before anything about them is decided
        faults.point("after_archive")
        read = early.answers() if early is not None else {}    # what the helper made of it ({}: parsed here)
        limits = self.cfg.limits
        for plan in plans:
            if plan.interruptions >= limits.max_interruptions:   # it stops the program every time
                plan.give_up = (f"processing stopped {plan.interruptions} times while working on this message alone "
                                "(the program was killed or crashed)")
            elif plan.failures >= limits.max_attempts:
                plan.give_up = plan.error or "processing failed repeatedly"
            if plan.give_up:
                continue  # quarantined without trying again
            try:
                if len(plan.fetched.raw) > self.cfg.limits.max_message_mb * 1024 * 1024:
                    plan.too_large = True     # kept whole in the archive; only its header is read
                    plan.letter = parse(plan.fetched.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
                else:
                    plan.letter = reading.letter_from(read.get(plan.fetched.uid)) or parse(plan.fetched.raw)
                plan.error = None
            except Unparseable as exc:
                plan.error = plan.give_up = f"unparseable: {exc}"     # no point retrying
            except Exception as exc:  # a bug of ours on odd input: retry, then quarantine
                plan.error = f"parse failed: {type(exc).__name__}: {exc}"
                log.exception("parse failed for UID %s", plan.fetched.uid)
        # the next batch is parsed and archived while this one is decided and sent; a message alone
        # is committed first (a kill before its commit counts against it: nothing else then)
        alone = len(plans) == 1
        # (on a mailbox with its own connection, the next batch is fetched in a thread while this
        # one is decided and committed: nothing else uses the IMAP connection until it is joined)
        fetching = self._read_ahead_beside() if not alone else None
        moves: dict[str, list[tuple[int, int]]] = defaultdict(list)
        handled_before = len(self.report.handled)
        try:
            with self.state.tx():
                for plan in plans:
                    target = self._commit_one(plan, now)
                    if target:
                        moves[target].append((plan.fetched.uid, plan.row_id))
                faults.point("after_decide")
        finally:
            if fetching is not None:
                fetching.join()
        faults.point("after_commit")
        if self._new_cases:
            try:
                self.archive.record_receipts(self._new_cases)
            except OSError as exc:   # the database has them; the index is the second copy
                log.warning("receipt index not written: %s", exc)
            self._new_cases = []
        self._alert_marked(now)
        for h in self.report.handled[handled_before:]:
            log.info("UID %s %s %s %s", h.uid, h.outcome, h.receipt or "-", h.reason)
        if alone:
            self._read_ahead()
        self._send_and_move(moves)
        if self._flag:
            self.mb.flag(self._flag)
            self._flag = []

    def _read_ahead_beside(self) -> threading.Thread | None:
        """``_read_ahead`` in a thread of its own (its IMAP fetch waits on the server while this
        thread decides), when the mailbox has its own connection; else now, in turn."""
        if not getattr(self.mb, "beside_sending", False) or self._ahead is None or not self._following:
            self._read_ahead()
            return None

        def read() -> None:
            try:
                self._read_ahead()
            except Exception as exc:  # noqa: BLE001 - it only saves time: the batch is read in its turn
                log.warning("reading ahead failed (%s: %s); the next batch is read in its turn",
                            type(exc).__name__, exc)

        fetching = threading.Thread(target=read, name="mailbot-fetch-ahead", daemon=True)
        fetching.start()
        return fetching

    def _read_ahead(self) -> None:
        """The next batch, fetched now (this one parsed) and parsed in the helper while this one is
        decided, committed, sent and moved.
        Only a read: its attempts are opened when its turn comes, as for any batch."""
        following, self._following = self._following, None
        if self._ahead is None or not self._ahead.on or not following or (self.stop is not None and self.stop.is_set()):
            return          # (off after a failure: each batch is read in turn; asked to stop: no more is read)
        try:
            fetched = self.mb.fetch(following)
        except Exception as exc:  # noqa: BLE001 - fetched again in its turn, where a failure counts
            log.warning("reading ahead: fetching the next batch failed (%s: %s); it is fetched in its turn",
                        type(exc).__name__, exc)
            return
        self._ahead.read(following, fetched, int(self.cfg.limits.max_message_mb * 1024 * 1024), self._keep)

    def _commit_one(self, plan: _Plan, now: datetime) -> str | None:
        """Decide and record one message inside the batch transaction; returns its folder."""
        st = self.state
        if st.message_outcome(plan.row_id) is not None:
            return None  # decided by a concurrent run
        if plan.give_up:
            return self._quarantine(plan, plan.give_up, now)
        if plan.letter is None:           # parsing failed, and this run saw it
            if plan.failures + 1 >= self.cfg.limits.max_attempts:
                return self._quarantine(plan, plan.error or "processing failed repeatedly", now)
            st.attempt_failed(plan.row_id, plan.error or "parse failed", archive=plan.archive, sha256=plan.sha256)
            return None  # stays in the inbox, tried again next cycle
        reported, numbered = len(self.report.handled), len(self._new_cases)
        try:
            with st.tx():
                return self._decide_and_record(plan, now)
        except Exception as exc:  # noqa: BLE001 - a bug must not block the messages behind
            del self.report.handled[reported:]   # its savepoint was rolled back: nothing happened
            del self._new_cases[numbered:]
            self._marked = [m for m in self._marked if m[0]["id"] in {c["id"] for c in self._new_cases}]
            if explain_environment(exc, self.cfg.data_dir) is not None:
                raise                            # the machine's fault, not the message's
            log.exception("processing failed for UID %s", plan.fetched.uid)
            error = f"processing failed: {type(exc).__name__}: {exc}"
            if plan.failures + 1 >= self.cfg.limits.max_attempts:
                return self._quarantine(plan, error, now)
            st.attempt_failed(plan.row_id, error)
            return None

    def _quarantine(self, plan: _Plan, reason: str, now: datetime) -> str | None:
        folder = self.recorder.quarantine(self._arrival(plan), reason, now)
        self.report.warnings.extend(self.recorder.take_warnings())
        if folder is not None:
            self.report.handled.append(Handled(plan.fetched.uid, "", "", kinds.Outcome.QUARANTINED, reason=reason))
        return folder

    def _decide_and_record(self, plan: _Plan, now: datetime) -> str | None:
        """prepare -> look up the facts -> verdict (pure) -> record."""
        assert plan.letter is not None
        faults.point("deciding", plan.letter.subject)
        prepared = verdict.prepare(plan.letter, plan.received, self.settings)
        v = verdict.verdict(prepared, self._facts(plan, prepared, now), self.settings)
        done = self.recorder.record(self._arrival(plan), prepared, v, now)
        self.report.handled.append(done.handled)
        self.report.warnings.extend(done.warnings + self.recorder.take_warnings())
        if done.opened is not None:
            self._new_cases.append(done.opened)
        if done.marked is not None:
            self._marked.append(done.marked)
        if done.flag:
            self._flag.append(plan.fetched.uid)
        return done.folder

    def _facts(self, plan: _Plan, p: verdict.Prepared, now: datetime) -> verdict.Facts:
        """What the chain needs from the store and the server (the only lookups for a verdict)."""
        st, outer, letter = self.state, p.outer, p.letter
        dup = st.find_duplicate(plan.row_id, outer.content_hash, outer.message_id, outer.from_addr)
        duplicate = None
        if dup is not None:
            case = st.case_by_id(dup["case_id"]) if dup["case_id"] else None
            duplicate = verdict.Duplicate(dup["id"], dup["outcome"], dup["target_folder"], dup["case_id"],
                                          case["receipt"] if case is not None else None)
        row, replies_to_us = self.desk.known_case(letter, p.ref)
        known = verdict.KnownCase(row["receipt"], (row["sender_addr"], row["reply_to"])) if row is not None else None
        today = 0
        if p.looks_automatic and known is None and letter.from_addr:
            today = st.cases_from_sender_since(letter.from_addr, day_start(now))
        return verdict.Facts(
            too_large=plan.too_large, size_mb=len(plan.fetched.raw) / 1024 / 1024,
            own_alert=self._own_alert(outer), duplicate=duplicate, known=known, replies_to_us=replies_to_us,
            cases_today=today)

    @staticmethod
    def _arrival(plan: _Plan) -> Arrival:
        return Arrival(plan.fetched.uid, plan.row_id, plan.fetched.raw, plan.received, plan.archive, plan.sha256)

    def _alert_marked(self, now: datetime) -> None:
        """Urgent requests: an immediate alert to the officers and the responsible unit. Secret
        ones: the officers are told (the subject never leaves in an alert)."""
        for case, tri in self._marked:
            service = self.desk.service(case["service_code"])
            units = tuple(email.utils.parseaddr(e)[1] for e in (service.forward_to if service else ())
                          if self.desk.allowed(email.utils.parseaddr(e)[1]))
            subject = triage.mask_subject(case["subject"] or "", tri)
            marks = " ".join(m for m in (tri.urgency_label, f"ชั้นความลับ: {tri.secrecy}" if tri.secret else "") if m)
            thai = (f"เรื่องเลขรับ {case['receipt']} {marks}: {subject} จาก {case['sender_addr'] or '-'} "
                    f"ดำเนินการก่อนเรื่องอื่น" + (" (เรื่องลับ ไม่ส่งต่ออัตโนมัติ เจ้าหน้าที่ต้องดำเนินการเอง)" if tri.secret else ""))
            english = (f"case {case['receipt']} is marked {'urgent' if tri.urgent else ''}"
                       f"{' and ' if tri.urgent and tri.secret else ''}{'secret' if tri.secret else ''}: handle it first")
            self.office.alerts.alert(f"marked-{case['receipt']}", thai, english, now,
                                     title=f"{marks} เลขรับ {case['receipt']}",
                                     also=units if tri.urgent and not tri.secret else (),
                                     receipt=case["receipt"],   # LINE: no subject, no address (in the console)
                                     short=f"เรื่องเลขรับ {case['receipt']} {marks}: ดำเนินการก่อนเรื่องอื่น")
        self._marked = []

    def _own_alert(self, letter: Letter) -> bool:
        """Our own alert (its Message-ID is one mailbot queued as an alert, from our address)."""
        if not letter.message_id or (letter.from_addr or "").lower() != self.cfg.agency.address.lower():
            return False
        return self.state.is_alert_message(letter.message_id)

    def _send_queued(self) -> None:
        self._finish_sending()
        if self.smtp_down:
            self._copy_to_sent()      # what was sent before the server went away still gets its copy
            return
        self.outbox.deliver(self.smtp, self.clock, self.report.delivery)
        if self.report.delivery.smtp_error is not None:
            self.smtp_down = True
        self._copy_to_sent()

    def _finish_sending(self) -> None:
        """The round sent beside the batch before: waited for, and each message's fate recorded."""
        sending = self._sending
        if sending is None:
            return
        try:
            sending.finish()      # interrupted or failed: finished again on the way out (run)
        except BaseException:
            if sending.thread is None and sending.marks is None:
                self._sending = None          # done but for what it raised: not again
            raise
        self._sending = None
        if self.report.delivery.smtp_error is not None:
            self.smtp_down = True

    def _send_and_move(self, moves: dict[str, list[tuple[int, int]]]) -> None:
        """Steps 5 and 6 of a batch, each waiting on its own server. On one office's own database,
        its mail goes out over SMTP in a thread of its own (``Outbox.start``: the marks in the
        journal) while this thread moves its messages on the IMAP connection, puts the copies of
        mail sent before into Sent and goes on to the next batch; the round is waited for before
        the next one starts. On a host's database the sending stays in this thread (its marks
        in the database at once) and a thread does the IMAP side meanwhile.
        What the database records of the IMAP side (moved, copied) is written here, after it: a
        message moved before its reply went out is no loss (the reply is queued: the next
        delivery sends it), and a crash before the marks repeats only a MOVE (harmless) or a copy.
        Mail sent in this round is copied to Sent in the next one, or by the cycle's last delivery
        (or, when a batch fails, on the way out: see ``run``). MAILBOT_FAULT=after_move stops the
        program after the moves and this delivery, before the marks."""
        self._finish_sending()
        if self.smtp_down or not moves or not getattr(self.mb, "beside_sending", False):
            self._send_queued()
            self._move(moves)
            return
        rows = self.state.uncopied()
        copy: list[str | None] = []          # done: None, or the warning why not
        moved: list[str] = []
        error: list[BaseException] = []      # the IMAP side's failure, raised here

        def imap_side() -> None:
            try:
                if rows:
                    copy.append(self._put_in_sent(rows))
                for folder, items in moves.items():
                    self.mb.move([uid for uid, _ in items], folder)
                    moved.append(folder)
            except BaseException as exc:  # noqa: BLE001 - raised in the cycle's thread below
                error.append(exc)

        if self.cfg.database is None:        # the journal is this office's own file
            # while more batches follow, forwards (with the citizens' files) wait for the round
            # after the last batch: every citizen's reply goes out first
            self._sending = self.outbox.start(self.smtp, self.clock, self.report.delivery, beside=True,
                                              hold_forwards=self._more)
            imap_side()
            if moved and faults.armed("after_move"):
                self._sending.wait()         # the fault's promise: after this delivery
        else:
            side = threading.Thread(target=imap_side, name="mailbot-imap-side", daemon=True)
            side.start()
            try:
                self.outbox.deliver(self.smtp, self.clock, self.report.delivery)
            except BaseException:
                side.join()
                for exc in error:                # the delivery's failure is the one raised
                    log.warning("while sending: the IMAP side failed too: %s: %s", type(exc).__name__, exc)
                raise
            side.join()
            if self.report.delivery.smtp_error is not None:
                self.smtp_down = True
        if moved:
            faults.point("after_move")
        if copy and copy[0]:
            self.report.warnings.append(copy[0])
        elif copy:
            self.state.mark_copied([row["id"] for row in rows])
        for folder in moved:
            self.state.mark_moved([row for _, row in moves[folder]])
        if error:
            raise error[0]

    def _results(self):
        """Signed results from results/outbox (when a certificate is configured)."""
        if self.cfg.signing is None:
            return None
        from ..casework.results import Results  # pyHanko and fpdf2 load only where signing is configured

        try:
            results = Results(self.cfg, self.desk, self.clock)
            report = results.process(self.clock())
        except EnvironmentFailure:
            raise
        except MailbotError as exc:
            self.report.warnings.append(exc.plain())
            return None
        self.report.results = report
        for name, reason in report.problems:
            self.report.warnings.append(f"ไฟล์ผลการพิจารณามีปัญหา / result file problem: {name}: "
                                        + reason.splitlines()[0])
        for name, why in report.stuck:
            self.report.warnings.append(f"ไฟล์ผลการพิจารณา {name}: {why}")
        return results

    def _copy_to_sent(self) -> None:
        rows = self.state.uncopied()
        if not rows:
            return
        problem = self._put_in_sent(rows)
        if problem:
            self.report.warnings.append(problem)
            return
        self.state.mark_copied([row["id"] for row in rows])

    def _put_in_sent(self, rows: list) -> str | None:
        """The IMAP half of copying sent mail to Sent (no Sent folder: nothing to do); the
        warning when the server would not take them."""
        folder = self.mb.sent_folder()
        if folder:
            try:
                self.mb.append_sent_many(folder, [bytes(row["raw"]) for row in rows])
            except Exception as exc:  # noqa: BLE001 - a copy is a convenience, never a blocker
                return f"copy to Sent failed: {type(exc).__name__}"
        return None

    # ------------------------------------------------------------------ step 6

    def _move_decided(self, present: set[int]) -> None:
        moves: dict[str, list[tuple[int, int]]] = defaultdict(list)
        gone = []
        for row in self.state.unmoved(self.account, self.folder, self.uidvalidity):
            if row["uid"] in present:
                moves[row["target_folder"]].append((row["uid"], row["id"]))
            else:
                gone.append(row["id"])
        if gone:
            self.state.mark_moved(gone)
        self._move(moves)

    def _move(self, moves: dict[str, list[tuple[int, int]]]) -> None:
        for folder, items in moves.items():
            self.mb.move([uid for uid, _ in items], folder)
            faults.point("after_move")
            self.state.mark_moved([row for _, row in items])


def _first_seen(value: str | None, now: datetime) -> datetime:
    """The ledger's first_seen as a time; ``now`` for none or for a value that does not read as an
    ISO time (read back from disk: it never stops the batch); a time without a zone is UTC, as
    ``store.iso`` writes it."""
    try:
        seen = from_iso(value) if value else now
    except (TypeError, ValueError):
        return now
    return seen if seen.tzinfo is not None else seen.replace(tzinfo=timezone.utc)


def suspect_batches(suspects: list[int], ledger: dict[int, Ledger]) -> list[list[int]]:
    """The batches in which messages an earlier run did not finish are tried again (pure).

    A run cut off in a batch (killed from outside, or by one message in it) says nothing about
    any one message there, so those are tried in halves: the messages cut off in batches the same
    number of times, in two batches (a message of one alone). A message that stops the program
    every time is so narrowed down in a few runs, then cut off alone, where each run counts
    against it (max_interruptions); a kill from outside costs the next run two batches, not one
    per message (which kept a host's rescued agency busy long enough to be cut off again).
    A message cut off alone, or that failed, is tried alone again. The least cut off go first,
    so that kills from outside do not land on the same messages run after run."""
    grouped: dict[int, list[int]] = defaultdict(list)
    alone: list[int] = []
    for uid in suspects:
        entry = ledger[uid]
        if entry.interruptions or entry.failures or entry.open_alone:
            alone.append(uid)
        else:
            grouped[entry.attempts].append(uid)
    out: list[list[int]] = []
    for cuts in sorted(grouped):
        uids = sorted(grouped[cuts])
        half = (len(uids) + 1) // 2
        out += [uids[i:i + half] for i in range(0, len(uids), half)]
    alone.sort(key=lambda u: (ledger[u].interruptions, u))
    return out + [[u] for u in alone]
