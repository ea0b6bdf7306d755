"""OAuth2: the tokens mailbot signs in to IMAP and SMTP with (Microsoft 365 / workD, Google
Workspace, any OAuth2 provider), and to Microsoft Graph with (``mailbox: graph``: ``graph_source``).

Owns: getting access tokens — client credentials (unattended: the right flow for a daemon), or
a device code followed by refresh tokens — through msal for Microsoft, google-auth for Google
(a service account with domain-wide delegation, impersonating the mailbox) and a plain HTTP
POST for any other OAuth2 token endpoint; refreshing a token before it expires (at most five
minutes, at most a fifth of its life, ahead); the token cache (in memory for the process, in the
credential store between processes); telling every failure in plain Thai + English (sign in
again with ``mailbot login``, admin consent, wrong client secret, no access to the mailbox);
the ``mailbot login`` conversation; the lines ``check`` and ``status`` print; and the expiry
warnings the alerts use.

Tokens and secrets live only in the credential store (credentials.py). What is not secret —
when the current token expires, the granted scopes, when the refresh token was last used, the
last failure — is kept in ``<data>/oauth2-status.json`` so ``status`` and the alerts can read
it without signing in.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlparse
from urllib.request import Request, urlopen

from filelock import FileLock

from ..config import MICROSOFT_AUTHORITY, Config, OAuth2Config
from ..errors import ConnectionFailure, MailbotError
from .credentials import Store

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0          # seconds: a token this close to expiry is renewed first
HTTP_TIMEOUT = 30.0
STATUS_FILE = "oauth2-status.json"
MSAL_RESERVED = {"offline_access", "openid", "profile"}   # msal adds these itself
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PROVIDER_NAMES = {"microsoft": "Microsoft 365 / workD", "google": "Google Workspace", "generic": "OAuth2"}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------- tokens and errors

@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: datetime
    obtained_at: datetime
    scopes: tuple[str, ...] = ()

    def margin(self) -> timedelta:
        life = (self.expires_at - self.obtained_at).total_seconds()
        return timedelta(seconds=max(0.0, min(REFRESH_MARGIN, life / 5)))

    def fresh(self, now: datetime | None = None) -> bool:
        """Still good for a while: not within its refresh margin of expiry."""
        return (now or _utcnow()) < self.expires_at - self.margin()


class OAuthError(ConnectionFailure):
    """A sign-in that failed. ``kind``: relogin, consent, secret, refused, config, unreachable,
    denied, expired_code: what the officer or the administrator has to do."""

    def __init__(self, kind: str, thai: str, english: str, detail: str = "") -> None:
        super().__init__(thai, english, detail)
        self.kind = kind


def _relogin(mailbox: str, why: str = "") -> OAuthError:
    return OAuthError(
        "relogin",
        f"การลงชื่อเข้าใช้กล่องอีเมล {mailbox} หมดอายุหรือถูกยกเลิก เข้าสู่ระบบใหม่ด้วย mailbot login",
        f"OAuth2 login for {mailbox} has expired or was revoked{f' ({why})' if why else ''}: "
        "sign in again with: mailbot login",
    )


def _consent(s: OAuth2Config, client: str, detail: str = "") -> OAuthError:
    if s.provider == "microsoft":
        perms = ("IMAP.AccessAsApp และ SMTP.SendAsApp", "IMAP.AccessAsApp, SMTP.SendAsApp") \
            if s.flow == "client_credentials" else \
            ("IMAP.AccessAsUser.All และ SMTP.Send", "IMAP.AccessAsUser.All, SMTP.Send")
        if s.flow == "client_credentials" and s.scope and "outlook.office365.com" not in s.scope:
            perms = ("Mail.ReadWrite และ Mail.Send (Microsoft Graph)", "Microsoft Graph Mail.ReadWrite, Mail.Send")
        return OAuthError(
            "consent",
            f"ให้ผู้ดูแล Microsoft 365 อนุญาตแอป {client} ในนามองค์กร สำหรับสิทธิ์ {perms[0]}",
            f"OAuth2 login refused: the Microsoft 365 administrator must grant admin consent to app {client} "
            f"({perms[1]}); see README, Microsoft 365 / workD",
            detail,
        )
    if s.provider == "google":
        scope = " ".join(s.scopes())
        return OAuthError(
            "consent",
            f"ให้ผู้ดูแล Google Workspace มอบสิทธิ์ทั้งโดเมนให้บัญชีบริการหมายเลข {client} ใช้ขอบเขต {scope}",
            f"OAuth2 login refused: the Google Workspace administrator must authorise client ID {client} "
            f"for {scope} (domain-wide delegation); see README, Google Workspace",
            detail,
        )
    return OAuthError(
        "consent",
        f"ผู้ให้บริการลงชื่อเข้าใช้ไม่อนุญาตแอป {client} ให้ผู้ดูแลระบบอีเมลอนุญาตแอปนี้",
        f"OAuth2 login refused: the mail administrator must authorise app {client} for {' '.join(s.scopes())}",
        detail,
    )


def _wrong_secret(client: str, detail: str = "") -> OAuthError:
    return OAuthError(
        "secret",
        "รหัสลับของแอปไม่ถูกต้องหรือหมดอายุ ขอรหัสลับใหม่จากผู้ดูแลระบบ แล้วใส่ด้วยคำสั่ง mailbot login",
        f"OAuth2 login failed: the client secret of app {client} is wrong or expired (invalid_client); "
        "put the new secret in with: mailbot login",
        detail,
    )


def _config_error(what_th: str, what_en: str, detail: str = "") -> OAuthError:
    return OAuthError("config", f"ตั้งค่าการลงชื่อเข้าใช้ไม่ถูกต้อง: {what_th} (ส่วน oauth2 ใน mailbot.yaml)",
                      f"OAuth2 login failed: {what_en} (oauth2 in mailbot.yaml)", detail)


def _unreachable(url: str, exc: BaseException | str) -> OAuthError:
    host = urlparse(url).hostname or url
    why = exc if isinstance(exc, str) else f"{type(exc).__name__}: {str(exc)[:160]}"
    # deliberately without the word "login": a network outage is alerted after alerts.unreachable_minutes
    return OAuthError("unreachable", f"ติดต่อบริการลงชื่อเข้าใช้ {host} ไม่ได้ จะลองใหม่รอบถัดไป",
                      f"cannot reach the OAuth2 sign-in service {host} ({why}); retrying next cycle")


def classify(s: OAuth2Config, mailbox: str, error: str, description: str = "", client: str = "") -> OAuthError:
    """An OAuth2 error response (RFC 6749 5.2, with Microsoft's AADSTS codes) as a plain message."""
    client = client or s.client_id
    desc = (description or "").replace("\r", " ").replace("\n", " ")[:300]
    detail = f"{error}: {desc}" if desc else error
    code = desc.split(":", 1)[0] if desc.startswith("AADSTS") else ""
    if code in ("AADSTS7000215", "AADSTS7000222", "AADSTS7000216") or error == "invalid_client":
        return _wrong_secret(client, detail)
    if code in ("AADSTS700016", "AADSTS90002", "AADSTS900023", "AADSTS90014"):
        return _config_error("ไม่พบแอปหรือผู้เช่าตามที่ตั้งค่าไว้ ตรวจ client_id และ tenant",
                             f"application or tenant not found: check client_id and tenant ({code})", detail)
    if code in ("AADSTS65001", "AADSTS650057", "AADSTS500011", "AADSTS7000112") or \
            error in ("consent_required", "unauthorized_client", "invalid_scope"):
        return _consent(s, client, detail)
    if error in ("invalid_grant", "interaction_required", "login_required"):
        if s.provider == "google":
            if "timeframe" in desc.lower() or "iat" in desc.lower():
                return _config_error("นาฬิกาของเครื่องนี้คลาดเคลื่อน ตั้งวันและเวลาให้ถูกต้อง",
                                     "this computer's clock is wrong: set the date and time", detail)
            if "signature" in desc.lower() or "invalid jwt" in desc.lower():
                return _config_error("กุญแจของบัญชีบริการใช้ไม่ได้แล้ว สร้างกุญแจใหม่",
                                     "the service account key is no longer valid: create a new key", detail)
            return _config_error(f"กล่องอีเมล {mailbox} ไม่อยู่ในโดเมนของบัญชีบริการ",
                                 f"mailbox {mailbox} is not a user the service account may act for", detail)
        return OAuthError("relogin", _relogin(mailbox).thai, _relogin(mailbox, error).english, detail)
    if error == "access_denied":
        return OAuthError("denied", "ผู้ใช้ไม่ยอมรับการเข้าสู่ระบบ สั่ง mailbot login ใหม่",
                          "sign-in was declined in the browser; run mailbot login again", detail)
    if error == "expired_token":
        return OAuthError("expired_code", "รหัสเข้าสู่ระบบหมดเวลาแล้ว สั่ง mailbot login ใหม่",
                          "the sign-in code expired before it was used; run mailbot login again", detail)
    return _config_error(f"ผู้ให้บริการตอบว่า {error}", f"the sign-in service answered {error}", detail)


NEEDED_ROLES = {"imap": "IMAP.AccessAsApp", "smtp": "SMTP.SendAsApp"}


def refused(proto: str, s: OAuth2Config, mailbox: str, token: Token | None = None) -> OAuthError:
    """The IMAP/SMTP server refused a token that the sign-in service had just issued."""
    name = proto.upper()
    if s.provider == "microsoft" and s.flow == "client_credentials" and token is not None and \
            token.access_token.count(".") == 2 and NEEDED_ROLES[proto] not in token.scopes:
        # Entra ID issues app tokens even without consent; they just carry no such role
        error = _consent(s, s.client_id, f"the token's roles: {' '.join(token.scopes) or '(none)'}")
        return OAuthError("consent", error.thai, error.english.replace("OAuth2 login refused", f"{name} login refused"),
                          error.detail)
    if s.flow == "device_code":
        return OAuthError(
            "refused",
            f"เซิร์ฟเวอร์ {name} ไม่ยอมรับการลงชื่อเข้าใช้ของกล่องอีเมล {mailbox} เข้าสู่ระบบใหม่ด้วย mailbot login "
            "ด้วยบัญชีของกล่องอีเมลนี้",
            f"{name} login refused the OAuth2 token for {mailbox}: sign in again with mailbot login, "
            "as that mailbox (or a user with access to it)",
        )
    if s.provider == "microsoft":
        return OAuthError(
            "refused",
            f"เซิร์ฟเวอร์ {name} ไม่ยอมรับการลงชื่อเข้าใช้ของแอป ให้ผู้ดูแล Microsoft 365 ลงทะเบียนแอปใน Exchange "
            f"(New-ServicePrincipal) และให้สิทธิ์แอปเข้ากล่องอีเมล {mailbox} (Add-MailboxPermission)",
            f"{name} login refused the app's OAuth2 token for {mailbox}: the Exchange administrator must run "
            "New-ServicePrincipal and Add-MailboxPermission for the app (see README)"
            + (" and allow SMTP AUTH for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false)"
               if proto == "smtp" else ""),
        )
    if s.provider == "google":
        return OAuthError(
            "refused",
            f"เซิร์ฟเวอร์ {name} ไม่ยอมรับการลงชื่อเข้าใช้ ให้ผู้ดูแล Google Workspace เปิด IMAP ให้กล่องอีเมล {mailbox} "
            "และตรวจการมอบสิทธิ์ทั้งโดเมน",
            f"{name} login refused the OAuth2 token for {mailbox}: the Google Workspace administrator must allow "
            "IMAP for the user and check the domain-wide delegation",
        )
    return OAuthError(
        "refused",
        f"เซิร์ฟเวอร์ {name} ไม่ยอมรับการลงชื่อเข้าใช้ของแอป ให้ผู้ดูแลระบบอีเมลให้สิทธิ์แอปเข้ากล่องอีเมล {mailbox}",
        f"{name} login refused the OAuth2 token for {mailbox}: the mail administrator must give the app "
        "access to that mailbox",
    )


def _jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT access token (not verified: only to show its scopes/roles)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _granted(response: dict[str, Any], access_token: str, requested: list[str]) -> tuple[str, ...]:
    scope = response.get("scope")
    if isinstance(scope, str) and scope.strip():
        return tuple(scope.split())
    claims = _jwt_claims(access_token)
    if isinstance(claims.get("roles"), list):
        return tuple(str(r) for r in claims["roles"])
    if isinstance(claims.get("scp"), str):
        return tuple(claims["scp"].split())
    return tuple(requested)


def _token_from(response: dict[str, Any], requested: list[str], now: datetime) -> Token:
    access = str(response["access_token"])
    try:
        seconds = float(response.get("expires_in") or 3600)
    except (TypeError, ValueError):
        seconds = 3600.0
    return Token(access, now + timedelta(seconds=seconds), now, _granted(response, access, requested))


# ---------------------------------------------------------------------------- providers

def http_session(ca_file: Path | None):
    """A requests session for msal and google-auth: a timeout on every request, and
    ``oauth2.ca_file`` honoured even where REQUESTS_CA_BUNDLE is set (requests would let the
    environment win). Proxies from the environment still apply."""
    import requests

    class Session(requests.Session):
        def request(self, method, url, *args, **kwargs):
            if len(args) < 7:      # not given in its place (params, data, headers, cookies, files, auth, timeout)
                kwargs.setdefault("timeout", HTTP_TIMEOUT)
            return super().request(method, url, *args, **kwargs)

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if ca_file is not None:
                settings["verify"] = str(ca_file)
            return settings

    session = Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _Provider:
    def __init__(self, src: "TokenSource") -> None:
        self.src = src
        self.s = src.settings

    def client_credentials(self, force: bool) -> Token:
        raise NotImplementedError

    def start_device(self) -> dict[str, Any]:
        raise OAuthError("config", "ผู้ให้บริการนี้ไม่รองรับการเข้าสู่ระบบด้วยรหัสอุปกรณ์",
                         "this provider has no device-code sign-in")

    def finish_device(self, flow: dict[str, Any]) -> tuple[Token, str | None]:
        raise NotImplementedError

    def refresh(self, refresh_token: str) -> tuple[Token, str | None]:
        raise NotImplementedError


class _Generic(_Provider):
    """Any RFC 6749 token endpoint (client credentials, refresh token) and RFC 8628 device flow."""

    def _context(self, url: str) -> ssl.SSLContext | None:
        if not url.startswith("https://"):
            return None
        ca = self.src.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def post(self, url: str, fields: dict[str, str], secret: str | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                   "User-Agent": "mailbot"}
        if secret is not None:   # RFC 6749 2.3.1: HTTP Basic with form-encoded id and secret
            pair = f"{quote(self.s.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        req = Request(url, data=urlencode(fields).encode(), headers=headers, method="POST")
        try:
            with urlopen(req, timeout=HTTP_TIMEOUT, context=self._context(url)) as resp:
                body, status = resp.read(), resp.status
        except HTTPError as exc:
            body, status = exc.read(), exc.code
        except (URLError, OSError, ssl.SSLError) as exc:
            raise _unreachable(url, getattr(exc, "reason", exc) if isinstance(exc, URLError) else exc) from None
        try:
            data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            if status >= 500:
                raise _unreachable(url, f"HTTP {status}") from None
            raise _config_error(f"คำตอบจาก {url} ไม่ใช่ข้อมูลที่คาดไว้ (HTTP {status})",
                                f"{url} did not answer with JSON (HTTP {status})") from None
        if not isinstance(data, dict):
            raise _config_error(f"คำตอบจาก {url} ไม่ใช่ข้อมูลที่คาดไว้", f"{url} answered unexpected JSON")
        if status >= 500 and "error" not in data:
            raise _unreachable(url, f"HTTP {status}")
        return data

    def _check(self, data: dict[str, Any]) -> dict[str, Any]:
        if "error" in data or "access_token" not in data:
            raise classify(self.s, self.src.mailbox, str(data.get("error") or "no_access_token"),
                           str(data.get("error_description") or ""))
        return data

    def client_credentials(self, force: bool) -> Token:
        secret = self.src.require_secret()
        fields = {"grant_type": "client_credentials"}
        if self.s.scopes():
            fields["scope"] = " ".join(self.s.scopes())
        now = _utcnow()
        data = self._check(self.post(self.s.token_url, fields, secret))
        return _token_from(data, self.s.scopes(), now)

    def start_device(self) -> dict[str, Any]:
        fields = {"client_id": self.s.client_id}
        if self.s.scopes():
            fields["scope"] = " ".join(self.s.scopes())
        data = self.post(self.s.device_code_url, fields, self.src.client_secret())
        if "device_code" not in data or "user_code" not in data:
            raise classify(self.s, self.src.mailbox, str(data.get("error") or "no_device_code"),
                           str(data.get("error_description") or ""))
        return {
            "device_code": data["device_code"], "user_code": data["user_code"],
            "verification_uri": data.get("verification_uri") or data.get("verification_url") or "",
            "expires_in": int(data.get("expires_in") or 900), "interval": max(1, int(data.get("interval") or 5)),
        }

    def finish_device(self, flow: dict[str, Any]) -> tuple[Token, str | None]:
        deadline = time.monotonic() + flow["expires_in"]
        interval = flow["interval"]
        while time.monotonic() < deadline:
            time.sleep(interval)
            now = _utcnow()
            data = self.post(self.s.token_url, {"grant_type": DEVICE_GRANT, "device_code": flow["device_code"],
                                                "client_id": self.s.client_id}, self.src.client_secret())
            error = data.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            data = self._check(data)
            return _token_from(data, self.s.scopes(), now), data.get("refresh_token")
        raise classify(self.s, self.src.mailbox, "expired_token")

    def refresh(self, refresh_token: str) -> tuple[Token, str | None]:
        fields = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.s.client_id}
        if self.s.scopes():
            fields["scope"] = " ".join(self.s.scopes())
        now = _utcnow()
        data = self._check(self.post(self.s.token_url, fields, self.src.client_secret()))
        return _token_from(data, self.s.scopes(), now), data.get("refresh_token")


