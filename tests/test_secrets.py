"""Secrets never leak (logs, registers, error messages, --debug), and TLS is verified unless
explicitly switched off — with a warning at every start."""
from __future__ import annotations

import socket
import sqlite3
import ssl
import threading

import pytest

from .conftest import letter

pytestmark = pytest.mark.slow   # subprocesses and the OS keyring

SENTINEL = "S3ntinel-Pa55word-xyzzy"


def everything_written(env) -> bytes:  # type: ignore[no-untyped-def]
    blobs = []
    for folder in (env.root,):
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "mailbot.yaml":
                blobs.append(path.read_bytes())
    return b"\n".join(blobs)


def test_sentinel_password_appears_nowhere(env):
    # the password lives in an environment variable, as the starter config advises
    env.set_config(imap={"password": None, "password_env": "SENTINEL_PW"},
                   smtp={"password": None, "password_env": "SENTINEL_PW"})
    env.imap.stop()
    from mailbot.mail.servers import ImapServer, SmtpServer

    from .conftest import AGENCY

    with ImapServer(AGENCY, SENTINEL) as imap, SmtpServer(AGENCY, SENTINEL) as smtp:
        env.set_config(imap={"port": imap.port}, smtp={"port": smtp.port})
        with __import__("imapclient").IMAPClient("127.0.0.1", port=imap.port, ssl=False) as c:
            c.login(AGENCY, SENTINEL)
            c.append("INBOX", bytes(letter("ขออนุญาตก่อสร้างอาคาร")))
        outputs = []
        for args in (["--debug", "poll"], ["poll"], ["check"], ["--debug", "check"], ["status"]):
            r = env.cli(*args, env={"SENTINEL_PW": SENTINEL})
            outputs.append(r.stdout + r.stderr)
        # and failures: a wrong password, an unreachable server
        r = env.cli("--debug", "poll", env={"SENTINEL_PW": SENTINEL + "-wrong"})
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 3
        assert len(smtp.messages) == 1
    text = "\n".join(outputs)
    assert "LOGIN" in text or "login" in text            # the debug output really was produced
    assert SENTINEL not in text
    assert SENTINEL.encode() not in everything_written(env)
    db = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    dump = "\n".join(db.iterdump())
    assert SENTINEL not in dump


def test_config_repr_and_errors_hide_passwords(tmp_path):
    from mailbot.config import load_config

    p = tmp_path / "mailbot.yaml"
    p.write_text("agency: {name: x, address: a@b.go.th}\nimap: {host: h, password: %s}\n"
                 "smtp: {host: h, password: %s, bogus: 1}\n" % (SENTINEL, SENTINEL), encoding="utf-8")
    try:
        load_config(p)
    except Exception as exc:  # noqa: BLE001
        assert SENTINEL not in str(exc) and SENTINEL not in getattr(exc, "detail", "")
    else:
        raise AssertionError("bogus key accepted")


def _tls_server():  # type: ignore[no-untyped-def]
    """A TLS listener with a self-signed certificate (what a man in the middle would present)."""
    import datetime as dt
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    folder = tempfile.mkdtemp()
    cpath, kpath = f"{folder}/c.pem", f"{folder}/k.pem"
    open(cpath, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(kpath, "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cpath, kpath)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)

    def serve():  # type: ignore[no-untyped-def]
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
                tls.sendall(b"* OK fake IMAP ready\r\n")
                tls.recv(1000)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock


def test_tls_is_verified_by_default_and_switching_it_off_warns(env):
    sock = _tls_server()
    try:
        port = sock.getsockname()[1]
        env.set_config(imap={"security": "ssl", "port": port, "timeout_seconds": 5})
        r = env.cli("poll")
        assert r.returncode == 3 and "cannot connect" in r.stderr     # self-signed: refused
        assert "CERTIFICATE_VERIFY_FAILED" in r.stderr or "certificate" in r.stderr.lower()
        env.set_config(imap={"verify_tls": False})
        r = env.cli("poll")
        assert "WARNING: TLS certificate verification is OFF for imap" in r.stderr
    finally:
        sock.close()
