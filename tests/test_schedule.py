"""Scheduler decisions (pure, injected clock): office hours, holidays, the twice-daily
guarantee, after-hours polling."""
from datetime import datetime, timedelta

from mailbot.config import ScheduleConfig
from mailbot.ops.schedule import guaranteed_checks, in_office_hours, next_daily, next_poll, polls_between
from mailbot.thai import BANGKOK


def bkk(y, m, d, hh=0, mm=0):  # type: ignore[no-untyped-def]
    return datetime(y, m, d, hh, mm, tzinfo=BANGKOK)


CFG = ScheduleConfig(every_minutes=10, office_hours="08:30-16:30", holidays=["2026-12-10"],
                     after_hours_every_minutes=60)


def test_office_hours_working_days_and_holidays():
    assert in_office_hours(bkk(2026, 11, 27, 10), CFG)            # Friday
    assert not in_office_hours(bkk(2026, 11, 27, 17), CFG)        # after hours
    assert not in_office_hours(bkk(2026, 11, 28, 10), CFG)        # Saturday
    assert not in_office_hours(bkk(2026, 12, 10, 10), CFG)        # holiday


def test_interval_inside_and_outside_office_hours():
    assert next_poll(bkk(2026, 11, 27, 10), CFG) == bkk(2026, 11, 27, 10, 10)
    assert next_poll(bkk(2026, 11, 27, 20), CFG) == bkk(2026, 11, 27, 21)        # after hours: hourly
    assert next_poll(bkk(2026, 11, 28, 3), CFG) == bkk(2026, 11, 28, 4)          # weekend: still polls


def test_office_opening_is_never_skipped():
    assert next_poll(bkk(2026, 11, 30, 8, 0), CFG) == bkk(2026, 11, 30, 8, 30)   # Monday opening


def test_twice_daily_guarantee_whatever_the_interval():
    slow = ScheduleConfig(every_minutes=600, after_hours_every_minutes=1440, office_hours="08:30-16:30")
    day_polls = polls_between(bkk(2026, 11, 30, 0), bkk(2026, 11, 30, 23, 59), slow)
    assert bkk(2026, 11, 30, 8, 30) in day_polls and bkk(2026, 11, 30, 13) in day_polls
    assert any(p.hour < 12 for p in day_polls) and any(p.hour >= 12 for p in day_polls)
    # every working day of a month gets a morning and an afternoon check
    polls = polls_between(bkk(2026, 12, 1, 0), bkk(2026, 12, 31, 23, 59), slow)
    for day in range(1, 32):
        d = bkk(2026, 12, day).date()
        if guaranteed_checks(d, slow):
            todays = [p for p in polls if p.date() == d]
            assert any(p.hour < 12 for p in todays) and any(p.hour >= 12 for p in todays), d


def test_short_office_day_afternoon_check():
    short = ScheduleConfig(office_hours="08:00-12:30")
    assert guaranteed_checks(bkk(2026, 11, 30).date(), short) == [bkk(2026, 11, 30, 8), bkk(2026, 11, 30, 12, 15)]
    assert guaranteed_checks(bkk(2026, 12, 10).date(), CFG) == []        # holiday


def test_nothing_waits_a_whole_weekend():
    polls = polls_between(bkk(2026, 11, 27, 16, 30), bkk(2026, 11, 30, 8, 30), CFG)
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert max(gaps) <= timedelta(minutes=60)


def test_daily_jobs():
    assert next_daily(bkk(2026, 11, 27, 17), "16:30", CFG) == bkk(2026, 11, 30, 16, 30)   # Monday
    assert next_daily(bkk(2026, 11, 27, 1), "02:00") == bkk(2026, 11, 27, 2)
