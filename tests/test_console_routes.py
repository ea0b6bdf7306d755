"""Every route of the officer's console through Flask's test client (no browser, no server, no
subprocess): what an officer sees on each page (in Thai, with the case's own data), what each
form changes in the store, download headers, the refusals (a form without the page's token or
from another site: 403; another Host: 421) and the Thai error pages. ``test_console.py`` walks
the same console in a real browser (slow tier).

Each test lists the routes it has served (``@serves("METHOD endpoint", ...)``); the console a
test opens records which views actually answered, and the test fails at its end when one it
lists did not. ``test_every_route_is_served_by_a_test`` compares the lists with the app's URL
map, so a new route without a test here fails.

Result signing runs in this process here (``in_process_signing``): the fast tier starts no
helper process; ``test_results.py`` and ``test_console.py`` sign through the real helper.

Four tests replay what the console once did wrong (a number too large for the database, marks for
items that do not exist, a staged upload moved before its refusal, an English 404 for a font).
"""
from __future__ import annotations

import email
import html
import inspect
import io
import hashlib
import re
import sqlite3
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest
from flask import request

from mailbot.console import auth, security
from mailbot.console.web import create_app

from .conftest import AGENCY, YEAR, letter, state_db

PORT = 8470
HOST = f"127.0.0.1:{PORT}"
ORIGIN = f"http://{HOST}"
THAI = re.compile("[\u0e00-\u0e7f]")
OFFICER, PASSWORD = "นายสมศักดิ์", "correct horse 1"
UNIT = "กองช่าง <kongchang@example.go.th>"


# ---------------------------------------------------------------------------- reading pages

BLOCKS = {"p", "div", "section", "article", "header", "footer", "nav", "main", "h1", "h2", "h3", "table", "tr", "th",
          "td", "ul", "ol", "li", "pre", "br", "label", "form", "details", "summary", "option"}


class _Page(HTMLParser):
    """The visible text of a page and its forms (what a browser would send for each)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.forms: list[Form] = []
        self._skip = 0
        self._form: Form | None = None
        self._select: str | None = None
        self._first_option = False

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = {k: v or "" for k, v in attrs}
        if tag in BLOCKS:
            self.text.append(" ")
        if tag in ("head", "script", "style"):
            self._skip += 1
        elif tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "select") and a.get("name"):
            name, kind = a["name"], a.get("type", "text")
            self._form.names.add(name)
            if tag == "input" and kind not in ("file", "submit", "button", "checkbox") or (
                    kind == "checkbox" and "checked" in a):
                self._form.values[name] = a.get("value", "")
            if tag == "select":
                self._select, self._first_option = name, True
        elif tag == "option" and self._form is not None and self._select and (
                self._first_option or "selected" in a):      # a browser sends the selected (or first) option
            self._form.values[self._select] = a.get("value", "")
            self._first_option = False

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag in BLOCKS:
            self.text.append(" ")
        if tag in ("head", "script", "style"):
            self._skip -= 1
        elif tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if not self._skip:
            self.text.append(data)


@dataclass
class Form:
    action: str
    method: str
    values: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


def read(response) -> _Page:  # type: ignore[no-untyped-def]
    page = _Page()
    page.feed(response.get_data(as_text=True))
    return page


def visible(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text as the officer reads it (tags gone, entities decoded, spaces collapsed)."""
    return " ".join("".join(read(response).text).split())


def flashes(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [" ".join(html.unescape(t).split()) for t in
            re.findall(r'<p class="flash \w+" role="status">(.*?)</p>', response.get_data(as_text=True), re.DOTALL)]


def thai_page(response, title: str) -> str:  # type: ignore[no-untyped-def]
    """A console page in Thai with this title; its visible text."""
    text = response.get_data(as_text=True)
    assert response.status_code == 200, (response.status_code, visible(response)[:500])
    assert response.mimetype == "text/html" and '<html lang="th">' in text
    assert re.search(rf"<title>{re.escape(title)}", text), re.search(r"<title>(.*?)</title>", text)
    return visible(response)


def thai_error(response, status: int = 400) -> str:  # type: ignore[no-untyped-def]
    """The console's error page: HTML in Thai, then English, no traceback; its Thai line."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, visible(response)[:300])
    assert response.mimetype == "text/html" and '<html lang="th">' in text and "<title>ทำไม่ได้" in text
    thai = re.search(r'<p class="th">(.*?)</p>', text, re.DOTALL)
    assert thai and THAI.search(thai.group(1)), text[:500]
    assert "Traceback" not in text and 'File "' not in text
    return html.unescape(thai.group(1))


def plain_refusal(response, status: int) -> str:  # type: ignore[no-untyped-def]
    """A refusal before any page: plain text, Thai first."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert THAI.search(text.splitlines()[0]), text
    return text


def receipts_listed(response) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r'<td class="receipt"><a href="[^"]+">([^<]+)</a>', response.get_data(as_text=True))


def filename_of(disposition: str) -> str:
    """The real file name of a Content-Disposition header (its RFC 5987 ``filename*``)."""
    m = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
    assert m, disposition
    return unquote(m.group(1))


# ---------------------------------------------------------------------------- the console under test

def serves(*routes: str):  # type: ignore[no-untyped-def]
    """The routes ("METHOD endpoint") a test has the console serve; checked at the test's end."""
    def mark(fn):  # type: ignore[no-untyped-def]
        fn.serves = frozenset(routes)
        return fn
    return mark


class Console:
    """The console app over the test workspace, driven as the officer's browser drives it: the
    Host header, the session cookie, and the forms of the page with their hidden token."""

    def __init__(self, env) -> None:  # type: ignore[no-untyped-def]
        self.env = env
        self.app = create_app(env.cfg, env.clock, port=PORT)
        self.client = self.app.test_client()
        self.served: set[str] = set()
        self._token = ""
        self._quiet = False
        cookie = self.app.extensions["mailbot"]["cookie"]
        self._cookie = f"{cookie}="
        for endpoint, view in list(self.app.view_functions.items()):
            self.app.view_functions[endpoint] = self._recorded(endpoint, view)

    def _recorded(self, endpoint: str, view):  # type: ignore[no-untyped-def]
        def view_served(**kwargs):  # type: ignore[no-untyped-def]
            answer = view(**kwargs)              # a view that raised (an error page) served nothing
            if not self._quiet:
                self.served.add(f"{request.method} {endpoint}")
            return answer
        return view_served

    def _keep(self, response):  # type: ignore[no-untyped-def]
        if any(v.startswith(self._cookie) for v in response.headers.getlist("Set-Cookie")):
            self._token = ""                     # a new session: a new token
        if response.mimetype == "text/html":
            found = re.search(r'name="csrf" value="([^"]+)"', response.get_data(as_text=True))
            if found:
                self._token = found.group(1)
        return response

    def get(self, path: str, *, host: str = HOST, headers: dict | None = None):  # type: ignore[no-untyped-def]
        return self._keep(self.client.get(path, headers={"Host": host, **(headers or {})}))

    def post(self, path: str, data: dict | None = None, *, token: bool = True, origin: str | None = ORIGIN,
             host: str = HOST, headers: dict | None = None):  # type: ignore[no-untyped-def]
        """A form sent to ``path`` with this session's token (``token=False``: without it)."""
        form = dict(data or {})
        if token:
            form.setdefault("csrf", self.token())
        sent = {"Host": host, **({"Origin": origin} if origin else {}), **(headers or {})}
        return self._keep(self.client.post(path, data=form, headers=sent))

    def submit(self, page, action: str, **fields):  # type: ignore[no-untyped-def]
        """The form of ``page`` whose action matches ``action`` (a regex), filled in with
        ``fields`` (each must be a field of that form) and sent as the browser sends it."""
        forms = [f for f in read(page).forms if re.fullmatch(action, f.action) and f.method == "post"]
        assert forms, f"no form for {action} on the page: {[f.action for f in read(page).forms]}"
        form = forms[0]
        assert set(fields) <= form.names, f"{sorted(set(fields) - form.names)} not in the form {form.action}"
        assert form.values.get("csrf"), "the page's form carries the token"
        return self._keep(self.client.post(form.action, data={**form.values, **fields},
                                           headers={"Host": HOST, "Origin": ORIGIN}))

    def follow(self, response):  # type: ignore[no-untyped-def]
        assert response.status_code == 302, (response.status_code, visible(response)[:400])
        parts = urlsplit(response.headers["Location"])
        return self.get(parts.path + (f"?{parts.query}" if parts.query else ""))

    def token(self) -> str:
        if not self._token:                      # as a browser: from a console page's form
            self._quiet = True
            try:
                self.get("/results")
            finally:
                self._quiet = False
        assert self._token, "no console page gave a token"
        return self._token


