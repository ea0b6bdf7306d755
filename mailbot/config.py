"""Configuration: ``mailbot.yaml`` and ``rules.yaml`` as validated pydantic models.

Owns: the keys and defaults of both files, resolving relative paths against the config
file's folder, reading passwords (inline or from an environment variable), the ``oauth2``
sign-in section (which provider, which flow, which defaults), and turning every validation
problem into a Thai + English message that names the key.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError, MailbotError, RulesError
from .thai import normalise, thai_digits_to_arabic

log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgencyConfig(_Strict):
    name: str = Field(min_length=1)
    address: str = Field(min_length=3)
    domains: list[str] = Field(default_factory=list)  # our own domains; default: address's
    privacy_contact: str = ""    # whom data subjects contact (PDPA notice on receipts); default: the address

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError("not an email address")
        return v

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1].lower()

    @property
    def own_domains(self) -> list[str]:
        return [d.lower() for d in self.domains] or [self.domain]


Security = Literal["ssl", "starttls", "none"]


class _WithPassword(_Strict):
    """A password given inline or (better) as the name of an environment variable."""

    password: str | None = Field(default=None, repr=False)
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_password(self) -> "_WithPassword":
        if self.password is not None and self.password_env:
            raise ValueError("give either password or password_env, not both")
        return self

    def secret(self) -> str | None:
        """The password, read from the environment at the moment it is needed."""
        if self.password_env:
            return os.environ.get(self.password_env)
        return self.password

    def require_secret(self, section: str) -> str:
        """The password, or a ConfigError that says exactly what to set (and how, on Windows)."""
        value = self.secret()
        if value:
            return value
        if self.password_env:
            raise ConfigError(
                f"ยังไม่ได้ตั้งรหัสผ่านของ {section}: ไม่มีตัวแปรสภาพแวดล้อม {self.password_env}",
                f"the {section} password is not set: the environment variable {self.password_env} is missing",
                f"บน Windows สั่ง: setx {self.password_env} \"รหัสผ่าน\" แล้วปิดและเปิดหน้าต่างคำสั่งใหม่ / "
                f"on Windows run: setx {self.password_env} \"password\" then open a new command window "
                f"(Linux/macOS: export {self.password_env}=...)",
            )
        raise ConfigError(
            f"ยังไม่ได้ตั้งรหัสผ่านของ {section} ({section}.password_env หรือ {section}.password ใน mailbot.yaml)",
            f"no {section} password configured ({section}.password_env or {section}.password in mailbot.yaml)",
        )


Provider = Literal["microsoft", "google", "generic"]
Flow = Literal["client_credentials", "device_code"]

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_SCOPES: dict[tuple[str, str], str] = {
    ("microsoft", "client_credentials"): "https://outlook.office365.com/.default",
    ("microsoft", "device_code"): "https://outlook.office365.com/IMAP.AccessAsUser.All "
                                  "https://outlook.office365.com/SMTP.Send offline_access",
    ("google", "client_credentials"): "https://mail.google.com/",
}


class OAuth2Config(_Strict):
    """OAuth2 sign-in for IMAP and SMTP (``imap.auth: oauth2`` / ``smtp.auth: oauth2``).

    microsoft: Microsoft 365 / Exchange Online / workD through msal (``tenant``, ``client_id``);
    google: a Google Workspace service account with domain-wide delegation
    (``service_account_file``); generic: any OAuth2 token endpoint (``token_url``)."""

    provider: Provider = "microsoft"
    flow: Flow = "client_credentials"
    tenant: str = ""                              # microsoft: tenant id or domain
    client_id: str = ""
    client_secret: str | None = Field(default=None, repr=False)
    client_secret_env: str | None = None
    client_secret_expires: date | None = None     # alert before this date
    service_account_file: Path | None = None      # google: the service account's JSON key
    token_url: str = ""                           # generic (google: overrides the key file's token_uri)
    device_code_url: str = ""                     # generic, device_code flow
    scope: str = ""                               # default: per provider and flow
    authority: str = MICROSOFT_AUTHORITY          # microsoft: sign-in host (national clouds, tests)
    ca_file: Path | None = None                   # extra CA bundle for the sign-in service
    store: Literal["auto", "keyring", "file"] = "auto"   # where tokens and secrets are kept
    warn_days: int = Field(default=30, ge=0)      # alert this many days before a lapse
    refresh_token_days: int = Field(default=90, ge=1)    # refresh token lapses after this long unused

    @model_validator(mode="after")
    def _complete(self) -> "OAuth2Config":
        if self.client_secret is not None and self.client_secret_env:
            raise ValueError("give either client_secret or client_secret_env, not both")
        if self.provider == "microsoft":
            if not self.tenant or not self.client_id:
                raise ValueError("provider microsoft needs tenant and client_id")
            if not self.authority.startswith("https://"):
                raise ValueError("authority must be an https:// address")
        elif self.provider == "google":
            if self.flow != "client_credentials":
                raise ValueError("Google allows no device-code sign-in for mail: use flow client_credentials "
                                 "with a service account (or an app password with auth: password)")
            if self.service_account_file is None:
                raise ValueError("provider google needs service_account_file")
        else:
            if not self.token_url or not self.client_id:
                raise ValueError("provider generic needs token_url and client_id")
            if self.flow == "device_code" and not self.device_code_url:
                raise ValueError("flow device_code needs device_code_url")
        for url in (self.token_url, self.device_code_url):
            if url and not _safe_url(url):
                raise ValueError(f"{url} must be https:// (plain http only to this computer)")
        return self

    def secret(self) -> str | None:
        """The client secret from the environment or the file (the credential store comes after)."""
        if self.client_secret_env:
            return os.environ.get(self.client_secret_env) or None
        return self.client_secret

    def scopes(self) -> list[str]:
        text = self.scope or DEFAULT_SCOPES.get((self.provider, self.flow), "")
        return text.split()


def _safe_url(url: str) -> bool:
    from urllib.parse import urlparse

    u = urlparse(url)
    return u.scheme == "https" or (u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost", "::1"))


GRAPH_URL = "https://graph.microsoft.com/v1.0"


class GraphConfig(_Strict):
    """Microsoft Graph instead of IMAP and SMTP (``mailbox: graph``): for Microsoft 365 tenants
    that turned IMAP and SMTP AUTH off. The app signs in with client credentials through msal
    (application permissions Mail.ReadWrite and Mail.Send, limited by the administrator to this
    one mailbox); its client secret lives in the credential store (``mailbot login``) or in
    ``client_secret_env``."""

    tenant_id: str = Field(min_length=1)           # the tenant's id or domain
    client_id: str = Field(min_length=1)           # the app registration's Application (client) ID
    mailbox: str = ""                              # the saraban@ user; default: agency.address
    folder: str = "Inbox"                          # the watched folder (Inbox, or a folder's name or path A/B)
    base_url: str = GRAPH_URL                      # Graph's address (national clouds, tests)
    authority: str = MICROSOFT_AUTHORITY           # the sign-in host (national clouds, tests)
    client_secret: str | None = Field(default=None, repr=False)
    client_secret_env: str | None = None
    client_secret_expires: date | None = None      # alert before this date
    ca_file: Path | None = None                    # extra CA bundle (a proxy that inspects TLS, tests)
    store: Literal["auto", "keyring", "file"] = "auto"   # where tokens and the secret are kept
    warn_days: int = Field(default=30, ge=0)
    page_size: int = Field(default=100, ge=1, le=1000)   # messages per page of the delta query
    timeout_seconds: float = Field(default=60.0, gt=0)
    # a cycle waits at most this long in all for Graph's Retry-After (429/503) before it stops and
    # leaves the rest to the next cycle
    max_wait_seconds: float = Field(default=120.0, ge=0, le=900)
    sends_per_minute: int = Field(default=30, ge=1, le=30)  # Exchange Online: 30 messages a minute

    @model_validator(mode="after")
    def _urls(self) -> "GraphConfig":
        if self.client_secret is not None and self.client_secret_env:
            raise ValueError("give either client_secret or client_secret_env, not both")
        if not _safe_url(self.base_url):
            raise ValueError(f"{self.base_url} must be https:// (plain http only to this computer)")
        if not _safe_url(self.authority):
            raise ValueError("authority must be an https:// address")
        if self.mailbox and not re.fullmatch(r"[^@\s]+@[^@\s]+", self.mailbox):
            raise ValueError("mailbox: the mailbox's address (user principal name), e.g. saraban@example.go.th")
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def host(self) -> str:
        from urllib.parse import urlparse

        return urlparse(self.base_url).hostname or "graph.microsoft.com"

    @property
    def scope(self) -> str:
        """Client credentials ask for the app's permissions on Graph as a whole."""
        from urllib.parse import urlparse

        u = urlparse(self.base_url)
        return f"{u.scheme}://{u.netloc}/.default"

    def oauth2(self) -> "OAuth2Config":
        """The sign-in as the oauth2 machinery knows it (msal, client credentials)."""
        return OAuth2Config(provider="microsoft", flow="client_credentials", tenant=self.tenant_id,
                            client_id=self.client_id, client_secret=self.client_secret,
                            client_secret_env=self.client_secret_env,
                            client_secret_expires=self.client_secret_expires, scope=self.scope,
                            authority=self.authority, ca_file=self.ca_file, store=self.store,
                            warn_days=self.warn_days)


