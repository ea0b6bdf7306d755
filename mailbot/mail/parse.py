"""Parse (pure): raw message bytes -> ``Letter``.

Owns: decoding headers and bodies in any charset (through ``charsets``), the reply address,
threading headers, attachment names made safe, the signals that mark automatic mail, and the
content hash used to recognise the same message delivered twice. Never raises for bad input
except ``Unparseable`` (the pipeline quarantines on it). No I/O.
"""
from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message

from ..thai import clean_text
from . import charsets

charsets.register()

MAX_BODY_CHARS = 20_000
MAX_PARTS = 1000          # a message with more MIME parts is read up to here (10,000 parts take ~15 s)
MAX_NAME_CHARS = 120

# Headers added in transit: two deliveries of one message differ only in these.
TRACE_HEADERS = frozenset(
    {
        "received", "return-path", "delivered-to", "x-original-to", "x-received",
        "authentication-results", "received-spf", "arc-seal", "arc-message-signature",
        "arc-authentication-results", "x-spam-status", "x-spam-score", "x-spam-flag",
        "x-spam-level", "x-virus-scanned", "x-envelope-from", "x-envelope-to",
        "x-delivered-to", "x-rcpt-to",
    }
)

_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I)
# local parts that never belong to a person; checked after "+tag" and trailing digits are cut off
# ("noreply+abc", "noreply123", "bounces+123", "no-reply-2")
_NOREPLY_WORD = r"(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|no[-_.]?response|bounces?)"
_NOREPLY = re.compile(rf"^(?:{_NOREPLY_WORD}|{_NOREPLY_WORD}[-_.].*|.*[-_.]{_NOREPLY_WORD})$", re.I)
_AUTOMATIC_LOCALPARTS = {"mailer-daemon", "postmaster", "mailerdaemon", "mailer_daemon"}
# subjects that only automatic mail starts with (auto-replies in the languages Thai offices meet, bounces);
# the colon is optional only for phrases no person starts a request with
_AUTO_PHRASES = (
    r"(?:automatic\s+reply|auto(?:matic)?[-_ ]?(?:reply|response)|autoreply|auto|out\s+of\s+(?:the\s+)?office"
    r"(?:\s+(?:reply|autoreply|notice))?|(?:การ|ข้อความ)?ตอบกลับอัตโนมัติ|ข้อความอัตโนมัติ|ไม่อยู่ที่สำนักงาน"
    r"|r[ée]ponse\s+automatique|automatische\s+antwort|respuesta\s+autom[áa]tica|自动回复|自動応答"
    r"|undeliverable|undelivered\s+mail|delivery\s+status\s+notification|mail\s+delivery\s+(?:failed|failure)"
    r"|returned\s+mail|failure\s+notice|delivery\s+failure)\s*[:：]"
)
_AUTO_PHRASES_ALONE = (
    r"(?:automatic\s+reply|out\s+of\s+(?:the\s+)?office|(?:การ)?ตอบกลับอัตโนมัติ|undelivered\s+mail\s+returned\s+to\s+sender"
    r"|delivery\s+status\s+notification\s*\(failure\))(?![\w\u0e00-\u0e7f])"
)
_AUTO_SUBJECT = re.compile(r"^\s*(?:" + _AUTO_PHRASES + "|" + _AUTO_PHRASES_ALONE + ")", re.I)
# after a reply prefix only the form with a colon counts: "Re: Automatic reply settings" is a person
_AUTO_SUBJECT_COLON = re.compile(r"^\s*" + _AUTO_PHRASES, re.I)
_COMMENT = re.compile(r"\([^()]*\)")
# headers the receiving servers add with their verdicts; kept on the Letter for trust.screen
TRUST_HEADERS = frozenset({
    "received",    # where the receiving server's own headers end (RFC 8601 section 5)
    "authentication-results", "x-spam-flag", "x-spam-status", "x-spam-score", "x-rspamd-score",
    "x-spamd-result", "x-ms-exchange-organization-scl", "x-forefront-antispam-report",
})
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9\u00a0-\uffff.-]+\.[A-Za-z\u00a0-\uffff]{2,}$")
_MSGID = re.compile(r"<[^<>\s]+>")


class Unparseable(Exception):
    """The bytes are not an email message we can work with; the reason says why."""


