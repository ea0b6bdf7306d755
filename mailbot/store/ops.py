"""Operations' records: alerts sent (at most hourly), the texts owed to LINE, and what privacy
export, prune and recovery read.

Owns: the reads of ``privacy export`` (one address's cases, their events, the raw messages it
sent and the replies it was sent) and ``privacy prune`` (raw messages past their time, with
their case's status); what recovery reads and writes (the numbers the database holds, the
event on a rebuilt case) and reading the cases of an old database file (``old_database_cases``,
read-only; ``DatabaseError`` when it cannot be read); the LINE outbox (``line_outbox``: each text
owed to one group or user, the push key it goes under, sent or failed); the setup steps done
(``setup_steps``: the officer's first hour, step by step).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from sqlite3 import DatabaseError

from .db import Database

__all__ = ["DatabaseError", "OpsStore", "old_database_cases"]


def old_database_cases(path: Path) -> list[sqlite3.Row]:
    """Every case of another state database (e.g. the one a restore replaced), opened read-only;
    raises ``DatabaseError`` if the file cannot be read as one."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        return con.execute("SELECT * FROM cases").fetchall()
    finally:
        con.close()


class OpsStore(Database):
    """Statements for this part (methods of ``store.State``)."""

    # ------------------------------------------------------------------ privacy

    def privacy_cases(self, address: str) -> list[sqlite3.Row]:
        """The cases whose sender or reply-to address is ``address`` (lower case), in receipt order."""
        return self.db.execute("SELECT * FROM cases WHERE lower(sender_addr)=? OR lower(reply_to)=? "
                               "ORDER BY year_be, seq", (address, address)).fetchall()

    def privacy_case_events(self, case_id: int) -> list[sqlite3.Row]:
        """A case's events (``at``, ``note``) in the order they happened."""
        return self.db.execute("SELECT at, note FROM case_events WHERE case_id=? ORDER BY id", (case_id,)).fetchall()

    def privacy_messages(self, address: str) -> Iterator[sqlite3.Row]:
        """The archived messages whose sender is ``address`` (lower case), in the order received (lazily)."""
        return self.db.execute("SELECT * FROM messages WHERE lower(sender)=? AND archive IS NOT NULL ORDER BY id",
                               (address,))

    def privacy_reply_ids(self, address: str) -> list[int]:
        """The numbers of the outbox messages to ``address``, in the order queued; read each with
        ``outbox_row``. Only the ids are sorted (no index gives this order): a sort of whole rows
        holds every message's bytes at once, in memory (the connection's ``temp_store``), and a
        unit's address may have been sent gigabytes of forwards."""
        return [r[0] for r in self.db.execute("SELECT id FROM outbox WHERE recipient=? ORDER BY id", (address,))]

    def prunable_messages(self, before: str) -> list[sqlite3.Row]:
        """Messages received before ``before`` (ISO) with a raw copy recorded: their ``archive`` and
        ``quarantine_copy`` paths and their case's ``status`` (None without a case)."""
        return self.db.execute(
            "SELECT m.archive, m.quarantine_copy, c.status FROM messages m LEFT JOIN cases c ON c.id = m.case_id "
            "WHERE m.received_at IS NOT NULL AND m.received_at < ? "
            "AND (m.archive IS NOT NULL OR m.quarantine_copy IS NOT NULL)", (before,)).fetchall()

    # ------------------------------------------------------------------ recovery

    def case_numbers(self) -> set[tuple[int, int]]:
        """Every (year, number) the cases table holds."""
        return {(r[0], r[1]) for r in self.db.execute("SELECT year_be, seq FROM cases")}

    def recovered_event(self, case_id: int, at: str, note: str) -> None:
        """The ``recovered`` event on a rebuilt case, by mailbot (inside the caller's transaction)."""
        self.db.execute("INSERT INTO case_events (case_id, at, kind, note, actor) VALUES (?,?,?,?,?)",
                        (case_id, at, "recovered", note, "mailbot"))

    # ------------------------------------------------------------------ LINE

    def queue_line(self, dedup: str, kind: str, recipient: str, text: str, now: str) -> bool:
        """A text owed to one LINE group or user (inside the caller's transaction); False when the
        same ``dedup`` was recorded before (it is owed or sent once)."""
        cur = self.db.execute("INSERT OR IGNORE INTO line_outbox (dedup, kind, recipient, text, created_at) "
                              "VALUES (?,?,?,?,?)", (dedup, kind, recipient, text, now))
        return cur.rowcount == 1

    def line_unkeyed(self) -> list[sqlite3.Row]:
        """Owed texts not yet given a push, oldest first."""
        return self.db.execute("SELECT * FROM line_outbox WHERE status='queued' AND push_key IS NULL "
                               "ORDER BY id").fetchall()

    def line_keyed(self) -> list[sqlite3.Row]:
        """Owed texts already given a push (tried before, or given just now), oldest first."""
        return self.db.execute("SELECT * FROM line_outbox WHERE status='queued' AND push_key IS NOT NULL "
                               "ORDER BY id").fetchall()

    def line_give_key(self, ids: list[int], push_key: str) -> None:
        """These owed texts go together under ``push_key`` (only those without one yet)."""
        marks = ",".join("?" * len(ids))
        self.db.execute(f"UPDATE line_outbox SET push_key=? WHERE push_key IS NULL AND status='queued' "
                        f"AND id IN ({marks})", (push_key, *ids))

    def line_sent(self, push_key: str, now: str) -> None:
        """LINE accepted the push (200, or 409: accepted before under the same key)."""
        self.db.execute("UPDATE line_outbox SET status='sent', sent_at=?, attempts=attempts+1, last_error=NULL "
                        "WHERE push_key=? AND status='queued'", (now, push_key))

    def line_not_yet(self, push_key: str, error: str) -> None:
        """A push not accepted this time (rate limit, token, LINE or the network down): tried again
        later under the same key."""
        self.db.execute("UPDATE line_outbox SET attempts=attempts+1, last_error=? WHERE push_key=? "
                        "AND status='queued'", (error, push_key))

    def line_refused(self, push_key: str, error: str) -> None:
        """LINE refused the push for good (400: e.g. a group the bot is not in): never tried again."""
        self.db.execute("UPDATE line_outbox SET status='failed', attempts=attempts+1, last_error=? "
                        "WHERE push_key=? AND status='queued'", (error, push_key))

    def line_pushes_since(self, since: str) -> int:
        """Pushes LINE accepted since ``since`` (ISO)."""
        return self.db.execute("SELECT count(DISTINCT push_key) FROM line_outbox WHERE sent_at >= ?",
                               (since,)).fetchone()[0]

    def line_counts(self) -> dict[str, int]:
        """Texts by status (queued, sent, failed)."""
        return {r[0]: r[1] for r in self.db.execute("SELECT status, count(*) FROM line_outbox GROUP BY status")}

    def line_last_sent(self) -> str | None:
        """When LINE last accepted a push (ISO), or None."""
        return self.db.execute("SELECT max(sent_at) FROM line_outbox").fetchone()[0]

    def line_last_refused(self) -> sqlite3.Row | None:
        """The latest text LINE refused for good, or None."""
        return self.db.execute("SELECT * FROM line_outbox WHERE status='failed' ORDER BY id DESC LIMIT 1").fetchone()

    # ------------------------------------------------------------------ the first hour's steps

    def setup_done(self, step: str, at: str, actor: str, detail: str = "") -> None:
        with self.tx():
            self.db.execute("INSERT INTO setup_steps (step, done_at, actor, detail) VALUES (?,?,?,?) "
                            "ON CONFLICT (step) DO UPDATE SET done_at = excluded.done_at, actor = excluded.actor, "
                            "detail = excluded.detail", (step, at, actor, detail))

    def setup_undone(self, step: str) -> None:
        with self.tx():
            self.db.execute("DELETE FROM setup_steps WHERE step = ?", (step,))

    def setup_steps(self) -> dict[str, sqlite3.Row]:
        return {r["step"]: r for r in self.db.execute("SELECT * FROM setup_steps")}
