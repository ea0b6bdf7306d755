"""The console's pages and forms: each reads or acts through one ``app.Office`` method.

Owns: the routes — วันนี้ (today and the work queue), ทะเบียนรับ (cases: search, a case, its
actions), ส่งผล (result letters and uploaded results: preview, then sign and send; problems),
กักกัน (quarantine), ทะเบียน/รายงาน (registers, daily log, licence register, backup),
ตรวจการตั้งค่า (checks and the rules test), sign-in and sign-out — and turning form fields into
method arguments. What a citizen wrote reaches the templates only as text.
"""
from __future__ import annotations

import email
import json
import re
from datetime import date
from email import policy
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, send_file, url_for

from ..casework import trust, workflow
from ..errors import ConnectionFailure, MailbotError
from ..kinds import outcome_label
from ..thai import addressee, name_title, thai_date, to_bangkok
from . import auth, security

bp = Blueprint("views", __name__)


# ---------------------------------------------------------------------------- helpers

def office():
    return g.office


def ext(key: str):
    return current_app.extensions["mailbot"][key]


def flash(text: str, level: str = "ok") -> None:
    g.session.flashes.append((level, text))


def receipt_of(year: int, seq: int) -> str:
    return f"{seq}/{year}"


def case_url(receipt: str | None, anchor: str = "") -> str:
    if not receipt or "/" not in receipt:
        return url_for("views.cases")
    seq, year = receipt.split("/")
    return url_for("views.case", year=int(year), seq=int(seq)) + (f"#{anchor}" if anchor else "")


def download(data: bytes, name: str, mimetype: str = "application/octet-stream") -> Response:
    resp = Response(data, mimetype=mimetype)
    resp.headers["Content-Disposition"] = security.content_disposition(name)
    return resp


def download_file(path: Path, mimetype: str) -> Response:
    resp = send_file(path, mimetype=mimetype, conditional=False, etag=False, max_age=0)
    resp.headers["Content-Disposition"] = security.content_disposition(path.name)
    return resp


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def form(name: str, limit: int = 4000) -> str:
    return (request.form.get(name) or "").strip()[:limit]


def parse_day(text: str) -> date | None:
    from ..registers.daily import parse_day as parse

    if not text.strip():
        return None
    try:
        return parse(text.strip())
    except ValueError:
        raise MailbotError(f"วันที่ไม่ถูกต้อง: {text} (เขียนเช่น 29/11/2569 หรือ 2569-11-29)",
                           f"bad date {text!r}: write e.g. 29/11/2569 or 2569-11-29") from None


@bp.app_context_processor
def common():
    cfg = ext("cfg")
    flashes = []
    if getattr(g, "session", None) is not None:
        flashes, g.session.flashes = g.session.flashes, []
    return {"agency": cfg.agency.name, "actor": getattr(g, "actor", ""), "signed_in": bool(
        getattr(g, "session", None) and g.session.officer), "accounts": getattr(g, "accounts", False),
        "flashes": flashes, "case_url": case_url, "setup_waiting": getattr(g, "setup_waiting", False),
        "hosted": bool(ext("mount"))}


# ---------------------------------------------------------------------------- sign-in

@bp.route("/signin", methods=["GET", "POST"])
def signin():
    nxt = security.same_site_path(request.values.get("next"))
    target = request.script_root + nxt          # under a host's /<agency>/ (host/console.py): its own prefix
    if not g.accounts:
        return redirect(target)
    error = ""
    if request.method == "POST":
        name, password = form("name", 64), request.form.get("password") or ""
        throttle, by_address = ext("throttle"), ext("throttle_address")
        key, client = security.throttle_key(name), f"address {request.remote_addr or '-'}"
        wait = max(throttle.wait(key), by_address.wait(client))
        if wait:
            error = f"ใส่รหัสผ่านผิดหลายครั้ง รอ {wait} วินาทีแล้วลองใหม่ / too many wrong passwords: wait {wait} s"
        elif (officer := auth.verify(office().state, name, password)) is not None:
            throttle.ok(key)
            sessions = ext("sessions")
            sessions.drop(office().state, g.session.token)    # a fresh session on sign-in (no fixation)
            g.session = sessions.new(office().state, officer)
            g.new_cookie = True
            return redirect(target)
        else:
            throttle.failed(key)
            by_address.failed(client)
            error = "ชื่อหรือรหัสผ่านไม่ถูกต้อง / wrong name or password"
    return render_template("signin.html", error=error, next=nxt), (401 if error else 200)


