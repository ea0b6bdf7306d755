"""OAuth2 sign-in, end to end on real protocols: a loopback OAuth2 authority (HTTPS, its own CA),
a real Dovecot whose oauth2 passdb validates every token by introspection (SASL XOAUTH2 and
OAUTHBEARER), and aiosmtpd taking SASL XOAUTH2 checked against the same authority. msal (the
microsoft provider) and google-auth (the google provider) talk to the same authority through
their own configuration points (msal's authority URL, the key file's token_uri)."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mailbot.app import run_cycle
from mailbot.config import yaml_load
from mailbot.demo import make_workspace
from mailbot.mail import oauth
from mailbot.mail.servers import SmtpServer

from . import dovecot
from .conftest import AGENCY, PASSWORD, SINCE, Env, letter
from .oauth_authority import TENANT, Authority, introspector, service_account_key

pytestmark = pytest.mark.slow   # a loopback OAuth2 authority and subprocesses

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
PUBLIC_ID = "99999999-8888-7777-6666-555555555555"
CLIENT_SECRET = "Cl1ent~S3cret-sentinel.QQ"
SECRET_ENV = "MAILBOT_OAUTH_SECRET"


def need_dovecot() -> None:
    if not dovecot.available():
        if os.environ.get("CI") == "true":
            pytest.fail("Dovecot is not installed: .ci/run must install dovecot-imapd")
        pytest.skip("Dovecot not installed here (apt-get install dovecot-imapd)")


def generic(a: Authority, flow: str = "client_credentials", **extra) -> dict:
    section = {"provider": "generic", "flow": flow, "token_url": a.token_url, "ca_file": str(a.ca_path),
               "store": "file"}
    if flow == "client_credentials":
        section.update(client_id=CLIENT_ID, client_secret_env=SECRET_ENV)
    else:
        section.update(client_id=PUBLIC_ID, device_code_url=a.device_url, scope="mail offline_access")
    section.update(extra)
    return section


def microsoft(a: Authority, flow: str = "client_credentials", **extra) -> dict:
    section = {"provider": "microsoft", "flow": flow, "tenant": TENANT, "authority": a.url,
               "ca_file": str(a.ca_path), "store": "file",
               "client_id": CLIENT_ID if flow == "client_credentials" else PUBLIC_ID}
    if flow == "client_credentials":
        section["client_secret_env"] = SECRET_ENV
    section.update(extra)
    return section


@pytest.fixture
def authority(tmp_path: Path):
    with Authority(tmp_path / "authority") as a:
        a.add_client(CLIENT_ID, CLIENT_SECRET, mailboxes=(AGENCY,))
        a.add_client(PUBLIC_ID, None)
        yield a


@pytest.fixture
def oenv(tmp_path: Path, authority: Authority, monkeypatch, request):
    """Dovecot (oauth2 passdb) + aiosmtpd (XOAUTH2 only) + a workspace signing in with OAuth2.
    Parametrised indirectly with the SASL mechanisms Dovecot offers (default: both)."""
    need_dovecot()
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    check = introspector(authority.introspect_url, authority.ca_path)
    mechanisms = getattr(request, "param", "xoauth2 oauthbearer")
    with dovecot.Dovecot(tmp_path / "dovecot", AGENCY, PASSWORD, oauth_introspect=authority.introspect_url,
                         oauth_ca=authority.ca_path, oauth_mechanisms=mechanisms) as imap, \
            SmtpServer(AGENCY, PASSWORD, xoauth2=check, oauth_only=True) as smtp:
        root = tmp_path / "office"
        e = Env(imap, smtp, root, make_workspace(root, imap.port, smtp.port, PASSWORD, since=SINCE))
        e.kind = "dovecot"
        e.authority = authority
        e.set_forwarding({})
        e.set_config(imap={"auth": "oauth2", "password": None}, smtp={"auth": "oauth2", "password": None},
                     oauth2=generic(authority))
        yield e


# ---------------------------------------------------------------------------- the intake cycle

def test_whole_intake_cycle_on_oauth2(oenv):
    e, a = oenv, oenv.authority
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    report = run_cycle(e.cfg, clock=e.clock)
    assert [h.outcome for h in report.handled] == ["registered", "registered"]
    assert report.smtp_error is None and len(e.smtp.messages) == 2
    assert e.smtp.logins == [AGENCY]                          # SMTP: XOAUTH2, checked at the authority
    assert e.folder_count("INBOX") == 0 and e.folder_count("ลงทะเบียนแล้ว") == 2
    assert len(e.folder_messages("Sent")) == 2
    assert "method=OAUTHBEARER" in e.imap.log()               # Dovecot offers it: preferred to XOAUTH2
    assert len(a.grants("client_credentials")) == 1           # one token for IMAP and SMTP
    agents = {r["agent"].split("/")[0] for r in a.introspections()}
    assert agents == {"dovecot-oauth2-passdb", "aiosmtpd"}    # both servers really validated it
    # the next cycle in this process, and one in a new process, reuse the cached token
    e.deliver(letter("ขอทำบัตรประชาชน", sender="c@example.com"))
    assert [h.outcome for h in run_cycle(e.cfg, clock=e.clock).handled] == ["wrong_agency"]
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="d@example.com"))
    r = e.cli("poll")
    assert r.returncode == 0, r.stderr
    assert len(a.grants("client_credentials")) == 1
    assert len(e.smtp.messages) == 4 and e.folder_count("INBOX") == 0


# ---------------------------------------------------------------------------- helpers

def set_oauth2(e: Env, section: dict) -> None:
    """Replace the whole oauth2 section (Env.set_config merges)."""
    import yaml

    data = yaml_load(e.config_path.read_text(encoding="utf-8"))
    data["oauth2"] = section
    e.config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def browser_approves(a: Authority, url: str, code: str, user: str = AGENCY) -> None:
    """What the officer does in the browser: open the address, type the code, sign in."""
    import ssl
    from urllib.parse import urlencode
    from urllib.request import Request, urlopen

    ctx = ssl.create_default_context(cafile=str(a.ca_path))
    req = Request(url, data=urlencode({"user_code": code, "user": user}).encode(), method="POST")
    with urlopen(req, timeout=10, context=ctx) as resp:
        assert resp.status == 200


def cli_login(e: Env, user: str = AGENCY, approve: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `mailbot login` as the officer would: read the address and code it prints, approve."""
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(e.config_path), "login"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    out: list[str] = []
    url = code = None
    expect = None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if expect == "url":
                url = line.strip()
            elif expect == "code":
                code = line.strip()
            expect = "url" if "open this address" in line else "code" if "type this code" in line else None
            if url and code:
                if approve:
                    browser_approves(e.authority, url, code, user)
                url = code = None
        rest_err = proc.stderr.read() if proc.stderr else ""
        proc.wait()
    finally:
        timer.cancel()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), rest_err)