class _Microsoft(_Provider):
    """Microsoft Entra ID (Microsoft 365, Exchange Online, workD) through msal."""

    def __init__(self, src: "TokenSource") -> None:
        super().__init__(src)
        self._app: Any = None
        self.authority = f"{self.s.authority.rstrip('/')}/{self.s.tenant}"

    def _scopes(self) -> list[str]:
        return [x for x in self.s.scopes() if x not in MSAL_RESERVED]

    def _make(self, confidential: bool) -> Any:
        import msal
        import requests

        kwargs: dict[str, Any] = dict(authority=self.authority, token_cache=msal.TokenCache(),
                                      http_client=http_session(self.src.ca_file))
        if self.s.authority.rstrip("/") != MICROSOFT_AUTHORITY:
            kwargs["instance_discovery"] = False       # a national cloud or a private test authority
        try:
            if confidential:
                return msal.ConfidentialClientApplication(self.s.client_id, client_credential=self.src.require_secret(),
                                                          **kwargs)
            return msal.PublicClientApplication(self.s.client_id, **kwargs)
        except requests.RequestException as exc:
            raise _unreachable(self.authority, exc) from None
        except ValueError as exc:   # msal: tenant discovery failed (unknown tenant) or a bad authority
            raise _config_error("ไม่พบผู้เช่า Microsoft 365 ตามที่ตั้งค่าไว้ ตรวจ tenant",
                                f"Microsoft tenant {self.s.tenant!r} not found at {self.s.authority}",
                                str(exc)[:300]) from None

    def _call(self, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        import requests

        try:
            result = fn()
        except requests.RequestException as exc:
            raise _unreachable(self.authority, exc) from None
        if not isinstance(result, dict):
            raise _config_error("คำตอบจาก Microsoft ไม่ใช่ข้อมูลที่คาดไว้", "unexpected answer from Microsoft")
        if "access_token" not in result:
            raise classify(self.s, self.src.mailbox, str(result.get("error") or "no_access_token"),
                           str(result.get("error_description") or ""))
        return result

    def client_credentials(self, force: bool) -> Token:
        if self._app is None:
            self._app = self._make(confidential=True)
        cache = self._app.token_cache
        if force:   # the server refused the cached one: make msal ask again
            for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)
        now = _utcnow()
        result = self._call(lambda: self._app.acquire_token_for_client(scopes=self._scopes()))
        return _token_from(result, self._scopes(), now)

    def start_device(self) -> dict[str, Any]:
        import requests

        if self._app is None:
            self._app = self._make(confidential=False)
        try:
            flow = self._app.initiate_device_flow(scopes=self._scopes())
        except requests.RequestException as exc:
            raise _unreachable(self.authority, exc) from None
        if "user_code" not in flow:
            raise classify(self.s, self.src.mailbox, str(flow.get("error") or "no_device_code"),
                           str(flow.get("error_description") or ""))
        flow.setdefault("expires_in", 900)
        return flow

    def finish_device(self, flow: dict[str, Any]) -> tuple[Token, str | None]:
        now = _utcnow()
        result = self._call(lambda: self._app.acquire_token_by_device_flow(flow))
        return _token_from(result, self._scopes(), now), result.get("refresh_token")

    def refresh(self, refresh_token: str) -> tuple[Token, str | None]:
        if self._app is None:
            self._app = self._make(confidential=False)
        now = _utcnow()
        result = self._call(lambda: self._app.acquire_token_by_refresh_token(refresh_token, scopes=self._scopes()))
        return _token_from(result, self._scopes(), now), result.get("refresh_token")


