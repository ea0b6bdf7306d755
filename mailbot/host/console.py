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
from pathlib import Path
from typing import Any, Callable

from flask import Flask, Response, redirect, render_template_string, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import Clock, utcnow
from ..console import security
from ..console.web import create_app
from ..store.host import HostStore
from ..store.pg import TENANT
from ..thai import thai_date_short, to_bangkok
from .service import Health, Host, agency_config, use_host_secrets

PAGE = """<!doctype html><html lang="th"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<link rel="stylesheet" href="{{ url_for('static', filename='host.css') }}"></head><body>
<header><span class="title">mailbot ผู้ให้บริการ <span class="en">host</span></span>
{% if not signin %}<form method="post" action="{{ url_for('signout') }}"><span>{{ operator }}</span>
<button>ออกจากระบบ <span class="en">sign out</span></button></form>{% endif %}</header>
<main>
{% if signin %}
  <form method="post" class="signin"><h1>เข้าสู่ระบบผู้ดูแล <span class="en">operator sign-in</span></h1>
  {% if error %}<p class="error">{{ error }}</p>{% endif %}
  <label>ชื่อผู้ดูแล <span class="en">operator</span><input name="name" autocomplete="username" required></label>
  <label>รหัสผ่าน <span class="en">password</span><input name="password" type="password"
    autocomplete="current-password" required></label>
  <button>เข้าสู่ระบบ <span class="en">sign in</span></button></form>
{% else %}
  <h1>หน่วยงานที่ให้บริการ <span class="en">agencies served</span></h1>
  <p class="muted">ข้อมูล ณ {{ now }} ตัวเลขรอส่งและแจ้งเตือนเป็นของรอบล่าสุดของแต่ละหน่วยงาน
  <span class="en">replies waiting and alerts are as each agency's last cycle found them</span></p>
  <div class="summary">
    <div>ทั้งหมด <span class="en">agencies</span><b>{{ rows|length }}</b></div>
    <div>ผิดพลาด <span class="en">failing</span><b class="{{ 'bad' if failing else '' }}">{{ failing }}</b></div>
    <div>เข้าสู่ระบบหมดหรือใกล้หมดอายุ <span class="en">sign-in lapsed or lapsing</span><b class="{{ 'warn' if lapsing else '' }}">{{ lapsing }}</b></div>
    <div>งานในคิว <span class="en">jobs queued</span><b>{{ queued }}</b></div>
  </div>
  <table><thead><tr><th>หน่วยงาน<span class="en">agency</span></th><th>สถานะ<span class="en">state</span></th>
  <th>ตรวจกล่องล่าสุด<span class="en">last poll</span></th><th>สำเร็จล่าสุด<span class="en">last good cycle</span></th>
  <th>งานในคิว<span class="en">jobs</span></th><th>รอส่ง<span class="en">replies waiting</span></th>
  <th>แจ้งเตือน 24 ชม.<span class="en">alerts, 24 h</span></th>
  <th>เข้าสู่ระบบกล่องอีเมลได้ถึง<span class="en">mailbox sign-in until</span></th>
  <th>ใบรับรองใช้ได้ถึง<span class="en">certificate until</span></th>
  <th>ข้อผิดพลาดล่าสุด<span class="en">last error</span></th></tr></thead><tbody>
  {% for r in rows %}<tr><td><a href="{{ request.script_root }}/{{ r.name }}/">{{ r.name }}</a></td>
  <td class="nw {{ r.state_class }}">{{ r.state }}<span class="en">{{ r.state_en }}</span></td>
  <td class="nw">{{ r.last_poll }}</td><td class="nw">{{ r.last_ok }}</td>
  <td class="num">{{ r.jobs }}</td><td class="num">{{ r.waiting }}</td><td class="num">{{ r.alerts }}</td>
  <td class="{{ r.signin_class }}">{{ r.signin }}{% if r.signin_note %}<span class="en">{{ r.signin_note }}</span>{% endif %}</td>
  <td class="{{ r.cert_class }}">{{ r.cert }}</td>
  <td>{% if r.error %}{{ r.error }}<span class="en">{{ r.error_en }}</span>{% endif %}</td></tr>
  {% else %}<tr><td colspan="10">ยังไม่มีหน่วยงาน สั่ง mailbot host add ชื่อ --config mailbot.yaml
  <span class="en">no agencies yet</span></td></tr>{% endfor %}
  </tbody></table>
{% endif %}</main></body></html>"""