@dataclass(frozen=True)
class Attachment:
    name: str           # safe to show and to use as a file name
    original_name: str  # as decoded from the message, for the officer
    content_type: str
    size: int
    inline: bool = False  # shown inside the body (signature logos): not a document


@dataclass(frozen=True)
class Letter:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_addr: str | None
    from_name: str
    reply_to: str | None          # where an answer goes: Reply-To, else From (None: unusable)
    to: tuple[str, ...]
    date: datetime | None
    body_text: str
    new_text: str                 # body without quoted lines: what the sender wrote now
    attachments: tuple[Attachment, ...]
    auto_signals: tuple[str, ...]  # non-empty means automatic mail
    content_hash: str
    size: int
    defects: tuple[str, ...] = field(default_factory=tuple)
    embedded: bytes | None = None  # the first attached message (message/rfc822), as bytes
    auth_failures: tuple[str, ...] = ()   # "spf=fail", "dkim=fail", "dmarc=fail" from Authentication-Results
    loops: tuple[str, ...] = ()           # X-Loop values: automatic when one names our own address (trust.py)
    # the receiving side's verdict headers (Authentication-Results, X-Spam-*, rspamd, Microsoft SCL) as
    # (lower-case name, unfolded value), in header order; read by trust.screen with the configured authserv-id
    trust_headers: tuple[tuple[str, str], ...] = ()
    # a From display name that shows an address other than the sender's ("owner@x <stranger@y>"): that address
    from_display_address: str = ""


# ---------------------------------------------------------------------------- helpers

def _text_header(msg: Message, name: str) -> str:
    """An unstructured header (Subject) decoded through our charset map.

    Not through policy.default: it decodes ``=?TIS-620?...?=`` with Python's strict tis-620
    codec, turning the cp874 quotes Thai clients put there into control characters.
    """
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    raw = re.sub(r"\r?\n[ \t]", " ", _fix_surrogates(raw))
    return _lenient_decode(raw)


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return value if isinstance(value, str) else str(value)
    return None


def _lenient_decode(raw: str) -> str:
    """RFC 2047 decode that survives bad charsets and broken encoded-words."""
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return raw
    out = []
    for chunk, cs in parts:
        if isinstance(chunk, bytes):
            out.append(charsets.decode_bytes(chunk, cs))
        else:
            out.append(chunk)
    return "".join(out)


def _fix_surrogates(text: str) -> str:
    """Undecodable bytes come out of the stdlib as surrogates; re-decode them as Thai."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    raw = text.encode("utf-8", errors="surrogateescape")
    return charsets.decode_bytes(raw)


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs, decoded from the raw header.

    Not through policy.default's address parser: it inserts a space between adjacent
    encoded-words inside a display name (RFC 2047 says to drop it), which splits Thai names
    whose encoded-words break mid-syllable ("เทศบาลตำบลบ้านต ัวอย่าง").
    """
    pairs: list[tuple[str, str]] = []
    for key, value in msg.raw_items():
        if key.lower() != name.lower():
            continue
        raw = _fix_surrogates(str(value))
        raw = re.sub(r"\r?\n[ \t]", " ", raw)
        for display, addr in mailboxes(raw):
            pairs.append((_lenient_decode(display).strip(), addr.strip()))
    return pairs


