"""Triage (pure): urgency and secrecy marks of the Sarabun regulation, read from a subject.

Owns: recognising the urgency marks ด่วนที่สุด / ด่วนมาก / ด่วน and "ด่วนภายใน <date/time>"
(any spacing, with or without brackets, Thai digits; the date read as Buddhist Era through
``thai.parse_thai_date``) and the secrecy marks ลับที่สุด / ลับมาก / ลับ, without taking them
from inside other words (กลับ, ตอบกลับ, สลับ, ลับแล, ความลับ, ทางด่วน, เร่งด่วน ...); the order
urgent work is listed in (``sort_key``); and how a secret request's subject is masked in
replies, the daily log and every public output (``mask_subject``). No I/O.

A mark counts only as a word of its own: not glued to Thai letters before it (เร่งด่วน,
ทางด่วน, ความลับ are ordinary words) nor after it (ลับแล, ลับหลัง, ด่วนจี๋), and not negated
(ไม่ด่วน). What the officer then does with an urgent or secret request is the pipeline's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from ..thai import BANGKOK, clean_text, parse_thai_date, thai_date_short, thai_digits_to_arabic, to_bangkok

SECRET_MASK = "(เรื่องลับ)"
# For the lead's migration (NOT applied here): the register columns urgency and secrecy are kept in.
SCHEMA_ADDITIONS = """
ALTER TABLE cases ADD COLUMN urgency TEXT;                          -- Triage.urgency_label ("ด่วนที่สุด", "ด่วนภายใน 5 ธ.ค. 2569")
ALTER TABLE cases ADD COLUMN urgency_rank INTEGER NOT NULL DEFAULT 0;   -- Triage.urgency_rank: lists sort on it
ALTER TABLE cases ADD COLUMN deadline TEXT;                         -- Triage.deadline, ISO (ด่วนภายใน)
ALTER TABLE cases ADD COLUMN secrecy TEXT;                          -- Triage.secrecy ("ลับ", "ลับมาก", "ลับที่สุด")
"""
URGENCY_RANKS = {"": 0, "ด่วน": 1, "ด่วนมาก": 2, "ด่วนที่สุด": 3, "ด่วนภายใน": 3}
SECRECY_RANKS = {"": 0, "ลับ": 1, "ลับมาก": 2, "ลับที่สุด": 3}

_THAI_LETTER = "\u0e01-\u0e45\u0e47-\u0e4e"    # Thai letters, vowels and marks (not ๆ, not digits)


def _word(word: str) -> str:
    return r"\s*".join(re.escape(ch) for ch in word)


_URGENCY = re.compile(
    rf"(?<![{_THAI_LETTER}])(?P<base>{_word('ด่วน')})"
    rf"(?:\s*(?P<level>{_word('ที่สุด')}|{_word('มาก')}|{_word('ภายใน')}))?"
)
_SECRECY = re.compile(
    rf"(?<![{_THAI_LETTER}])(?P<base>{_word('ลับ')})(?:\s*(?P<level>{_word('ที่สุด')}|{_word('มาก')}))?"
)
# what may follow a mark directly: polite particles and repetition ("ด่วนค่ะ", "ด่วนมากๆ")
_PARTICLE = re.compile(r"^(?:ๆ|ค่ะ|คะ|ครับ|นะ|จ้า|จ้ะ|จริง)")
# a word before the mark, separated by a space, that makes it an ordinary word
_URGENCY_NOT = re.compile(r"(?:ไม่|ทาง|รถ|จาน|ไปรษณีย์|บริการ|เร่ง)\s*$")
_SECRECY_NOT = re.compile(r"(?:ไม่|ความ|เคล็ด|รหัส|เปิดเผย|ห้อง|อำเภอ|อ\.)\s*$")


@dataclass(frozen=True)
class Triage:
    urgency: str = ""              # "", "ด่วน", "ด่วนมาก", "ด่วนที่สุด", "ด่วนภายใน"
    urgency_rank: int = 0          # 0 none .. 3 (ด่วนที่สุด and ด่วนภายใน)
    deadline: datetime | None = None    # ด่วนภายใน: when it must reach us, Asia/Bangkok (end of day without a time)
    deadline_has_time: bool = False
    secrecy: str = ""              # "", "ลับ", "ลับมาก", "ลับที่สุด"
    secrecy_rank: int = 0

    @property
    def urgent(self) -> bool:
        return self.urgency_rank > 0

    @property
    def secret(self) -> bool:
        return self.secrecy_rank > 0

    @property
    def urgency_label(self) -> str:
        """The register column: "ด่วนที่สุด", "ด่วนภายใน 5 ธ.ค. 2569 เวลา 14:00 น.", ""."""
        if self.urgency == "ด่วนภายใน" and self.deadline is not None:
            text = f"ด่วนภายใน {thai_date_short(self.deadline)}"
            return text + (f" เวลา {self.deadline:%H:%M} น." if self.deadline_has_time else "")
        return self.urgency

    @property
    def secrecy_label(self) -> str:
        return self.secrecy


def _glued_after(text: str, end: int) -> bool:
    """A Thai letter right after the mark (not a particle): part of another word."""
    rest = text[end: end + 8]
    if not rest or not re.match(f"[{_THAI_LETTER}]", rest[0]):
        return False
    return not _PARTICLE.match(rest)


def urgency_of(subject: str, today: date) -> tuple[str, datetime | None, bool]:
    """(level, deadline, deadline has a time) of the highest urgency mark in a subject."""
    text = " ".join(thai_digits_to_arabic(clean_text(subject or "")).split())
    best, deadline, has_time = "", None, False
    for m in _URGENCY.finditer(text):
        level_word = re.sub(r"\s", "", m["level"] or "")
        if level_word != "ภายใน" and _glued_after(text, m.end()):
            continue
        before = text[max(0, m.start() - 20): m.start()]
        if before.endswith(" ") and _URGENCY_NOT.search(before):
            continue
        level = "ด่วน" + level_word
        found_deadline, found_time = None, False
        if level == "ด่วนภายใน":
            when = parse_thai_date(text[m.end(): m.end() + 80], today)
            if when is not None:
                day, clock = when
                found_time = clock is not None
                found_deadline = datetime.combine(day, clock or time(23, 59), tzinfo=BANGKOK)
        better = URGENCY_RANKS[level] > URGENCY_RANKS[best] or (
            level == "ด่วนภายใน" and best == "ด่วนที่สุด" and found_deadline is not None)
        if better:
            best, deadline, has_time = level, found_deadline, found_time
    return best, deadline, has_time


def secrecy_of(subject: str) -> str:
    """The highest secrecy mark in a subject, or ""."""
    text = " ".join(clean_text(subject or "").split())
    best = ""
    for m in _SECRECY.finditer(text):
        if _glued_after(text, m.end()):
            continue
        if re.match(r"\s*ๆ", text[m.end(): m.end() + 8]) and not m["level"]:   # ลับ ๆ ล่อ ๆ: furtively
            continue
        before = text[max(0, m.start() - 20): m.start()]
        if _SECRECY_NOT.search(before):
            continue
        level = "ลับ" + re.sub(r"\s", "", m["level"] or "")
        if SECRECY_RANKS[level] > SECRECY_RANKS[best]:
            best = level
    return best


def triage(subject: str, received: datetime | date) -> Triage:
    """Urgency and secrecy of a request, from its subject; ``received`` dates "ด่วนภายใน 16.00 น."."""
    today = to_bangkok(received).date() if isinstance(received, datetime) else received
    urgency, deadline, has_time = urgency_of(subject, today)
    secrecy = secrecy_of(subject)
    return Triage(urgency, URGENCY_RANKS[urgency], deadline, has_time, secrecy, SECRECY_RANKS[secrecy])


def mask_subject(subject: str, t: Triage) -> str:
    """The subject as replies, the daily log and public outputs may show it: "(เรื่องลับ)" when secret."""
    return SECRET_MASK if t.secret else subject


def sort_key(t: Triage, received: datetime) -> tuple:
    """Urgent first (highest rank, then the earliest deadline), then oldest first."""
    far = datetime.max.replace(tzinfo=BANGKOK)
    return (-t.urgency_rank, t.deadline or far, to_bangkok(received))
