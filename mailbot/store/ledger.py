"""Ledger: the server's messages as mailbot knows them, keyed on (account, folder,
UIDVALIDITY, UID) with their Message-ID, content hash, outcome and attempts; the folders'
UIDVALIDITY.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from ..kinds import Outcome
from .db import Database, iso


@dataclass(frozen=True)
class Ledger:
    id: int
    uid: int
    outcome: str | None
    target_folder: str | None
    moved: bool
    attempts: int                 # runs that started on it
    last_error: str | None
    failures: int = 0             # runs that saw it fail (an exception, an unreadable message)
    interruptions: int = 0        # runs cut off while working on it alone (killed, crashed)
    open_alone: bool = False      # its last attempt, still open, worked on it alone (an interruption to count)
    # when its first attempt under this UID started (ISO); set by start_attempts, also on a row from
    # before schema 23 (its next attempt counts as the first seen)
    first_seen: str | None = None


class LedgerStore(Database):
    """The ``messages`` and ``folders`` tables."""

    # ------------------------------------------------------------------ folders

    def check_uidvalidity(self, account: str, folder: str, uidvalidity: int, now: datetime) -> int | None:
        """Remember the folder's UIDVALIDITY; return the old value if it changed."""
        with self.tx() as db:
            row = db.execute(
                "SELECT uidvalidity FROM folders WHERE account=? AND folder=?", (account, folder)
            ).fetchone()
            if row is None:
                db.execute("INSERT INTO folders VALUES (?,?,?,?)", (account, folder, uidvalidity, iso(now)))
                return None
            db.execute(
                "UPDATE folders SET uidvalidity=?, seen_at=? WHERE account=? AND folder=?",
                (uidvalidity, iso(now), account, folder),
            )
            return row["uidvalidity"] if row["uidvalidity"] != uidvalidity else None

    # ------------------------------------------------------------------ ledger

    def ledger(self, account: str, folder: str, uidvalidity: int, uids: list[int]) -> dict[int, Ledger]:
        """What the ledger knows of these UIDs (looked up in chunks, not the whole history)."""
        out: dict[int, Ledger] = {}
        for i in range(0, len(uids), 500):
            chunk = uids[i:i + 500]
            rows = self.db.execute(
                "SELECT id, uid, outcome, target_folder, moved, attempts, last_error, failures, interruptions, "
                "attempt_open, attempt_alone, first_seen FROM messages "
                f"WHERE account=? AND folder=? AND uidvalidity=? AND uid IN ({','.join('?' * len(chunk))})",
                (account, folder, uidvalidity, *chunk),
            ).fetchall()
            for r in rows:
                out[r["uid"]] = Ledger(r["id"], r["uid"], r["outcome"], r["target_folder"], bool(r["moved"]),
                                       r["attempts"], r["last_error"], r["failures"], r["interruptions"],
                                       bool(r["attempt_open"] and r["attempt_alone"]), r["first_seen"])
        return out

    def start_attempts(self, account: str, folder: str, uidvalidity: int, uids: list[int],
                       now: datetime) -> None:
        """Record intent before work: each UID's attempt counter goes up by one and its attempt is
        open, durably; a UID seen for the first time is first seen ``now`` (kept on later attempts).
        An attempt found still open was cut off (the process was killed or crashed): it counts as
        an interruption only when the run worked on that message alone, since a kill during a
        batch says nothing about any one message in it."""
        alone = 1 if len(uids) == 1 else 0
        with self.tx(durable=False) as db:
            db.executemany(
                "INSERT INTO messages (account, folder, uidvalidity, uid, attempts, attempt_open, attempt_alone, "
                "first_seen) VALUES (?,?,?,?,1,1,?,?) ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET "
                "attempts = messages.attempts + 1, first_seen = COALESCE(messages.first_seen, excluded.first_seen), "
                "interruptions = messages.interruptions + (CASE WHEN messages.attempt_open = 1 AND messages.attempt_alone = 1 "
                "THEN 1 ELSE 0 END), "
                "attempt_open = 1, attempt_alone = excluded.attempt_alone",
                [(account, folder, uidvalidity, u, alone, iso(now)) for u in uids],
            )

    def attempt_failed(self, row_id: int, error: str, **fields: object) -> None:
        """The run saw this message fail (and lived): a failure of the message's own, the attempt closed."""
        cols = "".join(f", {k}=?" for k in fields)
        self.db.execute(f"UPDATE messages SET failures = failures + 1, attempt_open = 0, last_error=?{cols} "
                        "WHERE id=?", (error[:500], *fields.values(), row_id))

    def leave_alone(self, account: str, folder: str, uidvalidity: int, uids: list[int], now: str) -> None:
        """Messages older than imap.since: in the ledger as 'before_since', never fetched or moved."""
        with self.tx() as db:
            db.executemany(
                "INSERT INTO messages (account, folder, uidvalidity, uid, outcome, moved, reason) "
                "VALUES (?,?,?,?, 'before_since', 1, ?) "
                "ON CONFLICT (account, folder, uidvalidity, uid) DO NOTHING",
                [(account, folder, uidvalidity, u, f"older than imap.since (seen {now})") for u in uids])

    def release_attempts(self, row_ids: list[int]) -> None:
        """A failure of the machine (disk full, no permission, database locked) is not the
        messages' fault: their attempt counters go back down."""
        with self.tx(durable=False) as db:
            db.executemany("UPDATE messages SET attempts=max(0, attempts-1), attempt_open=0, "
                           "environment_errors=environment_errors+1 WHERE id=? AND outcome IS NULL",
                           [(i,) for i in row_ids])

    def row_id(self, account: str, folder: str, uidvalidity: int, uid: int) -> int:
        return self.db.execute(
            "SELECT id FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
            (account, folder, uidvalidity, uid),
        ).fetchone()["id"]

    def message_outcome(self, row_id: int) -> str | None:
        """The outcome recorded for a ledger row (None: undecided, or no such row)."""
        row = self.db.execute("SELECT outcome FROM messages WHERE id=?", (row_id,)).fetchone()
        return None if row is None else row["outcome"]

    def before_since_count(self, account: str, folder: str, uidvalidity: int) -> int:
        """How many messages of a folder were left alone as older than imap.since."""
        return self.db.execute(
            "SELECT count(*) FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND outcome=?",
            (account, folder, uidvalidity, Outcome.BEFORE_SINCE)).fetchone()[0]

    def record_message(self, row_id: int, **fields: object) -> None:
        """Set a ledger row's columns; an outcome closes the attempt."""
        if fields.get("outcome") is not None:
            fields["attempt_open"] = 0
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE messages SET {cols} WHERE id=?", (*fields.values(), row_id))

    def find_duplicate(self, row_id: int, content_hash: str, message_id: str | None, sender: str | None) -> sqlite3.Row | None:
        """The first decided message with the same content (or same Message-ID from the same sender)."""
        row = self.db.execute(
            "SELECT * FROM messages WHERE content_hash=? AND id<>? AND outcome IS NOT NULL "
            "AND outcome <> ? AND duplicate_of IS NULL ORDER BY id LIMIT 1",
            (content_hash, row_id, Outcome.BEFORE_SINCE),
        ).fetchone()
        if row is None and message_id:
            row = self.db.execute(
                "SELECT * FROM messages WHERE message_id=? AND id<>? AND outcome IS NOT NULL "
                "AND outcome <> ? AND duplicate_of IS NULL AND lower(coalesce(sender,''))=lower(?) "
                "ORDER BY id LIMIT 1",
                (message_id, row_id, Outcome.BEFORE_SINCE, sender or ""),
            ).fetchone()
        return row

    def unmoved(self, account: str, folder: str, uidvalidity: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, uid, target_folder FROM messages WHERE account=? AND folder=? AND uidvalidity=? "
            "AND outcome IS NOT NULL AND moved=0",
            (account, folder, uidvalidity),
        ).fetchall()

    def mark_moved(self, row_ids: list[int]) -> None:
        with self.tx(durable=False) as db:
            db.executemany("UPDATE messages SET moved=1 WHERE id=?", [(i,) for i in row_ids])
