"""The store's own rules, without servers: the checklist's verdict is read from its JSON, not
from the order its keys were written in (migration 9), for new rows, changed rows and rows
written before the upgrade."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mailbot.store import MIGRATIONS, SCHEMA_VERSION, State
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
