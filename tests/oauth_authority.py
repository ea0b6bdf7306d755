"""A loopback OAuth2 authority for the tests: HTTPS on 127.0.0.1 with its own CA, in a thread.

It speaks the protocols mailbot's libraries speak, so they are exercised for real:
  * token endpoint (RFC 6749): client_credentials, refresh_token (rotated), the device-code grant
    (RFC 8628) and the JWT-bearer grant of Google service accounts (RFC 7523, RS256 verified);
    generic at /token, Microsoft-style at /<tenant>/oauth2/v2.0/token (AADSTS error texts, JWT
    access tokens with ``roles``/``scp``), Google-style at /google/token;
  * OpenID discovery for msal: /<tenant>/v2.0/.well-known/openid-configuration;
  * device authorization (/device/code, /<tenant>/oauth2/v2.0/devicecode) and the page the user
    opens (/device: a form POST of user_code + user approves, as a browser would);
  * introspection (RFC 7662, /introspect) for Dovecot's oauth2 passdb and the SMTP server;
  * revocation (RFC 7009, /revoke, and ``revoke()`` for the tests).
Short-lived tokens: set ``lifetime`` (seconds). Everything issued is kept in ``issued`` so the
secrets sweep can look for it.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode
from urllib.request import Request, urlopen

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TENANT = "agency.example"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_ca_and_server(folder: Path) -> tuple[Path, Path, Path]:
    """A CA certificate (ca.pem) and a server certificate for 127.0.0.1/localhost signed by it."""
    import ipaddress

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailbot test OAuth2 CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ca_path.chmod(0o644)
    return ca_path, cert_path, key_path


def service_account_key(client_email: str, client_id: str, token_uri: str) -> tuple[dict, bytes]:
    """A Google-format service account key (JSON) and its public key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account", "project_id": "mailbot-test", "private_key_id": secrets.token_hex(20),
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "client_email": client_email, "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    }
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return info, public


