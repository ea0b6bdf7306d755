"""Thai conventions (pure): Buddhist-Era dates, Thai digits, text normalisation for matching.

Owns: how a subject is normalised before keywords are compared, how dates are written in
official Thai form ("27 พฤศจิกายน 2569 เวลา 10:42 น.") and, for the English half of a reply, in
English ("27 November 2026", the Common Era), the Asia/Bangkok clock zone, and
cutting text between whole characters (a consonant keeps its vowel and tone marks).
No I/O here.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date, datetime, time, tzinfo
from zoneinfo import ZoneInfo

BANGKOK: tzinfo
try:
    BANGKOK = ZoneInfo("Asia/Bangkok")
except Exception:  # pragma: no cover - Windows without the tzdata package
    from datetime import timedelta, timezone

    BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")

THAI_MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)
THAI_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)

# English month names, not the C library's (%B follows the machine's locale)
ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ARABIC_TO_THAI = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")

# Invisible characters that Thai writers (and word processors) leave inside words.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None
)
# Bidirectional controls: never meaningful in a Thai subject, dangerous when echoed.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"), None)

_TONES = "\u0e48\u0e49\u0e4a\u0e4b"                      # mai ek, mai tho, mai tri, mai chattawa
_UPPER_LOWER_VOWELS = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47"
_FOLLOW_VOWELS = "\u0e30\u0e32\u0e33\u0e45"                # sara a, sara aa, sara am, lakkhangyao
_LEAD_VOWELS = "\u0e40\u0e41\u0e42\u0e43\u0e44"          # sara e, ae, o, ai maimuan, ai maimalai
# Typing slips, repaired in this order (as PyThaiNLP's normalize does; see tests/test_thai.py):
# a tone mark or thanthakhat typed before the upper/lower vowel it belongs after
_TONE_BEFORE_VOWEL = re.compile(f"([{_TONES}\u0e4c]+)([{_UPPER_LOWER_VOWELS}]+)")
# a following vowel typed before the tone mark ("กา่" for "ก่า")
_FOLLOW_BEFORE_TONE = re.compile(f"([{_FOLLOW_VOWELS}])([{_TONES}]+)")
# the same mark or vowel typed twice or more ("ก่่อ", "เเ" is handled first: it is sara ae)
_REPEATED_MARK = re.compile(f"([{_TONES}{_UPPER_LOWER_VOWELS}{_FOLLOW_VOWELS}{_LEAD_VOWELS}\u0e4c\u0e4d])\\1+")
# two different tone marks on one consonant ("สร้่าง"): one consonant carries one tone; the first
# typed is kept (the second is the neighbouring key, hit on the way)
_SEVERAL_TONES = re.compile(f"([{_TONES}])[{_TONES}]+")
# a mark with no consonant before it: at the start, or after a space
_DANGLING = re.compile(f"(^|\\s)[{_TONES}{_UPPER_LOWER_VOWELS}\u0e4c\u0e4d]+")
_NIKHAHIT_AA = re.compile(f"\u0e4d([{_TONES}]?)\u0e32")
_ANY_THAI = re.compile("[\u0e00-\u0e7f]")
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


def english_date(when: date | datetime | str) -> str:
    """'27 November 2026' (Common Era; the Asia/Bangkok day). A date already written in Thai, as a
    reply's context carries its deadlines ('27 พฤศจิกายน 2569', '27 พ.ย. 2569', with or without
    'เวลา 10:42 น.'), is read back and written in English; any other text is returned as it is."""
    if isinstance(when, str):
        parsed = parse_thai_datetime(when)
        m = _WHOLE_THAI_DATE.fullmatch(thai_digits_to_arabic(when))
        if parsed is None or m is None:
            return when
        return english_datetime(parsed) if m["time"] else english_date(parsed.date())
    if isinstance(when, datetime):
        when = to_bangkok(when)
    return f"{when.day} {ENGLISH_MONTHS[when.month - 1]} {when.year}"


def english_datetime(when: datetime) -> str:
    """'27 November 2026, 10:42' in Asia/Bangkok time."""
    local = to_bangkok(when)
    return f"{english_date(local)}, {local:%H:%M}"


_WHOLE_THAI_DATE = re.compile(r"\s*\d{1,2}\s+\S+\s+\d{4}(?P<time>\s+เวลา\s+\d{1,2}:\d{2}(?:\s*น\.)?)?\s*")


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

    Keeps spaces and case: this is the form shown back to people. A short text (a subject, a
    name) is cleaned once and remembered: a message's subject is asked for a dozen times on its
    way (classification, urgency, secrecy, receipt tags, the register, the reply)."""
    if len(text) <= _REMEMBERED:
        return _clean_short(text)
    return _clean(text)


_REMEMBERED = 300