class _Server(_WithPassword):
    """One mail server. Its password: ``password_store: true`` (the console's setup puts it in the
    operating system's credential store, mail/credentials.server_password), or ``password_env``,
    or ``password`` itself."""

    password_store: bool = False        # the password is in the credential store (set up in the console)
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "ssl"
    username: str = ""
    timeout_seconds: float = Field(default=60.0, gt=0)
    verify_tls: bool = True
    auth: Literal["password", "oauth2"] = "password"
    oauth2: OAuth2Config | None = None     # its own sign-in; default: the top-level oauth2 section

    _root: Any = PrivateAttr(default=None)   # the Config this section belongs to

    @model_validator(mode="after")
    def _one_source(self) -> "_Server":
        if self.password_store and (self.password is not None or self.password_env):
            raise ValueError("give one of password_store, password_env or password")
        return self

    def oauth2_settings(self) -> OAuth2Config | None:
        """The oauth2 section this server signs in with (its own, else the shared one)."""
        if self.oauth2 is not None:
            return self.oauth2
        return getattr(self._root, "oauth2", None)

    @property
    def root(self) -> "Config | None":
        return self._root

    def login_name(self) -> str:
        """The mailbox named in SASL XOAUTH2 / OAUTHBEARER: username, else the agency address."""
        if self.username:
            return self.username
        return self._root.agency.address if self._root is not None else ""


