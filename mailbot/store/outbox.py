"""Outbox rows: every message mailbot owes, has sent, holds or could not send, with its fixed
Message-ID (the queue itself, caps and delivery are ``mail.outbox``).

Owns: the ``outbox`` statements — queuing, the counts the caps read, what the officer decides
on held or failed messages, each attempt's marker and fate (sending, sent, refused, held after
two interruptions, bounced), and the look-ups by Message-ID that intake and results make.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime

from ..kinds import SEND_STATES
from .db import Database, iso

# the states an officer decides on (release or discard): held ones, and with them the failed
# ones (kinds.SEND_STATES has no named set for these; they are its keys)
HELD = frozenset(SEND_STATES) & {"held"}
HELD_OR_FAILED = frozenset(SEND_STATES) & {"held", "failed"}
# the states that count against the per-sender cap: owed or gone
OWED_OR_SENT = frozenset(SEND_STATES) & {"queued", "sent"}


# the advisory lock of a tenant's delivery round (store/host.py holds 1: a cycle, 2: the work lock)
ROUND_LOCK = 3


class OutboxStore(Database):
    """The ``outbox`` table."""

    # ------------------------------------------------------------------ a host's delivery round

    def take_round(self) -> bool:
        """PostgreSQL: this tenant's delivery round, one at a time across the host's processes
        and pods (what ``sending.lock`` is to one office's data folder): a session advisory lock
        on this store's own connection, keyed by the tenant's schema as ``Database._begin``'s is,
        let go by ``let_round_go`` or when the connection ends (a process killed mid-round).
        False: another round holds it. SQLite: always True (the office's file lock serves)."""
        if self.dialect != "postgresql":
            return True
        row = self.db.execute("SELECT pg_try_advisory_lock(hashtext(current_schema()), ?)", (ROUND_LOCK,)).fetchone()
        return bool(row and row[0])

    def let_round_go(self) -> None:
        if self.dialect == "postgresql":
            self.db.execute("SELECT pg_advisory_unlock(hashtext(current_schema()), ?)", (ROUND_LOCK,))

    # ------------------------------------------------------------------ outbox

    def queue_reply(self, *, message_id: str, kind: str, case_id: int | None, message_row: int | None,
                    recipient: str, subject: str, raw: bytes, status: str, hold_reason: str | None,
                    now: datetime, thread: str | None = None) -> bool:
        """Put one composed message in the outbox; False when that Message-ID is there already."""
        cur = self.db.execute(
            "INSERT INTO outbox (message_id, kind, case_id, message_row, recipient, subject, raw, status, "
            "hold_reason, created_at, thread) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (message_id) DO NOTHING",
            (message_id, kind, case_id, message_row, recipient.lower(), subject, raw, status, hold_reason, iso(now),
             thread),
        )
        return cur.rowcount > 0

    def replies_in_thread_since(self, thread: str, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Automatic replies owed or sent in one thread since a moment (the given kinds excluded)."""
        kinds = sorted(exclude) or [""]
        states = sorted(OWED_OR_SENT)
        return self.db.execute(
            "SELECT count(*) FROM outbox WHERE thread=? AND created_at>=? "
            f"AND status IN ({','.join('?' * len(states))}) AND kind NOT IN ({','.join('?' * len(kinds))})",
            (thread, iso(since), *states, *kinds),
        ).fetchone()[0]

    def replies_to_since(self, recipient: str, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Automatic replies owed or sent to one address since a moment (held ones and the
        given kinds excluded)."""
        kinds = sorted(exclude) or [""]
        states = sorted(OWED_OR_SENT)
        return self.db.execute(
            "SELECT count(*) FROM outbox WHERE recipient=? AND created_at>=? "
            f"AND status IN ({','.join('?' * len(states))}) AND kind NOT IN ({','.join('?' * len(kinds))})",
            (recipient.lower(), iso(since), *states, *kinds),
        ).fetchone()[0]

    def sent_since(self, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Messages sent since a moment, not counting the given kinds."""
        kinds = sorted(exclude) or [""]
        marks = ",".join("?" * len(kinds))
        return self.db.execute(
            f"SELECT count(*) FROM outbox WHERE status='sent' AND sent_at>=? AND kind NOT IN ({marks})",
            (iso(since), *kinds),
        ).fetchone()[0]

    def followup_ack_since(self, case_id: int, since: datetime) -> bool:
        return self.db.execute(
            "SELECT 1 FROM outbox WHERE case_id=? AND kind='followup' AND created_at>=? LIMIT 1",
            (case_id, iso(since)),
        ).fetchone() is not None

    def queued(self, limit: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM outbox WHERE status='queued' ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.db.execute(sql).fetchall()

    def mark_sending(self, outbox_id: int, now: datetime, interrupted: int) -> None:
        """About to hand a message to the server (``interrupted``: earlier attempts cut off)."""
        with self.tx(durable=False) as db:
            db.execute("UPDATE outbox SET send_started_at=?, interrupted=? WHERE id=?", (iso(now), interrupted, outbox_id))

    def clear_sending(self, outbox_id: int, interrupted: int) -> None:
        """The attempt was seen to fail before the server took the message: not an interruption."""
        with self.tx(durable=False) as db:
            db.execute("UPDATE outbox SET send_started_at=NULL, interrupted=? WHERE id=?", (interrupted, outbox_id))

    def set_outbox_error(self, message_id: str, error: str | None) -> None:
        """The reason a queued message failed (kept in ``last_error``)."""
        self.db.execute("UPDATE outbox SET last_error=? WHERE message_id=?", (error, message_id))

    def held_messages(self, failed: bool = False) -> list[sqlite3.Row]:
        """Messages held for the officer (with ``failed``: and those refused for good), with their
        case's receipt, oldest first."""
        states = sorted(HELD_OR_FAILED if failed else HELD)
        return self.db.execute(
            "SELECT o.*, c.receipt FROM outbox o LEFT JOIN cases c ON c.id = o.case_id WHERE o.status IN "
            f"({','.join('?' * len(states))}) ORDER BY o.id", states).fetchall()

    def later_owed_kinds(self, case_id: int, outbox_id: int) -> list[str]:
        """The kinds of the messages about a case queued after ``outbox_id`` and still owed
        (queued, or held for the officer)."""
        return [r[0] for r in self.db.execute(
            "SELECT kind FROM outbox WHERE case_id=? AND id>? AND status IN ('queued', 'held')", (case_id, outbox_id))]

    def outbox_row(self, outbox_id: int) -> sqlite3.Row | None:
        """One outbox row by its number."""
        return self.db.execute("SELECT * FROM outbox WHERE id=?", (outbox_id,)).fetchone()

    def outbox_by_message_id(self, message_id: str) -> sqlite3.Row | None:
        """The outbox row (id, case_id, kind) that sent a Message-ID, if any."""
        return self.db.execute("SELECT id, case_id, kind FROM outbox WHERE message_id=?", (message_id,)).fetchone()

    def outbox_fate(self, message_id: str) -> sqlite3.Row | None:
        """The status and last error of the message with this Message-ID, if queued at all."""
        return self.db.execute("SELECT status, last_error FROM outbox WHERE message_id=?", (message_id,)).fetchone()

    def is_alert_message(self, message_id: str) -> bool:
        """Whether this Message-ID is one mailbot queued as an alert."""
        return self.db.execute("SELECT 1 FROM outbox WHERE message_id=? AND kind='alert'",
                               (message_id,)).fetchone() is not None

    def decide_outbox(self, outbox_id: int, status: str, note: str) -> None:
        """An officer's decision on a held or failed message: its new status, the note in
        ``hold_reason``, and a fresh start (no attempts, no back-off, no send marker)."""
        self.db.execute("UPDATE outbox SET status=?, hold_reason=?, next_attempt_at=NULL, attempts=0, "
                        "send_started_at=NULL, interrupted=0 WHERE id=?", (status, note, outbox_id))

    def record_sent(self, outbox_id: int, now: datetime) -> None:
        """The server accepted the message: sent, no error, no send marker."""
        self.db.execute("UPDATE outbox SET status='sent', sent_at=?, last_error=NULL, send_started_at=NULL WHERE id=?",
                        (iso(now), outbox_id))

    def hold_outbox(self, outbox_id: int, reason: str) -> None:
        """Hold a message for the officer (clearing its send marker)."""
        self.db.execute("UPDATE outbox SET status='held', hold_reason=?, send_started_at=NULL WHERE id=?",
                        (reason, outbox_id))

    def record_refusal(self, outbox_id: int, *, attempts: int, error: str, status: str,
                       retry_at: datetime | None) -> None:
        """A refused attempt: the attempt count, the error, ``failed`` or ``queued`` again with the
        moment to retry; the send marker and interruptions cleared."""
        self.db.execute("UPDATE outbox SET attempts=?, last_error=?, status=?, next_attempt_at=?, send_started_at=NULL, "
                        "interrupted=0 WHERE id=?",
                        (attempts, error, status, None if retry_at is None else iso(retry_at), outbox_id))

    def mark_bounced(self, outbox_id: int) -> None:
        """A delivery report came back for this message."""
        self.db.execute("UPDATE outbox SET status='bounced' WHERE id=?", (outbox_id,))

    def uncopied(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT id, raw FROM outbox WHERE status='sent' AND copied=0 ORDER BY id").fetchall()

    def mark_copied(self, outbox_ids: list[int]) -> None:
        with self.tx(durable=False) as db:
            db.executemany("UPDATE outbox SET copied=1 WHERE id=?", [(i,) for i in outbox_ids])
