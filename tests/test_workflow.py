"""The case state machine and working days (pure), and the conservative completeness check."""
from datetime import date

import pytest

from mailbot.casework.completeness import File, check
from mailbot.casework.workflow import (
    STATUSES,
    InvalidTransition,
    add_working_days,
    initial,
    label,
    officer_set,
    status_key,
    transition,
    working_days_between,
)
from mailbot.config import Service

WEEK = ["mon", "tue", "wed", "thu", "fri"]


@pytest.mark.parametrize("status,event,expected", [
    ("awaiting_documents", "documents_complete", ("received", "documents_complete")),
    ("awaiting_documents", "documents_unsure", ("received", "documents_unsure")),
    ("awaiting_documents", "documents_incomplete", ("awaiting_documents", "documents_still_missing")),
    ("awaiting_documents", "reminder_due", ("awaiting_documents", "reminder")),
    ("awaiting_documents", "close_due", ("closed_incomplete", "closing_notice")),
    ("received", "result_sent", ("completed", None)),
    ("in_progress", "result_sent", ("completed", None)),
])
def test_transition_table(status, event, expected):
    assert transition(status, event) == expected


@pytest.mark.parametrize("status,event", [
    ("received", "reminder_due"), ("closed_incomplete", "close_due"), ("completed", "result_sent"),
    ("received", "documents_complete"),
])
def test_impossible_transitions(status, event):
    with pytest.raises(InvalidTransition):
        transition(status, event)


def test_initial_status():
    assert initial(False, "none") == "review"
    assert initial(True, "incomplete") == "awaiting_documents"
    assert initial(True, "unsure") == initial(True, "complete") == initial(True, "none") == "received"


def test_officer_statuses_by_key_or_thai_label():
    assert status_key("in_progress") == "in_progress" and status_key("อยู่ระหว่างดำเนินการ") == "in_progress"
    assert officer_set("received", "in_progress") == ("in_progress", "status_in_progress")
    with pytest.raises(InvalidTransition):
        officer_set("received", "flying")
    assert label("closed_incomplete") == "ยุติเรื่อง — เอกสารไม่ครบ" and set(STATUSES) >= {"received", "review"}


def test_working_days_skip_weekends_and_holidays():
    fri = date(2026, 12, 4)                       # Friday; Sat 5 Dec is also a holiday (Father's Day)
    assert working_days_between(fri, date(2026, 12, 7), WEEK, []) == 1           # Monday
    assert working_days_between(fri, date(2026, 12, 11), WEEK, [date(2026, 12, 10)]) == 4
    assert add_working_days(fri, 7, WEEK, [date(2026, 12, 10)]) == date(2026, 12, 16)
    assert working_days_between(fri, fri, WEEK, []) == 0


BLD = Service.model_validate({
    "code": "BLD", "name": "ก่อสร้าง", "keywords": ["ก่อสร้าง"], "accept": ["pdf", "jpg"],
    "documents": [{"name": "แบบคำขอ (ข.1)", "match": ["ข.1", "ข1", "คำขอ"]},
                  {"name": "สำเนาบัตรประชาชน", "match": ["บัตร", "idcard"]}],
})


def f(name, size=1000):
    return File(name, size)


def test_completeness_verdicts_are_conservative():
    assert check(None, [f("a.pdf")]).verdict == "none"
    nothing = check(BLD, [])
    assert nothing.verdict == "incomplete" and nothing.missing == ["แบบคำขอ (ข.1)", "สำเนาบัตรประชาชน"]
    both = check(BLD, [f("แบบ ข1.pdf"), f("บัตรประชาชน.jpg")])
    assert both.verdict == "complete" and both.missing == []
    unnamed = check(BLD, [f("scan001.pdf"), f("scan002.pdf")])
    assert unnamed.verdict == "unsure"                       # enough files, names say nothing
    one_named = check(BLD, [f("คำขอ.pdf")])
    assert one_named.verdict == "incomplete" and one_named.missing == ["สำเนาบัตรประชาชน"]
    one_unnamed = check(BLD, [f("scan.pdf")])
    assert one_unnamed.verdict == "incomplete" and one_unnamed.missing_at_least == 1
    assert [i.status for i in one_unnamed.items] == ["unknown", "unknown"]


def test_completeness_rejects_types_not_accepted():
    c = check(BLD, [f("คำขอ.docx"), f("บัตร.zip")])
    assert c.verdict == "incomplete" and [r.name for r in c.rejected] == ["คำขอ.docx", "บัตร.zip"]