class ImapConfig(_Server):
    folder: str = "INBOX"
    # the day mailbot started: older mail in the watched folder is left alone (mailbot init writes today)
    since: date | None = None

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, v: Any) -> Any:
        return None if v in (None, "") else person_date(v)

    sent_folder: str = "auto"      # auto: the server's \\Sent folder; "" to never copy
    batch_size: int = Field(default=50, ge=1, le=1000)
    batch_megabytes: float = Field(default=20, gt=0)   # a batch holds at most this much raw mail

    def effective_port(self) -> int:
        return self.port or {"ssl": 993, "starttls": 143, "none": 143}[self.security]


class SmtpConfig(_Server):
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587, "none": 25}[self.security]


class PathsConfig(_Strict):
    data: Path = Path("data")
    registers: Path = Path("registers")


class RegistersConfig(_Strict):
    """How numbers are written and when they start again (the Sarabun regulation: calendar years)."""

    receipt_pattern: str = "{seq}/{year}"          # or "รับ {seq}/{year}"
    dispatch_pattern: str = "{seq}/{year}"         # the agency's letter code, e.g. "มท 0808.2/{seq}"
    licence_pattern: str = "ใบอนุญาต {seq}/{year}"  # licence numbers, never mistaken for receipt numbers
    year_reset: Literal["calendar", "fiscal"] = "calendar"   # fiscal years start on 1 October

    @field_validator("receipt_pattern", "dispatch_pattern", "licence_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        from .registers.numbering import check_pattern

        return check_pattern(v)


class LimitsConfig(_Strict):
    replies_per_sender_per_day: int = Field(default=5, ge=0)
    replies_per_thread_per_day: int = Field(default=5, ge=0)   # one conversation (a loop with a robot stops here)
    replies_per_hour: int = Field(default=300, ge=0)
    max_attempts: int = Field(default=3, ge=1)         # runs that saw a message fail: then quarantined
    # runs cut off while working on one message alone (the process killed or crashed every time,
    # e.g. out of memory): then quarantined; kills from outside during a batch do not count
    max_interruptions: int = Field(default=5, ge=1)
    max_message_mb: float = Field(default=25, gt=0)   # larger mail is kept but not processed
    # the receipt stamp on a received PDF: one file's budget; over it, the original is forwarded with a note
    stamp_seconds: float = Field(default=20, gt=0, le=600)
    stamp_max_pages: int = Field(default=2000, ge=1)


class FoldersConfig(_Strict):
    """Server folders a handled message is moved to (created when missing)."""

    registered: str = "ลงทะเบียนแล้ว"
    wrong_agency: str = "ส่งต่อหน่วยงานอื่น"
    automatic: str = "อีเมลอัตโนมัติ"
    followup: str = "ติดตามเรื่อง"
    quarantined: str = "กักกัน"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class TextDateLoader(yaml.SafeLoader):
    """YAML's safe loader, except that dates stay text. YAML 1.1 turns an unquoted 2571-02-29 into
    a Gregorian date that does not exist (and 2569-12-05 into the year 2569) before mailbot sees
    it; as text, person_date reads it as the Buddhist-Era date a person meant."""


TextDateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_load(text: str) -> Any:
    """Read YAML text the way every mailbot file is read: safe, with dates left as text."""
    return yaml.load(text, Loader=TextDateLoader)  # noqa: S506 - a SafeLoader subclass


NO_SUCH_DATE = "วันที่นี้ไม่มีจริง (no such date)"


def person_date(value: Any) -> date:
    """A date as a person types it: 2026-12-05, Buddhist-Era 2569-12-05, 5/12/2569 or 5/12/2026
    (day first), Thai digits too. Impossible dates are refused."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.replace(year=value.year - 543) if value.year > 2400 else value
    text = thai_digits_to_arabic(str(value)).strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text) or None
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
        if not m:
            raise ValueError(f"ไม่ใช่วันที่ (not a date): {value} — เขียนแบบ 2569-12-05 หรือ 5/12/2569")
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    if y > 2400:
        y -= 543
    try:
        return date(y, mo, d)
    except ValueError:
        raise ValueError(f"{NO_SUCH_DATE}: {value}") from None


_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class ScheduleConfig(_Strict):
    every_minutes: int = Field(default=10, ge=1, le=1440)
    office_hours: str = "08:30-16:30"
    workdays: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK))
    holidays: list[date] = Field(default_factory=list)   # 2569-12-05 (BE) or 2026-12-05
    after_hours_every_minutes: int = Field(default=60, ge=1, le=1440)   # nights, weekends, holidays
    idle: bool = False                                   # IMAP IDLE when the server supports it
    daily_report: str = "16:30"                          # time the supervisors' daily log is made
    backup_at: str = "02:00"                             # nightly backup time

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, v: Any) -> Any:
        return [person_date(x) for x in v] if isinstance(v, list) else v

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", v.strip())
        if not m or not (0 <= int(m[1]) < 24 and 0 <= int(m[3]) <= 24 and int(m[2]) < 60 and int(m[4]) < 60):
            raise ValueError("write office hours like 08:30-16:30")
        if (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
            raise ValueError("office hours must start before they end")
        return v.strip()

    @field_validator("daily_report", "backup_at")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not re.fullmatch(r"\d{1,2}:\d{2}", v.strip()) or int(v.split(":")[0]) > 23 or int(v.split(":")[1]) > 59:
            raise ValueError("write a time like 16:30")
        return v.strip()


class BackupConfig(_Strict):
    dir: Path | None = None          # a second location (another disk, a network share)
    keep_days: int = Field(default=3650, ge=1)


LINE_ID = re.compile(r"[UCR][0-9a-f]{32}")    # a LINE user (U...), group (C...) or multi-person chat (R...)


class LineConfig(_Strict):
    """Alerts also pushed to LINE (the Messaging API of a LINE Official Account; LINE Notify closed on
    31 March 2025). The channel access token is kept in the credential store (``mailbot secret set
    line``), never here."""

    to: list[str] = Field(min_length=1)     # group ids (C...) or user ids (U...) the bot pushes to
    api: str = "https://api.line.me"        # the Messaging API's address (a test server: http://127.0.0.1:port)
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)   # one request at most (never blocks a cycle)
    max_per_hour: int = Field(default=20, ge=1, le=1000)       # pushes an hour at most; more wait, together
    daily_summary: bool = True              # the day's summary and the overdue cases, with the daily log

    @field_validator("to")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        bad = [i for i in v if not LINE_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"not a LINE group or user id (C... or U... and 32 hexadecimal digits): {bad[0]!r}")
        return list(dict.fromkeys(v))

    @field_validator("api")
    @classmethod
    def _api(cls, v: str) -> str:
        if not _safe_url(v):
            raise ValueError(f"{v} must be https:// (plain http only to this computer)")
        return v.rstrip("/")


class AlertsConfig(_Strict):
    to: list[str] = Field(default_factory=list)          # officers; default: the agency address
    unreachable_minutes: int = Field(default=60, ge=1)   # alert when the server is away this long
    disk_free_mb: int = Field(default=1024, ge=0)        # alert below this much free space
    certificate_days: int = Field(default=30, ge=0)
    line: LineConfig | None = None                       # alerts to LINE too (none: e-mail only)


class WorkflowConfig(_Strict):
    """Cases awaiting documents: when to remind the citizen, when to close (working days)."""

    reminder_days: int = Field(default=7, ge=1)
    close_days: int = Field(default=14, ge=1)     # counted from the reminder


class TrustConfig(_Strict):
    """Whose word mailbot takes: the receiving server's verdicts, spam scores, blocked senders."""

    # the authserv-id of our own receiving server (first token of its Authentication-Results, RFC 8601);
    # only those headers are read. `mailbot check` prints the values seen on recent mail. Empty: failures
    # in any Authentication-Results still hold the reply, but nothing counts as authenticated.
    authserv_id: str | list[str] = ""
    spam_score: float = 5.0          # SpamAssassin / rspamd score above this: registered, reply held
    blocklist: list[str] = Field(default_factory=list)   # "a@b.example", "b.example", "@b.example", "*.xyz"
    automatic_new_cases_per_day: int = Field(default=3, ge=0)   # per automatic-looking sender

    @property
    def authserv_ids(self) -> tuple[str, ...]:
        items = [self.authserv_id] if isinstance(self.authserv_id, str) else self.authserv_id
        return tuple(i.strip().lower() for item in items for i in item.split(",") if i.strip())


class RetentionConfig(_Strict):
    """How long what mailbot holds is kept (named in the privacy notice of every receipt)."""

    years: int = Field(default=10, ge=1)


class SigningConfig(_WithPassword):
    """The agency certificate that makes results trustworthy (PAdES)."""

    pkcs12: Path
    tsa_url: str = ""                 # RFC 3161 timestamp server; empty: sign at B-B
    signer_name: str = ""             # the name on the stamp (default: the agency's name)
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600)   # one file's signing, at most

    def key_password(self) -> str | None:
        """The certificate's password; a variable named but missing is said as the IMAP and SMTP
        ones are (with its setx line), never called a wrong password. None: no password set (a
        certificate without one)."""
        if self.password_env and not os.environ.get(self.password_env):
            return self.require_secret("signing")
        return self.secret()


