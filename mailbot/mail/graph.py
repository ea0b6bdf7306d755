"""Graph: the mailbox read and written through Microsoft Graph's REST API instead of IMAP and
SMTP (``mailbox: graph``), for Microsoft 365 tenants that turned IMAP and SMTP AUTH off.

Owns: ``GraphMailbox`` (the contract of ``wire.MailboxSession``), ``GraphSender`` (that of
``wire.SmtpSession``), ``Wiring`` (their factories: ``wire.REAL`` uses ``DEFAULT`` when the
configuration says ``mailbox: graph``; ``wire.graph_wire()`` makes one with a test's token
source, clock and sleeper) and what they share: ``GraphClient`` (one session's HTTP: the bearer
token, ``Prefer: IdType="ImmutableId"`` on every request, Retry-After, the errors told in Thai and
English) and ``Limits`` (Microsoft's per-mailbox limits, kept by every session of this process).

Reading: each folder selected is brought up to date by a delta query
(``/mailFolders/{id}/messages/delta``, ``@odata.nextLink`` followed to ``@odata.deltaLink``), the
delta link kept in the store with the changes it follows (``store/graph.py``). Each message's
immutable id gets a UID there that only grows, and each folder a fixed UIDVALIDITY (from Graph's
folder id), so the cycle's exactly-once — the ledger keyed by UIDVALIDITY and UID — is unchanged;
the raw MIME comes from ``/messages/{id}/$value``, so parsing, the archive and duplicates are
unchanged too. Moves: ``POST /messages/{id}/move`` to the outcome folder (created when missing);
the immutable id stays, and the mirror records it in its new folder.

Sending: ``POST /users/{mailbox}/sendMail`` with the MIME base64-encoded (``Content-Type:
text/plain``), so the headers mailbot writes (Auto-Submitted, In-Reply-To, References,
Message-ID) go as written (what Exchange Online documents of them: README, Microsoft Graph).
Graph keeps the copy in Sent Items itself, so copying to Sent copies nothing. A message Graph
refuses (4xx) fails alone (``smtp.SendRefused``); a sign-in Graph refuses twice, a missing
permission or Graph out of reach stops the round (``ConnectionFailure``); 30 messages a minute
stop it too, the rest left queued (``smtp.SendLater``).

Limits: 429, 503 and 504 are retried after their Retry-After, all the waits of one session
bounded by ``graph.max_wait_seconds`` (then ``GraphBusy``: the next cycle goes on); at most
10,000 requests in 10 minutes and 4 at once for the mailbox in this process. A token answered
with 401 is replaced once; a second 401 is a sign-in failure, alerted as IMAP's is.
"""
from __future__ import annotations

import base64
import email.policy
import email.utils
import hashlib
import logging
import threading
import time
import zlib
from collections import deque
from datetime import date, datetime, timezone
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Any, Callable, Protocol
from urllib.parse import quote, urlencode

from ..clock import utcnow
from ..config import Config, ImapConfig, SmtpConfig
from ..errors import ConnectionFailure, MailbotError
from . import addresses
from .mailbox import Fetched, NoIdle
from .smtp import SendLater, SendRefused

if TYPE_CHECKING:
    import requests

    from ..store.graph import GraphMirror
    from .oauth import OAuthError, Token

log = logging.getLogger(__name__)

REQUESTS_PER_WINDOW = 10_000       # Exchange Online, per app and mailbox: 10,000 requests in 10 minutes
WINDOW_SECONDS = 600.0
CONCURRENT = 4                     # ... and 4 requests at once
SEND_WINDOW = 60.0                 # messages sent: graph.sends_per_minute (30) a minute
# sendMail takes one request of about 4 MB at most; base64 makes 3 bytes 4
MAX_SEND_BYTES = 3 * 1024 * 1024 - 64 * 1024
RETRY_STATUSES = (429, 503, 504)
MAX_RETRIES = 8                    # answers of those in a row for one request, whatever Retry-After says
SENT_ITEMS = "Sent Items"
# folder names Graph knows by a well-known name, whatever the mailbox's language calls them
WELL_KNOWN = {"inbox": "inbox", "sent items": "sentitems", "sentitems": "sentitems", "sent": "sentitems",
              "junk email": "junkemail", "junkemail": "junkemail", "junk": "junkemail",
              "deleted items": "deleteditems", "deleteditems": "deleteditems", "drafts": "drafts",
              "archive": "archive"}


class TokenProvider(Protocol):
    """Where access tokens come from (``oauth.TokenSource``; a test's fake)."""

    def token(self, force: bool = False) -> "Token": ...
    def rejected(self, token: "Token") -> None: ...


class GraphBusy(ConnectionFailure):
    """Graph kept answering 429/503/504 (or this process's own count of the mailbox's limits was
    full) longer than one session may wait: what is done is kept, the next cycle goes on.
    ``status``: the last answer (429: throttled)."""

    def __init__(self, thai: str, english: str, status: int) -> None:
        super().__init__(thai, english)
        self.status = status


class GraphTimeout(ConnectionFailure):
    """Graph did not answer in time (the request may have been carried out)."""


def uidvalidity_of(folder_id: str) -> int:
    """A folder's UIDVALIDITY: fixed by Graph's id of it (a folder made again gets a new one)."""
    return (zlib.crc32(folder_id.encode("utf-8")) & 0x7FFFFFFF) or 1


# ---------------------------------------------------------------------------- limits