def mailboxes(raw: str) -> list[tuple[str, str]]:
    """(display name, address) of each mailbox in an address header (RFC 5322 3.4), read the way
    mail servers and DMARC read it: the address is the one in angle brackets, whatever the
    display name says ("owner@example.com <stranger@evil.example>" is stranger@evil.example).

    Not ``email.utils.getaddresses``: before the CVE-2023-27043 fix (Python 3.11.4 and older
    3.11 patch levels) it splits that header into two addresses and the first one wins; after
    it, it gives up on it. Quoted strings, comments and groups ("Undisclosed:;") are honoured."""
    parts: list[str] = []
    notes: list[str] = []          # each part's comment text: "a@b.c (Somchai)" names Somchai
    cur: list[str] = []
    note: list[str] = []
    quoted, angle, comment = False, 0, 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if quoted:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(raw):
                cur.append(raw[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif comment:
            if ch == "\\" and i + 1 < len(raw):
                note.append(raw[i + 1])
                i += 1
            elif ch == "(":
                comment += 1
            elif ch == ")":
                comment -= 1
            else:
                note.append(ch)
        elif ch == '"':
            quoted = True
            cur.append(ch)
        elif ch == "(":
            comment = 1
        elif ch == "<":
            angle += 1
            cur.append(ch)
        elif ch == ">":
            angle = max(0, angle - 1)
            cur.append(ch)
        elif ch in ",;" and not angle:
            parts.append("".join(cur))
            notes.append("".join(note))
            cur, note = [], []
        elif ch == ":" and not angle and "@" not in "".join(cur):   # a group's name: dropped
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    notes.append("".join(note))
    out: list[tuple[str, str]] = []
    for part, comment_text in zip(parts, notes):
        part = part.strip()
        if not part:
            continue
        m = re.search(r'<([^<>]*)>\s*$', part) or re.search(r'<([^<>]*)>', part)
        if m:
            display, addr = part[: m.start()].strip(), m.group(1).strip()
        else:
            display, addr = comment_text.strip(), part
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = re.sub(r'\\(.)', r"\1", display[1:-1])
        out.append((display, addr))
    return out


_SHOWN_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"']+@[A-Za-z0-9\u00a0-\uffff-]+(?:\.[A-Za-z0-9\u00a0-\uffff-]+)+")


def display_address(display: str, addr: str | None) -> str:
    """An address a display name shows that is not the sender's own, or "" (a spoofing sign)."""
    for shown in _SHOWN_ADDRESS.findall(display or ""):
        if shown.strip(".").lower() != (addr or "").strip().lower():
            return shown.strip(".")
    return ""


def usable_address(addr: str | None) -> str | None:
    """The address if a reply could be delivered to it, else None."""
    if not addr:
        return None
    addr = addr.strip().strip("<>").strip()
    if len(addr) > 254 or not _ADDRESS.match(addr):
        return None
    return addr


def _message_ids(value: str | None) -> tuple[str, ...]:
    """Message-IDs, lower-cased; 8-bit bytes in them (surrogates from the parser) decoded, so
    every ID is plain text that can be stored and compared."""
    if not value:
        return ()
    value = _fix_surrogates(value)
    return tuple(dict.fromkeys(m.lower() for m in _MSGID.findall(value)))


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A file name that cannot escape a folder or upset Windows: no path parts, no
    reserved device names, no control or bidi characters, length capped."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").split("/")[-1]
    name = "".join(
        ch for ch in name
        if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*'
    )
    name = clean_text(name).strip().strip(".").strip()
    if not name or name in {".", ".."}:
        name = fallback
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name


_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{16,}={0,2}\r?\n", re.M)

# base64 as mail carries it: 57 bytes a line become 76 characters and a line end (CRLF)
BASE64_GROWTH = 78 / 57


def size_people_see(raw: bytes) -> int:
    """About how big the message is as its sender saw it (the files in their folder): base64 lines
    counted as the bytes they decode to, everything else as it is. A 27 MB attachment travels as
    ~37 MB; this says ~27."""
    encoded = decoded = 0
    for m in _BASE64_LINE.finditer(raw):
        line = m.group(0)
        encoded += len(line)
        decoded += len(line.rstrip(b"\r\n")) * 3 // 4
    return len(raw) - encoded + decoded