def stored(e: Env) -> dict:
    path = e.cfg.data_dir / "secrets" / "credentials.json"
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- device code

@pytest.mark.parametrize("provider", ["generic", "microsoft"])
def test_device_code_login_end_to_end(oenv, provider):
    e, a = oenv, oenv.authority
    a.lifetime = 5      # fresh for 4 s (a fifth is the refresh margin): a slow cycle needs just one refresh
    set_oauth2(e, generic(a, "device_code") if provider == "generic" else microsoft(a, "device_code"))
    r = cli_login(e)
    assert r.returncode == 0, r.stdout + r.stderr
    # Thai first, then English: where to go, what to type, what happened
    assert "เปิดที่อยู่นี้ในเว็บเบราว์เซอร์" in r.stdout and "open this address in a web browser" in r.stdout
    assert "พิมพ์รหัสนี้" in r.stdout and f"{a.url}/device" in r.stdout
    assert "✓ เข้าสู่ระบบแล้ว" in r.stdout and "signed in" in r.stdout
    assert "โทเค็นใช้ได้ถึง / token valid until" in r.stdout
    device = [q for q in a.requests if q["endpoint"] == "devicecode"]
    assert len(device) == 1 and device[0]["style"] == ("microsoft" if provider == "microsoft" else "generic")
    # the refresh token is kept, owner-only, and nowhere in mailbot.yaml
    creds = e.cfg.data_dir / "secrets" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
    rts = [t for t in a.issued if t.startswith("rt-")]
    assert len(rts) == 1 and rts[0] in creds.read_text()
    assert rts[0] not in e.config_path.read_text(encoding="utf-8")
    # the token lapses before the next cycle: the refresh token gets a new one, no login needed
    time.sleep(5.2)
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    report = run_cycle(e.cfg, clock=e.clock)
    assert [h.outcome for h in report.handled] == ["registered"] and report.smtp_error is None
    assert len(a.grants("refresh_token")) == 1
    assert "auth failed" not in e.imap.log()                 # refreshed before use, never refused
    new_rt = [t for t in a.issued if t.startswith("rt-")][-1]
    assert new_rt != rts[0] and new_rt in creds.read_text()  # the rotated refresh token is kept
    assert len(e.smtp.messages) == 1