@functools.lru_cache(maxsize=4096)
def _clean_short(text: str) -> str:
    return _clean(text)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_INVISIBLE).translate(_BIDI)
    if not _ANY_THAI.search(text):
        return text
    # "เเ" (sara e twice) typed for sara ae "แ"
    text = text.replace("\u0e40\u0e40", "\u0e41")
    # "ํา" (nikhahit + sara aa, a tone mark between them or not) typed instead of sara am "ำ"
    text = _NIKHAHIT_AA.sub("\\1\u0e33", text)
    text = _TONE_BEFORE_VOWEL.sub(r"\2\1", text)
    text = _FOLLOW_BEFORE_TONE.sub(r"\2\1", text)
    text = _REPEATED_MARK.sub(r"\1", text)
    text = _SEVERAL_TONES.sub(r"\1", text)
    text = _DANGLING.sub(r"\1", text)
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


def cut(text: str, fits, ellipsis: str = "…") -> str:
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


# ---------------------------------------------------------------------------- reading dates

def _spaced(word: str) -> str:
    """A regex for a Thai word with any spacing (and the dots of abbreviations optional)."""
    out = []
    for ch in word:
        out.append(r"\.?" if ch == "." else re.escape(ch))
    return r"\s*".join(out)


_MONTH_WORDS: list[tuple[str, int]] = sorted(
    [(name, i + 1) for i, name in enumerate(THAI_MONTHS)]
    + [(short, i + 1) for i, short in enumerate(THAI_MONTHS_SHORT)],
    key=lambda x: -len(x[0]),
)
_MONTH = "|".join(f"(?P<m{i}>{_spaced(w)})" for i, (w, _) in enumerate(_MONTH_WORDS))
_YEAR = r"(?:\s*(?:พ\s*\.?\s*ศ\s*\.?|ค\s*\.?\s*ศ\s*\.?)?\s*(?P<year>\d{4}|\d{2})(?!\d))?"
_DATE_WORDS = re.compile(r"(?:วันที่|วัน)?\s*(?<!\d)(?P<day>\d{1,2})\s*(?:" + _MONTH + r")\s*" + _YEAR)
_DATE_NUMERIC = re.compile(r"(?:วันที่)?\s*(?<!\d)(?P<day>\d{1,2})\s*[/.-]\s*(?P<month>\d{1,2})\s*[/.-]\s*(?P<year>\d{4}|\d{2})(?!\d)")
_TIME = re.compile(r"(?:เวลา\s*(?P<h1>\d{1,2})(?:\s*[.:]\s*(?P<m1>\d{2}))?\s*(?:น\.?|นาฬิกา)?"
                   r"|(?P<h2>\d{1,2})\s*[.:]\s*(?P<m2>\d{2})\s*(?:น\.?|นาฬิกา)|(?P<h3>\d{1,2})\s*(?:น\.|นาฬิกา))")
_RELATIVE = (("มะรืนนี้", 2), ("มะรืน", 2), ("พรุ่งนี้", 1), ("วันนี้", 0))