class ResultsConfig(_Strict):
    outbox: Path = Path("results/outbox")      # the officer drops result PDFs here
    sent: Path = Path("results/sent")
    problems: Path = Path("results/problems")
    stable_seconds: float = Field(default=2.0, ge=0)   # a file must keep its size this long


class LettersConfig(_Strict):
    """Official result letters (หนังสือภายนอก): who signs, whom to contact, where to appeal."""

    emblem: Path | None = None      # the agency's emblem (ตราครุฑ) image, PNG or JPG; none is bundled
    signer_name: str = ""           # e.g. นายสมศักดิ์ ใจดี (default: signing.signer_name)
    signer_position: str = ""       # e.g. นายกเทศมนตรีตำบลบ้านตัวอย่าง
    address: list[str] = Field(default_factory=list)   # the agency's postal address, line by line
    unit: str = ""                  # the responsible unit at the foot, e.g. สำนักปลัด งานธุรการ
    phone: str = ""
    fax: str = ""
    email: str = ""                 # default: agency.address
    appeal_to: str = ""             # where a rejection may be appealed (default: the agency itself)
    appeal_days: int = Field(default=15, ge=1, le=365)   # Administrative Procedure Act s. 44: 15 days
    # the letter's digits, all of them (page numbers, dates, amounts, numbers): thai (๑๒๓) or arabic (123)
    digits: Literal["thai", "arabic"] = "arabic"

    @field_validator("digits", mode="before")
    @classmethod
    def _digits(cls, v: object) -> object:
        word = str(v or "arabic").strip().lower()
        return {"ไทย": "thai", "เลขไทย": "thai", "อารบิก": "arabic", "อารบิค": "arabic"}.get(word, word)

    @field_validator("emblem", mode="before")
    @classmethod
    def _empty_emblem(cls, v: object) -> object:
        return None if v in ("", None) else v


class PublishConfig(_Strict):
    folder: Path = Path("registers/public")    # public licence register (xlsx, csv, CKAN metadata)


# ---------------------------------------------------------------------------- starter values

# the starter's ที่ (letter code) pattern: plainly a placeholder, which `check` refuses until the
# agency sets its own code (an older starter wrote "{seq}/{year}", the shape of a receipt number)
DISPATCH_PLACEHOLDER = "(ตั้งรหัสหนังสือ) {seq}/{year}"
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
# the hold reason of a forward to such an address (a starter value left in rules.yaml)
PLACEHOLDER_HOLD = "ที่อยู่ส่วนงานยังเป็นค่าตัวอย่าง ไม่ส่ง แก้ forward_to ในไฟล์กฎก่อน"


def is_placeholder_address(address: str | None) -> bool:
    """An address at a domain reserved for examples (RFC 2606/6761): example.go.th, x.example,
    mail.test ... — a starter value nobody reads."""
    domain = (address or "").rsplit("@", 1)[-1].strip().lower().rstrip(".")
    labels = domain.split(".")
    return bool(domain) and ("example" in labels or labels[-1] in RESERVED_TLDS)


THIS_COMPUTER = "ผู้ใช้เครื่องนี้"   # the actor when nobody signed in and no name is set


class ConsoleConfig(_Strict):
    """The officer's desk: a local web page (``mailbot console``; also served by ``mailbot run``)."""

    enabled: bool = True              # served by `mailbot run` too
    port: int = Field(default=8470, ge=1, le=65535)
    listen: str = "127.0.0.1"         # 0.0.0.0: other PCs too, only with officer accounts
    session_minutes: int = Field(default=480, ge=1, le=10080)   # a sign-in lasts this long
    hosts: list[str] = Field(default_factory=list)   # extra names the page may be opened by
    # the name recorded in the history and the audit log for what is done at this computer when
    # there are no officer accounts (never the computer's user name); "" shows ผู้ใช้เครื่องนี้
    officer_name: str = Field(default="", max_length=80)

    @property
    def actor(self) -> str:
        """Who acts at this computer without an account: the name set once, or ผู้ใช้เครื่องนี้."""
        return " ".join(self.officer_name.split()) or THIS_COMPUTER

    @property
    def loopback(self) -> bool:
        return self.listen in ("127.0.0.1", "localhost", "::1") or self.listen.startswith("127.")


class DatabaseConfig(_Strict):
    """Where the state lives when it is not the SQLite file in the data folder: one tenant (this
    agency) in a host's PostgreSQL. The URL is read from an environment variable (it may hold a
    password), never written in the YAML."""

    url_env: str = Field(default="MAILBOT_DATABASE_URL", min_length=1)
    tenant: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")

    def url(self) -> str:
        value = os.environ.get(self.url_env)
        if not value:
            raise MailbotError(
                f"ยังไม่ได้ตั้งที่อยู่ฐานข้อมูล: ไม่มีตัวแปรสภาพแวดล้อม {self.url_env}",
                f"the database URL is not set: the environment variable {self.url_env} is missing")
        return value


class Config(_Strict):
    agency: AgencyConfig
    imap: ImapConfig
    smtp: SmtpConfig
    # imap: IMAP and SMTP (the sections above); graph: Microsoft Graph (the graph section), where
    # imap and smtp may be left out (their since, batch_size and sent_folder still apply)
    mailbox: Literal["imap", "graph"] = "imap"
    graph: GraphConfig | None = None
    paths: PathsConfig = Field(default_factory=PathsConfig)
    registers: RegistersConfig = Field(default_factory=RegistersConfig)
    rules: Path = Path("rules.yaml")
    templates: Path = Path("templates")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    folders: FoldersConfig = Field(default_factory=FoldersConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    staff: list[str] = Field(default_factory=list)   # officers who may forward citizens' mail to us
    supervisors: list[str] = Field(default_factory=list)  # receive the daily log and alerts
    backup: BackupConfig = Field(default_factory=BackupConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    signing: SigningConfig | None = None
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    letters: LettersConfig = Field(default_factory=LettersConfig)
    trust: TrustConfig = Field(default_factory=TrustConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    oauth2: OAuth2Config | None = None     # sign-in for imap/smtp with auth: oauth2
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    database: DatabaseConfig | None = None   # a host's PostgreSQL (mailbot host); none: state.sqlite3

    base_dir: Path = Field(default=Path("."), exclude=True)
    source: Path = Field(default=Path("mailbot.yaml"), exclude=True)   # the file this was read from
    _stamp: tuple[int, int] | None = PrivateAttr(default=None)        # its time and size when read
    _pinned: dict[str, Any] = PrivateAttr(default_factory=dict)        # set by a host, kept over re-reads

    def pin(self, **fields: Any) -> "Config":
        """Settings that are not the file's to choose (a host sets an agency's tenant): set now and
        again on every re-read of the file (``reloaded``)."""
        for name, value in fields.items():
            setattr(self, name, value)
        self._pinned.update(fields)
        return self

    @model_validator(mode="before")
    @classmethod
    def _graph_stand_ins(cls, data: Any) -> Any:
        """With ``mailbox: graph`` the imap and smtp sections are not needed: stand-ins name Graph's host."""
        if not isinstance(data, dict) or data.get("mailbox") != "graph":
            return data
        data = dict(data)
        graph = data.get("graph") if isinstance(data.get("graph"), dict) else {}
        from urllib.parse import urlparse

        host = urlparse(str(graph.get("base_url") or GRAPH_URL)).hostname or "graph.microsoft.com"
        for key in ("imap", "smtp"):
            section = data.get(key)
            if section is None:
                data[key] = {"host": host}
            elif isinstance(section, dict) and not section.get("host"):
                data[key] = {**section, "host": host}
        return data

    @model_validator(mode="after")
    def _link_servers(self) -> "Config":
        for name, server in (("imap", self.imap), ("smtp", self.smtp)):
            server._root = self
            if self.mailbox == "imap" and server.auth == "oauth2" and server.oauth2_settings() is None:
                raise ValueError(f"{name}.auth is oauth2 but there is no oauth2 section")
        if self.mailbox == "graph":
            if self.graph is None:
                raise ValueError("mailbox is graph but there is no graph section")
            # the cycle, the ledger and the console name the watched folder and the account by these
            self.imap.folder = self.graph.folder
            self.imap.host = self.smtp.host = self.graph.host
            self.imap.username = self.smtp.username = self.graph_mailbox
            self.imap.auth = self.smtp.auth = "password"      # neither signs in: Graph does
        return self

    @property
    def graph_mailbox(self) -> str:
        """The mailbox Graph is asked about (/users/{mailbox}): graph.mailbox, else the agency address."""
        return (self.graph.mailbox if self.graph is not None and self.graph.mailbox else "") or self.agency.address

    def resolve(self, p: Path) -> Path:
        p = Path(os.path.expandvars(str(p))).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.paths.data)

    @property
    def registers_dir(self) -> Path:
        return self.resolve(self.paths.registers)

    @property
    def rules_path(self) -> Path:
        return self.resolve(self.rules)

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.templates)

    @property
    def account(self) -> str:
        return f"{self.imap.username or self.agency.address}@{self.imap.host}"


# ---------------------------------------------------------------------------- rules

def _check_regexes(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    return patterns


class Document(_Strict):
    name: str = Field(min_length=1)
    match: list[str] = Field(default_factory=list)   # filename hints


class Fee(_Strict):
    """A service's fee, paid by Thai QR (PromptPay bill payment; reference 1 = the receipt number)."""

    amount: float = Field(gt=0, lt=10_000_000)          # baht
    biller_id: str                                       # 13-digit tax ID + 2-digit suffix
    reference2: str = ""                                 # optional, A-Z 0-9 (e.g. an account code)
    name: str = "ค่าธรรมเนียม"                           # what the fee is called in the letter and email
    # when it is asked: "receipt" (with the receipt e-mail) or "approval" (with the approval letter);
    # unset: a licence fee (licence: true, or a name with ใบอนุญาต) with the approval, others with the receipt
    when: Literal["receipt", "approval"] | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: object) -> object:
        if v in ("", None):
            return None
        word = str(v).strip().lower()
        return {"ตอบรับ": "receipt", "รับเรื่อง": "receipt", "อนุมัติ": "approval", "อนุญาต": "approval"}.get(word, word)

    @field_validator("biller_id", mode="before")
    @classmethod
    def _biller(cls, v: object) -> str:
        # written without quotes, YAML reads 099400016550100 as a number and drops the leading 0
        v = str(v).zfill(15) if isinstance(v, int) else re.sub(r"[\s-]", "", str(v))
        if not re.fullmatch(r"\d{15}", v):
            raise ValueError("biller_id must be 15 digits: the 13-digit tax ID and a 2-digit suffix")
        return v

    @field_validator("reference2")
    @classmethod
    def _ref2(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Z0-9]{1,20}", v):
            raise ValueError("reference2: up to 20 characters A-Z and 0-9")
        return v


class Service(_Strict):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1)
    name_en: str = ""          # the service's name in the English part of replies (else the Thai name)
    keywords: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    next_steps: str = ""       # what happens next, told in the receipt reply
    days: int | None = Field(default=None, ge=0)  # service time promised, if any
    documents: list[Document] = Field(default_factory=list)
    accept: list[str] = Field(default_factory=list)        # file types, e.g. [pdf, jpg]
    forward_to: list[str] = Field(default_factory=list)    # internal addresses ("กองช่าง <a@x>")
    licence: bool = False          # a result of this service is a licence: kept in the public register
    licence_years: int = Field(default=1, ge=0)   # validity; 0: no expiry
    licence_name: str = ""         # the licence's own name in the register (else made from the service's name)
    fee: Fee | None = None         # a fee paid by Thai QR code (receipt email and result letter)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return _check_regexes(v)


