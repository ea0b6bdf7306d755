"""Embedded loopback mail servers for ``mailbot demo`` and the tests.

Owns: a real IMAP server (pymap's in-memory backend, run in a background thread with its
own event loop) and a real SMTP server (aiosmtpd ``Controller``) that records what it
receives, can be told to refuse a recipient (550 or 451), and requires AUTH — with a password, or (option ``xoauth2``) SASL XOAUTH2 whose bearer
token is checked by a callable, e.g. against an OAuth2 authority. Both bind to 127.0.0.1 only,
on free ports.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
import logging
import socket
import threading
import warnings
from argparse import Namespace
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"

# aiosmtpd warns about AUTH without TLS; on a loopback test server that is the point
logging.getLogger("mail.log").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ImapServer:
    """pymap (dict backend) on 127.0.0.1 with one user; ``start()``/``stop()``."""

    def __init__(self, user: str = "saraban@example.go.th", password: str = "demo-password") -> None:
        self.user = user
        self.password = password
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "ImapServer":
        self._thread = threading.Thread(target=self._run, name="pymap", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("embedded IMAP server did not start")
        if self._error:
            raise RuntimeError(f"embedded IMAP server failed: {self._error!r}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from proxyprotocol.reader import ProxyProtocolReader
        from pymap.backend.dict import DictBackend
        from pymap.imap import IMAPServer

        args = Namespace(
            debug=False, host=HOST, port="0", cert=None, key=None, tls=False, passlib_cfg=None,
            proxy_protocol=None, inherited_sockets=None, demo_data=False,
            demo_user=self.user, demo_password=self.password,
        )
        from pysasl.hashing import Cleartext

        # a throw-away loopback server: no slow password hashing on every login
        backend, config = await DictBackend.init(args, invalid_user_sleep=0.0, hash_context=Cleartext())
        config.apply_context()
        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            handler = ProxyProtocolReader(config.proxy_protocol).get_callback(
                IMAPServer(backend.login, config))
            server = await asyncio.start_server(handler, host=HOST, port=0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await self._stop.wait()

    def stop(self) -> None:
        if self._loop and self._stop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> "ImapServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class _Sink:
    messages: list[Received] = field(default_factory=list)
    refuse: bool = False   # answer every DATA with a temporary failure

    delay: float = 0.0     # seconds each DATA takes (a slow server)
    refused: dict[str, bool] = field(default_factory=dict)   # recipient -> refused for good (550) or for now (451)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
        permanent = self.refused.get(address.lower())
        if permanent is not None:
            return f"550 5.1.1 <{address}>: Recipient address rejected" if permanent else \
                f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            return "451 4.3.0 try again later"
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@dataclass
class _OAuthSink(_Sink):
    """Adds SASL XOAUTH2: ``check(user, token)`` decides; failures answer the way Gmail and
    Exchange do (a 334 JSON error challenge, then 535 after the client's empty reply)."""

    check: Callable[[str, str], bool] | None = None
    logins: list[str] = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 - aiosmtpd mechanism hook
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        loop = asyncio.get_running_loop()
        try:
            ok = bool(token) and self.check is not None and await loop.run_in_executor(None, self.check, user, token)
        except Exception:  # noqa: BLE001 - the authority is down: refuse, as a real server would
            ok = False
        if ok:
            self.logins.append(user)
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        await server.challenge_auth(error)      # the client answers with an empty line
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")


class _LongAuthSMTP(SMTP):
    """An AUTH line carrying an OAuth2 token is long: RFC 4954 allows 12,288 octets."""

    command_size_limit = 12288
    line_length_limit = 12288

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command_size_limits = collections.defaultdict(lambda: _LongAuthSMTP.command_size_limit)


class _LongAuthController(Controller):
    def factory(self):
        return _LongAuthSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 recording every message; AUTH required when ``require_auth``."""

    def __init__(self, user: str = "saraban@example.go.th", password: str = "demo-password",
                 require_auth: bool = True, offer_auth: bool = True, smtputf8: bool = False,
                 max_bytes: int | None = None,
                 xoauth2: Callable[[str, str], bool] | None = None, oauth_only: bool = False) -> None:
        """``xoauth2``: check(user, token) -> bool offers SASL XOAUTH2; ``oauth_only`` withdraws
        PLAIN and LOGIN (Microsoft 365 with basic SMTP AUTH switched off)."""
        self.user = user
        self.password = password
        self.logins: list[str] = []
        self.sink = _OAuthSink(check=xoauth2, logins=self.logins) if xoauth2 else _Sink()
        self.port = free_port()
        kwargs: dict = dict(hostname=HOST, port=self.port, enable_SMTPUTF8=smtputf8)
        if max_bytes is not None:      # larger messages are refused for good: 552
            kwargs["data_size_limit"] = max_bytes
        if offer_auth:  # plain loopback: AUTH offered without TLS
            kwargs.update(authenticator=self._auth, auth_required=require_auth, auth_require_tls=False)
            if xoauth2 and oauth_only:
                kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        self.controller = (_LongAuthController if xoauth2 else Controller)(self.sink, **kwargs)

    def _auth(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            ok = user == self.user and auth_data.password.decode() == self.password
            if ok:
                self.logins.append(user)
            # handled=False: aiosmtpd answers a failure with 535 (handled=True, its default, would
            # leave the client waiting for an answer until it times out)
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    @property
    def messages(self) -> list[Received]:
        return self.sink.messages

    def refuse(self, address: str, *, permanent: bool = True) -> None:
        """Refuse mail to ``address`` at RCPT: 550 for good, or 451 for now (as ``MemoryServer.refuse``)."""
        self.sink.refused[address.lower()] = permanent

    def accept(self, address: str | None = None) -> None:
        """Stop refusing ``address`` (None: anyone)."""
        if address is None:
            self.sink.refused.clear()
        else:
            self.sink.refused.pop(address.lower(), None)

    def start(self) -> "SmtpServer":
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if getattr(self, "running", False):
            self.controller.stop()
            self.running = False

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
