"""Send: the SMTP session (the only aiosmtplib user).

Owns: connecting with the configured security, always authenticating when credentials are
configured (a server that offers no AUTH is an error, never a silent unauthenticated
send) — with ``auth: oauth2`` through SASL XOAUTH2, reconnecting with a fresh token before
the session's token expires — and sending stored reply bytes with the agency address as envelope sender. One
connection per cycle, opened on first use. Synchronous facade over an event loop so the
pipeline stays simple.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

import aiosmtplib

from ..config import SmtpConfig
from ..errors import ConnectionFailure, connection_reason
from . import addresses
from .credentials import server_password

if TYPE_CHECKING:
    from .oauth import Token

log = logging.getLogger(__name__)

class SendRefused(Exception):
    """The server refused one message; ``permanent`` tells whether retrying is pointless."""

    def __init__(self, text: str, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


class SendLater(Exception):
    """The sender may send no more for now (Microsoft Graph's 30 messages a minute, or its 429
    beyond what a round may wait): this message and those after it stay queued for the next
    round, and nothing is counted against them. ``thai``/``english``: what the report says."""

    def __init__(self, thai: str, english: str) -> None:
        super().__init__(english)
        self.thai = thai
        self.english = english


def _reason(exc: BaseException) -> str:
    """aiosmtplib wraps the socket's error: a refused connection, a timeout, a certificate."""
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError) or isinstance(exc, asyncio.TimeoutError):
        return "port_blocked"
    reason = connection_reason(exc)
    if reason == "other" and "certificate" in str(exc).lower():
        return "certificate"
    return reason


