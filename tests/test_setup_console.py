"""The setup pages through Flask's test client over the in-memory mail double: every step saved
through a form, what is refused (and that nothing is saved then), who may change settings, and
that each change is in the audit log with who made it."""
from __future__ import annotations

import email
import io
import re
from email import policy
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from mailbot.config import load_config, load_rules
from mailbot.console import auth
from mailbot.console.web import create_app
from mailbot.mail.memory import MemoryServer
from mailbot.setup import autostart, workspace
from mailbot.store import open_state

from .conftest import TestClock, letter

HOST = "127.0.0.1:8470"
H = {"Host": HOST, "Origin": f"http://{HOST}"}
ADDRESS = "saraban@nongbua.go.th"
PASSWORD = "app-pass-2569"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)      # Monday 7 December 2569, 10:00 in Bangkok


class Office:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = TestClock(NOW)
        self.config, _ = workspace.ensure(tmp_path / "mailbot", date(2026, 12, 7))
        self.server = MemoryServer(ADDRESS, PASSWORD, clock=self.clock)
        from mailbot.app import Office as Core

        with Core.open(load_config(self.config), clock=self.clock) as core:     # as `mailbot start` does
            core.setup.begin()
        self.app = create_app(load_config(self.config), self.clock, port=8470, wire=self.server.wire())
        self.app.testing = True
        self.served: set[str] = set()

        @self.app.after_request
        def record(response):  # type: ignore[no-untyped-def]
            from flask import request

            if request.endpoint:
                self.served.add(f"{request.method} {request.endpoint}")
            return response
        self.client = self.app.test_client()

    def get(self, path: str):
        return self.client.get(path, headers={"Host": HOST})

    def token(self, path: str) -> str:
        page = self.get(path).get_data(as_text=True)
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:400]
        return found.group(1)

    def post(self, path: str, data: dict, page: str | None = None):
        data = {**data, "csrf": self.token(page or path.rstrip("/").rsplit("/", 1)[0] + "/" + path.rsplit("/", 1)[1])}
        return self.client.post(path, data=data, headers=H)

    def step(self, name: str, data: dict, **kw):
        """POST /setup/<name> as its page sends it; the page it goes to and the message shown."""
        data = {**data, "csrf": self.token(f"/setup/{name}")}
        r = self.client.post(f"/setup/{name}", data=data, headers=H, **kw)
        return r

    def flashes(self, path: str) -> str:
        return " ".join(re.findall(r'<p class="flash [a-z]+" role="status">([^<]*)</p>', self.get(path).get_data(as_text=True)))

    def audit(self) -> list[tuple[str, str, str]]:
        cfg = load_config(self.config)
        state = open_state(cfg)
        try:
            return [(r["actor"], r["action"], r["ref"]) for r in state.audit_rows()]
        finally:
            state.close()


def serves(*routes: str):  # type: ignore[no-untyped-def]
    """The routes ("METHOD endpoint") a test has the console serve; checked at the test's end
    (test_console_routes.test_every_route_is_served_by_a_test reads these too)."""
    def mark(fn):  # type: ignore[no-untyped-def]
        fn.serves = frozenset(routes)
        return fn
    return mark


@pytest.fixture
def office(tmp_path, monkeypatch, request):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(autostart.shutil, "which", lambda name: None)     # no systemctl, no installed mailbot
    failed_before = request.session.testsfailed
    o = Office(tmp_path)
    yield o
    if request.session.testsfailed > failed_before:
        return
    listed = getattr(request.function, "serves", frozenset())
    assert not listed - o.served, f"listed in @serves but never served: {sorted(listed - o.served)}"


AGENCY_FORM = {"name": "องค์การบริหารส่วนตำบลหนองบัว", "address": ADDRESS, "unit": "สำนักปลัด งานธุรการ",
               "phone": "0 4312 3456", "postal": "หมู่ที่ 3 ตำบลหนองบัว\nอำเภอเมือง จังหวัดขอนแก่น 40000",
               "signer_name": "นายสมศักดิ์ ใจดี", "signer_position": "นายกองค์การบริหารส่วนตำบลหนองบัว"}
