"""The officer's first hour, walked as a new officer would (issue 22): an empty home folder,
``mailbot`` with no arguments (the one command), then only the browser — Playwright driving
Debian's chromium — against pymap and aiosmtpd standing in for the agency's mail server. A
citizen's mail arrives, "รับอีเมลเดี๋ยวนี้" is pressed, and the receipt reaches the citizen.

Every page action is counted (a form filled and sent is one; a button pressed is one) and
printed; a screenshot of every step is kept (MAILBOT_SCREENSHOTS, default a temporary folder).
No file is written by the test after the command starts: the settings on disk came from the
pages."""
from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailbot.config import load_config
from mailbot.mail.servers import HOST, ImapServer, SmtpServer

from .test_console import ARGS, CHROMIUM, SHOTS, Watch, browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.slow

ADDRESS = "saraban@nongbua.go.th"
PASSWORD = "app-pass-2569"
# mailbot runs on a test clock (MAILBOT_NOW), not the wall clock: Monday 7 December 2569, 10:00 in Bangkok
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url_port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"mailbot stopped: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", url_port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the console did not start")


def _citizen_mail() -> bytes:
    m = EmailMessage()
    m["From"] = "สมชาย ใจดี <somchai@example.com>"
    m["To"] = ADDRESS
    m["Subject"] = "ขออนุญาตต่อเติมบ้าน เลขที่ 12 หมู่ 3"
    m["Date"] = format_datetime(NOW)
    m["Message-ID"] = make_msgid(domain="example.com")
    m.set_content("เรียน นายก อบต.\nขออนุญาตต่อเติมบ้าน รายละเอียดตามไฟล์แนบ\nสมชาย")
    return bytes(m)


def test_the_first_hour_from_an_empty_home_folder(browser, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    home.mkdir()
    shots = SHOTS / "first-hour"
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(HOME=str(home), USERPROFILE=str(home), XDG_CONFIG_HOME=str(tmp_path / "xdg"), BROWSER="true",
               PYTHONIOENCODING="utf-8", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               MAILBOT_NOW=NOW.isoformat(), MAILBOT_TEST_CLOCK="1")
    with ImapServer(ADDRESS, PASSWORD) as imap, SmtpServer(ADDRESS, PASSWORD) as smtp:
        # the one command: `mailbot` with no arguments (--port: this test's free port; --no-browser:
        # Playwright is the browser)
        proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--no-browser", "--port", str(port)], cwd=home,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8")
        try:
            _wait(port, proc)
            workspace = home / "mailbot"
            assert (workspace / "mailbot.yaml").is_file()
            steps = _walk(browser, f"http://127.0.0.1:{port}/", imap.port, smtp.port, shots)
            print(f"\nfirst hour: {len(steps)} page actions (goal ≤ 10): " + " · ".join(steps))
            assert len(steps) <= 10, steps
            # the receipt reached the citizen, with its number
            to_citizen = [m for m in smtp.messages if "somchai@example.com" in m.rcpt_tos]
            assert len(to_citizen) == 1, [m.rcpt_tos for m in smtp.messages]
            reply = email.message_from_bytes(to_citizen[0].data, policy=policy.default)
            assert "1/2569" in str(reply["Subject"]) + reply.get_body(("plain",)).get_content()
            # the settings on disk are the pages' (no file was edited by hand)
            cfg = load_config(workspace / "mailbot.yaml")
            assert cfg.agency.name == "องค์การบริหารส่วนตำบลหนองบัว" and cfg.imap.port == imap.port
            assert cfg.imap.password_store and PASSWORD not in (workspace / "mailbot.yaml").read_text(encoding="utf-8")
            assert (tmp_path / "xdg" / "systemd" / "user" / "mailbot.service").is_file()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        assert "Traceback" not in out, out


def _walk(browser, url: str, imap_port: int, smtp_port: int, shots: Path) -> list[str]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="th-TH")
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    steps: list[str] = []

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{len(steps):02d}-{name}.png"), full_page=True)

    def press(label: str) -> None:
        page.get_by_role("button", name=label).first.click()
        page.wait_for_load_state("load")

    try:
        page.goto(url)                                  # what `mailbot` opens in the officer's browser
        assert "/setup/agency" in page.url, page.url
        shot("agency")
        page.fill("input[name=name]", "องค์การบริหารส่วนตำบลหนองบัว")
        page.fill("input[name=address]", ADDRESS)
        page.fill("input[name=unit]", "สำนักปลัด งานธุรการ")
        page.fill("input[name=phone]", "0 4312 3456")
        page.fill("textarea[name=postal]", "หมู่ที่ 3 ตำบลหนองบัว\nอำเภอเมือง จังหวัดขอนแก่น 40000")
        page.fill("input[name=signer_name]", "นายสมศักดิ์ ใจดี")
        page.fill("input[name=signer_position]", "นายกองค์การบริหารส่วนตำบลหนองบัว")
        press("บันทึกและไปขั้นต่อไป")
        steps.append("หน่วยงาน (แบบฟอร์ม)")
        assert "/setup/mailbox" in page.url, page.url
        shot("mailbox")
        page.check("input[name=provider][value=other]")
        assert page.is_visible("input[name=imap_host]")          # the fields this provider needs, shown
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=imap_host]", HOST)
        page.fill("input[name=imap_port]", str(imap_port))
        page.select_option("select[name=imap_security]", "none")
        page.fill("input[name=smtp_host]", HOST)
        page.fill("input[name=smtp_port]", str(smtp_port))
        page.select_option("select[name=smtp_security]", "none")
        press("บันทึกและไปขั้นต่อไป")
        steps.append("กล่องอีเมล (แบบฟอร์ม)")
        shot("test")
        press("ทดสอบการเชื่อมต่อ")
        steps.append("ทดสอบการเชื่อมต่อ")
        assert "/setup/services" in page.url, page.content()[:2000]
        shot("services")
        press("บันทึกและไปขั้นต่อไป")                  # the catalogue as ticked
        steps.append("งานบริการ")
        shot("letters")
        press("ใช้ข้อความนี้และไปขั้นต่อไป")
        steps.append("ข้อความตอบกลับ")
        shot("holidays")
        press("บันทึกและไปขั้นต่อไป")
        steps.append("วันหยุด")
        shot("autostart")
        press("ให้ mailbot เริ่มทำงานเองเมื่อเปิดเครื่อง")
        steps.append("ทำงานทุกวัน")
        assert "/setup/poll" in page.url, page.url
        # a citizen writes in
        with IMAPClient(HOST, port=imap_port, ssl=False) as c:
            c.login(ADDRESS, PASSWORD)
            c.append("INBOX", _citizen_mail(), msg_time=NOW)
        shot("poll")
        press("รับอีเมลเดี๋ยวนี้")
        steps.append("รับอีเมลเดี๋ยวนี้")
        shot("done")
        text = page.inner_text("main")
        assert "somchai@example.com" in text and "1/2569" in text, text[:1500]
        watch.clean()
        return steps
    finally:
        context.close()
