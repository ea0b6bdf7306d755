"""The console's busiest reads go through an index, whatever SQLite knows about the data.

The work queue of the "today" page, the case list filtered by service and status, and a name
search used to read every case (or the whole outbox) once the office had a year or two of
cases: 20 ms each at 100,000 cases, and five officers at once saw p95 above 200 ms
(``bench/console.py``). Each statement those reads run is captured here and its plan checked,
before and after ``ANALYZE`` (an office's database has no statistics; the benchmark's has).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from mailbot.store import State
from mailbot.store.queries import CaseSearch

N = 3000


@pytest.fixture
def state(tmp_path):
    st = State(tmp_path / "state.sqlite3")     # one per test: ANALYZE stays with its test
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    cases, outbox, messages = [], [], []
    for i in range(1, N + 1):
        when = (start + timedelta(hours=6 * i)).isoformat(timespec="seconds")
        year, seq = 2568 + (i > N // 2), i
        code = None if i % 10 == 0 else ["BLD", "CMP", "TAX"][i % 3]
        recent = i > N - 100
        status = ("review" if code is None else "in_progress") if recent else "closed"
        name = "สมชาย ศรีสุข" if i % 5 == 0 else "มาลี ใจดี"   # 600 matches: the receipt walk
        cases.append((i, f"{seq}/{year}", year, seq, i, when, name, f"u{i}@example.com", f"u{i}@example.com",
                      f"ขออนุญาตก่อสร้างอาคาร เลขที่ {i}", code, code, status, "รับเรื่อง", "", f"<m{i}@x>",
                      json.dumps({"verdict": "complete", "items": []})))
        messages.append((i, "a@imap", "INBOX", 1, i, f"<m{i}@x>", f"h{i}", f"s{i}", f"archive/s{i}.eml", 100, when,
                         f"u{i}@example.com", "x", "registered", i, when))
        sent = {N: "held", N - 1: "bounced", N - 2: "failed"}.get(i, "sent")    # a few for the queue to list
        outbox.append((f"<r{i}@x>", "receipt", i, i, f"u{i}@example.com", "x", b"x", sent, when, when))
    with st.tx() as db:
        db.executemany("INSERT INTO cases (id, receipt, year_be, seq, message_row, received_at, sender_name, "
                       "sender_addr, reply_to, subject, service_code, service_name, status, action, remark, "
                       "message_id, checklist) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cases)
        db.executemany("INSERT INTO messages (id, account, folder, uidvalidity, uid, message_id, content_hash, "
                       "sha256, archive, size, received_at, sender, subject, outcome, case_id, decided_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", messages)
        db.executemany("INSERT INTO outbox (message_id, kind, case_id, message_row, recipient, subject, raw, status, "
                       "created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?)", outbox)
    yield st
    st.close()


def _plans(st: State, reads) -> list[tuple[str, list[str]]]:
    seen: list[str] = []
    st.db.set_trace_callback(seen.append)
    try:
        reads(st)
    finally:
        st.db.set_trace_callback(None)
    out = []
    for sql in seen:
        if sql.lstrip().upper().startswith("SELECT") and "sqlite_master" not in sql:
            out.append((sql, [row[3] for row in st.db.execute("EXPLAIN QUERY PLAN " + sql)]))
    return out


def _work_queue(st: State) -> None:
    for read in (st.work_unclassified, st.work_held_mail, st.work_undelivered, st.work_flagged,
                 st.work_quarantined, st.work_documents_unsure):
        read(50)


def _filtered(st: State) -> None:
    search = CaseSearch(status="in_progress", service="CMP")
    assert st.count_cases_found(search) == len(st.cases_found(search, 500, 0)) > 0


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "after ANALYZE"])
def test_work_queue_and_filters_never_scan(state, analyzed):
    if analyzed:
        state.db.execute("ANALYZE")
    found = _plans(state, _work_queue) + _plans(state, _filtered)
    assert len(found) >= 10
    assert state.work_held_mail(50)[1][0]["receipt"] == f"{N}/2569"
    assert [r["receipt"] for r in state.work_undelivered(50)[1]] == [f"{N - 2}/2569", f"{N - 1}/2569"]
    for sql, plan in found:
        assert not [d for d in plan if d.startswith("SCAN")], (sql, plan)


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "after ANALYZE"])
def test_a_name_search_reads_no_table_whole(state, analyzed):
    if analyzed:
        state.db.execute("ANALYZE")
    if not state._indexed():
        pytest.skip("this SQLite has no FTS5: the search reads every case (LIKE), as documented")
    search = CaseSearch(words="ศรีสุข")
    results: dict[str, object] = {}

    def reads(st: State) -> None:
        results["count"] = st.count_cases_found(search)
        results["page"] = [r["receipt"] for r in st.cases_found(search, 50, 0)]

    for sql, plan in _plans(state, reads):
        assert not [d for d in plan if d in ("SCAN cases", "SCAN c")], (sql, plan)
    # the matches, newest receipt first, as the list always showed them
    every = [r for r in state.db.execute("SELECT receipt, year_be, seq FROM cases WHERE sender_name LIKE "
                                         "'%ศรีสุข%' ORDER BY year_be DESC, seq DESC")]
    assert results["count"] == len(every) > 50
    assert results["page"] == [r[0] for r in every[:50]]