SOON_DAYS = 30      # a sign-in or certificate lapsing within this many days is shown in amber


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    local = to_bangkok(at)
    return f"{thai_date_short(local)} {local:%H:%M} น."


def _lapse(at: datetime | None, now: datetime) -> tuple[str, str]:
    """A lapse date as the operator reads it, and its class (bad: passed; warn: within 30 days)."""
    if at is None:
        return "-", ""
    days = (at - now).days
    text = thai_date_short(to_bangkok(at))
    if at <= now:
        return f"{text} (หมดแล้ว)", "bad"
    if days <= SOON_DAYS:
        return f"{text} (อีก {days} วัน)", "warn"
    return text, ""


def view_rows(rows: list[Health], now: datetime) -> list[dict[str, Any]]:
    """The health table's cells, in Thai first (Buddhist-Era dates, Bangkok time)."""
    out = []
    for h in rows:
        if h.last_error:
            state = ("ผิดพลาด", "error", "bad")
        elif h.last_finished_at is None:
            state = ("ยังไม่เริ่ม", "not run yet", "muted")
        else:
            state = ("ปกติ", "ok", "ok")
        signin, signin_class = _lapse(h.signin_expires_at, now)
        if h.signin_expires_at is None and h.signin_th:
            signin = h.signin_th
        cert, cert_class = _lapse(h.certificate_expires_at, now)
        out.append({
            "name": h.name, "state": state[0], "state_en": state[1], "state_class": state[2],
            "last_poll": _when(h.last_finished_at), "last_ok": _when(h.last_ok_at),
            "jobs": f"{h.queued_jobs}{' + กำลังทำ' if h.running else ''}",
            "waiting": "-" if h.outbox_waiting is None else h.outbox_waiting,
            "alerts": "-" if h.alerts_day is None else h.alerts_day,
            "signin": signin, "signin_class": signin_class,
            "signin_note": h.signin_th if h.signin_expires_at is not None and h.signin_th != "-" else "",
            "cert": cert, "cert_class": cert_class,
            "error": h.last_error_th or h.last_error or "", "error_en": h.last_error if h.last_error_th else "",
        })
    return out


WEAK_SECRETS = {"", "change-me", "change-me-too", "secret", "changeme"}


def operator_app(url: str, clock: Clock, hosts: set[str], secure: bool = False) -> Flask:
    from ..console import auth

    app = Flask(__name__, static_folder=str(Path(__file__).parent / "static"))
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
        if request.endpoint not in ("signin", "static", "font") and not session.get("operator"):
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
        return render_template_string(PAGE, title="เข้าสู่ระบบผู้ดูแล - mailbot", signin=True,
                                      error=error), (401 if error else 200)

    @app.route("/signout", methods=["POST"])
    def signout():
        session.clear()
        return redirect(url_for("signin"))

    @app.route("/fonts/<name>")
    def font(name: str):
        from ..console.views import send_font

        return send_font(name)

    @app.route("/")
    def health():
        now = clock()
        with Host(url) as host:
            found = host.health(now)
        rows = view_rows(found, now)
        return render_template_string(
            PAGE, title="หน่วยงานที่ให้บริการ - mailbot", signin=False, rows=rows, operator=session.get("operator"),
            now=_when(now), failing=sum(1 for h in found if h.last_error),
            lapsing=sum(1 for r in rows if r["signin_class"]), queued=sum(h.queued_jobs for h in found))

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
        if first and first not in ("signin", "signout", "static", "fonts"):
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
