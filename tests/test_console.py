"""The officer's console (issue 14) in a real browser: Debian's chromium driven by Playwright,
over pymap + aiosmtpd (the ``env`` fixture), the console served by waitress like in an office.

Flows: an unclassified request classified in the console (the citizen gets the service's
receipt), a held reply released (delivered once), a quarantined message reprocessed, a result
letter previewed and then signed and sent (signature validated with pyHanko), a case set in the
console served by a real ``mailbot run`` while it polls. Hostile mail shown as text only (no
script runs: dialogs and console errors are listened for), requests from another origin or with
another Host refused, and on 0.0.0.0 every page needs sign-in.

Screenshots of every page go to ``$MAILBOT_SCREENSHOTS`` (default: a folder in the system's
temporary directory).
"""
from __future__ import annotations

import email
import http.server
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email import policy
from email.headerregistry import Address
from pathlib import Path

import pytest

from mailbot.console.server import ConsoleServer
from mailbot.errors import ConfigError

from .conftest import AGENCY, letter, state_db

pytestmark = pytest.mark.slow   # a browser (Playwright) and waitress

CHROMIUM = os.environ.get("MAILBOT_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"
SHOTS = Path(os.environ.get("MAILBOT_SCREENSHOTS") or Path(tempfile.gettempdir()) / "mailbot-console-screenshots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    why = _missing()
    if why:
        if IN_CI:
            pytest.fail(why + ": .ci/run must install it")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=ARGS)
        yield b
        b.close()


class Watch:
    """Everything a page did that it should not: dialogs (alert/confirm from injected script),
    errors in the console (a CSP refusal is one), uncaught exceptions."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def attach(self, page) -> None:  # type: ignore[no-untyped-def]
        def on_dialog(d):  # type: ignore[no-untyped-def]
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        def on_console(m):  # type: ignore[no-untyped-def]
            # a page answered with an error status (a refusal, a Thai error page) is what the test
            # asked for; a missing stylesheet, font or script is not
            if m.type != "error" or (m.text.startswith("Failed to load resource")
                                     and m.location.get("url") == page.url):
                return
            self.errors.append(f"{m.text} ({m.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def clean(self) -> None:
        assert not self.dialogs, f"a script ran: {self.dialogs}"
        assert not self.errors, f"console errors: {self.errors}"


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="th-TH", accept_downloads=True)
    pg = context.new_page()
    pg.watch = Watch()
    pg.watch.attach(pg)
    yield pg
    context.close()
    pg.watch.clean()


@pytest.fixture
def start_console(env):  # type: ignore[no-untyped-def]
    servers: list[ConsoleServer] = []

    def start(**console) -> ConsoleServer:  # type: ignore[no-untyped-def]
        if console:
            env.set_config(console=console)
        srv = ConsoleServer(env.cfg, clock=env.clock, port=0).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def shot(page, name: str, full: bool = True) -> Path:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def no_overflow(page) -> None:  # type: ignore[no-untyped-def]
    """Nothing pushes the page wider than the 1366-pixel office screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the page is {width} px wide"


def db(env) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    return state_db(env.cfg)


def mails_to(env, address: str) -> list[email.message.EmailMessage]:  # type: ignore[no-untyped-def]
    return [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages if address in m.rcpt_tos]


def body(msg) -> str:  # type: ignore[no-untyped-def]
    return msg.get_body(("plain",)).get_content()


def cycle(env):  # type: ignore[no-untyped-def]
    """One cycle in a thread of its own: Playwright's sync API keeps an event loop running in this
    one, and mailbot's SMTP client runs its own loop."""
    return in_thread(env.cycle)


def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run asyncio-using code (mailbot's SMTP client, pyHanko's validator) beside Playwright."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(_catch(lambda: fn(*args))))
    t.start()
    t.join(300)
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _catch(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
        return exc


def wait_for(predicate, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def get(url: str, method: str = "GET", data: dict | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
    encoded = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=encoded, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode("utf-8", "replace"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), e.headers


# ---------------------------------------------------------------------------- flows

def test_unclassified_request_classified_in_the_console(env, start_console, page):
    env.deliver(letter("สอบถามเรื่องการขออนุญาตทำรั้วบ้าน", sender="มานี มีนา <manee@example.com>",
                       message_id="<fence-1@example.com>"))
    [h] = cycle(env).handled
    [first] = mails_to(env, "manee@example.com")
    assert "ยังไม่ได้ระบุ" in body(first) or "เจ้าหน้าที่" in body(first)
    srv = start_console()
    page.goto(srv.url)
    assert page.title().startswith("วันนี้")
    row = page.locator("table.queue tr", has_text=h.receipt)
    assert row.locator(".chip").inner_text() == "รอคัดแยก"
    no_overflow(page)
    shot(page, "01-today")
    row.get_by_role("link", name="คัดแยก").click()
    assert page.url.endswith("#classify")
    page.select_option("#classify select[name=service]", "BLD")
    page.fill("#classify input[name=note]", "เป็นเรื่องต่อเติมรั้ว")
    page.locator("#classify button[type=submit]").click()
    page.wait_for_load_state()
    assert "คัดแยกเรื่อง" in page.locator(".flash").first.inner_text()
    assert page.locator("h1 .badge").inner_text() in ("รอเอกสารเพิ่มเติม", "รับเรื่องแล้ว")
    no_overflow(page)
    shot(page, "02-case-classified")
    cycle(env)                                     # the next cycle sends what was queued
    mails = mails_to(env, "manee@example.com")
    assert len(mails) == 2
    receipt = mails[1]
    text = body(receipt)
    assert "ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร" in text      # the service's own wording
    assert "แบบคำขออนุญาตก่อสร้างอาคาร (ข.1)" in text                       # its checklist
    assert f"[เลขรับ {h.receipt}]" in receipt["Subject"]
    assert receipt["In-Reply-To"] == "<fence-1@example.com>"
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (h.receipt,)).fetchone()
    assert case["service_code"] == "BLD" and case["status"] in ("awaiting_documents", "received")
    event = db(env).execute("SELECT * FROM case_events WHERE kind='officer:classify'").fetchone()
    assert event["actor"] == "ผู้ใช้เครื่องนี้" and "เป็นเรื่องต่อเติมรั้ว" in event["note"]   # never the OS account
    # the queue no longer lists it
    page.goto(srv.url)
    assert page.locator("table.queue tr", has_text=h.receipt).count() == 0
    # the case list with a filter and a search, then print view
    page.goto(srv.url + "cases?service=BLD&q=" + urllib.parse.quote("มานี"))
    assert page.locator("table.list tbody tr").count() == 1
    shot(page, "03-cases-search")
    seq, year = h.receipt.split("/")
    page.goto(f"{srv.url}cases/{year}/{seq}")
    page.emulate_media(media="print")
    shot(page, "04-case-print")
    page.emulate_media(media="screen")


def test_held_reply_released_is_delivered_once(env, start_console, page):
    env.set_config(limits={"replies_per_sender_per_day": 1})
    env.deliver(letter("ร้องเรียนถนนชำรุด ซอย 1", sender="busy@example.com"),
                letter("ร้องเรียนไฟฟ้าสาธารณะดับ ซอย 2", sender="busy@example.com"))
    cycle(env)
    assert len(mails_to(env, "busy@example.com")) == 1
    held = db(env).execute("SELECT * FROM outbox WHERE status='held'").fetchone()
    assert held is not None
    srv = start_console()
    page.goto(srv.url)
    row = page.locator("table.queue tr", has=page.locator(".chip", has_text="อีเมลระงับไว้"))
    assert row.count() == 1
    row.get_by_role("button", name="ปล่อยส่ง").click()
    page.wait_for_load_state()
    assert "ปล่อยอีเมล" in page.locator(".flash").first.inner_text()
    assert page.locator("table.queue .chip", has_text="อีเมลระงับไว้").count() == 0
    cycle(env)
    cycle(env)
    sent = [m for m in env.smtp.messages if held["message_id"] in m.data.decode("utf-8", "replace")]
    assert len(sent) == 1, "the released reply must be delivered exactly once"
    assert len(mails_to(env, "busy@example.com")) == 2
    row = db(env).execute("SELECT * FROM outbox WHERE id=?", (held["id"],)).fetchone()
    assert row["status"] == "sent" and "released by" in row["hold_reason"]


def test_quarantined_message_reprocessed(env, start_console, page):
    env.set_config(limits={"max_message_mb": 0.01})           # 10 KB: this request is "too large"
    big = letter("ขออนุญาตก่อสร้างอาคาร แนบแบบแปลน", sender="big@example.com")
    big.add_attachment(b"%PDF-1.4\n" + b"x" * 30_000, maintype="application", subtype="pdf", filename="แบบแปลน.pdf")
    env.deliver(big)
    [h] = cycle(env).handled
    assert h.outcome == "quarantined"
    assert env.folder_count("กักกัน") == 1
    srv = start_console()
    page.goto(srv.url + "quarantine")
    assert page.locator("table.list tbody tr").count() == 1
    shot(page, "05-quarantine")
    page.get_by_role("link", name="ดู").first.click()
    assert "อีเมลมีขนาดใหญ่เกินกว่าที่รับได้" in page.locator("td.bad").inner_text()   # plain Thai
    page.locator("td.bad details.tech summary").click()                              # the detail behind รายละเอียด
    assert "too large" in page.locator("td.bad details.tech code").inner_text()
    assert "แบบแปลน.pdf" in page.locator("ul.files").inner_text()
    with page.expect_download() as dl:
        page.get_by_role("link", name="ดาวน์โหลดต้นฉบับ (.eml)").click()
    raw = Path(dl.value.path()).read_bytes()
    assert b"big@example.com" in raw and len(raw) > 30_000
    no_overflow(page)
    shot(page, "06-quarantine-item")
    env.set_config(limits={"max_message_mb": 25})             # the fix
    page.get_by_role("button", name="ประมวลผลใหม่").click()
    page.wait_for_load_state()
    assert "ย้ายจากโฟลเดอร์" in page.locator(".flash").first.inner_text()
    assert env.folder_count("กักกัน") == 0 and env.folder_count("INBOX") == 1
    [h2] = cycle(env).handled
    assert h2.outcome == "registered" and h2.receipt
    assert env.folder_count("ลงทะเบียนแล้ว") == 1 and env.folder_count("INBOX") == 0
    assert any(f"[เลขรับ {h2.receipt}]" in m["Subject"] for m in mails_to(env, "big@example.com"))
    assert db(env).execute("SELECT count(*) FROM messages WHERE outcome='quarantined'").fetchone()[0] == 0
    page.goto(srv.url + "quarantine")
    assert "ไม่มีอีเมลที่กักกัน" in page.locator("table.list").inner_text()


def test_quarantined_message_registered_by_hand(env, start_console, page):
    env.deliver(b"\r\n\r\n")                                  # nothing readable: quarantined at once
    [h] = cycle(env).handled
    assert h.outcome == "quarantined"
    srv = start_console()
    row_id = db(env).execute("SELECT id FROM messages WHERE outcome='quarantined'").fetchone()[0]
    page.goto(srv.url + f"quarantine/{row_id}")
    page.fill("input[name=sender_name]", "สมศรี รักดี")
    page.fill("input[name=sender_addr]", "somsri@example.com")
    page.fill("input[name=subject]", "ขอข้อมูลข่าวสาร (โทรแจ้ง)")
    page.select_option("select[name=service]", "INF")
    page.get_by_role("button", name="ลงทะเบียนรับ").click()
    page.wait_for_load_state()
    assert "ลงทะเบียนรับแล้ว เลขรับ" in page.locator(".flash").first.inner_text()
    case = db(env).execute("SELECT * FROM cases WHERE sender_addr='somsri@example.com'").fetchone()
    assert case["service_code"] == "INF" and case["message_row"] == row_id
    journal = (env.cfg.data_dir / "archive" / str(case["year_be"]) / "receipts.tsv").read_text(encoding="utf-8")
    assert case["receipt"] in journal                        # never issued twice after a restore
    cycle(env)
    assert any(f"[เลขรับ {case['receipt']}]" in m["Subject"] for m in mails_to(env, "somsri@example.com"))


def signing(env):  # type: ignore[no-untyped-def]
    from mailbot.documents.certs import make_demo_pki
    from mailbot.documents.letters import placeholder_emblem

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    (env.root / "emblem.png").write_bytes(placeholder_emblem())
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password,
                            "signer_name": "นายสมศักดิ์ ใจดี"},
                   results={"stable_seconds": 0},
                   letters={"emblem": "emblem.png", "signer_name": "นายสมศักดิ์ ใจดี",
                            "signer_position": "นายกเทศมนตรีตำบลบ้านตัวอย่าง",
                            "address": ["99 หมู่ 1 ตำบลบ้านตัวอย่าง", "อำเภอเมือง จังหวัดตัวอย่าง 10000"],
                            "unit": "สำนักปลัดเทศบาล งานธุรการ", "phone": "0 2000 0000"})
    env.pki = pki
    return pki


def test_result_letter_previewed_then_signed_and_sent(env, start_console, page):
    from .test_results import sent_pdf, trust, validate

    signing(env)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", sender="สมชาย ใจดี <somchai@example.com>",
                       message_id="<req-12@example.com>"))
    [h] = cycle(env).handled
    before = len(env.smtp.messages)
    srv = start_console()
    page.goto(srv.url + "results?receipt=" + urllib.parse.quote(h.receipt))
    shot(page, "07-results")
    letter_form = page.locator("form", has=page.locator("textarea[name=note]"))
    letter_form.locator("select[name=outcome]").select_option("approved")
    letter_form.locator("textarea[name=note]").fill("ให้ก่อสร้างตามแบบที่ยื่น")
    letter_form.get_by_role("button", name="ดูตัวอย่างก่อนลงนาม").click()
    page.wait_for_load_state()
    assert page.title().startswith("ตัวอย่างก่อนลงนาม")
    frame_src = page.locator("section.pdf iframe").get_attribute("src")
    status, pdf, headers = get(srv.url.rstrip("/") + frame_src)
    assert status == 200 and pdf.startswith("%PDF") and headers["X-Frame-Options"] == "SAMEORIGIN"
    preview = list((env.root / "results" / "preview").glob("*.pdf"))
    assert len(preview) == 1 and "ตัวอย่าง" in preview[0].name
    assert len(env.smtp.messages) == before, "a preview sends nothing"
    assert db(env).execute("SELECT count(*) FROM results").fetchone()[0] == 0
    page.wait_for_timeout(800)                       # the PDF viewer draws the first page
    shot(page, "08-result-preview", full=False)
    page.get_by_role("button", name="ลงนามและส่ง").click()
    page.wait_for_load_state()
    assert "ลงนามและส่งแล้ว" in page.locator("ul.outcome").inner_text()
    shot(page, "09-result-sent")
    msg, filename, data = sent_pdf(env)
    assert msg["In-Reply-To"] == "<req-12@example.com>" and filename.endswith(".pdf")
    st = in_thread(validate, data, trust(env))
    assert st.intact and st.valid and st.trusted
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (h.receipt,)).fetchone()
    assert case["status"] == "completed"
    page.goto(srv.url + "results")
    assert h.receipt in page.locator("table.list").inner_text()