def test_device_code_declined_is_a_plain_message(oenv):
    e, a = oenv, oenv.authority
    set_oauth2(e, generic(a, "device_code"))
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(e.config_path), "login"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    code = None
    for line in proc.stdout:
        if code == "next":
            code = line.strip()
            assert a.approve(code, AGENCY, deny=True)
            break
        if "type this code" in line:
            code = "next"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert "ผู้ใช้ไม่ยอมรับการเข้าสู่ระบบ" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- token lifetime

class ExchangeLikeProxy:
    """A TCP proxy in front of Dovecot that behaves as Exchange Online does when the token a
    session signed in with expires: the next command gets "* BYE Session invalidated -
    AccessTokenExpired" and the connection closes. ``bye_on``: also end the first session that
    sends this command (a server dropping the session for its own reasons)."""

    def __init__(self, target_port: int, authority: Authority, bye_on: bytes | None = None) -> None:
        import socket

        self.target = target_port
        self.authority = authority
        self.bye_on = bye_on
        self.logins = 0
        self.invalidated = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(20)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
            threading.Thread(target=self._client_side, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def _client_side(self, client, server) -> None:  # type: ignore[no-untyped-def]
        import base64

        buf, token = b"", None
        try:
            while data := client.recv(65536):
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    words = line.split()
                    for word in words:          # SASL-IR or a continuation line carrying the token
                        try:
                            decoded = base64.b64decode(word, validate=True)
                        except ValueError:
                            continue
                        if b"auth=Bearer " in decoded:
                            token = decoded.split(b"auth=Bearer ", 1)[1].split(b"\x01", 1)[0].decode()
                            self.logins += 1
                            break
                    else:
                        expired = token is not None and time.time() >= self.authority.access[token]["exp"]
                        trigger = self.bye_on is not None and self.bye_on in line.upper()
                        if expired or trigger:
                            if trigger:
                                self.bye_on = None
                            self.invalidated += 1
                            client.sendall(b"* BYE Session invalidated - AccessTokenExpired\r\n")
                            raise OSError("session invalidated")
                    server.sendall(line + b"\r\n")
        except OSError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_token_expiring_between_two_cycles_is_renewed_before_use(oenv):
    e, a = oenv, oenv.authority
    a.lifetime = 5      # fresh for 4 s: one token serves a whole cycle even on a slow machine
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    assert [h.outcome for h in run_cycle(e.cfg, clock=e.clock).handled] == ["registered"]
    time.sleep(5.1)
    e.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    report = run_cycle(e.cfg, clock=e.clock)
    assert [h.outcome for h in report.handled] == ["registered"] and report.smtp_error is None
    assert len(a.grants("client_credentials")) == 2
    assert "auth failed" not in e.imap.log()       # the stale token was never offered to the server
    assert len(e.smtp.messages) == 2


def test_token_expiring_within_a_cycle_is_renewed_and_the_cycle_goes_on(oenv):
    e, a = oenv, oenv.authority
    a.lifetime = 2
    proxy = ExchangeLikeProxy(e.imap.port, a)
    e.set_config(imap={"port": proxy.port, "batch_size": 1})
    e.smtp.sink.delay = 0.8                      # each reply takes a while: the cycle outlives two tokens
    e.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(6)])
    started = time.time()
    report = run_cycle(e.cfg, clock=e.clock)
    took = time.time() - started
    try:
        assert took > 2 * a.lifetime                                  # the cycle really outlived two tokens
        assert [h.outcome for h in report.handled] == ["registered"] * 6
        assert report.smtp_error is None and len(e.smtp.messages) == 6
        assert e.folder_count("INBOX") == 0 and e.folder_count("ลงทะเบียนแล้ว") == 6
        assert proxy.logins >= 2                                      # IMAP signed in again mid-cycle
        assert len(e.smtp.logins) >= 2                                # so did SMTP
        assert len(a.grants("client_credentials")) >= 3
        con = sqlite3.connect(e.cfg.data_dir / "state.sqlite3")
        assert con.execute("SELECT count(*) FROM outbox WHERE status='sent'").fetchone()[0] == 6
        assert con.execute("SELECT count(*) FROM messages WHERE outcome IS NULL").fetchone()[0] == 0
    finally:
        proxy.close()