MAILBOX_FORM = {"provider": "other", "address": ADDRESS, "password": PASSWORD,
                "imap_host": "127.0.0.1", "imap_port": "9", "imap_security": "none",
                "smtp_host": "127.0.0.1", "smtp_port": "9", "smtp_security": "none"}


@serves("GET setup.start", "GET setup.step")
def test_a_new_workspace_opens_at_its_setup(office):
    r = office.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup/")
    r = office.get("/setup/")
    assert r.headers["Location"].endswith("/setup/agency")
    page = office.get("/setup/agency").get_data(as_text=True)
    assert "ข้อมูลหน่วยงาน" in page and "Traceback" not in page


@serves("POST setup.agency", "POST setup.mailbox", "POST setup.test", "POST setup.services", "POST setup.letters",
        "POST setup.holidays", "POST setup.autostart", "POST setup.poll", "GET setup.step")
def test_the_first_hour_step_by_step(office):
    o = office
    r = o.step("agency", AGENCY_FORM)
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup/mailbox")
    cfg = load_config(o.config)
    assert cfg.agency.name == AGENCY_FORM["name"] and cfg.agency.address == ADDRESS
    assert cfg.letters.address == ["หมู่ที่ 3 ตำบลหนองบัว", "อำเภอเมือง จังหวัดขอนแก่น 40000"]
    assert cfg.imap.username == ADDRESS           # the starter's account followed the agency's address
    assert "# ชื่อหน่วยงาน" in o.config.read_text(encoding="utf-8")     # comments kept

    r = o.step("mailbox", MAILBOX_FORM)
    assert r.headers["Location"].endswith("/setup/test")
    cfg = load_config(o.config)
    assert cfg.imap.password_store and cfg.smtp.password_store and cfg.imap.port == 9
    assert PASSWORD not in o.config.read_text(encoding="utf-8")
    assert not list(p for p in o.config.parent.rglob("*.yaml") if PASSWORD in p.read_text(encoding="utf-8"))

    assert "ยังไม่อ่านกล่องอีเมล" in o.get("/cases").get_data(as_text=True)     # the service waits, and says so
    r = o.step("test", {})
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup/services"), r.get_data(as_text=True)[:800]
    assert "ยังไม่อ่านกล่องอีเมล" not in o.get("/cases").get_data(as_text=True)

    page = o.get("/setup/services?subject=ขออนุญาตต่อเติมบ้าน เลขที่ 12").get_data(as_text=True)
    assert "ขออนุญาตก่อสร้าง" in page            # the live try: the pipeline's decision
    r = o.step("services", {"code": ["BLD", "CMP", "OLD"], "referrals": "1", "referral": ["0", "1"],
                            "ref_keywords_1": "โฉนด, น.ส.3, รังวัดที่ดิน", "ref_contact_1": "สำนักงานที่ดินจังหวัดขอนแก่น โทร 0 4323 6000"})
    assert r.headers["Location"].endswith("/setup/letters"), o.flashes("/setup/services")
    rules = load_rules(o.config.parent / "rules.yaml")
    assert [s.code for s in rules.services] == ["BLD", "OLD", "CMP"] and len(rules.referrals) == 2
    assert rules.referrals[1].keywords == ["โฉนด", "น.ส.3", "รังวัดที่ดิน"] and "0 4323 6000" in rules.referrals[1].contact

    page = o.get("/setup/letters").get_data(as_text=True)
    assert "15/2569" in page and AGENCY_FORM["name"] in page       # the receipt with sample data
    assert "หนังสือแจ้งผลการพิจารณา" in page and "นายตัวอย่าง ใจดี" in page   # and the result letter's text
    r = o.step("letters", {})
    assert r.headers["Location"].endswith("/setup/holidays")

    r = o.step("holidays", {"import": "1", "days": "15/1/2570\n๒๐/๑/๒๕๗๐", "office_hours": "08:30-16:30"})
    assert r.headers["Location"].endswith("/setup/autostart")
    cfg = load_config(o.config)
    assert date(2026, 12, 10) in cfg.schedule.holidays and date(2027, 1, 15) in cfg.schedule.holidays
    assert date(2027, 1, 20) in cfg.schedule.holidays

    r = o.step("autostart", {"on": "1"})
    assert r.headers["Location"].endswith("/setup/poll")

    o.server.deliver(_mail("ขออนุญาตต่อเติมบ้าน เลขที่ 12 หมู่ 3"), when=NOW)
    page = o.step("poll", {}).get_data(as_text=True)
    assert "1/2569" in page and "somchai@example.com" in page
    sent = [m for m in o.server.messages if "somchai@example.com" in m.rcpt_tos]
    assert len(sent) == 1 and "1/2569" in _text(sent[0].data)

    steps = {s.key: s.done for s in _steps(o)}
    assert all(steps.values()), steps
    trail = o.audit()
    changed = [(actor, ref) for actor, action, ref in trail if action == "settings"]
    assert ("ผู้ใช้เครื่องนี้", "mailbot.yaml") in changed and ("ผู้ใช้เครื่องนี้", "rules.yaml") in changed
    assert any(ref == "credential store" for _, ref in changed) and any(ref == "autostart" for _, ref in changed)


