"""The setup's connection test against real servers on loopback: each failure the officer can
meet is produced for real — a wrong password on pymap, a closed port, a self-signed certificate,
SMTP AUTH refused (and refused because a tenant switched basic sign-in off), an SMTP server
offering no AUTH, a missing folder — and explained in Thai with what to do."""
from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mailbot.config import load_config
from mailbot.demo import make_workspace
from mailbot.errors import ConnectionFailure
from mailbot.mail.servers import HOST, ImapServer, SmtpServer, free_port
from mailbot.setup.probe import KINDS, kind_of, probe

pytestmark = pytest.mark.slow     # real servers on loopback

USER = "saraban@example.go.th"
PASSWORD = "s3cret-test-pass"
THAI = re.compile(r"[\u0e00-\u0e7f]")


def _workspace(tmp_path: Path, imap_port: int, smtp_port: int, password: str = PASSWORD, **imap):
    from mailbot.setup import settings

    path = make_workspace(tmp_path / "office", imap_port, smtp_port, password)
    if imap:
        settings.update_config(path, {f"imap.{k}": v for k, v in imap.items()})
    return load_config(path)


def _plain(finding) -> None:
    """What the page shows: Thai, no traceback, no exception class names in the Thai."""
    assert THAI.search(finding.thai) and THAI.search(finding.todo)
    for word in ("Traceback", "Error", "Exception", "errno"):
        assert word not in finding.thai + finding.todo


@pytest.fixture
def servers():
    with ImapServer(USER, PASSWORD) as imap, SmtpServer(USER, PASSWORD) as smtp:
        yield imap, smtp


def test_a_working_pair_passes(servers, tmp_path):
    imap, smtp = servers
    found = probe(_workspace(tmp_path, imap.port, smtp.port))
    assert [(f.server, f.ok) for f in found] == [("imap", True), ("smtp", True)]


def test_a_wrong_password(servers, tmp_path):
    imap, smtp = servers
    found = probe(_workspace(tmp_path, imap.port, smtp.port, password="not-it"))
    assert [(f.server, f.ok, f.kind) for f in found] == [("imap", False, "wrong_password"),
                                                           ("smtp", False, "wrong_password")]
    for f in found:
        _plain(f)
        assert "รหัสผ่าน" in f.thai


def test_a_closed_port(tmp_path):
    closed = free_port()          # bound and let go: nothing listens there now
    found = probe(_workspace(tmp_path, closed, closed, timeout_seconds=5))
    assert [f.kind for f in found] == ["port_closed", "port_closed"]
    for f in found:
        _plain(f)


def test_a_missing_folder(servers, tmp_path):
    imap, smtp = servers
    found = probe(_workspace(tmp_path, imap.port, smtp.port, folder="ไม่มีโฟลเดอร์นี้"))
    assert found[0].kind == "folder_missing" and found[1].ok
    _plain(found[0])


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    crt, pem = folder / "cert.pem", folder / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_a_self_signed_certificate(tmp_path, servers):
    """A TLS listener with a throwaway self-signed certificate: nothing is sent to it."""
    _imap, smtp = servers
    crt, pem = _self_signed(tmp_path / "tls")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, pem)
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"* OK IMAP4rev1 ready\r\n")
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        found = probe(_workspace(tmp_path, port, smtp.port, security="ssl", timeout_seconds=5))
    finally:
        stop.set()
        t.join(2)
        listener.close()
    assert found[0].kind == "certificate", found[0].said
    _plain(found[0])
    assert "ใบรับรอง" in found[0].thai


class _Refusing:
    """aiosmtpd's authenticator answering every sign-in with the given 535 text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False, message=self.text)


class _Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.mark.parametrize("text, kind", [
    ("535 5.7.8 Authentication credentials invalid", "wrong_password"),
    ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", "basic_auth_refused"),
    ("534 5.7.9 Application-specific password required.", "app_password"),
])
def test_smtp_auth_refused(servers, tmp_path, text, kind):
    imap, _smtp = servers
    port = free_port()
    c = Controller(_Sink(), hostname=HOST, port=port, authenticator=_Refusing(text), auth_required=True,
                   auth_require_tls=False)
    c.start()
    try:
        found = probe(_workspace(tmp_path, imap.port, port))
    finally:
        c.stop()
    assert found[0].ok and found[1].kind == kind, found[1].said
    _plain(found[1])


def test_an_smtp_server_offering_no_auth(servers, tmp_path):
    imap, _ = servers
    with SmtpServer(USER, PASSWORD, require_auth=False, offer_auth=False) as bare:
        found = probe(_workspace(tmp_path, imap.port, bare.port))
    assert found[1].kind == "auth_not_offered"
    _plain(found[1])


def test_every_kind_is_explained_in_thai():
    for kind, (thai, todo, english) in KINDS.items():
        assert THAI.search(thai) and THAI.search(todo) and english, kind


@pytest.mark.parametrize("said, host, kind", [
    ("AUTHENTICATE failed.", "outlook.office365.com", "basic_auth_refused"),
    ("LOGIN failed.", "imap.example.go.th", "wrong_password"),
    ("[ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833",
     "imap.gmail.com", "app_password"),
    ("[ALERT] Your account is not enabled for IMAP use.", "imap.gmail.com", "imap_disabled"),
    ("User is authenticated but not connected.", "outlook.office365.com", "imap_disabled"),
])
def test_imap_refusals_are_told_apart_by_the_servers_words(said, host, kind):
    exc = ConnectionFailure("x", "y", reason="login", said=said)
    assert kind_of(exc, "imap", host) == kind
