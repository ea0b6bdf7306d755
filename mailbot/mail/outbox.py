"""Outbox: the one path for every mail mailbot sends — replies, forwards, results, alerts and
the daily log.

Owns: composing a message of a kind in ``kinds.MAIL_KINDS`` (through ``replies.build``) with a
deterministic Message-ID, queuing it in the state database before anything is sent (intent
before effect), the per-sender daily cap and holding for the officer, delivering what is owed
over one SMTP session with the hourly cap and a back-off after temporary refusals, and what
each message's fate means for its case's การตอบกลับ (reply) column. A message that cannot be
sent — refused for good, an address no server could take — fails on its own, with the reason;
it never stops the messages behind it. Only an unreachable server stops a delivery round, or a
sender's rate cap (``smtp.SendLater``: Microsoft Graph's 30 a minute), which leaves the rest queued.
A round beside a cycle's batches sends the forwards to units after the replies (``forwards_last``).

A round is sent in the database's thread (``deliver``), or, for a cycle on one office's own
database, by a thread of its own while the cycle commits its next batch (``start(beside=True)``):
that thread never touches the database; the marks that must outlive a kill go to
``<data>/sending.journal`` (``Journal``) and each message's fate is recorded when the round is
finished. Every delivery first records what a killed round left there (``recover_journal``).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from filelock import BaseFileLock, FileLock, Timeout

from .. import faults
from ..casework.replies import Templates, build, message_id_for
from ..config import Config
from ..errors import ConnectionFailure, MailbotError, explain_environment
from ..kinds import MAIL_KINDS, UNCAPPED, explain, kind_label, mail_kind, send_state
from ..store import Row, State, from_iso, iso
from ..thai import thai_date_short, to_bangkok
from . import addresses

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def day_start(now: datetime) -> datetime:
    """Midnight of today in Asia/Bangkok."""
    return to_bangkok(now).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Delivery:
    """What one delivery round did."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)      # (recipient, subject, kind)
    failed: list[tuple[str, str, str]] = field(default_factory=list)    # (recipient, kind, reason)
    warnings: list[str] = field(default_factory=list)
    smtp_error: MailbotError | None = None

    @property
    def replies_sent(self) -> int:
        """Mail sent to citizens (internal forwards, alerts and daily logs not counted)."""
        return sum(1 for _, _, kind in self.sent if not mail_kind(kind).internal)