def tls_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Smtp:
    """A lazily opened SMTP connection; use as a context manager."""

    def __init__(self, cfg: SmtpConfig, envelope_from: str) -> None:
        self.cfg = cfg
        self.envelope_from = envelope_from
        self.loop = asyncio.new_event_loop()
        self.client: aiosmtplib.SMTP | None = None
        self.token: Token | None = None   # the OAuth2 token of this session
        self.mechanism = ""

    def __enter__(self) -> "Smtp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    def connect(self) -> None:
        cfg = self.cfg
        password = server_password(cfg, "smtp") if cfg.username and cfg.auth == "password" else ""
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.effective_port(),
            use_tls=cfg.security == "ssl",
            start_tls=False,
            timeout=cfg.timeout_seconds,
            tls_context=tls_context(cfg.verify_tls) if cfg.security != "none" else None,
        )
        where = f"{cfg.host}:{cfg.effective_port()}"
        try:
            self._run(client.connect())
            if cfg.security == "starttls":
                self._run(client.starttls(tls_context=tls_context(cfg.verify_tls)))
            if client.last_ehlo_response is None:
                self._run(client.ehlo())
        except (OSError, aiosmtplib.SMTPException, asyncio.TimeoutError) as exc:
            raise ConnectionFailure(
                f"เชื่อมต่อเซิร์ฟเวอร์ส่งอีเมล (SMTP) ไม่ได้: {where}",
                f"cannot connect to the SMTP server {where}: {type(exc).__name__}: {_short(exc)}",
                "ตรวจสอบ smtp.host, smtp.port และ smtp.security / check smtp.host, smtp.port, smtp.security",
                reason=_reason(exc), said=_short(exc),
            ) from None
        if cfg.auth == "oauth2":
            self._oauth_login(client, where)
            self.client = client
            return
        if cfg.username:
            if not client.supports_extension("auth"):
                self._run(client.quit())
                raise ConnectionFailure(
                    f"เซิร์ฟเวอร์ SMTP {where} ไม่รองรับการยืนยันตัวตน (AUTH) จึงไม่ส่งอีเมลโดยไม่ยืนยันตัวตน",
                    f"SMTP server {where} offers no AUTH; refusing to send unauthenticated",
                    "ใช้ smtp.security: starttls หรือ ssl / use starttls or ssl",
                    reason="no_auth",
                )
            try:
                self._run(client.login(cfg.username, password))
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise ConnectionFailure(
                    "เข้าสู่ระบบ SMTP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
                    f"SMTP login failed for {cfg.username}: wrong user name or password (app password?)",
                    reason="login", said=f"{exc.code} {exc.message}"[:300],
                ) from None
            except (OSError, aiosmtplib.SMTPException) as exc:
                raise ConnectionFailure(
                    "เข้าสู่ระบบ SMTP ไม่สำเร็จ",
                    f"SMTP login failed: {type(exc).__name__}: {_short(exc)}",
                ) from None
            self.mechanism = "LOGIN"
        self.client = client

    @property
    def max_size(self) -> int | None:
        """The largest message the server says it takes (ESMTP SIZE, RFC 1870), or None."""
        client = getattr(self, "client", None)
        value = client.esmtp_extensions.get("size", "") if client is not None else ""
        try:
            return int(str(value).split()[0]) or None
        except (ValueError, IndexError):
            return None

    def _oauth_login(self, client: aiosmtplib.SMTP, where: str) -> None:
        """SASL XOAUTH2; a refused token is replaced by a fresh one once before giving up."""
        from . import oauth

        src = oauth.source(self.cfg)
        user = self.cfg.login_name()
        if "xoauth2" not in client.server_auth_methods:
            self._run(client.quit())
            raise ConnectionFailure(
                f"เซิร์ฟเวอร์ SMTP {where} ไม่รองรับการลงชื่อเข้าใช้แบบ OAuth2",
                f"SMTP server {where} offers no OAuth2 login (AUTH XOAUTH2)",
                "ตรวจ smtp.host, smtp.port และ smtp.security / check smtp.host, smtp.port, smtp.security",
            )
        token = None
        for attempt in (0, 1):
            token = src.token(force=attempt == 1)
            try:
                self._run(client.auth_xoauth2(user, token.access_token))
            except aiosmtplib.SMTPAuthenticationError:
                log.info("SMTP XOAUTH2 refused the OAuth2 token for %s (attempt %d)", user, attempt + 1)
                src.rejected(token)
                continue
            except (OSError, aiosmtplib.SMTPException, asyncio.TimeoutError) as exc:
                raise ConnectionFailure(
                    "เข้าสู่ระบบ SMTP ไม่สำเร็จ",
                    f"SMTP login failed: {type(exc).__name__}: {_short(exc)}",
                ) from None
            self.token = token
            self.mechanism = "XOAUTH2"
            return
        try:
            self._run(client.quit())
        except Exception:  # noqa: BLE001
            pass
        error = oauth.refused("smtp", src.settings, user, token)
        oauth.note_failure(src, error)
        raise error

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self._run(self.client.quit())
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.client = None

    def open(self) -> None:
        """Connected and signed in (again, when the OAuth2 token is about to expire): done before
        a message is marked as being handed over, so that a process killed while connecting
        never counts as one cut off while sending."""
        if self.client is not None and self.token is not None and not self.token.fresh():
            log.info("SMTP: OAuth2 token about to expire; signing in again")
            self._drop()
        if self.client is None:
            self.connect()

    def send(self, recipient: str, raw: bytes) -> None:
        """Send one message; SendRefused when this message (not the server) is the problem."""
        bad = addresses.problem(recipient)
        if bad is not None:
            raise SendRefused(f"{bad[0]} / {bad[1]}", permanent=True)
        self.open()
        assert self.client is not None
        form = addresses.envelope_form(recipient, self.client.supports_extension("smtputf8"))
        if form is None:
            raise SendRefused("ชื่อผู้รับไม่ใช่อักษรอังกฤษ และเซิร์ฟเวอร์ส่งอีเมลไม่รองรับ SMTPUTF8 จึงส่งไม่ได้ / "
                              "undeliverable: non-ASCII local part and the SMTP server offers no SMTPUTF8",
                              permanent=True)
        address, utf8 = form
        try:
            errors, _ = self._run(self.client.sendmail(self.envelope_from, [address], raw,
                                                       mail_options=["SMTPUTF8"] if utf8 else None))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise SendRefused(_short(exc), permanent=all(500 <= c < 600 for c in codes)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendRefused(_short(exc), permanent=500 <= exc.code < 600) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise SendRefused(f"{type(exc).__name__}: {_short(exc)}", permanent=True) from None
        except (OSError, aiosmtplib.SMTPException, asyncio.TimeoutError) as exc:
            self.client = None  # connection is gone; reconnect on next send
            raise SendRefused(f"{type(exc).__name__}: {_short(exc)}", permanent=False) from None
        except ValueError as exc:   # an address aiosmtplib will not put on the wire
            raise SendRefused(f"ที่อยู่อีเมลส่งไม่ได้ / unsendable address: {_short(exc)}", permanent=True) from None
        if errors:
            raise SendRefused(str(errors)[:200], permanent=True)

    def close(self) -> None:
        if self.client is not None:
            try:
                self._run(self.client.quit())
            except Exception:
                pass
            self.client = None
        if not self.loop.is_closed():
            self.loop.close()


def _short(exc: BaseException) -> str:
    return str(exc).replace("\n", " ")[:200]