@pytest.fixture
def open_console(env, request):  # type: ignore[no-untyped-def]
    """Opens the console over ``env`` (after the test has set the workspace up); at the end,
    every route the test lists in ``@serves`` must have been served."""
    consoles: list[Console] = []
    failed_before = request.session.testsfailed

    def open_() -> Console:
        consoles.append(Console(env))
        return consoles[-1]

    yield open_
    if request.session.testsfailed > failed_before:
        return                                   # the test failed already: that is the report
    listed = getattr(request.function, "serves", frozenset())
    served = set().union(*(c.served for c in consoles)) if consoles else set()
    assert not listed - served, f"listed in @serves but never served: {sorted(listed - served)}"


def case_path(receipt: str, action: str = "") -> str:
    seq, year = receipt.split("/")
    return f"/cases/{year}/{seq}" + (f"/{action}" if action else "")


def rows(env, sql: str, *args) -> list[sqlite3.Row]:  # type: ignore[no-untyped-def]
    if not hasattr(env, "state_cfg"):                      # env.cfg reads mailbot.yaml each time
        env.state_cfg = env.cfg
    con = state_db(env.state_cfg)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def case_row(env, receipt: str) -> sqlite3.Row:  # type: ignore[no-untyped-def]
    [row] = rows(env, "SELECT * FROM cases WHERE receipt=?", receipt)
    return row


def events(env, receipt: str, kind: str) -> list[sqlite3.Row]:  # type: ignore[no-untyped-def]
    return rows(env, "SELECT e.* FROM case_events e JOIN cases c ON c.id=e.case_id WHERE c.receipt=? AND e.kind=?",
                receipt, kind)


def outbox(env, to: str) -> list[sqlite3.Row]:  # type: ignore[no-untyped-def]
    return rows(env, "SELECT * FROM outbox WHERE recipient LIKE ? ORDER BY id", f"%{to}%")


def body_of(raw: bytes) -> str:
    msg = email.message_from_bytes(bytes(raw), policy=policy.default)
    part = msg.get_body(("plain",))
    return part.get_content() if part is not None else ""


def mails_to(env, address: str) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    return [email.message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
            for m in env.smtp.messages if address in m.rcpt_tos]


def snapshot(env) -> tuple:  # type: ignore[no-untyped-def]
    """What a refused request must leave as it was."""
    return (rows(env, "SELECT receipt, status, service_code, action, checklist, held FROM cases ORDER BY id"),
            rows(env, "SELECT count(*) FROM case_events")[0][0],
            rows(env, "SELECT id, status FROM outbox ORDER BY id"),
            rows(env, "SELECT id, outcome FROM messages ORDER BY id"),
            rows(env, "SELECT count(*) FROM acknowledged")[0][0])


def handled(env, *messages) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Deliver and run one cycle: {sender address: receipt number} of what was registered."""
    env.deliver(*messages)
    return {h.sender: h.receipt for h in env.cycle().handled if h.receipt}


def pdf_file(text: str = "Result") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=16)
    pdf.cell(text=text)
    return bytes(pdf.output())


def building_request(sender: str = "สมชาย ใจดี <somchai@example.com>", **headers: str) -> EmailMessage:
    msg = letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", body="ขออนุญาตต่อเติมห้องครัวด้านหลังบ้าน", sender=sender,
                 **headers)
    msg.add_attachment(b"%PDF-1.4\nplan\n", maintype="application", subtype="pdf", filename="แบบแปลน.pdf")
    return msg


SPOOF = {"sender": "ผู้อำนวยการ <director@example.go.th>",
         "Authentication_Results": "mx.example.go.th; spf=fail smtp.mailfrom=example.go.th; dmarc=fail"}


# ---------------------------------------------------------------------------- today and the work queue

def _bounce_of(reply: EmailMessage) -> bytes:
    return (f"From: MAILER-DAEMON@mx.example.go.th\r\nTo: {AGENCY}\r\nSubject: Undelivered Mail\r\n"
            "Message-ID: <dsn1@mx>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nHost not found\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.1.2\r\n"
            f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {reply['Message-ID']}\r\n"
            "To: typo@gmial.example\r\n--b--\r\n").encode()


def chips(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The kinds of work listed on the Today page, with their counts ("กักกัน 1")."""
    return re.findall(r'<span class="chip k-\w+">([^<]+ \d+)</span>', page.get_data(as_text=True))


