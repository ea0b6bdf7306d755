"""``mailbot host console``: one web address for a host's agencies. Each agency's own console is
served under ``/<agency>/`` (the console every office has, opened on that agency's tenant: its
accounts, sessions, cases, files, registers and settings, and nothing else); the host operator's
page at ``/`` lists every agency's health and opens to the host's operator accounts only.

Owns: the dispatch by path prefix, the operator's sign-in and health page. Isolation is by
construction: an agency's console is made from that agency's settings and opens that agency's
tenant alone, its cookie is named for it and sent only under its path, and a session is looked
up in the tenant that issued it — another agency's console has no such session.
"""
from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, Callable

from flask import Flask, Response, redirect, render_template_string, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import Clock, utcnow
from ..console import security
from ..console.web import create_app
from ..store.host import HostStore
from ..store.pg import TENANT
from .service import Host, agency_config, use_host_secrets

PAGE = """<!doctype html><html lang="th"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:Sarabun,Tahoma,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:.3em .6em;text-align:left}.bad{color:#a00}</style></head><body>
<h1>{{ title }}</h1>
{% if signin %}
  {% if error %}<p class="bad">{{ error }}</p>{% endif %}
  <form method="post"><label>ชื่อผู้ดูแล / operator <input name="name" autocomplete="username"></label>
  <label>รหัสผ่าน / password <input name="password" type="password" autocomplete="current-password"></label>
  <button>เข้าสู่ระบบ / sign in</button></form>
{% else %}
  <form method="post" action="{{ url_for('signout') }}"><button>ออกจากระบบ / sign out</button></form>
  <table><tr><th>หน่วยงาน / agency</th><th>สถานะ / state</th><th>รอบล่าสุดที่สำเร็จ / last good cycle</th>
  <th>รอบ / cycles</th><th>คิว / jobs</th><th>รอส่ง / outbox</th><th>แจ้งเตือน 24 ชม. / alerts</th>
  <th>ข้อผิดพลาด / last error</th></tr>
  {% for h in rows %}<tr><td><a href="{{ request.script_root }}/{{ h.name }}/">{{ h.name }}</a></td>
  <td class="{{ 'bad' if h.last_error else '' }}">{{ 'ผิดพลาด / error' if h.last_error else 'ปกติ / ok' }}</td>
  <td>{{ h.last_ok_at or '-' }}</td><td>{{ h.cycles }}</td>
  <td>{{ h.queued_jobs }}{{ ' + กำลังทำ / running' if h.running else '' }}</td>
  <td>{{ h.outbox_waiting }}</td><td>{{ h.alerts_day }}</td><td>{{ h.last_error or '' }}</td></tr>{% endfor %}
  </table>
{% endif %}</body></html>"""


WEAK_SECRETS = {"", "change-me", "change-me-too", "secret", "changeme"}


def operator_app(url: str, clock: Clock, hosts: set[str], secure: bool = False) -> Flask:
    from ..console import auth

    app = Flask(__name__)
    secret = os.environ.get("MAILBOT_HOST_SECRET", "")
    if secret in WEAK_SECRETS or len(secret) < 16:
        secret = ""          # unset or an example's: a random key (a restart signs the operator out)
    app.secret_key = secret or os.urandom(32)
    app.config.update(SESSION_COOKIE_NAME="mailbot_host", SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_PATH="/", SESSION_COOKIE_SECURE=secure)
    throttle = auth.Throttle(tries=10)

    @app.before_request
    def guard():
        if not security.host_ok(request.host, hosts):
            return Response("Wrong host", 421)
        if request.method == "POST" and not security.origin_ok(
                request.headers.get("Origin"), request.headers.get("Referer"), request.host, request.scheme):
            return Response("Refused: not from this page", 403)
        if request.endpoint != "signin" and not session.get("operator"):
            return redirect(url_for("signin"))
        return None

    @app.after_request
    def headers(response):
        for k, v in security.HEADERS.items():
            response.headers[k] = v
        return response

    @app.route("/signin", methods=["GET", "POST"])
    def signin():
        error = ""
        if request.method == "POST":
            name = (request.form.get("name") or "").strip()
            key = f"{security.throttle_key(name)} {request.remote_addr or '-'}"
            wait = throttle.wait(key)
            with HostStore(url) as reg:
                stored = reg.operator_hash(name)
            if wait:
                error = f"ใส่รหัสผ่านผิดหลายครั้ง รอ {wait} วินาที / too many wrong passwords: wait {wait} s"
            elif stored and check_password_hash(stored, request.form.get("password") or ""):
                throttle.ok(key)
                session.clear()
                session["operator"] = name
                return redirect(url_for("health"))
            else:
                throttle.failed(key)
                error = "ชื่อหรือรหัสผ่านไม่ถูกต้อง / wrong name or password"
        return render_template_string(PAGE, title="ผู้ให้บริการ mailbot / mailbot host", signin=True,
                                      error=error), (401 if error else 200)

    @app.route("/signout", methods=["POST"])
    def signout():
        session.clear()
        return redirect(url_for("signin"))

    @app.route("/")
    def health():
        with Host(url) as host:
            rows = host.health(clock())
        return render_template_string(PAGE, title="หน่วยงานที่ให้บริการ / agencies served", signin=False, rows=rows)

    return app