class _Google(_Provider):
    """A Google Workspace service account with domain-wide delegation, through google-auth."""

    def __init__(self, src: "TokenSource") -> None:
        super().__init__(src)
        self._creds: Any = None
        self.info: dict[str, Any] = {}

    def _load(self) -> Any:
        from google.oauth2 import service_account

        path = self.src.key_file
        assert path is not None       # config: provider google needs service_account_file
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _config_error(f"ไม่พบแฟ้มกุญแจบัญชีบริการ {path}", f"service account key file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise _config_error(f"อ่านแฟ้มกุญแจบัญชีบริการ {path} ไม่ได้",
                                f"cannot read the service account key file {path} ({type(exc).__name__})") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise _config_error(f"แฟ้ม {path} ไม่ใช่กุญแจของบัญชีบริการ",
                                f"{path} is not a service account key (type: service_account)")
        if self.s.token_url:
            info["token_uri"] = self.s.token_url
        self.info = {k: info.get(k) for k in ("client_email", "client_id", "token_uri")}
        try:
            return service_account.Credentials.from_service_account_info(
                info, scopes=self.s.scopes(), subject=self.src.mailbox)
        except (ValueError, KeyError) as exc:
            raise _config_error(f"แฟ้มกุญแจบัญชีบริการ {path} ไม่สมบูรณ์",
                                f"the service account key {path} is incomplete ({type(exc).__name__}: {exc})") from None

    def client_credentials(self, force: bool) -> Token:
        import requests
        from google.auth import exceptions as gexc
        from google.auth.transport.requests import Request as GoogleRequest

        if self._creds is None:
            self._creds = self._load()
        session = http_session(self.src.ca_file)
        now = _utcnow()
        try:
            self._creds.refresh(GoogleRequest(session))
        except gexc.RefreshError as exc:
            data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            message = str(exc.args[0]) if exc.args else ""
            error = str(data.get("error") or message.split(":", 1)[0] or "refresh_failed")
            desc = str(data.get("error_description") or message)
            if getattr(exc, "retryable", False) and error not in ("invalid_grant", "unauthorized_client"):
                raise _unreachable(self.info.get("token_uri") or "", desc) from None
            raise classify(self.s, self.src.mailbox, error, desc, client=str(self.info.get("client_id") or "")) \
                from None
        except (gexc.TransportError, requests.RequestException) as exc:
            raise _unreachable(self.info.get("token_uri") or "oauth2.googleapis.com", exc) from None
        finally:
            session.close()
        expiry = self._creds.expiry
        if expiry is not None and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=timezone.utc)
        return Token(self._creds.token, expiry or now + timedelta(hours=1), now, tuple(self.s.scopes()))


