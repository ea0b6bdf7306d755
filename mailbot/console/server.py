"""Serving the console: waitress (pure-Python WSGI server) in a thread of its own.

Owns: refusing to serve beyond this computer without officer accounts, binding the port (a
busy port is a plain Thai + English error), the thread that serves, a clean stop, and the
console's address as people should type it.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from ..clock import Clock, utcnow
from ..config import Config
from ..errors import ConfigError, MailbotError

if TYPE_CHECKING:
    from flask import Flask
    from waitress.server import BaseWSGIServer, MultiSocketServer

    from ..mail.wire import Wire

log = logging.getLogger(__name__)


def console_url(cfg: Config, port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or cfg.console.port}/"


def running(cfg: Config, port: int | None = None, timeout: float = 0.3) -> bool:
    """Whether something answers on the console's port on this computer."""
    try:
        with socket.create_connection(("127.0.0.1", port or cfg.console.port), timeout=timeout):
            return True
    except OSError:
        return False


def check_listen(cfg: Config) -> None:
    """``console.listen`` beyond this computer needs officer accounts (everyone signs in)."""
    from ..app import Office
    from .auth import has_officers

    if cfg.console.loopback:
        return
    with Office.open(cfg) as office:
        if has_officers(office.state):
            return
    raise ConfigError(
        f"console.listen: {cfg.console.listen} เปิดให้เครื่องอื่นเข้าหน้าจอเจ้าหน้าที่ได้ ต้องสร้างบัญชีเจ้าหน้าที่ก่อน "
        "(mailbot console user add ชื่อ) หรือใช้ console.listen: 127.0.0.1",
        f"console.listen: {cfg.console.listen} serves other computers: create officer accounts first "
        "(mailbot console user add NAME) or use console.listen: 127.0.0.1")


class ConsoleServer:
    def __init__(self, cfg: Config, clock: Clock = utcnow, port: int | None = None,
                 notify: Callable[[str, str], None] | None = None, wire: "Wire | None" = None) -> None:
        self.cfg = cfg
        self.wire = wire
        self.clock = clock
        self.port = port if port is not None else cfg.console.port
        self.notify = notify
        self.server: BaseWSGIServer | MultiSocketServer | None = None
        self.app: Flask | None = None
        self.thread: threading.Thread | None = None
        self._map: dict[int, Any] = {}   # waitress's socket map: listening sockets, connections, its trigger
        self._wake: Any = None           # a trigger in that map: runs a function in the serving thread

    @property
    def url(self) -> str:
        return console_url(self.cfg, self.port)

    def start(self) -> "ConsoleServer":
        import waitress
        from waitress.server import BaseWSGIServer

        from .web import create_app

        check_listen(self.cfg)
        kwargs: dict[str, Any] = {"notify": self.notify} if self.notify else {}
        deferred = _Deferred()
        loop_map: dict[int, Any] = {}
        try:
            server = waitress.create_server(
                deferred, map=loop_map, host=self.cfg.console.listen, port=self.port, threads=4, ident="mailbot",
                clear_untrusted_proxy_headers=True, channel_timeout=300)
        except OSError as exc:
            raise MailbotError(
                f"เปิดหน้าจอเจ้าหน้าที่ที่พอร์ต {self.port} ไม่ได้ (มีโปรแกรมอื่นใช้พอร์ตนี้อยู่หรือไม่? "
                "เปลี่ยนได้ที่ console.port หรือ --port)",
                f"cannot serve the console on port {self.port} ({exc.strerror or exc}); is another program using "
                "it? change console.port or use --port") from None
        # one listening socket per address the name stands for: "localhost" is ::1 and 127.0.0.1 on
        # Windows, and then waitress returns a MultiSocketServer, which has no socket of its own
        listening = [s for s in loop_map.values() if isinstance(s, BaseWSGIServer)]
        self.port = listening[0].socket.getsockname()[1]     # port 0: the one the system chose
        self.server, self._map, self._wake = server, loop_map, listening[0].trigger
        self.app = deferred.app = create_app(self.cfg, self.clock, port=self.port, wire=self.wire, **kwargs)
        self.thread = threading.Thread(target=server.run, name="console", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection from the server's own thread (waitress
        is single-threaded in its loop), then end its workers."""
        if self.server is None:
            return
        from waitress import wasyncore

        server, loop_map = self.server, self._map
        self._wake.pull_trigger(lambda: wasyncore.close_all(loop_map))
        if self.thread is not None:
            self.thread.join(5)
        server.task_dispatcher.shutdown()
        self.server = None

    def __enter__(self) -> "ConsoleServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Deferred:
    """The WSGI app, set once the port is known (the Host check needs the real port)."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None     # set before the serving thread starts
        return self.app(environ, start_response)
