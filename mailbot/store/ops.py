"""Operations' records: alerts sent (at most hourly), and what privacy export, prune and recovery read.

Owns: the reads of ``privacy export`` (one address's cases, their events, the raw messages it
sent and the replies it was sent) and ``privacy prune`` (raw messages past their time, with
their case's status); what recovery reads and writes (the numbers the database holds, the
event on a rebuilt case) and reading the cases of an old database file (``old_database_cases``,
read-only; ``DatabaseError`` when it cannot be read).
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

    def privacy_replies(self, address: str) -> Iterator[sqlite3.Row]:
        """The outbox messages to ``address``, raw bytes included, in the order queued (lazily)."""
        return self.db.execute("SELECT * FROM outbox WHERE recipient=? ORDER BY id", (address,))

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
