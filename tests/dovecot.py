"""A throw-away Dovecot (Debian's dovecot-imapd) on 127.0.0.1 for interoperability tests:
users in a passwd-file, Maildir under a temp dir, a self-signed certificate for the ssl and
starttls paths. With ``oauth_introspect`` it also takes SASL XOAUTH2 and OAUTHBEARER through its
``oauth2`` passdb, which validates every token by RFC 7662 introspection (POST) at that URL
(``oauth_ca``: the CA of an https authority; ``oauth_mechanisms="xoauth2"`` offers only XOAUTH2,
as Exchange Online does); passwords keep working for the test's own client.
Started and stopped by the test fixture; nothing outside its folder is touched."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


def _binary() -> str:
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(folder: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "key.pem").chmod(0o600)


class Dovecot:
    def __init__(self, folder: Path, user: str, password: str, oauth_introspect: str | None = None,
                 oauth_ca: Path | None = None, oauth_mechanisms: str = "xoauth2 oauthbearer") -> None:
        self.folder = folder
        self.user = user
        self.password = password
        self.port = _free_port()
        self.ssl_port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state").mkdir(exist_ok=True)
        # the login processes run as the unprivileged dovenull user: their runtime folder must be
        # reachable by it (pytest's temp folders are 0700)
        self.run_dir = Path(tempfile.gettempdir()) / f"mailbot-dovecot-{self.port}"
        self.run_dir.mkdir(mode=0o755, exist_ok=True)
        self.run_dir.chmod(0o755)
        _self_signed(folder)
        # mail is stored as the system user "mail" (Dovecot never stores mail as root)
        self.mail_dir = self.run_dir / "mail"
        self.mail_dir.mkdir(exist_ok=True)
        import pwd

        mail_user = pwd.getpwnam("mail")
        os.chown(self.mail_dir, mail_user.pw_uid, mail_user.pw_gid)
        users = self.run_dir / "users"          # read by the auth process (user dovecot)
        users.write_text(f"{user}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
        users.chmod(0o644)
        mechanisms, oauth_passdb, extra_auth = "plain login", "", ""
        if oauth_introspect:
            ca_line = ""
            if oauth_ca is not None:       # the auth process runs as "dovecot": a copy it can read
                shutil.copy(oauth_ca, self.run_dir / "oauth-ca.pem")
                (self.run_dir / "oauth-ca.pem").chmod(0o644)
                ca_line = f"tls_ca_cert_file = {self.run_dir}/oauth-ca.pem\n"
            oauth_conf = self.run_dir / "dovecot-oauth2.conf.ext"
            oauth_conf.write_text(
                f"introspection_url = {oauth_introspect}\n"
                "introspection_mode = post\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "timeout_msecs = 10000\n"
                + ca_line, encoding="utf-8")
            oauth_conf.chmod(0o644)
            mechanisms = f"plain login {oauth_mechanisms}"
            # refused tokens are tested on purpose: no failure delay, no per-IP auth penalty
            extra_auth = ("auth_failure_delay = 0\n"
                          "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}")
            oauth_passdb = f"""passdb {{
  driver = oauth2
  mechanisms = {oauth_mechanisms}
  args = {oauth_conf}
}}
"""
        self.conf = folder / "dovecot.conf"
        self.conf.write_text(f"""
base_dir = {self.run_dir}
state_dir = {folder}/state
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
{extra_auth}
first_valid_uid = 1
mail_location = maildir:{self.mail_dir}/%u
default_internal_user = dovecot
default_login_user = dovenull
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.run_dir}/users
}}
{oauth_passdb}
userdb {{
  driver = static
  args = uid=mail gid=mail home={self.mail_dir}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""", encoding="utf-8")

    def start(self) -> "Dovecot":
        # dovecot forks into the background: its output goes to a file, not a pipe we would wait on
        with (self.folder / "start.out").open("wb") as out:
            r = subprocess.run([_binary(), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"dovecot did not start: {(self.folder / 'start.out').read_text()}\n{self.log()}")
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot is not listening:\n" + self.log())

    def log(self) -> str:
        try:
            return (self.folder / "dovecot.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        subprocess.run([_binary(), "-c", str(self.conf), "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(0.3)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> "Dovecot":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