def _year_of(text: str | None, month: int, day: int, today: date) -> int | None:
    """CE year for a written year: BE 4 digits, BE 2 digits ("69"), or CE; missing: the nearest one."""
    if not text:
        best = None
        for year in (today.year - 1, today.year, today.year + 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if best is None or abs((candidate - today).days) < abs((best - today).days):
                best = candidate
        return best.year if best else None
    value = int(text)
    if len(text) == 2:
        return value + 2500 - 543
    return value - 543 if value >= 2400 else value


def parse_thai_date(text: str, today: date) -> tuple[date, time | None] | None:
    """The first date (and time) written in a text the way Thai officials write them.

    "5 ธ.ค. 2569", "๕ ธันวาคม ๒๕๖๙ เวลา ๑๔.๐๐ น.", "วันที่ 5 ธค 69", "5/12/2569", "5 ธ.ค." (the
    nearest such day), "วันนี้", "พรุ่งนี้ 10.00 น."; a time alone means today. None if there is none.
    """
    text = thai_digits_to_arabic(clean_text(text or ""))
    found: date | None = None
    rest = text
    m = _DATE_WORDS.search(text)
    n = _DATE_NUMERIC.search(text)
    if n and (m is None or n.start() < m.start()):
        month, day = int(n["month"]), int(n["day"])
        year = _year_of(n["year"], month, day, today)
        try:
            found = date(year, month, day) if year else None
        except ValueError:
            found = None
        rest = text[n.end():]
    elif m:
        month = next(_MONTH_WORDS[i][1] for i in range(len(_MONTH_WORDS)) if m[f"m{i}"])
        day = int(m["day"])
        year = _year_of(m["year"], month, day, today)
        try:
            found = date(year, month, day) if year else None
        except ValueError:
            found = None
        rest = text[m.end():]
    else:
        for word, days in _RELATIVE:
            at = text.find(word)
            if at >= 0:
                found = date.fromordinal(today.toordinal() + days)
                rest = text[at + len(word):]
                break
    t = _TIME.search(rest if found else text)
    clock = None
    if t:
        hour = int(t["h1"] or t["h2"] or t["h3"])
        minute = int(t["m1"] or t["m2"] or 0)
        if hour <= 24 and minute < 60:
            clock = time(hour % 24, minute)
    if found is None:
        return (today, clock) if clock else None
    return found, clock


# ---------------------------------------------------------------------------- addressing a person

# words that open a person's name as its title (คำนำหน้านาม): the everyday ones, children's,
# academic and professional ones, honorifics, monks, and ranks written out (ยศ); abbreviated ranks
# and titles ("ร.ต.อ.", "พ.ต.ท.", "น.ส.", "ผศ.ดร.") are read by _ABBREVIATED
_TITLE_WORDS = (
    "นางสาว", "นาง", "นาย", "เด็กชาย", "เด็กหญิง", "คุณหญิง", "คุณ", "ท่านผู้หญิง", "หม่อมราชวงศ์",
    "หม่อมหลวง", "หม่อมเจ้า", "หม่อม", "ดร.", "ศาสตราจารย์", "รองศาสตราจารย์", "ผู้ช่วยศาสตราจารย์",
    "นายแพทย์", "แพทย์หญิง", "ทันตแพทย์", "ทันตแพทย์หญิง", "เภสัชกร", "พระครู", "พระมหา", "พระ",
    "สามเณร", "แม่ชี", "ว่าที่", "ดาบตำรวจ", "จ่าเอก", "จ่าโท", "จ่าตรี", "พันจ่า",
    "Mr.", "Mrs.", "Ms.", "Miss", "Dr.",
)
_RANK = re.compile(
    r"(?:ว่าที่\s*)?(?:พล|พัน|ร้อย|สิบ|จ่าสิบ|นาวา|เรือ|พลเรือ|พลอากาศ|นาวาอากาศ|เรืออากาศ|พันจ่า|จ่า)"
    r"(?:ตำรวจ|อากาศ)?(?:เอก|โท|ตรี)")
# abbreviations: one to four Thai letters and a dot, twice or more ("ร.ต.อ.", "พล.ต.ท.", "น.ส."),
# or a known single one ("ดร.", "นพ.", "ผศ.")
_ABBREVIATED = re.compile(r"(?:[\u0e01-\u0e2e\u0e30-\u0e4e]{1,4}\.){2,}|(?:ดร|นพ|พญ|ทพ|ทพญ|ภก|ภญ|ศ|รศ|ผศ|พระ)\.")
# names of organisations: addressed by their name, never "คุณ"
_ORGANISATION = (
    "บริษัท", "ห้างหุ้นส่วน", "หจก", "บจก", "บมจ", "ร้าน", "มูลนิธิ", "สมาคม", "สหกรณ์", "ชมรม", "กลุ่ม",
    "ชุมชน", "คณะ", "โรงเรียน", "โรงพยาบาล", "วัด", "เทศบาล", "องค์การ", "สำนักงาน", "สำนัก", "กรม",
    "กระทรวง", "อำเภอ", "จังหวัด", "หมู่บ้าน", "นิติบุคคล", "ศูนย์", "สถาบัน", "มหาวิทยาลัย", "วิทยาลัย",
    "ธนาคาร", "โรงงาน",
)
_IN_ORGANISATION = re.compile(r"จำกัด|\b(?:co\.|ltd\.?|inc\.?|company|limited)(?:\W|$)", re.IGNORECASE)


def name_title(name: str) -> str:
    """The title a name opens with ("นาย" of "นายสมชาย ใจดี", "ร.ต.อ." of "ร.ต.อ.สมชาย"), or ""."""
    name = (name or "").strip()
    m = _ABBREVIATED.match(name) or _RANK.match(name)
    if m:
        return m.group(0)
    for word in _TITLE_WORDS:         # longest first where one starts another (นางสาว before นาง)
        if name.startswith(word) and len(name) > len(word):
            return word
    return ""


def is_organisation(name: str) -> bool:
    """A company, shop, foundation, school or office, not a person (addressed by its name alone)."""
    name = (name or "").strip()
    return name.startswith(_ORGANISATION) or bool(_IN_ORGANISATION.search(name))


def addressee(name: str, title: str = "") -> str:
    """How an official letter addresses a person (เรียน ...) and a register names them.

    A name that carries its own title keeps it ("นายสมชาย ใจดี"); a title the officer set on the
    case (``title``) takes the place of the name's own; an organisation is named as it is; any
    other name is addressed "คุณ…" ("คุณสมชาย ใจดี"). An empty name stays empty."""
    name = " ".join((name or "").split())
    title = " ".join((title or "").split())
    if not name:
        return ""
    if name in _TITLE_WORDS:          # a title alone is no name to add to
        return name
    own = name_title(name)
    if title:
        rest = name[len(own):].strip() if own else name
        return _join(title, rest or name)
    if own or is_organisation(name):
        return name
    return _join("คุณ", name)


def _join(title: str, name: str) -> str:
    """Thai writes a title and the name together ("นายสมชาย"); Latin letters on either side take a space."""
    thai_both = bool(_ANY_THAI.match(name[:1])) and bool(_ANY_THAI.search(title))
    return f"{title}{name}" if thai_both else f"{title} {name}"
