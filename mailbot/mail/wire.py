"""Wire: how an office reaches its mail servers — the one seam between the core and IMAP/SMTP.

Owns: what the rest of mailbot may ask of a mailbox session (``MailboxSession``: the methods of
``mailbox.Mailbox`` it uses) and of an SMTP session (``SmtpSession``: those of ``smtp.Smtp``),
and ``Wire``, a pair of factories that open them from the configuration. ``REAL`` (the default
everywhere) opens the real IMAP and SMTP sessions; ``memory.MemoryServer.wire()`` opens sessions
on an in-memory double, so that the cycle's logic is tested without sockets and without
patching anything. A ``Wire`` is handed down explicitly (``app.Office.open(cfg, wire=...)``,
``app.run_cycle``, ``ops.daemon.Daemon``, ``ops.checks.run_checks``, the console); there is no
global to set. With ``mailbox: graph`` in the configuration, ``REAL`` opens the Microsoft Graph
sessions instead (``graph.GraphMailbox``, ``graph.GraphSender``: the same contracts over HTTPS);
``graph_wire()`` makes a Graph wire with its own clock, sleeper and token source (the tests').
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    import threading

    from ..config import ImapConfig, SmtpConfig
    from .mailbox import Fetched


class MailboxSession(Protocol):
    """One IMAP session with one selected folder (contract: ``mailbox.Mailbox``)."""

    mechanism: str
    # its moves and appends may run in a thread of their own while the cycle sends mail (it
    # shares nothing with the sender or the database): the IMAP mailbox, not Graph's
    beside_sending: bool

    def __enter__(self) -> "MailboxSession": ...
    def __exit__(self, *exc: object) -> None: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def select(self, folder: str | None = None) -> int: ...
    def uids(self) -> list[int]: ...
    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]: ...
    def fetch(self, uids: list[int]) -> dict[int, "Fetched"]: ...
    def watch(self) -> None: ...
    def wait_for_new_mail(self, stop: "threading.Event", rearm_seconds: float = 540) -> bool: ...
    def folders(self) -> set[str]: ...
    def ensure_folder(self, name: str) -> None: ...
    def move(self, uids: list[int], folder: str) -> None: ...
    def flag(self, uids: list[int]) -> None: ...
    def sent_folder(self) -> str | None: ...
    def recent_headers(self, count: int = 20) -> list[bytes]: ...
    def is_junk(self, folder: str) -> bool: ...
    def sent_headers(self, limit: int = 20000) -> list[bytes]: ...
    def sent_headers_since(self, day: date) -> list[bytes]: ...
    def sent_subjects(self, message_id_part: str) -> list[str]: ...
    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = (), when: datetime | None = None) -> None: ...
    def find_raw(self, folder: str, sha256: str, size: int) -> int | None: ...
    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None: ...
    def append_sent_many(self, folder: str, messages: list[bytes]) -> None: ...


class SmtpSession(Protocol):
    """One lazily opened SMTP session (contract: ``smtp.Smtp``): ``send`` raises
    ``smtp.SendRefused`` when one message is refused, ``errors.ConnectionFailure`` when the
    server cannot be reached or refuses the sign-in, and ``smtp.SendLater`` when it may send no
    more for now (a rate cap: the round stops, the rest stays queued, nothing is counted)."""

    mechanism: str

    def __enter__(self) -> "SmtpSession": ...
    def __exit__(self, *exc: object) -> None: ...
    def connect(self) -> None: ...
    def open(self) -> None: ...
    def send(self, recipient: str, raw: bytes) -> None: ...
    def close(self) -> None: ...


def _graph_configured(cfg: "ImapConfig | SmtpConfig") -> bool:
    return getattr(cfg.root, "mailbox", "imap") == "graph"


def _imap(cfg: "ImapConfig") -> MailboxSession:
    if _graph_configured(cfg):            # mailbox: graph: the same contract over Microsoft Graph
        from .graph import DEFAULT

        return DEFAULT.mailbox(cfg)
    from .mailbox import Mailbox  # imapclient loads only where a real session is opened

    return Mailbox(cfg)


def _smtp(cfg: "SmtpConfig", envelope_from: str) -> SmtpSession:
    if _graph_configured(cfg):
        from .graph import DEFAULT

        return DEFAULT.smtp(cfg, envelope_from)
    from .smtp import Smtp  # aiosmtplib likewise

    return Smtp(cfg, envelope_from)


@dataclass(frozen=True)
class Wire:
    """Factories for the two sessions: ``mailbox(imap config)`` and ``smtp(smtp config, envelope sender)``."""

    mailbox: Callable[["ImapConfig"], MailboxSession] = _imap
    smtp: Callable[["SmtpConfig", str], SmtpSession] = _smtp
    name: str = "IMAP/SMTP"


REAL = Wire()


def graph_wire(**options: object) -> Wire:
    """A wire to Microsoft Graph whatever the configuration says, with its own ``graph.Wiring``
    (``options``: its token source, clock, sleeper and limits; a test's), so that its sessions
    share Microsoft's per-mailbox limits with each other and with no one else."""
    from .graph import Wiring

    wiring = Wiring(**options)  # type: ignore[arg-type]
    return Wire(mailbox=wiring.mailbox, smtp=wiring.smtp, name="Microsoft Graph")
