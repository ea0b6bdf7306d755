"""The console's setup pages: the officer's first hour, one step at a time, in Thai.

Owns: the routes under ``/setup`` — the agency, the mailbox (the provider's fields only, the
password into the credential store), the connection test (each failure explained), the
services (the starter catalogue ticked and edited, a live "try a subject"), letters and
replies (a preview with sample data), holidays and office hours, starting with the computer,
and the first poll — each saved through ``office.setup`` (validated before it is saved,
audited with who made it). A step can be left and taken up again; the list of steps shows
which are done. Who may change settings: the person at this computer when there are no
accounts (loopback only, as the console already enforces), else an officer marked as
administrator.
"""
from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from ..errors import ConfigError, ConnectionFailure, MailbotError
from ..kinds import outcome_label
from ..setup import service as setup_service
from ..setup.providers import BY_KEY, PROVIDERS, SECURITY
from ..thai import thai_date
from .views import flash, form, office

bp = Blueprint("setup", __name__, url_prefix="/setup")
STEP_KEYS = [k for k, _ in setup_service.STEPS]


@bp.before_request
def may_change_settings():
    """With accounts, settings are an administrator's (``console user add --admin``)."""
    if getattr(g, "accounts", False) and not office().is_admin(g.session.officer if g.session else None):
        return render_template("error.html", error=MailbotError(
            "เฉพาะเจ้าหน้าที่ที่เป็นผู้ดูแลระบบจึงแก้การตั้งค่าได้",
            "only an officer marked as administrator may change settings")), 403
    return None


def _page(step: str, **context):
    desk = office().setup
    steps = desk.steps()
    number = STEP_KEYS.index(step if step in STEP_KEYS else "test") + 1
    context.setdefault("signed_in", desk.signed_in())
    return render_template("setup.html", step=step, number=number, steps=steps, cfg=office().cfg,
                           page="setup", **context)


def _next(step: str):
    i = STEP_KEYS.index(step)
    return redirect(url_for("setup.step", name=STEP_KEYS[i + 1]) if i + 1 < len(STEP_KEYS)
                    else url_for("views.today"))


@bp.route("/")
def start():
    return redirect(url_for("setup.step", name=office().setup.next_step() or "agency"))


@bp.route("/more", methods=["GET", "POST"])
def more():
    """After setup: the supervisors, the alerts' recipients and the backup folder."""
    if request.method == "POST":
        lines = lambda key: [v for v in (x.strip() for x in re.split(r"[,\n]", request.form.get(key, "")[:5000])) if v]  # noqa: E731
        try:
            office().setup.save_more(g.actor, supervisors=lines("supervisors"), alerts_to=lines("alerts_to"),
                                     backup_dir=form("backup_dir", 500))
        except MailbotError as exc:
            return _failed("more", exc)
        flash("บันทึกแล้ว")
        return redirect(url_for("setup.more"))
    o = office()
    return render_template("setup.html", step="more", number=0, steps=o.setup.steps(), cfg=o.cfg, page="setup",
                           signed_in=True)


@bp.route("/<name>")
def step(name: str):
    if name not in STEP_KEYS:
        abort(404)
    context: dict[str, object] = {}
    o = office()
    if name == "mailbox":
        context["provider"] = request.args.get("provider") or _provider_of(o.cfg)
    if name == "services":
        context.update(_services_context(request.args.get("subject", "")[:500]))
    if name == "letters":
        context["previews"] = o.setup.previews()
        edit = request.args.get("edit", "")
        if edit:
            context["edit"], context["edit_text"] = edit, o.setup.template_text(edit)
    if name == "holidays":
        context["shipped"] = _shipped(o.setup.today().year + 543)
    if name == "autostart":
        from ..setup import autostart

        context["autostart"] = autostart.status()
    return _page(name, providers=PROVIDERS, security=SECURITY, **context)


def _provider_of(cfg) -> str:
    from ..setup.providers import guess

    if cfg.mailbox == "graph":
        return "graph"
    if cfg.imap.auth == "oauth2" and (cfg.oauth2 is None or cfg.oauth2.provider == "microsoft"):
        return "microsoft"
    return guess(cfg.imap.host) if cfg.imap.host not in ("imap.example.go.th", "") else "microsoft"