class HostConsole:
    """The WSGI application: ``/<agency>/...`` to that agency's console, anything else to the
    operator's pages. Agencies' consoles are made on first use and kept."""

    def __init__(self, url: str, clock: Clock = utcnow, *, port: int = 8480, listen: str = "127.0.0.1",
                 names: list[str] | tuple[str, ...] = (), behind_proxy: bool = False) -> None:
        self.url = url
        self.clock = clock
        self.port = port
        self.hosts = security.allowed_hosts(listen, port, list(names))
        if behind_proxy:
            # the Host the proxy forwards (X-Forwarded-Host) is the public name, with the public
            # port or none: each --name as given, and with the ports of http and https
            for n in names:
                n = n.lower()
                self.hosts |= {n, f"{n}:80", f"{n}:443"} if ":" not in n else {n}
        self.operator = operator_app(url, clock, self.hosts, secure=behind_proxy)
        use_host_secrets(url)
        self._apps: dict[str, Flask] = {}
        self._lock = threading.Lock()

    def agency_app(self, name: str) -> Flask | None:
        if not TENANT.match(name):
            return None
        with self._lock:
            app = self._apps.get(name)
            if app is not None:
                return app
            with HostStore(self.url) as reg:
                row = reg.agency(name)
            if row is None or row["removed_at"] is not None:
                return None
            cfg = agency_config(name, row["config"])
            app = create_app(cfg, self.clock, port=self.port, mount=name, hosts=self.hosts)
            self._apps[name] = app
            return app

    def forget(self, name: str) -> None:
        """An agency removed: its console is no longer served."""
        with self._lock:
            self._apps.pop(name, None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path = environ.get("PATH_INFO", "") or "/"
        first, _, rest = path.lstrip("/").partition("/")
        if first and first not in ("signin", "signout"):
            with HostStore(self.url) as reg:
                row = reg.agency(first) if TENANT.match(first) else None
            if row is None or row["removed_at"] is not None:
                self.forget(first)
            else:
                app = self.agency_app(first)
                if app is not None:
                    if not rest and not path.endswith("/"):
                        query = environ.get("QUERY_STRING", "")
                        where = f"{environ.get('SCRIPT_NAME', '')}/{first}/" + (f"?{query}" if query else "")
                        start_response("308 Permanent Redirect", [("Location", where)])
                        return [b""]
                    environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + f"/{first}",
                                   PATH_INFO="/" + rest)
                    return app.wsgi_app(environ, start_response)
        return self.operator.wsgi_app(environ, start_response)


def make_wsgi(console: HostConsole, behind_proxy: bool = False):
    """Behind a TLS-terminating proxy (an ingress), its X-Forwarded-Proto/Host are believed (one hop)."""
    return ProxyFix(console, x_proto=1, x_host=1) if behind_proxy else console


def add_operator(url: str, name: str, password: str, now: datetime) -> None:
    if len(password) < 10:
        from ..errors import MailbotError

        raise MailbotError("รหัสผ่านของผู้ดูแลต้องยาวอย่างน้อย 10 ตัวอักษร",
                           "the operator's password must be at least 10 characters")
    with HostStore(url) as reg:
        reg.save_operator(name, generate_password_hash(password), now)
