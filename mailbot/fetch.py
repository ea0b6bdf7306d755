"""Fetch: the IMAP session (the only imapclient user).

Owns: connecting with the configured security, selecting the watched folder and reading its
UIDVALIDITY, listing UIDs, fetching raw bytes in batches with BODY.PEEK (nothing is marked
read), creating outcome folders, moving messages by UID set (MOVE, or COPY + \\Deleted +
EXPUNGE when the server lacks MOVE), and appending copies of replies to the Sent folder.
Folder names may be Thai: imapclient encodes them in modified UTF-7.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from .config import ImapConfig
from .errors import ConnectionFailure, MailbotError
from .send import tls_context

# what a lost or broken IMAP connection raises, for callers that must tell it apart
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, IMAPClientError)

SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "INBOX.Sent", "รายการที่ส่ง", "ส่งแล้ว")


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    internal_date: datetime | None


class NoIdle(Exception):
    """The IMAP server does not offer IDLE."""


class Mailbox:
    """One IMAP connection, one selected folder; use as a context manager."""

    def __init__(self, cfg: ImapConfig) -> None:
        self.cfg = cfg
        self.client: IMAPClient | None = None
        self.uidvalidity: int | None = None
        self._folders: set[str] | None = None
        self.use_move: bool | None = None  # None: use MOVE when the server offers it
        self._next_uid: int | None = None    # wait_for_new_mail: the first UID not yet seen

    # ------------------------------------------------------------------ session

    def __enter__(self) -> "Mailbox":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.effective_port()}"
        password = cfg.require_secret("imap")
        try:
            client = IMAPClient(
                cfg.host,
                port=cfg.effective_port(),
                ssl=cfg.security == "ssl",
                ssl_context=tls_context(cfg.verify_tls) if cfg.security == "ssl" else None,
                timeout=cfg.timeout_seconds,
            )
            if cfg.security == "starttls":
                client.starttls(tls_context(cfg.verify_tls))
        except (OSError, socket.timeout, ssl.SSLError, IMAPClientError) as exc:
            raise ConnectionFailure(
                f"เชื่อมต่อเซิร์ฟเวอร์รับอีเมล (IMAP) ไม่ได้: {where}",
                f"cannot connect to the IMAP server {where}: {type(exc).__name__}: {str(exc)[:160]}",
                "ตรวจสอบ imap.host, imap.port และ imap.security / check imap.host, imap.port, imap.security",
            ) from None
        client.normalise_times = False
        try:
            client.login(cfg.username, password)
        except (LoginError, IMAPClientError):
            raise ConnectionFailure(
                "เข้าสู่ระบบ IMAP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง (รหัสผ่านหมดอายุหรือต้องใช้ app password?)",
                f"IMAP login failed for {cfg.username}: wrong user name or password (expired? app password needed?)",
            ) from None
        except OSError as exc:
            raise ConnectionFailure(
                "การเชื่อมต่อ IMAP ขาดระหว่างเข้าสู่ระบบ",
                f"IMAP connection lost during login: {type(exc).__name__}",
            ) from None
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:
                pass
            self.client = None

    @property
    def c(self) -> IMAPClient:
        assert self.client is not None, "not connected"
        return self.client

    # ------------------------------------------------------------------ reading

    def select(self, folder: str | None = None) -> int:
        folder = folder or self.cfg.folder
        try:
            info = self.c.select_folder(folder)
        except IMAPClientError:
            raise ConnectionFailure(
                f"ไม่พบโฟลเดอร์ '{folder}' ในกล่องจดหมาย",
                f"folder '{folder}' not found in the mailbox (imap.folder)",
            ) from None
        self.uidvalidity = int(info[b"UIDVALIDITY"])
        return self.uidvalidity

    def uids(self) -> list[int]:
        return sorted(int(u) for u in self.c.search(["NOT", "DELETED"]))

    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]:
        """RFC822.SIZE and INTERNALDATE of each UID (cheap: no bodies): batches are kept within a
        byte budget, and mail older than imap.since is told apart."""
        out: dict[int, tuple[int, datetime | None]] = {}
        for i in range(0, len(uids), 1000):
            data = self.c.fetch(uids[i:i + 1000], ["RFC822.SIZE", "INTERNALDATE"])
            for u, v in data.items():
                when = v.get(b"INTERNALDATE")
                if isinstance(when, datetime) and when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                out[int(u)] = (int(v.get(b"RFC822.SIZE", 0)), when if isinstance(when, datetime) else None)
        return out

    def fetch(self, uids: list[int]) -> dict[int, Fetched]:
        """Raw bytes of the given UIDs in one pipelined FETCH; BODY.PEEK leaves \\Seen alone."""
        if not uids:
            return {}
        data = self.c.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        out: dict[int, Fetched] = {}
        for uid, item in data.items():
            raw = item.get(b"BODY[]")
            if raw is None:
                continue
            when = item.get(b"INTERNALDATE")
            if isinstance(when, datetime) and when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            out[int(uid)] = Fetched(int(uid), bytes(raw), when)
        return out

    # ------------------------------------------------------------------ waiting

    def wait_for_new_mail(self, stop: threading.Event, rearm_seconds: float = 540) -> bool:
        """Wait in IMAP IDLE until the watched folder holds a message with a UID not seen before,
        ``stop`` is set, or ``rearm_seconds`` pass (IDLE is renewed well before servers drop it).
        True when there is new mail.

        New mail is decided by UIDs, never by counting EXISTS against EXPUNGE: our own moves
        shrink the folder while mail arrives, and responses that come with DONE are not lost."""
        if not self.c.has_capability("IDLE"):
            raise NoIdle()
        if self._next_uid is None:
            info = self.c.select_folder(self.cfg.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
            self._next_uid = int(info.get(b"UIDNEXT") or 0) or (max(self.uids(), default=0) + 1)
        self.c.idle()
        try:
            deadline = time.monotonic() + rearm_seconds
            while not stop.is_set() and time.monotonic() < deadline:
                responses = self.c.idle_check(timeout=1)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
        finally:
            self.c.idle_done()
        fresh = [int(u) for u in self.c.search(["UID", f"{self._next_uid}:*"]) if int(u) >= self._next_uid]
        if fresh:
            self._next_uid = max(fresh) + 1
            return True
        return False

    # ------------------------------------------------------------------ folders

    def folders(self) -> set[str]:
        if self._folders is None:
            self._folders = {name for _flags, _delim, name in self.c.list_folders()}
        return self._folders

    def ensure_folder(self, name: str) -> None:
        if name in self.folders():
            return
        try:
            self.c.create_folder(name)
        except IMAPClientError as exc:
            self._folders = None
            if name not in self.folders():
                raise MailbotError(
                    f"สร้างโฟลเดอร์ '{name}' บนเซิร์ฟเวอร์อีเมลไม่ได้ ตรวจสอบชื่อในส่วน folders ของ mailbot.yaml",
                    f"cannot create folder '{name}' on the mail server ({str(exc)[:120]}); check folders: in mailbot.yaml",
                ) from None
        try:
            self.c.subscribe_folder(name)
        except IMAPClientError:
            pass
        self.folders().add(name)

    def move(self, uids: list[int], folder: str) -> None:
        """Move by UID set; on servers without MOVE: COPY, flag \\Deleted, expunge."""
        if not uids:
            return
        self.ensure_folder(folder)
        if self.use_move is not False and self.c.has_capability("MOVE"):
            self.c.move(uids, folder)
            return
        self.c.copy(uids, folder)
        self.c.add_flags(uids, [b"\\Deleted"], silent=True)
        if self.c.has_capability("UIDPLUS"):
            self.c.uid_expunge(uids)
        else:
            self.c.expunge()

    def flag(self, uids: list[int]) -> None:
        """Mark messages \\Flagged (webmail shows them starred), leaving them where they are."""
        if uids:
            self.c.add_flags(uids, [b"\\Flagged"], silent=True)

    def sent_folder(self) -> str | None:
        """Where copies of replies go: configured, the server's \\Sent, a usual name, or None."""
        wanted = self.cfg.sent_folder
        if wanted == "":
            return None
        if wanted != "auto":
            return wanted if wanted in self.folders() else None
        try:
            special = self.c.find_special_folder(SENT)
        except IMAPClientError:
            special = None
        if special:
            return special
        for name in SENT_NAMES:
            if name in self.folders():
                return name
        return None

    def recent_headers(self, count: int = 20) -> list[bytes]:
        """The headers of the newest messages in the watched folder (read-only: \\Seen untouched)."""
        uids = self.uids()[-count:]
        if not uids:
            return []
        data = self.c.fetch(uids, ["BODY.PEEK[HEADER]"])
        return [bytes(v[b"BODY[HEADER]"]) for v in data.values() if v.get(b"BODY[HEADER]")]

    def is_junk(self, folder: str) -> bool:
        """The folder is the server's Junk (spam) folder, by its special-use flag or its name."""
        from .trust import is_junk_folder

        for flags, _delim, name in self.c.list_folders():
            if name == folder:
                return is_junk_folder(name, [f.decode() if isinstance(f, bytes) else f for f in flags])
        return is_junk_folder(folder)

    def sent_headers(self, limit: int = 20000) -> list[bytes]:
        """The headers (Subject, To, Date) of the newest copies in the Sent folder, read-only;
        the watched folder is selected again afterwards."""
        folder = self.sent_folder()
        if not folder:
            return []
        try:
            self.c.select_folder(folder, readonly=True)
            uids = sorted(int(u) for u in self.c.search(["ALL"]))[-limit:]
            out = []
            for i in range(0, len(uids), 500):
                data = self.c.fetch(uids[i:i + 500], ["BODY.PEEK[HEADER.FIELDS (SUBJECT TO DATE)]"])
                for item in data.values():
                    raw = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), None)
                    if raw:
                        out.append(bytes(raw))
            return out
        finally:
            self.select(self.cfg.folder)

    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = ()) -> None:
        """Put a message into a folder (created when missing), e.g. the demo's sample mail."""
        self.ensure_folder(folder)
        self.c.append(folder, raw, flags=list(flags))

    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        self.c.append(folder, raw, flags=[b"\\Seen"], msg_time=when)

    def append_sent_many(self, folder: str, messages: list[bytes]) -> None:
        """Copies of replies in one MULTIAPPEND command where the server offers it (RFC 3502)."""
        if len(messages) > 1 and self.c.has_capability("MULTIAPPEND"):
            for i in range(0, len(messages), 200):
                self.c.multiappend(folder, [{"msg": m, "flags": [b"\\Seen"]} for m in messages[i:i + 200]])
            return
        for raw in messages:
            self.append_sent(folder, raw)
