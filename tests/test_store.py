"""The store's own rules, without servers: the checklist's verdict is read from its JSON, not
from the order its keys were written in (migration 9), for new rows, changed rows and rows
written before the upgrade."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mailbot.store import MIGRATIONS, SCHEMA_VERSION, State
from mailbot.store.db import CACHE_KB
from mailbot.store.schema import BASE_SCHEMA, BASE_VERSION, run_script

NOW = "2026-12-04T03:00:00+00:00"


def _case(state: State, subject: str, checklist: str | None, status: str = "received"):  # type: ignore[no-untyped-def]
    with state.tx():
        return state.new_case(2569, message_row=0, received_at=NOW, subject=subject, status=status,
                              checklist=checklist)


def _unsure(state: State) -> list[str]:
    count, rows = state.work_documents_unsure(50)
    assert count == len(rows)
    return [r["subject"] for r in rows]


def test_the_unsure_filter_does_not_depend_on_the_order_of_the_keys(tmp_path: Path):
    state = State(tmp_path / "state.sqlite3")
    try:
        _case(state, "verdict first", json.dumps({"verdict": "unsure", "missing": []}))
        _case(state, "verdict last", json.dumps({"missing": [], "verdict": "unsure"}))
        _case(state, "no space", '{"missing":[],"verdict":"unsure"}')
        _case(state, "complete", json.dumps({"missing": [], "verdict": "complete"}))
        _case(state, "closed", json.dumps({"missing": [], "verdict": "unsure"}), status="closed")
        _case(state, "no checklist", None)
        bad = _case(state, "not JSON", "{verdict: unsure")           # no verdict, and no error either
        assert state.case_by_id(bad["id"])["checklist_verdict"] is None
        assert _unsure(state) == ["verdict first", "verdict last", "no space"]

        # a checklist written again: the verdict follows, whoever writes it
        first = state.case("1/2569")
        assert first is not None
        with state.tx():
            state.update_case(first["id"], checklist=json.dumps({"items": [], "verdict": "complete"}))
            state.update_case(bad["id"], checklist=json.dumps({"rejected": [], "verdict": "unsure"}))
        assert _unsure(state) == ["verdict last", "no space", "not JSON"]
        with state.tx():
            state.update_case(bad["id"], remark="a change that leaves the checklist alone")
        assert state.case_by_id(bad["id"])["checklist_verdict"] == "unsure"
    finally:
        state.close()


def test_the_verdicts_of_rows_written_before_the_upgrade_are_filled_in(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    run_script(db, BASE_SCHEMA)
    for version in range(BASE_VERSION + 1, 9):            # the database as release 8 left it
        step = MIGRATIONS[version]
        if callable(step):
            step(db)
        else:
            run_script(db, step)
    db.execute("PRAGMA user_version=8")
    checklists = [json.dumps({"missing": [], "verdict": "unsure"}), json.dumps({"verdict": "unsure"}),
                  json.dumps({"verdict": "incomplete", "missing": ["x"]}), "not JSON", "[1, 2]", None]
    for seq, checklist in enumerate(checklists, start=1):
        db.execute("INSERT INTO cases (receipt, year_be, seq, message_row, received_at, subject, status, checklist) "
                   "VALUES (?,?,?,?,?,?,?,?)", (f"{seq}/2569", 2569, seq, 0, NOW, f"case {seq}", "review", checklist))
    db.close()

    state = State(path)
    try:
        assert state.migrated_from == 8 and SCHEMA_VERSION >= 9
        verdicts = [r["checklist_verdict"] for r in state.cases_of_year(2569)]
        assert verdicts == ["unsure", "unsure", "incomplete", None, None, None]
        assert _unsure(state) == ["case 1", "case 2"]
        names = {r[0] for r in state.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "cases_checklist_verdict" in names and "cases_unsure" not in names
    finally:
        state.close()


def test_the_unsure_queue_reads_the_partial_index(tmp_path: Path):
    state = State(tmp_path / "state.sqlite3")
    try:
        plan = " ".join(r[3] for r in state.db.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM cases c WHERE c.checklist_verdict = 'unsure' "
            "AND c.status IN (?,?,?,?)", ("awaiting_documents", "in_progress", "received", "review")))
        assert "cases_checklist_verdict" in plan, plan
    finally:
        state.close()


def test_the_search_index_finds_what_reading_every_case_finds(tmp_path: Path):
    """The trigram index (migration 17) answers as the LIKE it replaces: any three letters or more of
    a name, an address or a subject, Thai or Latin, any case of Latin letters, wildcards and quotes as
    plain text; kept in step when a case's name changes (the officer's correction, privacy) or a case
    is removed; shorter words and a database without the index fall back to reading every case."""
    import random

    from mailbot.store.queries import CaseSearch

    first = ["สมชาย", "สมหญิง", "มาลี", "ประยุทธ์", "นิดา", "John", "O'Brien", "กนกพร"]
    last = ["ใจดี", "ศรีสุข", "มั่นคง", "Smith", "ทองดี", 'คำ"ดี']
    subjects = ["ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", "ร้องเรียนถนนชำรุด 100%_ซอย 5", "สอบถามภาษีที่ดิน",
                "Request for information", "ขอคัดสำเนาเอกสาร", "ร้องเรียนน้ำเสีย หมู่ 3"]
    rnd = random.Random(7)
    state = State(tmp_path / "state.sqlite3")
    try:
        assert state._indexed()
        with state.tx():
            for i in range(300):
                f, s = rnd.choice(first), rnd.choice(last)
                state.new_case(2569, message_row=0, received_at=NOW, status="received", subject=rnd.choice(subjects),
                               sender_name=f"{f} {s}", sender_addr=f"user{i}@{rnd.choice(['example.com', 'mail.go.th'])}")
            # the officer corrects a name; the privacy clean-up blanks one
            state.db.execute("UPDATE cases SET sender_name='วิชัย เปลี่ยนชื่อ' WHERE id=5")
            state.db.execute("UPDATE cases SET sender_name=NULL, sender_addr=NULL WHERE id=6")

        def both(words: str) -> tuple[list[int], list[int]]:
            found = []
            for indexed in (True, False):
                where, args = CaseSearch(words=words).where(indexed)
                found.append([r[0] for r in state.db.execute(f"SELECT id FROM cases{where} ORDER BY id", args)])
            return found[0], found[1]

        queries = ["สมชาย", "ชาย", "ใจดี ", "ศรีสุข", "john", "JOHN SMITH", "o'brien", 'คำ"ดี', "100%_", "%_ซ",
                   "ก่อสร้าง", "mail.go.th", "user12@", "เปลี่ยนชื่อ", "ไม่มีชื่อนี้", "ขอ", "ดี", "มาลี มั่นคง",
                   "information", "e.c"]
        for q in queries:
            fts, like = both(" ".join(q.split()))
            assert fts == like, q
        assert both("เปลี่ยนชื่อ")[0] == [5] and 6 not in both("user6@")[0]
        assert len(both("สมชาย")[0]) > 10                     # the comparison is not between two empty lists
        # the index is used: the plan reads cases_fts, not every row of cases
        where, args = CaseSearch(words="สมชาย").where(True)
        plan = " ".join(r[-1] for r in state.db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM cases{where}", args))
        assert "cases_fts" in plan and "SCAN cases" not in plan.replace("SCAN cases_fts", "")
        with state.tx():
            state.db.execute("DELETE FROM cases WHERE id=5")
        assert both("เปลี่ยนชื่อ") == ([], [])
    finally:
        state.close()


def _temporary_files() -> list[str]:
    """SQLite's temporary files this process holds open (they are deleted as soon as opened:
    seen only through /proc)."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if "etilqs_" in target:
            found.append(target)
    return found


def test_a_savepoint_keeps_its_journal_in_memory_not_in_the_temporary_folder(tmp_path: Path):
    """Every message is recorded under a savepoint: the pages it changes are journalled so that
    it can be rolled back alone. SQLite spills that journal to a file in the temporary folder
    past 64 KB (163 MB written there for a 1,000-message poll, each file read by an office PC's
    virus scanner); the store keeps it in memory."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see the files SQLite holds open (Linux)")
    st = State(tmp_path / "state.sqlite3")
    with st.tx():
        st.db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
        st.db.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 900,) for _ in range(2000)])
    before = _temporary_files()
    with st.tx():
        with st.tx():        # a savepoint changing ~2 MB of pages that existed before it
            st.db.execute("UPDATE filler SET body = 'y' || substr(body, 2)")
            during = _temporary_files()
    assert during == before, f"SQLite wrote a savepoint's journal to temporary files: {during}"
    assert st.db.execute("SELECT count(*) FROM filler WHERE body LIKE 'y%'").fetchone()[0] == 2000
    assert st.db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KB
