"""Addresses (pure): whether a recipient address can be sent to, and in which form.

Owns: the checks made before an address goes into an SMTP envelope — no spaces, no-break
spaces, line or paragraph separators or other invisible characters inside it; an
internationalised domain (``somchai@ตัวอย่าง.ไทย``) turned into its ASCII A-label
(``xn--…``); a non-ASCII local part, which only a server offering SMTPUTF8 can take. No I/O.
"""
from __future__ import annotations

import unicodedata

UNSENDABLE = ("ที่อยู่อีเมลมีอักขระที่ส่งไม่ได้ (ช่องว่างหรืออักขระที่มองไม่เห็น)",
              "the address contains characters that cannot be sent (a space or an invisible character)")


def problem(address: str) -> tuple[str, str] | None:
    """Why this address can never be sent to (Thai, English), or None."""
    if not address or address.count("@") != 1:
        return ("ที่อยู่อีเมลไม่ถูกต้อง", "not a valid e-mail address")
    for ch in address:
        if ch in '<>()[],;:"\\' or unicodedata.category(ch)[0] in ("Z", "C"):
            return UNSENDABLE
    local, domain = address.rsplit("@", 1)
    if not local or not domain or "." not in domain or domain.startswith(".") or ".." in domain:
        return ("ที่อยู่อีเมลไม่ถูกต้อง", "not a valid e-mail address")
    if a_label(domain) is None:
        return ("ชื่อโดเมนของที่อยู่อีเมลแปลงเป็นรูปแบบที่ส่งได้ไม่ได้", "the address's domain cannot be encoded (IDNA)")
    return None


def a_label(domain: str) -> str | None:
    """The ASCII form of a domain (IDNA); None when it cannot be encoded."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None


def envelope_form(address: str, smtputf8: bool) -> tuple[str, bool] | None:
    """(address to put in the envelope, whether SMTPUTF8 is needed), or None when this server
    cannot take it: the domain goes out as its A-label unless SMTPUTF8 is used anyway for a
    non-ASCII local part."""
    local, domain = address.rsplit("@", 1)
    if local.isascii():
        ascii_domain = a_label(domain)
        return (f"{local}@{ascii_domain}", False) if ascii_domain else None
    if smtputf8:
        return address, True
    return None


def header_form(address: str) -> str:
    """The address as written in the To: header: ASCII where it can be (A-label domain)."""
    local, _, domain = address.rpartition("@")
    if local.isascii():
        ascii_domain = a_label(domain)
        if ascii_domain:
            return f"{local}@{ascii_domain}"
    return address