def test_session_dropped_by_the_server_over_its_token_is_resumed(oenv):
    """Exchange's BYE arrives before our own renewal: the command is repeated on a new session."""
    e, a = oenv, oenv.authority
    proxy = ExchangeLikeProxy(e.imap.port, a, bye_on=b"UID FETCH")
    e.set_config(imap={"port": proxy.port})
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    try:
        report = run_cycle(e.cfg, clock=e.clock)
        assert proxy.invalidated == 1 and proxy.logins == 2
        assert [h.outcome for h in report.handled] == ["registered", "registered"]
        assert e.folder_count("INBOX") == 0 and len(e.smtp.messages) == 2
    finally:
        proxy.close()


# ---------------------------------------------------------------------------- failures told plainly

def test_revoked_sign_in_alerts_loses_nothing_and_recovers_after_login(oenv, capsys):
    from mailbot.ops.daemon import Daemon

    e, a = oenv, oenv.authority
    set_oauth2(e, generic(a, "device_code"))
    assert cli_login(e).returncode == 0
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    assert e.cli("poll").returncode == 0
    assert a.revoke(user=AGENCY) >= 2                        # the administrator revokes the sign-in
    e.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    r = e.cli("poll")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "เข้าสู่ระบบใหม่ด้วย mailbot login" in r.stderr and "sign in again with: mailbot login" in r.stderr
    assert e.folder_count("INBOX") == 1                      # nothing lost: the letter waits on the server
    # the alert: on the console, in the alerts table, an email queued for when SMTP signs in again
    assert "แจ้งเตือน / ALERT" in r.stderr
    # the service's next cycle says it again on its console (the alert itself repeats hourly at most)
    capsys.readouterr()
    Daemon(e.cfg, clock=e.clock)._poll_once()
    captured = capsys.readouterr()
    assert "mailbot login" in captured.out + captured.err and "Traceback" not in captured.out + captured.err
    con = sqlite3.connect(e.cfg.data_dir / "state.sqlite3")
    assert con.execute("SELECT count(*) FROM alerts WHERE key='login'").fetchone()[0] == 1
    queued = con.execute("SELECT count(*) FROM outbox WHERE kind='alert' AND status='queued'").fetchone()[0]
    assert queued == 1                                       # SMTP signs in the same way: it waits
    status = e.cli("status")
    assert "ลงชื่อเข้าใช้ไม่สำเร็จ" in status.stdout and "mailbot login" in status.stdout
    assert "ยังไม่ได้เข้าสู่ระบบ" in status.stdout or "หมดอายุหรือถูกยกเลิก" in status.stdout
    # the officer signs in again: the waiting letter is registered, the alert goes out
    assert cli_login(e).returncode == 0
    r = e.cli("poll")
    assert r.returncode == 0, r.stderr
    assert e.folder_count("INBOX") == 0 and e.folder_count("ลงทะเบียนแล้ว") == 2
    subjects = [m["Subject"] for m in e.replies()]
    assert any("[mailbot แจ้งเตือน]" in s for s in subjects)
    assert "ลงชื่อเข้าใช้ไม่สำเร็จ" not in e.cli("status").stdout


@pytest.mark.parametrize("provider", ["generic", "microsoft"])
def test_wrong_client_secret_is_a_plain_thai_error(oenv, provider, monkeypatch):
    e, a = oenv, oenv.authority
    set_oauth2(e, generic(a) if provider == "generic" else microsoft(a))
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    wrong = {SECRET_ENV: "not-the-secret"}
    r = e.cli("poll", env=wrong)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "\nรหัสลับของแอปไม่ถูกต้องหรือหมดอายุ" in r.stderr and "mailbot login" in r.stderr
    assert r.stderr.index("รหัสลับของแอปไม่ถูกต้อง") < r.stderr.index("client secret")   # Thai first
    if provider == "microsoft":
        assert "AADSTS7000215" in r.stderr                                  # msal's answer, passed on
    check = e.cli("check", env=wrong)
    assert check.returncode == 3 and "✗ ลงชื่อเข้าใช้ OAuth2 / OAuth2 sign-in" in check.stdout
    assert "รหัสลับของแอปไม่ถูกต้อง" in check.stdout
    assert e.folder_count("INBOX") == 1
    # mailbot login takes the right secret (typed, hidden) and keeps it in the credential store
    e.set_config(oauth2={"client_secret_env": None})
    r = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(e.config_path), "login", "--secret-stdin"],
                       input="not-the-secret\n", capture_output=True, text=True, encoding="utf-8",
                       env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert r.returncode == 3 and "รหัสลับของแอปไม่ถูกต้อง" in r.stderr
    assert not (e.cfg.data_dir / "secrets" / "credentials.json").exists() or \
        "not-the-secret" not in (e.cfg.data_dir / "secrets" / "credentials.json").read_text()
    r = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(e.config_path), "login", "--secret-stdin"],
                       input=CLIENT_SECRET + "\n", capture_output=True, text=True, encoding="utf-8",
                       env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert r.returncode == 0, r.stderr
    assert "✓ รหัสลับใช้ได้" in r.stdout and CLIENT_SECRET not in r.stdout
    monkeypatch.delenv(SECRET_ENV)
    r = e.cli("poll", env={SECRET_ENV: ""})
    assert r.returncode == 0, r.stderr
    assert e.folder_count("INBOX") == 0


