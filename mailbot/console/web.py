"""The console's Flask application: one request, one ``app.Office``.

Owns: building the app for one office (``create_app``) and the life of a request — the Host
check, the session (cookie → ``auth.Sessions``), sign-in when officer accounts exist (always
when listening beyond this computer), the same-origin and CSRF checks on every POST, an
``Office`` opened for the request and closed after it, who is acting, the security headers,
and Thai error pages (never a traceback). The pages themselves are in ``views.py``.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Callable

from flask import Flask, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.routing import IntegerConverter

from ..app import Office
from ..casework import workflow
from ..clock import Clock, utcnow
from ..config import Config, reloaded
from ..errors import MailbotError
from ..kinds import explain, kind_label, outcome_label, reason_parts, send_state
from ..mail.wire import Wire
from ..store import from_iso
from ..thai import thai_date, thai_date_short, thai_datetime
from . import auth, security

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


def _quiet(thai: str, english: str) -> None:
    log.info("%s / %s", thai, english)


class _RowNumber(IntegerConverter):
    """``<int:...>`` in the console's URLs: at most the largest row number SQLite stores (2^63 - 1),
    so a URL with a longer number is simply not found."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002
        kwargs.setdefault("max", 2 ** 63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(cfg: Config, clock: Clock = utcnow, *, port: int | None = None,
               notify: Callable[[str, str], None] = _quiet, wire: Wire | None = None,
               mount: str = "", hosts: set[str] | None = None) -> Flask:
    """``wire``: how the offices of its requests reach the mail servers (mail/wire.py; default: the real ones).
    ``mount``: the agency's name when a host serves many consoles under /<agency>/ (host/console.py):
    its cookie is named for it and sent only under its own path, the host's names are the ones
    answered (``hosts``), and only officers with accounts get in, whatever the agency's file says."""
    port = port or cfg.console.port
    app = Flask(__name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates"))
    app.url_map.converters["int"] = _RowNumber     # a number past the database's: not found, like any other
    app.config.update(MAX_CONTENT_LENGTH=60 * 1024 * 1024, TEMPLATES_AUTO_RELOAD=False, PROPAGATE_EXCEPTIONS=False)
    app.jinja_env.autoescape = True
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    sessions = auth.Sessions(cfg.console.session_minutes)
    hosts = hosts if hosts is not None else security.allowed_hosts(cfg.console.listen, port, cfg.console.hosts)
    cookie = f"mailbot_console_{port}" + (f"_{mount}" if mount else "")  # cookies are shared between ports of one host
    cookie_path = f"/{mount}/" if mount else "/"
    app.extensions["mailbot"] = {
        "cfg": cfg, "clock": clock, "sessions": sessions, "port": port, "hosts": hosts, "cookie": cookie,
        "cookie_path": cookie_path, "mount": mount,
        "notify": notify,
        "throttle": auth.Throttle(),                     # per account, however its name is spelled
        "throttle_address": auth.Throttle(tries=20),     # per client address (an office may share one)
    }
    _filters(app)

    @app.before_request
    def guard():
        if not security.host_ok(request.host, hosts):
            return _plain("ที่อยู่ของหน้านี้ไม่ถูกต้อง เปิดหน้าจอเจ้าหน้าที่จากที่อยู่ที่ mailbot แสดงเท่านั้น\n"
                          "Wrong host: open the console at the address mailbot prints.", 421)
        if request.endpoint in ("static", "views.font"):
            return None
        g.new_cookie = False
        if request.method == "POST" and not security.origin_ok(
                request.headers.get("Origin"), request.headers.get("Referer"), request.host, request.scheme):
            return _refused()
        current = reloaded(app.extensions["mailbot"]["cfg"])   # settings changed since: seen now
        app.extensions["mailbot"]["cfg"] = current
        g.office = Office.open(current, clock=clock, notify=notify, wire=wire)
        g.session = sessions.get(g.office.state, request.cookies.get(cookie))
        if request.method == "POST" and not (
                g.session is not None and security.token_ok(request.form.get("csrf"), g.session.csrf)):
            return _refused()
        g.accounts = auth.has_officers(g.office.state)
        if not g.accounts and (mount or not cfg.console.loopback):
            return _plain("หน้าจอเจ้าหน้าที่เปิดให้เครื่องอื่นใช้ได้เฉพาะเมื่อมีบัญชีเจ้าหน้าที่ "
                          "(mailbot console user add ชื่อ)\nThe console serves other computers only with officer "
                          "accounts (mailbot console user add NAME).", 403)
        signing_in = request.endpoint == "views.signin"
        if g.accounts and (g.session is None or g.session.officer is None) and not signing_in:
            return redirect(url_for("views.signin", next=request.full_path if request.method == "GET" else "/"))
        if g.session is None:
            g.session = sessions.new(g.office.state, None)
            g.new_cookie = True
        g.actor = g.session.officer or current.console.actor
        g.setup_waiting = g.office.setup.waiting()
        if request.endpoint == "views.today" and request.method == "GET" and g.setup_waiting \
                and not g.office.setup.steps()[0].done:
            return redirect(url_for("setup.start"))     # a new workspace: its setup first
        return None

    @app.after_request
    def headers(response):
        if getattr(g, "session", None) is not None and getattr(g, "office", None) is not None:
            sessions.save(g.office.state, g.session)
        framed = response.headers.pop("X-Mailbot-Frameable", None)
        for k, v in (security.HEADERS | (security.FRAMEABLE if framed else {})).items():
            response.headers[k] = v
        if getattr(g, "new_cookie", False):
            # Secure over HTTPS (a TLS proxy's X-Forwarded-Proto, where the host believes it)
            response.set_cookie(cookie, g.session.token, httponly=True, samesite="Strict", path=cookie_path,
                                max_age=cfg.console.session_minutes * 60, secure=request.is_secure)
        return response

    @app.teardown_request
    def close_office(exc):
        office = g.pop("office", None)
        if office is not None:
            office.close()

    @app.errorhandler(MailbotError)
    def mailbot_error(exc: MailbotError):
        return render_template("error.html", error=exc), 400

    @app.errorhandler(404)
    def not_found(exc):
        return render_template("error.html", error=MailbotError("ไม่พบหน้านี้", "page not found")), 404

    @app.errorhandler(413)
    def too_large(exc):
        return render_template("error.html", error=MailbotError("ไฟล์ใหญ่เกินไป (ไม่เกิน 50 MB)",
                                                                "the file is too large (50 MB at most)")), 413

    @app.errorhandler(Exception)
    def unexpected(exc):
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return render_template("error.html", error=MailbotError(
                "คำขอไม่ถูกต้อง", f"{exc.code} {exc.name}")), exc.code or 400
        from ..errors import explain_environment

        known = explain_environment(exc, cfg.data_dir)
        if known is not None:
            return render_template("error.html", error=known), 503
        log.exception("console request failed")
        return render_template("error.html", error=MailbotError(
            "เกิดข้อผิดพลาดที่ไม่คาดคิด ข้อมูลที่บันทึกแล้วไม่สูญหาย ลองใหม่อีกครั้ง (รายละเอียดอยู่ใน data/logs/mailbot.log)",
            f"unexpected error ({type(exc).__name__}); saved data is safe; details are in the log")), 500

    from .setup import bp as setup_bp
    from .views import bp

    app.register_blueprint(bp)
    app.register_blueprint(setup_bp)
    return app


def _refused():
    return _plain("คำสั่งนี้ไม่ได้มาจากหน้าจอเจ้าหน้าที่ของ mailbot จึงไม่ทำ (เปิดหน้าใหม่แล้วลองอีกครั้ง)\n"
                  "Refused: this request did not come from the console's own page (reload and try again).", 403)


def _plain(text: str, code: int):
    from flask import Response

    return Response(text + "\n", status=code, mimetype="text/plain")


def _when(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return from_iso(str(value))
    except ValueError:
        return None


def _filters(app: Flask) -> None:
    env = app.jinja_env
    env.filters["citizen"] = security.citizen
    env.filters["thai_dt"] = lambda v: thai_datetime(w) if (w := _when(v)) else "-"
    env.filters["thai_d"] = lambda v: (thai_date(v) if not isinstance(v, (str, datetime)) else
                                       (thai_date(w) if (w := _when(v)) else "-"))
    env.filters["thai_ds"] = lambda v: thai_date_short(w) if (w := _when(v)) else "-"
    env.filters["status_label"] = workflow.label
    env.filters["outcome_label"] = outcome_label
    env.filters["send_state"] = send_state
    env.filters["mail_kind"] = kind_label
    env.filters["explain"] = explain                                    # a recorded reason in plain Thai
    env.filters["technical"] = lambda t: "; ".join(reason_parts(t))     # the same, as recorded
    env.filters["kb"] = lambda n: f"{max(1, round((n or 0) / 1024))} KB" if (n or 0) < 1024 * 1024 \
        else f"{(n or 0) / 1024 / 1024:.1f} MB"
    env.filters["nl2br"] = lambda s: Markup("<br>").join(security.citizen(s).split("\n"))
    env.globals["STATUSES"] = workflow.STATUSES
    env.globals["OUTCOMES"] = workflow.RESULT_OUTCOMES
    env.globals["csrf_token"] = lambda: g.session.csrf if getattr(g, "session", None) else ""
