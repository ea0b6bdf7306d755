"""Memory: an in-memory mail server double — a mailbox and an SMTP server in one object.

Owns: ``MemoryServer``, which holds folders of messages (each folder with its UIDVALIDITY and
ascending UIDs, every message with its raw bytes, flags and INTERNALDATE — the moment it was
delivered, on the server's clock) and the mail sent through it, and the sessions it opens
through ``MemoryServer.wire()`` (a ``wire.Wire``): ``MemoryMailbox`` keeps the contract of
``mailbox.Mailbox`` (``Fetched`` objects, reading leaves \\Seen alone, moves keep the bytes,
the Sent folder found by its special use or a usual name, IDLE) and ``MemorySmtp`` that of
``smtp.Smtp`` (lazy connection, ``SendRefused`` permanent or temporary for one message,
``ConnectionFailure`` when the server cannot be reached or the password is wrong).

A test delivers mail (``deliver``), reads folders (``count``, ``messages_in``, ``stored`` with
flags), reads what was sent (``messages``, each with ``mail_from``, ``rcpt_tos`` and ``data`` as
on the embedded aiosmtpd server), tells the server to refuse a recipient (``refuse``: 550 for
good or 451 for now; ``accept``), makes it unreachable (``smtp_down``, ``imap_down``), makes a
folder again with a new UIDVALIDITY (``delete_folder``, ``create_folder``) or sees a session
waiting in IDLE (``idling``). Pure Python, no sockets, no
event loop; safe to share between threads (the service's IDLE thread and its cycles). OAuth2
sign-in is not simulated: a session configured for it is let in. What crosses the wire (TLS,
SASL, MOVE without the capability, modified UTF-7, a dropped connection) stays with the tests
over the real servers (``servers.py``, Dovecot).
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.message import EmailMessage
from typing import Callable

from ..config import ImapConfig, SmtpConfig
from ..errors import ConnectionFailure
from . import addresses
from .credentials import server_password
from .mailbox import SENT_NAMES, Fetched, NoIdle
from .smtp import SendRefused
from .wire import Wire

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Stored:
    """One message in a folder, as the server keeps it."""

    uid: int
    raw: bytes
    internal_date: datetime
    flags: set[bytes] = field(default_factory=set)


@dataclass
class Folder:
    name: str
    uidvalidity: int
    special_use: str | None = None        # RFC 6154: "\\Sent", "\\Junk" ...
    uidnext: int = 1
    messages: dict[int, Stored] = field(default_factory=dict)


@dataclass
class Received:
    """One message the SMTP side accepted (the same fields as ``servers.Received``)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool = False