@bp.route("/signout", methods=["POST"])
def signout():
    ext("sessions").drop(office().state, g.session.token)
    g.session = None
    resp = redirect(url_for("views.signin") if g.accounts else url_for("views.today"))
    resp.delete_cookie(ext("cookie"), path=ext("cookie_path"))
    g.new_cookie = False
    return resp


def send_font(name: str):
    """One of the bundled Sarabun files the stylesheets name (also the host operator's pages)."""
    from ..documents import FONTS

    if name not in ("Sarabun-Regular.ttf", "Sarabun-Bold.ttf"):
        abort(404)
    return send_file(FONTS / name, mimetype="font/ttf", max_age=86400)


@bp.route("/fonts/<name>")
def font(name: str):
    return send_font(name)


# ---------------------------------------------------------------------------- today

@bp.route("/")
def today():
    return render_template("today.html", t=office().today(), page="today")


# ---------------------------------------------------------------------------- cases

@bp.route("/cases")
def cases():
    a = request.args
    q = (a.get("q") or "").strip()[:200]
    status = a.get("status") or ""
    service = a.get("service") or ""
    since_text, until_text = (a.get("since") or "").strip(), (a.get("until") or "").strip()
    error = ""
    try:
        since, until = parse_day(since_text), parse_day(until_text)
    except MailbotError as exc:
        since = until = None
        error = exc.thai
    try:
        page_no = int(a.get("page") or 1)
    except ValueError:
        page_no = 1
    if status and status not in workflow.STATUSES:
        status = ""
    result = office().find_cases(q, status, service, since, until, page=page_no, per_page=50)
    args = {k: v for k, v in (("q", q), ("status", status), ("service", service), ("since", since_text),
                              ("until", until_text)) if v}
    return render_template("cases.html", r=result, q=q, status=status, service=service, since=since_text,
                           until=until_text, args=args, services=office().rules.services, error=error, page="cases")


@bp.route("/cases/<int:year>/<int:seq>")
def case(year: int, seq: int):
    o = office()
    receipt = receipt_of(year, seq)
    view = o.case(receipt)
    stored = json.loads(view.case["checklist"] or "{}") if view.case["checklist"] else {}
    mails = [_mail_text(m) for m in view.mail]
    return render_template("case.html", v=view, c=view.case, messages=o.case_messages(receipt), mails=mails,
                           confirmed=stored.get("confirmed_by"), services=o.rules.services, units=o.units(),
                           flagged=trust.is_flagged(view.case["held"], view.case["remark"]), page="cases",
                           open_status=view.case["status"] in workflow.OPEN,
                           addressed=addressee(view.case["sender_name"] or "", view.case["sender_title"] or ""),
                           own_title=name_title(view.case["sender_name"] or ""))


def _mail_text(row) -> dict:
    try:
        msg = email.message_from_bytes(bytes(row["raw"]), policy=policy.default)
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        files = [p.get_filename() or "" for p in msg.iter_attachments()]
        subject = str(msg["Subject"] or "")
    except Exception:  # noqa: BLE001
        text, files, subject = "", [], row["subject"] or ""
    return {"row": row, "text": text, "files": files, "subject": subject}


@bp.route("/cases/<int:year>/<int:seq>/set", methods=["POST"])
def case_set(year: int, seq: int):
    receipt = receipt_of(year, seq)
    status, note = form("status", 40), form("note")
    if not status and not note:
        raise MailbotError("เลือกสถานะใหม่หรือเขียนบันทึก", "choose a new status or write a note")
    case, told = office().set_case(receipt, status=status or None, note=note, actor=g.actor)
    flash(f"บันทึกแล้ว: {receipt} {workflow.label(case['status'])} · แจ้งผู้ยื่น: {told}")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/title", methods=["POST"])
