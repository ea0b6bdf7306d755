"""Wire: how an office reaches its mail servers — the one seam between the core and IMAP/SMTP.

Owns: what the rest of mailbot may ask of a mailbox session (``MailboxSession``: the methods of
``mailbox.Mailbox`` it uses) and of an SMTP session (``SmtpSession``: those of ``smtp.Smtp``),
and ``Wire``, a pair of factories that open them from the configuration. ``REAL`` (the default
everywhere) opens the real IMAP and SMTP sessions; ``memory.MemoryServer.wire()`` opens sessions
on an in-memory double, so that the cycle's logic is tested without sockets and without
patching anything. A ``Wire`` is handed down explicitly (``app.Office.open(cfg, wire=...)``,
``app.run_cycle``, ``ops.daemon.Daemon``, ``ops.checks.run_checks``, the console); there is no
global to set.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    import threading

    from ..config import ImapConfig, SmtpConfig
    from .mailbox import Fetched


class MailboxSession(Protocol):
    """One IMAP session with one selected folder (contract: ``mailbox.Mailbox``)."""

    mechanism: str

    def __enter__(self) -> "MailboxSession": ...
    def __exit__(self, *exc: object) -> None: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def select(self, folder: str | None = None) -> int: ...
    def uids(self) -> list[int]: ...
    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]: ...
    def fetch(self, uids: list[int]) -> dict[int, "Fetched"]: ...
    def wait_for_new_mail(self, stop: "threading.Event", rearm_seconds: float = 540) -> bool: ...
    def folders(self) -> set[str]: ...
    def ensure_folder(self, name: str) -> None: ...
    def move(self, uids: list[int], folder: str) -> None: ...
    def flag(self, uids: list[int]) -> None: ...
    def sent_folder(self) -> str | None: ...
    def recent_headers(self, count: int = 20) -> list[bytes]: ...
    def is_junk(self, folder: str) -> bool: ...
    def sent_headers(self, limit: int = 20000) -> list[bytes]: ...
    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = (), when: datetime | None = None) -> None: ...
    def find_raw(self, folder: str, sha256: str, size: int) -> int | None: ...
    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None: ...
    def append_sent_many(self, folder: str, messages: list[bytes]) -> None: ...


class SmtpSession(Protocol):
    """One lazily opened SMTP session (contract: ``smtp.Smtp``): ``send`` raises
    ``smtp.SendRefused`` when one message is refused, ``errors.ConnectionFailure`` when the
    server cannot be reached or refuses the sign-in."""

    mechanism: str

    def __enter__(self) -> "SmtpSession": ...
    def __exit__(self, *exc: object) -> None: ...
    def connect(self) -> None: ...
    def send(self, recipient: str, raw: bytes) -> None: ...
    def close(self) -> None: ...


def _imap(cfg: "ImapConfig") -> MailboxSession:
    from .mailbox import Mailbox   # imapclient loads only where a real session is opened

    return Mailbox(cfg)


def _smtp(cfg: "SmtpConfig", envelope_from: str) -> SmtpSession:
    from .smtp import Smtp         # aiosmtplib likewise

    return Smtp(cfg, envelope_from)


@dataclass(frozen=True)
class Wire:
    """Factories for the two sessions: ``mailbox(imap config)`` and ``smtp(smtp config, envelope sender)``."""

    mailbox: Callable[["ImapConfig"], MailboxSession] = _imap
    smtp: Callable[["SmtpConfig", str], SmtpSession] = _smtp
    name: str = "IMAP/SMTP"


REAL = Wire()