class MemoryServer:
    """The whole mail service of one agency mailbox, in memory.

    ``user``/``password``: the sign-in both sides accept (``password=None``: any). ``clock``:
    where INTERNALDATE comes from (a test passes its clock). ``smtputf8``: whether the SMTP side
    offers SMTPUTF8. ``idle``: whether the IMAP side offers IDLE."""

    def __init__(self, user: str = "saraban@example.go.th", password: str | None = None, *,
                 clock: Clock = _now, smtputf8: bool = False, idle: bool = True) -> None:
        self.user = user
        self.password = password
        self.clock = clock
        self.smtputf8 = smtputf8
        self.idle = idle
        self.smtp_down = False            # SMTP: connection refused
        self.imap_down = False            # IMAP: connection refused
        self.messages: list[Received] = []
        self.logins: list[str] = []       # SMTP sign-ins, as on the embedded server
        self.imap_logins: list[str] = []
        self.idling = 0                   # sessions waiting in IDLE now (a test waits for one)
        self._refusals: dict[str | None, bool] = {}   # address (None: everyone) -> permanent
        # UIDVALIDITY: a new value for every folder created, as servers do (pymap draws them at random)
        self._validity = itertools.count(random.SystemRandom().randrange(1, 2**31 - 2**20))
        self._folders: dict[str, Folder] = {}
        self._changed = threading.Condition(threading.RLock())
        self.create_folder("INBOX")

    # ------------------------------------------------------------------ the test's side

    def wire(self) -> Wire:
        """Factories that open sessions on this server (for ``Office.open(cfg, wire=...)``)."""
        return Wire(mailbox=lambda cfg: MemoryMailbox(self, cfg),
                    smtp=lambda cfg, sender: MemorySmtp(self, cfg, sender), name="memory")

    def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        """A folder (kept when it exists: its special use is set when given)."""
        with self._changed:
            folder = self._folders.get(name)
            if folder is None:
                folder = self._folders[name] = Folder(name, next(self._validity), special_use)
            elif special_use is not None:
                folder.special_use = special_use
            return folder

    def delete_folder(self, name: str) -> None:
        """Gone with its messages; created again, it has a new UIDVALIDITY and UIDs from 1."""
        with self._changed:
            self._folders.pop(name, None)

    def folder_names(self) -> set[str]:
        with self._changed:
            return set(self._folders)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self._changed:
            return self._folders[folder].uidvalidity

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "INBOX", when: datetime | None = None,
                flags: tuple[bytes, ...] = ()) -> list[int]:
        """Put messages into a folder (created when missing), INTERNALDATE ``when`` or now; their UIDs."""
        return [self._append(folder, bytes(m), flags, when) for m in messages]

    def count(self, folder: str) -> int:
        """Messages in a folder not marked \\Deleted (0 when there is no such folder)."""
        with self._changed:
            box = self._folders.get(folder)
            return 0 if box is None else sum(1 for m in box.messages.values() if b"\\Deleted" not in m.flags)

    def stored(self, folder: str) -> list[Stored]:
        """The messages of a folder in UID order (copies: changing them changes nothing)."""
        with self._changed:
            box = self._folders.get(folder)
            if box is None:
                return []
            return [Stored(m.uid, m.raw, m.internal_date, set(m.flags)) for _, m in sorted(box.messages.items())]

    def messages_in(self, folder: str) -> list[bytes]:
        return [m.raw for m in self.stored(folder)]

    def refuse(self, address: str | None = None, *, permanent: bool = True) -> None:
        """SMTP refuses mail to ``address`` (None: to everyone): 550 for good, or 451 for now."""
        self._refusals[address.lower() if address else None] = permanent

    def accept(self, address: str | None = None) -> None:
        """Stop refusing ``address`` (None: stop refusing anyone)."""
        if address is None:
            self._refusals.clear()
        else:
            self._refusals.pop(address.lower(), None)

    # ------------------------------------------------------------------ what the sessions use

    def _append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] | set[bytes] = (),
                when: datetime | None = None) -> int:
        when = when or self.clock()
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        with self._changed:
            box = self.create_folder(folder)
            uid = box.uidnext
            box.uidnext += 1
            # IMAP keeps INTERNALDATE to the second
            box.messages[uid] = Stored(uid, bytes(raw), when.replace(microsecond=0), set(flags))
            self._changed.notify_all()
            return uid

    def _folder(self, name: str) -> Folder:
        box = self._folders.get(name)
        if box is None:
            raise ConnectionFailure(f"ไม่พบโฟลเดอร์ '{name}' ในกล่องจดหมาย",
                                    f"folder '{name}' not found in the mailbox (imap.folder)")
        return box

    def _refusal(self, address: str) -> bool | None:
        if address.lower() in self._refusals:
            return self._refusals[address.lower()]
        return self._refusals.get(None)