def case_title(year: int, seq: int):
    receipt = receipt_of(year, seq)
    case = office().set_title(receipt, form("title", 60), actor=g.actor)
    named = addressee(case["sender_name"] or "", case["sender_title"] or "") or "-"
    flash(f"บันทึกแล้ว: หนังสือแจ้งผลและอีเมลเรื่อง {receipt} จะเรียน {named}")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/tell", methods=["POST"])
def case_tell(year: int, seq: int):
    receipt = receipt_of(year, seq)
    text = form("message")
    if not text:
        raise MailbotError("เขียนข้อความถึงผู้ยื่นก่อน", "write the message to the citizen first")
    _, told = office().set_case(receipt, status=None, tell=text, actor=g.actor)
    flash(f"ข้อความถึงผู้ยื่น: {told} (ส่งในรอบถัดไป / sent at the next cycle)")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/close", methods=["POST"])
def case_close(year: int, seq: int):
    receipt = receipt_of(year, seq)
    case, told = office().set_case(receipt, status="closed", note=form("note"), actor=g.actor)
    flash(f"ยุติเรื่อง {receipt} แล้ว · แจ้งผู้ยื่น: {told}")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/classify", methods=["POST"])
def case_classify(year: int, seq: int):
    receipt = receipt_of(year, seq)
    case, told, warnings = office().classify(receipt, form("service", 20), g.actor, note=form("note"))
    flash(f"คัดแยกเรื่อง {receipt} เป็น {case['service_name']} แล้ว · อีเมลตอบรับถึงผู้ยื่น: {told}")
    for w in warnings:
        flash(w, "warn")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/forward", methods=["POST"])
def case_forward(year: int, seq: int):
    receipt = receipt_of(year, seq)
    unit = form("unit_other", 300) or form("unit", 300)
    warnings = office().forward_case(receipt, unit, g.actor, note=form("note"))
    flash(f"ส่งต่อเรื่อง {receipt} ถึง {unit} แล้ว (ส่งในรอบถัดไป / sent at the next cycle)")
    for w in warnings:
        flash(w, "warn")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/confirm-forward", methods=["POST"])
def case_confirm_forward(year: int, seq: int):
    receipt = receipt_of(year, seq)
    case, told, warnings = office().confirm_forward(receipt, g.actor)
    flash(f"ยืนยันการส่งต่อแล้ว: เรื่อง {receipt} เป็นของ {case['sender_addr']} · แจ้งผู้ยื่น: {told}")
    for w in warnings:
        flash(w, "warn")
    return redirect(case_url(receipt))


@bp.route("/cases/<int:year>/<int:seq>/documents", methods=["POST"])
def case_documents(year: int, seq: int):
    receipt = receipt_of(year, seq)
    case, told = office().documents_complete(receipt, g.actor)
    flash(f"บันทึกว่าเอกสารครบแล้ว: {receipt} ({workflow.label(case['status'])}) · แจ้งผู้ยื่น: {told}")
    return redirect(case_url(receipt))


@bp.route("/messages/<int:row>/raw")
def message_raw(row: int):
    raw = office().raw_message(row)
    if raw is None:
        raise MailbotError("ไม่พบต้นฉบับอีเมลนี้", "the raw message is not stored")
    return download(raw, f"message-{row}.eml")


@bp.route("/messages/<int:row>/files/<int:index>")
def message_file(row: int, index: int):
    name, _ctype, data = office().attachment(row, index)
    return download(data, name)


# ---------------------------------------------------------------------------- held mail, acknowledgements

@bp.route("/held/<int:outbox_id>/<any(release, discard):verb>", methods=["POST"])
def held(outbox_id: int, verb: str):
    o = office()
    row = o.release(outbox_id, g.actor) if verb == "release" else o.discard(outbox_id, g.actor)
    flash(f"ปล่อยอีเมล #{outbox_id} แล้ว จะส่งในรอบถัดไป หรือกด “ส่งเดี๋ยวนี้” / released" if verb == "release"
          else f"ไม่ส่งอีเมล #{outbox_id} แล้ว / not sent")
    return redirect(_back(row["case_id"]))


