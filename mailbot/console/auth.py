"""Console accounts and sign-in sessions.

Owns: officer accounts in the state database (table ``officers``, migrations 7 and 12; the
statements are in ``store.officers``): the password hashed by ``werkzeug.security`` (scrypt,
memory-hard, a salt of its own, compared in constant time; an account made before it, hashed
by hand with scrypt, is verified that way once and stored in the new form); the sign-in sessions,
each with its own CSRF token, an expiry and the flash messages waiting for the next page, kept in
the state database (``store.officers``, migration 16) by the token's SHA-256 only, so that a
restart of the console or the service signs no one out and removing an officer ends their
sessions in every process; and a brake on repeated wrong passwords.
No Flask here: the command line (``mailbot console user add``) uses it too.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ConfigError, MailbotError
from ..store import State

METHOD = "scrypt:32768:8:1"      # werkzeug.security: 32 MiB per hash, about 0.1 s
MIN_PASSWORD = 8


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(unicodedata.normalize("NFC", password).encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=2 * 128 * r * n + 1024 * 1024, dklen=32)


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", " ".join((name or "").split()))
    if not 1 <= len(name) <= 64 or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise ConfigError("ชื่อเจ้าหน้าที่ต้องมี 1–64 ตัวอักษร ไม่มีอักขระควบคุม",
                          "an officer's name must be 1-64 characters, no control characters")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"รหัสผ่านต้องยาวอย่างน้อย {MIN_PASSWORD} ตัวอักษร",
                          f"the password must be at least {MIN_PASSWORD} characters")


def officers(state: State) -> list[str]:
    return state.officer_names()


def has_officers(state: State) -> bool:
    return state.has_officers()


def _hash(password: str) -> str:
    return generate_password_hash(unicodedata.normalize("NFC", password), method=METHOD)


def set_password(state: State, name: str, password: str, now: datetime, *, new: bool,
                 admin: bool | None = None) -> None:
    """Add an officer (``new``) or change an officer's password; ``admin``: may change settings
    (the first account of an office always may, so that someone can)."""
    name = check_name(name)
    check_password(password)
    hashed = _hash(password)
    with state.tx():
        exists = state.officer_exists(name)
        if new and exists:
            raise ConfigError(f"มีเจ้าหน้าที่ชื่อ {name} แล้ว (เปลี่ยนรหัสผ่านด้วย: mailbot console user passwd)",
                              f"officer {name!r} exists already (change the password with: mailbot console user passwd)")
        if not new and not exists:
            raise ConfigError(f"ไม่พบเจ้าหน้าที่ชื่อ {name}", f"no officer named {name!r}")
        state.save_officer(name, hashed, now)
        if admin is not None or not state.has_admin():
            state.set_officer_admin(name, True if admin is None else admin)
        if not new:                  # a new password: whoever signed in with the old one signs in again
            state.drop_officer_sessions(name)


def remove(state: State, name: str) -> None:
    with state.tx():
        if not state.remove_officer(check_name(name)):
            raise ConfigError(f"ไม่พบเจ้าหน้าที่ชื่อ {name}", f"no officer named {name!r}")


_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method="scrypt:32768:8:1")


def verify(state: State, name: str, password: str) -> str | None:
    """The officer's stored name when the password is right, else None (the same work is done
    for an unknown name, so timing tells nothing)."""
    try:
        name = check_name(name)
    except MailbotError:
        return None
    row = state.officer_login(name)
    text = unicodedata.normalize("NFC", password)
    if row is None:
        check_password_hash(_DUMMY_HASH, text)
        return None
    if row["password_hash"]:
        return row["name"] if check_password_hash(row["password_hash"], text) else None
    # an account from before werkzeug's hashes: scrypt by hand, then stored in the new form
    digest = _scrypt(password, bytes(row["salt"]), row["n"], row["r"], row["p"])
    if not hmac.compare_digest(digest, bytes(row["hash"])):
        return None
    with state.tx():
        state.upgrade_officer_hash(row["name"], _hash(password))
    return row["name"]


@dataclass
class Session:
    token: str
    csrf: str
    officer: str | None          # None: no accounts, loopback only (the OS user acts)
    expires: float               # time.time()
    flashes: list[tuple[str, str]] = field(default_factory=list)   # (level, text) shown once
    stored: tuple[float, str] = (0.0, "[]")                        # (expires, flashes) as last written


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _flashes_json(flashes: list[tuple[str, str]]) -> str:
    return json.dumps([list(f) for f in flashes], ensure_ascii=False)


class Sessions:
    """Sign-in sessions in the state database, each with its CSRF token; expired ones are forgotten.
    Every method takes the request's ``State``; ``save`` writes what a request changed (the
    sliding expiry, flash messages) and nothing when nothing did."""

    def __init__(self, minutes: int, clock=time.time) -> None:
        self.seconds = minutes * 60
        self.clock = clock

    def new(self, state: State, officer: str | None) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), officer, now + self.seconds)
        with state.tx(durable=False):
            state.drop_sessions_before(now)
            state.save_session(_hash_token(s.token), s.csrf, officer, s.expires, "[]")
        s.stored = (s.expires, "[]")
        return s

    def get(self, state: State, token: str | None) -> Session | None:
        if not token or len(token) > 200:
            return None
        row = state.console_session(_hash_token(token))
        if row is None:
            return None
        now = self.clock()
        if row["expires"] < now:
            with state.tx(durable=False):
                state.drop_session(row["token_hash"])
            return None
        try:
            flashes = [(str(level), str(text)) for level, text in json.loads(row["flashes"] or "[]")]
        except (ValueError, TypeError):      # a value read back from disk never breaks the page
            flashes = []
        s = Session(token, row["csrf"], row["officer"], row["expires"], flashes, (row["expires"], row["flashes"]))
        if s.officer is not None and s.expires < now + self.seconds / 2:   # sliding: an active officer stays
            s.expires = now + self.seconds
        return s

    def save(self, state: State, s: Session) -> None:
        """What this request changed in the session, written (only when something did)."""
        flashes = _flashes_json(s.flashes)
        if (s.expires, flashes) == s.stored:
            return
        with state.tx(durable=False):
            state.update_session(_hash_token(s.token), s.expires, flashes)
        s.stored = (s.expires, flashes)

    def drop(self, state: State, token: str | None) -> None:
        if token:
            with state.tx(durable=False):
                state.drop_session(_hash_token(token))

    def expire_all(self, state: State) -> None:
        """Every session ends now (tests; a password reset)."""
        with state.tx():
            state.end_sessions()


class Throttle:
    """After 5 wrong passwords for a name within 15 minutes, that name waits 5 minutes."""

    def __init__(self, tries: int = 5, window: float = 900, pause: float = 300) -> None:
        self.tries, self.window, self.pause = tries, window, pause
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str) -> int:
        with self._lock:
            now = time.time()
            fails = [t for t in self._fails.get(name.lower(), []) if now - t < self.window]
            self._fails[name.lower()] = fails
            left = fails[-1] + self.pause - now if len(fails) >= self.tries else 0
            return int(left) + 1 if left > 0 else 0

    def failed(self, name: str) -> None:
        with self._lock:
            self._fails.setdefault(name.lower(), []).append(time.time())

    def ok(self, name: str) -> None:
        with self._lock:
            self._fails.pop(name.lower(), None)
