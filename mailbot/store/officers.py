"""Officers: console accounts (``officers``: name, scrypt salt, hash and parameters) and the items
an officer marked as dealt with (``acknowledged``: a bounced mail, a quarantined message).

Owns: the statements on those two tables; hashing and checking passwords is ``console.auth``'s.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime

from .db import Database, iso


class OfficerStore(Database):
    """The ``officers`` and ``acknowledged`` tables."""

    # ------------------------------------------------------------------ officers

    def officer_names(self) -> list[str]:
        """Every officer's name, in order."""
        return [r[0] for r in self.db.execute("SELECT name FROM officers ORDER BY name")]

    def has_officers(self) -> bool:
        """Whether any officer account exists."""
        return self.db.execute("SELECT 1 FROM officers LIMIT 1").fetchone() is not None

    def officer_exists(self, name: str) -> bool:
        """Whether an officer of this name exists."""
        return self.db.execute("SELECT 1 FROM officers WHERE name=?", (name,)).fetchone() is not None

    def officer_login(self, name: str) -> sqlite3.Row | None:
        """An officer's name and password hash (``password_hash``; before it, salt, hash and the
        scrypt parameters n, r, p), or None."""
        return self.db.execute("SELECT name, password_hash, salt, hash, n, r, p FROM officers WHERE name=?",
                               (name,)).fetchone()

    def save_officer(self, name: str, password_hash: str, now: datetime) -> None:
        """An officer added, or their password hash replaced (``changed_at`` is ``now``); the
        columns of the older format are emptied."""
        self.db.execute("INSERT INTO officers (name, salt, hash, n, r, p, password_hash, created_at, changed_at) "
                        "VALUES (?,x'',x'',0,0,0,?,?,?) ON CONFLICT (name) DO UPDATE SET salt=x'', hash=x'', n=0, r=0, "
                        "p=0, password_hash=excluded.password_hash, changed_at=excluded.changed_at",
                        (name, password_hash, iso(now), iso(now)))

    def upgrade_officer_hash(self, name: str, password_hash: str) -> None:
        """The same password, stored in the current format (``changed_at`` untouched)."""
        self.db.execute("UPDATE officers SET salt=x'', hash=x'', n=0, r=0, p=0, password_hash=? WHERE name=?",
                        (password_hash, name))

    def remove_officer(self, name: str) -> bool:
        """An officer's account deleted; False when there was none of that name."""
        return self.db.execute("DELETE FROM officers WHERE name=?", (name,)).rowcount != 0

    # ------------------------------------------------------------------ acknowledged

    def acknowledge(self, kind: str, ref: int, actor: str, now: datetime) -> None:
        """An item of the work queue marked as dealt with (the first officer's mark stays)."""
        self.db.execute("INSERT OR IGNORE INTO acknowledged (kind, ref, actor, at) VALUES (?,?,?,?)",
                        (kind, ref, actor, iso(now)))

    def forget_acknowledged(self, kind: str, ref: int) -> None:
        """An item's mark removed (it needs an officer again)."""
        self.db.execute("DELETE FROM acknowledged WHERE kind=? AND ref=?", (kind, ref))