# ---------------------------------------------------------------------------- the token source

class TokenSource:
    """Access tokens for one mailbox under one oauth2 section; shared by IMAP and SMTP."""

    def __init__(self, settings: OAuth2Config, mailbox: str, data_dir: Path, resolve: Callable[[Path], Path],
                 purpose: str = "") -> None:
        self.settings = s = settings
        self.mailbox = mailbox
        self.data_dir = Path(data_dir)
        self.ca_file = resolve(s.ca_file) if s.ca_file else None
        self.key_file = resolve(s.service_account_file) if s.service_account_file else None
        who = s.client_id or (self.key_file.name if self.key_file else "")
        # purpose "graph": tokens for Microsoft Graph, kept apart from the same app's IMAP/SMTP ones
        self.ident = (f"{purpose}|" if purpose else "") + f"{s.provider}|{s.tenant}|{who}|{s.flow}|{mailbox}".lower()
        self.store = Store(self.data_dir, s.store)
        self._lock = threading.RLock()
        self._loaded = False
        self._token: Token | None = None
        self._refresh_token: str | None = None
        self._rt_used_at: datetime | None = None
        self._trial_secret: str | None = None
        self._force_next = False
        self.impl: _Provider = {"microsoft": _Microsoft, "google": _Google, "generic": _Generic}[s.provider](self)

    # ------------------------------------------------------------------ names in the store

    @property
    def token_name(self) -> str:
        return f"oauth2-token:{self.ident}"

    @property
    def secret_name(self) -> str:
        return f"oauth2-client-secret:{self.settings.provider}|{self.settings.tenant}|{self.settings.client_id}".lower()

    # ------------------------------------------------------------------ client secret

    def client_secret(self) -> str | None:
        if self._trial_secret is not None:
            return self._trial_secret
        return self.settings.secret() or self.store.get(self.secret_name)

    def require_secret(self) -> str:
        secret = self.client_secret()
        if not secret:
            env = self.settings.client_secret_env
            raise OAuthError(
                "secret",
                "ยังไม่มีรหัสลับของแอป ใส่รหัสลับด้วยคำสั่ง mailbot login",
                "no OAuth2 client secret: put it in with mailbot login"
                + (f" (or set the environment variable {env})" if env else ""),
            )
        return secret

    # ------------------------------------------------------------------ cache

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        raw = self.store.get(self.token_name)
        if not raw:
            return
        try:
            data = json.loads(raw)
            self._refresh_token = data.get("refresh_token") or None
            self._rt_used_at = datetime.fromisoformat(data["rt_used_at"]) if data.get("rt_used_at") else None
            if data.get("access_token"):
                self._token = Token(data["access_token"], datetime.fromisoformat(data["expires_at"]),
                                    datetime.fromisoformat(data["obtained_at"]), tuple(data.get("scopes") or ()))
        except (ValueError, KeyError, TypeError):
            log.warning("stored OAuth2 token for %s unreadable; getting a new one", self.mailbox)
            self._token = None

    def _save(self) -> None:
        data: dict[str, Any] = {}
        if self._token is not None:
            data.update(access_token=self._token.access_token, expires_at=self._token.expires_at.isoformat(),
                        obtained_at=self._token.obtained_at.isoformat(), scopes=list(self._token.scopes))
        if self._refresh_token:
            data["refresh_token"] = self._refresh_token
        if self._rt_used_at:
            data["rt_used_at"] = self._rt_used_at.isoformat()
        if data:
            self.store.set(self.token_name, json.dumps(data))
        else:
            self.store.delete(self.token_name)

    # ------------------------------------------------------------------ tokens

    def token(self, force: bool = False) -> Token:
        """A token good for a while: the cached one, else a new or refreshed one."""
        with self._lock:
            self._load()
            force = force or self._force_next
            if not force and self._token is not None and self._token.fresh():
                return self._token
            try:
                token = self._acquire(force)
            except OAuthError as exc:
                note_failure(self, exc)
                raise
            self._token = token
            self._force_next = False
            self._save()
            note_ok(self)
            log.info("OAuth2 token for %s obtained (valid %d s)", self.mailbox,
                     (token.expires_at - token.obtained_at).total_seconds())
            return token

    def _acquire(self, force: bool) -> Token:
        if self.settings.flow == "client_credentials":
            return self.impl.client_credentials(force)
        if not self._refresh_token:
            raise OAuthError("relogin", f"ยังไม่ได้เข้าสู่ระบบกล่องอีเมล {self.mailbox} สั่ง mailbot login",
                             f"not signed in to {self.mailbox} yet (no refresh token): run mailbot login")
        try:
            token, new_rt = self.impl.refresh(self._refresh_token)
        except OAuthError as exc:
            if exc.kind == "relogin":   # the refresh token is dead: drop it
                self._refresh_token = None
                self._token = None
                self._save()
            raise
        if new_rt:
            self._refresh_token = new_rt
        self._rt_used_at = token.obtained_at
        return token

    def rejected(self, token: Token) -> None:
        """The server refused this token: never hand it out again."""
        with self._lock:
            self._force_next = True          # and no library cache may hand it out either (msal)
            if self._token is not None and self._token.access_token == token.access_token:
                self._token = None
                self._save()

    def current(self) -> Token | None:
        with self._lock:
            self._load()
            return self._token

    # ------------------------------------------------------------------ mailbot login

    def try_secret(self, secret: str) -> Token:
        """Get a token with a new client secret; keep the secret only when it works."""
        with self._lock:
            self._trial_secret = secret
            try:
                if isinstance(self.impl, _Microsoft):
                    self.impl._app = None        # msal holds the secret it was made with
                token = self.token(force=True)
            finally:
                self._trial_secret = None
                if isinstance(self.impl, _Microsoft):
                    self.impl._app = None
            if self.settings.secret() is None:
                self.store.set(self.secret_name, secret)
            return token

    def device_login(self, show: Callable[[str, str, int], None]) -> Token:
        """RFC 8628: show the address and code, wait for the user, keep the refresh token."""
        with self._lock:
            flow = self.impl.start_device()
            show(str(flow.get("verification_uri") or ""), str(flow["user_code"]), int(flow.get("expires_in") or 900))
            try:
                token, rt = self.impl.finish_device(flow)
            except OAuthError as exc:
                note_failure(self, exc)
                raise
            self._loaded = True
            self._token = token
            self._refresh_token = rt
            self._rt_used_at = token.obtained_at
            if not rt:
                log.warning("the sign-in service issued no refresh token (offline_access missing?)")
            self._save()
            note_ok(self)
            return token

    def forget(self) -> None:
        with self._lock:
            self._token = None
            self._refresh_token = None
            self._rt_used_at = None
            self._loaded = True
            self.store.delete(self.token_name)
            self.store.delete(self.secret_name)