@pytest.mark.parametrize("oenv", ["xoauth2"], indirect=True)      # Exchange Online offers only XOAUTH2
def test_microsoft_client_credentials_through_msal(oenv):
    e, a = oenv, oenv.authority
    set_oauth2(e, microsoft(a, client_secret_expires="2027-06-30"))
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    report = run_cycle(e.cfg, clock=e.clock)
    assert [h.outcome for h in report.handled] == ["registered"] and report.smtp_error is None
    grants = a.grants("client_credentials")
    assert len(grants) == 1 and grants[0]["style"] == "microsoft"      # msal, at the tenant's token endpoint
    r = e.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "provider: microsoft" in r.stdout and "flow: client_credentials" in r.stdout
    assert "granted scopes: IMAP.AccessAsApp SMTP.SendAsApp" in r.stdout   # the token's roles
    assert "token valid until" in r.stdout and "client secret expires: 30 มิถุนายน 2570" in r.stdout
    assert "messages waiting (XOAUTH2)" in r.stdout                        # real IMAP and SMTP sign-ins
    assert ":%d (XOAUTH2)" % e.smtp.port in r.stdout
    assert "method=XOAUTH2" in e.imap.log() and "method=OAUTHBEARER" not in e.imap.log()


def test_microsoft_app_without_consent_or_mailbox_access(oenv):
    e, a = oenv, oenv.authority
    set_oauth2(e, microsoft(a))
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    a.clients[CLIENT_ID]["consented"] = False                # IMAP.AccessAsApp never granted admin consent
    r = e.cli("poll")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "ให้ผู้ดูแล Microsoft 365 อนุญาตแอป" in r.stderr and "admin consent" in r.stderr
    from mailbot.mail.smtp import Smtp

    with pytest.raises(oauth.OAuthError) as info, Smtp(e.cfg.smtp, AGENCY) as smtp:
        smtp.connect()                                       # SMTP refuses it too, at once (535), plainly
    assert info.value.kind == "consent" and "SMTP.SendAsApp" in info.value.thai
    assert info.value.english.startswith("SMTP login refused")
    a.clients[CLIENT_ID]["consented"] = True
    a.clients[CLIENT_ID]["mailboxes"] = set()                # consented, but no Add-MailboxPermission
    r = e.cli("poll")
    assert r.returncode == 3
    assert "Add-MailboxPermission" in r.stderr and "New-ServicePrincipal" in r.stderr
    assert e.folder_count("INBOX") == 1
    a.clients[CLIENT_ID]["mailboxes"] = {AGENCY}
    assert e.cli("poll").returncode == 0 and e.folder_count("INBOX") == 0