class Outbox:
    def __init__(self, cfg: Config, state: State, templates: Templates) -> None:
        self.cfg = cfg
        self.state = state
        self.templates = templates
        # called inside the transaction that marks a message sent: (outbox row, now)
        self.on_sent: list[Callable[[Row, datetime], None]] = []
        self.on_failed: list[Callable[[Row, str, datetime], None]] = []

    # ------------------------------------------------------------------ queue

    def queue(self, kind: str, *, recipient: str | None, subject: str, now: datetime, ctx: dict,
              key: int, key_hash: str, receipt: str | None = None, in_reply_to: str | None = None,
              references: tuple[str, ...] = (), case_id: int | None = None, message_row: int | None = None,
              attach: bytes | None = None, files: tuple[tuple[str, bytes], ...] = (),
              hold: str | None = None) -> str:
        """Compose one message and put it in the outbox; returns a short Thai label for reports.

        ``hold``: the reason to keep it for the officer instead of sending it (released or
        discarded by hand)."""
        spec = MAIL_KINDS[kind]
        st = self.state
        own = self.cfg.agency.address.lower()
        if recipient and recipient.lower() == own and not spec.internal:
            recipient = None  # never answer ourselves (a forged Reply-To would loop)
        if not recipient:
            if case_id is not None and spec.reply_column:
                st.update_case(case_id, reply_status="ไม่ได้ตอบกลับ: ไม่มีที่อยู่อีเมลที่ใช้ได้")
            return "ไม่ได้ตอบ: ไม่มีที่อยู่อีเมลที่ใช้ได้"
        template = spec.template_name.format(**ctx) if "{" in spec.template_name else spec.template_name
        mid = message_id_for(kind, key, key_hash, self.cfg.agency.domain)
        raw = build(kind=kind, template=template, templates=self.templates, agency=self.cfg.agency,
                    to=recipient, subject=subject, receipt=receipt, in_reply_to=in_reply_to,
                    references=references, message_id=mid, now=now, ctx=ctx, attach=attach, files=files)
        status, reason = "queued", None
        bad = addresses.problem(recipient)
        cap = self.cfg.limits.replies_per_sender_per_day
        per_thread = self.cfg.limits.replies_per_thread_per_day
        # the conversation this answers: the first Message-ID it refers to (our own, for a thread we began)
        thread = (references[0] if references else in_reply_to) if spec.threaded else None
        if bad is not None:
            status, reason = "failed", f"{bad[0]} / {bad[1]}"
        elif hold:
            status, reason = "held", hold
        elif spec.capped and st.replies_to_since(recipient, day_start(now), UNCAPPED) >= cap:
            status, reason = "held", f"เกิน {cap} ฉบับต่อวันถึงผู้รับรายเดียว / per-sender limit {cap} a day"
        elif spec.capped and thread and st.replies_in_thread_since(thread, day_start(now), UNCAPPED) >= per_thread:
            status, reason = "held", (f"เกิน {per_thread} ฉบับต่อวันในการสนทนาเดียวกัน / "
                                      f"per-thread limit {per_thread} a day")
        inserted = st.queue_reply(message_id=mid, kind=kind, case_id=case_id, message_row=message_row,
                                  recipient=recipient, subject=subject, raw=raw, status=status,
                                  hold_reason=reason if status == "held" else None, now=now, thread=thread)
        if inserted and status == "failed":
            st.set_outbox_error(mid, reason)
        if case_id is not None and spec.reply_column:
            st.update_case(case_id, reply_status=column_text(status, now, reason))
        return send_state(status) + (f": {reason}" if reason else "")

    # ------------------------------------------------------------------ officer

    def held(self, failed: bool = False) -> list[Row]:
        """Messages held for the officer (and with ``failed``, those the server refused for good)."""
        return self.state.held_messages(failed)

    def release(self, outbox_id: int, actor: str, now: datetime) -> Row:
        """A held message goes out at the next delivery (caps no longer apply to it); a failed one
        is tried again (after the officer fixed the cause, e.g. the address or the password)."""
        return self._decide(outbox_id, "queued", actor, now, "ปล่อยอีเมลที่ระงับไว้หรือส่งใหม่", "released")

    def discard(self, outbox_id: int, actor: str, now: datetime) -> Row:
        return self._decide(outbox_id, "discarded", actor, now, "ไม่ส่งอีเมลที่ระงับไว้", "discarded")

    def _decide(self, outbox_id: int, status: str, actor: str, now: datetime, thai: str, english: str) -> Row:
        st = self.state
        with st.tx():
            row = st.outbox_row(outbox_id)
            if row is None or row["status"] not in ("held", "failed"):
                raise MailbotError(f"ไม่พบอีเมลที่ระงับไว้หรือส่งไม่สำเร็จหมายเลข {outbox_id}",
                                   f"no held or failed message with number {outbox_id}")
            st.decide_outbox(outbox_id, status, f"{english} by {actor} {iso(now)}")
            if status == "queued" and row["case_id"] is not None and row["kind"] in ("receipt", "unclassified"):
                st.clear_case_hold(row["case_id"])   # the officer vouched
            receipt = None
            if row["case_id"] is not None:
                st.add_case_event(row["case_id"], now, f"reply_{english}",
                                  f"{thai} ({kind_label(row['kind'])}) {thai_date_short(now)} ({actor})", actor=actor)
                receipt = st.receipt_of(row["case_id"])
                if self._shows_in_column(row):
                    st.update_case(row["case_id"], reply_status=column_text(status, now, None))
            st.audit(now, actor, f"reply_{english}", receipt or "", {"outbox": outbox_id, "kind": row["kind"],
                                                                              "to": row["recipient"]})
            decided = st.outbox_row(outbox_id)
            assert decided is not None      # read and updated just above, in this transaction
            return decided

    # ------------------------------------------------------------------ deliver

    def size_limit(self) -> int | None:
        """The largest message the SMTP server last said it takes (bytes), if it said."""
        value = self.state.get("smtp_max_size")
        return int(value) if value and value.isdigit() else None

    def deliver(self, smtp, clock: Clock, result: Delivery | None = None) -> Delivery:
        """Send what the outbox owes: internal mail and results always, citizen replies within
        the hourly cap. Stops (``smtp_error`` set) only when the server cannot be reached."""
        return self.start(smtp, clock, result).finish()

    def start(self, smtp, clock: Clock, result: Delivery | None = None, beside: bool = False,
              hold_forwards: bool = False) -> Sending:
        """A delivery round: what is owed is chosen here, in the database's thread, and sent now;
        with ``beside``, by a thread of its own while this one goes on (a cycle commits its next
        batch meanwhile). Its marks then go to the journal and what follows from each message's
        fate waits for ``finish()``, which records it in this thread (see ``Journal``).
        A round beside a cycle's batches sends the forwards (the citizens' files, megabytes each)
        after the rest (``forwards_last``); with ``hold_forwards`` (more batches follow) it leaves
        them queued for the round after the last batch, so every reply of a morning's burst goes
        out before them. Any other round goes in the order the mail was queued."""
        result = result if result is not None else Delivery()
        free, lock = self._round_lock()
        if not free:
            busy = ("อีกงานหนึ่งกำลังส่งอีเมลอยู่ ส่วนที่เหลือจะส่งรอบถัดไป / "
                    "another delivery is under way; the rest goes in the next one")
            if busy not in result.warnings:      # once, however often a cycle tried to deliver
                result.warnings.append(busy)
            return Sending(self, result, None, None)
        try:
            return self._start(smtp, clock, result, beside, lock, hold_forwards)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def _round_lock(self) -> tuple[bool, "BaseFileLock | _HostRound | None"]:
        """On one office's own data folder, a round holds ``sending.lock`` until it is finished:
        a delivery in another process (or thread) meanwhile sends nothing and leaves the journal
        alone (it could not tell a round still going from one that was killed). On a host's
        database the round holds the tenant's round lock in PostgreSQL instead (its pods may not
        share file locks; a delivery outside the work lock, such as the alerts of a daily job,
        must not send a message another round is sending). (False, None): held by another."""
        if self.cfg.database is not None:
            if not self.state.take_round():
                return False, None
            return True, _HostRound(self.state)
        lock = FileLock(str(self.cfg.data_dir / "sending.lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False, None
        return True, lock

    def _start(self, smtp, clock: Clock, result: Delivery, beside: bool,
               lock: "BaseFileLock | _HostRound | None", hold_forwards: bool = False) -> Sending:
        self.recover_journal(clock)
        st = self.state
        size = getattr(smtp, "max_size", None)
        if isinstance(size, int) and str(size) != st.get("smtp_max_size"):
            st.put("smtp_max_size", str(size))       # what forwards are composed to fit
        queued = st.queued()
        if not queued:
            if lock is not None:
                lock.release()
            return Sending(self, result, None, None)
        cap = self.cfg.limits.replies_per_hour
        allowed = max(0, cap - st.sent_since(clock() - timedelta(hours=1), exclude=UNCAPPED))
        uncapped = [r for r in queued if not mail_kind(r["kind"]).capped]
        replies = [r for r in queued if mail_kind(r["kind"]).capped]
        rows = sorted(uncapped + replies[:allowed], key=lambda r: r["id"])
        if beside:      # a cycle's round: the forwards' megabytes after the replies (or a later round)
            first, forwards = forwards_last(rows)
            rows = first if hold_forwards else first + forwards
        over = ""
        if len(replies) > allowed:
            over = (f"ตอบกลับครบโควตา {cap} ฉบับ/ชั่วโมง ส่วนที่เหลือจะส่งรอบถัดไป / hourly reply limit "
                    f"{cap} reached; {len(replies) - allowed} replies wait for the next cycle")
        if not rows:      # forwards alone, left for a later round; or replies over the hourly cap
            if over:
                result.warnings.append(over)
            if lock is not None:
                lock.release()
            return Sending(self, result, None, None)
        if not beside:
            sending = Sending(self, result, None, None, lock)
            sending.run(rows, smtp, clock, Marks(self), over)
            return sending
        journal = Journal(self.cfg.data_dir / JOURNAL)
        sending = Sending(self, result, journal, None, lock)
        marks = JournalMarks(self, journal)
        sending.thread = threading.Thread(target=sending.run, args=(rows, smtp, clock, marks, over),
                                          name="mailbot-sending")   # not a daemon: never cut off by the exit
        sending.marks = marks
        sending.thread.start()
        return sending

    def send_rows(self, rows: list[Row], smtp, clock: Clock, result: Delivery, marks: Marks) -> bool:
        """Hand ``rows`` to the server one by one, in order, each mark through ``marks``; an
        earlier message owed to the same case and recipient that is not sent holds the later ones.
        False when the round stopped because the server cannot be reached."""
        now = iso(clock())
        waiting: set[tuple[int, str]] = set()   # (case, recipient) with an earlier message still owed
        from .smtp import SendLater, SendRefused

        for row in rows:
            case = (row["case_id"], row["recipient"]) if row["case_id"] is not None else None
            if case is not None and case in waiting:
                continue
            if row["next_attempt_at"] and row["next_attempt_at"] > now:   # backing off after a refusal
                if case is not None:
                    waiting.add(case)
                continue
            interrupted = row["interrupted"] + (1 if row["send_started_at"] else 0)
            if interrupted >= 2:
                # handed to the server twice and cut off both times before the answer was
                # recorded: the citizen may have it twice already; a person decides
                marks.held(row, clock())
                result.warnings.append(
                    f"อีเมลถึง {row['recipient']} ส่งค้างกลางคันสองครั้ง ระงับไว้ให้เจ้าหน้าที่ตรวจ (อาจส่งถึงแล้ว) / "
                    f"mail to {row['recipient']} was cut off twice while sending: held for the officer")
                if case is not None:
                    waiting.add(case)
                continue
            try:
                # connected and signed in before the marker: only the message's own transaction
                # can be cut off with the server maybe holding it
                smtp.open()
            except MailbotError as exc:   # unreachable, refused sign-in, no password: the round stops
                self._stopped(result, exc)
                return False
            marks.sending(row, clock(), interrupted)
            try:
                smtp.send(row["recipient"], row["raw"])
            except MailbotError as exc:   # the connection lost and not made again: the round stops
                marks.not_sent(row, interrupted)   # seen to fail: not an interruption
                self._stopped(result, exc)
                return False
            except SendLater as exc:   # the service's rate cap: the rest stays queued, nothing counted
                marks.not_sent(row, interrupted)
                warning = f"{exc.thai} / {exc.english}"
                if warning not in result.warnings:
                    result.warnings.append(warning)
                break
            except SendRefused as exc:
                permanent = exc.permanent or row["attempts"] >= 9
                marks.refused(row, str(exc), permanent, clock())
                if permanent:
                    result.failed.append((row["recipient"], row["kind"], str(exc)))
                result.warnings.append(
                    f"ส่งอีเมลถึง {row['recipient']} ไม่สำเร็จ{'' if permanent else ' จะลองใหม่'}: {exc} / "
                    f"mail to {row['recipient']} {'failed' if permanent else 'refused for now'}: {exc}")
                if case is not None and not permanent:
                    waiting.add(case)
                continue
            except Exception as exc:  # noqa: BLE001 - one message must never stop the others
                if explain_environment(exc) is not None:
                    marks.not_sent(row, interrupted)
                    raise
                log.exception("sending outbox #%s failed", row["id"])
                reason = f"internal error: {type(exc).__name__}: {str(exc)[:160]}"
                permanent = row["attempts"] >= 9        # unknown: retried with the back-off, then given up
                marks.refused(row, reason, permanent, clock())
                if permanent:
                    result.failed.append((row["recipient"], row["kind"], reason))
                result.warnings.append(f"ส่งอีเมลถึง {row['recipient']} ไม่สำเร็จ / mail to {row['recipient']} failed: {reason}")
                if case is not None and not permanent:
                    waiting.add(case)
                continue
            faults.point("after_send")
            marks.sent(row, clock())
            result.sent.append((row["recipient"], row["subject"] or "", row["kind"]))
            faults.point("after_mark_sent")
        return True

    def recover_journal(self, clock: Clock) -> None:
        """What a round sent beside left in the journal when the program ended before recording
        it (killed, crashed, the machine's fault): a message the server took is sent, never sent
        again; one handed over with no answer recorded was cut off while sending (as when its
        marker is in the database); one seen to fail goes again in its turn. Run before any
        delivery, in the database's thread; a journal already recorded changes nothing."""
        journal = Journal(self.cfg.data_dir / JOURNAL)
        last = journal.read()
        if last is None:
            return
        for outbox_id, (what, message_id, interrupted, at) in sorted(last.items()):
            row = self.state.outbox_row(outbox_id)
            if row is None or row["message_id"] != message_id or row["status"] != "queued":
                continue                     # recorded already (or no longer owed)
            if what == "A":
                self.mark_sent(row, at or clock())
            elif what == "S":
                self.state.mark_sending(outbox_id, at or clock(), interrupted)
        journal.clear()

    @staticmethod
    def _stopped(result: Delivery, exc: MailbotError) -> Delivery:
        """The server cannot be reached (or refuses the sign-in): this round stops, the rest waits."""
        if explain_environment(exc) is not None:
            raise exc
        result.smtp_error = exc if isinstance(exc, ConnectionFailure) else ConnectionFailure(
            exc.thai, exc.english, exc.detail)
        result.warnings.append(exc.plain())
        return result

    def mark_sent(self, row: Row, now: datetime) -> None:
        """The server accepted the message: it is sent, and it is never sent again, whatever
        goes wrong in what follows from it (the case's column, a result's status). Those go in
        the same transaction when they can; when one fails, the message is still recorded as
        sent, alone, and the failure is an event for the officer, not a reason to send again."""
        st = self.state
        try:
            with st.tx(durable=False):
                st.record_sent(row["id"], now)
                if self._shows_in_column(row):
                    st.update_case(row["case_id"], reply_status=column_text("sent", now, None))
                for hook in self.on_sent:
                    hook(row, now)
        except Exception as exc:
            if explain_environment(exc) is not None:
                raise        # the machine (disk, database): the marker set before sending holds
            log.exception("recording what follows from sent outbox #%s failed", row["id"])
            with st.tx(durable=False):
                st.record_sent(row["id"], now)
            st.event(now, "error", "after_send",
                     f"ส่งอีเมลถึง {row['recipient']} แล้ว แต่บันทึกผลต่อเนื่องไม่สำเร็จ ({type(exc).__name__}) "
                     f"จะไม่ส่งซ้ำ / mail to {row['recipient']} was sent; recording what follows failed: "
                     f"{type(exc).__name__}: {str(exc)[:160]} (it is not sent again)")

    def _shows_in_column(self, row: Row) -> bool:
        """The case's การตอบกลับ column tells this message's fate: it is a reply about a case and
        no later one about the same case is still owed (a round recorded after the next batch's
        commit must not hide that batch's held or queued reply behind "sent"; a later one sent,
        failed or discarded hides nothing)."""
        if row["case_id"] is None or not mail_kind(row["kind"]).reply_column:
            return False
        return not any(mail_kind(kind).reply_column for kind in self.state.later_owed_kinds(row["case_id"], row["id"]))

    def _hold_interrupted(self, row: Row, now: datetime) -> None:
        st = self.state
        reason = ("การส่งถูกขัดจังหวะสองครั้งหลังส่งให้เซิร์ฟเวอร์แล้ว ผู้รับอาจได้รับแล้ว ตรวจในกล่องส่งแล้วก่อนส่งใหม่ / "
                  "sending was cut off twice after the server had it; check the Sent folder before releasing")
        with st.tx():
            st.hold_outbox(row["id"], reason)
            if self._shows_in_column(row):
                st.update_case(row["case_id"], reply_status=column_text("held", now, reason))

    def mark_failed(self, row: Row, error: str, permanent: bool, now: datetime) -> None:
        """Permanent refusals fail; temporary ones wait 1, 2, 4 ... up to 60 minutes."""
        st = self.state
        with st.tx():
            attempts = row["attempts"] + 1
            retry = None if permanent else now + timedelta(minutes=min(2 ** (attempts - 1), 60))
            st.record_refusal(row["id"], attempts=attempts, error=error[:500],
                              status="failed" if permanent else "queued", retry_at=retry)
            if permanent:
                if self._shows_in_column(row):
                    st.update_case(row["case_id"], reply_status=column_text("failed", now, error))
                for hook in self.on_failed:
                    hook(row, error, now)


def column_text(status: str, when: datetime, reason: str | None) -> str:
    """The case's การตอบกลับ column for a message in this state, in Thai."""
    text = send_state(status)
    if status == "sent":
        text += f" {thai_date_short(when)}"
    if reason:
        text += f": {explain(reason)[:120]}"     # plain Thai on the register; the console has the detail
    return text


# ---------------------------------------------------------------------------- the marks of a round

JOURNAL = "sending.journal"


class Marks:
    """Each message's marks recorded in the database as they happen (a round sent in the
    database's own thread)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def held(self, row: Row, now: datetime) -> None:
        self.outbox._hold_interrupted(row, now)

    def sending(self, row: Row, now: datetime, interrupted: int) -> None:
        self.outbox.state.mark_sending(row["id"], now, interrupted)

    def not_sent(self, row: Row, interrupted: int) -> None:
        self.outbox.state.clear_sending(row["id"], interrupted)

    def refused(self, row: Row, error: str, permanent: bool, now: datetime) -> None:
        self.outbox.mark_failed(row, error, permanent, now)

    def sent(self, row: Row, now: datetime) -> None:
        self.outbox.mark_sent(row, now)

    def record(self) -> None:
        """Nothing waits: every mark is in the database already."""


class JournalMarks(Marks):
    """A round sent by a thread of its own (the database is another thread's): the two marks that
    must outlive a kill (handed to the server; taken by it) go to the journal at once, and each
    message's fate is recorded in the database by ``record()``, in the database's thread."""

    def __init__(self, outbox: Outbox, journal: "Journal") -> None:
        super().__init__(outbox)
        self.journal = journal
        self.fates: list[tuple[str, Row, tuple]] = []

    def held(self, row: Row, now: datetime) -> None:
        self.fates.append(("held", row, (now,)))

    def sending(self, row: Row, now: datetime, interrupted: int) -> None:
        self.journal.write("S", row, interrupted, now)

    def not_sent(self, row: Row, interrupted: int) -> None:
        self.journal.write("F", row, interrupted, None)

    def refused(self, row: Row, error: str, permanent: bool, now: datetime) -> None:
        self.fates.append(("refused", row, (error, permanent, now)))
        self.journal.write("F", row, 0, now)

    def sent(self, row: Row, now: datetime) -> None:
        self.fates.append(("sent", row, (now,)))    # first: recorded even if the line cannot be written
        self.journal.write("A", row, 0, now)

    def record(self) -> None:
        """Every fate in one transaction (each message's own a savepoint in it, as ``mark_sent``
        wants), then the journal goes. It waits for the disk only when a refusal or a hold is in
        it: "sent" marks are bookkeeping after the effect, as ``mark_sent``'s own (a power cut
        could lose them, and those messages would go once more)."""
        ob = self.outbox
        fates, self.fates = self.fates, []      # not recorded twice if this is cut short after the commit
        if fates:
            try:
                with ob.state.tx(durable=any(what != "sent" for what, _, _ in fates)):
                    for what, row, args in fates:
                        if what == "sent":
                            ob.mark_sent(row, *args)
                        elif what == "refused":
                            ob.mark_failed(row, *args)
                        else:
                            ob._hold_interrupted(row, *args)
            except BaseException:
                self.fates = fates               # rolled back: recorded again by the next try
                raise
        self.journal.clear()


class Journal:
    """``<data>/sending.journal``: one line a mark, ``S`` (handed to the server), ``A`` (the
    server took it) or ``F`` (seen to fail first), with the outbox row's number, its Message-ID,
    its interruptions so far and the moment. Each line is one append to the file, there before
    the next step, so a kill of the program loses none: as the database's own markers
    (``mark_sending``), they are not flushed to the disk one by one, so a power cut may lose the
    last of them and its message is sent again. Cleared once the database has the round."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def write(self, what: str, row: Row, interrupted: int, now: datetime | None) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        at = iso(now) if now is not None else "-"
        line = f"{what} {row['id']} {interrupted} {at} {row['message_id']}\n"
        os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read(self) -> dict[int, tuple[str, str, int, datetime | None]] | None:
        """Each row's last mark: (S/A/F, Message-ID, interruptions, when: None when the line has
        no time); None: no journal. A line cut off (a power cut) or not understood is passed over."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        last: dict[int, tuple[str, str, int, datetime | None]] = {}
        for line in data.split(b"\n"):
            parts = line.decode("utf-8", "replace").split(" ")
            if len(parts) != 5 or parts[0] not in ("S", "A", "F"):
                continue
            try:
                outbox_id, interrupted = int(parts[1]), int(parts[2])
                at = from_iso(parts[3]) if parts[3] != "-" else None
            except ValueError:
                continue
            last[outbox_id] = (parts[0], parts[4], interrupted, at)
        return last

    def clear(self) -> None:
        """Gone once the database has the round; one left behind (Windows: a scanner holding it
        open) is harmless: the next delivery finds every row in it recorded already."""
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("the sending journal %s was not removed (%s); the next delivery finds it recorded",
                        self.path, exc)


class _HostRound:
    """A host's round lock as ``Sending`` lets it go (``release``), once."""

    def __init__(self, state: State) -> None:
        self.state: State | None = state

    def release(self) -> None:
        state, self.state = self.state, None
        if state is None:
            return
        try:
            state.let_round_go()
        except Exception as exc:  # noqa: BLE001 - the connection is gone, and the lock with its session
            log.warning("the round lock was not let go (%s: %s); it goes with the connection",
                        type(exc).__name__, exc)


def forwards_last(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """A cycle's round, split (pure): (everything else, the mail that carries the citizens' files
    to staff: forwards), each in the order it was queued. A forward owed to the same case and
    address as any other message in the round stays in the first part (what one address
    receives about a case arrives in order)."""
    def files(row: Row) -> bool:
        return mail_kind(row["kind"]).carries_files

    others = {(row["case_id"], row["recipient"]) for row in rows if not files(row)}
    first: list[Row] = []
    later: list[Row] = []
    for row in rows:
        (later if files(row) and (row["case_id"], row["recipient"]) not in others else first).append(row)
    return first, later


class Sending:
    """One delivery round (``Outbox.start``): ``finish()`` waits for it when it is sent beside,
    records what became of each message, and raises what stopped it (the machine's fault)."""

    def __init__(self, outbox: Outbox, result: Delivery, journal: Journal | None,
                 thread: threading.Thread | None, lock: "BaseFileLock | _HostRound | None" = None) -> None:
        self.outbox = outbox
        self.result = result
        self.journal = journal
        self.thread = thread
        self.lock = lock          # the round's sending.lock, let go by finish()
        self.marks: Marks | None = None
        self.error: BaseException | None = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def run(self, rows: list[Row], smtp, clock: Clock, marks: Marks, over: str = "") -> None:
        try:
            if self.outbox.send_rows(rows, smtp, clock, self.result, marks) and over:
                self.result.warnings.append(over)     # the hourly cap held some back
        except BaseException as exc:  # noqa: BLE001 - raised by finish(), in the database's thread
            if self.thread is None:
                raise
            self.error = exc
        finally:
            if self.journal is not None:
                self.journal.close()

    def wait(self) -> None:
        """Until the round sent beside has ended (its fate not recorded yet)."""
        if self.thread is not None:
            self.thread.join()

    def finish(self) -> Delivery:
        """Called again after it was interrupted (Ctrl-C while waiting) or failed to record (the
        disk), it goes on from where it stopped; the journal keeps the marks meanwhile."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.marks is not None:
            try:
                self.marks.record()
            except BaseException:
                if self.error is not None:
                    log.warning("the sending stopped on %s: %s", type(self.error).__name__, self.error)
                raise
            self.marks = None
        self.release()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.result