def _failed(name: str, exc: MailbotError, **context):
    flash(exc.thai + (f" — {exc.detail}" if exc.detail else ""), "warn")
    if name == "more":
        return redirect(url_for("setup.more"))
    return redirect(url_for("setup.step", name=name, **context))


# ---------------------------------------------------------------------------- 1. agency

@bp.route("/agency", methods=["POST"])
def agency():
    upload = request.files.get("emblem")
    emblem = (upload.filename or "emblem", upload.read()) if upload and upload.filename else None
    try:
        office().setup.save_agency(
            g.actor, name=form("name", 300), address=form("address", 300), unit=form("unit", 300),
            phone=form("phone", 100), postal=form("postal", 1000), signer_name=form("signer_name", 200),
            signer_position=form("signer_position", 300), emblem=emblem)
    except MailbotError as exc:
        return _failed("agency", exc)
    flash("บันทึกข้อมูลหน่วยงานแล้ว")
    return _next("agency")


# ---------------------------------------------------------------------------- 2. mailbox

def _server(prefix: str) -> tuple[str, int, str] | None:
    host = form(f"{prefix}_host", 255)
    if not host:
        return None
    try:
        port = int(form(f"{prefix}_port", 10))
    except ValueError:
        raise ConfigError(f"พอร์ตของ {prefix.upper()} ต้องเป็นตัวเลข เช่น 993", f"{prefix} port must be a number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"พอร์ตของ {prefix.upper()} ต้องอยู่ระหว่าง 1 ถึง 65535", f"{prefix} port out of range")
    security = form(f"{prefix}_security", 20)
    if security not in SECURITY:
        raise ConfigError("เลือกการเข้ารหัสการเชื่อมต่อ", f"{prefix} security must be one of {SECURITY}")
    return host, port, security


@bp.route("/mailbox", methods=["POST"])
def mailbox():
    provider = form("provider", 40)
    try:
        if provider not in BY_KEY:
            raise ConfigError("เลือกผู้ให้บริการอีเมล", "choose a provider")
        if provider == "graph":
            office().setup.save_graph(g.actor, address=form("address", 300), tenant=form("tenant", 200),
                                      client_id=form("client_id", 100), secret=request.form.get("secret", "")[:1000])
            flash("บันทึกการตั้งค่ากล่องอีเมลแล้ว (Microsoft Graph)")
            return _next("mailbox")
        if BY_KEY[provider].oauth:
            office().setup.save_oauth(g.actor, address=form("address", 300), tenant=form("tenant", 200),
                                      client_id=form("client_id", 100), flow=form("flow", 40),
                                      secret=request.form.get("secret", "")[:1000])
            flash("บันทึกการตั้งค่ากล่องอีเมลแล้ว")
            return _next("mailbox")
        imap = smtp = None
        if BY_KEY[provider].imap is None:
            imap, smtp = _server("imap"), _server("smtp")
            if imap is None or smtp is None:
                raise ConfigError("ใส่ชื่อเซิร์ฟเวอร์ IMAP และ SMTP", "give the IMAP and SMTP servers")
        where = office().setup.save_mailbox(g.actor, provider=provider, address=form("address", 300),
                                            password=request.form.get("password", "")[:1000],
                                            imap=imap, smtp=smtp)
    except MailbotError as exc:
        return _failed("mailbox", exc, provider=provider or None)
    flash("บันทึกการตั้งค่ากล่องอีเมลแล้ว" + (f" (รหัสผ่านเก็บใน {where})" if where else ""))
    return _next("mailbox")


# ---------------------------------------------------------------------------- 3. test

@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """The officer's OAuth2 sign-in (device code): the address and the code on the page, which
    looks again every few seconds until the sign-in is done."""
    desk = office().setup
    if request.method == "POST":
        try:
            desk.device_start(g.actor)
        except MailbotError as exc:
            return _failed("test", exc)
        return redirect(url_for("setup.signin"))
    return _page("signin", device=desk.device_status())


@bp.route("/test", methods=["POST"])
def test():
    findings = office().setup.test_mailbox(g.actor)
    if findings and all(f.ok for f in findings):
        flash("เชื่อมต่อกล่องอีเมลได้ทั้งการรับและการส่ง")
        return _next("test")
    return _page("test", findings=findings)


# ---------------------------------------------------------------------------- 4. services

def _services_context(subject: str) -> dict:
    from ..setup import catalogue

    o = office()
    cat = catalogue.catalogue()
    current = _current()
    test = o.rules_test(subject) if subject.strip() else None
    own = [s for c, s in current.items() if c not in set(cat.codes)]
    referrals = {r.agency: r for r in o.rules.referrals} if current else {}
    agencies = {r.agency for r in cat.referrals}
    return {"catalogue": cat, "current": current, "own": own, "subject": subject, "test": test,
            "current_referrals": {a: r for a, r in referrals.items() if a in agencies},
            "own_referrals": [r for a, r in referrals.items() if a not in agencies]}


def _current() -> dict:
    """The office's services; none while rules.yaml is still the starter's (its examples give way
    to what the officer ticks in the catalogue)."""
    from ..starter import starter_dir

    o = office()
    try:
        fresh = (starter_dir() / "rules.yaml").read_bytes() == o.cfg.rules_path.read_bytes()
    except OSError:
        fresh = False
    return {} if fresh else {s.code: s for s in o.rules.services}


_SPLIT = re.compile(r"[,\n،、]+")


def _keywords(text: str) -> list[str]:
    return [k for k in (" ".join(w.split()) for w in _SPLIT.split(text)) if k]


_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


@bp.route("/services", methods=["POST"])
def services():
    from ..setup import catalogue

    cat = catalogue.catalogue()
    chosen = set(request.form.getlist("code"))
    out = []
    try:
        current = _current()
        for entry in cat.services:
            code = entry.code
            if code not in chosen:
                continue
            s = (current.get(code) or entry).model_dump(exclude_defaults=True, mode="json")
            name = " ".join(form(f"name_{code}", 300).split())
            if name:
                s["name"] = name
            if f"keywords_{code}" in request.form:
                s["keywords"] = _keywords(form(f"keywords_{code}", 2000))
                if not s["keywords"]:
                    raise ConfigError(f"งาน \"{s['name']}\" ต้องมีคำสำคัญอย่างน้อยหนึ่งคำ (ช่องคำสำคัญมีแต่ช่องว่าง) ยังไม่ได้บันทึก",
                                      f"service {code}: at least one keyword; nothing saved")
            days = form(f"days_{code}", 10).translate(_THAI_DIGITS)
            if days:
                if not re.fullmatch(r"\d{1,4}", days):
                    raise ConfigError(f"งาน \"{s['name']}\": ระยะเวลาต้องเป็นจำนวนวัน ตั้งแต่ 0 ขึ้นไป (ใส่ไว้ {days}) ยังไม่ได้บันทึก",
                                      f"service {code}: days must be a whole number, 0 or more; nothing saved")
                s["days"] = int(days)
            out.append(s)
        ours = set(cat.codes)
        keep = set(request.form.getlist("keep"))
        kept = [s.model_dump(exclude_defaults=True, mode="json") for c, s in current.items()
                if c not in ours and c in keep]
        if not out and not kept:
            raise ConfigError("เลือกงานบริการอย่างน้อยหนึ่งงาน", "choose at least one service")
        referrals = _referrals(cat)
        office().setup.save_services(g.actor, kept + out, referrals)
    except MailbotError as exc:
        return _failed("services", exc)
    flash(f"บันทึกงานบริการแล้ว {len(kept) + len(out)} งาน")
    return _next("services")


def _referrals(cat) -> list[dict] | None:
    """The referrals as the form left them: the catalogue's ticked (keywords and contact edited)
    and the office's own kept; None when the form has no referral part (rules.yaml's stay)."""
    if "referrals" not in request.form:
        return None
    chosen = set(request.form.getlist("referral"))
    out = []
    for i, r in enumerate(cat.referrals):
        if str(i) not in chosen:
            continue
        item = r.model_dump(exclude_defaults=True, mode="json")
        if f"ref_keywords_{i}" in request.form:
            item["keywords"] = _keywords(form(f"ref_keywords_{i}", 2000))
            if not item["keywords"]:
                raise ConfigError(f"การแนะนำไปยัง \"{r.agency}\" ต้องมีคำสำคัญอย่างน้อยหนึ่งคำ ยังไม่ได้บันทึก",
                                  f"referral {r.agency}: at least one keyword; nothing saved")
        contact = " ".join(form(f"ref_contact_{i}", 500).split())
        if contact:
            item["contact"] = contact
        out.append(item)
    agencies = {r.agency for r in cat.referrals}
    own = [r.model_dump(exclude_defaults=True, mode="json") for r in office().rules.referrals
           if r.agency not in agencies and f"own:{r.agency}" in chosen]
    return own + out


# ---------------------------------------------------------------------------- 5. letters

@bp.route("/letters", methods=["POST"])
def letters():
    name = form("template", 80)
    if name:
        try:
            office().setup.save_template(g.actor, name, request.form.get("text", "")[:20000])
        except MailbotError as exc:
            return _failed("letters", exc, edit=name)
        flash("บันทึกข้อความแล้ว")
        return redirect(url_for("setup.step", name="letters"))
    office().setup.done("letters", g.actor)
    return _next("letters")


# ---------------------------------------------------------------------------- 6. holidays

def _shipped(year_be: int) -> list:
    from ..setup import catalogue

    return catalogue.holidays(year_be) + catalogue.holidays(year_be + 1)


_DAY = re.compile(r"(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})")


def _days(text: str) -> list[date]:
    """Dates as an officer types them: 5/12/2569, 2569-12-05, 2026-12-05 (BE or CE, Thai digits)."""
    out = []
    for line in text.translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")).replace(",", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        m = _DAY.search(line)
        if not m:
            raise ConfigError(f"อ่านวันที่ไม่ออก: {line} (เขียนเช่น 5/12/2569)", f"not a date: {line!r}")
        a, b, c = (int(x) for x in m.groups())
        y, mo, d = (a, b, c) if a > 31 else (c, b, a)
        if y > 2400:
            y -= 543
        try:
            out.append(date(y, mo, d))
        except ValueError:
            raise ConfigError(f"ไม่มีวันที่นี้จริง: {line}", f"no such date: {line!r}") from None
    return out


@bp.route("/holidays", methods=["POST"])
def holidays():
    try:
        days = _days(request.form.get("days", "")[:20000])
        if request.form.get("import"):
            days += [h.date for h in _shipped(office().setup.today().year + 543)]
        hours = form("office_hours", 20) or None
        if hours is not None and not re.fullmatch(r"\d{1,2}[:.]\d{2}\s*-\s*\d{1,2}[:.]\d{2}", hours):
            raise ConfigError(f"เวลาทำการเขียนเช่น 08:30-16:30 (ใส่ไว้ {hours})", "office hours like 08:30-16:30")
        office().setup.save_schedule(g.actor, days, hours.replace(".", ":").replace(" ", "") if hours else None)
    except MailbotError as exc:
        return _failed("holidays", exc)
    flash("บันทึกวันหยุดแล้ว")
    return _next("holidays")


# ---------------------------------------------------------------------------- 7. every day

@bp.route("/autostart", methods=["POST"])
def autostart():
    on = request.form.get("on") == "1"
    try:
        result = office().setup.autostart(g.actor, on)
    except MailbotError as exc:
        return _failed("autostart", exc)
    flash(("ตั้งให้ mailbot ทำงานเองเมื่อเปิดเครื่องแล้ว" if on else "ยกเลิกการทำงานเองเมื่อเปิดเครื่องแล้ว")
          + (f" — {result.detail}" if result.detail else ""), "warn" if result.detail else "ok")
    return _next("autostart") if on else redirect(url_for("setup.step", name="autostart"))


# ---------------------------------------------------------------------------- 8. first poll

@bp.route("/poll", methods=["POST"])
def poll():
    o = office()
    try:
        report = o.poll()
    except ConnectionFailure as exc:
        return _page("poll", error=exc)
    o.setup.done("poll", g.actor)
    rows = [{"sender": h.sender, "subject": h.subject, "outcome": outcome_label(h.outcome),
             "receipt": h.receipt or "", "reply": h.reply} for h in report.handled]
    return _page("poll", report=report, rows=rows, sent=len(report.delivery.sent), today=thai_date(o.setup.today()))