def test_uploaded_result_and_a_problem_retried(env, start_console, page):
    from .test_results import make_pdf, sent_pdf, trust, validate

    signing(env)
    env.deliver(letter("ขอข้อมูลข่าวสาร สำเนาสัญญาจ้าง", sender="info@example.com"))
    [h] = cycle(env).handled
    n = h.receipt.split("/")[0]
    (env.root / "results" / "outbox").mkdir(parents=True, exist_ok=True)
    (env.root / "results" / "outbox" / "ผลการพิจารณา.pdf").write_bytes(make_pdf("no number"))
    cycle(env)                                       # no receipt in the name: a problem with its .txt
    srv = start_console()
    page.goto(srv.url)
    assert page.locator("table.queue .chip", has_text="ไฟล์ผลมีปัญหา").count() == 1
    page.goto(srv.url + "results")
    problem = page.locator("article.problem")
    assert "ชื่อไฟล์ไม่มีเลขทะเบียนรับ" in problem.inner_text()
    problem.locator("input[name=receipt]").fill(h.receipt)
    problem.get_by_role("button", name="ลองใหม่ (ลงนามและส่ง)").click()
    page.wait_for_load_state()
    assert "ลงนามและส่งแล้ว" in page.locator("ul.outcome").inner_text()
    _, _, data = sent_pdf(env, to="info@example.com")
    assert in_thread(validate, data, trust(env)).intact
    assert not list((env.root / "results" / "problems").glob("*.pdf"))
    # an uploaded PDF: previewed (nothing sent), then signed and sent
    env.deliver(letter("ขอข้อมูลข่าวสาร รายงานการประชุม", sender="info2@example.com"))
    [h2] = cycle(env).handled
    page.goto(srv.url + "results")
    upload = page.locator("form[enctype='multipart/form-data']")
    upload.locator("input[name=receipt]").fill(h2.receipt)
    upload.locator("select[name=outcome]").select_option("approved")
    pdf_path = env.root / "upload.pdf"
    pdf_path.write_bytes(make_pdf("Uploaded result"))
    upload.locator("input[type=file]").set_input_files(str(pdf_path))
    upload.get_by_role("button", name="ดูตัวอย่างก่อนลงนาม").click()
    page.wait_for_load_state()
    assert not mails_to(env, "info2@example.com")[1:], "nothing is sent before the officer confirms"
    cycle(env)                                       # a cycle meanwhile does not sign a staged file
    assert len(mails_to(env, "info2@example.com")) == 1
    page.get_by_role("button", name="ลงนามและส่ง").click()
    page.wait_for_load_state()
    assert "ลงนามและส่งแล้ว" in page.locator("ul.outcome").inner_text()
    _, name, data = sent_pdf(env, to="info2@example.com")
    assert in_thread(validate, data, trust(env)).intact and n not in name


