"""Language: which language a sender wrote in, so that the reply comes in it first (pure).

Owns: ``detect`` — "th" or "en" from a mail's subject and the text its sender wrote now (quoted
lines and an older message below a reply header left out): the share of Thai letters among all
letters. A mail mostly in Thai, or with Thai in its subject, is Thai (Thai writers mix in English
words); one in English — or in any other script, whose writer reads an English reply better than
a Thai one — is answered in English first. A mail with no letters at all is Thai, the agency's
language. Thai digits and marks count for nothing either way. No dictionary, no model: the
script alone decides, which holds for the short, formal mail an agency receives.
"""
from __future__ import annotations

import re
import unicodedata

THAI, ENGLISH = "th", "en"
LANGUAGES = (THAI, ENGLISH)
THAI_SHARE = 0.2          # at least this share of the letters Thai: a Thai mail

_THAI_LETTER = re.compile(r"[\u0e01-\u0e30\u0e32\u0e33\u0e40-\u0e46]")
# where an older message starts below a reply: "On … wrote:", Outlook's separator and header block,
# and the Thai forms of both
_OLDER = re.compile(
    r"^(?:On .{0,200}wrote:|-{2,}\s*(?:Original Message|Forwarded message)\s*-{2,}|From:\s.+|"
    r"เมื่อ .{0,200}เขียนว่า:?|จาก:\s.+|-{2,}\s*ข้อความต้นฉบับ\s*-{2,})\s*$", re.M | re.I)
SUBJECT_WEIGHT = 3        # the subject is the sender's own words: it counts three times


def written_now(body: str) -> str:
    """The text above the first quoted line or older-message header, without quoted lines."""
    m = _OLDER.search(body or "")
    text = body[: m.start()] if m else (body or "")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _letters(text: str) -> tuple[int, int]:
    """(Thai letters, other letters) of a text."""
    thai = other = 0
    for ch in text:
        if _THAI_LETTER.match(ch):
            thai += 1
        elif ch.isalpha() and not ("\u0e00" <= ch <= "\u0e7f") and unicodedata.category(ch).startswith("L"):
            other += 1
    return thai, other


def detect(subject: str, body: str) -> str:
    """"th" or "en": the language a reply to this mail is written in first."""
    s_thai, s_other = _letters(subject or "")
    b_thai, b_other = _letters(written_now(body)[:20_000])
    thai = SUBJECT_WEIGHT * s_thai + b_thai
    other = SUBJECT_WEIGHT * s_other + b_other
    if thai + other == 0:
        return THAI
    return THAI if thai / (thai + other) >= THAI_SHARE else ENGLISH


def language_of(value: object) -> str:
    """A language read back from the database ("th", "en", or anything older or odd): Thai unless
    it says English, so a value from disk never breaks a reply."""
    return ENGLISH if value == ENGLISH else THAI


__all__ = ["ENGLISH", "LANGUAGES", "THAI", "detect", "language_of", "written_now"]
