"""Schedule (pure): when the next poll is due, in Asia/Bangkok time.

Owns: office hours and working days (holidays included), the poll interval inside and outside
office hours, and the Sarabun minimum — at least one check in the morning and one in the
afternoon of every working day, whatever the interval. Each decision is a function of the
configuration and a given "now"; the daemon (``daemon.py``) asks and obeys.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from ..casework.workflow import WEEKDAYS
from ..config import ScheduleConfig
from ..thai import to_bangkok

NOON = time(12, 0)


def _hm(text: str) -> time:
    h, m = (int(x) for x in text.split(":"))
    return time(23, 59, 59) if h == 24 else time(h, m)


def office(cfg: ScheduleConfig) -> tuple[time, time]:
    start, end = cfg.office_hours.split("-")
    return _hm(start.strip()), _hm(end.strip())


def is_working_day(day: date, cfg: ScheduleConfig) -> bool:
    return WEEKDAYS[day.weekday()] in cfg.workdays and day not in cfg.holidays


def in_office_hours(when: datetime, cfg: ScheduleConfig) -> bool:
    local = to_bangkok(when)
    start, end = office(cfg)
    return is_working_day(local.date(), cfg) and start <= local.time() < end


def guaranteed_checks(day: date, cfg: ScheduleConfig) -> list[datetime]:
    """The Sarabun minimum for a working day: one check when the office opens (morning) and one
    at 13:00 (afternoon) — or halfway through the afternoon part when the office closes by 13:00."""
    if not is_working_day(day, cfg):
        return []
    start, end = office(cfg)
    tz = to_bangkok(datetime(day.year, day.month, day.day, 12)).tzinfo
    morning = datetime.combine(day, start, tz)
    opens, closes = datetime.combine(day, max(start, NOON), tz), datetime.combine(day, end, tz)
    afternoon = datetime.combine(day, time(13, 0), tz)
    if not opens <= afternoon < closes:
        afternoon = opens + (closes - opens) / 2
    return sorted({morning, afternoon})


def interval(when: datetime, cfg: ScheduleConfig) -> timedelta:
    minutes = cfg.every_minutes if in_office_hours(when, cfg) else cfg.after_hours_every_minutes
    return timedelta(minutes=minutes)


def next_poll(now: datetime, cfg: ScheduleConfig) -> datetime:
    """When to poll next, strictly after ``now``.

    The regular interval (shorter in office hours), but never past the opening of office hours
    or a guaranteed morning/afternoon check; those come first.
    """
    local = to_bangkok(now)
    candidate = local + interval(local, cfg)
    start, _ = office(cfg)
    for offset in (0, 1, 2):
        day = local.date() + timedelta(days=offset)
        for point in guaranteed_checks(day, cfg):
            if local < point < candidate:
                candidate = point
        if is_working_day(day, cfg):
            opening = datetime.combine(day, start, local.tzinfo)
            if local < opening < candidate:
                candidate = opening
    return candidate


def polls_between(start: datetime, end: datetime, cfg: ScheduleConfig) -> list[datetime]:
    """All polls the schedule makes from ``start`` (a poll) to ``end`` — for tests and `status`."""
    out: list[datetime] = []
    current = to_bangkok(start)
    while True:
        current = next_poll(current, cfg)
        if current > to_bangkok(end):
            return out
        out.append(current)


def next_daily(now: datetime, at: str, cfg: ScheduleConfig | None = None) -> datetime:
    """The next time-of-day ``at`` after now (working days only when cfg is given)."""
    local = to_bangkok(now)
    t = _hm(at)
    for offset in range(0, 15):
        day = local.date() + timedelta(days=offset)
        moment = datetime.combine(day, t, local.tzinfo)
        if moment > local and (cfg is None or is_working_day(day, cfg)):
            return moment
    return datetime.combine(local.date() + timedelta(days=1), t, local.tzinfo)