@bp.route("/send-now", methods=["POST"])
def send_now():
    """What waits to be sent goes now, not at the next cycle (under the work lock)."""
    try:
        d = office().send_now()
        trouble = d.smtp_error
    except ConnectionFailure as exc:           # the server could not be reached at all
        trouble = exc
    if trouble is not None:
        flash(f"ส่งไม่ได้ตอนนี้: {trouble.thai} อีเมลยังรออยู่ จะส่งในรอบถัดไป ไม่สูญหาย", "warn")
    elif not d.sent and not d.failed:
        flash("ไม่มีอีเมลรอส่ง / nothing to send")
    else:
        flash(f"ส่งอีเมลแล้ว {len(d.sent)} ฉบับ" + (f" ส่งไม่สำเร็จ {len(d.failed)} ฉบับ (ดูที่วันนี้)" if d.failed else "")
              + f" / sent {len(d.sent)}", "warn" if d.failed else "message")
    return redirect(_back(None))


@bp.route("/poll-now", methods=["POST"])
def poll_now():
    """One full cycle now: the mailbox read, replies sent (under the work lock, as the service does)."""
    try:
        report = office().poll()
    except ConnectionFailure as exc:
        flash(f"ตรวจกล่องอีเมลไม่ได้ตอนนี้: {exc.thai}", "warn")
        return redirect(_back(None))
    counts = report.counts()
    if counts:
        what = " ".join(f"{outcome_label(k)} {n}" for k, n in sorted(counts.items()))
        text = f"ตรวจกล่องอีเมลแล้ว: อีเมลใหม่ {sum(counts.values())} ฉบับ ({what})"
    else:
        text = "ตรวจกล่องอีเมลแล้ว: ไม่มีอีเมลใหม่"
    text += f" · ส่งอีเมล {len(report.delivery.sent)} ฉบับ"
    if report.smtp_error is not None:
        text += f" · ส่งไม่ได้ตอนนี้ ({report.smtp_error.thai}) อีเมลยังรออยู่"
    flash(text + " / checked the mailbox", "warn" if report.smtp_error is not None else "message")
    return redirect(_back(None))


@bp.route("/ack/<any(mail, quarantine, flagged):kind>/<int:ref>", methods=["POST"])
def acknowledge(kind: str, ref: int):
    office().acknowledge(kind, ref, g.actor)
    flash("บันทึกว่าดำเนินการแล้ว / marked as dealt with")
    return redirect(_back(None))


def _back(case_id: int | None) -> str:
    nxt = request.form.get("back") or ""
    if nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    if case_id is not None:
        row = office().state.case_by_id(case_id)
        if row is not None:
            return case_url(row["receipt"])
    return url_for("views.today")


# ---------------------------------------------------------------------------- results

LETTER_FIELDS = (("receipt", 20), ("outcome", 20), ("note", 2000), ("location", 300), ("holder", 300))


@bp.route("/results")
def results():
    """The results page; a letter's fields come back filled in (from the preview's แก้ไข)."""
    a = request.args
    kept = {k: (a.get(k) or "")[:n] for k, n in LETTER_FIELDS}
    return _results_page(kept)


def _results_page(kept: dict, error: str = "", status: int = 200):
    """The results page with the letter form as the officer left it (``kept``) and, after a
    refusal, why (nothing they typed is lost)."""
    o = office()
    return render_template("results.html", problems=o.result_problems(), recent=o.recent_results(),
                           signing=o.cfg.signing is not None, receipt=kept.get("receipt", ""), kept=kept,
                           error=error, page="results"), status


def _letter_fields() -> dict:
    return {k: form(k, n) for k, n in LETTER_FIELDS}


@bp.route("/results/letter", methods=["POST"])
def results_letter_preview():
    """The letter as it would be signed: a preview needs no certificate (only signing does)."""
    fields = _letter_fields()
    try:
        path = office().preview_letter(fields["receipt"], fields["outcome"], fields["note"])
    except MailbotError as exc:
        return _results_page(fields, exc.thai, 400)
    return render_template("preview.html", kind="letter", name=path.name, fields=fields,
                           case=office().case(fields["receipt"]).case, signing=office().cfg.signing is not None,
                           page="results")


@bp.route("/results/upload", methods=["POST"])
def results_upload():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise MailbotError("เลือกไฟล์ PDF ก่อน", "choose a PDF file first")
    fields = {"receipt": form("receipt", 20), "outcome": form("outcome", 20)}
    path = office().stage_result(fields["receipt"], upload.read(), fields["outcome"], g.actor)
    return render_template("preview.html", kind="upload", name=path.name, fields=fields,
                           case=office().case(fields["receipt"]).case, page="results")


