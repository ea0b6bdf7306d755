"""Fetch: the IMAP session (the only imapclient user).

Owns: connecting with the configured security, signing in (a password, or with ``auth: oauth2``
SASL OAUTHBEARER where the server offers it, else XOAUTH2, whatever ``security`` says), signing
in again when an OAuth2 token is about to expire or the server drops the session over an expired
token (the selected folder is selected again, its UIDVALIDITY checked), selecting the watched
folder and reading its UIDVALIDITY, listing UIDs, fetching raw bytes in batches with BODY.PEEK (nothing is marked
read), creating outcome folders, moving messages by UID set (MOVE, or COPY + \\Deleted +
EXPUNGE when the server lacks MOVE), and appending copies of replies to the Sent folder.
Folder names may be Thai: imapclient encodes them in modified UTF-7.
"""
from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import SENT

from ..config import ImapConfig
from ..errors import ConnectionFailure, MailbotError, connection_reason
from .smtp import tls_context
from .credentials import server_password

if TYPE_CHECKING:
    from .oauth import Token

log = logging.getLogger(__name__)

# what a lost or broken IMAP connection raises, for callers that must tell it apart
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, IMAPClientError)


def refused_by_server(exc: BaseException) -> bool:
    """The server answered NO or BAD to a command (e.g. over quota), as opposed to a lost connection."""
    return isinstance(exc, IMAPClientError) and not isinstance(exc, IMAPClientAbortError)

SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "INBOX.Sent", "รายการที่ส่ง", "ส่งแล้ว")


def quiet_imaplib(client: IMAPClient) -> None:
    """Turn off imaplib's protocol trace, which IMAPClient switches on for its own logger.

    With ``debug = 5``, imaplib formats the ``repr`` of every response it stores or hands
    back, whether or not anything logs it: for a 25 MB attachment that is about 240 MB of
    strings made and thrown away, and 15 % of a poll's time spent on them (memray and py-spy,
    ``bench/run.py``). The trace stays on under ``--debug`` (the "imapclient.imaplib" logger at
    DEBUG), where someone is reading it to find out what a server said.
    """
    imap = getattr(client, "_imap", None)
    if imap is not None and not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        imap.debug = 0


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    internal_date: datetime | None


class NoIdle(Exception):
    """The IMAP server does not offer IDLE."""


