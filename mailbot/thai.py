"""Thai conventions (pure): Buddhist-Era dates, Thai digits, text normalisation for matching.

Owns: how a subject is normalised before keywords are compared, how dates are written in
official Thai form ("27 พฤศจิกายน 2569 เวลา 10:42 น."), the Asia/Bangkok clock zone, and
cutting text between whole characters (a consonant keeps its vowel and tone marks).
No I/O here.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from zoneinfo import ZoneInfo

try:
    BANGKOK = ZoneInfo("Asia/Bangkok")
except Exception:  # pragma: no cover - Windows without the tzdata package
    from datetime import timedelta, timezone

    BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")  # type: ignore[assignment]

THAI_MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)
THAI_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ARABIC_TO_THAI = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")

# Invisible characters that Thai writers (and word processors) leave inside words.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None
)
# Bidirectional controls: never meaningful in a Thai subject, dangerous when echoed.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"), None)

_TONES = "\u0e48\u0e49\u0e4a\u0e4b"
_UPPER_LOWER_VOWELS = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47"
_TONE_BEFORE_VOWEL = re.compile(f"([{_TONES}])([{_UPPER_LOWER_VOWELS}])")
_REPEATED_MARK = re.compile(f"([{_TONES}{_UPPER_LOWER_VOWELS}\u0e4c\u0e4d])\\1+")
_WHITESPACE = re.compile(r"\s+")


def be_year(when: date | datetime) -> int:
    """Buddhist-Era year of a date (CE + 543)."""
    return when.year + 543


def to_bangkok(when: datetime) -> datetime:
    """The same instant in Asia/Bangkok; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(BANGKOK)


def thai_date(when: date | datetime) -> str:
    """'27 พฤศจิกายน 2569'."""
    if isinstance(when, datetime):
        when = to_bangkok(when)
    return f"{when.day} {THAI_MONTHS[when.month - 1]} {be_year(when)}"


def thai_date_short(when: date | datetime) -> str:
    """'27 พ.ย. 2569' for narrow table columns."""
    if isinstance(when, datetime):
        when = to_bangkok(when)
    return f"{when.day} {THAI_MONTHS_SHORT[when.month - 1]} {be_year(when)}"


def thai_datetime(when: datetime) -> str:
    """'27 พฤศจิกายน 2569 เวลา 10:42 น.' in Asia/Bangkok time."""
    local = to_bangkok(when)
    return f"{thai_date(local)} เวลา {local:%H:%M} น."


def parse_thai_datetime(text: str) -> datetime | None:
    """'29 พฤศจิกายน 2569 เวลา 02:08 น.' (or '29 พ.ย. 2569') back to an aware datetime; None if
    it is not one."""
    m = re.match(r"\s*(\d{1,2})\s+(\S+)\s+(\d{4})(?:\s+เวลา\s+(\d{1,2}):(\d{2}))?",
                 thai_digits_to_arabic(text or ""))
    if not m:
        return None
    name = m[2]
    month = THAI_MONTHS.index(name) + 1 if name in THAI_MONTHS else (
        THAI_MONTHS_SHORT.index(name) + 1 if name in THAI_MONTHS_SHORT else 0)
    if not month:
        return None
    year = int(m[3]) - 543 if int(m[3]) > 2400 else int(m[3])
    try:
        return datetime(year, month, int(m[1]), int(m[4] or 0), int(m[5] or 0), tzinfo=BANGKOK)
    except ValueError:
        return None


def thai_digits_to_arabic(text: str) -> str:
    return text.translate(_THAI_DIGITS)


def arabic_to_thai_digits(text: str) -> str:
    return text.translate(_ARABIC_TO_THAI)


def clean_text(text: str) -> str:
    """NFC, invisible and bidi characters removed, common Thai typing slips repaired.

    Keeps spaces and case: this is the form shown back to people.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_INVISIBLE).translate(_BIDI)
    # "ํา" (nikhahit + sara aa) typed instead of sara am "ำ"
    text = text.replace("\u0e4d\u0e32", "\u0e33")
    # tone mark typed before the upper/lower vowel it belongs after
    text = _TONE_BEFORE_VOWEL.sub(r"\2\1", text)
    # the same mark typed twice ("ก่่อสร้าง")
    text = _REPEATED_MARK.sub(r"\1", text)
    return text


def normalise(text: str) -> str:
    """The matching form: clean_text + Thai digits as Arabic + no whitespace + case-folded."""
    text = clean_text(text)
    text = thai_digits_to_arabic(text)
    text = _WHITESPACE.sub("", text)
    return text.casefold()


def one_line(text: str, limit: int = 300) -> str:
    """A safe single line to echo back: no control or bidi characters, capped length."""
    text = clean_text(text or "")
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def display_width(text: str) -> int:
    """Columns a string takes in a terminal: Thai vowel and tone marks take none."""
    import unicodedata as ud

    width = 0
    for ch in text:
        if ud.combining(ch) or ud.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if ud.east_asian_width(ch) in ("W", "F") else 1
    return width


# Characters that never start a user-perceived character (grapheme): combining marks, the
# spacing vowel sara am (Grapheme_Cluster_Break=SpacingMark), joiners and variation selectors.
_EXTEND = frozenset("\u0e33\u0eb3\u200c\u200d")


def graphemes(text: str) -> list[str]:
    """The text cut into user-perceived characters: a Thai consonant keeps its vowel and tone marks."""
    out: list[str] = []
    for ch in text:
        if out and (ch in _EXTEND or unicodedata.category(ch) in ("Mn", "Mc", "Me")
                    or 0xFE00 <= ord(ch) <= 0xFE0F):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def cut(text: str, fits, ellipsis: str = "…") -> str:  # type: ignore[no-untyped-def]
    """The longest start of ``text`` (whole graphemes) for which ``fits(candidate)`` holds,
    with ``ellipsis`` added when something was cut. ``fits`` measures (e.g. a width in points)."""
    if fits(text):
        return text
    parts = graphemes(text)
    lo, hi = 0, len(parts)
    while lo < hi:                      # binary search on the number of graphemes kept
        mid = (lo + hi + 1) // 2
        if fits("".join(parts[:mid]).rstrip() + ellipsis):
            lo = mid
        else:
            hi = mid - 1
    return "".join(parts[:lo]).rstrip() + ellipsis


def pad(text: str, width: int) -> str:
    """Cut or pad to a display width (for plain-text tables)."""
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (width - used)