def test_case_set_in_the_console_while_mailbot_run_polls(env, page):
    port = _free_port()
    env.set_config(console={"port": port},
                   schedule={"idle": True, "every_minutes": 600, "after_hours_every_minutes": 600, "workdays": []})
    env.deliver(letter("ร้องเรียนเสียงดังจากโรงงาน", sender="loud@example.com"))
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    try:
        assert wait_for(lambda: mails_to(env, "loud@example.com"), 60), "the service did not poll"
        url = f"http://127.0.0.1:{port}/"
        assert wait_for(lambda: get(url)[0] == 200, 30), "mailbot run does not serve the console"
        status = env.cli("status")
        assert url in status.stdout and "ยังไม่เปิด" not in status.stdout
        receipt = db(env).execute("SELECT receipt FROM cases").fetchone()[0]
        seq, year = receipt.split("/")
        page.goto(f"{url}cases/{year}/{seq}")
        page.select_option("#status select[name=status]", "in_progress")
        page.fill("#status textarea[name=note]", "ส่งเจ้าหน้าที่ตรวจสอบพื้นที่")
        page.locator("#status button[type=submit]").click()
        page.wait_for_load_state()
        assert page.locator("h1 .badge").inner_text() == "อยู่ระหว่างดำเนินการ"
        page.fill("#tell textarea[name=message]", "เจ้าหน้าที่จะเข้าตรวจในวันพรุ่งนี้")
        page.locator("#tell button[type=submit]").click()
        page.wait_for_load_state()
        shot(page, "10-case-set-while-running")
        # new mail wakes the service (IDLE): its cycle sends what the officer queued
        time.sleep(1.0)
        env.deliver(letter("ร้องเรียนถนนชำรุด", sender="other@example.com"))
        assert wait_for(lambda: len(mails_to(env, "loud@example.com")) >= 3, 60), [
            m["Subject"] for m in mails_to(env, "loud@example.com")]
        texts = [body(m) for m in mails_to(env, "loud@example.com")]
        assert any("เจ้าหน้าที่จะเข้าตรวจในวันพรุ่งนี้" in t for t in texts)
        assert not any("ส่งเจ้าหน้าที่ตรวจสอบพื้นที่" in t for t in texts), "an internal note is never mailed"
        case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (receipt,)).fetchone()
        assert case["status"] == "in_progress" and "ส่งเจ้าหน้าที่ตรวจสอบพื้นที่" in case["action"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert not _listening(port), "the console stops with the service"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- hostile mail

HOSTILE_SUBJECT = '<script>alert("subject")</script> ขออนุญาตก่อสร้าง "><img src=x onerror=alert(1)>'
HOSTILE_NAME = '"><img src=x onerror=alert(2)> <script>alert(3)</script>'
RTL = "ใบแจ้งหนี้\u202efdp.exe"


def hostile_messages() -> list[bytes]:
    html = email.message.EmailMessage()
    html["From"] = Address(display_name=HOSTILE_NAME, addr_spec="evil@example.com")
    html["To"] = AGENCY
    html["Subject"] = HOSTILE_SUBJECT
    html["Message-ID"] = "<hostile-1@example.com>"
    html.set_content('<p>สวัสดี</p><script>alert("body")</script><a href="javascript:alert(4)">คลิก</a>'
                     '<img src="x" onerror="alert(5)"><iframe src="javascript:alert(6)"></iframe>', subtype="html")
    for name in ('"><img src=x onerror=alert(7)>.pdf', "javascript:alert(8).pdf", RTL,
                 "<script>alert(9)</script>.jpg"):
        html.add_attachment(b"%PDF-1.4\nhostile\n", maintype="application", subtype="octet-stream", filename=name)
    unclassified = letter('ไม่มีหมวด <b onmouseover=alert(10)>ตัวหนา</b> javascript:alert(11) ' + "\u202eกลับด้าน"
                          + "ยาว" * 150, sender='"\u202eRTL ชื่อ" <rtl@example.com>')
    return [bytes(html), bytes(unclassified), b"\r\n\r\n<script>alert(12)</script>\r\n"]


def test_hostile_content_is_shown_as_text_and_no_script_runs(env, start_console, page):
    env.deliver(*hostile_messages())
    cycle(env)
    srv = start_console()
    con = db(env)
    hostile = con.execute("SELECT * FROM cases WHERE sender_addr='evil@example.com'").fetchone()
    seq, year = hostile["receipt"].split("/")
    pages = {"11-hostile-today": srv.url, "12-hostile-cases": srv.url + "cases",
             "13-hostile-case": f"{srv.url}cases/{year}/{seq}", "14-hostile-quarantine": srv.url + "quarantine"}
    qrow = con.execute("SELECT id FROM messages WHERE outcome='quarantined'").fetchone()
    pages["15-hostile-quarantine-item"] = f"{srv.url}quarantine/{qrow[0]}"
    other = con.execute("SELECT receipt FROM cases WHERE sender_addr='rtl@example.com'").fetchone()[0]
    pages["16-hostile-case-rtl"] = f"{srv.url}cases/{other.split('/')[1]}/{other.split('/')[0]}"
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.locator("img, iframe:not(section.pdf iframe), script:not([src])").count() == 0
        assert page.locator("a[href^='javascript:']").count() == 0
        assert page.evaluate("document.querySelectorAll('[onerror],[onmouseover],[onclick]').length") == 0
        no_overflow(page)
        shot(page, name)
    page.goto(pages["13-hostile-case"])
    text = page.locator("main").inner_text()
    assert '<script>alert("subject")</script>' in text and "onerror=alert(2)" in text   # shown, as text
    assert 'alert("body")' not in text                  # HTML mail: its text only, scripts dropped
    assert "\u202e" not in page.content(), "bidirectional overrides are removed"
    # downloads: a hostile name becomes a safe one, always as an attachment, never sniffed
    links = page.locator("ul.files a")
    assert links.count() == 4
    for i in range(links.count()):
        href = links.nth(i).get_attribute("href")
        status, _, headers = get(srv.url.rstrip("/") + href)
        assert status == 200
        assert headers["Content-Disposition"].startswith("attachment; filename=\"")
        assert "filename*=UTF-8''" in headers["Content-Disposition"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Type"] == "application/octet-stream"
        with page.expect_download() as dl:
            links.nth(i).click()
        name = dl.value.suggested_filename
        assert "/" not in name and "\\" not in name and "\u202e" not in name and not name.startswith(".")
    # the rules test box echoes a hostile subject as text
    page.goto(srv.url + "settings?subject=" + urllib.parse.quote(HOSTILE_SUBJECT))
    assert HOSTILE_SUBJECT.split(" ")[0] in page.locator("form input[name=subject]").input_value()
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    shot(page, "17-settings")


# ---------------------------------------------------------------------------- other sites, other hosts

def test_another_origin_and_another_host_are_refused(env, start_console, page):
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="road@example.com"))
    [h] = cycle(env).handled
    srv = start_console()
    seq, year = h.receipt.split("/")
    action = f"{srv.url}cases/{year}/{seq}/close"
    # a plain request from elsewhere: no token, another Origin
    assert get(action, "POST", {"note": "x"}, {"Origin": "http://evil.example"})[0] == 403
    assert get(action, "POST", {"note": "x"}, {"Origin": srv.url.rstrip("/")})[0] == 403      # no token
    assert get(action, "POST", {"note": "x", "csrf": "guess"}, {})[0] == 403                  # no origin
    # DNS rebinding: the right address, another name
    assert get(srv.url, headers={"Host": f"evil.example:{srv.port}"})[0] == 421
    assert get(srv.url, headers={"Host": f"127.0.0.1:{srv.port + 1}"})[0] == 421
    assert get(srv.url, headers={"Host": f"localhost:{srv.port}"})[0] == 200
    # a real page on another origin that posts a form to the console as soon as it opens
    attacker = tempfile.mkdtemp()
    Path(attacker, "index.html").write_text(
        f'<html><body><form id="f" method="post" action="{action}"><input name="note" value="pwned">'
        '<input name="csrf" value="x"></form><script>document.getElementById("f").submit()</script></body></html>',
        encoding="utf-8")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=attacker, **kw)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.goto(srv.url)                          # the officer has the console open (a session cookie)
        evil_page = page.context.new_page()
        refused = []
        evil_page.on("response", lambda r: refused.append(r.status) if r.url == action else None)
        evil_page.goto(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
        assert wait_for(lambda: refused, 10)
        assert refused == [403]
        evil_page.close()
    finally:
        evil.shutdown()
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (h.receipt,)).fetchone()
    assert case["status"] != "closed" and "pwned" not in (case["action"] or "")
    # the console's own form works (token + origin)
    page.goto(f"{srv.url}cases/{year}/{seq}")
    page.fill("#close input[name=note]", "ซ่อมแล้ว")
    page.locator("#close button[type=submit]").click()
    page.wait_for_load_state()
    assert db(env).execute("SELECT status FROM cases WHERE receipt=?", (h.receipt,)).fetchone()[0] == "closed"
    # headers on every page
    status, _, headers = get(srv.url)
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers[
        "Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_listening_for_other_computers_needs_accounts_and_sign_in(env, start_console, page):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="citizen@example.com"))
    [h] = cycle(env).handled
    env.set_config(console={"listen": "0.0.0.0"})
    with pytest.raises(ConfigError) as err:
        ConsoleServer(env.cfg, clock=env.clock, port=0).start()
    assert "บัญชีเจ้าหน้าที่" in err.value.thai and "mailbot console user add" in err.value.english
    r = env.cli("console", "--no-browser", "--port", str(_free_port()))
    assert r.returncode == 2 and "บัญชีเจ้าหน้าที่" in r.stderr and "Traceback" not in r.stderr
    # an account, with the password typed twice (no terminal here: getpass reads standard input)
    add = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "console", "user", "add",
                          "นายสมศักดิ์"], input="correct horse 1\ncorrect horse 1\n", capture_output=True, text=True,
                         encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"}, start_new_session=True,
                         timeout=60)
    assert add.returncode == 0, add.stderr
    mismatch = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "console", "user",
                               "add", "other"], input="password-1\npassword-2\n", capture_output=True, text=True,
                              encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                              start_new_session=True, timeout=60)
    assert mismatch.returncode == 2 and "ไม่ตรงกัน" in mismatch.stderr
    row = db(env).execute("SELECT * FROM officers").fetchone()
    assert row["name"] == "นายสมศักดิ์" and "correct horse" not in row["password_hash"]
    assert row["password_hash"].startswith("scrypt:32768:8:1$")          # werkzeug.security's scrypt
    srv = start_console()
    seq, year = h.receipt.split("/")
    for path in ("", "cases", f"cases/{year}/{seq}", "results", "quarantine", "registers", "settings",
                 "messages/1/raw", "registers/year/x.xlsx"):
        status, _, headers = _no_redirect(srv.url + path)
        assert status == 302 and "/signin" in headers["Location"], path
    assert get(srv.url + "static/console.css")[0] == 200
    page.goto(srv.url + f"cases/{year}/{seq}")
    assert "/signin" in page.url
    shot(page, "18-signin")
    page.fill("input[name=name]", "นายสมศักดิ์")
    page.fill("input[name=password]", "wrong password")
    page.get_by_role("button", name="เข้าสู่ระบบ").click()
    assert "ไม่ถูกต้อง" in page.locator(".flash.bad").inner_text()
    page.fill("input[name=name]", "นายสมศักดิ์")
    page.fill("input[name=password]", "correct horse 1")
    page.get_by_role("button", name="เข้าสู่ระบบ").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{year}/{seq}") and "นายสมศักดิ์" in page.locator("header .who").inner_text()
    page.fill("#status textarea[name=note]", "ตรวจแบบแล้ว")
    page.locator("#status button[type=submit]").click()
    page.wait_for_load_state()
    event = db(env).execute("SELECT * FROM case_events WHERE kind='officer:note'").fetchone()
    assert event["actor"] == "นายสมศักดิ์"
    # sessions expire
    with db(env) as con:
        con.execute("UPDATE console_sessions SET expires=0")
    page.goto(srv.url)
    assert "/signin" in page.url
    page.fill("input[name=name]", "นายสมศักดิ์")
    page.fill("input[name=password]", "correct horse 1")
    page.get_by_role("button", name="เข้าสู่ระบบ").click()
    page.wait_for_load_state()
    # sign out
    page.get_by_role("button", name="ออกจากระบบ").click()
    page.wait_for_load_state()
    assert "/signin" in page.url
    page.goto(srv.url + "cases")
    assert "/signin" in page.url


