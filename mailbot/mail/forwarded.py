"""Forwarded (pure): the citizen's original message inside a staff member's forward.

Owns: recognising a forward as an attached message/rfc822 or as an inline block written by
Outlook (English or Thai locale: "จาก:", "ส่ง:", "ถึง:", "เรื่อง:"), Gmail or Thunderbird, and
reading the original sender, subject and text from it. Returns None when the message holds
no recognisable forward; the caller then treats it as an ordinary message. No I/O.
"""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from .parse import Attachment, Letter, Unparseable, parse, usable_address

_SEPARATOR = re.compile(
    r"^\s*(?:-{3,}\s*(?:forwarded message|original message|forwarded message|ข้อความที่ส่งต่อ|ข้อความต้นฉบับ"
    r"|ข้อความเดิม)\s*-{3,}|_{10,})\s*$",
    re.IGNORECASE,
)
_KEYS = {
    "from": "from", "จาก": "from",
    "sent": "date", "date": "date", "ส่ง": "date", "วันที่": "date", "ส่งเมื่อ": "date",
    "to": "to", "ถึง": "to",
    "cc": "cc", "สำเนาถึง": "cc", "สำเนา": "cc",
    "subject": "subject", "เรื่อง": "subject", "หัวเรื่อง": "subject",
}
_HEADER_LINE = re.compile(r"^\s*\**\s*([^:\s*][^:]{0,15}?)\s*\**\s*:\s*(.*)$")
_PREFIX = re.compile(r"^\s*((fwd?|fw|tr|wg|ส่งต่อ|ตอบกลับ|re)\s*:\s*)+", re.IGNORECASE)
_MAILTO = re.compile(r"\[mailto:([^\]]+)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Original:
    from_name: str
    from_addr: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...]
    how: str                      # "message/rfc822" or "inline"


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject or "").strip()


def _sender(value: str) -> tuple[str, str | None]:
    value = value.strip()
    m = _MAILTO.search(value)
    if m:
        name = _MAILTO.sub("", value).strip().strip('"')
        return name, usable_address(m.group(1))
    name, parsed = email.utils.parseaddr(value)
    addr = usable_address(parsed)
    if addr is None:  # "Name" with the address somewhere else on the line
        found = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", value)
        addr = usable_address(found.group(0)) if found else None
        name = value.split("<")[0].strip().strip('"') if addr else value
    return name.strip().strip('"'), addr


def extract(letter: Letter, embedded: bytes | None) -> Original | None:
    """The original message a staff member forwarded, if there is one."""
    if embedded:
        try:
            inner = parse(embedded)
        except Unparseable:
            inner = None
        if inner is not None and inner.from_addr and usable_address(inner.from_addr):
            return Original(inner.from_name, inner.from_addr, inner.subject, inner.body_text,
                            inner.attachments, "message/rfc822")
    return _inline(letter)


def _inline(letter: Letter) -> Original | None:
    lines = letter.body_text.splitlines()
    for start, line in enumerate(lines):
        if not _SEPARATOR.match(line):
            if not _is_from_line(line) or (start and lines[start - 1].strip()):
                continue
            header_start = start            # Outlook/Thai Outlook without a separator line
        else:
            header_start = start + 1
        fields: dict[str, str] = {}
        i = header_start
        while i < len(lines) and not lines[i].strip():
            i += 1
        while i < len(lines) and lines[i].strip():
            m = _HEADER_LINE.match(lines[i])
            if not m or m.group(1).strip().lower() not in _KEYS:
                break
            fields.setdefault(_KEYS[m.group(1).strip().lower()], m.group(2).strip())
            i += 1
        if "from" not in fields:
            continue
        name, addr = _sender(fields["from"])
        if not addr:
            continue
        text = "\n".join(lines[i:]).strip()
        subject = fields.get("subject") or strip_prefixes(letter.subject)
        return Original(name, addr, subject, text, letter.attachments, "inline")
    return None


def _is_from_line(line: str) -> bool:
    m = _HEADER_LINE.match(line)
    return m is not None and _KEYS.get(m.group(1).strip().lower()) == "from"