def test_google_service_account_through_google_auth(oenv):
    e, a = oenv, oenv.authority
    info, public = service_account_key("mailbot@agency-project.iam.gserviceaccount.com", "104857600000000000001",
                                       a.google_token_url)
    key = e.root / "key.json"
    key.write_text(json.dumps(info), encoding="utf-8")
    a.add_service_account(info, public, delegated=())        # domain-wide delegation not granted yet
    set_oauth2(e, {"provider": "google", "service_account_file": "key.json", "ca_file": str(a.ca_path),
                   "store": "file"})
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    r = e.cli("poll")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "ให้ผู้ดูแล Google Workspace มอบสิทธิ์ทั้งโดเมน" in r.stderr and "104857600000000000001" in r.stderr
    assert "https://mail.google.com/" in r.stderr
    a.service_accounts[info["client_email"]]["delegated"] = {"https://mail.google.com/"}
    report = run_cycle(e.cfg, clock=e.clock)
    assert [h.outcome for h in report.handled] == ["registered"] and report.smtp_error is None
    jwt = [g for g in a.grants() if g["style"] == "google"]
    assert jwt and jwt[-1]["grant"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"   # a signed assertion
    assert e.smtp.logins == [AGENCY]                         # impersonating the mailbox (subject)


# ---------------------------------------------------------------------------- secrets

def test_secrets_sweep_client_secret_and_tokens_appear_nowhere(oenv, tmp_path):
    e, a = oenv, oenv.authority
    a.lifetime = 2
    backups = tmp_path / "backups"
    backups.mkdir()
    e.set_config(backup={"dir": str(backups)}, supervisors=["head@example.go.th"])
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess:
        r = e.cli(*args)
        outputs.append(r.stdout + r.stderr)
        return r

    # client credentials, generic then msal, with and without --debug
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    assert run("--debug", "poll").returncode == 0
    run("check"), run("--debug", "check"), run("status")
    set_oauth2(e, microsoft(a))
    e.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    assert run("--debug", "poll").returncode == 0
    # device code with a refresh, then a revoked sign-in (the failure path, with --debug)
    set_oauth2(e, generic(a, "device_code"))
    r = cli_login(e)
    outputs.append(r.stdout + r.stderr)
    time.sleep(2.1)
    e.deliver(letter("ขอทำบัตรประชาชน", sender="c@example.com"))
    assert run("--debug", "poll").returncode == 0
    a.revoke(user=AGENCY)
    time.sleep(2.1)
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="d@example.com"))
    assert run("--debug", "poll").returncode == 3
    assert run("backup").returncode == 0
    run("report", "--email"), run("status"), run("--debug", "check")

    text = "\n".join(outputs)
    assert "DEBUG" in text and "AUTHENTICATE" in text        # the debug output really was produced
    secrets = [CLIENT_SECRET, *a.issued]
    kinds = {name: sum(t.startswith(prefix) for t in a.issued)
             for name, prefix in (("access", "eyJ"), ("refresh", "rt-"), ("device", "dc-"))}
    assert kinds["access"] >= 4 and kinds["refresh"] >= 2 and kinds["device"] == 1
    for secret in secrets:
        assert secret not in text
    store = (e.cfg.data_dir / "secrets").resolve()
    files = [p for root in (e.root, backups) for p in root.rglob("*")
             if p.is_file() and store not in p.resolve().parents]
    names = {p.name for p in files}
    assert "mailbot.log" in names and "state.sqlite3" in names and "mailbot.yaml" in names
    assert any(p.suffix == ".xlsx" for p in files) and any("mailbot-backup-" in str(p) for p in files)
    blob = b"\n".join(p.read_bytes() for p in files)
    dump = "\n".join(sqlite3.connect(e.cfg.data_dir / "state.sqlite3").iterdump())
    for secret in secrets:
        assert secret.encode() not in blob and secret not in dump
    # they are where they belong: the owner-only store (the refresh token died with the revocation)
    kept = (store / "credentials.json").read_text(encoding="utf-8")
    assert stat.S_IMODE((store / "credentials.json").stat().st_mode) == 0o600
    assert any(t in kept for t in a.issued if t.startswith("eyJ"))


def test_credential_store_keyring_chunks_and_file_fallback(tmp_path):
    import keyring
    from keyring.backend import KeyringBackend

    from mailbot.mail import credentials

    class Vault(KeyringBackend):
        """An in-memory OS store with Windows Credential Manager's size limit (2,560 bytes UTF-16)."""

        priority = 5

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):  # type: ignore[no-untyped-def]
            return self.items.get((service, username))

        def set_password(self, service, username, password):  # type: ignore[no-untyped-def]
            if len(password.encode("utf-16-le")) > 2560:
                raise keyring.errors.PasswordSetError("Stub received bad data")
            self.items[(service, username)] = password

        def delete_password(self, service, username):  # type: ignore[no-untyped-def]
            self.items.pop((service, username))

    # no OS store here (a server without a desktop session): the owner-only file
    plain = credentials.Store(tmp_path / "data")
    if plain.kind == "file":
        plain.set("a", "b" * 10)
        assert plain.get("a") == "b" * 10
        assert stat.S_IMODE(plain.path.stat().st_mode) == 0o600
    previous = keyring.get_keyring()
    vault = Vault()
    keyring.set_keyring(vault)
    try:
        store = credentials.Store(tmp_path / "data2")
        assert store.kind == "keyring" and "keyring" in store.where()
        big = "x" * 2500 + "ยืนยัน" + "y" * 1700          # a refresh token + access token record
        store.set("oauth2-token:abc", big)
        assert store.get("oauth2-token:abc") == big
        assert len(vault.items) == 6                       # header + 5 chunks
        store.set("oauth2-token:abc", "short")
        assert store.get("oauth2-token:abc") == "short" and len(vault.items) == 1
        store.delete("oauth2-token:abc")
        assert vault.items == {} and store.get("oauth2-token:abc") is None
        assert not (tmp_path / "data2" / "secrets").exists()   # nothing on disk with an OS store
    finally:
        keyring.set_keyring(previous)