class Limits:
    """Microsoft's limits for one mailbox, kept by every session of this process: a window of
    ``requests`` requests per ``window`` seconds, ``concurrent`` at once, and ``sends`` messages
    per ``send_window`` seconds. ``clock`` (seconds, monotonic) and ``sleep`` are a test's to
    replace: no test waits on the wall clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep, *,
                 requests: int = REQUESTS_PER_WINDOW, window: float = WINDOW_SECONDS, concurrent: int = CONCURRENT,
                 sends: int = 30, send_window: float = SEND_WINDOW) -> None:
        self.clock = clock
        self.sleep = sleep
        self.requests, self.window = requests, window
        self.sends, self.send_window = sends, send_window
        self._slots = threading.BoundedSemaphore(concurrent)
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self._sent: deque[float] = deque()

    @staticmethod
    def _trim(times: deque[float], window: float, now: float) -> None:
        while times and times[0] <= now - window:
            times.popleft()

    def admit(self) -> float:
        """0 when one more request fits in the window (it is counted), else the seconds until it will."""
        with self._lock:
            now = self.clock()
            self._trim(self._times, self.window, now)
            if len(self._times) < self.requests:
                self._times.append(now)
                return 0.0
            return max(0.001, self._times[0] + self.window - now)

    def slot(self, timeout: float) -> bool:
        """One of the requests that may run at once (False: none came free within ``timeout``)."""
        return self._slots.acquire(timeout=timeout)

    def free(self) -> None:
        self._slots.release()

    def may_send(self) -> bool:
        with self._lock:
            self._trim(self._sent, self.send_window, self.clock())
            return len(self._sent) < self.sends

    def sent(self) -> None:
        with self._lock:
            self._sent.append(self.clock())


# ---------------------------------------------------------------------------- HTTP

def _error_of(resp: "requests.Response") -> tuple[str, str]:
    """Graph's error code and message (``{"error": {"code", "message"}}``), or the status."""
    try:
        data = resp.json()
    except ValueError:
        return f"HTTP{resp.status_code}", (resp.text or "")[:200]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("code") or f"HTTP{resp.status_code}"), str(err.get("message") or "")[:300]
    return f"HTTP{resp.status_code}", ""


def _query(params: dict[str, Any] | None) -> str | None:
    """The query string with OData's ``$`` left as written (``$select``, ``$filter`` ...)."""
    if not params:
        return None
    return urlencode({k: str(v) for k, v in params.items()}, quote_via=quote, safe="$,'():")


