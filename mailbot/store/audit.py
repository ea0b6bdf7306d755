"""Audit (store): the audit log as methods of ``State``, signed with the chain's key.

Owns: ``AuditStore`` — appending an entry inside the caller's transaction (HMAC-SHA256 with the
key the core keeps in the credential store, from the first entry it signs), the head, and
verification; the chain itself (hashing, the start for a database older than the log, the
walk) is ``chain.py``'s, which the migrations use too.
"""
from __future__ import annotations

import sqlite3

from collections.abc import Sequence
from datetime import datetime

from .chain import (
    GENESIS,
    REGISTRATION_ACTIONS,
    Verification,
    append,
    head,
    head_text,
    registration,
    start_chain,
    subject_sha,
    verify,
)
from .db import Database

__all__ = ["GENESIS", "REGISTRATION_ACTIONS", "AuditStore", "Verification", "append", "head", "head_text",
           "registration", "start_chain", "subject_sha", "verify"]


class AuditStore(Database):
    """The ``audit`` table as methods of ``State`` (each inside the caller's transaction)."""

    audit_key: tuple[bytes, int] | None = None     # (the chain's key, the first entry it signs)

    def use_audit_key(self, key: bytes, keyed_from: int) -> None:
        """Sign entries from ``keyed_from`` on with ``key`` (kept outside the database by the core)."""
        self.audit_key = (key, keyed_from)

    def audit(self, at: datetime | str, actor: str, action: str, ref: str = "", detail: dict | None = None) -> str:
        """One entry in the log, inside the current transaction; returns its hash."""
        key = self.audit_key[0] if self.audit_key is not None else None
        return append(self.db, at, actor, action, ref, detail, key)

    def audit_rows(self, action: str | None = None, limit: int = 200) -> list[sqlite3.Row]:
        """The latest entries (of one ``action``), newest first."""
        if action is None:
            return self.db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return self.db.execute("SELECT * FROM audit WHERE action = ? ORDER BY id DESC LIMIT ?",
                               (action, limit)).fetchall()

    def audit_head(self) -> tuple[int, str]:
        return head(self.db)

    def audit_head_text(self) -> str:
        return head_text(self.db)

    def audit_hashes(self) -> dict[int, str]:
        """Every entry's hash by id (a restore compares the heads recorded elsewhere with them)."""
        return {row[0]: row[1] for row in self.db.execute("SELECT id, hash FROM audit")}

    def audit_verify(self, recorded_heads: Sequence[tuple[str, int, str]] = (),
                     keyed_from: int | None = None) -> Verification:
        """The chain checked (``keyed_from``: where its key starts, when the key itself is lost)."""
        if self.audit_key is not None:
            return verify(self.db, recorded_heads, self.audit_key[0], self.audit_key[1])
        return verify(self.db, recorded_heads, None, keyed_from)