@bp.route("/results/preview/<path:name>")
def results_preview_file(name: str):
    path = office().preview_file(name)
    resp = send_file(path, mimetype="application/pdf", conditional=False, etag=False, max_age=0)
    resp.headers["Content-Disposition"] = "inline; filename*=UTF-8''" + security.quote(path.name, safe="")
    resp.headers["X-Mailbot-Frameable"] = "1"
    return resp


@bp.route("/results/sign", methods=["POST"])
def results_sign():
    o = office()
    if form("kind") == "upload":
        run = o.send_staged(form("name", 300), g.actor)
    else:
        fields = _letter_fields()
        try:
            run = o.results(letter=tuple(fields[k] for k, _ in LETTER_FIELDS))
        except MailbotError as exc:         # refused: back to the form, as the officer filled it in
            return _results_page(fields, exc.thai, 400)
    return render_template("results_done.html", run=run, page="results")


@bp.route("/results/retry", methods=["POST"])
def results_retry():
    run = office().retry_result(form("name", 300), g.actor, receipt=form("receipt", 20))
    return render_template("results_done.html", run=run, page="results")


@bp.route("/results/problems/<path:name>")
def results_problem_file(name: str):
    for p in office().result_problems():
        if p.name == name:
            folder = office().cfg.resolve(office().cfg.results.problems)
            return download_file(folder / p.name, "application/octet-stream")
    raise MailbotError("ไม่พบไฟล์นี้", "no such file")


# ---------------------------------------------------------------------------- quarantine

@bp.route("/quarantine")
def quarantine():
    return render_template("quarantine.html", rows=office().quarantined(), page="quarantine",
                           reason=_reason)


def _reason(text: str | None) -> str:
    return re.sub(r"\s*\(copy: [^)]*\)", "", text or "").strip()


@bp.route("/quarantine/<int:row>")
def quarantine_item(row: int):
    o = office()
    view = o.message_view(row)
    return render_template("quarantine_item.html", m=view, row=view.row, reason=_reason(view.row["reason"]),
                           services=o.rules.services, page="quarantine")


@bp.route("/quarantine/<int:row>/reprocess", methods=["POST"])
def quarantine_reprocess(row: int):
    flash(office().reprocess(row, g.actor))
    return redirect(url_for("views.quarantine"))


@bp.route("/quarantine/<int:row>/register", methods=["POST"])
def quarantine_register(row: int):
    case, told, warnings = office().register_by_hand(
        row, sender_name=form("sender_name", 200), sender_addr=form("sender_addr", 320), subject=form("subject", 500),
        service_code=form("service", 20), actor=g.actor, reply=request.form.get("reply") == "1")
    flash(f"ลงทะเบียนรับแล้ว เลขรับ {case['receipt']} · อีเมลตอบรับ: {told}")
    for w in warnings:
        flash(w, "warn")
    return redirect(case_url(case["receipt"]))


# ---------------------------------------------------------------------------- registers

@bp.route("/registers")
def registers():
    """Every register in each form it is written in (Excel, PDF; the public one also as CSV),
    under plain Thai names."""
    o = office()
    folder = o.cfg.registers_dir
    years = [*_forms(folder, "ทะเบียนรับ-", "ทะเบียนหนังสือรับ ปี {}", made_on_request=".pdf"),
             *_forms(folder, "ทะเบียนส่ง-", "ทะเบียนหนังสือส่ง ปี {}")]
    years.sort(key=lambda r: (-int(r["title"].rsplit(" ", 1)[-1]) if r["title"].rsplit(" ", 1)[-1].isdigit() else 0,
                              "หนังสือรับ" not in r["title"]))          # each year: receive, then dispatch
    daily = _forms(folder / "daily", "", "บันทึกประจำวัน {}", day_names=True)[:31]
    public = _forms(o.cfg.resolve(o.cfg.publish.folder), "ทะเบียนใบอนุญาต", "ทะเบียนใบอนุญาต (เผยแพร่){}")
    return render_template("registers.html", years=years, daily=daily, public=public, page="registers",
                           today=to_bangkok(o.clock()).date(), backup_dir=o.cfg.backup.dir,
                           status=o.status())


