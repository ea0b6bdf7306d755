"""Numbering (pure): which year a number belongs to, and how numbers are written.

Owns: the numbering year of a moment — the Buddhist-Era calendar year (the regulation's
default: numbers start again at 1 on 1 January) or the fiscal year (starting 1 October: 1
October 2569 opens fiscal year 2570) — its label in titles ("ประจำปี พ.ศ. 2569",
"ปีงบประมาณ พ.ศ. 2570"), and the written forms of receipt, dispatch and licence numbers from
their patterns (``registers.receipt_pattern`` "{seq}/{year}" or "รับ {seq}/{year}",
``registers.dispatch_pattern`` "มท 0808.2/{seq}", ``registers.licence_pattern``). The key a
case is known by stays "<seq>/<year>" (subject tags, file names, commands); the pattern is how
registers and letters write it. No I/O.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ..thai import thai_digits_to_arabic, to_bangkok

YearReset = Literal["calendar", "fiscal"]


def numbering_year(when: date | datetime, reset: YearReset = "calendar") -> int:
    """The Buddhist-Era year whose numbers a moment (Bangkok time) takes."""
    day = to_bangkok(when).date() if isinstance(when, datetime) else when
    year = day.year + 543
    return year + 1 if reset == "fiscal" and day.month >= 10 else year


def period_label(year_be: int, reset: YearReset = "calendar") -> str:
    return f"ปีงบประมาณ พ.ศ. {year_be}" if reset == "fiscal" else f"ประจำปี พ.ศ. {year_be}"


def normalise_receipt(text: str) -> str:
    """A receipt number as a person typed it ("๑๕ / ๒๕๖๙") as the key a case is known by ("15/2569")."""
    return thai_digits_to_arabic(text).replace(" ", "").strip()


def written(pattern: str, seq: int, year_be: int) -> str:
    """A number as its pattern writes it: "{seq}/{year}" -> "15/2569"; "มท 0808.2/{seq}" -> "มท 0808.2/15"."""
    return pattern.replace("{seq}", str(seq)).replace("{year}", str(year_be))


def check_pattern(pattern: str) -> str:
    if "{seq}" not in pattern:
        raise ValueError("a number pattern must contain {seq}")
    leftover = pattern.replace("{seq}", "").replace("{year}", "")
    if "{" in leftover or "}" in leftover:
        raise ValueError("only {seq} and {year} may appear in braces")
    return pattern
