"""What keeps the console safe from the pages an officer opens and from the mail it shows.

Owns: the host names the console answers to (a DNS-rebinding page is refused), the same-origin
rule for every form sent (Origin, else Referer, must be the console itself) together with the
per-session CSRF token, the response headers (a strict Content-Security-Policy with no inline
script, no framing, no sniffing, no caching of citizens' data), text from citizens made safe to
show (bidirectional overrides and control characters removed; HTML is never rendered), and
download headers with a safe file name (RFC 6266 ``filename*``). Pure functions over strings.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
import socket
import unicodedata
from urllib.parse import quote, urlsplit

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "object-src 'none'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# a PDF preview is shown in a frame of the console's own page
FRAMEABLE = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
             "X-Frame-Options": "SAMEORIGIN"}

_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"), None)


def allowed_hosts(listen: str, port: int, extra: list[str] | tuple[str, ...] = ()) -> set[str]:
    """Host header values (lower case, with port) the console answers to: the loopback names,
    the listen address, and — when listening on all addresses — this computer's own names and
    addresses, plus ``console.hosts``."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    if listen not in ("0.0.0.0", "::", ""):
        names.add(f"[{listen}]" if ":" in listen else listen)
    else:
        try:
            host = socket.gethostname()
            names.update({host, socket.getfqdn()})
            for info in socket.getaddrinfo(host, None):
                addr = str(info[4][0])          # an IPv4 or IPv6 address (typeshed allows an int)
                names.add(f"[{addr}]" if ":" in addr else addr)
        except OSError:
            pass
    names.update(extra)
    return {f"{n.lower()}:{port}" for n in names if n}


def host_ok(host: str | None, allowed: set[str]) -> bool:
    return bool(host and host.lower() in allowed)


def origin_ok(origin: str | None, referer: str | None, host: str, scheme: str = "http") -> bool:
    """A form may only come from the console's own pages: its Origin (or, when a browser sends
    none, its Referer) must be this very scheme, host and port (https behind a host's proxy)."""
    own = f"{scheme}://{host.lower()}"
    if origin:
        return origin.lower() == own
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == own
    return False


def token_ok(sent: str | None, expected: str) -> bool:
    return bool(sent and hmac.compare_digest(sent.encode(), expected.encode()))


# Unicode's control characters (category Cc: U+0000-U+001F and U+007F-U+009F) but tab and line feed
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def citizen(text: object) -> str:
    """Text from a citizen, safe to show as text: no bidirectional overrides or isolates (they
    would reorder the page around it), no control characters except line breaks and tabs.
    Escaping HTML is the template's job (autoescape)."""
    if text is None:
        return ""
    return _CONTROL.sub("", str(text).translate(_BIDI))


def safe_download_name(name: str, fallback: str = "file") -> str:
    name = citizen(name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*;')
    name = name.strip().strip(".").strip() or fallback
    return name[:150]


def content_disposition(name: str, fallback: str = "file") -> str:
    """``attachment`` with an ASCII fallback name and the real one as RFC 6266 / RFC 5987
    ``filename*=UTF-8''...``."""
    name = safe_download_name(name, fallback)
    stem, dot, ext = name.rpartition(".")
    if not dot or not (ext.isascii() and ext.isalnum() and len(ext) <= 10):
        stem, ext = name, ""
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.-")
    if not re.search(r"[A-Za-z0-9]", ascii_stem):
        ascii_stem = fallback
    ascii_name = f"{ascii_stem}.{ext}" if ext else ascii_stem
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def same_site_path(value: str | None, default: str = "/") -> str:
    """Where sign-in may send the officer next: a path on this console, nothing else.

    Browsers drop tabs and line breaks inside a URL and read a backslash as a slash, so
    "/\t/evil.example" would become "//evil.example", another site: any control character,
    space or backslash, a scheme or a host, or a path not starting with exactly one "/" gives
    ``default``."""
    text = value or ""
    if (not text.startswith("/") or text.startswith("//") or len(text) > 2000
            or any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" or unicodedata.category(ch)[0] in "CZ"
                   for ch in text)):
        return default
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    return text


def throttle_key(name: str) -> str:
    """The account a sign-in names, as ``auth.verify`` reads it (NFC, any run of white space,
    U+3000 included, as one space, case ignored): every spelling of one name shares its count."""
    return unicodedata.normalize("NFC", " ".join((name or "").split())).casefold()
