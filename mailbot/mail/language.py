"""Language: which language a sender wrote in, so that the reply comes in it first (pure).

Owns: ``detect`` — "th" or "en" from a mail's subject and body: the share of Thai letters among
all letters. A mail with a fifth or more of its letters Thai is Thai (Thai writers mix in English
words: terms, names, a product); one in English — or in any other script, whose writer reads an
English reply better than a Thai one — is answered in English first. No dictionary, no model: the
script alone decides, which holds for the short, formal mail an agency receives.

What counts, and how much:

* the subject, twice (the sender's own words, and often the request itself), without the
  "Re:"/"Fwd:" its mail client added and without our own tag "[เลขรับ N/YYYY]", which a reply to
  any of our replies carries whatever its writer's language;
* the text the sender wrote now, in full;
* their signature or a disclaimer below it (after "-- ", "Sent from my ...", "DISCLAIMER" ...) a
  quarter: a Thai company's English legal footer must not outvote its Thai request;
* quoted lines ("> ...") and an older message below a reply or forward header ("On ... wrote:",
  "-----Original Message-----", "From: ...", their Thai forms) nothing — they are mostly our own
  bilingual reply — unless the sender wrote next to nothing themselves (fewer than
  ``MIN_LETTERS``), as when a request is forwarded with "FYI" or with no note at all;
* links, e-mail addresses, digits (Thai or Arabic) and marks nothing either way.

A mail with no letters at all is Thai, the agency's language (its replies are Thai first with the
English below, as always).
"""
from __future__ import annotations

import re

from .forwarded import strip_prefixes

THAI, ENGLISH = "th", "en"
LANGUAGES = (THAI, ENGLISH)
THAI_SHARE = 0.2          # at least this share of the letters Thai: a Thai mail
SUBJECT_WEIGHT = 2        # the subject is the sender's own words, and often the request itself: twice
SIGNATURE_WEIGHT = 0.25   # a signature or disclaimer: a quarter
MIN_LETTERS = 12          # fewer of the sender's own (weighted): the quoted or forwarded text decides
MAX_CHARS = 20_000        # read no further
MAX_SUBJECT = 2_000       # a subject longer than this is not a person's (a hostile one is a megabyte)

# Thai consonants, the vowels written on the line, and maiyamok: letters. Tone marks, the vowels
# above and below, Thai digits and punctuation are not counted.
_THAI_LETTER = re.compile(r"[\u0e01-\u0e30\u0e32\u0e33\u0e40-\u0e46]")
# where an older message starts below a reply or in a forward: "On … wrote:" (Gmail folds it onto
# two lines), Outlook's separator and header block, and the Thai forms of both
_OLDER = re.compile(
    r"^\s*(?:On\s[^\n]{0,200}(?:\n[^\n]{0,200})?\bwrote:|-{2,}\s*(?:Original Message|Forwarded message)\s*-{2,}|"
    r"Begin forwarded message:|_{10,}|From:\s.+|เมื่อ\s.{0,200}เขียนว่า:?|จาก:\s.+|-{2,}\s*ข้อความต้นฉบับ\s*-{2,}|"
    r"-{2,}\s*ข้อความที่ส่งต่อ\s*-{2,})\s*$", re.M | re.I)
# where a signature or a legal footer starts: the "-- " line (RFC 3676), what a phone adds, and
# the first words of the disclaimers companies append
_SIGNATURE = re.compile(
    r"^(?:--\s*|Sent from my\b.*|Get Outlook for\b.*|ส่งจาก.*ของฉัน|"
    r"\W*(?:disclaimer|confidentiality notice)\b.*|"
    r"this (?:e-?mail|message)\b.{0,60}\b(?:confidential|intended (?:only|solely))\b.*)$", re.M | re.I)
# not words: links, addresses, our own subject tag
# (an address's parts bounded as RFC 5321 bounds them: an unbounded \S+@\S+ backtracks over a
# megabyte of text without a space in square time)
_NOT_WORDS = re.compile(r"https?://\S+|www\.\S+|[^\s@]{1,64}@[^\s@]{1,255}|\[\s*เลข\s*รับ[^\]]{0,30}\]", re.I)


def split(body: str) -> tuple[str, str, str]:
    """(written now, signature, quoted and older text) of a body."""
    text = (body or "")[:MAX_CHARS]
    m = _OLDER.search(text)
    above, older = (text[: m.start()], text[m.start():]) if m else (text, "")
    own: list[str] = []
    quoted = [older]
    for line in above.splitlines():
        (quoted if line.lstrip().startswith(">") else own).append(line)
    mine = "\n".join(own)
    s = _SIGNATURE.search(mine)
    now, signature = (mine[: s.start()], mine[s.start():]) if s else (mine, "")
    return now, signature, "\n".join(quoted)


def written_now(body: str) -> str:
    """The text its sender wrote now: above the first older-message header, without quoted lines
    and without a signature."""
    return split(body)[0].strip()


def letters(text: str) -> tuple[int, int]:
    """(Thai letters, other letters) of a text; links, addresses and our tag left out."""
    thai = other = 0
    for ch in _NOT_WORDS.sub(" ", text or ""):
        if _THAI_LETTER.match(ch):
            thai += 1
        elif ch.isalpha() and not "\u0e00" <= ch <= "\u0e7f":
            other += 1
    return thai, other


def detect(subject: str, body: str) -> str:
    """"th" or "en": the language a reply to this mail is written in first."""
    now, signature, quoted = split(body)
    s_thai, s_other = letters(strip_prefixes((subject or "")[:MAX_SUBJECT]))
    n_thai, n_other = letters(now)
    g_thai, g_other = letters(signature)
    thai = SUBJECT_WEIGHT * s_thai + n_thai + SIGNATURE_WEIGHT * g_thai
    other = SUBJECT_WEIGHT * s_other + n_other + SIGNATURE_WEIGHT * g_other
    if thai + other < MIN_LETTERS:        # next to nothing of their own: what they quote or forward
        q_thai, q_other = letters(quoted)
        thai, other = thai + q_thai, other + q_other
    if thai + other == 0:
        return THAI
    return THAI if thai / (thai + other) >= THAI_SHARE else ENGLISH


def language_of(value: object) -> str:
    """A language read back from the database ("th", "en", or anything older or odd): Thai unless
    it says English, so a value from disk never breaks a reply."""
    return ENGLISH if value == ENGLISH else THAI


__all__ = ["ENGLISH", "LANGUAGES", "THAI", "detect", "language_of", "letters", "split", "written_now"]