def _no_redirect(url: str):  # type: ignore[no-untyped-def]
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), e.headers


# ---------------------------------------------------------------------------- the other pages

def test_registers_settings_and_the_work_queue(env, start_console, page, tmp_path):
    store = tmp_path / "backup"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"),
                letter("เรื่องทั่วไปที่ไม่มีหมวด", sender="b@example.com"))
    cycle(env)
    srv = start_console()
    page.goto(srv.url + "registers")
    with page.expect_download() as dl:
        page.locator("tr", has_text="ทะเบียนหนังสือรับ ปี").locator("a.dl", has_text="Excel").first.click()
    assert dl.value.suggested_filename.startswith("ทะเบียนรับ-") and dl.value.suggested_filename.endswith(".xlsx")
    import io

    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert wb.active.max_row == 3
    with page.expect_download() as dl:
        page.get_by_role("button", name="สร้างและดาวน์โหลด").click()
    assert dl.value.suggested_filename.endswith(".xlsx")
    page.goto(srv.url + "registers")
    page.get_by_role("button", name="สำรองข้อมูลเดี๋ยวนี้").click()
    page.wait_for_load_state()
    assert "สำรองข้อมูลแล้ว" in page.locator(".flash").first.inner_text()
    assert list(store.glob("mailbot-backup-*"))
    shot(page, "19-registers")
    page.goto(srv.url + "settings?subject=" + urllib.parse.quote("ขออนุญาต ก่อสร้าง บ้านเลขที่ 12"))
    assert "BLD" in page.locator(".result").inner_text() or "ก่อสร้าง" in page.locator(".result").inner_text()
    assert page.locator("ul.checks li.ok").count() >= 4
    shot(page, "20-settings")
    page.goto(srv.url + "cases/2569/99999")
    assert "ไม่พบเรื่อง" in page.locator("main").inner_text()
    shot(page, "21-error")