class Mailbox:
    """One IMAP connection, one selected folder; use as a context manager."""

    beside_sending = True     # its own connection: moves and appends may go while mail is sent

    def __init__(self, cfg: ImapConfig) -> None:
        self.cfg = cfg
        self.client: IMAPClient | None = None
        self.uidvalidity: int | None = None
        self._folders: set[str] | None = None
        self.use_move: bool | None = None  # None: use MOVE when the server offers it
        self._next_uid: int | None = None    # wait_for_new_mail: the first UID not yet seen
        self.mechanism = ""                # how we signed in: LOGIN, OAUTHBEARER or XOAUTH2
        self.token: Token | None = None    # the OAuth2 token of this session
        self.selected: str | None = None
        self.reconnects = 0                # OAuth2 sessions renewed mid-cycle

    # ------------------------------------------------------------------ session

    def __enter__(self) -> "Mailbox":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> IMAPClient:
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.effective_port()}"
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
                reason=connection_reason(exc), said=str(exc)[:300],
            ) from None
        client.normalise_times = False
        quiet_imaplib(client)
        return client

    def connect(self) -> None:
        cfg = self.cfg
        if cfg.auth == "oauth2":
            self.client = self._oauth_login()
            return
        password = server_password(cfg, "imap")
        client = self._open()
        try:
            client.login(cfg.username, password)
        except (LoginError, IMAPClientError) as exc:
            raise ConnectionFailure(
                "เข้าสู่ระบบ IMAP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง (รหัสผ่านหมดอายุหรือต้องใช้ app password?)",
                f"IMAP login failed for {cfg.username}: wrong user name or password (expired? app password needed?)",
                reason="login", said=str(exc)[:300],
            ) from None
        except OSError as exc:
            raise ConnectionFailure(
                "การเชื่อมต่อ IMAP ขาดระหว่างเข้าสู่ระบบ",
                f"IMAP connection lost during login: {type(exc).__name__}",
            ) from None
        self.mechanism = "LOGIN"
        self.client = client

    def _oauth_login(self) -> IMAPClient:
        """SASL OAUTHBEARER (RFC 7628) where offered, else XOAUTH2; a refused token is replaced by a
        fresh one once, on a new connection, before giving up."""
        from . import oauth

        src = oauth.source(self.cfg)
        user = self.cfg.login_name()
        where = f"{self.cfg.host}:{self.cfg.effective_port()}"
        token = None
        for attempt in (0, 1):
            token = src.token(force=attempt == 1)
            client = self._open()
            try:
                caps = set(client.capabilities())
            except (IMAPClientError, OSError) as exc:
                raise ConnectionFailure(f"เซิร์ฟเวอร์ IMAP {where} ตัดการเชื่อมต่อ",
                                        f"IMAP server {where} dropped the connection: {type(exc).__name__}") from None
            mechanism = next((m for m in ("OAUTHBEARER", "XOAUTH2") if f"AUTH={m}".encode() in caps), None)
            if mechanism is None:
                _logout(client)
                raise ConnectionFailure(
                    f"เซิร์ฟเวอร์ IMAP {where} ไม่รองรับการลงชื่อเข้าใช้แบบ OAuth2",
                    f"IMAP server {where} offers no OAuth2 login (AUTH=XOAUTH2 or AUTH=OAUTHBEARER)",
                    "ตรวจ imap.host และ imap.security / check imap.host and imap.security",
                )
            try:
                if mechanism == "OAUTHBEARER":
                    client.oauthbearer_login(user, token.access_token)
                else:
                    client.oauth2_login(user, token.access_token)
            except (LoginError, IMAPClientError):
                log.info("IMAP %s refused the OAuth2 token for %s (attempt %d)", mechanism, user, attempt + 1)
                src.rejected(token)
                _logout(client)
                continue
            except OSError as exc:
                raise ConnectionFailure("การเชื่อมต่อ IMAP ขาดระหว่างเข้าสู่ระบบ",
                                        f"IMAP connection lost during login: {type(exc).__name__}") from None
            self.mechanism = mechanism
            self.token = token
            return client
        error = oauth.refused("imap", src.settings, user, token)
        oauth.note_failure(src, error)
        raise error

    def close(self) -> None:
        if self.client is not None:
            _logout(self.client)
            self.client = None

    # ------------------------------------------------------------------ OAuth2 token lifetime

    def _fresh(self) -> None:
        """Sign in again before the session's OAuth2 token expires (Exchange Online ends the
        session when it does: "BYE Session invalidated - AccessTokenExpired")."""
        if self.token is not None and self.client is not None and not self.token.fresh():
            log.info("IMAP: OAuth2 token about to expire; signing in again")
            self._reconnect()

    def _reconnect(self) -> None:
        folder, validity = self.selected, self.uidvalidity
        self.close()
        self.connect()
        self.reconnects += 1
        self._folders = None
        if folder is not None:
            self.select(folder)
            if validity is not None and self.uidvalidity != validity:
                raise ConnectionFailure(
                    f"UIDVALIDITY ของโฟลเดอร์ {folder} เปลี่ยนระหว่างทำงาน รอบถัดไปจะทำต่อ",
                    f"UIDVALIDITY of {folder} changed while signing in again; the next cycle continues",
                )

    def _again(self, what, *args):
        """Run an idempotent command; with OAuth2, a session the server dropped (an expired token)
        is signed in again and the command repeated once."""
        self._fresh()
        try:
            return what(*args)
        except (IMAPClientAbortError, OSError) as exc:
            if self.cfg.auth != "oauth2":
                raise
            log.info("IMAP session dropped (%s); signing in again", type(exc).__name__)
            self._reconnect()
            return what(*args)

    @property
    def c(self) -> IMAPClient:
        assert self.client is not None, "not connected"
        return self.client

    # ------------------------------------------------------------------ reading

    def select(self, folder: str | None = None) -> int:
        folder = folder or self.cfg.folder
        self._fresh()
        try:
            info = self.c.select_folder(folder)
        except IMAPClientError:
            raise ConnectionFailure(
                f"ไม่พบโฟลเดอร์ '{folder}' ในกล่องจดหมาย",
                f"folder '{folder}' not found in the mailbox (imap.folder)",
            ) from None
        self.uidvalidity = int(info[b"UIDVALIDITY"])
        self.selected = folder
        return self.uidvalidity

    def uids(self) -> list[int]:
        return sorted(int(u) for u in self._again(lambda: self.c.search(["NOT", "DELETED"])))

    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]:
        """RFC822.SIZE and INTERNALDATE of each UID (cheap: no bodies): batches are kept within a
        byte budget, and mail older than imap.since is told apart."""
        out: dict[int, tuple[int, datetime | None]] = {}
        for i in range(0, len(uids), 1000):
            data = self._again(lambda chunk: self.c.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE"]), uids[i:i + 1000])
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
        data = self._again(lambda: self.c.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"]))
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

    def watch(self) -> None:
        """Start watching the folder for new mail: SELECT it and note the first UID not yet seen
        (UIDNEXT). Mail that came before is for a cycle started after this (the caller's), mail
        after it for ``wait_for_new_mail``: a cycle started before the SELECT could miss a
        message that arrived between its SEARCH and this. Raises ``NoIdle`` without IDLE."""
        if not self.c.has_capability("IDLE"):
            raise NoIdle()
        if self._next_uid is None:
            info = self.c.select_folder(self.cfg.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
            self.selected = self.cfg.folder
            self._next_uid = int(info.get(b"UIDNEXT") or 0) or (max(self.uids(), default=0) + 1)

    def wait_for_new_mail(self, stop: threading.Event, rearm_seconds: float = 540) -> bool:
        """Wait in IMAP IDLE until the watched folder holds a message with a UID not seen before,
        ``stop`` is set, or ``rearm_seconds`` pass (IDLE is renewed well before servers drop it).
        True when there is new mail.

        New mail is decided by UIDs, never by counting EXISTS against EXPUNGE: our own moves
        shrink the folder while mail arrives, and responses that come with DONE are not lost."""
        self._fresh()                    # an OAuth2 token must outlive this IDLE
        self.watch()
        self.c.idle()
        try:
            deadline = time.monotonic() + rearm_seconds
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    responses = self.c.idle_check(timeout=1)
                except IMAPClient.AbortError as exc:
                    if "unterminated line" not in str(exc):
                        raise
                    # idle_check reads without blocking, and a server's line may come in two
                    # pieces ("* 1 FETCH (" ... "FLAGS (\Recent))"): the rest is read now, so that
                    # DONE's answer is read in step. Something came: SEARCH below tells what.
                    self.c._imap._get_line()
                    break
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
        finally:
            self.c.idle_done()
        first = self._next_uid
        assert first is not None          # watch() noted it
        fresh = [int(u) for u in self.c.search(["UID", f"{first}:*"]) if int(u) >= first]
        if fresh:
            self._next_uid = max(fresh) + 1
            return True
        return False

    # ------------------------------------------------------------------ folders

    def folders(self) -> set[str]:
        if self._folders is None:
            self._folders = {name for _flags, _delim, name in self._again(lambda: self.c.list_folders())}
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
        self._fresh()
        if self.use_move is not False and self.c.has_capability("MOVE"):
            self._again(lambda: self.c.move(uids, folder))   # repeating a MOVE is harmless
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
        from ..casework.trust import is_junk_folder

        for flags, _delim, name in self.c.list_folders():
            if name == folder:
                return is_junk_folder(name, [f.decode() if isinstance(f, bytes) else f for f in flags])
        return is_junk_folder(folder)

    def sent_headers(self, limit: int = 20000) -> list[bytes]:
        """The headers (Subject, To, Date, Message-ID) of the newest copies in the Sent folder, read-only;
        the watched folder is selected again afterwards."""
        return self._sent(["ALL"], "SUBJECT TO DATE MESSAGE-ID", limit)

    def sent_headers_since(self, day: date) -> list[bytes]:
        """The same headers, of the Sent folder's copies stored on ``day`` or later only (one SEARCH
        SINCE): cheap enough for every cycle."""
        return self._sent(["SINCE", day], "SUBJECT TO DATE MESSAGE-ID")

    def sent_subjects(self, message_id_part: str) -> list[str]:
        """The subjects of the Sent folder's copies whose Message-ID contains ``message_id_part``
        (one SEARCH HEADER; read-only)."""
        return [str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"] or "")
                for raw in self._sent(["HEADER", "Message-ID", message_id_part], "SUBJECT")]

    def _sent(self, criteria: list, fields: str, limit: int | None = None) -> list[bytes]:
        """The given header fields of the Sent folder's copies a SEARCH finds (the newest ``limit``),
        read-only; the watched folder is selected again afterwards."""
        folder = self.sent_folder()
        if not folder:
            return []
        self._fresh()
        try:
            self.c.select_folder(folder, readonly=True)
            uids = sorted(int(u) for u in self.c.search(criteria))
            if limit is not None:
                uids = uids[-limit:]
            out = []
            for i in range(0, len(uids), 500):
                data = self.c.fetch(uids[i:i + 500], [f"BODY.PEEK[HEADER.FIELDS ({fields})]"])
                for item in data.values():
                    raw = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), None)
                    if raw:
                        out.append(bytes(raw))
            return out
        finally:
            self.select(self.cfg.folder)

    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = (), when: datetime | None = None) -> None:
        """Put a message into a folder (created when missing), e.g. the demo's sample mail."""
        self.ensure_folder(folder)
        self._fresh()
        self.c.append(folder, raw, flags=list(flags), msg_time=when)

    def find_raw(self, folder: str, sha256: str, size: int) -> int | None:
        """The UID of the message in ``folder`` whose raw bytes have this SHA-256 (candidates
        picked by size first, so only they are fetched); None when it is not there. Leaves
        ``folder`` selected."""
        import hashlib

        self._fresh()
        if folder not in self.folders():
            return None
        self.c.select_folder(folder)
        uids = sorted(int(u) for u in self.c.search(["NOT", "DELETED", "LARGER", str(max(0, size - 1)),
                                                     "SMALLER", str(size + 1)]))
        for i in range(0, len(uids), 20):
            for uid, item in self.c.fetch(uids[i:i + 20], ["BODY.PEEK[]"]).items():
                raw = item.get(b"BODY[]")
                if raw is not None and hashlib.sha256(bytes(raw)).hexdigest() == sha256:
                    return int(uid)
        return None

    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        self._fresh()
        self.c.append(folder, raw, flags=[b"\\Seen"], msg_time=when)

    def append_sent_many(self, folder: str, messages: list[bytes]) -> None:
        """Copies of replies in one MULTIAPPEND command where the server offers it (RFC 3502)."""
        self._fresh()
        if len(messages) > 1 and self.c.has_capability("MULTIAPPEND"):
            for i in range(0, len(messages), 200):
                self.c.multiappend(folder, [{"msg": m, "flags": [b"\\Seen"]} for m in messages[i:i + 200]])
            return
        for raw in messages:
            self.append_sent(folder, raw)


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass
