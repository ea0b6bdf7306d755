"""Trust (pure): whose word mailbot takes, who may touch a case, who gets an automatic answer.

Owns:
  - reading the receiving server's verdicts into one ``Screening``: Authentication-Results only
    from the configured authserv-id (``trust.authserv_id``, RFC 8601), SpamAssassin / rspamd
    scores and flags, Microsoft SCL, and ``trust.blocklist``. ``Screening.hold`` non-empty means:
    register, flag for the officer, send nothing automatically (never refuse);
  - the authserv-ids seen on mail, for ``mailbot check`` (``authserv_ids`` / ``authserv_ids_in``);
  - who may act on a case (``who_may_act``): its own address on file, or staff whose mail is
    authenticated; anyone else's mail naming it becomes a new request linked to it;
  - whether a staff forward is taken on trust, judged on the outer sender before the citizen
    named inside is substituted (``staff_forward``);
  - the "automatic-looking sender" heuristic and the daily cap on new cases from such senders
    (``looks_automatic`` / ``new_case_cap``; the caller counts, this decides);
  - making echoed text inert (``defang``): no working link or address from a sender in a reply;
  - register notes that never push out a warning; routine notes folded (``add_note``), and the
    warning texts for held and linked requests (``hold_remark``, ``linked_notes``);
  - which server folders are Junk (``is_junk_folder``): never read.

No I/O: headers come from ``parse.Letter.trust_headers``; counts and case rows from the caller.
"""
from __future__ import annotations

import email.parser
import email.policy
import fnmatch
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Literal

from ..kinds import explain
from ..config import TrustConfig
from ..intake.classify import claims_to_be_us
from ..mail.parse import Letter, no_reply_address
from ..thai import THAI_MONTHS_SHORT

try:  # RFC 8601 parser (pure Python); a header it cannot read falls back to a plain scan
    import authres
except ImportError:  # pragma: no cover - declared in pyproject.toml
    authres = None

Headers = Iterable[tuple[str, str]]

# For the lead's migration (NOT applied by this module; state.py's SCHEMA is not edited here):
# what the pipeline records from this module's decisions on a case.
SCHEMA_ADDITIONS = """
ALTER TABLE cases ADD COLUMN linked_to TEXT;   -- receipt of the case this request named (Decision.linked_case)
ALTER TABLE cases ADD COLUMN held TEXT;        -- Decision.flag / Screening.hold: no automatic reply until released
CREATE INDEX IF NOT EXISTS cases_sender_day ON cases (sender_addr, received_at);   -- new_case_cap counts
"""

# ---------------------------------------------------------------------------- authentication

FAILED = frozenset({"fail", "softfail", "permerror"})
CHECKED = ("spf", "dkim", "dmarc")
_AR_FALLBACK = re.compile(r"\b(spf|dkim|dmarc|auth)\s*=\s*([a-z]+)", re.I)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class AuthResult:
    server: str                     # the authserv-id that wrote it
    method: str                     # spf, dkim, dmarc, auth, arc, ...
    result: str                     # pass, fail, softfail, none, ...
    props: tuple[tuple[str, str], ...] = ()   # ("header.d", "example.com"), ("smtp.mailfrom", ...)

    def prop(self, *names: str) -> str:
        for key, value in self.props:
            if key in names:
                return value
        return ""

    def __str__(self) -> str:
        where = self.prop("header.d", "header.from", "smtp.mailfrom", "header.i")
        return f"{self.method}={self.result}" + (f" ({where})" if where else "")


def authserv_id_of(value: str) -> str:
    """The authserv-id of one Authentication-Results value: its first token (RFC 8601 2.2)."""
    head = _COMMENT.sub(" ", value).split(";", 1)[0].split()
    return head[0].lower().strip('"') if head else ""


def _pairs(headers: Headers | Letter) -> list[tuple[str, str]]:
    items = headers.trust_headers if isinstance(headers, Letter) else headers
    return [(k.lower(), v) for k, v in items]


def authserv_ids(headers: Headers | Letter) -> list[str]:
    """The authserv-ids on a message's Authentication-Results, in header order (duplicates kept once)."""
    return list(dict.fromkeys(
        authserv_id_of(v) for k, v in _pairs(headers) if k == "authentication-results" and authserv_id_of(v)))


def authserv_ids_in(raw: bytes) -> list[str]:
    """The same, read from raw message bytes (only the header block is parsed)."""
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    except Exception:  # noqa: BLE001 - a broken header block has no usable ids
        return []
    return authserv_ids([(k, " ".join(str(v).split())) for k, v in msg.items()])


def summarise_authserv_ids(raws: Iterable[bytes]) -> list[tuple[str, int]]:
    """For `mailbot check`: each authserv-id seen on recent mail and on how many messages, most first.

    The receiving server's own id is the one on (nearly) every message; put it in trust.authserv_id.
    """
    seen: Counter[str] = Counter()
    for raw in raws:
        seen.update(set(authserv_ids_in(raw)))
    return seen.most_common()


def ours_and_forged(headers: Headers | Letter, servers: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The Authentication-Results values our receiving server wrote, and those that only claim to be
    its (RFC 8601 section 5).

    The server puts its own on top of everything that came with the message: the topmost header
    with our authserv-id starts the trusted block, and the block ends at the next ``Received``
    line below it (a hop the message made before it reached us). A header with our id further
    down was written before our server saw the message: a forgery. So is everything when a
    ``Received`` line naming our server as the receiver ("by <authserv-id>") sits above the
    topmost header with our id. The id is compared without regard to case."""
    wanted = {s.lower() for s in servers}
    pairs = _pairs(headers)
    ours = [i for i, (k, v) in enumerate(pairs) if k == "authentication-results" and authserv_id_of(v) in wanted]
    if not ours:
        return [], []
    first = ours[0]
    border = next((i for i, (k, v) in enumerate(pairs) if k == "received" and _received_by(v) in wanted), None)
    if border is not None and border < first:
        return [], [pairs[i][1] for i in ours]
    end = next((i for i, (k, _) in enumerate(pairs) if k == "received" and i > first), len(pairs))
    return [pairs[i][1] for i in ours if i < end], [pairs[i][1] for i in ours if i >= end]


def _received_by(value: str) -> str:
    """The receiving host a Received line names ("... by mx.example.go.th with ESMTPS ...")."""
    m = re.search(r"\bby\s+([^\s;()]+)", _COMMENT.sub(" ", value), re.I)
    return m.group(1).lower().rstrip(".") if m else ""


def auth_results(headers: Headers | Letter, servers: tuple[str, ...]) -> list[AuthResult]:
    """Results from the Authentication-Results of the given authserv-ids, only those our server
    wrote (``ours_and_forged``); all headers when no id is given."""
    out: list[AuthResult] = []
    wanted = {s.lower() for s in servers}
    trusted = set(ours_and_forged(headers, servers)[0]) if wanted else set()
    for name, value in _pairs(headers):
        if name != "authentication-results":
            continue
        server = authserv_id_of(value)
        if wanted and (server not in wanted or value not in trusted):
            continue
        parsed = None
        if authres is not None:
            try:
                # Exchange ends the value with a stray ";" that the grammar refuses
                parsed = authres.AuthenticationResultsHeader.parse_value(value.strip().rstrip(";").rstrip())
            except Exception:  # noqa: BLE001 - malformed: scan it instead
                parsed = None
        if parsed is not None:
            for r in parsed.results:
                props = tuple((f"{p.type}.{p.name}".lower(), str(p.value or "").lower()) for p in r.properties)
                out.append(AuthResult(server, str(r.method).lower(), str(r.result).lower(), props))
        else:   # failures still count from a header the parser rejects; passes never do
            for method, result in _AR_FALLBACK.findall(_COMMENT.sub(" ", value)):
                if result.lower() in FAILED:
                    out.append(AuthResult(server, method.lower(), result.lower()))
    return out


def _domain(addr: str | None) -> str:
    return (addr or "").strip().strip("<>").rsplit("@", 1)[-1].lower()


def _aligned(a: str, b: str) -> bool:
    """Relaxed alignment (DMARC): the same domain, or one a subdomain of the other."""
    a, b = a.strip(".").lower(), b.strip(".").lower()
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def authenticated(results: list[AuthResult], sender: str | None) -> bool:
    """The server vouches for the sender's domain: DMARC pass, or DKIM/SPF pass aligned with it, or
    SMTP AUTH as that sender; and nothing failed."""
    domain = _domain(sender)
    if not domain or any(r.method in CHECKED and r.result in FAILED for r in results):
        return False
    for r in results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and _aligned(r.prop("header.from") or domain, domain):
            return True
        if r.method == "dkim" and _aligned(r.prop("header.d") or _domain(r.prop("header.i")), domain):
            return True
        if r.method == "spf" and _aligned(_domain(r.prop("smtp.mailfrom")), domain):
            return True
        if r.method == "auth" and r.prop("smtp.auth") in ((sender or "").lower(), (sender or "").split("@")[0].lower()):
            return True
    return False


# ---------------------------------------------------------------------------- spam and blocklist

_FLOAT = r"([-+]?\d+(?:\.\d+)?)"


def _number(text: str) -> float | None:
    m = re.search(_FLOAT, text)
    return float(m.group(1)) if m else None


def spam_reasons(headers: Headers | Letter, threshold: float) -> list[str]:
    """Why the filters call this spam: X-Spam-Flag YES, a SpamAssassin / rspamd score above the
    threshold, Microsoft SCL 5 or more. Any copy of a header counts (a sender can add a verdict
    against itself, never remove the server's)."""
    out: list[str] = []
    for name, value in _pairs(headers):
        v = value.strip()
        score: float | None = None
        if name == "x-spam-flag" and v.lower().startswith(("yes", "true")):
            out.append("X-Spam-Flag: YES")
        elif name == "x-spam-status":
            m = re.search(r"\bscore=" + _FLOAT, v, re.I)
            score = float(m.group(1)) if m else None
        elif name in ("x-spam-score", "x-rspamd-score"):
            score = _number(v)
        elif name == "x-spamd-result":
            m = re.search(r"\[\s*" + _FLOAT + r"\s*/", v)
            score = float(m.group(1)) if m else None
        elif name == "x-ms-exchange-organization-scl":
            scl = _number(v)
            if scl is not None and scl >= 5:
                out.append(f"Microsoft SCL {int(scl)}")
        elif name == "x-forefront-antispam-report":
            m = re.search(r"(?:^|;)\s*SCL\s*:\s*(-?\d+)", v, re.I)
            if m and int(m.group(1)) >= 5:
                out.append(f"Microsoft SCL {m.group(1)}")
        if score is not None and score > threshold:
            out.append(f"spam score {score:g} > {threshold:g} ({name})")
    return list(dict.fromkeys(out))


def blocked(address: str | None, blocklist: Iterable[str]) -> str:
    """The blocklist entry an address matches, or "". Entries: an address, a domain ("x.example" or
    "@x.example", subdomains included), or a pattern with * and ? ("*.xyz", "promo*@*")."""
    if not address:
        return ""
    addr = address.strip().strip("<>").lower()
    domain = _domain(addr)
    for entry in blocklist:
        e = entry.strip().lower()
        if not e:
            continue
        if any(c in e for c in "*?["):
            if fnmatch.fnmatchcase(addr, e) or fnmatch.fnmatchcase(domain, e.lstrip("@")):
                return entry
        elif "@" in e and not e.startswith("@"):
            if addr == e:
                return entry
        else:
            d = e.lstrip("@")
            if domain == d or domain.endswith("." + d):
                return entry
    return ""


# ---------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class Screening:
    """What the receiving side says about one message."""

    reasons: tuple[str, ...] = ()        # why no automatic reply may go out; empty: it may
    failures: tuple[str, ...] = ()       # "dkim=fail (x.example)", from the trusted server(s)
    authenticated: bool = False          # the trusted server vouches for the From domain
    servers: tuple[str, ...] = ()        # authserv-ids on the message (for the officer and `check`)
    configured: bool = False             # trust.authserv_id is set: authentication can be vouched for

    @property
    def hold(self) -> str:
        """Non-empty: register, flag, never answer automatically. The text is for the officer."""
        return "; ".join(self.reasons)


HELD_NOTE = "ระงับการตอบกลับอัตโนมัติ รอเจ้าหน้าที่ตรวจสอบ"
CLAIMS_US_NOTE = "อ้างเป็นอีเมลของหน่วยงานแต่ตรวจสอบไม่ผ่าน ไม่ตอบอัตโนมัติ"
# how a register note marks a flagged case (this release's wording and earlier ones' "(flagged: …)")
FLAG_MARKS = (HELD_NOTE, CLAIMS_US_NOTE, "(flagged:")


def hold_remark(reason: str) -> str:
    """The register note for a held request (a warning: never folded, never pushed out), in plain
    Thai; the technical reason stays in the case's ``held`` column for the console's รายละเอียด."""
    return f"{HELD_NOTE}: {explain(reason)}"


def reviewed_note(held: str | None, remark: str | None) -> str:
    """The history's words for "the officer looked at this flagged mail": what it was flagged for."""
    if held:
        return f"ตรวจอีเมลที่ตรวจสอบผู้ส่งไม่ผ่านแล้ว ({explain(held)})"
    if "อ้างเป็นอีเมลของหน่วยงาน" in (remark or ""):
        return "ตรวจอีเมลที่อ้างเป็นของหน่วยงานแล้ว"
    return "ตรวจอีเมลที่ถูกทำเครื่องหมายแล้ว"


def is_flagged(held: str | None, remark: str | None) -> bool:
    """The case was registered flagged: held, or noted as claiming to be the agency."""
    return bool(held) or any(mark in (remark or "") for mark in FLAG_MARKS)


def screen(letter: Letter, settings: TrustConfig) -> Screening:
    """The verdict for one message (call it on the outer message, before a staff forward is unpacked).

    Without trust.authserv_id configured, failures in any Authentication-Results still hold the reply
    (a sender can only add failures against itself), but nothing counts as authenticated.
    """
    servers = settings.authserv_ids
    results = auth_results(letter, servers)
    failures = tuple(dict.fromkeys(str(r) for r in results if r.method in CHECKED and r.result in FAILED))
    reasons: list[str] = []
    if failures:
        reasons.append("authentication failed: " + ", ".join(failures))
    if letter.from_display_address:
        reasons.append(f"the sender's name shows another address ({letter.from_display_address}) "
                       f"than the one it comes from ({letter.from_addr})")
    forged = ours_and_forged(letter, servers)[1] if servers else []
    if forged:
        reasons.append(f"forged Authentication-Results: {len(forged)} header(s) claim to be from "
                       f"{servers[0]} but were written before the message reached it")
    reasons.extend(spam_reasons(letter, settings.spam_score))
    for addr in dict.fromkeys(a for a in (letter.from_addr, letter.reply_to) if a):
        entry = blocked(addr, settings.blocklist)
        if entry:
            reasons.append(f"sender on trust.blocklist ({entry})")
    return Screening(
        reasons=tuple(reasons), failures=failures,
        authenticated=bool(servers) and not failures and not forged and authenticated(results, letter.from_addr),
        servers=tuple(authserv_ids(letter)), configured=bool(servers),
    )


JUNK_NAMES = frozenset({"junk", "junk e-mail", "junk email", "spam", "bulk mail", "[gmail]/spam", "อีเมลขยะ",
                        "จดหมายขยะ", "เมลขยะ", "สแปม"})


def is_junk_folder(name: str, flags: Iterable[str | bytes] = ()) -> bool:
    """A folder the server files spam in (RFC 6154 \\Junk, or a usual name): mailbot never touches it."""
    if any((f.decode() if isinstance(f, bytes) else f).lower() == "\\junk" for f in flags):
        return True
    leaf = name.strip().lower()
    return leaf in JUNK_NAMES or leaf.rsplit("/", 1)[-1] in JUNK_NAMES or leaf.rsplit(".", 1)[-1] in JUNK_NAMES


# ---------------------------------------------------------------------------- who may act

Act = Literal["may_act", "register_as_new_linked"]


def who_may_act(*, case_addresses: Iterable[str | None], sender: str | None, sender_is_staff: bool,
                authenticated: bool, held: bool = False) -> Act:
    """May this sender add documents to a case and change its state?

    Yes for the case's own address on file (its sender or reply address) and for a staff
    address whose mail the server authenticated; not while the mail is held (a forged From).
    Anyone else: the mail is registered as a new request of its own, linked to the case,
    and the case's owner is not mailed.
    """
    if held or not sender:
        return "register_as_new_linked"
    on_file = {a.strip().lower() for a in case_addresses if a}
    if sender.strip().lower() in on_file:
        return "may_act"
    if sender_is_staff and authenticated:
        return "may_act"
    return "register_as_new_linked"


def linked_notes(new_receipt: str, named_receipt: str) -> tuple[str, str]:
    """Register notes for a request that named someone else's case: (on the new case, on the named case)."""
    return (f"อ้างถึงเรื่องเลขรับ {named_receipt} แต่ไม่ได้ส่งจากอีเมลของผู้ยื่นเรื่องนั้น ลงรับเป็นเรื่องใหม่ (linked)",
            f"มีผู้อื่นส่งอีเมลอ้างถึงเรื่องนี้ ลงรับเป็นเรื่องใหม่ เลขรับ {new_receipt} (linked)")


@dataclass(frozen=True)
class StaffForward:
    take: bool        # register under the person named inside the forward
    flag: str = ""    # why the outer message is not trusted (registered flagged under the outer sender)


UNVOUCHED_FORWARD = "staff forward from {sender} not vouched for: trust.authserv_id is not set"


def staff_forward(outer: Letter, screening: Screening, *, staff: Iterable[str], own_address: str,
                  own_domains: tuple[str, ...] = (), require_authentication: bool = True) -> StaffForward:
    """May a forward from a staff address be registered under the citizen it names?

    Judged on the OUTER message (before substitution): a sender on ``staff`` whose mail is not
    held, does not claim our domain while failing authentication, and is authenticated by our
    receiving server. Without ``trust.authserv_id`` nothing can vouch for the sender (a bare
    ``From:`` is anyone's to write): the forward is registered under the forwarding address,
    flagged, and the officer confirms it in the console (``Office.confirm_forward``).
    """
    sender = (outer.from_addr or "").lower()
    if not sender or sender not in {s.strip().lower() for s in staff}:
        return StaffForward(False)
    spoof = claims_to_be_us(outer, own_address, own_domains)
    if spoof:
        return StaffForward(False, f"staff forward {spoof}")
    if screening.hold:
        return StaffForward(False, f"staff forward from {sender}: {screening.hold}")
    if require_authentication and not screening.configured:
        return StaffForward(False, UNVOUCHED_FORWARD.format(sender=sender))
    if require_authentication and not screening.authenticated:
        return StaffForward(False, f"staff forward from {sender} not authenticated by the receiving server")
    return StaffForward(True)


# ---------------------------------------------------------------------------- automatic-looking senders

_AUTO_LOCAL = re.compile(
    r"(?:^|[-_.])(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|notifications?|notify|alerts?|automated|auto(?:mail|reply|responder)?"
    r"|system|daemon|mailer|robot|bot|newsletter|news|updates?|bounces?|tickets?|helpdesk[-_.]?auto|postmaster)"
    r"(?:$|[-_.\d])",
    re.I,
)
_AUTO_BODY = re.compile(
    r"automatic(?:ally generated)? (?:reply|response|message)|auto[- ]?reply|autoresponder|out of (?:the )?office"
    r"|i am (?:currently )?(?:out|away|on leave)|i will be (?:out|away)|this is an automated|this is an automatic"
    r"|(?:please )?do not reply to this|this mailbox is not monitored|we have received your|we received your"
    r"|thank you for (?:contacting|your (?:email|message))|your (?:ticket|request|case) (?:number|id|#)"
    r"|ข้อความ(?:นี้เป็นข้อความ)?ตอบกลับอัตโนมัติ|ข้อความอัตโนมัติ|ตอบกลับอัตโนมัติ|ระบบตอบรับอัตโนมัติ|กรุณาอย่าตอบกลับ"
    r"|ไม่ต้องตอบกลับ|อย่าตอบกลับ|ไม่อยู่ที่สำนักงาน|ไม่อยู่สำนักงาน|ได้รับอีเมลของท่านแล้ว|ได้รับเรื่องของท่าน"
    r"|ขอบคุณที่ติดต่อ",
    re.I,
)
_AUTO_SUBJECT = re.compile(r"\[?(?:ticket|case|request|incident)\s*(?:#|no\.?|id)\s*\d+|^\s*\[#\d+\]", re.I)


def looks_automatic(letter: Letter) -> str:
    """Why a message without automatic headers still looks machine-made, or "".

    Used only for the daily cap on new cases (a person who looks like this still opens up to
    ``trust.automatic_new_cases_per_day`` cases a day): a sender local part of a mail system
    (notifications@, system@, news@, ...), auto-responder phrases in what the sender wrote now
    (out of office, "we have received your", ตอบกลับอัตโนมัติ, our own receipt's wording), or a
    helpdesk ticket subject.
    """
    local = (letter.from_addr or "").rsplit("@", 1)[0]
    if no_reply_address(letter.from_addr):
        return f"no-reply sender {local.lower()}"
    if local and _AUTO_LOCAL.search(local):
        return f"sender looks like a mail system ({local.lower()})"
    m = _AUTO_BODY.search((letter.new_text or letter.body_text or "")[:3000])
    if m:
        return f"auto-responder wording ({m.group(0)[:40]})"
    m = _AUTO_SUBJECT.search(letter.subject or "")
    if m:
        return f"ticket-system subject ({m.group(0).strip()[:30]})"
    return ""


def new_case_cap(looks: str, cases_today: int, cap: int) -> str:
    """Why no new case is opened for this message (it goes to the automatic folder), or "".

    looks: ``looks_automatic(letter)``; cases_today: cases this sender address opened since
    midnight (Asia/Bangkok), counted by the caller; cap: ``trust.automatic_new_cases_per_day``.
    An auto-responder answering our receipts stops at the cap: no case, so no reply, so no loop.
    """
    if not looks or cases_today < cap:
        return ""
    return f"automatic-looking sender ({looks}) already opened {cases_today} case(s) today: cap {cap}"


# ---------------------------------------------------------------------------- defang

_DOT = "[.\u3002\uff0e\uff61]"     # . and the ideographic / fullwidth dots clients also accept
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:{_DOT}{_LABEL})+"
_SCHEME = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,15})\s*:\s*//([^\s/?#\\]*)", re.I)
_BARE_SCHEME = re.compile(r"\b(mailto|javascript|data|tel|sms|callto|file|vbscript)\s*:", re.I)
_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~.-")
_AT = re.compile("[@\uff20]")
_HOST_AFTER_AT = re.compile(rf"[ \t]*({_HOST})")
_HOSTLIKE = re.compile(rf"(?<![A-Za-z0-9-])({_HOST})(?![A-Za-z0-9-])")
# a host in any script ("กรมสรรพากร.ไทย", "пример.рф"): labels of letters, marks and digits
_IDN_CHAR = r"[^\s.\u3002\uff0e\uff61/\\?#@:;,()\[\]<>\"'!*&=+%|^~`{}$]"
_IDNLIKE = re.compile(rf"(?<![^\s(\[<\"'/])({_IDN_CHAR}+(?:{_DOT}{_IDN_CHAR}+)+)")
_INERT_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "ftps": "fxps", "sftp": "sfxp"}
# last labels of file names people write in subjects: not domains, left as they are
FILE_EXTENSIONS = frozenset({
    "pdf", "doc", "docx", "xls", "xlsx", "xlsm", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
    "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "heic", "webp", "jfif",
})


# "Mr.Somchai" in a sender name is a name, not a domain
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "st", "sr", "jr", "khun"})


def defang_filename(name: str) -> str:
    """A file name echoed back: its stem made inert as ``defang`` does, so "evil-pay.com.pdf" or
    "กรมสรรพากร.ไทย.pdf" is no link either; the extension kept."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10 or not ext.isalnum():
        return defang(name)
    return f"{defang(stem)}.{ext}"


def _dots(host: str) -> str:
    return re.sub(rf"(?<!\[){_DOT}(?!\])", "[.]", host)


def _addresses(text: str) -> str:
    """Every "local@host" as "local[at]host[.]..."; found from each "@" (linear in the text length)."""
    out: list[str] = []
    done = 0
    for at in _AT.finditer(text):
        i = at.start()
        if i < done:
            continue
        j = i
        while j > done and text[j - 1] in " \t":
            j -= 1
        k = j
        while k > done and j - k < 64 and text[k - 1] in _LOCAL_CHARS:
            k -= 1
        host = _HOST_AFTER_AT.match(text, i + 1, min(len(text), i + 1 + 300))
        if k == j or host is None:
            continue
        out.append(text[done:j])
        out.append("[at]" + _dots(host.group(1)))
        done = host.end()
    out.append(text[done:])
    return "".join(out)


def defang(text: str) -> str:
    """The text with every link and e-mail address made inert.

    ``https://refund-rd-go-th.example/login`` -> ``hxxps://refund-rd-go-th[.]example/login``;
    ``refund-rd-go-th.example/login`` -> ``refund-rd-go-th[.]example/login``; ``www.x.example`` ->
    ``www[.]x[.]example``; ``somchai@example.com`` -> ``somchai[at]example[.]com``; ``mailto:`` ->
    ``mailto[:]``. File names ("แบบ ข.1.pdf") and Thai abbreviations ("ธ.ค.") are left alone.
    Idempotent.
    """
    if not text:
        return text or ""

    def scheme(m: re.Match[str]) -> str:
        word = m.group(1)
        where = _dots(m.group(2))          # any script: "https://ราชการ.ไทย" too
        inert = _INERT_SCHEMES.get(word.lower())
        if inert is not None:
            return (inert.upper() if word.isupper() else inert) + "://" + where
        if word.lower() in ("hxxp", "hxxps", "fxp", "fxps", "sfxp"):
            return f"{word}://{where}"
        return f"{word}[:]//{where}"

    text = _SCHEME.sub(scheme, text)
    text = _BARE_SCHEME.sub(lambda m: f"{m.group(1)}[:]", text)
    text = _addresses(text)

    def host(m: re.Match[str]) -> str:
        name = m.group(1)
        last = re.split(_DOT, name)[-1].lower()
        after = text[m.end(): m.end() + 2]
        before = text[max(0, m.start() - 3): m.start()]
        if before == "://" or after[:1] in ("/", "?", "#") or re.match(r":\d", after):
            return _dots(name)                                   # a host with a scheme, path or port
        first = re.split(_DOT, name)[0].lower()
        if (any(c.isalpha() for c in last) and len(last) >= 2 and last not in FILE_EXTENSIONS
                and first not in _TITLES):
            return _dots(name)                                   # a bare domain
        return name                                              # 1.5, v2.0, report.pdf, Mr.Somchai

    text = _HOSTLIKE.sub(host, text)

    def idn(m: re.Match[str]) -> str:
        name = m.group(1)
        labels = re.split(_DOT, name)
        last = labels[-1]
        if (name.isascii() or any(len(label) < 2 for label in labels)   # ASCII: above; ธ.ค., พ.ร.บ., อ.เมือง
                or any(c.isdigit() for c in last) or last.lower() in FILE_EXTENSIONS):
            return name
        return _dots(name)

    return _IDNLIKE.sub(idn, text)


# ---------------------------------------------------------------------------- register notes

SEP = "; "
# notes mailbot writes over and over; folded into "สอบถามสถานะ ×9 (ล่าสุด 3 ธ.ค. 2569)"
ROUTINE = ("สอบถามสถานะ", "ติดตาม/ส่งเพิ่มเติม")
_SHORT_DATE = r"\d{1,2} (?:" + "|".join(re.escape(m) for m in THAI_MONTHS_SHORT) + r") \d{4}"
_ROUTINE_ONE = re.compile(rf"^(?P<label>{'|'.join(map(re.escape, ROUTINE))}) (?P<date>{_SHORT_DATE})(?P<rest>.*)$")
_ROUTINE_FOLDED = re.compile(
    rf"^(?P<key>(?:{'|'.join(map(re.escape, ROUTINE))}).*?) ×(?P<n>\d+) \(ล่าสุด (?P<date>{_SHORT_DATE})\)$")


def _routine(note: str) -> tuple[str, int, str] | None:
    """(fold key, count, latest date) of a routine note, folded or not; None for anything else."""
    m = _ROUTINE_FOLDED.match(note)
    if m:
        return m["key"], int(m["n"]), m["date"]
    m = _ROUTINE_ONE.match(note)
    if m:
        return (m["label"] + m["rest"]).strip(), 1, m["date"]
    return None


def add_note(old: str | None, note: str, limit: int = 8) -> str:
    """The register's หมายเหตุ / การปฏิบัติ with one more note; replaces ``cases.append_note``.

    Nothing but routine notes (ROUTINE: status inquiries, follow-ups) is ever folded, and those
    are folded, not dropped: repeats with the same wording become one entry, "สอบถามสถานะ
    (ผู้อื่น) ×9 (ล่าสุด 3 ธ.ค. 2569)", standing where the latest one was. Every other note (a
    warning such as "flagged: dkim=fail", a bounce, a status change, an officer's note) is kept
    for good. ``limit`` is accepted for compatibility and ignored.
    """
    parts = [p for p in (old or "").split(SEP) if p.strip()]
    if note and note.strip():
        parts.append(note.strip())
    counts: dict[str, int] = {}
    latest: dict[str, str] = {}
    last_at: dict[str, int] = {}
    for i, part in enumerate(parts):
        r = _routine(part)
        if r is None:
            continue
        key, n, when = r
        counts[key] = counts.get(key, 0) + n
        latest[key] = when
        last_at[key] = i
    out = []
    for i, part in enumerate(parts):
        r = _routine(part)
        if r is None:
            out.append(part)
        elif last_at[r[0]] == i:
            key = r[0]
            if counts[key] == 1:
                out.append(part)
            else:
                out.append(f"{key} ×{counts[key]} (ล่าสุด {latest[key]})")
    return SEP.join(out)