def _headers_only(raw: bytes) -> bytes:
    """BODY[HEADER]: the header block with the empty line that ends it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, _ = raw.partition(sep)
        if found:
            return head + sep
    return raw


def _header_fields(raw: bytes, names: set[str]) -> bytes:
    """BODY[HEADER.FIELDS (...)]: those header lines (folded ones whole), then an empty line."""
    lines = _headers_only(raw).splitlines(keepends=True)
    out: list[bytes] = []
    keep = False
    for line in lines:
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        keep = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower() in names
        if keep:
            out.append(line)
    return b"".join(out) + b"\r\n"


class MemoryMailbox:
    """A mailbox session on a ``MemoryServer``; the contract of ``mailbox.Mailbox``."""

    beside_sending = False     # one thread at a time (the real servers' tests cover the other way)

    def __init__(self, server: MemoryServer, cfg: ImapConfig) -> None:
        self.server = server
        self.cfg = cfg
        self.uidvalidity: int | None = None
        self.selected: str | None = None
        self.mechanism = ""
        self.connected = False
        self._next_uid: int | None = None

    def __enter__(self) -> "MemoryMailbox":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        cfg, server = self.cfg, self.server
        where = f"{cfg.host}:{cfg.effective_port()}"
        if cfg.auth == "oauth2":
            if server.imap_down:
                raise _unreachable("IMAP", "เซิร์ฟเวอร์รับอีเมล (IMAP)", where, "imap")
            self.mechanism = "XOAUTH2"
        else:
            password = server_password(cfg, "imap")
            if server.imap_down:
                raise _unreachable("IMAP", "เซิร์ฟเวอร์รับอีเมล (IMAP)", where, "imap")
            if server.password is not None and (cfg.username != server.user or password != server.password):
                raise ConnectionFailure(
                    "เข้าสู่ระบบ IMAP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง (รหัสผ่านหมดอายุหรือต้องใช้ app password?)",
                    f"IMAP login failed for {cfg.username}: wrong user name or password (expired? app password needed?)",
                    reason="login", said="[AUTHENTICATIONFAILED] Authentication failed.")
            self.mechanism = "LOGIN"
        server.imap_logins.append(cfg.login_name())
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def _live(self) -> MemoryServer:
        assert self.connected, "not connected"
        if self.server.imap_down:      # the server went away under an open session
            self.connected = False
            raise ConnectionResetError("the IMAP server closed the connection")
        return self.server

    def _box(self) -> Folder:
        assert self.selected is not None, "no folder selected"
        return self._live()._folder(self.selected)

    # ------------------------------------------------------------------ reading

    def select(self, folder: str | None = None) -> int:
        folder = folder or self.cfg.folder
        with self._live()._changed:
            box = self.server._folder(folder)
            self.uidvalidity = box.uidvalidity
        self.selected = folder
        return self.uidvalidity

    def uids(self) -> list[int]:
        with self.server._changed:
            return sorted(u for u, m in self._box().messages.items() if b"\\Deleted" not in m.flags)

    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]:
        with self.server._changed:
            box = self._box()
            return {u: (len(box.messages[u].raw), box.messages[u].internal_date) for u in uids if u in box.messages}

    def fetch(self, uids: list[int]) -> dict[int, Fetched]:
        if not uids:
            return {}
        with self.server._changed:
            box = self._box()
            return {u: Fetched(u, box.messages[u].raw, box.messages[u].internal_date)
                    for u in uids if u in box.messages}

    # ------------------------------------------------------------------ waiting

    def watch(self) -> None:
        """As ``Mailbox.watch``: the watched folder selected, its next UID noted."""
        server = self._live()
        if not server.idle:
            raise NoIdle()
        with server._changed:
            if self._next_uid is None:
                self.select(self.cfg.folder)
                self._next_uid = self._box().uidnext

    def wait_for_new_mail(self, stop: threading.Event, rearm_seconds: float = 540) -> bool:
        """As ``Mailbox.wait_for_new_mail``: True when the watched folder holds a UID not seen before."""
        self.watch()
        server = self._live()
        with server._changed:
            def fresh() -> list[int]:
                box = server._folders.get(self.cfg.folder)
                return [u for u in box.messages if u >= (self._next_uid or 0)] if box is not None else []

            deadline = time.monotonic() + rearm_seconds
            server.idling += 1
            try:
                while not fresh() and not stop.is_set() and time.monotonic() < deadline:
                    if server.imap_down:
                        raise ConnectionResetError("the IMAP server closed the connection")
                    server._changed.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            finally:
                server.idling -= 1
            found = fresh()
        if found:
            self._next_uid = max(found) + 1
            return True
        return False

    # ------------------------------------------------------------------ folders

    def folders(self) -> set[str]:
        return self._live().folder_names()

    def ensure_folder(self, name: str) -> None:
        self._live().create_folder(name)

    def move(self, uids: list[int], folder: str) -> None:
        """Out of the selected folder into ``folder`` (created when missing), bytes, flags and
        INTERNALDATE kept, new UIDs there; UIDs no longer present are skipped (a repeated MOVE)."""
        if not uids:
            return
        self.ensure_folder(folder)
        server = self.server
        with server._changed:
            box = self._box()
            for uid in sorted(uids):
                message = box.messages.pop(uid, None)
                if message is not None:
                    server._append(folder, message.raw, message.flags - {b"\\Deleted"}, message.internal_date)

    def flag(self, uids: list[int]) -> None:
        with self.server._changed:
            box = self._box()
            for uid in uids:
                if uid in box.messages:
                    box.messages[uid].flags.add(b"\\Flagged")

    def sent_folder(self) -> str | None:
        wanted = self.cfg.sent_folder
        if wanted == "":
            return None
        names = self.folders()
        if wanted != "auto":
            return wanted if wanted in names else None
        with self.server._changed:
            special = sorted(f.name for f in self.server._folders.values() if f.special_use == "\\Sent")
        if special:
            return special[0]
        return next((name for name in SENT_NAMES if name in names), None)

    def recent_headers(self, count: int = 20) -> list[bytes]:
        with self.server._changed:
            box = self._box()
            return [_headers_only(box.messages[u].raw) for u in self.uids()[-count:]]

    def is_junk(self, folder: str) -> bool:
        from ..casework.trust import is_junk_folder

        with self._live()._changed:
            box = self.server._folders.get(folder)
            flags = [box.special_use] if box is not None and box.special_use else []
        return is_junk_folder(folder, flags)

    def sent_headers(self, limit: int = 20000) -> list[bytes]:
        folder = self.sent_folder()
        if not folder:
            return []
        names = {"subject", "to", "date", "message-id"}
        with self.server._changed:
            box = self.server._folder(folder)
            return [_header_fields(box.messages[u].raw, names) for u in sorted(box.messages)[-limit:]]

    def sent_headers_since(self, day: date) -> list[bytes]:
        folder = self.sent_folder()
        if not folder:
            return []
        names = {"subject", "to", "date", "message-id"}
        with self.server._changed:
            box = self.server._folder(folder)
            return [_header_fields(box.messages[u].raw, names) for u in sorted(box.messages)
                    if box.messages[u].internal_date.date() >= day]      # SEARCH SINCE: by the stored day

    def sent_subjects(self, message_id_part: str) -> list[str]:
        folder = self.sent_folder()
        if not folder:
            return []
        out = []
        with self.server._changed:
            box = self.server._folder(folder)
            for u in sorted(box.messages):
                msg = email.message_from_bytes(box.messages[u].raw, policy=email.policy.default)
                if message_id_part.lower() in str(msg.get("Message-ID", "")).lower():
                    out.append(str(msg["Subject"] or ""))
        return out

    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = (), when: datetime | None = None) -> None:
        self.ensure_folder(folder)
        self._live()._append(folder, raw, flags, when)

    def find_raw(self, folder: str, sha256: str, size: int) -> int | None:
        if folder not in self.folders():
            return None
        self.select(folder)
        with self.server._changed:
            for uid, message in sorted(self._box().messages.items()):
                if (b"\\Deleted" not in message.flags and len(message.raw) == size
                        and hashlib.sha256(message.raw).hexdigest() == sha256):
                    return uid
        return None

    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        server = self._live()
        with server._changed:
            server._folder(folder)        # APPEND to a folder that is not there: TRYCREATE
            server._append(folder, raw, (b"\\Seen",), when)

    def append_sent_many(self, folder: str, messages: list[bytes]) -> None:
        for raw in messages:
            self.append_sent(folder, raw)


class MemorySmtp:
    """An SMTP session on a ``MemoryServer``; the contract of ``smtp.Smtp``."""

    def __init__(self, server: MemoryServer, cfg: SmtpConfig, envelope_from: str) -> None:
        self.server = server
        self.cfg = cfg
        self.envelope_from = envelope_from
        self.mechanism = ""
        self.connected = False

    def __enter__(self) -> "MemorySmtp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        cfg, server = self.cfg, self.server
        password = server_password(cfg, "smtp") if cfg.username and cfg.auth == "password" else ""
        if server.smtp_down:
            raise _unreachable("SMTP", "เซิร์ฟเวอร์ส่งอีเมล (SMTP)", f"{cfg.host}:{cfg.effective_port()}", "smtp")
        if cfg.auth == "oauth2":
            self.mechanism = "XOAUTH2"
        elif cfg.username:
            if server.password is not None and (cfg.username != server.user or password != server.password):
                raise ConnectionFailure("เข้าสู่ระบบ SMTP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
                                        f"SMTP login failed for {cfg.username}: wrong user name or password "
                                        "(app password?)", reason="login", said="535 5.7.8 Authentication failed")
            self.mechanism = "LOGIN"
        if self.mechanism:
            server.logins.append(cfg.login_name())
        self.connected = True

    def open(self) -> None:
        """As ``Smtp.open``: connected and signed in."""
        if not self.connected:
            self.connect()

    def send(self, recipient: str, raw: bytes) -> None:
        """As ``Smtp.send``: SendRefused when this message is the problem, ConnectionFailure
        (a MailbotError) when the server cannot be reached."""
        bad = addresses.problem(recipient)
        if bad is not None:
            raise SendRefused(f"{bad[0]} / {bad[1]}", permanent=True)
        if not self.connected:
            self.connect()
        server = self.server
        if server.smtp_down:            # gone since the session opened: reconnect on the next send
            self.connected = False
            raise SendRefused("ConnectionResetError: the SMTP server closed the connection", permanent=False)
        form = addresses.envelope_form(recipient, server.smtputf8)
        if form is None:
            raise SendRefused("ชื่อผู้รับไม่ใช่อักษรอังกฤษ และเซิร์ฟเวอร์ส่งอีเมลไม่รองรับ SMTPUTF8 จึงส่งไม่ได้ / "
                              "undeliverable: non-ASCII local part and the SMTP server offers no SMTPUTF8",
                              permanent=True)
        address, utf8 = form
        with server._changed:
            permanent = server._refusal(address)
            if permanent is None and address != recipient:
                permanent = server._refusal(recipient)
            if permanent is True:
                raise SendRefused(f"(550, '5.1.1 <{address}>: Recipient address rejected')", permanent=True)
            if permanent is False:
                raise SendRefused(f"(451, '4.3.0 <{address}>: try again later')", permanent=False)
            server.messages.append(Received(self.envelope_from, [address], bytes(raw), utf8))

    def close(self) -> None:
        self.connected = False


def _unreachable(protocol: str, thai_name: str, where: str, section: str) -> ConnectionFailure:
    return ConnectionFailure(
        f"เชื่อมต่อ{thai_name} ไม่ได้: {where}",
        f"cannot connect to the {protocol} server {where}: ConnectionRefusedError: [Errno 111] Connection refused",
        f"ตรวจสอบ {section}.host, {section}.port และ {section}.security / "
        f"check {section}.host, {section}.port, {section}.security",
        reason="port_closed", said="[Errno 111] Connection refused",
    )