class Authority:
    def __init__(self, folder: Path, lifetime: float = 3600) -> None:
        self.folder = folder
        self.lifetime = lifetime
        self.refresh_lifetime = 90 * 86400
        self.device_interval = 1
        self.ca_path, self._cert, self._key = make_ca_and_server(folder)
        self.clients: dict[str, dict] = {}
        self.service_accounts: dict[str, dict] = {}
        self.access: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}
        self.devices: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.issued: list[str] = []          # every token and code handed out (for the secrets sweep)
        self.lock = threading.RLock()
        self.httpd: ThreadingHTTPServer | None = None
        self.port = 0

    # ------------------------------------------------------------------ set-up

    def add_client(self, client_id: str, secret: str | None = None, mailboxes: tuple[str, ...] = (),
                   consented: bool = True, roles: tuple[str, ...] = ("IMAP.AccessAsApp", "SMTP.SendAsApp")) -> None:
        """A registered app: confidential (secret) or public; ``mailboxes``: those the app's service
        principal may open with client credentials (Add-MailboxPermission)."""
        self.clients[client_id] = {"secret": secret, "mailboxes": set(mailboxes), "consented": consented,
                                   "roles": list(roles)}

    def add_service_account(self, info: dict, public_pem: bytes, delegated: tuple[str, ...] = ()) -> None:
        """A Google service account; ``delegated``: scopes authorised for domain-wide delegation."""
        self.service_accounts[info["client_email"]] = {
            "client_id": info["client_id"], "public": serialization.load_pem_public_key(public_pem),
            "delegated": set(delegated)}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def device_url(self) -> str:
        return self.url + "/device/code"

    @property
    def introspect_url(self) -> str:
        return self.url + "/introspect"

    @property
    def google_token_url(self) -> str:
        return self.url + "/google/token"

    def start(self) -> "Authority":
        authority = self

        class Handler(_Handler):
            owner = authority

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._cert, self._key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="oauth-authority", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> "Authority":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the tests' levers

    def approve(self, user_code: str, user: str, deny: bool = False) -> bool:
        with self.lock:
            for rec in self.devices.values():
                if rec["user_code"] == user_code and rec["status"] == "pending":
                    rec["status"] = "denied" if deny else "approved"
                    rec["user"] = user
                    return True
        return False

    def revoke(self, user: str | None = None, client_id: str | None = None) -> int:
        """Revoke every access and refresh token of a user and/or an app; returns how many."""
        n = 0
        with self.lock:
            for table in (self.access, self.refresh):
                for rec in table.values():
                    if rec["active"] and (user is None or rec.get("user") == user) and \
                            (client_id is None or rec["client_id"] == client_id):
                        rec["active"] = False
                        n += 1
        return n

    def grants(self, grant: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["endpoint"] == "token" and (grant is None or r["grant"] == grant)]

    def introspections(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["endpoint"] == "introspect"]

    # ------------------------------------------------------------------ issuing

    def _issue(self, client_id: str, user: str | None, scope: str, style: str, app: bool) -> dict:
        now = time.time()
        jti = secrets.token_urlsafe(24)
        claims: dict = {"aud": "https://outlook.office365.com", "iss": f"{self.url}/{TENANT}/v2.0",
                        "appid": client_id, "iat": int(now), "exp": int(now + self.lifetime), "jti": jti}
        if app:
            client = self.clients.get(client_id, {})
            claims["roles"] = client.get("roles", []) if client.get("consented") else []
        else:
            claims["scp"] = " ".join(s.rsplit("/", 1)[-1] for s in scope.split() if s not in ("offline_access",))
            claims["upn"] = user
        access = ".".join([_b64url(b'{"alg":"none","typ":"JWT"}'), _b64url(json.dumps(claims).encode()),
                           secrets.token_urlsafe(32)])
        with self.lock:
            self.access[access] = {"client_id": client_id, "user": user, "scope": scope, "exp": now + self.lifetime,
                                   "active": True, "app": app}
            self.issued.append(access)
        out = {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
               "access_token": access}
        if not (app and style == "microsoft"):   # Entra ID's client-credentials answer carries no scope
            out["scope"] = scope
        return out

    def _issue_refresh(self, client_id: str, user: str, scope: str) -> str:
        rt = "rt-" + secrets.token_urlsafe(48)
        with self.lock:
            self.refresh[rt] = {"client_id": client_id, "user": user, "scope": scope, "active": True,
                                "exp": time.time() + self.refresh_lifetime}
            self.issued.append(rt)
        return rt

    def _id_token(self, client_id: str, user: str) -> tuple[str, str]:
        now = int(time.time())
        oid, tid = "00000000-0000-0000-0000-0000000000aa", "00000000-0000-0000-0000-0000000000bb"
        claims = {"iss": f"{self.url}/{TENANT}/v2.0", "aud": client_id, "iat": now, "nbf": now, "exp": now + 3600,
                  "sub": "sub-" + user, "oid": oid, "tid": tid, "preferred_username": user, "name": user,
                  "ver": "2.0"}
        idt = ".".join([_b64url(b'{"alg":"none","typ":"JWT"}'), _b64url(json.dumps(claims).encode()), ""])
        return idt, _b64url(json.dumps({"uid": oid, "utid": tid}).encode())