def test_secrets_kept_in_the_file_stay_there_when_a_credential_store_appears(tmp_path, monkeypatch):
    """A data folder whose secrets are in the owner-only file keeps using it with ``auto``: a
    credential store installed later would otherwise hide the audit chain's key, a refresh token
    or a password (each then "gone"); and a start does not search for a keyring backend."""
    from mailbot.mail import credentials

    monkeypatch.delenv("MAILBOT_SECRET_STORE", raising=False)
    monkeypatch.setattr(credentials, "keyring_backend", lambda: None)     # no OS store yet
    before = credentials.Store(tmp_path / "data")
    assert before.kind == "file"
    before.set("audit-key", "k" * 64)

    class Appeared:            # a credential store that turns up afterwards (it holds nothing)
        priority = 5

        def get_password(self, service, username):  # type: ignore[no-untyped-def]
            return None

    searched: list[int] = []

    def backend():  # type: ignore[no-untyped-def]
        searched.append(1)
        return Appeared()

    monkeypatch.setattr(credentials, "keyring_backend", backend)
    after = credentials.Store(tmp_path / "data")
    assert after.kind == "file" and after.get("audit-key") == "k" * 64 and after.where() == str(after.path)
    assert searched == []
    # a data folder without the file: the credential store, as before
    fresh = credentials.Store(tmp_path / "other")
    assert fresh.kind == "keyring" and searched == [1]
    # asked for the keyring in so many words: the keyring, file or not
    assert credentials.Store(tmp_path / "data", "keyring").kind == "keyring"


# ---------------------------------------------------------------------------- warnings, status, config