class Referral(_Strict):
    agency: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    contact: str = ""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return _check_regexes(v)


class Rules(_Strict):
    services: list[Service] = Field(default_factory=list)
    referrals: list[Referral] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> "Rules":
        seen: set[str] = set()
        for i, s in enumerate(self.services):
            if s.code in seen:
                raise ValueError(f"services ข้อที่ {i + 1}: code {s.code!r} used twice / รหัสบริการซ้ำ")
            seen.add(s.code)
        lists: tuple[tuple[str, Sequence[Service | Referral]], ...] = (
            ("services", self.services), ("referrals", self.referrals))
        for kind, items in lists:
            for i, item in enumerate(items):
                if not item.keywords and not item.regex:
                    raise ValueError(f"{kind} ข้อที่ {i + 1}: needs at least one keyword or regex / "
                                     "ต้องมีคำสำคัญ (keywords) หรือ regex อย่างน้อยหนึ่งรายการ")
                for kw in item.keywords:
                    if not normalise(kw):
                        raise ValueError(f"{kind} ข้อที่ {i + 1}: empty keyword / คำสำคัญว่าง")
        return self


# ---------------------------------------------------------------------------- loading

_THAI_ERRORS = {
    "extra_forbidden": ("ไม่รู้จักคีย์นี้ (สะกดผิดหรือไม่?)", "unknown key (misspelt?)"),
    "missing": ("ขาดค่าที่จำเป็น", "required key is missing"),
    "literal_error": ("ค่าไม่อยู่ในตัวเลือกที่ใช้ได้", "value is not one of the allowed choices"),
    "int_parsing": ("ต้องเป็นตัวเลขจำนวนเต็ม", "must be a whole number"),
    "int_type": ("ต้องเป็นตัวเลขจำนวนเต็ม", "must be a whole number"),
    "float_parsing": ("ต้องเป็นตัวเลข", "must be a number"),
    "bool_parsing": ("ต้องเป็น true หรือ false", "must be true or false"),
    "string_type": ("ต้องเป็นข้อความ", "must be text"),
    "list_type": ("ต้องเป็นรายการ [ ... ]", "must be a list [ ... ]"),
    "model_type": ("ต้องเป็นกลุ่มคีย์ (key: value)", "must be a mapping (key: value)"),
    "dict_type": ("ต้องเป็นกลุ่มคีย์ (key: value)", "must be a mapping (key: value)"),
    "string_too_short": ("ต้องไม่ว่าง", "must not be empty"),
    "greater_than_equal": ("ค่าน้อยเกินไป", "value too small"),
    "less_than_equal": ("ค่ามากเกินไป", "value too large"),
    "greater_than": ("ค่าน้อยเกินไป", "value too small"),
    "value_error": ("ค่าไม่ถูกต้อง", "invalid value"),
}