def _text(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    return str(msg["Subject"]) + "\n" + msg.get_body(("plain",)).get_content()


def _mail(subject: str) -> bytes:
    m = letter(subject, when=NOW)
    del m["To"]
    m["To"] = ADDRESS
    return bytes(m)


def _steps(o: Office):
    from mailbot.app import Office as Core

    with Core.open(load_config(o.config), clock=o.clock, wire=o.server.wire()) as core:
        return core.setup.steps()


def test_a_wrong_password_is_explained_and_nothing_counts_as_working(office):
    o = office
    o.step("agency", AGENCY_FORM)
    o.step("mailbox", {**MAILBOX_FORM, "password": "wrong"})
    r = o.step("test", {})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "รหัสผ่าน" in page and "Traceback" not in page
    assert not {s.key: s.done for s in _steps(o)}["test"]
    # the right one, left blank the second time: the stored one is replaced only when typed
    o.step("mailbox", MAILBOX_FORM)
    assert o.step("test", {}).status_code == 302
    assert {s.key: s.done for s in _steps(o)}["test"]
    # a change of server asks for the test again
    o.step("mailbox", {**MAILBOX_FORM, "password": "", "imap_port": "10"})
    assert not {s.key: s.done for s in _steps(o)}["test"]


@pytest.mark.parametrize("field, value, says", [
    ("keywords_BLD", "   ,  , ", "คำสำคัญ"),
    ("days_BLD", "-5", "จำนวนวัน"),
])
def test_bad_service_forms_save_nothing(office, field, value, says):
    o = office
    rules = o.config.parent / "rules.yaml"
    before = rules.read_bytes()
    r = o.step("services", {"code": ["BLD"], field: value})
    assert r.headers["Location"].endswith("/setup/services")
    assert says in o.flashes("/setup/services")
    assert rules.read_bytes() == before


def test_a_template_with_an_error_is_refused_and_the_last_good_one_kept(office):
    o = office
    path = o.config.parent / "templates" / "receipt.txt.j2"
    before = path.read_bytes()
    r = o.step("letters", {"template": "receipt", "text": "เรียน {{ requester }\nเลขรับ {{ receipt }}\n{% if %}"})
    assert r.headers["Location"].split("?")[0].endswith("/setup/letters")
    said = o.flashes("/setup/letters")
    assert "บรรทัด 1" in said and "ยังไม่ได้บันทึก" in said
    assert path.read_bytes() == before
    r = o.step("letters", {"template": "receipt", "text": before.decode("utf-8") + "\nขอบคุณครับ\n"})
    assert path.read_text(encoding="utf-8").endswith("ขอบคุณครับ\n")
    assert path.with_name("receipt.txt.j2.previous").read_bytes() == before


@pytest.mark.parametrize("name, data, says", [
    ("not-an-image.png", b"%PDF-1.4 this is not a picture", "ไม่ใช่รูปภาพ"),
    ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024 * 1024), "ใหญ่เกินไป"),
])
def test_an_emblem_that_is_not_an_image_or_too_large_is_refused(office, name, data, says):
    o = office
    before = o.config.read_bytes()
    r = o.client.post("/setup/agency", data={**AGENCY_FORM, "csrf": o.token("/setup/agency"),
                                             "emblem": (io.BytesIO(data), name)},
                      headers=H, content_type="multipart/form-data")
    assert r.headers["Location"].endswith("/setup/agency")
    assert says in o.flashes("/setup/agency")
    assert o.config.read_bytes() == before


