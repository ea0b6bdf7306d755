"""Officers: console accounts (``officers``: name, scrypt salt, hash and parameters), their sign-in
sessions (``console_sessions``: by the token's hash) and the items an officer marked as dealt with
(``acknowledged``: a bounced mail, a quarantined message).

Owns: the statements on those three tables; hashing and checking passwords, and what a session
holds, are ``console.auth``'s.
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
                        "VALUES (?,?,?,0,0,0,?,?,?) ON CONFLICT (name) DO UPDATE SET salt=excluded.salt, "
                        "hash=excluded.hash, n=0, r=0, p=0, password_hash=excluded.password_hash, "
                        "changed_at=excluded.changed_at",
                        (name, b"", b"", password_hash, iso(now), iso(now)))

    def officer_is_admin(self, name: str) -> bool:
        """Whether this officer may change settings."""
        row = self.db.execute("SELECT admin FROM officers WHERE name=?", (name,)).fetchone()
        return bool(row and row[0])

    def set_officer_admin(self, name: str, admin: bool) -> None:
        self.db.execute("UPDATE officers SET admin=? WHERE name=?", (1 if admin else 0, name))

    def has_admin(self) -> bool:
        return self.db.execute("SELECT 1 FROM officers WHERE admin = 1 LIMIT 1").fetchone() is not None

    def upgrade_officer_hash(self, name: str, password_hash: str) -> None:
        """The same password, stored in the current format (``changed_at`` untouched)."""
        self.db.execute("UPDATE officers SET salt=?, hash=?, n=0, r=0, p=0, password_hash=? WHERE name=?",
                        (b"", b"", password_hash, name))

    def remove_officer(self, name: str) -> bool:
        """An officer's account deleted, and their sessions with it; False when there was none of that name."""
        self.drop_officer_sessions(name)
        return self.db.execute("DELETE FROM officers WHERE name=?", (name,)).rowcount != 0

    # ------------------------------------------------------------------ sessions

    def save_session(self, token_hash: str, csrf: str, officer: str | None, expires: float, flashes: str) -> None:
        """A session begun (or written again whole)."""
        self.db.execute("INSERT INTO console_sessions (token_hash, csrf, officer, expires, flashes) VALUES (?,?,?,?,?) "
                        "ON CONFLICT (token_hash) DO UPDATE SET csrf=excluded.csrf, officer=excluded.officer, "
                        "expires=excluded.expires, flashes=excluded.flashes", (token_hash, csrf, officer, expires, flashes))

    def console_session(self, token_hash: str) -> sqlite3.Row | None:
        """A session by its token's hash (expired or not), or None."""
        return self.db.execute("SELECT * FROM console_sessions WHERE token_hash=?", (token_hash,)).fetchone()

    def update_session(self, token_hash: str, expires: float, flashes: str) -> None:
        """A session's expiry moved on and its waiting flash messages replaced."""
        self.db.execute("UPDATE console_sessions SET expires=?, flashes=? WHERE token_hash=?",
                        (expires, flashes, token_hash))

    def drop_session(self, token_hash: str) -> None:
        """A session ended (signed out, expired, replaced on sign-in)."""
        self.db.execute("DELETE FROM console_sessions WHERE token_hash=?", (token_hash,))

    def drop_officer_sessions(self, name: str) -> None:
        """Every session of one officer ended (their account removed, their password changed)."""
        self.db.execute("DELETE FROM console_sessions WHERE officer=?", (name,))

    def drop_sessions_before(self, moment: float) -> int:
        """Sessions that expired before ``moment`` (a Unix time) forgotten; how many."""
        return self.db.execute("DELETE FROM console_sessions WHERE expires<?", (moment,)).rowcount

    def end_sessions(self) -> None:
        """Every session ends now (an officer's password reset; tests)."""
        self.db.execute("UPDATE console_sessions SET expires=0")

    # ------------------------------------------------------------------ acknowledged

    def acknowledge(self, kind: str, ref: int, actor: str, now: datetime) -> None:
        """An item of the work queue marked as dealt with (the first officer's mark stays)."""
        self.db.execute("INSERT OR IGNORE INTO acknowledged (kind, ref, actor, at) VALUES (?,?,?,?)",
                        (kind, ref, actor, iso(now)))

    def forget_acknowledged(self, kind: str, ref: int) -> None:
        """An item's mark removed (it needs an officer again)."""
        self.db.execute("DELETE FROM acknowledged WHERE kind=? AND ref=?", (kind, ref))
