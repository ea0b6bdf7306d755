"""Outbox rows: every message mailbot owes, has sent, holds or could not send, with its fixed
Message-ID (the queue itself, caps and delivery are ``mail.outbox``).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime

from .db import Database, iso


class OutboxStore(Database):
    """The ``outbox`` table."""

    # ------------------------------------------------------------------ outbox

    def queue_reply(self, *, message_id: str, kind: str, case_id: int | None, message_row: int | None,
                    recipient: str, subject: str, raw: bytes, status: str, hold_reason: str | None,
                    now: datetime) -> bool:
        """Put one composed message in the outbox; False when that Message-ID is there already."""
        cur = self.db.execute(
            "INSERT INTO outbox (message_id, kind, case_id, message_row, recipient, subject, raw, status, "
            "hold_reason, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (message_id) DO NOTHING",
            (message_id, kind, case_id, message_row, recipient.lower(), subject, raw, status, hold_reason, iso(now)),
        )
        return cur.rowcount > 0

    def replies_to_since(self, recipient: str, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Automatic replies owed or sent to one address since a moment (held ones and the
        given kinds excluded)."""
        kinds = sorted(exclude) or [""]
        return self.db.execute(
            "SELECT count(*) FROM outbox WHERE recipient=? AND created_at>=? AND status IN ('queued','sent') "
            f"AND kind NOT IN ({','.join('?' * len(kinds))})",
            (recipient.lower(), iso(since), *kinds),
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

    def uncopied(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT id, raw FROM outbox WHERE status='sent' AND copied=0 ORDER BY id").fetchall()

    def mark_copied(self, outbox_ids: list[int]) -> None:
        with self.tx(durable=False) as db:
            db.executemany("UPDATE outbox SET copied=1 WHERE id=?", [(i,) for i in outbox_ids])