def test_a_real_emblem_is_kept_beside_the_config(office):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 160, 0)).save(buf, "PNG")
    o = office
    o.client.post("/setup/agency", data={**AGENCY_FORM, "csrf": o.token("/setup/agency"),
                                         "emblem": (io.BytesIO(buf.getvalue()), "ตรา.png")},
                  headers=H, content_type="multipart/form-data")
    cfg = load_config(o.config)
    assert cfg.letters.emblem is not None and (o.config.parent / cfg.letters.emblem).read_bytes() == buf.getvalue()


def test_with_accounts_only_an_administrator_changes_settings(office):
    o = office
    cfg = load_config(o.config)
    state = open_state(cfg)
    try:
        auth.set_password(state, "somsak", "pass-somsak-1", NOW, new=True)            # the first: administrator
        auth.set_password(state, "malee", "pass-malee-12", NOW, new=True)
    finally:
        state.close()

    def sign_in(name: str, password: str) -> None:
        token = o.token("/signin")
        o.client.post("/signin", data={"name": name, "password": password, "csrf": token, "next": "/"}, headers=H)

    sign_in("malee", "pass-malee-12")
    r = o.get("/setup/agency")
    assert r.status_code == 403 and "ผู้ดูแลระบบ" in r.get_data(as_text=True)
    o.client.post("/signout", data={"csrf": o.token("/cases")}, headers=H)
    sign_in("somsak", "pass-somsak-1")
    assert o.get("/setup/agency").status_code == 200
    o.step("agency", AGENCY_FORM)
    assert ("somsak", "settings", "mailbot.yaml") in o.audit()


# ---------------------------------------------------------------------------- OAuth2 in the page