# the forms a register is offered in, in this order, with their names for people; other files
# beside them (the open-data catalogue's .ckan.json, the daily log's .audit) are not for officers
FORMS = {".xlsx": "Excel", ".pdf": "PDF (พิมพ์)", ".csv": "CSV (ข้อมูลเปิด)"}


def _forms(folder: Path, prefix: str, title: str, day_names: bool = False, made_on_request: str = "") -> list[dict]:
    """The registers in ``folder`` whose names start with ``prefix``: one entry per register,
    with each of its forms on disk (and ``made_on_request``, made when it is opened), newest first."""
    if not folder.is_dir():
        return []
    groups: dict[str, dict[str, str]] = {}
    for p in folder.iterdir():
        if p.is_file() and p.name.startswith(prefix) and p.suffix.lower() in FORMS \
                and not p.name.startswith((".", "~$")):
            groups.setdefault(p.stem, {})[p.suffix.lower()] = p.name
            if made_on_request:
                groups[p.stem].setdefault(made_on_request, p.stem + made_on_request)
    out = []
    for stem in sorted(groups, reverse=True):
        rest = stem[len(prefix):]
        if day_names:
            m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", stem)
            rest = (thai_date(date(int(m[1]) - 543, int(m[2]), int(m[3]))) if m else stem)
        out.append({"title": title.format(rest), "files": [(FORMS[ext], groups[stem][ext])
                                                          for ext in FORMS if ext in groups[stem]]})
    return out


def _listed(kind: str, name: str) -> Path:
    o = office()
    folder = {"year": o.cfg.registers_dir, "daily": o.cfg.registers_dir / "daily",
              "public": o.cfg.resolve(o.cfg.publish.folder)}[kind]
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and p.name == name:
                return p
    raise MailbotError(f"ไม่พบไฟล์ {name}", f"no file {name!r}")


@bp.route("/registers/<any(year, daily, public):kind>/<path:name>")
def register_file(kind: str, name: str):
    wanted = re.fullmatch(r"ทะเบียนรับ-(\d{4})\.pdf", name) if kind == "year" else None
    if wanted and (office().cfg.registers_dir / f"ทะเบียนรับ-{wanted[1]}.xlsx").is_file():
        office().receive_register_pdf(int(wanted[1]))       # printed as it stands now
    path = _listed(kind, name)
    if path.suffix.lower() not in FORMS:
        raise MailbotError(f"ไม่พบไฟล์ {name}", f"no file {name!r}")
    mimetype = {".xlsx": XLSX, ".csv": "text/csv", ".pdf": "application/pdf"}[path.suffix.lower()]
    return download_file(path, mimetype)


@bp.route("/registers/daily", methods=["POST"])
def register_daily():
    o = office()
    day = parse_day(form("day", 20)) or to_bangkok(o.clock()).date()
    path = o.daily_log(day)
    return download_file(path, XLSX)


@bp.route("/registers/backup", methods=["POST"])
def register_backup():
    o = office()
    if o.cfg.backup.dir is None:
        raise MailbotError("ยังไม่ได้ตั้งที่เก็บข้อมูลสำรอง (ตั้งในไฟล์ตั้งค่า mailbot.yaml)",
                           "no backup location configured (backup.dir in mailbot.yaml)")
    result = o.backup()
    flash(f"สำรองข้อมูลแล้วและตรวจสอบผ่าน: {result.folder} ({result.files} ไฟล์) / backup written and verified")
    return redirect(url_for("views.registers"))


@bp.route("/registers/publish", methods=["POST"])
def register_publish():
    paths = office().publish()
    flash(f"เผยแพร่ทะเบียนใบอนุญาตแล้ว {len(paths)} ไฟล์ / licence register published")
    return redirect(url_for("views.registers"))


# ---------------------------------------------------------------------------- settings check

@bp.route("/settings")
def settings():
    from ..ops.checks import run_checks

    o = office()
    subject = (request.args.get("subject") or "").strip()[:500]
    test = o.rules_test(subject) if subject else None
    checks = run_checks(o.cfg, o.clock(), o.wire)
    return render_template("settings.html", checks=checks, subject=subject, test=test, page="settings")