def content_hash(raw: bytes) -> str:
    """SHA-256 over the message without the trace headers added in transit.

    Header names are lower-cased and folding undone; line endings normalised to CRLF. The body
    is hashed where it lies: in place when it is CRLF-only (what IMAP servers return), else
    256 KB at a time, so that no copy of a message of tens of megabytes is made.
    """
    begin = 0
    if raw.startswith(b"From ") and b"\n" in raw:  # mbox separator line
        begin = raw.index(b"\n") + 1
    end = raw.find(b"\r\n\r\n", begin)
    # every LF part of a CRLF (then no LF LF either: the second LF would follow an LF, not a CR)
    crlf_only = end >= 0 and raw.count(b"\n", begin) == raw.count(b"\r\n", begin)
    if crlf_only:
        head, body_start = raw[begin:end].replace(b"\r\n", b"\n"), end + 4
    else:
        blank = _BLANK_LINE.search(raw, begin)
        if blank:
            head, body_start = raw[begin:blank.start()].replace(b"\r\n", b"\n"), blank.end()
        else:
            head, body_start = raw[begin:].replace(b"\r\n", b"\n"), len(raw)
    lines: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b" " + line.strip()
        else:
            lines.append(line.rstrip())
    h = hashlib.sha256()
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower().decode("latin-1") in TRACE_HEADERS:
            continue
        h.update(name.strip().lower() + b":" + b" ".join(value.split()) + b"\r\n")
    h.update(b"\r\n")
    if crlf_only:
        stop = len(raw)
        while stop - 2 >= body_start and raw[stop - 2:stop] == b"\r\n":
            stop -= 2
        h.update(memoryview(raw)[body_start:stop])
        return h.hexdigest()
    stop = len(raw)                          # the body without its trailing line breaks
    while stop > body_start and raw[stop - 1:stop] == b"\n":
        stop -= 2 if stop - 2 >= body_start and raw[stop - 2:stop] == b"\r\n" else 1
    at = body_start
    while at < stop:                         # LF or mixed line endings: CRLF, 256 KB at a time
        upto = min(stop, at + (1 << 18))
        if upto < stop and raw[upto - 1:upto + 1] == b"\r\n":
            upto += 1                        # never cut between the CR and LF of one line end
        h.update(raw[at:upto].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        at = upto
    return h.hexdigest()


# the end of a message's header: the first empty line, whichever line endings it uses
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


SHRINK_OVER = 256 * 1024     # base64 attachment bodies larger than this are not fed to the parser
SIZE_HEADER = "X-Mailbot-Decoded-Size"
_NOT_DATA = b"\r\n \t="       # in a base64 body: what decodes to nothing
_CHUNK = 1 << 18
_BOUNDARY = re.compile(rb'boundary\s*=\s*"?([^";\r\n]+)"?', re.I)
_B64 = re.compile(rb"^content-transfer-encoding:\s*base64\s*$", re.I | re.M)
_CONTAINER = re.compile(rb"^content-type:\s*(multipart|message|text)/", re.I | re.M)


class _Message(EmailMessage):
    """The stdlib's message, with its content type read once for each distinct header value.

    ``get_content_type`` parses the Content-Type header with the full header parser on every
    call, and the parser and mailbot ask a part for it a dozen times: a third of the time of
    reading a message went there. The answer depends only on the header's raw text and the
    default type, so it is kept by those (the same answer, not an approximation)."""

    def get_content_type(self) -> str:
        raw = _raw_content_type(self)
        if raw is None:
            return super().get_content_type()
        key = (raw, self.get_default_type())
        found = _CONTENT_TYPES.get(key)
        if found is None:
            found = super().get_content_type()
            if len(_CONTENT_TYPES) > 4096:
                _CONTENT_TYPES.clear()
            _CONTENT_TYPES[key] = found
        return found


def _raw_content_type(msg: EmailMessage) -> str | None:
    # the text as it came (the stdlib makes the header object only when it is read)
    for name, value in msg._headers:  # type: ignore[attr-defined]
        if name.lower() == "content-type":
            return value if isinstance(value, str) else None
    return None


_CONTENT_TYPES: dict[tuple[str, str], str] = {}
_READING = policy.default.clone(message_factory=_Message)


def _part_spans(raw: bytes) -> list[tuple[int, int]]:
    """Where ``raw`` is cut at its MIME boundary lines: the (start, end) offsets of
    [text, delimiter line, text, delimiter line, ...], so that a caller need not copy the text.

    The boundaries are the ``boundary=`` parameters found anywhere (``bytes.find``, without a
    lower-case copy of a message that may be tens of megabytes); a delimiter is a line that starts with ``--`` and one of them, then
    optionally ``--`` and blanks. Found with ``bytes.find`` rather than one multi-line regular
    expression over the whole message: the same cuts, in a tenth of the time on megabytes of
    base64 (what ``mail.parse`` spends most on before the stdlib parser sees the message)."""
    names: set[bytes] = set()
    for word in (b"oundary", b"OUNDARY"):     # "boundary", "Boundary", "BOUNDARY": no lower-case copy
        at = raw.find(word, 1)
        while at != -1:
            m = _BOUNDARY.match(raw, at - 1)
            if m:
                names.add(m.group(1).strip())
            at = raw.find(word, at + 7)
    cuts: list[tuple[int, int]] = []
    for name in names:
        mark = b"--" + name
        at = raw.find(mark)
        while at != -1:
            if at == 0 or raw[at - 1:at] == b"\n":
                end = raw.find(b"\n", at)
                end = len(raw) if end == -1 else end
                line = raw[at:end]
                rest = line[len(mark):].rstrip(b"\r")
                if rest.startswith(b"--"):
                    rest = rest[2:]
                if not rest.strip(b" \t") and not rest[:1].isalnum():
                    cuts.append((at, end))          # the line without its \n (with a \r, as before)
            at = raw.find(mark, at + len(mark))
    spans: list[tuple[int, int]] = []
    last = 0
    for start, end in sorted(set(cuts)):
        if start < last:          # one boundary the start of another's line: the longer one was cut
            continue
        spans += [(last, start), (start, end)]
        last = end
    spans.append((last, len(raw)))
    return spans


def _split_parts(raw: bytes) -> list[bytes]:
    """``raw`` cut at its MIME boundary lines: [text, delimiter line, text, delimiter line, ...]."""
    return [raw[start:end] for start, end in _part_spans(raw)]


def shrink(raw: bytes) -> bytes:
    """The message with large base64 attachment bodies left out, for the parser's sake.

    The stdlib parser handles a 25 MB attachment line by line (~80 ms/MB and ~4x its size in
    memory) although mailbot only needs its name and size. Each such body is replaced by nothing
    and its decoded size recorded in an X-Mailbot-Decoded-Size header of that part. The raw
    bytes themselves (archive, hash) are untouched. Anything unexpected: the message as it is.
    """
    if len(raw) < 2 * SHRINK_OVER:
        return raw
    try:
        out: list[bytes] = []
        kept = 0                                  # raw[kept:start] still to be copied out
        for i, (start, end) in enumerate(_part_spans(raw)):
            if i % 2 or i == 0 or end - start <= SHRINK_OVER:
                continue
            # a part's text, large: read its head and body by offsets, never as copies
            sep = b"\r\n\r\n"
            split = raw.find(sep, start, end)
            if split < 0:
                sep = b"\n\n"
                split = raw.find(sep, start, end)
            if split < 0:
                continue
            head = raw[start:split]
            if not _B64.search(head) or _CONTAINER.search(head):
                continue
            body_start = split + len(sep)
            # the characters that carry data: all but line breaks, blanks and padding; counted a
            # quarter megabyte at a time in one pass (``translate``), not in five passes of ``count``
            size = sum(len(raw[at:min(at + _CHUNK, end)].translate(None, _NOT_DATA))
                       for at in range(body_start, end, _CHUNK)) * 3 // 4
            newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
            out += [raw[kept:start], head + newline + SIZE_HEADER.encode() + b": %d" % size + sep + newline]
            kept = end
        if not out:
            return raw
        out.append(raw[kept:])
        return b"".join(out)
    except Exception:  # noqa: BLE001 - never worse than parsing the whole thing
        return raw


class _TextExtractor:
    """HTML to plain text for matching only; the HTML is never rendered or echoed."""

    _DROP = re.compile(r"<(script|style|head)[^>]*>.*?</\1\s*>", re.S | re.I)
    _BREAK = re.compile(r"<(br|/p|/div|/tr|/li|/h[1-6]|hr)[^>]*>", re.I)
    _TAGS = re.compile(r"<[^>]+>")

    @classmethod
    def text(cls, markup: str) -> str:
        markup = cls._BREAK.sub("\n", cls._DROP.sub(" ", markup))
        text = html.unescape(cls._TAGS.sub("", markup)).replace("\xa0", " ")
        return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _part_text(part: Message) -> str:
    try:
        decoded = part.get_payload(decode=True)   # bytes, or None for a multipart
    except Exception:
        decoded = None
    if isinstance(decoded, bytes):
        payload = decoded
    else:
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        label = part.get_content_charset()
    except Exception:
        label = None
    return charsets.decode_bytes(payload, label)


_QUOTE_HEADER = re.compile(
    r"^(on .+wrote:|เมื่อ .+เขียนว่า:?|-----\s*original message\s*-----|from:\s.+|จาก:\s.+|"
    r"_{10,})\s*$",
    re.I,
)


def strip_quoted(text: str) -> str:
    """What the sender wrote now: quoted lines ('>') and a quoted original removed."""
    kept = []
    for line in text.splitlines():
        if _QUOTE_HEADER.match(line.strip()):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


# ---------------------------------------------------------------------------- main

def parse(raw: bytes) -> Letter:
    """Turn raw bytes into a Letter. Raises ``Unparseable`` only for non-messages."""
    if not raw or raw.isspace():        # (not raw.strip(): a copy of a message of tens of megabytes)
        raise Unparseable("empty message / ข้อความว่าง")
    data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    if data.startswith(b"From ") and b"\n" in data[:2000]:
        data = data.split(b"\n", 1)[1]
    try:
        msg = email.message_from_bytes(shrink(data), policy=_READING)
    except Exception as exc:  # the feed parser itself failed
        raise Unparseable(f"MIME parser failed: {type(exc).__name__}") from exc
    if not msg.keys():
        raise Unparseable("no headers / ไม่มีส่วนหัวอีเมล")

    defects = [type(d).__name__ for d in getattr(msg, "defects", [])]

    subject = clean_text(_text_header(msg, "Subject"))
    subject = " ".join(subject.split())

    from_pairs = _addresses(msg, "From")
    from_name, raw_from = (from_pairs[0] if from_pairs else ("", ""))
    from_name = clean_text(_fix_surrogates(from_name))
    from_addr = usable_address(raw_from) or (raw_from or None)
    reply_pairs = _addresses(msg, "Reply-To")
    reply_to = None
    for _, addr in reply_pairs:
        reply_to = usable_address(addr)
        if reply_to:
            break
    if reply_to is None:
        reply_to = usable_address(from_addr)
    to = tuple(a for _, a in _addresses(msg, "To") + _addresses(msg, "Cc") if a)

    date = None
    try:
        date_hdr = msg.get("Date")
        date = getattr(date_hdr, "datetime", None)
    except Exception:
        date = None

    message_id = None
    mids = _message_ids(_raw_header(msg, "Message-ID"))
    if mids:
        message_id = mids[0]

    body_text, attachments, embedded = _walk(msg, defects)

    return Letter(
        message_id=message_id,
        in_reply_to=_message_ids(_raw_header(msg, "In-Reply-To")),
        references=_message_ids(_raw_header(msg, "References")),
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to,
        to=to,
        date=date,
        body_text=body_text,
        new_text=strip_quoted(body_text),
        attachments=tuple(attachments),
        auto_signals=tuple(_auto_signals(msg, from_addr, subject, tuple(a for _, a in reply_pairs))),
        content_hash=content_hash(raw),
        size=len(raw),
        defects=tuple(defects),
        embedded=embedded,
        auth_failures=auth_failures(msg),
        loops=tuple(v for v in (_unfold(v) for k, v in msg.raw_items() if k.lower() == "x-loop") if v),
        trust_headers=tuple((k.lower(), _unfold(v)) for k, v in msg.raw_items() if k.lower() in TRUST_HEADERS),
        from_display_address=display_address(from_name, from_addr),
    )


def _walk(msg: Message, defects: list[str]) -> tuple[str, list[Attachment], bytes | None]:
    plain: list[str] = []
    embedded: bytes | None = None
    htmls: list[str] = []
    attachments: list[Attachment] = []
    try:
        parts = list(msg.walk())
    except RecursionError:
        defects.append("NestingTooDeep")
        parts = [msg]
    if len(parts) > MAX_PARTS:
        defects.append(f"TooManyParts:{len(parts)}")
        parts = parts[:MAX_PARTS]
    inside: set[int] = set()   # parts of an attached message belong to it, not to this letter
    for part in parts:
        if id(part) in inside:
            continue
        try:
            if part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(inner, Message):
                    inside.update(id(p) for p in inner.walk())
                    if embedded is None:
                        try:
                            embedded = inner.as_bytes(policy=policy.default.clone(linesep="\r\n"))
                        except Exception:
                            embedded = None
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            disposition = (part.get_content_disposition() or "").lower()
            filename = None
            try:
                filename = part.get_filename()
            except Exception:
                raw = part.get_param("filename", header="content-disposition") or part.get_param("name")
                filename = _lenient_decode(str(raw)) if raw else None
            if filename is not None:
                filename = _fix_surrogates(str(filename))
            if disposition == "attachment" or filename or ctype in ("message/rfc822",) or (
                not ctype.startswith("text/") and not ctype.startswith("multipart/")
            ):
                if ctype == "message/delivery-status" or ctype.startswith("message/") and not filename and ctype != "message/rfc822":
                    continue
                known = part.get(SIZE_HEADER)
                try:
                    if known is not None:
                        size = int(str(known))
                    else:
                        payload = part.get_payload(decode=True)
                        size = len(payload) if payload is not None else len(str(part.get_payload()))
                except Exception:
                    size = 0
                original = filename or ""
                attachments.append(
                    Attachment(
                        name=safe_filename(original, fallback=f"attachment-{len(attachments) + 1}"),
                        original_name=original,
                        content_type=ctype,
                        size=size,
                        inline=disposition == "inline" or (disposition == "" and part.get("Content-ID") is not None
                                                          and not filename),
                    )
                )
            elif ctype == "text/plain":
                plain.append(_part_text(part))
            elif ctype == "text/html":
                htmls.append(_part_text(part))
        except Exception as exc:  # one bad part never spoils the message
            defects.append(f"PartError:{type(exc).__name__}")
    if plain:
        text = "\n".join(plain)
    elif htmls:
        text = _TextExtractor.text("\n".join(htmls))
    else:
        text = ""
    text = clean_text(text.replace("\x00", ""))[:MAX_BODY_CHARS]
    return text, attachments, embedded


def without_pdfs(raw: bytes, note: str) -> bytes:
    """The message with each attached PDF (outside attached messages) replaced by a short text
    part saying ``note`` and the file's name: what a forward attaches when the stamped copies of
    those PDFs travel beside it, so the forward is not twice the request's size. The raw bytes
    themselves when nothing is replaced or the message cannot be read."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001
        return raw
    from email.mime.text import MIMEText

    replaced = 0

    def walk(part: Message) -> None:
        nonlocal replaced
        if not part.is_multipart():
            return
        payload = part.get_payload()
        if not isinstance(payload, list):
            return
        for i, child in enumerate(payload):
            if child.get_content_type() == "message/rfc822":
                continue
            if child.is_multipart():
                walk(child)
                continue
            name = _fix_surrogates(str(child.get_filename() or ""))
            if child.get_content_type() == "application/pdf" or name.lower().endswith(".pdf"):
                payload[i] = MIMEText(f"{note}: {name}", "plain", "utf-8")
                replaced += 1

    try:
        walk(msg)
        return msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n")) if replaced else raw
    except Exception:  # noqa: BLE001 - a message the library cannot write back: sent as it came
        return raw


def pdf_attachments(raw: bytes, limit: int = 20) -> list[tuple[str, bytes]]:
    """The PDF files attached to a message, decoded (safe names), for the stamped copies that
    go to an internal unit; at most ``limit``. Attached messages are not opened."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        parts = list(msg.walk())[:MAX_PARTS]
    except Exception:  # noqa: BLE001 - an unreadable message has no files to stamp
        return []
    out: list[tuple[str, bytes]] = []
    inside: set[int] = set()
    for part in parts:
        if id(part) in inside or len(out) >= limit:
            continue
        try:
            if part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                for m in inner if isinstance(inner, list) else [inner]:
                    if isinstance(m, Message):
                        inside.update(id(p) for p in m.walk())
                continue
            if part.is_multipart():
                continue
            name = _fix_surrogates(str(part.get_filename() or ""))
            if part.get_content_type() != "application/pdf" and not name.lower().endswith(".pdf"):
                continue
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                out.append((safe_filename(name, fallback=f"document-{len(out) + 1}.pdf"), data))
        except Exception:  # noqa: BLE001 - one bad part never spoils the others
            continue
    return out


_AUTH_FAIL = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*(fail|softfail|permerror)\b", re.I)
_OUR_IDS = re.compile(rb"<mailbot\.[a-z_]+\.[0-9]+\.[0-9a-f]+@[^>\s]+>", re.I)


def auth_failures(msg: Message) -> tuple[str, ...]:
    """What the receiving server's Authentication-Results say failed (spf, dkim, dmarc)."""
    found = []
    for key, value in msg.raw_items():
        if key.lower() == "authentication-results":
            for mech, result in _AUTH_FAIL.findall(str(value)):
                found.append(f"{mech.lower()}={result.lower()}")
    return tuple(dict.fromkeys(found))


def our_message_ids(raw: bytes) -> list[str]:
    """Message-IDs of mailbot's own messages quoted anywhere in a message (e.g. a bounce)."""
    return list(dict.fromkeys(m.decode("ascii", "replace").lower() for m in _OUR_IDS.findall(raw)))


def _unfold(value: object) -> str:
    return " ".join(_fix_surrogates(str(value)).split())


def no_reply_address(addr: str | None) -> str:
    """The normalised local part when an address is a no-reply or bounce mailbox, else ""."""
    if not addr or "@" not in addr:
        return ""
    local = addr.strip().strip("<>").rsplit("@", 1)[0].lower()
    base = local.split("+", 1)[0]            # sub-address: noreply+abc, bounces+123
    base = re.sub(r"[-_.]?\d+$", "", base)    # noreply123, no-reply-2
    if base in _AUTOMATIC_LOCALPARTS or local in _AUTOMATIC_LOCALPARTS:
        return base if base in _AUTOMATIC_LOCALPARTS else local
    if _NOREPLY.match(base) or _NOREPLY.match(local):
        return local
    return ""


def _auto_signals(msg: Message, from_addr: str | None, subject: str = "",
                  reply_to: tuple[str, ...] = ()) -> list[str]:
    """Why this message is automatic mail (RFC 3834 and common practice); empty if not.

    X-Loop is not judged here (it needs our own address): see ``Letter.loops`` and trust.py.
    """
    signals: list[str] = []

    def raw(name: str) -> str:
        value = _raw_header(msg, name)
        return _unfold(value or "")

    ctype = ""
    try:
        ctype = msg.get_content_type()
    except Exception:
        pass
    if ctype == "multipart/report":
        signals.append("multipart/report (delivery or read report)")
    auto = _COMMENT.sub(" ", raw("Auto-Submitted")).strip().lower()
    if auto and not auto.startswith("no"):
        signals.append(f"Auto-Submitted: {auto[:40]}")
    rp = _raw_header(msg, "Return-Path")
    if rp is not None and rp.strip().replace(" ", "") in ("<>", ""):
        signals.append("Return-Path: <> (null sender)")
    prec = (_COMMENT.sub(" ", raw("Precedence")).split() or [""])[0].lower()   # "bulk (list)" -> bulk
    if prec in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
        signals.append(f"Precedence: {prec}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe",
                 "X-MS-Exchange-Inbox-Rules-Loop", "X-Failed-Recipients"):
        if _raw_header(msg, name) is not None:
            signals.append(f"{name} present")
    generated = raw("X-Autogenerated")
    if generated:
        signals.append(f"X-Autogenerated: {generated[:20]}")
    if from_addr:
        local = from_addr.split("@")[0].lower()
        why = no_reply_address(from_addr)
        if why in _AUTOMATIC_LOCALPARTS:
            signals.append(f"sender {why}")
        elif why:
            signals.append(f"no-reply sender {local}")
    for addr in reply_to:
        if no_reply_address(addr):
            signals.append(f"Reply-To: no-reply address {addr.split('@')[0].lower()}")
            break
    chain = subject_chain(subject or "")
    for part in chain:   # "RE: Automatic reply: ..." is an answer to an auto-reply
        m = _AUTO_SUBJECT.match(part) if part is chain[0] else _AUTO_SUBJECT_COLON.match(part)
        if m:
            signals.append(f"subject starts {m.group(0).strip()[:40]!r}"
                           + (f" (after {subject[: len(subject) - len(part)].strip()[:30]!r})" if part != subject else ""))
            break
    return signals


# what mail clients put before a subject they answer, in the languages Thai offices meet (not a forward's
# prefix: a person who forwards an auto-reply or a bounce to the office means it to be read)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:re|aw|sv|vs|antw|odp|ynt|回复|回覆|ตอบกลับ|ตอบ)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*", re.I)


def subject_chain(subject: str) -> list[str]:
    """The subject and what is left each time a reply prefix is taken off the front
    ("RE: Automatic reply: x" -> itself, "Automatic reply: x")."""
    out = [subject]
    while len(out) < 20:
        m = _REPLY_PREFIX.match(out[-1])
        if not m or not out[-1][m.end():]:
            break
        out.append(out[-1][m.end():])
    return out