@pytest.mark.slow     # a loopback HTTPS authority and msal
@serves("GET setup.signin", "POST setup.signin")
def test_the_device_code_sign_in_runs_in_the_page(tmp_path, monkeypatch):
    """Microsoft 365: tenant and app id typed in the mailbox step, then "ลงชื่อเข้าใช้" shows the
    address and the code on the page; the officer approves in the browser (here: the form POST a
    browser sends to the loopback authority), the page sees it through, and the token is kept in
    the credential store, not in any file the officer sees."""
    from .oauth_authority import TENANT, Authority
    from .test_oauth import PUBLIC_ID, browser_approves
    from mailbot.setup import settings

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with Authority(tmp_path / "authority") as a:
        a.add_client(PUBLIC_ID, None)
        o = Office(tmp_path)
        # the loopback authority stands in for login.microsoftonline.com (its own CA): set before the walk
        # (the section cannot stand without a tenant and an app: the page's values go in with it)
        settings.update_config(o.config, {"oauth2.authority": a.url, "oauth2.ca_file": str(a.ca_path),
                                          "oauth2.store": "file", "oauth2.tenant": TENANT,
                                          "oauth2.client_id": PUBLIC_ID})
        r = o.step("mailbox", {"provider": "microsoft", "address": "saraban@example.go.th", "tenant": TENANT,
                               "client_id": PUBLIC_ID, "flow": "device_code"})
        assert r.headers["Location"].endswith("/setup/test"), o.flashes("/setup/mailbox")
        cfg = load_config(o.config)
        assert cfg.imap.auth == "oauth2" and cfg.oauth2 is not None and cfg.oauth2.flow == "device_code"
        assert cfg.oauth2.authority == a.url      # the hand-set value kept through the page's save
        page = o.get("/setup/test").get_data(as_text=True)
        assert "ลงชื่อเข้าใช้ Microsoft 365" in page and "ทดสอบการเชื่อมต่อ</button>" not in page
        r = o.client.post("/setup/signin", data={"csrf": o.token("/setup/test")}, headers=H)
        assert r.headers["Location"].endswith("/setup/signin")
        page = o.get("/setup/signin").get_data(as_text=True)
        code = re.search(r'class="device-code">([^<]+)<', page).group(1)
        uri = re.search(r'class="device-uri">([^<]+)<', page).group(1)
        assert uri.startswith(a.url) and 'http-equiv="refresh"' in page
        browser_approves(a, uri, code, user="saraban@example.go.th")
        for _ in range(100):
            page = o.get("/setup/signin").get_data(as_text=True)
            if "ลงชื่อเข้าใช้แล้ว" in page:
                break
            import time

            time.sleep(0.1)
        assert "ลงชื่อเข้าใช้แล้ว" in page, page[-1500:]
        page = o.get("/setup/test").get_data(as_text=True)
        assert "ทดสอบการเชื่อมต่อ</button>" in page          # signed in: the test may run now
        rts = [t for t in a.issued if t.startswith("rt-")]
        assert rts and all(rts[0] not in p.read_text(encoding="utf-8", errors="replace")
                           for p in o.config.parent.rglob("*") if p.is_file() and "secrets" not in p.parts
                           and p.suffix in (".yaml", ".j2", ".log", ".txt"))
        assert ("ผู้ใช้เครื่องนี้", "settings", "oauth2 sign-in") in o.audit()
        assert {"POST setup.signin", "GET setup.signin"} <= o.served


@serves("GET setup.more", "POST setup.more")
def test_supervisors_alerts_and_backup_folder(office, tmp_path):
    o = office
    r = o.client.post("/setup/more", data={"csrf": o.token("/setup/more"), "supervisors": "ปลัด <palad@nongbua.go.th>\nnayok@nongbua.go.th",
                                           "alerts_to": "", "backup_dir": str(tmp_path)}, headers=H)
    assert r.status_code == 302
    cfg = load_config(o.config)
    assert cfg.supervisors == ["ปลัด <palad@nongbua.go.th>", "nayok@nongbua.go.th"] and cfg.backup.dir == tmp_path
    before = o.config.read_bytes()
    for bad in ({"supervisors": "ไม่ใช่อีเมล"}, {"backup_dir": "relative/folder"}, {"backup_dir": str(tmp_path / "none")},
                {"backup_dir": str(o.config.parent / "data")}):
        o.client.post("/setup/more", data={"csrf": o.token("/setup/more"), "supervisors": "", "alerts_to": "",
                                           "backup_dir": "", **bad}, headers=H)
        assert o.config.read_bytes() == before, bad
        assert o.flashes("/setup/more"), bad