def test_expiry_warnings_and_status_say_when_sign_in_lapses(tmp_path, authority, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from mailbot.config import load_config
    from mailbot.starter import init
    from mailbot.thai import to_bangkok

    init(tmp_path)
    import yaml

    path = tmp_path / "mailbot.yaml"
    assert oauth.signin_lapse(load_config(path), datetime(2027, 1, 1, tzinfo=timezone.utc))[0] is None  # password
    data = yaml_load(path.read_text(encoding="utf-8"))
    data["imap"]["auth"] = data["smtp"]["auth"] = "oauth2"
    data["oauth2"] = generic(authority, client_secret_expires="2027-06-30")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    cfg = load_config(path)
    far = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert oauth.expiry_warnings(cfg, far) == []
    near = datetime(2027, 6, 10, 3, 0, tzinfo=timezone.utc)
    [(key, thai, english)] = oauth.expiry_warnings(cfg, near)
    assert key == "oauth2-secret" and "อีก 20 วัน (30 มิถุนายน 2570)" in thai and "2027-06-30" in english
    assert "mailbot login" in thai and "2027" not in thai              # Buddhist-Era dates only in Thai
    [(_, thai, _)] = oauth.expiry_warnings(cfg, datetime(2027, 7, 2, tzinfo=timezone.utc))
    assert "หมดอายุแล้ว" in thai
    lines = oauth.status_lines(cfg, near)
    assert "30 มิถุนายน 2570" in lines[0] and "20 days" in lines[0]
    # the host's health table: the earliest date the sign-in lapses unless someone acts
    at, thai, _ = oauth.signin_lapse(cfg, near)
    assert at is not None and to_bangkok(at).date().isoformat() == "2027-06-30" and thai == "รหัสลับของแอป"
    # device code: lapses from disuse, counted from the last use of the refresh token
    data["oauth2"] = generic(authority, "device_code", refresh_token_days=90)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    cfg = load_config(path)
    assert [k for k, _, _ in oauth.expiry_warnings(cfg, near)] == ["oauth2-login"]   # never signed in
    assert oauth.signin_lapse(cfg, near)[0] == near                                    # lapsed already
    [(_, src)] = oauth.sources(cfg)
    used = datetime(2027, 3, 1, 2, 0, tzinfo=timezone.utc)
    src._rt_used_at, src._refresh_token = used, "rt-test"
    oauth.note_ok(src)
    assert oauth.expiry_warnings(cfg, used + timedelta(days=30)) == []
    assert oauth.signin_lapse(cfg, used)[0] == used + timedelta(days=90)
    [(key, thai, english)] = oauth.expiry_warnings(cfg, used + timedelta(days=70))
    assert key == "oauth2-refresh" and "30 พฤษภาคม 2570" in thai and "2027-05-30" in english
    assert any("30 พฤษภาคม 2570" in line for line in oauth.status_lines(cfg, used))
    assert "rt-test" not in (cfg.data_dir / oauth.STATUS_FILE).read_text(encoding="utf-8")


def test_config_old_files_keep_working_and_oauth2_mistakes_are_named(tmp_path):
    from mailbot.config import load_config
    from mailbot.errors import ConfigError
    from mailbot.starter import init

    init(tmp_path)
    cfg = load_config(tmp_path / "mailbot.yaml")                 # the starter file, untouched
    assert cfg.imap.auth == cfg.smtp.auth == "password" and cfg.oauth2 is None
    base = (tmp_path / "mailbot.yaml").read_text(encoding="utf-8")
    cases = {
        "imap:\n  auth: oauth2\n": "imap.auth is oauth2 but there is no oauth2 section",
        "oauth2:\n  provider: microsoft\n  client_id: x\n": "provider microsoft needs tenant and client_id",
        "oauth2:\n  provider: google\n  flow: device_code\n  service_account_file: k.json\n": "device-code",
        "oauth2:\n  provider: generic\n  client_id: x\n  token_url: http://login.example.com/token\n": "https://",
        "oauth2:\n  provider: microsoft\n  tenant: t\n  client_id: c\n  client_secret: a\n  client_secret_env: B\n":
            "either client_secret or client_secret_env",
    }
    for extra, message in cases.items():
        text = base + "\n" + extra if not extra.startswith("imap") else \
            base.replace("imap:                                     # การรับอีเมล / receiving\n",
                         "imap:\n  auth: oauth2\n")
        (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "bad.yaml")
        assert message in info.value.detail, (extra, info.value.detail)
        assert info.value.thai.startswith("ไฟล์ตั้งค่ามีข้อผิดพลาด")
    # the starter file documents every key it adds
    for key in ("# auth: password", "# oauth2:", "provider:", "flow:", "tenant:", "client_id:", "client_secret_env:",
                "client_secret_expires:", "service_account_file:", "token_url:", "device_code_url:", "scope:"):
        assert key in base, key


def test_restored_backup_on_another_computer_asks_for_login(oenv, tmp_path):
    e, a = oenv, oenv.authority
    set_oauth2(e, generic(a, "device_code"))
    backups = tmp_path / "backups"
    backups.mkdir()
    e.set_config(backup={"dir": str(backups)})
    assert cli_login(e).returncode == 0
    e.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    assert e.cli("poll").returncode == 0
    assert e.cli("backup").returncode == 0
    # another computer: the same mailbot.yaml, an empty data folder, the backup restored
    other = tmp_path / "other"
    other.mkdir()
    (other / "mailbot.yaml").write_text(e.config_path.read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("rules.yaml", "templates"):
        src = e.root / name
        subprocess.run(["cp", "-r", str(src), str(other / name)], check=True)
    moved = Env(e.imap, e.smtp, other, other / "mailbot.yaml")
    r = moved.cli("restore", "--from", str(backups))
    assert r.returncode == 0, r.stderr
    kept = other / "data" / "secrets" / "credentials.json"     # no token travelled with the backup (the
    assert not kept.exists() or not [k for k in json.loads(kept.read_text(encoding="utf-8"))   # store may hold
                                     if k.startswith("oauth2")]                                  # the audit head)
    e.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    r = moved.cli("poll")
    assert r.returncode == 3 and "สั่ง mailbot login" in r.stderr and "Traceback" not in r.stderr
    moved.authority = a
    assert cli_login(moved).returncode == 0
    assert moved.cli("poll").returncode == 0 and e.folder_count("INBOX") == 0
