"""Clock: the one place mailbot reads the time of day.

Owns: the real clock (UTC, aware), and the test clock for checks and demonstrations —
``MAILBOT_NOW`` (an ISO date-time; a Buddhist-Era year is accepted) moves mailbot's clock to
that moment and lets it run on from there. It is honoured only when ``MAILBOT_TEST_CLOCK=1``
is also set, and every face prints a notice when it is in use.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from .errors import ConfigError
from .thai import BANGKOK

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_when(text: str) -> datetime:
    """An ISO date-time (Bangkok time when no zone is given); BE years (> 2400) are converted."""
    text = text.strip()
    year = int(text[:4])
    if year > 2400:
        text = f"{year - 543:04d}{text[4:]}"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=BANGKOK)
    return when.astimezone(timezone.utc)


def from_environment() -> tuple[Clock, str | None]:
    """The clock to use, and the notice to print when it is the test clock."""
    spec = os.environ.get("MAILBOT_NOW")
    if not spec or os.environ.get("MAILBOT_TEST_CLOCK") != "1":
        return utcnow, None
    try:
        start = parse_when(spec)
    except ValueError:
        raise ConfigError(f"MAILBOT_NOW ไม่ใช่วันเวลาที่ถูกต้อง: {spec}",
                          f"MAILBOT_NOW is not a valid ISO date-time: {spec}") from None
    began = time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=time.monotonic() - began)

    notice = (f"ใช้นาฬิกาทดสอบ (MAILBOT_NOW={spec}) ไม่ใช่เวลาจริง / "
              f"TEST CLOCK in use (MAILBOT_NOW={spec}), not the real time")
    return clock, notice