def _line_of(text: str, loc: tuple) -> int | None:
    """The line (from 1) where a key or list item of a YAML text is, following a pydantic location."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def describe_validation(exc: ValidationError, text: str = "") -> str:
    """Each problem on one line: where (list items counted from 1, with the file's line), what."""
    lines = []
    for err in exc.errors():
        loc, after_index = "", False
        for p in err["loc"]:
            if isinstance(p, int):
                loc, after_index = f"{loc} ข้อที่ {p + 1}", True
            else:
                loc, after_index = (f"{loc} → {p}" if after_index else f"{loc}.{p}" if loc else str(p)), False
        loc = loc or "(ระดับบนสุด / top level)"
        line = _line_of(text, err["loc"]) if text else None
        if line:
            loc += f" (บรรทัด/line {line})"
        thai, eng = _THAI_ERRORS.get(err["type"], ("ค่าไม่ถูกต้อง", "invalid value"))
        msg = err.get("msg", "")
        if err["type"] in ("literal_error", "value_error") and msg:
            eng = f"{eng}: {msg}"
        lines.append(f"  - {loc}: {thai} / {eng}")
    return "\n".join(lines)


def _yaml_hint(problem: str, line: str) -> str:
    """A Thai hint for the YAML mistakes people make most, besides the parser's words."""
    if "\t" in problem or "\t" in line:
        return ("ใช้ปุ่ม Tab ย่อหน้าไม่ได้ ให้เว้นวรรคด้วยปุ่ม Space แทน / "
                "a Tab is used for indentation: indent with spaces")
    if "mapping values are not allowed" in problem:
        return ("ค่าที่มีเครื่องหมาย : อยู่ข้างในต้องใส่เครื่องหมายคำพูดครอบ เช่น name: \"เทศบาล: ตำบล\" / "
                "a value containing a colon must be quoted, e.g. name: \"a: b\"")
    if "block sequence start" in problem or "found '-'" in problem:
        return ("เมื่อเขียนรายการทีละบรรทัดด้วย - ให้ลบ [] ที่ท้ายบรรทัดก่อนหน้าออก / "
                "when listing items on their own lines with -, remove the [] on the line above")
    return ""


def _read_yaml(path: Path, error: type, what_th: str, what_en: str) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(
            f"ไม่พบไฟล์{what_th}: {path}",
            f"{what_en} file not found: {path}",
            "สร้างไฟล์ตั้งต้นได้ด้วยคำสั่ง: mailbot init / create starter files with: mailbot init",
        ) from None
    except OSError as exc:
        raise error(
            f"อ่านไฟล์{what_th}ไม่ได้: {path}",
            f"cannot read {what_en} file: {path} ({type(exc).__name__})",
        ) from None
    save_utf8 = ("เปิดไฟล์ด้วย Notepad แล้วเลือก บันทึกเป็น (Save As) → การเข้ารหัส (Encoding) UTF-8 / "
                 "open it in Notepad, Save As, Encoding: UTF-8")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:200].count(b"\x00") > 10:
        raise error(f"ไฟล์{what_th}บันทึกเป็น UTF-16 ต้องบันทึกใหม่เป็น UTF-8: {path}",
                    f"the {what_en} file is saved as UTF-16; save it as UTF-8: {path}", save_utf8)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"ไฟล์{what_th}บันทึกเป็น ANSI (cp874) ต้องบันทึกใหม่เป็น UTF-8: {path}",
                    f"the {what_en} file is saved as ANSI/cp874, not UTF-8: {path}", save_utf8) from None
    try:
        return yaml_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" บรรทัด/line {mark.line + 1}, คอลัมน์/column {mark.column + 1}" if mark else ""
        problem = str(getattr(exc, "problem", "") or exc)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        hint = _yaml_hint(problem, line)
        raise error(
            f"รูปแบบไฟล์{what_th}ผิด (YAML){where}: {path}",
            f"{what_en} file is not valid YAML{where}: {path}",
            f"  {problem}" + (f"\n  {line.strip()}" if line.strip() else "") + (f"\n  คำแนะนำ / hint: {hint}" if hint else ""),
        ) from None


def default_config_path() -> Path:
    return Path(os.environ.get("MAILBOT_CONFIG") or "mailbot.yaml")


def load_config(path: Path | None = None) -> Config:
    path = Path(path or default_config_path())
    data, text = _read_yaml(path, ConfigError, "ตั้งค่า", "config")
    if not isinstance(data, dict):
        raise ConfigError(
            f"ไฟล์ตั้งค่าว่างหรือไม่ใช่กลุ่มคีย์: {path}",
            f"config file is empty or not a mapping: {path}",
        )
    for internal in ("base_dir", "source"):
        data.pop(internal, None)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        if any(NO_SUCH_DATE in str(e.get("msg", "")) for e in exc.errors()):
            raise ConfigError(f"ไฟล์ตั้งค่ามีวันที่ที่ไม่มีจริง: {path}",
                              f"the config file holds a date that does not exist: {path}",
                              describe_validation(exc, text)) from None
        raise ConfigError(
            f"ไฟล์ตั้งค่ามีข้อผิดพลาด: {path}",
            f"the config file has errors: {path}",
            describe_validation(exc, text),
        ) from None
    cfg.base_dir = path.resolve().parent
    cfg.source = path.resolve()
    cfg._stamp = _stamp(path)
    return cfg


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def reloaded(cfg: Config) -> Config:
    """``cfg`` while its file is unchanged; once the file changed (the console's settings, a hand
    edit), the file read anew — so a running service and the console see a change on their next
    cycle or page, without a restart. A file that no longer loads leaves ``cfg`` in use (the
    console validates before it saves; a hand edit's mistake is shown by ``mailbot check``)."""
    now = _stamp(cfg.source)
    if now is None or now == cfg._stamp:
        return cfg
    try:
        fresh = load_config(cfg.source)
    except MailbotError:
        cfg._stamp = now        # said once, not on every page
        log.warning("config %s changed but does not load; the last good settings stay in use", cfg.source)
        return cfg
    return fresh.pin(**cfg._pinned) if cfg._pinned else fresh


_RULES_READ: dict[tuple[str, int, int], Rules] = {}


def load_rules(path: Path) -> Rules:
    """The rules file, validated; read again only when the file changed (its size or time): every
    console request and every poll opens an office, and parsing the YAML was a fifth of a page's
    time. A copy each time, so that no caller changes another's."""
    try:
        st = path.stat()
        key: tuple[str, int, int] | None = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _RULES_READ:
        return _RULES_READ[key].model_copy(deep=True)
    rules = _load_rules(path)
    if key is not None:
        if len(_RULES_READ) > 16:
            _RULES_READ.clear()
        _RULES_READ[key] = rules.model_copy(deep=True)
    return rules


def _load_rules(path: Path) -> Rules:
    data, text = _read_yaml(path, RulesError, "กฎการจัดประเภท", "rules")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(
            f"ไฟล์กฎต้องเป็นกลุ่มคีย์ services/referrals: {path}",
            f"rules file must be a mapping with services/referrals: {path}",
        )
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(
            f"ไฟล์กฎการจัดประเภทมีข้อผิดพลาด: {path}",
            f"the rules file has errors: {path}",
            describe_validation(exc, text),
        ) from None