class _Handler(BaseHTTPRequestHandler):
    owner: Authority
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:  # noqa: D401 - quiet
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: dict | str, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _client(self, form: dict[str, str]) -> tuple[str | None, str | None]:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return unquote(cid), unquote(secret)
        return form.get("client_id"), form.get("client_secret")

    def _error(self, status: int, error: str, description: str, style: str, code: int | None = None) -> None:
        body = {"error": error, "error_description": description}
        if style == "microsoft" and code:
            body["error_description"] = f"AADSTS{code}: {description}"
            body["error_codes"] = [code]
        self._send(status, body)

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            base = f"{self.owner.url}/{TENANT}"
            self._send(200, {
                "issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["code"], "scopes_supported": ["openid", "profile", "offline_access"],
            })
        elif path.endswith("/.well-known/openid-configuration"):
            self._error(400, "invalid_tenant", "Tenant not found.", "microsoft", 90002)
        elif path == "/device":
            self._send(200, "<form method=post>code: <input name=user_code> <input name=user></form>", "text/html")
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        form = self._form()
        if path in ("/token", f"/{TENANT}/oauth2/v2.0/token", "/google/token"):
            style = "microsoft" if path.startswith(f"/{TENANT}") else "google" if path.startswith("/google") \
                else "generic"
            self._token(form, style)
        elif path in ("/device/code", f"/{TENANT}/oauth2/v2.0/devicecode"):
            self._device_code(form, "microsoft" if path.startswith(f"/{TENANT}") else "generic")
        elif path == "/device":
            ok = self.owner.approve(form.get("user_code", "").strip(), form.get("user", ""),
                                    deny=form.get("deny") == "1")
            self._send(200 if ok else 400, "signed in; you may close this window" if ok else "unknown code",
                       "text/plain")
        elif path == "/introspect":
            self._introspect(form)
        elif path == "/revoke":
            token = form.get("token", "")
            with self.owner.lock:
                for table in (self.owner.access, self.owner.refresh):
                    if token in table:
                        table[token]["active"] = False
            self._send(200, {})
        else:
            self._send(404, {"error": "not_found"})

    # ------------------------------------------------------------------ endpoints

    def _token(self, form: dict[str, str], style: str) -> None:
        o = self.owner
        grant = form.get("grant_type", "")
        cid, secret = self._client(form)
        with o.lock:
            o.requests.append({"endpoint": "token", "grant": grant, "client_id": cid, "style": style,
                               "at": time.time()})
        if grant == JWT_GRANT:
            self._jwt_bearer(form)
            return
        client = o.clients.get(cid or "")
        if client is None:
            self._error(400, "unauthorized_client", f"Application with identifier '{cid}' was not found in the "
                        f"directory '{TENANT}'.", style, 700016)
            return
        if client["secret"] is not None and secret != client["secret"]:
            self._error(401, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in "
                        "the request is the client secret value, not the client secret ID.", style, 7000215)
            return
        scope = form.get("scope", "")
        if grant == "client_credentials":
            if client["secret"] is None:
                self._error(401, "invalid_client", "The request body must contain client_secret.", style, 7000218)
                return
            self._send(200, o._issue(cid, None, scope, style, app=True))
        elif grant == DEVICE_GRANT:
            code = form.get("device_code", "")
            with o.lock:
                rec = o.devices.get(code)
                if rec is None or rec["client_id"] != cid:
                    self._error(400, "invalid_grant", "Unknown device code.", style, 70000)
                    return
                if time.time() > rec["exp"]:
                    self._error(400, "expired_token", "The device code expired.", style, 70019)
                    return
                status = rec["status"]
                if status == "approved":
                    rec["status"] = "used"
            if status == "pending":
                self._error(400, "authorization_pending", "The user has not yet finished signing in.", style, 70016)
            elif status == "denied":
                self._error(400, "access_denied", "The user declined.", style, 70000)
            elif status == "approved":
                out = o._issue(cid, rec["user"], rec["scope"], style, app=False)
                out["refresh_token"] = o._issue_refresh(cid, rec["user"], rec["scope"])
                if style == "microsoft":
                    out["id_token"], out["client_info"] = o._id_token(cid, rec["user"])
                self._send(200, out)
            else:
                self._error(400, "invalid_grant", "The device code was already used.", style, 70000)
        elif grant == "refresh_token":
            rt = form.get("refresh_token", "")
            with o.lock:
                rec = o.refresh.get(rt)
                ok = rec is not None and rec["active"] and rec["client_id"] == cid and time.time() < rec["exp"]
                if ok:
                    rec["active"] = False           # rotated: the old one is spent
            if not ok:
                self._error(400, "invalid_grant", "The refresh token has been revoked or has expired.", style, 50173)
                return
            out = o._issue(cid, rec["user"], rec["scope"], style, app=False)
            out["refresh_token"] = o._issue_refresh(cid, rec["user"], rec["scope"])
            if style == "microsoft":
                out["id_token"], out["client_info"] = o._id_token(cid, rec["user"])
            self._send(200, out)
        else:
            self._error(400, "unsupported_grant_type", f"grant {grant!r}", style, 70003)

    def _jwt_bearer(self, form: dict[str, str]) -> None:
        """Google's service-account grant: verify the RS256 assertion, then domain-wide delegation."""
        o = self.owner
        try:
            head_b64, body_b64, sig_b64 = form.get("assertion", "").split(".")
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(body_b64))
        except ValueError:
            self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
            return
        account = o.service_accounts.get(claims.get("iss", ""))
        if account is None or header.get("alg") != "RS256":
            self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            return
        try:
            account["public"].verify(_unb64url(sig_b64), f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(),
                                     hashes.SHA256())
        except Exception:  # noqa: BLE001
            self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            return
        now = time.time()
        # google-auth always names Google's own token endpoint as the audience, whatever token_uri is
        audience_ok = claims.get("aud") in (o.google_token_url, "https://oauth2.googleapis.com/token")
        if not audience_ok or not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)):
            self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a "
                             "short-lived token and in a reasonable timeframe."})
            return
        scopes = set(str(claims.get("scope", "")).split())
        subject = claims.get("sub")
        if not subject:
            self._send(400, {"error": "invalid_scope", "error_description": "Scope not allowed without a subject."})
            return
        if not scopes or not scopes <= account["delegated"]:
            self._send(401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to "
                             "retrieve access tokens using this method, or client not authorized for any of the "
                             "scopes requested."})
            return
        self._send(200, o._issue(account["client_id"], subject, " ".join(sorted(scopes)), "google", app=False))

    def _device_code(self, form: dict[str, str], style: str) -> None:
        o = self.owner
        cid, _secret = self._client(form)
        with o.lock:
            o.requests.append({"endpoint": "devicecode", "grant": None, "client_id": cid, "style": style,
                               "at": time.time()})
        if cid not in o.clients:
            self._error(400, "unauthorized_client", f"Application with identifier '{cid}' was not found.", style,
                        700016)
            return
        device_code = "dc-" + secrets.token_urlsafe(32)
        user_code = secrets.token_hex(4).upper()
        with o.lock:
            o.devices[device_code] = {"client_id": cid, "user_code": user_code, "scope": form.get("scope", ""),
                                      "status": "pending", "exp": time.time() + 600, "user": None}
            o.issued.append(device_code)
        out = {"device_code": device_code, "user_code": user_code, "verification_uri": f"{o.url}/device",
               "expires_in": 600, "interval": o.device_interval}
        if style == "microsoft":
            out["message"] = f"To sign in, use a web browser to open the page {o.url}/device and enter the code " \
                             f"{user_code} to authenticate."
        self._send(200, out)

    def _introspect(self, form: dict[str, str]) -> None:
        o = self.owner
        token = form.get("token", "")
        if not token:   # Dovecot's "auth" mode sends it as a bearer header
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with o.lock:
            o.requests.append({"endpoint": "introspect", "grant": None, "client_id": None, "style": None,
                               "at": time.time(), "agent": self.headers.get("User-Agent", "")})
            rec = o.access.get(token)
        if rec is None or not rec["active"] or time.time() >= rec["exp"]:
            self._send(200, {"active": False})
            return
        user = rec["user"]
        if rec["app"]:
            # client credentials: the app may open the one mailbox it was given access to
            client = o.clients.get(rec["client_id"], {})
            granted = client.get("mailboxes", set()) if client.get("consented") else set()
            user = next(iter(granted)) if len(granted) == 1 else f"app-{rec['client_id']}"
        self._send(200, {"active": True, "username": user, "email": user, "client_id": rec["client_id"],
                         "scope": rec["scope"], "exp": int(rec["exp"]), "token_type": "Bearer"})


def introspector(url: str, ca_file: Path):  # type: ignore[no-untyped-def]
    """A check(user, token) -> bool for the SMTP server: RFC 7662 introspection over HTTPS."""
    ctx = ssl.create_default_context(cafile=str(ca_file))

    def check(user: str, token: str) -> bool:
        req = Request(url, data=urlencode({"token": token}).encode(), method="POST",
                      headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "aiosmtpd"})
        with urlopen(req, timeout=10, context=ctx) as resp:
            data = json.loads(resp.read())
        return bool(data.get("active")) and str(data.get("username", "")).lower() == user.lower()

    return check