def test_mailbot_console_command_serves_and_stops(env):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "console",
                             "--port", str(port), "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    try:
        assert wait_for(lambda: _listening(port), 30)
        status, text, _ = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "วันนี้" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        r = env.cli("console", "--no-browser", "--port", str(busy.getsockname()[1]))
        assert r.returncode != 0 and "พอร์ต" in r.stderr and "Traceback" not in r.stderr
    finally:
        busy.close()


def test_forward_by_hand_documents_complete_and_flagged_mail(env, start_console, page):
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    complaint = letter("ร้องเรียนน้ำท่วมขังหน้าบ้าน", sender="flood@example.com")
    complaint.add_attachment(b"%PDF-1.4\nphoto\n", maintype="application", subtype="pdf", filename="รูปถ่าย.pdf")
    scans = letter("ขออนุญาตก่อสร้างอาคาร", sender="scan@example.com")
    for i in range(3):
        scans.add_attachment(b"%PDF-1.4\n" + b"x" * 2048, maintype="application", subtype="pdf", filename=f"scan{i}.pdf")
    spoof = letter("ขอข้อมูลข่าวสาร", sender="ผู้อำนวยการ <director@example.go.th>",
                   Authentication_Results="mx.example.go.th; spf=fail smtp.mailfrom=example.go.th; dmarc=fail")
    env.deliver(complaint, scans, spoof)
    handled = {h.sender: h for h in cycle(env).handled}
    srv = start_console()
    page.goto(srv.url)
    chips = page.locator("table.queue .chip").all_inner_texts()
    assert "รอตรวจเอกสาร" in chips and "ตรวจสอบผู้ส่งไม่ผ่าน" in chips
    # forward a complaint to the building unit by hand
    seq, year = handled["flood@example.com"].receipt.split("/")
    page.goto(f"{srv.url}cases/{year}/{seq}")
    page.select_option("#forward select[name=unit]", "กองช่าง <kongchang@example.go.th>")
    page.fill("#forward input[name=note]", "น้ำท่วมจากท่อระบายน้ำ")
    page.locator("#forward button[type=submit]").click()
    page.wait_for_load_state()
    assert "ส่งต่อเรื่อง" in page.locator(".flash").first.inner_text()
    page.fill("#forward input[name=unit_other]", "someone@gmail.com")
    page.locator("#forward button[type=submit]").click()
    page.wait_for_load_state()
    assert "โดเมนของหน่วยงาน" in page.locator("main").inner_text()      # never outside the agency
    cycle(env)
    [fwd] = [m for m in mails_to(env, "kongchang@example.go.th")
             if f"[เลขรับ {handled['flood@example.com'].receipt}]" in m["Subject"]]
    assert any(p.get_content_type() == "message/rfc822" for p in fwd.iter_attachments())
    event = db(env).execute("SELECT e.* FROM case_events e JOIN cases c ON c.id=e.case_id "
                            "WHERE e.kind='forwarded' AND c.receipt=?", (handled["flood@example.com"].receipt,)).fetchone()
    assert event["actor"] != "mailbot" and "กองช่าง" in event["note"]
    # documents checked by the officer
    seq, year = handled["scan@example.com"].receipt.split("/")
    page.goto(f"{srv.url}cases/{year}/{seq}")
    page.get_by_role("button", name="ตรวจแล้ว เอกสารครบ").click()
    page.wait_for_load_state()
    assert "เจ้าหน้าที่ตรวจแล้ว: ครบ" in page.locator("#documents").inner_text()
    # flagged mail looked at
    page.goto(srv.url)
    row = page.locator("table.queue tr", has=page.locator(".chip", has_text="ตรวจสอบผู้ส่งไม่ผ่าน"))
    row.get_by_role("button", name="ตรวจแล้ว").click()
    page.wait_for_load_state()
    chips = page.locator("table.queue .chip").all_inner_texts()
    assert "รอตรวจเอกสาร" not in chips and "ตรวจสอบผู้ส่งไม่ผ่าน" not in chips
    assert not mails_to(env, "director@example.go.th"), "flagged mail is never answered automatically"
    shot(page, "22-today-cleared")