@pytest.mark.slow     # the service's threads
def test_a_running_service_sees_a_console_change_on_its_next_cycle(mem_env):
    """`mailbot run`'s service (ops/daemon.py) with the console beside it: the agency's name changed
    in the console's form is in the very next cycle's reply, without a restart, and the change is
    in the audit log with who made it."""
    import time

    from mailbot.ops.daemon import Daemon

    e = mem_env
    e.set_config(schedule={"every_minutes": 600, "after_hours_every_minutes": 600, "workdays": []},
                 console={"enabled": False})
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="first@example.com"))
    daemon = Daemon(load_config(e.config_path), clock=e.clock, notify=lambda thai, english: None, wire=e.wire)
    app = create_app(load_config(e.config_path), e.clock, port=8470, wire=e.wire)
    app.testing = True
    client = app.test_client()

    def soon(predicate) -> bool:
        deadline = time.monotonic() + 15
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        return predicate()

    def senders() -> list[str]:
        return [str(email.message_from_bytes(m.data, policy=policy.default)["From"]) for m in e.server.messages
                if m.rcpt_tos != [e.cfg.agency.address]]

    daemon.start()
    try:
        assert soon(lambda: len(senders()) == 1)
        assert "เทศบาลตำบลบ้านตัวอย่าง" in senders()[0]
        page = client.get("/setup/agency", headers={"Host": HOST}).get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = client.post("/setup/agency", data={**AGENCY_FORM, "address": e.cfg.agency.address, "csrf": token},
                        headers=H)
        assert r.status_code == 302
        time.sleep(0.05)
        e.deliver(letter("ร้องเรียนถนนชำรุด", sender="second@example.com"))
        daemon.poll_now()
        assert soon(lambda: len(senders()) == 2)
        assert "องค์การบริหารส่วนตำบลหนองบัว" in senders()[1]
    finally:
        daemon.stop()
    state = open_state(e.cfg)
    try:
        trail = [(r["actor"], r["action"], r["ref"]) for r in state.audit_rows("settings")]
    finally:
        state.close()
    assert ("ผู้ใช้เครื่องนี้", "settings", "mailbot.yaml") in trail


def test_a_graph_mailbox_is_set_up_and_tried_through_the_page(tmp_path, monkeypatch):
    """Microsoft 365 with IMAP and SMTP off: "Microsoft Graph" in the mailbox step (tenant, app,
    secret into the credential store), then the test reads the folder and signs in to send over
    the loopback Graph server."""
    from mailbot.mail.wire import graph_wire
    from mailbot.setup import settings

    from .graph_server import GraphServer
    from .test_graph import CLIENT_ID, TENANT, FakeTokens, Mono

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    clock = TestClock(NOW)
    with GraphServer(ADDRESS, clock=clock) as server:
        o = Office(tmp_path)
        mono = Mono()
        wire = graph_wire(tokens=FakeTokens(server), clock=mono, sleep=mono.sleep)
        o.app = create_app(load_config(o.config), o.clock, port=8470, wire=wire)
        o.app.testing = True
        o.client = o.app.test_client()
        o.step("agency", AGENCY_FORM)
        # the loopback Graph stands in for graph.microsoft.com (set before the walk, with the section)
        settings.update_config(o.config, {"graph.tenant_id": TENANT, "graph.client_id": CLIENT_ID,
                                          "graph.base_url": server.url})
        r = o.step("mailbox", {"provider": "graph", "address": ADDRESS, "tenant": TENANT, "client_id": CLIENT_ID,
                               "secret": "app-secret-value"})
        assert r.headers["Location"].endswith("/setup/test"), o.flashes("/setup/mailbox")
        cfg = load_config(o.config)
        assert cfg.mailbox == "graph" and cfg.graph is not None and cfg.graph.mailbox == ADDRESS
        assert "app-secret-value" not in o.config.read_text(encoding="utf-8")
        page = o.get("/setup/mailbox").get_data(as_text=True)
        assert 'value="graph" checked' in page
        r = o.step("test", {})
        assert r.status_code == 302 and r.headers["Location"].endswith("/setup/services"), r.get_data(as_text=True)[-2000:]