_SOURCES: dict[tuple[str, ...], TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def source(server: Any) -> TokenSource:
    """The token source of an imap/smtp section with ``auth: oauth2`` (one per process and mailbox)."""
    settings = server.oauth2_settings()
    root: Config | None = server.root
    if settings is None or root is None:
        raise MailbotError("ไม่มีส่วน oauth2 ใน mailbot.yaml", "no oauth2 section in mailbot.yaml")
    mailbox = server.login_name()
    key = (settings.model_dump_json(), mailbox, str(root.data_dir.resolve()))
    with _SOURCES_LOCK:
        src = _SOURCES.get(key)
        if src is None:
            src = _SOURCES[key] = TokenSource(settings, mailbox, root.data_dir, root.resolve)
        return src


def graph_source(cfg: Config) -> TokenSource:
    """The token source of the graph section (``mailbox: graph``; one per process and mailbox):
    msal's client credentials for Microsoft Graph, the secret from the same credential store."""
    if cfg.graph is None:
        raise MailbotError("ไม่มีส่วน graph ใน mailbot.yaml", "no graph section in mailbot.yaml")
    settings = cfg.graph.oauth2()
    mailbox = cfg.graph_mailbox
    key = ("graph", settings.model_dump_json(), mailbox, str(cfg.data_dir.resolve()))
    with _SOURCES_LOCK:
        src = _SOURCES.get(key)
        if src is None:
            src = _SOURCES[key] = TokenSource(settings, mailbox, cfg.data_dir, cfg.resolve, purpose="graph")
        return src


PROTOCOL_NAMES = {"imap": "IMAP", "smtp": "SMTP", "graph": "Microsoft Graph"}


def sources(cfg: Config) -> list[tuple[list[str], TokenSource]]:
    """The distinct token sources in use, with the protocols that use each."""
    if cfg.mailbox == "graph":
        return [(["graph"], graph_source(cfg))]
    out: list[tuple[list[str], TokenSource]] = []
    for name, server in (("imap", cfg.imap), ("smtp", cfg.smtp)):
        if server.auth != "oauth2":
            continue
        src = source(server)
        for protos, known in out:
            if known is src:
                protos.append(name)
                break
        else:
            out.append(([name], src))
    return out


def in_use(cfg: Config) -> bool:
    return cfg.mailbox == "graph" or cfg.imap.auth == "oauth2" or cfg.smtp.auth == "oauth2"


# ---------------------------------------------------------------------------- non-secret status

def _status_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATUS_FILE


def read_status(data_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_status_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update_status(src: TokenSource, **fields: Any) -> None:
    path = _status_path(src.data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            data = read_status(src.data_dir)
            entry = data.setdefault(src.ident, {})
            entry.update(provider=src.settings.provider, flow=src.settings.flow, mailbox=src.mailbox,
                         client_id=src.settings.client_id)
            entry.update(fields)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, path)
    except OSError as exc:   # status is a convenience: never fail a cycle over it
        log.warning("cannot write %s: %s", path, exc)


def note_ok(src: TokenSource) -> None:
    token = src._token
    fields: dict[str, Any] = {"last_ok_at": _utcnow().isoformat(), "last_error": None}
    if token is not None:
        fields.update(expires_at=token.expires_at.isoformat(), scopes=list(token.scopes))
    if src._rt_used_at is not None:
        fields["refresh_token_used_at"] = src._rt_used_at.isoformat()
    fields["signed_in"] = bool(src._refresh_token) if src.settings.flow == "device_code" else True
    _update_status(src, **fields)


def note_failure(src: TokenSource, exc: MailbotError) -> None:
    fields: dict[str, Any] = {"last_error": {"at": _utcnow().isoformat(), "kind": getattr(exc, "kind", ""),
                                             "thai": exc.thai, "english": exc.english}}
    if getattr(exc, "kind", "") == "relogin":
        fields["signed_in"] = False
    _update_status(src, **fields)



# ---------------------------------------------------------------------------- check, status, alerts

def _when(at: datetime) -> str:
    from ..thai import thai_datetime

    return thai_datetime(at)


def _day(d: date) -> str:
    from ..thai import thai_date

    return thai_date(d)


def _secret_expiry(s: OAuth2Config, now: datetime) -> tuple[date, int] | None:
    """The client secret's expiry date and the days left until it, when oauth2.client_secret_expires is set."""
    if s.client_secret_expires is None:
        return None
    from ..thai import to_bangkok

    return s.client_secret_expires, (s.client_secret_expires - to_bangkok(now).date()).days


def check_lines(cfg: Config) -> list[str]:
    """For ``mailbot check``: provider, flow, token expiry and granted scopes; signs in to the
    sign-in service (the IMAP and SMTP sign-ins themselves are checked by their own steps)."""
    lines: list[str] = []
    for protos, src in sources(cfg):
        lines += source_lines(protos, src, src.token())
    return lines


def source_lines(protos: list[str], src: TokenSource, token: Token) -> list[str]:
    """What ``check`` says of one token source and the token it gave."""
    s = src.settings
    now = _utcnow()
    minutes = int((token.expires_at - now).total_seconds() // 60)
    lines = [f"ผู้ให้บริการ / provider: {s.provider} ({PROVIDER_NAMES[s.provider]}); "
             f"วิธี / flow: {s.flow}; ใช้กับ / for: {', '.join(PROTOCOL_NAMES[p] for p in protos)}"]
    who = s.client_id or (src.impl.info.get("client_email") if isinstance(src.impl, _Google) else "")
    lines.append(f"กล่องอีเมล / mailbox: {src.mailbox}; แอป / app: {who or '-'}")
    lines.append(f"โทเค็นใช้ได้ถึง / token valid until: {_when(token.expires_at)} (อีก {minutes} นาที / {minutes} min)")
    lines.append("สิทธิ์ที่ได้รับ / granted scopes: " + (" ".join(token.scopes) or "-"))
    lines.append(f"ที่เก็บโทเค็นและรหัสลับ / tokens and secrets kept in: {src.store.where()}")
    expiry = _secret_expiry(s, now)
    if expiry is not None:
        expires, days = expiry
        lines.append(f"รหัสลับของแอปหมดอายุ / client secret expires: {_day(expires)} "
                     f"({days} วัน / days)")
    if s.flow == "device_code" and src._rt_used_at is not None:
        lapse = src._rt_used_at + timedelta(days=s.refresh_token_days)
        lines.append(f"ถ้าไม่ได้ใช้งาน ต้องเข้าสู่ระบบใหม่หลัง / if unused, sign in again after: {_when(lapse)}")
    return lines


def status_lines(cfg: Config, now: datetime) -> list[str]:
    """For ``mailbot status``: when the sign-in lapses, and the last sign-in failure (no network)."""
    if not in_use(cfg):
        return []
    lines: list[str] = []
    status = read_status(cfg.data_dir)
    for protos, src in sources(cfg):
        s = src.settings
        entry = status.get(src.ident, {})
        head = f"ลงชื่อเข้าใช้ / sign-in ({', '.join(PROTOCOL_NAMES[p] for p in protos)}, {s.provider}, {s.flow}): "
        if s.flow == "device_code":
            used = entry.get("refresh_token_used_at")
            if not entry.get("signed_in") or not used:
                lines.append(head + "ยังไม่ได้เข้าสู่ระบบ สั่ง mailbot login / not signed in: run mailbot login")
            else:
                lapse = datetime.fromisoformat(used) + timedelta(days=s.refresh_token_days)
                lines.append(head + f"ใช้ได้ต่อเนื่องขณะ mailbot ทำงาน ถ้าหยุดเกิน {s.refresh_token_days} วัน "
                             f"ต้องเข้าสู่ระบบใหม่ หลัง {_when(lapse)} / lapses if unused after {lapse:%Y-%m-%d %H:%M} UTC")
        else:
            expiry = _secret_expiry(s, now)
            if expiry is None:
                lines.append(head + "ใช้ได้จนกว่ารหัสลับของแอปจะหมดอายุ (ไม่ได้ระบุวันหมดอายุใน "
                             "oauth2.client_secret_expires) / lasts until the client secret expires "
                             "(date unknown: set oauth2.client_secret_expires)")
            else:
                expires, days = expiry
                lines.append(head + f"ใช้ได้ถึง {_day(expires)} เมื่อรหัสลับของแอปหมดอายุ "
                             f"(อีก {days} วัน) / lapses when the client secret expires on "
                             f"{expires:%Y-%m-%d} ({days} days)")
        if entry.get("expires_at"):
            last = datetime.fromisoformat(entry["expires_at"])
            lines.append(f"  โทเค็นล่าสุดหมดอายุ / last token expires: {_when(last)}")
        err = entry.get("last_error")
        if err:
            lines.append(f"  ! ลงชื่อเข้าใช้ไม่สำเร็จเมื่อ {_when(datetime.fromisoformat(err['at']))}: {err['thai']}")
            lines.append(f"    sign-in failed: {err['english']}")
    return lines


def signin_lapse(cfg: Config, now: datetime) -> tuple[datetime | None, str, str]:
    """When the mailbox sign-in stops working unless someone acts, for a host's health table:
    (the earliest lapse, Thai, English). The client secret's expiry date (where it is set) and a
    device-code sign-in's refresh token lapsing from disuse; a password sign-in has no date mailbot
    can know (None). Cheap: no network, the status file only."""
    from ..thai import BANGKOK

    if not in_use(cfg):
        return None, "รหัสผ่าน (ไม่ทราบวันหมดอายุ)", "password (no known expiry)"
    status = read_status(cfg.data_dir)
    found: list[tuple[datetime, str, str]] = []
    for _protos, src in sources(cfg):
        s = src.settings
        if s.client_secret_expires is not None:
            at = datetime.combine(s.client_secret_expires, datetime.min.time(), tzinfo=BANGKOK)
            found.append((at, "รหัสลับของแอป", "client secret"))
        if s.flow == "device_code":
            entry = status.get(src.ident, {})
            used = entry.get("refresh_token_used_at")
            if not entry.get("signed_in") or not used:
                return now, f"ยังไม่ได้เข้าสู่ระบบ {src.mailbox}", f"not signed in to {src.mailbox}"
            try:
                at = datetime.fromisoformat(str(used)) + timedelta(days=s.refresh_token_days)
            except ValueError:          # a status file edited by hand: read as not signed in
                return now, f"ยังไม่ได้เข้าสู่ระบบ {src.mailbox}", f"not signed in to {src.mailbox}"
            if at.tzinfo is None:
                at = at.replace(tzinfo=BANGKOK)
            found.append((at, "การเข้าสู่ระบบ (หากไม่ได้ใช้งาน)", "sign-in (if unused)"))
    if not found:
        return None, "OAuth2 (ต่ออายุเอง)", "OAuth2 (renews itself)"
    return min(found, key=lambda f: f[0])


def expiry_warnings(cfg: Config, now: datetime) -> list[tuple[str, str, str]]:
    """(alert key, Thai, English) for lapses ahead: the client secret's expiry date and a refresh
    token about to lapse from disuse. Cheap (no network): call it once a day."""
    out: list[tuple[str, str, str]] = []
    if not in_use(cfg):
        return out
    status = read_status(cfg.data_dir)
    for _protos, src in sources(cfg):
        s = src.settings
        expiry = _secret_expiry(s, now)
        if expiry is not None and expiry[1] <= s.warn_days:
            expires, days = expiry
            when_th, when_en = _day(expires), f"{expires:%Y-%m-%d}"
            who = "ผู้ดูแล Microsoft 365" if s.provider == "microsoft" else "ผู้ดูแลระบบ"
            if days < 0:
                out.append(("oauth2-secret",
                            f"รหัสลับของแอปสำหรับลงชื่อเข้าใช้กล่องอีเมลหมดอายุแล้วเมื่อ {when_th} ขอรหัสลับใหม่จาก{who} "
                            "แล้วใส่ด้วยคำสั่ง mailbot login",
                            f"the OAuth2 client secret expired on {when_en}: ask the administrator for a new one "
                            "and put it in with: mailbot login"))
            else:
                out.append(("oauth2-secret",
                            f"รหัสลับของแอปสำหรับลงชื่อเข้าใช้กล่องอีเมลจะหมดอายุในอีก {days} วัน ({when_th}) "
                            f"ขอรหัสลับใหม่จาก{who} แล้วใส่ด้วยคำสั่ง mailbot login",
                            f"the OAuth2 client secret expires in {days} days ({when_en}): ask the administrator "
                            "for a new one and put it in with: mailbot login"))
        if s.flow == "device_code":
            entry = status.get(src.ident, {})
            used = entry.get("refresh_token_used_at")
            if not entry.get("signed_in") or not used:
                out.append(("oauth2-login", f"ยังไม่ได้เข้าสู่ระบบกล่องอีเมล {src.mailbox} สั่ง mailbot login",
                            f"not signed in to {src.mailbox}: run mailbot login"))
                continue
            lapse = datetime.fromisoformat(used) + timedelta(days=s.refresh_token_days)
            left = (lapse - now).days
            if left <= s.warn_days:
                out.append(("oauth2-refresh",
                            f"การลงชื่อเข้าใช้กล่องอีเมล {src.mailbox} จะหมดอายุเพราะไม่ได้ใช้งาน วันที่ {_when(lapse)} "
                            "เปิดให้ mailbot ทำงาน หรือเข้าสู่ระบบใหม่ด้วย mailbot login",
                            f"the OAuth2 sign-in for {src.mailbox} lapses from disuse on {lapse:%Y-%m-%d}: "
                            "let mailbot run, or sign in again with mailbot login"))
    return out


# ---------------------------------------------------------------------------- mailbot login

def login(cfg: Config, out: Callable[[str], None], read_secret: Callable[[str], str] | None = None,
          new_secret: bool = False, forget: bool = False) -> int:
    """``mailbot login``: device code (prints the address and code, waits, keeps the refresh
    token) or, for client credentials, takes the client secret and proves it works."""
    found = sources(cfg)
    if not found:
        raise MailbotError("imap.auth และ smtp.auth ไม่ได้ตั้งเป็น oauth2 และไม่ได้ใช้ mailbox: graph จึงไม่ต้องเข้าสู่ระบบ",
                           "neither imap.auth nor smtp.auth is oauth2, and mailbox is not graph: nothing to sign in to")
    for _protos, src in found:
        s = src.settings
        if forget:
            src.forget()
            out(f"ลบโทเค็นและรหัสลับที่เก็บไว้แล้ว / stored tokens and secret removed: {src.mailbox}")
            continue
        if s.flow == "device_code":
            def show(url: str, code: str, seconds: int, mailbox: str = src.mailbox) -> None:
                minutes = max(1, seconds // 60)
                out(f"เข้าสู่ระบบกล่องอีเมล {mailbox} / sign in for {mailbox}")
                out("  1. เปิดที่อยู่นี้ในเว็บเบราว์เซอร์ (เครื่องใดก็ได้) / open this address in a web browser (any computer):")
                out(f"       {url}")
                out("  2. พิมพ์รหัสนี้ / type this code:")
                out(f"       {code}")
                out(f"  3. เข้าสู่ระบบด้วยบัญชีของกล่องอีเมล {mailbox} แล้วกดยอมรับ / sign in as {mailbox} and accept")
                out(f"กำลังรอ (รหัสใช้ได้ {minutes} นาที) ... / waiting (the code is valid for {minutes} minutes) ...")

            src.device_login(show)
            out(f"✓ เข้าสู่ระบบแล้ว เก็บโทเค็นไว้ที่ {src.store.where()} / signed in; the refresh token is kept in "
                f"{src.store.where()}")
        elif s.provider == "google":
            src.token(force=True)
            out(f"✓ บัญชีบริการลงชื่อเข้าใช้ได้ / the service account signs in: {src.mailbox}")
        else:
            have = src.settings.secret() or src.store.get(src.secret_name)
            if have and not new_secret:
                src.token(force=True)
                out(f"✓ แอปลงชื่อเข้าใช้ได้ / the app signs in for {src.mailbox}")
            else:
                if read_secret is None:
                    raise OAuthError("secret", "ยังไม่มีรหัสลับของแอป", "no client secret given")
                secret = read_secret("รหัสลับของแอป (ไม่แสดงบนจอ) / client secret (not shown): ").strip()
                if not secret:
                    raise OAuthError("secret", "ไม่ได้ใส่รหัสลับ", "no client secret entered")
                src.try_secret(secret)
                if s.secret() is None:
                    where = src.store.where()
                    out(f"✓ รหัสลับใช้ได้ เก็บไว้ที่ {where} / the client secret works; kept in {where}")
                else:
                    where = f"client_secret_env ({s.client_secret_env})" if s.client_secret_env else "client_secret"
                    out(f"✓ รหัสลับใช้ได้ แต่ mailbot ใช้ค่าใน {where} ก่อน ให้แก้ค่านั้นด้วย / the client secret "
                        f"works, but {where} in mailbot.yaml comes first: update it there")
    if not forget:
        for line in check_lines(cfg):
            out("  " + line)
        out("ขั้นต่อไป: mailbot check / next: mailbot check")
    return 0