# ---------------------------------------------------------------------------- without a browser

def test_a_listen_name_with_several_addresses_serves_and_stops(env):
    """console.listen may stand for several addresses ("localhost" is ::1 and 127.0.0.1 on
    Windows; "*" is every IPv4 and IPv6 address anywhere): waitress then listens on each and
    hands back a server without a socket of its own. The console starts, answers, and stops."""

    from mailbot.app import Office
    from mailbot.console import auth

    with Office.open(env.cfg, clock=env.clock) as office:      # beyond this computer: officer accounts first
        auth.set_password(office.state, "สมชาย", "correct horse 1", env.clock(), new=True)
    env.set_config(console={"listen": "*"})
    port = _free_port()
    srv = ConsoleServer(env.cfg, clock=env.clock, port=port).start()
    try:
        assert srv.port == port
        status, _, headers = _no_redirect(srv.url)
        assert status == 302 and "/signin" in headers["Location"]
    finally:
        srv.stop()
    assert not _listening(port)


def test_passwords_are_scrypt_hashes_with_their_own_salt(env):
    from mailbot.app import Office
    from mailbot.console import auth

    now = env.clock()
    with Office.open(env.cfg, clock=env.clock) as office:
        auth.set_password(office.state, "สมชาย", "same password", now, new=True)
        auth.set_password(office.state, "สมหญิง", "same password", now, new=True)
        rows = office.state.db.execute("SELECT * FROM officers ORDER BY name").fetchall()
        hashes = [r["password_hash"] for r in rows]           # werkzeug.security's, each with its own salt
        assert all(h.startswith("scrypt:32768:8:1$") for h in hashes) and hashes[0] != hashes[1]
        assert hashes[0].split("$")[1] != hashes[1].split("$")[1]
        assert auth.verify(office.state, "สมชาย", "same password") == "สมชาย"
        assert auth.verify(office.state, "สมชาย", "same passwore") is None
        assert auth.verify(office.state, "nobody", "same password") is None
        with pytest.raises(ConfigError):
            auth.set_password(office.state, "สมชาย", "another one", now, new=True)
        with pytest.raises(ConfigError):
            auth.set_password(office.state, "x", "short", now, new=True)
        auth.set_password(office.state, "สมชาย", "a new password", now, new=False)
        assert auth.verify(office.state, "สมชาย", "a new password") == "สมชาย"
        # an account hashed by hand (round 2): verified once that way, then stored in werkzeug's form
        import hashlib

        salt = b"0123456789abcdef"
        old = hashlib.scrypt("old password".encode(), salt=salt, n=2 ** 14, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
        office.state.db.execute("INSERT INTO officers (name, salt, hash, n, r, p, created_at, changed_at) "
                                "VALUES ('เก่า', ?, ?, 16384, 8, 1, '', '')", (salt, old))
        assert auth.verify(office.state, "เก่า", "wrong password") is None
        assert auth.verify(office.state, "เก่า", "old password") == "เก่า"
        row = office.state.db.execute("SELECT * FROM officers WHERE name='เก่า'").fetchone()
        assert row["password_hash"].startswith("scrypt:") and row["hash"] == b"" and row["n"] == 0
        assert auth.verify(office.state, "เก่า", "old password") == "เก่า"
    throttle = auth.Throttle(tries=3, pause=60)
    for _ in range(3):
        throttle.failed("สมชาย")
    assert throttle.wait("สมชาย") > 0 and throttle.wait("สมหญิง") == 0


def test_download_names_and_hosts():
    from mailbot.console import security

    header = security.content_disposition('../../"><img src=x onerror=alert(1)>\u202efdp.exe')
    assert header.startswith('attachment; filename="') and "filename*=UTF-8''" in header
    assert "/" not in header.split("filename*=")[0] and "\u202e" not in header and '"><' not in header
    assert security.content_disposition("ทะเบียนรับ-2569.xlsx").startswith('attachment; filename="2569.xlsx"')
    assert security.content_disposition("ทะเบียน.xlsx").startswith('attachment; filename="file.xlsx"')
    hosts = security.allowed_hosts("127.0.0.1", 8470)
    assert security.host_ok("127.0.0.1:8470", hosts) and security.host_ok("LOCALHOST:8470", hosts)
    assert not security.host_ok("evil.example:8470", hosts) and not security.host_ok("127.0.0.1:8471", hosts)
    assert not security.host_ok(None, hosts)
    assert security.origin_ok("http://127.0.0.1:8470", None, "127.0.0.1:8470")
    assert not security.origin_ok("http://127.0.0.1:8470.evil.example", None, "127.0.0.1:8470")
    assert not security.origin_ok("null", None, "127.0.0.1:8470")
    assert security.origin_ok(None, "http://127.0.0.1:8470/cases", "127.0.0.1:8470")
    assert not security.origin_ok(None, None, "127.0.0.1:8470")
    assert security.citizen("a\u202eb\u2066c\x07d\ne") == "abcd\ne"


def test_finding_cases_and_service_time(env):
    from datetime import timedelta

    from mailbot.app import Office

    env.deliver(letter("ร้องเรียนถนนชำรุด 100%_ซอย", sender="สมปอง ดีใจ <sompong@example.com>"),
                letter("สอบถามภาษีที่ดิน", sender="tax@example.com"),
                letter("เรื่องไม่มีหมวด", sender="misc@example.com"))
    cycle(env)
    cfg = env.cfg
    with Office.open(cfg, clock=env.clock) as office:
        assert office.find_cases("สมปอง").total == 1
        assert office.find_cases("100%_").total == 1 and office.find_cases("ร้องเรียนถนนชำรุด").total == 1
        assert office.find_cases("ร้องเรียนถนนชำร_ด").total == 0          # LIKE wildcards are plain text
        assert office.find_cases("1/2569").rows[0]["receipt"] == "1/2569"
        assert office.find_cases("๑/๒๕๖๙").total == 1
        assert office.find_cases(service="-").total == 1 and office.find_cases(service="TAX").total == 1
        assert office.find_cases(status="review").total == 1
        from mailbot.thai import to_bangkok

        today = to_bangkok(env.clock()).date()
        assert office.find_cases(since=today + timedelta(days=1)).total == 0
        assert office.find_cases(until=today + timedelta(days=1)).total == 3
        assert office.find_cases(page=99, per_page=2).page == 2
    # 40 days later: the complaint (15 working days) is late, the tax question (15) too
    later = env.clock() + timedelta(days=40)
    with Office.open(cfg, clock=lambda: later) as office:
        items, late, soon = office.due_cases()
        assert late == 2 and soon == 0 and {w.kind for w in items} == {"overdue"}
        t = office.today()
        assert t.counts["overdue"] == 2 and t.queue[0].urgent
    soon_clock = env.clock() + timedelta(days=19)
    with Office.open(cfg, clock=lambda: soon_clock) as office:
        items, late, soon = office.due_cases()
        assert late + soon == 2 and all(w.due is not None for w in items)