def retry_after(resp: "requests.Response", attempt: int) -> float:
    """Seconds Graph asks to wait (Retry-After: seconds or an HTTP date); without one 1, 2, 4 ... 30."""
    value = (resp.headers.get("Retry-After") or "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
            except (TypeError, ValueError):
                pass
    return float(min(30, 2 ** attempt))


class GraphClient:
    """One session's requests to Graph for one mailbox: a bearer token (a fresh one once after a
    401), ``Prefer: IdType="ImmutableId"`` on every request (ids that survive a move), the limits,
    Retry-After within the session's budget of waiting, and Graph's errors in Thai and English."""

    def __init__(self, cfg: Config, tokens: TokenProvider | None, limits: Limits) -> None:
        assert cfg.graph is not None, "mailbox: graph needs the graph section"
        self.cfg = cfg
        self.g = cfg.graph
        self.mailbox = cfg.graph_mailbox
        self.account = cfg.account
        self.user_url = f"{self.g.base_url}/users/{quote(self.mailbox, safe='@')}"
        self._tokens = tokens
        self.limits = limits
        self.waited = 0.0                    # seconds this session waited on Retry-After and the limits
        self.requests_made = 0
        self._token: Token | None = None
        self._http: requests.Session | None = None
        self._folders: dict[str, str] = {}  # name -> Graph's folder id, for this session

    # ------------------------------------------------------------------ plumbing

    @property
    def tokens(self) -> TokenProvider:
        if self._tokens is None:
            from .oauth import graph_source

            self._tokens = graph_source(self.cfg)
        return self._tokens

    def http(self) -> "requests.Session":
        if self._http is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            session = requests.Session()
            # a connection that could not be made is tried once more; nothing sent is repeated here,
            # and 429/503 come back to request() (urllib3 would otherwise sleep on Retry-After itself)
            retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, status_forcelist=(),
                          respect_retry_after_header=False, raise_on_status=False)
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=CONCURRENT)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            if self.g.ca_file is not None:
                session.verify = str(self.cfg.resolve(self.g.ca_file))
            self._http = session
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def token(self) -> "Token":
        if self._token is None or not self._token.fresh():
            self._token = self.tokens.token()
        return self._token

    def url(self, path: str) -> str:
        return path if path.startswith(("https://", "http://")) else self.user_url + path

    def _wait(self, seconds: float, status: int, what: str) -> None:
        if self.waited + seconds > self.g.max_wait_seconds:
            raise GraphBusy(
                f"Microsoft Graph ขอให้รอ (HTTP {status}) นานเกินกว่ารอบนี้จะรอได้ งานที่ทำแล้วไม่สูญหาย รอบถัดไปจะทำต่อ",
                f"Microsoft Graph asks to wait (HTTP {status}, {what}) longer than a cycle may; "
                "committed work is safe and the next cycle continues", status)
        log.info("Microsoft Graph: HTTP %s for %s; waiting %.1f s", status, what, seconds)
        self.limits.sleep(seconds)
        self.waited += seconds

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                body: bytes | None = None, content_type: str | None = None, page_size: int | None = None,
                what: str = "") -> "requests.Response":
        """One request, answered: 401 once more with a fresh token, 429/503/504 again after their
        Retry-After. Any other answer is the caller's to read (``failure`` tells it)."""
        import requests

        what = what or f"{method} {path.split('?', 1)[0][-60:]}"
        url = self.url(path)
        token = self.token()
        renewed = False
        attempt = 0
        while True:
            while (wait := self.limits.admit()) > 0:
                self._wait(wait, 429, "this mailbox's 10,000 requests in 10 minutes")
            prefer = 'IdType="ImmutableId"' + (f", odata.maxpagesize={page_size}" if page_size else "")
            headers = {"Authorization": f"Bearer {token.access_token}", "Prefer": prefer,
                       "Accept": "application/json", "User-Agent": "mailbot"}
            if content_type:
                headers["Content-Type"] = content_type
            if not self.limits.slot(self.g.timeout_seconds):
                raise GraphBusy("คำขอถึง Microsoft Graph ค้างอยู่หลายรายการพร้อมกันเกินไป รอบถัดไปจะทำต่อ",
                                f"too many requests to Microsoft Graph under way at once ({what}); "
                                "the next cycle continues", 429)
            try:
                self.requests_made += 1
                resp = self.http().request(method, url, params=_query(params), json=json, data=body,
                                           headers=headers, timeout=self.g.timeout_seconds)
            except requests.exceptions.ReadTimeout:
                raise GraphTimeout(f"Microsoft Graph ไม่ตอบภายใน {self.g.timeout_seconds:.0f} วินาที",
                                   f"Microsoft Graph did not answer within {self.g.timeout_seconds:.0f} s ({what})") \
                    from None
            except requests.RequestException as exc:
                raise unreachable(self.g.base_url, exc) from None
            finally:
                self.limits.free()
            if resp.status_code == 401:
                if renewed:
                    raise self.refused(token)
                log.info("Microsoft Graph answered 401 for %s: getting a new token", what)
                self.tokens.rejected(token)
                self._token = token = self.tokens.token(force=True)
                renewed = True
                continue
            if resp.status_code in RETRY_STATUSES:
                if attempt >= MAX_RETRIES:
                    raise GraphBusy(f"Microsoft Graph ตอบ HTTP {resp.status_code} ซ้ำหลายครั้ง รอบถัดไปจะทำต่อ",
                                    f"Microsoft Graph answered HTTP {resp.status_code} {attempt} times ({what}); "
                                    "the next cycle continues", resp.status_code)
                self._wait(max(0.5, retry_after(resp, attempt)), resp.status_code, what)
                attempt += 1
                continue
            return resp

    def sign_in_lines(self) -> list[str]:
        """For ``mailbot check``: the token this session signs in with (and, from msal, where the
        secret is kept and when it expires)."""
        from ..thai import thai_datetime
        from .oauth import TokenSource, source_lines

        token = self.token()
        if isinstance(self._tokens, TokenSource):
            return source_lines(["graph"], self._tokens, token)
        minutes = int((token.expires_at - utcnow()).total_seconds() // 60)
        return [f"กล่องอีเมล / mailbox: {self.mailbox}; แอป / app: {self.g.client_id}",
                f"โทเค็นใช้ได้ถึง / token valid until: {thai_datetime(token.expires_at)} "
                f"(อีก {minutes} นาที / {minutes} min)",
                "สิทธิ์ในโทเค็น / roles in the token: " + (" ".join(token.scopes) or "-")]

    def send_note(self) -> str:
        """For ``mailbot check``: what can be said of the permission to send without sending."""
        roles = self.token().scopes
        if "Mail.Send" in roles:
            where = ("โทเค็นมีสิทธิ์ Mail.Send (ให้ไว้ใน Entra ID: ใช้ได้กับทุกกล่องอีเมล เว้นแต่ผู้ดูแลจำกัดไว้) / "
                     "the token carries Mail.Send (granted in Entra ID: every mailbox unless the administrator "
                     "limits it)")
        else:
            where = ("โทเค็นไม่มีสิทธิ์ Mail.Send จึงต้องได้จาก RBAC for Applications ใน Exchange Online "
                     "(Application Mail.Send) / the token carries no Mail.Send: it must come from RBAC for "
                     "Applications in Exchange Online (Application Mail.Send)")
        return ("สิทธิ์ส่งอีเมลของแอปทดสอบไม่ได้ถ้าไม่ส่งอีเมลจริง mailbot check จึงไม่ได้ทดลองส่งจริง จะรู้ผลเมื่อส่งตอบกลับฉบับแรก "
                "(ถ้าส่งไม่ได้ จะแจ้งเตือน) / whether the app may send cannot be tested without sending: check "
                "sent nothing; the first reply will tell (and a refusal is alerted)\n  ! " + where)

    # ------------------------------------------------------------------ errors

    def _note(self, error: MailbotError) -> None:
        from .oauth import TokenSource, note_failure

        if isinstance(self._tokens, TokenSource):
            note_failure(self._tokens, error)

    def refused(self, token: "Token") -> "OAuthError":
        """A fresh token answered with 401 too: a sign-in failure (alerted as IMAP's login failure)."""
        from .oauth import OAuthError

        client = self.g.client_id
        error = OAuthError(
            "refused",
            f"Microsoft Graph ไม่ยอมรับการลงชื่อเข้าใช้ของแอปสำหรับกล่องอีเมล {self.mailbox} (ขอโทเค็นใหม่แล้วก็ไม่รับ) "
            "ให้ผู้ดูแล Microsoft 365 ตรวจว่าอนุญาตแอปในนามองค์กรแล้ว และมอบสิทธิ์ Mail.ReadWrite กับ Mail.Send "
            "ให้แอปเข้ากล่องอีเมลนี้ได้ (ดู README หัวข้อ Microsoft Graph)",
            f"Microsoft Graph refused the app's token for {self.mailbox} twice (a fresh one too): the Microsoft 365 "
            f"administrator must consent to app {client} and give it Application Mail.ReadWrite and Mail.Send on "
            "this mailbox (README, Microsoft Graph)",
            f"token roles: {' '.join(token.scopes) or '(none)'}")
        self._note(error)
        return error

    def failure(self, resp: "requests.Response", thai: str, english: str) -> MailbotError:
        """What an answer that is not success means, for the officer: a permission missing (403)
        is a sign-in problem (alerted), a mailbox that does not exist a setting, 5xx an outage."""
        from .oauth import OAuthError

        code, message = _error_of(resp)
        status = resp.status_code
        if status == 403:
            error: MailbotError = OAuthError(
                "consent",
                f"แอปไม่มีสิทธิ์เข้ากล่องอีเมล {self.mailbox} ผ่าน Microsoft Graph ({code}) ให้ผู้ดูแล Microsoft 365 "
                "มอบสิทธิ์ Application Mail.ReadWrite และ Application Mail.Send ให้แอปสำหรับกล่องอีเมลนี้ "
                "(RBAC for Applications ใน Exchange Online) ดู README หัวข้อ Microsoft Graph",
                f"Microsoft Graph denied app {self.g.client_id} access to {self.mailbox} ({code}: {message}): the "
                "administrator must give it Application Mail.ReadWrite and Application Mail.Send for this mailbox "
                "(RBAC for Applications in Exchange Online; README, Microsoft Graph)")
            self._note(error)
            return error
        if status == 404 and code in ("ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "ErrorNonExistentMailbox",
                                      "ErrorMailboxNotFound"):
            return ConnectionFailure(
                f"ไม่พบกล่องอีเมล {self.mailbox} ใน Microsoft 365 หรือกล่องนี้ไม่ได้อยู่บน Exchange Online ตรวจ graph.mailbox",
                f"Microsoft Graph knows no Exchange Online mailbox {self.mailbox} ({code}): check graph.mailbox",
                "ใส่ที่อยู่ของกล่องอีเมลกลาง (user principal name) ใน graph.mailbox / "
                "put the central mailbox's user principal name in graph.mailbox")
        if status >= 500:
            return ConnectionFailure(f"Microsoft Graph ขัดข้อง (HTTP {status}) จะลองใหม่รอบถัดไป",
                                     f"Microsoft Graph failed (HTTP {status} {code}) while trying to {english}; "
                                     "retrying next cycle")
        return MailbotError(f"Microsoft Graph ไม่ยอม{thai} (HTTP {status} {code})",
                            f"Microsoft Graph refused to {english}: HTTP {status} {code}: {message}")

    # ------------------------------------------------------------------ folders

    def folder_id(self, name: str, create: bool = False) -> str | None:
        """Graph's id of a folder: a well-known name (Inbox, Sent Items, Junk Email ...) or a path
        of display names from the top (``A/B``), made when ``create``; None when it is not there."""
        if name in self._folders:
            return self._folders[name]
        known = WELL_KNOWN.get(name.strip().lower())
        found: str | None = None
        if known is not None:
            resp = self.request("GET", f"/mailFolders/{known}", params={"$select": "id,displayName"})
            if resp.status_code == 200:
                found = str(resp.json()["id"])
            elif resp.status_code != 404:
                raise self.failure(resp, f"อ่านโฟลเดอร์ {name}", f"read folder {name}")
        else:
            parent: str | None = None
            for part in [p for p in name.split("/") if p]:
                child = self._child(parent, part)
                if child is None:
                    if not create:
                        return None
                    child = self._create(parent, part)
                parent = child
            found = parent
        if found is not None:
            self._folders[name] = found
        return found

    def _children_path(self, parent: str | None) -> str:
        return "/mailFolders" if parent is None else f"/mailFolders/{quote(parent, safe='')}/childFolders"

    def _child(self, parent: str | None, display_name: str) -> str | None:
        literal = display_name.replace("'", "''")
        resp = self.request("GET", self._children_path(parent),
                            params={"$filter": f"displayName eq '{literal}'", "$select": "id,displayName"})
        if resp.status_code != 200:
            raise self.failure(resp, "อ่านรายชื่อโฟลเดอร์", "list folders")
        for item in resp.json().get("value", []):
            if str(item.get("displayName", "")).lower() == display_name.lower():
                return str(item["id"])
        return None

    def _create(self, parent: str | None, display_name: str) -> str:
        resp = self.request("POST", self._children_path(parent), json={"displayName": display_name},
                            what=f"create folder {display_name}")
        if resp.status_code in (200, 201):
            return str(resp.json()["id"])
        if resp.status_code == 409:                 # made meanwhile (another session)
            found = self._child(parent, display_name)
            if found is not None:
                return found
        error = self.failure(resp, f"สร้างโฟลเดอร์ '{display_name}'", f"create folder '{display_name}'")
        if type(error) is MailbotError:
            raise MailbotError(
                f"สร้างโฟลเดอร์ '{display_name}' ในกล่องอีเมลไม่ได้ ตรวจสอบชื่อในส่วน folders ของ mailbot.yaml",
                f"cannot create folder '{display_name}' in the mailbox ({error.english}); check folders: in mailbot.yaml")
        raise error

    def pages(self, path: str, params: dict[str, Any] | None, what: tuple[str, str], limit: int | None = None,
              page_size: int | None = None):
        """The items of a collection, page after page (``@odata.nextLink``), at most ``limit``."""
        count = 0
        url: str | None = path
        while url:
            resp = self.request("GET", url, params=params, page_size=page_size)
            if resp.status_code != 200:
                raise self.failure(resp, *what)
            data = resp.json()
            for item in data.get("value", []):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            url, params = data.get("@odata.nextLink"), None


def unreachable(base_url: str, exc: BaseException) -> ConnectionFailure:
    from urllib.parse import urlparse

    host = urlparse(base_url).hostname or base_url
    # no word "login" here: an outage is alerted after alerts.unreachable_minutes, not at once
    return ConnectionFailure(f"ติดต่อ Microsoft Graph ({host}) ไม่ได้ จะลองใหม่รอบถัดไป",
                             f"cannot reach Microsoft Graph at {host}: {type(exc).__name__}: {str(exc)[:160]}",
                             "ตรวจการเชื่อมต่ออินเทอร์เน็ตและ graph.base_url / check the network and graph.base_url")


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _item_path(item_id: str) -> str:
    return f"/messages/{quote(item_id, safe='')}"


# ---------------------------------------------------------------------------- the mailbox

class GraphMailbox:
    """The watched mailbox over Microsoft Graph; the contract of ``mailbox.Mailbox``."""

    beside_sending = False    # its mirror's connection (store/graph.py) is the cycle thread's

    def __init__(self, cfg: ImapConfig, client: GraphClient, mirror: "Callable[[], GraphMirror] | None" = None) -> None:
        self.cfg = cfg
        self.client = client
        self.account = client.account
        self._open_mirror = mirror
        self._mirror: GraphMirror | None = None
        self.mechanism = ""
        self.selected: str | None = None
        self.selected_id: str | None = None
        self.uidvalidity: int | None = None

    def __enter__(self) -> "GraphMailbox":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Sign in (a token from the sign-in service); Graph itself is asked at the first request."""
        self.client.token()
        self.mechanism = "Microsoft Graph"

    def close(self) -> None:
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None
        self.client.close()

    @property
    def mirror(self) -> "GraphMirror":
        if self._mirror is None:
            if self._open_mirror is not None:
                self._mirror = self._open_mirror()
            else:
                from ..store.graph import open_mirror

                root = self.client.cfg
                self._mirror = open_mirror(root.data_dir / "state.sqlite3")
        return self._mirror

    # ------------------------------------------------------------------ reading

    def select(self, folder: str | None = None) -> int:
        """The folder brought up to date (its delta query from the kept delta link); its UIDVALIDITY."""
        name = folder or self.cfg.folder
        folder_id = self.client.folder_id(name)
        if folder_id is None:
            raise ConnectionFailure(f"ไม่พบโฟลเดอร์ '{name}' ในกล่องอีเมล",
                                    f"folder '{name}' not found in the mailbox (graph.folder)")
        validity = uidvalidity_of(folder_id)
        row = self.mirror.graph_remember_folder(self.account, folder_id, name, validity)
        self._sync(folder_id, row["delta_link"])
        self.selected, self.selected_id, self.uidvalidity = name, folder_id, validity
        return validity

    def _sync(self, folder_id: str, link: str | None) -> None:
        """One delta round: the pages followed to the delta link, then all of it kept at once."""
        full = link is None
        url = link or f"/mailFolders/{quote(folder_id, safe='')}/messages/delta"
        params: dict[str, Any] | None = None if link else {"$select": "receivedDateTime"}
        present: list[tuple[str, str | None]] = []
        removed: list[str] = []
        delta: str | None = None
        while True:
            resp = self.client.request("GET", url, params=params, page_size=self.client.g.page_size,
                                       what="delta query")
            if resp.status_code == 410 and not full:      # the delta link expired: the folder listed again
                log.info("Microsoft Graph: the delta link of %s expired; listing the folder again", folder_id)
                self.mirror.graph_forget_link(self.account, folder_id)
                self._sync(folder_id, None)
                return
            if resp.status_code != 200:
                raise self.client.failure(resp, "อ่านรายการอีเมลในโฟลเดอร์", "read the folder's messages (delta)")
            data = resp.json()
            for item in data.get("value", []):
                if "@removed" in item:
                    removed.append(str(item["id"]))
                else:
                    present.append((str(item["id"]), _iso(_when(item.get("receivedDateTime")))))
            if data.get("@odata.nextLink"):
                url, params = data["@odata.nextLink"], None
                continue
            delta = data.get("@odata.deltaLink")
            break
        self.mirror.graph_apply_delta(self.account, folder_id, present, removed, delta, full, utcnow())

    def _folder_id(self) -> str:
        if self.selected_id is None:
            self.select(self.cfg.folder)
        assert self.selected_id is not None
        return self.selected_id

    def uids(self) -> list[int]:
        return self.mirror.graph_uids(self.account, self._folder_id())

    def _rows(self, uids: list[int]) -> dict[int, Any]:
        folder_id = self._folder_id()
        return {u: r for u, r in self.mirror.graph_items(self.account, uids).items()
                if r["folder_id"] == folder_id and not r["gone"]}

    def arrivals(self, uids: list[int]) -> dict[int, tuple[int, datetime | None]]:
        """When each message was received; its size once it was fetched (Graph's delta gives none: 0)."""
        return {u: (int(r["size"] or 0), _when(r["received_at"])) for u, r in self._rows(uids).items()}

    def fetch(self, uids: list[int]) -> dict[int, Fetched]:
        """The raw MIME of each message (``$value``), at most imap.batch_megabytes of it: what is
        left waits (the cycle takes it up again); a message gone meanwhile is skipped."""
        if not uids:
            return {}
        rows = self._rows(uids)
        budget = self.cfg.batch_megabytes * 1024 * 1024
        out: dict[int, Fetched] = {}
        seen: list[tuple[int, str, int]] = []
        gone: list[int] = []
        used = 0
        for uid in uids:
            row = rows.get(uid)
            if row is None:
                continue
            if out and used >= budget:
                break
            resp = self.client.request("GET", _item_path(row["item_id"]) + "/$value", what="message MIME")
            if resp.status_code == 404:
                gone.append(uid)
                continue
            if resp.status_code != 200:
                raise self.client.failure(resp, "อ่านอีเมล", "read a message")
            raw = resp.content
            used += len(raw)
            out[uid] = Fetched(uid, raw, _when(row["received_at"]))
            seen.append((uid, hashlib.sha256(raw).hexdigest(), len(raw)))
        if gone:
            self.mirror.graph_gone(gone)
        if seen:
            self.mirror.graph_fetched(seen)
        return out

    def watch(self) -> None:
        """Graph has no IDLE (its change notifications need an address Microsoft can call): poll."""
        raise NoIdle()

    def wait_for_new_mail(self, stop: threading.Event, rearm_seconds: float = 540) -> bool:
        raise NoIdle()

    # ------------------------------------------------------------------ folders

    def folders(self) -> set[str]:
        return {str(item.get("displayName", "")) for item in
                self.client.pages("/mailFolders", {"$select": "id,displayName", "$top": 100},
                                  ("อ่านรายชื่อโฟลเดอร์", "list folders"))}

    def ensure_folder(self, name: str) -> None:
        if self.client.folder_id(name, create=True) is None:
            raise MailbotError(f"สร้างโฟลเดอร์ '{name}' ในกล่องอีเมลไม่ได้", f"cannot create folder '{name}'")

    def move(self, uids: list[int], folder: str) -> None:
        """Each message into ``folder`` (made when missing); the mirror records it there under its
        immutable id. One moved already (a repeated move) or gone meanwhile is skipped."""
        if not uids:
            return
        target = self.client.folder_id(folder, create=True)
        assert target is not None
        rows = self.mirror.graph_items(self.account, uids)
        for uid in sorted(uids):
            row = rows.get(uid)
            if row is None or row["gone"] or row["folder_id"] == target:
                continue
            resp = self.client.request("POST", _item_path(row["item_id"]) + "/move", json={"destinationId": target},
                                       what="move")
            if resp.status_code == 404:
                self.mirror.graph_gone([uid])
                continue
            if resp.status_code not in (200, 201):
                raise self.client.failure(resp, f"ย้ายอีเมลไปโฟลเดอร์ {folder}", f"move a message to {folder}")
            item_id = str(resp.json().get("id") or row["item_id"])
            if item_id != row["item_id"]:
                log.warning("Microsoft Graph gave a moved message a new id (ImmutableId not honoured?)")
            self.mirror.graph_moved(self.account, uid, target, item_id)

    def flag(self, uids: list[int]) -> None:
        """Flagged for follow-up (Outlook shows the flag), left where they are."""
        rows = self.mirror.graph_items(self.account, uids)
        for uid in uids:
            row = rows.get(uid)
            if row is None or row["gone"]:
                continue
            resp = self.client.request("PATCH", _item_path(row["item_id"]), json={"flag": {"flagStatus": "flagged"}},
                                       what="flag")
            if resp.status_code not in (200, 204, 404):
                raise self.client.failure(resp, "ปักธงอีเมล", "flag a message")

    def sent_folder(self) -> str | None:
        wanted = self.cfg.sent_folder
        if wanted == "":
            return None
        if wanted != "auto":
            return wanted if self.client.folder_id(wanted) is not None else None
        return SENT_ITEMS

    def is_junk(self, folder: str) -> bool:
        from ..casework.trust import is_junk_folder

        if WELL_KNOWN.get(folder.strip().lower()) == "junkemail":
            return True
        here = self.client.folder_id(folder)
        return (here is not None and here == self.client.folder_id("junkemail")) or is_junk_folder(folder)

    def recent_headers(self, count: int = 20) -> list[bytes]:
        """The headers of the newest messages in the watched folder (``internetMessageHeaders``)."""
        out = []
        for item in self.client.pages(f"/mailFolders/{quote(self._folder_id(), safe='')}/messages",
                                      {"$select": "internetMessageHeaders", "$top": count,
                                       "$orderby": "receivedDateTime desc"},
                                      ("อ่านหัวอีเมล", "read message headers"), limit=count):
            lines = [f"{h.get('name')}: {h.get('value')}\r\n" for h in item.get("internetMessageHeaders") or []]
            out.append(("".join(lines) + "\r\n").encode("utf-8", "replace"))
        return out[::-1]

    # ------------------------------------------------------------------ the Sent folder

    def _sent_items(self, params: dict[str, Any], limit: int | None = None):
        folder = self.sent_folder()
        if not folder:
            return
        folder_id = self.client.folder_id(folder)
        if folder_id is None:
            return
        select = {"$select": "subject,toRecipients,sentDateTime,internetMessageId", "$top": 1000, **params}
        yield from self.client.pages(f"/mailFolders/{quote(folder_id, safe='')}/messages", select,
                                     ("อ่านโฟลเดอร์ Sent Items", "read Sent Items"), limit=limit)

    def sent_headers(self, limit: int = 20000) -> list[bytes]:
        """Subject, To, Date and Message-ID of the newest copies in Sent Items, as header blocks."""
        return [_header_block(i) for i in self._sent_items({"$orderby": "sentDateTime desc"}, limit)]

    def sent_headers_since(self, day: date) -> list[bytes]:
        from ..thai import BANGKOK

        start = datetime.combine(day, datetime.min.time(), BANGKOK).astimezone(timezone.utc)
        return [_header_block(i) for i in self._sent_items(
            {"$filter": f"sentDateTime ge {start:%Y-%m-%dT%H:%M:%SZ}"})]

    def sent_subjects(self, message_id_part: str) -> list[str]:
        part = message_id_part.lower()
        return [str(i.get("subject") or "") for i in self._sent_items({}, 20000)
                if part in str(i.get("internetMessageId") or "").lower()]

    def append_sent(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        """Nothing: Graph's sendMail keeps the copy in Sent Items itself (a second would be a duplicate)."""

    def append_sent_many(self, folder: str, messages: list[bytes]) -> None:
        """Nothing, as ``append_sent``."""

    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = (), when: datetime | None = None) -> None:
        """Put a message into a folder (the demo's samples, a quarantined message put back): Graph
        makes it from its MIME (as a draft, received now), then it is moved there."""
        target = self.client.folder_id(folder, create=True)
        resp = self.client.request("POST", "/messages", body=base64.b64encode(raw), content_type="text/plain",
                                   what="create a message")
        if resp.status_code not in (200, 201):
            raise self.client.failure(resp, "ใส่อีเมลในกล่อง", "put a message into the mailbox")
        item_id = str(resp.json()["id"])
        moved = self.client.request("POST", _item_path(item_id) + "/move", json={"destinationId": target},
                                    what="move")
        if moved.status_code not in (200, 201):
            raise self.client.failure(moved, f"ย้ายอีเมลไปโฟลเดอร์ {folder}", f"move a message to {folder}")

    def find_raw(self, folder: str, sha256: str, size: int) -> int | None:
        """The UID in ``folder`` of the message whose MIME had this SHA-256 when it was fetched
        (found by its immutable id, wherever it was moved; else the folder's messages are fetched
        and hashed); None when it is not there."""
        folder_id = self.client.folder_id(folder)
        if folder_id is None:
            return None
        for row in self.mirror.graph_by_hash(self.account, sha256):
            resp = self.client.request("GET", _item_path(row["item_id"]), params={"$select": "parentFolderId"},
                                       what="where a message is")
            if resp.status_code == 200 and resp.json().get("parentFolderId") == folder_id:
                return self.mirror.graph_place(self.account, folder_id, row["item_id"], received_at=row["received_at"],
                                               sha256=sha256, size=row["size"])
        self.select(folder)
        for uid in self.uids():
            known = self.mirror.graph_items(self.account, [uid]).get(uid)
            if known is not None and known["sha256"] and known["sha256"] != sha256:
                continue
            got = self.fetch([uid]).get(uid)
            if got is not None and len(got.raw) == size and hashlib.sha256(got.raw).hexdigest() == sha256:
                return uid
        return None


def _header_block(item: dict[str, Any]) -> bytes:
    """A Sent Items message's Subject, To, Date and Message-ID as the header block IMAP gives."""
    msg = EmailMessage(policy=email.policy.SMTP)
    try:
        msg["Subject"] = str(item.get("subject") or "")
        to = [email.utils.formataddr((str(r.get("emailAddress", {}).get("name") or ""),
                                      str(r.get("emailAddress", {}).get("address") or "")))
              for r in item.get("toRecipients") or []]
        if to:
            msg["To"] = ", ".join(to)
        when = _when(item.get("sentDateTime"))
        if when is not None:
            msg["Date"] = email.utils.format_datetime(when)
        if item.get("internetMessageId"):
            msg["Message-ID"] = str(item["internetMessageId"])
    except (ValueError, TypeError, IndexError):
        pass
    return bytes(msg).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


# ---------------------------------------------------------------------------- sending

def _recipients(raw: bytes) -> set[str]:
    """The addresses in the To, Cc and Bcc headers (Graph sends MIME to them), lower case."""
    try:
        head = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        values = [str(v) for name in ("To", "Cc", "Bcc") for v in head.get_all(name) or []]
    except Exception:  # noqa: BLE001 - an unreadable header: Graph will say
        return set()
    return {a.lower() for _, a in email.utils.getaddresses(values) if a}


class GraphSender:
    """Sending through Microsoft Graph (``sendMail`` with MIME); the contract of ``smtp.Smtp``."""

    max_size = MAX_SEND_BYTES           # what forwards are composed to fit (outbox.size_limit)

    def __init__(self, cfg: SmtpConfig, envelope_from: str, client: GraphClient) -> None:
        self.cfg = cfg
        self.envelope_from = envelope_from
        self.client = client
        self.mechanism = ""

    def __enter__(self) -> "GraphSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Sign in (a token); whether Graph lets the app send is known only when it sends."""
        self.client.token()
        self.mechanism = "Microsoft Graph"

    def close(self) -> None:
        self.client.close()

    def open(self) -> None:
        """As ``Smtp.open``: a token in hand before a message is marked as being sent."""
        self.client.token()

    def send(self, recipient: str, raw: bytes) -> None:
        """Send one message as MIME. SendRefused when Graph refuses this message, SendLater when
        this mailbox sent its 30 a minute (or Graph keeps throttling), ConnectionFailure when Graph
        cannot be reached or refuses the app."""
        bad = addresses.problem(recipient)
        if bad is not None:
            raise SendRefused(f"{bad[0]} / {bad[1]}", permanent=True)
        named = _recipients(raw)
        if named and recipient.lower() not in named and addresses.header_form(recipient).lower() not in named:
            raise SendRefused("ผู้รับในหัวอีเมลไม่ตรงกับผู้รับที่ต้องส่ง / the message's To does not name its recipient",
                              permanent=True)
        if len(raw) > MAX_SEND_BYTES:
            raise SendRefused(f"อีเมลใหญ่เกินกว่าที่ Microsoft Graph รับได้ในคำขอเดียว ({len(raw) // 1024} KB) / "
                              f"too large for one Microsoft Graph sendMail request ({len(raw) // 1024} KB)",
                              permanent=True)
        limits = self.client.limits
        if not limits.may_send():
            raise SendLater(f"ส่งครบ {limits.sends} ฉบับต่อนาทีตามข้อจำกัดของ Microsoft 365 แล้ว ที่เหลือรอส่งรอบถัดไป",
                            f"Microsoft 365 sends at most {limits.sends} messages a minute from one mailbox: "
                            "the rest stays queued for the next round")
        if not self.mechanism:
            self.connect()
        try:
            resp = self.client.request("POST", "/sendMail", body=base64.b64encode(raw), content_type="text/plain",
                                       what="sendMail")
        except GraphBusy as exc:
            if exc.status == 429:
                raise SendLater("Microsoft Graph ขอให้ชะลอการส่ง ที่เหลือรอส่งรอบถัดไป",
                                "Microsoft Graph throttles sending: the rest stays queued for the next round") from None
            raise
        except GraphTimeout as exc:     # it may have gone: as SMTP's lost connection, tried again later
            raise SendRefused(f"{exc.thai} / {exc.english}", permanent=False) from None
        if resp.status_code in (200, 202):
            limits.sent()
            return
        code, message = _error_of(resp)
        if resp.status_code == 403 and code not in ("ErrorSendAsDenied",):
            raise self.client.failure(resp, "ส่งอีเมล", "send mail")
        if resp.status_code >= 500:
            raise SendRefused(f"Microsoft Graph HTTP {resp.status_code} {code}: {message}", permanent=False)
        raise SendRefused(f"Microsoft Graph HTTP {resp.status_code} {code}: {message}", permanent=True)


# ---------------------------------------------------------------------------- the wiring

class Wiring:
    """The factories of the Graph sessions, with what they share: the token source (default: the
    configured app's, through msal), and ``Limits`` per mailbox made with ``clock`` and ``sleep``
    (default: the real ones; a test passes its own, so no test waits on the wall clock)."""

    def __init__(self, tokens: TokenProvider | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, limits: Limits | None = None) -> None:
        self.tokens = tokens
        self.clock = clock
        self.sleep = sleep
        self.fixed = limits
        self._limits: dict[tuple[str, str], Limits] = {}
        self._lock = threading.Lock()

    def limits_for(self, cfg: Config) -> Limits:
        if self.fixed is not None:
            return self.fixed
        assert cfg.graph is not None
        key = (cfg.graph.base_url, cfg.graph_mailbox.lower())
        with self._lock:
            found = self._limits.get(key)
            if found is None:
                found = self._limits[key] = Limits(self.clock, self.sleep, sends=cfg.graph.sends_per_minute)
            return found

    def client(self, cfg: Config) -> GraphClient:
        return GraphClient(cfg, self.tokens, self.limits_for(cfg))

    def mailbox(self, cfg: ImapConfig) -> GraphMailbox:
        root = _root(cfg)
        return GraphMailbox(cfg, self.client(root))

    def smtp(self, cfg: SmtpConfig, envelope_from: str) -> GraphSender:
        return GraphSender(cfg, envelope_from, self.client(_root(cfg)))


def _root(section: ImapConfig | SmtpConfig) -> Config:
    root = section.root
    if root is None or root.graph is None:
        raise MailbotError("ไม่มีส่วน graph ใน mailbot.yaml", "no graph section in mailbot.yaml (mailbox: graph)")
    return root


DEFAULT = Wiring()
"""The sessions ``wire.REAL`` opens for ``mailbox: graph``: the configured app, the real clock."""