@serves("GET views.today", "POST views.held", "POST views.acknowledge")
def test_today_lists_what_needs_an_officer_and_each_item_is_dealt_with_there(env, open_console):
    env.set_config(limits={"replies_per_sender_per_day": 1})
    got = handled(env, letter("เรื่องทั่วไปที่ไม่มีหมวด", sender="มานี มีนา <manee@example.com>"),
                  *[letter(f"ร้องเรียนถนนชำรุด ซอย {n}", sender="busy@example.com") for n in (1, 2, 3)],
                  letter("ขอข้อมูลข่าวสาร", **SPOOF), b"\r\n\r\n",
                  letter("ร้องเรียนไฟฟ้าดับ", sender="typo@gmial.example"))
    [reply] = mails_to(env, "typo@gmial.example")
    handled(env, _bounce_of(reply))                        # our reply to typo@ came back
    held = rows(env, "SELECT * FROM outbox WHERE status='held' ORDER BY id")
    assert len(held) == 2 and len(mails_to(env, "busy@example.com")) == 1
    console = open_console()
    today = console.get("/")
    text = thai_page(today, "วันนี้")
    assert "วันนี้ 4 ธันวาคม 2569" in text
    assert chips(today) == ["รอคัดแยก 1", "อีเมลระงับไว้ 2", "ตรวจสอบผู้ส่งไม่ผ่าน 1", "กักกัน 1", "ส่งไม่ถึงผู้ยื่น 1"]
    assert {got["manee@example.com"], got["director@example.go.th"], got["typo@gmial.example"]} <= set(
        receipts_listed(today))
    for shown in ("เรื่องทั่วไปที่ไม่มีหมวด", "อีเมลอ้างว่ามาจากโดเมนของหน่วยงาน แต่ตรวจสอบไม่ผ่าน รายละเอียด from our own domain but spf=fail",
                  "เกิน 1 ฉบับต่อวันถึงผู้รับรายเดียว", "ส่งอีเมลไม่สำเร็จ (ตีกลับ)"):
        assert shown in text, shown
    # every page: the security headers; the session cookie for this site's requests only
    assert "script-src 'self'" in today.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in today.headers["Content-Security-Policy"]
    assert today.headers["X-Frame-Options"] == "DENY" and today.headers["Cache-Control"] == "no-store"
    cookie = today.headers["Set-Cookie"]
    assert cookie.startswith(f"mailbot_console_{PORT}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # held replies: one released, one discarded, each back on the Today page with what was done
    r = console.submit(today, f"/held/{held[0]['id']}/release")
    assert r.headers["Location"] == "/"
    today = console.follow(r)
    assert f"ปล่อยอีเมล #{held[0]['id']} แล้ว จะส่งในรอบถัดไป หรือกด “ส่งเดี๋ยวนี้” / released" in flashes(today)
    today = console.follow(console.submit(today, f"/held/{held[1]['id']}/discard"))
    assert f"ไม่ส่งอีเมล #{held[1]['id']} แล้ว / not sent" in flashes(today)
    decided = {row["id"]: row for row in rows(env, "SELECT * FROM outbox")}
    assert decided[held[0]["id"]]["status"] == "queued" and "released by" in decided[held[0]["id"]]["hold_reason"]
    assert decided[held[1]["id"]]["status"] == "discarded"
    # flagged mail looked at, a bounced reply dealt with another way
    for kind in ("flagged", "mail"):
        today = console.follow(console.submit(today, rf"/ack/{kind}/\d+"))
        assert "บันทึกว่าดำเนินการแล้ว / marked as dealt with" in flashes(today)
    # a quarantined message that needs nothing: from its own page, back to the quarantine list
    [item] = re.findall(r'href="(/quarantine/\d+)"', today.get_data(as_text=True))
    r = console.submit(console.get(item), rf"/ack/quarantine/{item.rsplit('/', 1)[1]}")
    assert r.headers["Location"] == "/quarantine"
    listing = console.follow(r)
    assert "บันทึกว่าดำเนินการแล้ว / marked as dealt with" in flashes(listing)
    assert re.search(r"ไม่ต้องดำเนินการ \(\S+\)", visible(listing))   # still listed, marked, with by whom
    assert chips(console.get("/")) == ["รอคัดแยก 1"]        # only what still needs an officer
    assert len(events(env, got["director@example.go.th"], "officer:reviewed")) == 1
    assert len(events(env, got["typo@gmial.example"], "officer:mail_seen")) == 1
    assert {r["kind"] for r in rows(env, "SELECT kind FROM acknowledged")} == {"mail", "quarantine"}
    env.cycle()
    assert len(mails_to(env, "busy@example.com")) == 2     # the released reply went out, the discarded one never


# ---------------------------------------------------------------------------- cases

@serves("GET views.cases")
def test_cases_searched_and_filtered(env, open_console):
    got = handled(env, building_request(), letter("ร้องเรียนถนนชำรุด", sender="สมปอง ดีใจ <sompong@example.com>"),
                  letter("เรื่องทั่วไปที่ไม่มีหมวด", sender="manee@example.com"))
    build, complaint, other = got["somchai@example.com"], got["sompong@example.com"], got["manee@example.com"]
    console = open_console()
    r = console.get("/cases")
    text = thai_page(r, "ทะเบียนรับ")
    assert sorted(receipts_listed(r)) == sorted([build, complaint, other]) and "พบ 3 เรื่อง" in text
    assert "สมปอง ดีใจ" in text and "รอเอกสารเพิ่มเติม" in text and "รอคัดแยก" in text
    for query, expected in (("q=สมปอง", [complaint]), ("service=-", [other]), ("service=BLD", [build]),
                            ("status=awaiting_documents", [build]), (f"q={build}", [build]),
                            ("since=5/12/2569", []), ("until=4/12/2569", [build, complaint, other])):
        r = console.get(f"/cases?{query}")
        assert sorted(receipts_listed(r)) == sorted(expected), query
    assert "ไม่พบเรื่องที่ตรงกับเงื่อนไข" in visible(console.get("/cases?since=5/12/2569"))
    r = console.get("/cases?since=31/02/2569")              # a day that does not exist: said, in Thai
    assert r.status_code == 200 and "วันที่ไม่ถูกต้อง: 31/02/2569" in visible(r) and len(receipts_listed(r)) == 3


@serves("GET views.case", "GET views.message_raw", "GET views.message_file")
def test_case_page_shows_the_request_and_its_files_download_as_attachments(env, open_console):
    request_ = building_request()
    hostile = '../../"><img src=x onerror=alert(1)>\u202efdp.exe'
    request_.add_attachment(b"not really", maintype="application", subtype="octet-stream", filename=hostile)
    receipt = handled(env, request_)["somchai@example.com"]
    console = open_console()
    r = console.get(case_path(receipt))
    text = thai_page(r, f"เรื่อง {receipt}")
    assert f"เลขทะเบียนรับ {receipt} รอเอกสารเพิ่มเติม" in text
    for shown in ("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", "สมชาย ใจดี", "somchai@example.com",
                  "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร (BLD)", "ขออนุญาตต่อเติมห้องครัวด้านหลังบ้าน",
                  "✗ สำเนาบัตรประจำตัวประชาชน", "✓ แบบแปลนอาคาร", "ผลตรวจอัตโนมัติ: ยังไม่ครบ",
                  "อีเมลตอบรับ ถึง somchai@example.com · ส่งแล้ว"):
        assert shown in text, shown
    assert "<img" not in r.get_data(as_text=True) and "\u202e" not in r.get_data(as_text=True)
    page = r.get_data(as_text=True)
    [raw_link] = re.findall(r'href="(/messages/\d+/raw)"', page)
    raw = console.get(raw_link)
    assert raw.status_code == 200 and raw.mimetype == "application/octet-stream"
    assert raw.headers["Content-Disposition"].startswith('attachment; filename="message-')
    original = email.message_from_bytes(raw.data, policy=policy.default)       # the message as it came
    assert original["Message-ID"] == request_["Message-ID"] and original["Subject"] == request_["Subject"]
    assert [p.get_filename() for p in original.iter_attachments()] == ["แบบแปลน.pdf", hostile]
    links = re.findall(r'href="(/messages/\d+/files/\d+)"', page)
    assert len(links) == 2
    names = {}
    for link in links:
        f = console.get(link)
        assert f.status_code == 200 and f.mimetype == "application/octet-stream"
        assert f.headers["X-Content-Type-Options"] == "nosniff"
        disposition = f.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="') and disposition.isascii()
        names[filename_of(disposition)] = f.data
    assert names["แบบแปลน.pdf"] == b"%PDF-1.4\nplan\n"
    [other] = [n for n in names if n != "แบบแปลน.pdf"]
    assert "/" not in other and "\u202e" not in other and "<" not in other and '"' not in other
    assert names[other] == b"not really"


@serves("POST views.case_set", "POST views.case_tell", "POST views.case_close")
def test_status_changed_note_recorded_citizen_told_and_case_closed(env, open_console):
    receipt = handled(env, letter("ร้องเรียนเสียงดังจากโรงงาน", sender="loud@example.com"))["loud@example.com"]
    console = open_console()
    page = console.get(case_path(receipt))
    r = console.submit(page, case_path(receipt, "set"), status="in_progress", note="ส่งเจ้าหน้าที่ตรวจสอบพื้นที่")
    page = console.follow(r)
    assert flashes(page)[0].startswith(f"บันทึกแล้ว: {receipt} อยู่ระหว่างดำเนินการ")
    assert f"เลขทะเบียนรับ {receipt} อยู่ระหว่างดำเนินการ" in visible(page)
    case = case_row(env, receipt)
    assert case["status"] == "in_progress" and "ส่งเจ้าหน้าที่ตรวจสอบพื้นที่" in case["action"]
    assert "ส่งเจ้าหน้าที่ตรวจสอบพื้นที่" in visible(page)              # in the history
    r = console.submit(page, case_path(receipt, "tell"), message="เจ้าหน้าที่จะเข้าตรวจในวันพรุ่งนี้")
    page = console.follow(r)
    assert flashes(page)[0].startswith("ข้อความถึงผู้ยื่น:")
    [message] = [m for m in outbox(env, "loud@example.com") if m["kind"] == "officer_message"]
    assert message["status"] == "queued" and "เจ้าหน้าที่จะเข้าตรวจในวันพรุ่งนี้" in body_of(message["raw"])
    assert "ข้อความจากเจ้าหน้าที่ ถึง loud@example.com · รอส่ง" in visible(page)
    assert not any("ส่งเจ้าหน้าที่ตรวจสอบพื้นที่" in body_of(m["raw"]) for m in outbox(env, "loud@example.com")), \
        "an internal note is never mailed"
    r = console.submit(page, case_path(receipt, "close"), note="ซ่อมแล้ว")
    page = console.follow(r)
    assert flashes(page)[0].startswith(f"ยุติเรื่อง {receipt} แล้ว")
    assert case_row(env, receipt)["status"] == "closed" and 'id="close"' not in page.get_data(as_text=True)
    # nothing chosen, nothing written: said in Thai, nothing changes
    before = snapshot(env)
    assert thai_error(console.submit(page, case_path(receipt, "set"), status="")) == "เลือกสถานะใหม่หรือเขียนบันทึก"
    assert snapshot(env) == before
    # a closed case offers only what can still be done: reopen (and view, print)
    assert [f.action for f in read(page).forms if f.method == "post"] == [case_path(receipt, "set"), "/send-now"]
    assert "เปิดเรื่องอีกครั้ง" in visible(page) and "พิมพ์หน้านี้" in visible(page)
    page = console.follow(console.submit(page, case_path(receipt, "set"), note="ผู้ร้องแจ้งว่ายังมีเสียงดัง"))
    assert case_row(env, receipt)["status"] == "in_progress"
    assert {case_path(receipt, a) for a in ("tell", "forward", "close")} <= {f.action for f in read(page).forms}


@serves("POST views.case_title")
def test_the_requesters_title_is_set_on_the_case_page_and_names_them_in_the_letter(env, open_console):
    receipt = handled(env, building_request())["somchai@example.com"]
    console = open_console()
    page = console.get(case_path(receipt))
    # the name carries no title: the letter would say คุณ, and the page says where to set one
    assert "เรียน (หนังสือแจ้งผล) คุณสมชาย ใจดี" in visible(page) and "ชื่อไม่มีคำนำหน้า" in visible(page)
    r = console.submit(page, case_path(receipt, "title"), title="นาย")
    page = console.follow(r)
    assert flashes(page)[0] == f"บันทึกแล้ว: หนังสือแจ้งผลและอีเมลเรื่อง {receipt} จะเรียน นายสมชาย ใจดี"
    assert case_row(env, receipt)["sender_title"] == "นาย"
    assert "เรียน (หนังสือแจ้งผล) นายสมชาย ใจดี" in visible(page) and "ชื่อไม่มีคำนำหน้า" not in visible(page)
    [event] = events(env, receipt, "officer:title")
    assert "นาย" in event["note"] and event["actor"]
    # not a title: said in Thai, nothing changes
    before = case_row(env, receipt)["sender_title"]
    assert "คำนำหน้าชื่อไม่ถูกต้อง" in thai_error(console.submit(page, case_path(receipt, "title"),
                                                                 title="<b>นาย</b>@example.com"))
    assert case_row(env, receipt)["sender_title"] == before
    # emptied: the name's own title, else คุณ, again
    page = console.follow(console.submit(page, case_path(receipt, "title"), title=""))
    assert case_row(env, receipt)["sender_title"] is None and "จะเรียน คุณสมชาย ใจดี" in flashes(page)[0]


@serves("POST views.case_classify")
def test_unclassified_request_classified(env, open_console):
    receipt = handled(env, letter("สอบถามเรื่องการขออนุญาตทำรั้วบ้าน", sender="มานี มีนา <manee@example.com>"))[
        "manee@example.com"]
    console = open_console()
    page = console.get(case_path(receipt))
    assert "ยังไม่ได้คัดแยก" in visible(page) and 'id="classify"' in page.get_data(as_text=True)
    r = console.submit(page, case_path(receipt, "classify"), service="BLD", note="เป็นเรื่องต่อเติมรั้ว")
    page = console.follow(r)
    assert flashes(page)[0] == (f"คัดแยกเรื่อง {receipt} เป็น ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร แล้ว "
                                "· อีเมลตอบรับถึงผู้ยื่น: รอส่ง")
    case = case_row(env, receipt)
    assert case["service_code"] == "BLD" and case["status"] in ("awaiting_documents", "received")
    [event] = events(env, receipt, "officer:classify")
    import getpass

    assert "เป็นเรื่องต่อเติมรั้ว" in event["note"] and event["actor"] == "ผู้ใช้เครื่องนี้"
    assert getpass.getuser() not in visible(page)           # the computer's account name is never shown
    [queued] = [m for m in outbox(env, "manee@example.com") if m["kind"] == "receipt"]
    assert queued["status"] == "queued" and "แบบคำขออนุญาตก่อสร้างอาคาร (ข.1)" in body_of(queued["raw"])
    assert 'id="classify"' not in page.get_data(as_text=True) and "แบบคำขออนุญาตก่อสร้างอาคาร (ข.1)" in visible(page)
    again = console.post(case_path(receipt, "classify"), {"service": "CMP"})
    assert thai_error(again).startswith(f"เรื่อง {receipt} คัดแยกแล้ว")


@serves("POST views.case_forward")
def test_case_forwarded_to_a_unit_of_the_agency_only(env, open_console):
    env.set_forwarding({"BLD": [UNIT]})
    receipt = handled(env, letter("ร้องเรียนน้ำท่วมขังหน้าบ้าน", sender="flood@example.com"))["flood@example.com"]
    console = open_console()
    page = console.get(case_path(receipt))
    assert f'<option value="{html.escape(UNIT)}">' in page.get_data(as_text=True)
    r = console.submit(page, case_path(receipt, "forward"), unit=UNIT, note="น้ำท่วมจากท่อระบายน้ำ")
    page = console.follow(r)
    assert flashes(page)[0] == f"ส่งต่อเรื่อง {receipt} ถึง {UNIT} แล้ว (ส่งในรอบถัดไป / sent at the next cycle)"
    [forward] = outbox(env, "kongchang@example.go.th")
    assert forward["kind"] == "forward" and forward["status"] == "queued"
    assert f"[เลขรับ {receipt}]" in forward["subject"]
    [event] = events(env, receipt, "forwarded")
    assert "กองช่าง" in event["note"] and event["actor"] != "mailbot"
    assert "น้ำท่วมจากท่อระบายน้ำ" in case_row(env, receipt)["action"]
    before = snapshot(env)
    r = console.submit(page, case_path(receipt, "forward"), unit_other="someone@gmail.com")
    assert "โดเมนของหน่วยงาน" in thai_error(r) and snapshot(env) == before      # never outside the agency


@serves("POST views.case_confirm_forward")
def test_staff_forward_confirmed_by_the_officer(env, open_console):
    """With no trust.authserv_id, a forward from a staff address is registered under it and held;
    once the officer confirms it, the case is the citizen's and only the citizen gets a receipt."""
    env.set_config(staff=["clerk@example.go.th"])
    fwd = letter("Fwd: ขออนุญาตก่อสร้างอาคาร", sender="เสมียน <clerk@example.go.th>",
                 body="---------- Forwarded message ---------\nFrom: สมหญิง รักดี <somying@example.com>\n"
                      "Subject: ขออนุญาตก่อสร้างอาคาร\n\nขออนุญาตสร้างบ้านค่ะ")
    receipt = handled(env, fwd)["clerk@example.go.th"]
    console = open_console()
    page = console.get(case_path(receipt))
    assert "ยืนยันว่าเจ้าหน้าที่ส่งต่อจริง" in visible(page)
    page = console.follow(console.submit(page, case_path(receipt, "confirm-forward")))
    assert flashes(page)[0].startswith(f"ยืนยันการส่งต่อแล้ว: เรื่อง {receipt} เป็นของ somying@example.com")
    row = case_row(env, receipt)
    assert (row["sender_addr"], row["via"], row["held"]) == ("somying@example.com", "clerk@example.go.th", None)
    assert [o["kind"] for o in outbox(env, "somying@example.com")] == ["receipt"]
    assert all(o["status"] == "discarded" for o in outbox(env, "clerk@example.go.th"))
    again = console.post(case_path(receipt, "confirm-forward"), {})
    assert thai_error(again).startswith(f"เรื่อง {receipt} ไม่ได้รอการยืนยัน")


@serves("POST views.case_documents")
def test_documents_confirmed_complete_by_the_officer(env, open_console):
    receipt = handled(env, building_request())["somchai@example.com"]
    assert case_row(env, receipt)["status"] == "awaiting_documents"
    console = open_console()
    page = console.get(case_path(receipt))
    page = console.follow(console.submit(page, case_path(receipt, "documents")))
    assert flashes(page)[0] == f"บันทึกว่าเอกสารครบแล้ว: {receipt} (รับเรื่องแล้ว) · แจ้งผู้ยื่น: รอส่ง"
    assert "เจ้าหน้าที่ตรวจแล้ว: ครบ" in visible(page) and "ตรวจแล้ว เอกสารครบ" not in visible(page)
    case = case_row(env, receipt)
    assert case["status"] == "received" and '"confirmed_by"' in case["checklist"]
    [told] = [m for m in outbox(env, "somchai@example.com") if m["kind"] == "documents_complete"]
    assert told["status"] == "queued"


# ---------------------------------------------------------------------------- results

def in_process_signing(env, monkeypatch):  # type: ignore[no-untyped-def]
    """A demo certificate and letterhead for the workspace; the signing helper process replaced
    by the same signing in this process."""
    from mailbot.documents import sign

    from .test_console import signing

    pki = signing(env)                  # the same certificate and letterhead as the browser tests

    class InProcess:
        def __init__(self, p12: bytes, password, timeout: float = 0) -> None:  # type: ignore[no-untyped-def]
            self.signer = sign.load_signer(p12, password)

        def sign(self, data: bytes, **kw):  # type: ignore[no-untyped-def]
            return sign.sign_pdf(data, self.signer, **kw)

        def close(self) -> None:
            pass

    monkeypatch.setattr("mailbot.casework.results.SigningHelper", InProcess)
    return pki


def signed_pdf_to(env, address: str) -> tuple[EmailMessage, bytes]:  # type: ignore[no-untyped-def]
    for msg in reversed(mails_to(env, address)):
        for part in msg.iter_attachments():
            if part.get_content_type() == "application/pdf":
                return msg, part.get_content()
    raise AssertionError(f"no PDF sent to {address}")


def signatures(data: bytes) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return len(PdfFileReader(io.BytesIO(data)).embedded_signatures)


@serves("GET views.results", "POST views.results_letter_preview", "GET views.results_preview_file",
        "POST views.results_sign")
def test_result_letter_previewed_then_signed_and_sent(env, open_console, monkeypatch):
    in_process_signing(env, monkeypatch)
    receipt = handled(env, building_request(message_id="<req-12@example.com>"))["somchai@example.com"]
    console = open_console()
    page = console.get(f"/results?receipt={receipt}")
    assert "ยังไม่ได้ตั้งค่าใบรับรอง" not in thai_page(page, "ส่งผล")
    before = len(env.smtp.messages)
    preview = console.submit(page, "/results/letter", outcome="approved", note="ให้ก่อสร้างตามแบบที่ยื่น")
    text = thai_page(preview, "ตัวอย่างก่อนลงนาม")
    for shown in (f"เลขทะเบียนรับ {receipt}", "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", "ผลการพิจารณา อนุมัติตามคำขอ",
                  "หมายเหตุ ให้ก่อสร้างตามแบบที่ยื่น", "ส่งทางอีเมลถึง somchai@example.com"):
        assert shown in text, shown
    [frame] = re.findall(r'<iframe src="([^"]+)"', preview.get_data(as_text=True))
    pdf = console.get(html.unescape(frame))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"].startswith("inline; filename*=UTF-8''")
    assert pdf.headers["X-Frame-Options"] == "SAMEORIGIN" and "frame-ancestors 'self'" in pdf.headers[
        "Content-Security-Policy"]
    assert signatures(pdf.data) == 0
    assert len(env.smtp.messages) == before and not rows(env, "SELECT * FROM results"), "a preview sends nothing"
    done = console.submit(preview, "/results/sign")
    assert f"✓ ลงนามและส่งแล้ว: {receipt.replace('/', '-')} อนุมัติ.pdf → {receipt}" in thai_page(
        done, "ผลการลงนามและส่ง")
    msg, data = signed_pdf_to(env, "somchai@example.com")
    assert msg["In-Reply-To"] == "<req-12@example.com>" and signatures(data) == 1
    assert case_row(env, receipt)["status"] == "completed"
    [result] = rows(env, "SELECT * FROM results")
    assert result["outcome"] == "approved"
    assert receipt in receipts_listed(console.get("/results"))


@serves("GET views.results", "GET views.results_problem_file", "POST views.results_retry", "POST views.results_upload",
        "GET views.results_preview_file", "POST views.results_sign")
def test_result_problem_retried_and_an_uploaded_result_signed_and_sent(env, open_console, monkeypatch):
    in_process_signing(env, monkeypatch)
    dropped = pdf_file("no number")
    (env.root / "results" / "outbox").mkdir(parents=True, exist_ok=True)
    (env.root / "results" / "outbox" / "ผลการพิจารณา.pdf").write_bytes(dropped)
    got = handled(env, letter("ขอข้อมูลข่าวสาร สำเนาสัญญาจ้าง", sender="info@example.com"),
                  letter("ขอข้อมูลข่าวสาร รายงานการประชุม", sender="info2@example.com"))
    console = open_console()
    # a file without a receipt number went to the problems, with a Thai note: downloaded, then retried
    page = console.get("/results")
    assert "ชื่อไฟล์ไม่มีเลขทะเบียนรับ" in thai_page(page, "ส่งผล")
    [link] = re.findall(r'href="(/results/problems/[^"]+)"', page.get_data(as_text=True))
    download = console.get(html.unescape(link))
    assert download.status_code == 200 and download.data == dropped
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert filename_of(download.headers["Content-Disposition"]) == "ผลการพิจารณา.pdf"
    receipt = got["info@example.com"]
    done = console.submit(page, "/results/retry", receipt=receipt)
    assert f"ผลการพิจารณา.pdf → {receipt}" in thai_page(done, "ผลการลงนามและส่ง") and "ลงนามและส่งแล้ว" in visible(done)
    assert signatures(signed_pdf_to(env, "info@example.com")[1]) == 1
    assert not list((env.root / "results" / "problems").glob("*.pdf"))
    assert "ไฟล์ผลที่มีปัญหา problems 0 ไม่มี" in visible(console.get("/results"))
    # an uploaded PDF: previewed (nothing sent), then signed and sent
    receipt = got["info2@example.com"]
    page = console.get(f"/results?receipt={receipt}")
    upload = pdf_file("Uploaded result")
    preview = console.submit(page, "/results/upload", outcome="approved", file=(io.BytesIO(upload), "ผล.pdf"))
    text = thai_page(preview, "ตัวอย่างก่อนลงนาม")
    assert f"เลขทะเบียนรับ {receipt}" in text and "มุมขวาล่างของหน้าสุดท้าย" in text
    [frame] = re.findall(r'<iframe src="([^"]+)"', preview.get_data(as_text=True))
    assert console.get(html.unescape(frame)).data == upload               # the very file uploaded
    assert len(mails_to(env, "info2@example.com")) == 1, "nothing is sent before the officer confirms"
    done = console.submit(preview, "/results/sign")
    assert f"✓ ลงนามและส่งแล้ว: {receipt.replace('/', '-')} อนุมัติ.pdf → {receipt}" in thai_page(
        done, "ผลการลงนามและส่ง")
    _, data = signed_pdf_to(env, "info2@example.com")
    assert signatures(data) == 1 and data.startswith(upload[:8])
    assert not list((env.root / "results" / "preview").glob("*.pdf"))
    assert case_row(env, receipt)["status"] == "completed"
    not_pdf = console.submit(page, "/results/upload", file=(io.BytesIO(b"MZ not a pdf"), "ผล.pdf"))
    assert thai_error(not_pdf) == "ไฟล์นี้ไม่ใช่ PDF เลือกไฟล์ PDF ของผลการพิจารณา"


# ---------------------------------------------------------------------------- quarantine

@serves("GET views.quarantine", "GET views.quarantine_item", "POST views.quarantine_reprocess")
def test_quarantined_message_shown_then_reprocessed(env, open_console):
    env.set_config(limits={"max_message_mb": 0.01})        # 10 KB: this request is "too large"
    big = letter("ขออนุญาตก่อสร้างอาคาร แนบแบบแปลน", sender="big@example.com")
    big.add_attachment(b"%PDF-1.4\n" + b"x" * 30_000, maintype="application", subtype="pdf", filename="แบบแปลน.pdf")
    assert handled(env, big) == {}
    console = open_console()
    listing = console.get("/quarantine")
    assert "big@example.com" in thai_page(listing, "กักกัน") and "ขออนุญาตก่อสร้างอาคาร แนบแบบแปลน" in visible(listing)
    [item_link] = re.findall(r'href="(/quarantine/\d+)"', listing.get_data(as_text=True))
    item = console.get(item_link)
    text = thai_page(item, f"กักกัน #{item_link.rsplit('/', 1)[1]}")
    assert "too large" in text and "แบบแปลน.pdf" in text and "ดาวน์โหลดต้นฉบับ (.eml)" in text
    env.set_config(limits={"max_message_mb": 25})          # the fix, then back through the pipeline
    after = console.follow(console.submit(item, item_link + "/reprocess"))
    assert any("ย้ายจากโฟลเดอร์" in f for f in flashes(after)), flashes(after)
    assert env.folder_count("กักกัน") == 0 and env.folder_count("INBOX") == 1
    assert handled(env) == {"big@example.com": f"1/{YEAR}"}
    assert "ไม่มีอีเมลที่กักกัน" in visible(console.get("/quarantine"))


@serves("GET views.quarantine_item", "POST views.quarantine_register")
def test_quarantined_message_registered_by_hand(env, open_console):
    handled(env, b"\r\n\r\n")                              # nothing readable: quarantined at once
    [row] = rows(env, "SELECT id FROM messages WHERE outcome='quarantined'")
    console = open_console()
    item = console.get(f"/quarantine/{row['id']}")
    assert "อ่านอีเมลฉบับนี้ไม่ได้" in thai_page(item, f"กักกัน #{row['id']}")
    r = console.submit(item, f"/quarantine/{row['id']}/register", sender_name="สมศรี รักดี",
                       sender_addr="somsri@example.com", subject="ขอข้อมูลข่าวสาร (โทรแจ้ง)", service="INF")
    case = rows(env, "SELECT * FROM cases WHERE sender_addr='somsri@example.com'")[0]
    assert r.headers["Location"] == case_path(case["receipt"])
    page = console.follow(r)
    assert flashes(page)[0] == f"ลงทะเบียนรับแล้ว เลขรับ {case['receipt']} · อีเมลตอบรับ: รอส่ง"
    assert "สมศรี รักดี" in visible(page) and "ขอข้อมูลข่าวสาร (โทรแจ้ง)" in visible(page)
    assert case["service_code"] == "INF" and case["message_row"] == row["id"]
    [receipt_mail] = outbox(env, "somsri@example.com")
    assert receipt_mail["kind"] == "receipt" and receipt_mail["status"] == "queued"
    mail = email.message_from_bytes(bytes(receipt_mail["raw"]), policy=policy.default)
    assert f"[เลขรับ {case['receipt']}]" in mail["Subject"] and "ขอข้อมูลข่าวสารของราชการ" in body_of(receipt_mail["raw"])
    assert "ไม่มีอีเมลที่กักกัน" in visible(console.get("/quarantine"))


# ---------------------------------------------------------------------------- registers and settings

@serves("GET views.registers", "GET views.register_file", "POST views.register_daily", "POST views.register_backup",
        "POST views.register_publish")
def test_registers_downloaded_daily_log_made_backup_written_licences_published(env, open_console, tmp_path):
    import openpyxl

    store = tmp_path / "backup"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    got = handled(env, building_request(), letter("ร้องเรียนถนนชำรุด", sender="road@example.com"))
    console = open_console()
    page = console.get("/registers")
    text = thai_page(page, "ทะเบียนและรายงาน")
    assert f"ทะเบียนหนังสือรับ ปี {YEAR} Excel · PDF (พิมพ์)" in text and "ล่าสุด: ยังไม่เคย" in text, text[text.find("Registers"):][:500]
    links = [unquote(u) for u in re.findall(r'href="(/registers/year/[^"]+)"', page.get_data(as_text=True))]
    assert f"/registers/year/ทะเบียนรับ-{YEAR}.pdf" in links
    [year_link] = [u for u in links if u.endswith(f"ทะเบียนรับ-{YEAR}.xlsx")]
    pdf = console.get(f"/registers/year/ทะเบียนรับ-{YEAR}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    xlsx = console.get(year_link)
    assert xlsx.status_code == 200
    assert xlsx.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert xlsx.headers["Content-Disposition"] == security.content_disposition(f"ทะเบียนรับ-{YEAR}.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    listed = [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(listed) == sorted(got.values())
    # the daily log of the day in the form (today)
    daily = console.submit(page, "/registers/daily")
    assert daily.status_code == 200 and filename_of(daily.headers["Content-Disposition"]) == f"{YEAR}-12-04.xlsx"
    cells = {str(v) for ws in openpyxl.load_workbook(io.BytesIO(daily.data)).worksheets
             for row in ws.iter_rows(values_only=True) for v in row if v is not None}
    assert set(got.values()) <= cells, "the day's log lists the day's cases"
    page = console.get("/registers")
    assert f'href="/registers/daily/{YEAR}-12-04.xlsx"' in page.get_data(as_text=True)
    assert "บันทึกประจำวัน 4 ธันวาคม 2569 Excel" in visible(page)
    assert console.get(f"/registers/daily/{YEAR}-12-04.xlsx").data == daily.data
    after = console.follow(console.submit(page, "/registers/backup"))
    assert flashes(after)[0].startswith("สำรองข้อมูลแล้วและตรวจสอบผ่าน")
    [backup] = list(store.glob("mailbot-backup-*"))
    copy = sqlite3.connect(backup / "state.sqlite3")
    try:
        assert sorted(r[0] for r in copy.execute("SELECT receipt FROM cases")) == sorted(got.values())
    finally:
        copy.close()
    assert "ล่าสุด: 4 ธันวาคม 2569" in visible(after)
    after = console.follow(console.submit(after, "/registers/publish"))
    assert re.fullmatch(r"เผยแพร่ทะเบียนใบอนุญาตแล้ว \d+ ไฟล์ / licence register published", flashes(after)[0])
    [csv_link] = re.findall(r'href="(/registers/public/[^"]+\.csv)"', after.get_data(as_text=True))
    public = [unquote(u) for u in re.findall(r'href="(/registers/public/[^"]+)"', after.get_data(as_text=True))]
    assert {u.rsplit(".", 1)[1] for u in public} == {"xlsx", "pdf", "csv"}       # no .ckan.json for officers
    assert "ทะเบียนใบอนุญาต (เผยแพร่) Excel · PDF (พิมพ์) · CSV (ข้อมูลเปิด)" in visible(after)
    assert console.get(public[0].rsplit(".", 1)[0] + ".ckan.json").status_code == 400
    csv = console.get(csv_link)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert filename_of(csv.headers["Content-Disposition"]) == unquote(csv_link.rsplit("/", 1)[1])


@serves("GET views.settings")
def test_settings_checks_and_a_subject_tried_against_the_rules(env, open_console):
    console = open_console()
    r = console.get("/settings?subject=ขออนุญาต ก่อสร้าง บ้านเลขที่ 12")
    text = thai_page(r, "ตรวจการตั้งค่า")
    result = re.search(r'<div class="result">(.*?)</div>', r.get_data(as_text=True), re.DOTALL)
    assert result and "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร" in html.unescape(result.group(1))
    assert len(re.findall(r'<li class="ok">', r.get_data(as_text=True))) >= 4 and "✓ ไฟล์ตั้งค่า / config" in text
    plain = console.get("/settings")
    assert '<div class="result">' not in plain.get_data(as_text=True)


# ---------------------------------------------------------------------------- sign-in, fonts

def add_officer(env) -> None:  # type: ignore[no-untyped-def]
    from mailbot.store import open_state

    state = open_state(env.cfg)
    try:
        auth.set_password(state, OFFICER, PASSWORD, env.clock(), new=True)
    finally:
        state.close()


@serves("GET views.signin", "POST views.signin", "POST views.signout", "POST views.case_set")
def test_sign_in_acts_as_the_officer_then_sign_out(env, open_console):
    receipt = handled(env, letter("ร้องเรียนถนนชำรุด", sender="road@example.com"))["road@example.com"]
    add_officer(env)
    console = open_console()
    r = console.get(case_path(receipt))
    assert r.status_code == 302 and r.headers["Location"].startswith("/signin?next=")
    form = console.follow(r)
    assert "เข้าสู่ระบบ" in thai_page(form, "เข้าสู่ระบบ")
    wrong = console.submit(form, "/signin", name=OFFICER, password="wrong password")
    assert wrong.status_code == 401 and "ชื่อหรือรหัสผ่านไม่ถูกต้อง" in visible(wrong)
    old = console.client.get_cookie(f"mailbot_console_{PORT}", domain="127.0.0.1").value
    r = console.submit(wrong, "/signin", name=OFFICER, password=PASSWORD)
    assert r.status_code == 302 and r.headers["Location"] == case_path(receipt)
    assert console.client.get_cookie(f"mailbot_console_{PORT}", domain="127.0.0.1").value != old       # a fresh session
    page = console.follow(r)
    assert OFFICER in re.search(r'<div class="who">(.*?)</div>', page.get_data(as_text=True), re.DOTALL).group(1)
    console.follow(console.submit(page, case_path(receipt, "set"), note="ตรวจพื้นที่แล้ว"))
    [note] = events(env, receipt, "officer:note")
    assert note["actor"] == OFFICER and "ตรวจพื้นที่แล้ว" in note["note"]
    out = console.submit(page, "/signout")
    assert out.status_code == 302 and out.headers["Location"] == "/signin"
    assert console.client.get_cookie(f"mailbot_console_{PORT}", domain="127.0.0.1") is None
    plain_refusal(console.submit(page, case_path(receipt, "set"), note="หลังออกจากระบบ"), 403)   # the old form
    assert len(events(env, receipt, "officer:note")) == 1
    again = console.get("/")
    assert again.status_code == 302 and again.headers["Location"].startswith("/signin")


def test_a_signed_in_officer_stays_signed_in_when_the_console_restarts(env, open_console):
    """Sessions live in the state database (by the token's hash only): a new console process over
    the same workspace knows the cookie; flash messages wait there for the next page; removing the
    officer (from any process: the command line) ends their session; an expired one is refused."""
    receipt = handled(env, letter("ร้องเรียนถนนชำรุด", sender="road@example.com"))["road@example.com"]
    add_officer(env)
    first = open_console()
    page = first.follow(first.submit(first.get(f"/signin?next={case_path(receipt)}"), "/signin", name=OFFICER,
                                     password=PASSWORD))
    token = first.client.get_cookie(f"mailbot_console_{PORT}", domain="127.0.0.1").value
    [stored] = rows(env, "SELECT * FROM console_sessions WHERE officer=?", OFFICER)
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in " ".join(str(v) for v in tuple(stored))        # a copy of the database opens nothing
    done = first.submit(page, case_path(receipt, "set"), note="ตรวจพื้นที่แล้ว")   # its flash waits in the database

    second = open_console()                                             # "restarted": a new app, the same cookie
    second.client.set_cookie(f"mailbot_console_{PORT}", token, domain="127.0.0.1")
    page = second.follow(done)
    assert page.status_code == 200 and OFFICER in visible(page) and flashes(page)       # still signed in
    assert flashes(second.get(case_path(receipt))) == []                # a flash is shown once
    second.follow(second.submit(page, case_path(receipt, "set"), note="หลังเริ่มใหม่"))
    assert [e["actor"] for e in events(env, receipt, "officer:note")] == [OFFICER, OFFICER]

    from mailbot.store import open_state

    state = open_state(env.cfg)
    try:
        auth.remove(state, OFFICER)
    finally:
        state.close()
    add_officer(env)                                                    # the same name again: a new account
    r = second.get(case_path(receipt))
    assert r.status_code == 302 and r.headers["Location"].startswith("/signin")
    assert rows(env, "SELECT count(*) FROM console_sessions WHERE officer=?", OFFICER)[0][0] == 0


@serves("GET views.font", "GET static")
def test_fonts_and_stylesheet_served_without_sign_in(env, open_console):
    from mailbot.documents import FONTS

    add_officer(env)
    console = open_console()
    for name in ("Sarabun-Regular.ttf", "Sarabun-Bold.ttf"):
        r = console.get(f"/fonts/{name}")
        assert r.status_code == 200 and r.mimetype == "font/ttf" and r.data == (FONTS / name).read_bytes()
    css = console.get("/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and "@font-face" in css.get_data(as_text=True)
    assert console.get("/").status_code == 302              # the pages themselves need sign-in


# ---------------------------------------------------------------------------- refusals and errors

SAMPLE = {"year": YEAR, "seq": 1, "row": 1, "index": 0, "outbox_id": 1, "verb": "release", "ref": 1, "name": "x.pdf",
          "filename": "console.css"}
KIND = {"views.acknowledge": "flagged", "views.register_file": "year"}


def every_route(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(method, endpoint, a path of it) for every route of the app."""
    adapter = app.url_map.bind(HOST)
    out = []
    for rule in app.url_map.iter_rules():
        values = {k: KIND.get(rule.endpoint, SAMPLE.get(k)) if k == "kind" else SAMPLE[k] for k in rule.arguments}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, rule.endpoint, adapter.build(rule.endpoint, values, method=method)))
    return out


def test_every_form_refused_without_the_page_token_or_from_another_site(env, open_console):
    handled(env, building_request())
    console = open_console()
    console.token()
    before = snapshot(env)
    posts = [(endpoint, path) for method, endpoint, path in every_route(console.app) if method == "POST"]
    assert len(posts) > 10
    for endpoint, path in posts:
        for why, r in (
                ("no token", console.post(path, {"note": "x"}, token=False)),
                ("a guessed token", console.post(path, {"note": "x", "csrf": "guess"})),
                ("another origin", console.post(path, {"note": "x"}, origin="http://evil.example")),
                ("a look-alike origin", console.post(path, {"note": "x"}, origin=f"{ORIGIN}.evil.example")),
                ("no origin or referer", console.post(path, {"note": "x"}, origin=None)),
                ("a referer from elsewhere", console.post(path, {"note": "x"}, origin=None,
                                                          headers={"Referer": "http://evil.example/x"}))):
            text = plain_refusal(r, 403)
            assert "ไม่ได้มาจากหน้าจอเจ้าหน้าที่" in text, (endpoint, why)
    assert snapshot(env) == before and not console.served
    # the same form from the console's own page (its Referer, no Origin) is taken
    r = console.post(case_path(f"1/{YEAR}", "set"), {"note": "จากหน้าจอ"}, origin=None,
                     headers={"Referer": f"{ORIGIN}{case_path(f'1/{YEAR}')}"})
    assert r.status_code == 302 and events(env, f"1/{YEAR}", "officer:note")


def test_every_route_refuses_another_host_with_421(env, open_console):
    console = open_console()
    routes = every_route(console.app)
    assert len(routes) == len({(m, e) for m, e, _ in routes}) >= 30
    for method, endpoint, path in routes:
        for host in ("evil.example:8470", f"127.0.0.1:{PORT + 1}", f"localhost.evil.example:{PORT}"):
            r = console.get(path, host=host) if method == "GET" else console.post(path, {}, host=host, token=False,
                                                                                    origin=f"http://{host}")
            assert "ที่อยู่ของหน้านี้ไม่ถูกต้อง" in plain_refusal(r, 421), (method, endpoint, host)
    assert not console.served
    assert console.get("/", host=f"localhost:{PORT}").status_code == 200


def test_unknown_cases_messages_and_files_get_a_thai_error_page(env, open_console):
    receipt = handled(env, letter("ร้องเรียนถนนชำรุด", sender="road@example.com"))["road@example.com"]
    console = open_console()
    before = snapshot(env)
    unknown = f"99/{YEAR}"
    no_case = f"ไม่พบเรื่องเลขทะเบียนรับ {unknown}"
    asks = [("GET", case_path(unknown), {}, no_case),
            *[("POST", case_path(unknown, action), data, no_case) for action, data in (
                ("set", {"note": "x"}), ("tell", {"message": "x"}), ("close", {}), ("classify", {"service": "BLD"}),
                ("forward", {"unit": UNIT}), ("documents", {}))],
            ("GET", "/messages/99/raw", {}, "ไม่พบอีเมลหมายเลข 99"),
            ("GET", "/messages/99/files/0", {}, "ไม่พบอีเมลหมายเลข 99"),
            ("GET", "/messages/1/files/9", {}, "ไม่พบไฟล์แนบนี้"),
            ("GET", "/quarantine/99", {}, "ไม่พบอีเมลหมายเลข 99"),
            ("POST", "/quarantine/99/reprocess", {}, "ไม่พบอีเมลหมายเลข 99"),
            ("POST", "/quarantine/99/register", {"subject": "x"}, "ไม่พบอีเมลหมายเลข 99"),
            ("POST", "/quarantine/1/register", {"subject": "x"}, "อีเมลหมายเลข 1 ไม่ได้อยู่ในกักกันแล้ว"),
            ("POST", "/held/99/release", {}, "ไม่พบอีเมลที่ระงับไว้หรือส่งไม่สำเร็จหมายเลข 99"),
            ("POST", "/held/99/discard", {}, "ไม่พบอีเมลที่ระงับไว้หรือส่งไม่สำเร็จหมายเลข 99"),
            ("POST", "/ack/flagged/99", {}, "ไม่พบเรื่องนี้"),
            ("GET", "/results/preview/x.pdf", {}, "ไม่พบไฟล์ตัวอย่าง"),
            ("GET", "/results/preview/../../mailbot.yaml", {}, "ไม่พบไฟล์ตัวอย่าง"),
            ("GET", "/results/problems/x.pdf", {}, "ไม่พบไฟล์นี้"),
            ("POST", "/results/sign", {"kind": "upload", "name": "x.pdf"}, "ไม่พบไฟล์ที่อัปโหลดไว้ อัปโหลดใหม่อีกครั้ง"),
            # (a letter refused comes back on the results page, filled in: see
            # test_a_letter_is_previewed_without_a_certificate_and_nothing_typed_is_lost)
            ("POST", "/results/retry", {"name": "x.pdf"}, "ไม่พบไฟล์ x.pdf ใน results/problems"),
            ("POST", "/results/upload", {}, "เลือกไฟล์ PDF ก่อน"),
            ("GET", "/registers/year/x.xlsx", {}, "ไม่พบไฟล์ x.xlsx"),
            ("GET", "/registers/daily/../../mailbot.yaml", {}, "ไม่พบไฟล์ ../../mailbot.yaml"),
            ("POST", "/registers/daily", {"day": "31/02/2569"}, "วันที่ไม่ถูกต้อง: 31/02/2569"),
            ("POST", "/registers/backup", {}, "ยังไม่ได้ตั้งที่เก็บข้อมูลสำรอง (ตั้งในไฟล์ตั้งค่า mailbot.yaml)")]
    wrong = []
    for method, path, data, expected in asks:
        r = console.get(path) if method == "GET" else console.post(path, data)
        try:
            assert thai_error(r).startswith(expected)
        except AssertionError as exc:
            wrong.append(f"{method} {path}: {exc}")
    assert not wrong, "\n".join(wrong)
    assert thai_error(console.get("/nowhere"), 404) == "ไม่พบหน้านี้"
    assert snapshot(env) == before
    assert "ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์" in visible(console.get("/results"))   # said before trying too


BIG = "9" * 20       # a number past SQLite's 64-bit integer
TOO_LARGE = [("GET", f"/messages/{BIG}/raw"), ("GET", f"/messages/{BIG}/files/0"), ("GET", f"/quarantine/{BIG}"),
             ("POST", f"/quarantine/{BIG}/reprocess"), ("POST", f"/held/{BIG}/release"), ("POST", f"/ack/mail/{BIG}"),
             ("POST", f"/ack/flagged/{BIG}")]


def test_a_number_too_large_is_not_found_like_any_other(env, open_console):
    """A number past the database's row numbers matches no page (it never reaches SQLite)."""
    console = open_console()
    answers = {(m, p): console.get(p) if m == "GET" else console.post(p, {}) for m, p in TOO_LARGE}
    assert [r.status_code for r in answers.values()] == [404] * len(TOO_LARGE), [
        f"{m} {p}: {r.status_code}" for (m, p), r in answers.items()]
    assert all(thai_error(r, 404) == "ไม่พบหน้านี้" for r in answers.values())


def test_acknowledging_an_item_that_does_not_exist_is_refused(env, open_console):
    console = open_console()
    answers = [console.post(f"/ack/{kind}/99", {"back": "/"}) for kind in ("mail", "quarantine")]
    assert not rows(env, "SELECT * FROM acknowledged"), "a mark for items that do not exist"
    assert all(thai_error(r).startswith("ไม่พบ") for r in answers)


def test_signing_an_upload_without_a_certificate_leaves_it_staged(env, open_console):
    receipt = handled(env, letter("ขอข้อมูลข่าวสาร", sender="info@example.com"))["info@example.com"]
    console = open_console()
    page = console.get(f"/results?receipt={receipt}")
    preview = console.submit(page, "/results/upload", outcome="approved", file=(io.BytesIO(pdf_file()), "ผล.pdf"))
    assert thai_error(console.submit(preview, "/results/sign")).startswith("ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์")
    assert not list((env.root / "results" / "outbox").glob("*.pdf")), "queued for signing after the refusal"
    assert list((env.root / "results" / "preview").glob("*.pdf"))


def test_an_unknown_font_gets_the_thai_not_found_page(env, open_console):
    console = open_console()
    assert thai_error(console.get("/fonts/x.ttf"), 404) == "ไม่พบหน้านี้"


# ---------------------------------------------------------------------------- every route has a test

def test_every_route_is_served_by_a_test(env):
    """The setup pages' tests live in test_setup_console.py (a workspace of their own) and list
    what they serve the same way, checked the same way at their end."""
    from . import test_setup_console

    routes = {f"{method} {endpoint}" for method, endpoint, _ in every_route(create_app(env.cfg, env.clock, port=PORT))}
    tests = [fn for name, fn in [*globals().items(), *vars(test_setup_console).items()]
             if name.startswith("test_") and inspect.isfunction(fn)]
    listed = set().union(*(getattr(fn, "serves", frozenset()) for fn in tests))
    assert not routes - listed, f"routes no test of this file has served: {sorted(routes - listed)}"
    assert not listed - routes, f"listed in @serves but not a route: {sorted(listed - routes)}"


# ---------------------------------------------------------------------------- now, not at the next cycle

@serves("POST views.poll_now", "POST views.send_now")
def test_the_officer_checks_the_mailbox_and_sends_now(env, open_console):
    """No waiting for the next cycle (up to an hour outside office hours): "ตรวจกล่องอีเมลเดี๋ยวนี้"
    runs a cycle, "ส่งเดี๋ยวนี้" sends what waits; both under the work lock like any officer action."""
    env.deliver(building_request())
    console = open_console()
    page = console.follow(console.submit(console.get("/"), "/poll-now"))
    assert flashes(page)[0].startswith("ตรวจกล่องอีเมลแล้ว: อีเมลใหม่ 1 ฉบับ (ลงทะเบียนรับ 1)"), flashes(page)
    [receipt_mail] = [m for m in env.smtp.messages if "somchai@example.com" in m.rcpt_tos]
    [case] = rows(env, "SELECT * FROM cases")
    assert case["status"] == "awaiting_documents"
    assert "ตรวจกล่องอีเมลแล้ว: ไม่มีอีเมลใหม่" in flashes(console.follow(console.submit(page, "/poll-now")))[0]

    page = console.get(case_path(case["receipt"]))
    assert "ส่งเดี๋ยวนี้" not in visible(page)                      # nothing waits
    page = console.follow(console.submit(page, case_path(case["receipt"], "documents")))
    [told] = [m for m in outbox(env, "somchai@example.com") if m["kind"] == "documents_complete"]
    assert told["status"] == "queued" and "มีอีเมลรอส่งในรอบถัดไป" in visible(page)
    before = len(env.smtp.messages)
    page = console.follow(console.submit(page, "/send-now"))
    assert flashes(page)[0].startswith("ส่งอีเมลแล้ว 1 ฉบับ"), flashes(page)
    assert len(env.smtp.messages) == before + 1 and "somchai@example.com" in env.smtp.messages[-1].rcpt_tos
    [told] = [m for m in outbox(env, "somchai@example.com") if m["kind"] == "documents_complete"]
    assert told["status"] == "sent"
    assert page.request.path == case_path(case["receipt"])          # back where the officer was
    assert "มีอีเมลรอส่ง" not in visible(page) and "/send-now" not in [f.action for f in read(page).forms]
    assert flashes(console.follow(console.post("/send-now", {})))[0].startswith("ไม่มีอีเมลรอส่ง")


@serves("GET views.today", "POST views.acknowledge", "GET views.case")
def test_spam_marked_urgent_is_a_note_listed_once_and_reviewed_as_spam(env, open_console):
    """A spam-flagged mail with ด่วนที่สุด in its subject raises no alert and is not painted urgent;
    it is one row of วันนี้ with all its reasons; its reasons read as plain Thai on the page and
    on the register, the technical text only behind รายละเอียด; looking at it is recorded as
    what it was."""
    spam = letter("ด่วนที่สุด โปรดโอนเงินค่าธรรมเนียมด่วน", sender="promo@lucky.example",
                  X_Spam_Flag="YES", X_Spam_Status="Yes, score=9.1 required=5.0")
    [(_, receipt)] = handled(env, spam).items()
    case = case_row(env, receipt)
    assert case["urgency"] is None and not case["urgency_rank"] and case["held"]
    assert "อีเมลระบุว่าด่วนที่สุด แต่ผู้ส่งยังไม่ผ่านการตรวจสอบ" in case["remark"]
    assert "ด่วนที่สุด" not in [part.strip() for part in case["remark"].split(";")]
    assert not rows(env, "SELECT * FROM outbox WHERE kind='alert'")          # no alarm
    assert not rows(env, "SELECT * FROM alerts WHERE key LIKE 'marked-%'")
    for column in ("remark", "reply_status"):                                 # the register: Thai only
        assert not re.search(r"[A-Za-z]{3,}", case[column] or ""), case[column]
    console = open_console()
    today = console.get("/")
    html_ = today.get_data(as_text=True)
    assert receipts_listed(today) == [receipt]                               # once
    [row] = re.findall(r'<tr class="(\w*)">\s*<td>(.*?)</td>', html_, re.DOTALL)
    assert row[0] == ""                                                      # not painted urgent
    assert re.findall(r'chip k-(\w+)', row[1]) == ["unclassified", "held", "flagged"]
    text = visible(today)
    assert text.count("ระบบกรองอีเมลขยะระบุว่าเป็นอีเมลขยะ") == 1          # held and flagged for it: said once
    assert re.search(r"<summary>รายละเอียด</summary><code>X-Spam-Flag: YES; spam score 9.1 &gt; 5", html_)
    assert "ไม่ส่งอีเมลนี้" in text and "ยกเลิก" not in text
    today = console.follow(console.submit(today, rf"/ack/flagged/\d+"))
    [seen] = events(env, receipt, "officer:reviewed")
    assert seen["note"].startswith("ตรวจอีเมลที่ตรวจสอบผู้ส่งไม่ผ่านแล้ว (ระบบกรองอีเมลขยะระบุว่าเป็นอีเมลขยะ)")
    assert "อ้างเป็นของหน่วยงาน" not in seen["note"]
    page = console.get(case_path(receipt))
    assert "ระบบกรองอีเมลขยะระบุว่าเป็นอีเมลขยะ" in visible(page)


@serves("POST views.case_set")
def test_the_name_set_once_is_who_acts_without_accounts(env, open_console):
    """Without officer accounts, what is done at this computer is recorded under the name set
    once in settings (console.officer_name), on the page, in the history and the audit log."""
    env.set_config(console={"officer_name": "  นางสาวสมหญิง   รักงาน "})
    receipt = handled(env, building_request())["somchai@example.com"]
    console = open_console()
    page = console.follow(console.submit(console.get(case_path(receipt)), case_path(receipt, "set"),
                                         note="โทรแจ้งผู้ยื่นแล้ว"))
    [note] = events(env, receipt, "officer:note")
    assert note["actor"] == "นางสาวสมหญิง รักงาน" and "(นางสาวสมหญิง รักงาน)" in visible(page)
    assert rows(env, "SELECT actor FROM audit WHERE ref=? AND action='event:officer:note'", receipt)[0][0] == \
        "นางสาวสมหญิง รักงาน"


@serves("GET views.results", "POST views.results_letter_preview", "GET views.results_preview_file",
        "POST views.results_sign")
def test_a_letter_is_previewed_without_a_certificate_and_nothing_typed_is_lost(env, open_console):
    """No signing: set up yet: the preview still renders (only signing needs the certificate);
    every refusal brings the form back as the officer filled it in."""
    receipt = handled(env, building_request())["somchai@example.com"]
    assert "signing" not in env.cfg.model_dump(exclude_none=True)
    console = open_console()
    page = console.get(f"/results?receipt={receipt}")
    assert "ดูตัวอย่างหนังสือได้" in visible(page)
    # a rejection without its reason: refused in Thai, the place and holder typed are still there
    refused = console.submit(page, "/results/letter", outcome="rejected", note="", location="ซอยสุขใจ 3",
                             holder="นางสาวมาลี ดีงาม")
    assert refused.status_code == 400 and flashes(refused) == []
    assert "หนังสือแจ้งไม่อนุมัติต้องระบุเหตุผล" in visible(refused)
    kept = [f for f in read(refused).forms if f.action == "/results/letter"][0].values
    assert kept["receipt"] == receipt and kept["outcome"] == "rejected"
    assert kept["location"] == "ซอยสุขใจ 3" and kept["holder"] == "นางสาวมาลี ดีงาม"
    # the preview itself: a PDF, and no button to sign with a certificate that is not there
    preview = console.submit(refused, "/results/letter", note="ที่ดินอยู่ในเขตห้ามก่อสร้าง")
    assert preview.status_code == 200 and "ตัวอย่างก่อนลงนาม" in visible(preview)
    assert "ลงนามและส่ง" not in [b for b in re.findall(r'<button type="submit"[^>]*>([^<]+)<', preview.get_data(as_text=True))]
    [pdf] = re.findall(r'src="(/results/preview/[^"]+)"', preview.get_data(as_text=True))
    got = console.get(unquote(pdf))
    assert got.status_code == 200 and got.get_data().startswith(b"%PDF")
    # แก้ไข brings everything back
    edit = [f for f in read(preview).forms if f.action == "/results" and f.method == "get"][0]
    from urllib.parse import urlencode

    again = console.get("/results?" + urlencode(edit.values))
    assert "ที่ดินอยู่ในเขตห้ามก่อสร้าง" in again.get_data(as_text=True) and "ซอยสุขใจ 3" in again.get_data(as_text=True)
    # signing refused (no certificate): the form comes back filled in, nothing recorded
    before = snapshot(env)
    signed = console.post("/results/sign", {"kind": "letter", **edit.values})
    assert signed.status_code == 400 and "ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์" in visible(signed)
    assert "ที่ดินอยู่ในเขตห้ามก่อสร้าง" in signed.get_data(as_text=True)
    assert snapshot(env) == before
