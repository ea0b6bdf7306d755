"""The store's contract, run against both databases: SQLite (one office; fast tier) and
PostgreSQL (a host's tenant; slow tier, a real server from Debian's package, tests/postgres.py).
The same statements, the same migrations, the same answers: numbering, the fixed registration
fields and the append-only audit log (triggers), upserts, savepoints, the checklist verdict, the
name search, two writers at once, and — PostgreSQL only — tenants that cannot reach each other."""
from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailbot.store import SCHEMA_VERSION, CaseSearch, State, iso

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def opener(request, tmp_path: Path):
    """A function that opens the store (again) — the same database each time — for a tenant."""
    opened: list[State] = []
    if request.param == "sqlite":
        def open_(tenant: str = "office") -> State:
            st = State(tmp_path / tenant / "state.sqlite3")
            opened.append(st)
            return st
    else:
        url = request.getfixturevalue("postgres").new_database()

        def open_(tenant: str = "office") -> State:
            st = State(url=url, tenant=tenant)
            opened.append(st)
            return st
        open_.url = url  # type: ignore[attr-defined]
    open_.kind = request.param  # type: ignore[attr-defined]
    yield open_
    for st in opened:
        try:
            st.close()
        except Exception:  # noqa: BLE001 - closed already, in the thread that used it
            pass


def _case(st: State, subject: str = "ขออนุญาตก่อสร้างอาคาร", year: int = 2569, **fields):  # type: ignore[no-untyped-def]
    fields.setdefault("status", "received")
    fields.setdefault("received_at", NOW.isoformat())
    with st.tx():
        return st.new_case(year, message_row=0, subject=subject, **fields)


def test_a_new_database_is_made_at_this_release_and_reopened_as_it_is(opener):
    st = opener()
    assert st.created and st.migrated_from is None
    assert st.get("recovery_pending") == "created"
    st.close()
    again = opener()
    assert not again.created and again.migrated_from is None


def test_numbers_run_on_without_a_gap_per_year_and_never_fall_below_a_known_one(opener):
    st = opener()
    assert [_case(st)["receipt"] for _ in range(3)] == ["1/2569", "2/2569", "3/2569"]
    assert _case(st, year=2570)["receipt"] == "1/2570"
    with st.tx():
        st.raise_floor(2569, 10)
        st.raise_floor(2569, 5)             # a lower number known: the counter stays
    assert _case(st)["receipt"] == "11/2569"
    with st.tx():
        rebuilt = st.insert_case(2569, 20, message_row=0, subject="กู้คืน", status="received",
                                 received_at=NOW.isoformat())
    assert rebuilt["receipt"] == "20/2569"
    assert _case(st)["receipt"] == "21/2569"
    assert st.issued() == {2569: 21, 2570: 1}


def test_a_registered_number_date_and_subject_never_change(opener):
    st = opener()
    case = _case(st, sender_name="สมชาย ใจดี")
    for change in ({"subject": "อื่น"}, {"receipt": "99/2569"}, {"received_at": "2026-01-01T00:00:00+00:00"}):
        with pytest.raises(Exception) as caught:
            with st.tx():
                st.update_case(case["id"], **change)
        assert "never change" in str(caught.value)
        assert any(c.__name__ == "IntegrityError" for c in type(caught.value).__mro__)
    with st.tx():
        st.update_case(case["id"], remark="ได้รับเอกสารครบ", sender_name="สมชาย ใจดี")   # other fields may
    assert st.case("1/2569")["remark"] == "ได้รับเอกสารครบ"
    assert st.case("1/2569")["subject"] == "ขออนุญาตก่อสร้างอาคาร"


def test_the_audit_log_is_append_only_and_its_chain_verifies(opener):
    st = opener()
    _case(st)
    _case(st)
    with st.tx():
        st.audit(NOW, "officer", "cancelled", "2/2569", {"reason": "ยื่นซ้ำ"})
    assert [r["action"] for r in st.audit_rows()][:1] == ["cancelled"]
    assert st.audit_verify().ok
    for statement in ("UPDATE audit SET actor='x'", "DELETE FROM audit"):
        with pytest.raises(Exception) as caught:
            with st.tx() as db:
                db.execute(statement)
        assert "append-only" in str(caught.value)
    assert st.audit_verify().ok and len(st.audit_rows()) == 3
    if opener.kind == "postgresql":                  # PostgreSQL has TRUNCATE, which skips row triggers
        with pytest.raises(Exception, match="append-only"):
            with st.tx() as db:
                db.execute("TRUNCATE audit")
    assert len(st.audit_rows()) == 3


def test_the_checklist_verdict_follows_the_json_whoever_writes_it(opener):
    st = opener()
    _case(st, "first", checklist=json.dumps({"verdict": "unsure", "missing": []}))
    _case(st, "last", checklist='{"missing":[],"verdict":"unsure"}')
    bad = _case(st, "not JSON", checklist="{verdict: unsure")
    _case(st, "a list", checklist='["unsure"]')
    _case(st, "complete", checklist=json.dumps({"verdict": "complete"}))
    assert st.case_by_id(bad["id"])["checklist_verdict"] is None
    count, rows = st.work_documents_unsure(50)
    assert count == 2 and sorted(r["subject"] for r in rows) == ["first", "last"]
    with st.tx():
        st.update_case(bad["id"], checklist=json.dumps({"verdict": "unsure"}))
    assert st.work_documents_unsure(50)[0] == 3


def test_upserts_savepoints_and_rollbacks(opener):
    st = opener()
    st.put("k", "one")
    st.put("k", "two")
    assert st.get("k") == "two"
    st.put("k", None)
    assert st.get("k") is None
    with st.tx():
        st.record_alert("disk", NOW, "first")
        st.record_alert("disk", NOW + timedelta(hours=1), "second")
    assert st.alert_last_at("disk") == (NOW + timedelta(hours=1)).isoformat()
    st.save_session("h", "csrf1", None, 100.0, "[]")
    st.save_session("h", "csrf2", "somchai", 200.0, '["x"]')       # written again whole
    row = st.console_session("h")
    assert (row["csrf"], row["officer"], row["expires"]) == ("csrf2", "somchai", 200.0)
    st.put("outer", "kept")
    with st.tx():
        st.put("a", "1")
        with pytest.raises(RuntimeError):
            with st.tx():
                st.put("b", "2")
                raise RuntimeError("the inner step fails")
        st.put("c", "3")
    assert (st.get("a"), st.get("b"), st.get("c")) == ("1", None, "3")
    with pytest.raises(RuntimeError):
        with st.tx():
            st.put("d", "4")
            raise RuntimeError
    assert st.get("d") is None
    with st.tx():
        st.mark_dirty(2569, 1)
        st.mark_dirty(2569, 1)
    assert st.dirty_years() == {2569: 2}


def test_the_outbox_and_the_ledger_answer_the_same(opener):
    st = opener()
    with st.tx():
        st.start_attempts("acct", "INBOX", 4_000_000_000, [1, 2], NOW)     # UIDVALIDITY is unsigned 32-bit
        st.start_attempts("acct", "INBOX", 4_000_000_000, [2, 3], NOW + timedelta(days=40))
    ledger = st.ledger("acct", "INBOX", 4_000_000_000, [1, 2, 3, 4])
    assert set(ledger) == {1, 2, 3}
    assert (ledger[1].attempts, ledger[2].attempts, ledger[3].attempts) == (1, 2, 1)
    # first seen on its first attempt, and kept on the next (a message without an arrival time counts
    # as received then)
    assert [ledger[u].first_seen for u in (1, 2, 3)] == [iso(NOW), iso(NOW), iso(NOW + timedelta(days=40))]
    row = st.row_id("acct", "INBOX", 4_000_000_000, 1)
    with st.tx():
        st.record_message(row, outcome="registered", moved=False)
    assert st.message_outcome(row) == "registered"
    case = _case(st)
    with st.tx():
        st.queue_reply(message_id="<r1@x>", kind="receipt", case_id=case["id"], message_row=row,
                       recipient="somchai@example.com", subject="เลขรับ 1/2569", raw=b"From: x\r\n\r\nhi",
                       status="queued", hold_reason=None, now=NOW)
    [queued] = st.queued()
    assert bytes(queued["raw"]) == b"From: x\r\n\r\nhi"
    with st.tx():
        st.record_sent(queued["id"], NOW)
    assert st.outbox_fate("<r1@x>")["status"] == "sent"
    assert st.replies_to_since("somchai@example.com", NOW - timedelta(days=1)) == 1
    assert st.count_outbox("sent") == 1


def test_a_name_is_found_by_any_three_letters_and_an_address_in_any_case(opener):
    st = opener()
    _case(st, "ขอใบอนุญาต", sender_name="สมศรี มีสุข", sender_addr="Somsri@Example.com")
    _case(st, "ร้องเรียนเสียงดัง", sender_name="ประยุทธ์ ทองดี", sender_addr="prayut@example.com")
    for words, found in (("ศรี มี", ["1/2569"]), ("somsri@example", ["1/2569"]), ("SOMSRI", ["1/2569"]),
                         ("เสียงดัง", ["2/2569"]), ("example.com", ["2/2569", "1/2569"]), ("ไม่มีใคร", [])):
        search = CaseSearch(words=words)
        assert st.count_cases_found(search) == len(found), words
        assert [r["receipt"] for r in st.cases_found(search, 10, 0)] == found, words


def test_two_writers_at_once_take_numbers_one_after_the_other(opener):
    opener().close()
    taken: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        st = opener()          # a connection of its own, as the service and the console each have
        try:
            for _ in range(25):
                taken.append(_case(st)["receipt"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            st.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(int(r.split("/")[0]) for r in taken) == list(range(1, 51))
    assert opener().audit_verify().ok


def test_a_database_from_a_newer_release_is_refused(opener):
    st = opener()
    with st.tx() as db:
        if opener.kind == "sqlite":
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        else:
            db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION + 1,))
    st.close()
    with pytest.raises(Exception, match="newer"):
        opener()


# ---------------------------------------------------------------------- PostgreSQL: tenants

@pytest.mark.slow
def test_tenants_keep_their_own_numbers_and_cannot_reach_each_other(postgres):
    import psycopg

    from mailbot.store import pg

    url = postgres.new_database()
    a = State(url=url, tenant="banrai")
    b = State(url=url, tenant="nongbua")
    try:
        assert _case(a, "ของบ้านไร่", sender_name="ก ไก่")["receipt"] == "1/2569"
        assert _case(a)["receipt"] == "2/2569"
        assert _case(b, "ของหนองบัว")["receipt"] == "1/2569"          # its own numbering
        assert [r["subject"] for r in b.cases_found(CaseSearch(words="บ้านไร่"), 10, 0)] == []
        assert b.case("2/2569") is None
        assert a.audit_verify().ok and b.audit_verify().ok
        assert len(a.audit_rows()) == 2 and len(b.audit_rows()) == 1
        # every table is the tenant's: nothing of mailbot's lies outside the tenants' schemas
        with psycopg.connect(url) as conn:
            public = conn.execute("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema NOT LIKE 'agency_%' AND table_schema NOT IN "
                                  "('pg_catalog', 'information_schema')").fetchall()
            assert public == []
            # a connection with no tenant finds no table of any agency
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute("SELECT count(*) FROM cases")
    finally:
        a.close()
        b.close()
    # no store without a tenant, and no tenant name that is not a plain identifier
    with pytest.raises(ValueError):
        State(url=url)
    for bad in ("", "Bad", "a-b", "x; DROP SCHEMA agency_banrai", "a" * 60, "public"):
        with pytest.raises(ValueError):
            pg.connect(url, bad) if bad != "public" else pg.schema_of("1public")


def test_the_whole_database_exports_to_one_sqlite_file_that_carries_on(opener, tmp_path: Path, monkeypatch):
    """A host tenant's backup (and an agency leaving its host): every row, the chain verifying,
    numbering carrying on from where it was, the name search working in the copy. Read a few rows
    at a time (here 1), never a whole table at once."""
    from mailbot.store import db

    monkeypatch.setattr(db, "EXPORT_BATCH", 1)
    st = opener()
    _case(st, sender_name="สมศรี มีสุข", checklist=json.dumps({"verdict": "unsure"}))
    _case(st)
    with st.tx():
        st.save_officer("somsak", "scrypt:1$x$y", NOW)
        st.queue_reply(message_id="<r1@x>", kind="receipt", case_id=1, message_row=None, recipient="a@b.c",
                       subject="s", raw=b"\x00\xffbytes", status="queued", hold_reason=None, now=NOW)
    target = tmp_path / "export" / "state.sqlite3"
    with st.tx():
        st.export_sqlite(target)
    copy = State(target)
    try:
        assert not copy.created and copy.get("recovery_pending") == st.get("recovery_pending")
        assert [c["receipt"] for c in copy.cases_listed()] == ["1/2569", "2/2569"]
        assert copy.audit_verify().ok and copy.audit_hashes() == st.audit_hashes()
        assert bytes(copy.queued()[0]["raw"]) == b"\x00\xffbytes"
        assert copy.officer_exists("somsak")
        assert copy.work_documents_unsure(10)[0] == 1
        assert [r["receipt"] for r in copy.cases_found(CaseSearch(words="มีสุข"), 10, 0)] == ["1/2569"]
        assert _case(copy)["receipt"] == "3/2569"
    finally:
        copy.close()


def test_a_transaction_rolled_back_leaves_no_gap_in_the_audit_numbers(opener):
    """A gap in the audit log's numbers reads as entries deleted: PostgreSQL's sequences do not
    roll back, so the chain numbers its entries itself (a worker killed mid-cycle rolls back)."""
    st = opener()
    _case(st)
    with pytest.raises(RuntimeError):
        with st.tx():
            st.new_case(2569, message_row=0, subject="rolled back", status="received", received_at=NOW.isoformat())
            raise RuntimeError("killed")
    _case(st)
    assert [r["id"] for r in st.audit_rows()] == [2, 1]
    assert st.audit_verify().ok and [c["receipt"] for c in st.cases_listed()] == ["1/2569", "2/2569"]


@pytest.mark.slow
def test_a_word_search_in_postgresql_can_use_the_trigram_indexes(postgres):
    """The words of a search reach pg_trgm's GIN indexes (the planner may choose them: here
    sequential scans are switched off to see whether it can), from the tenant's own search path."""
    url = postgres.new_database()
    st = State(url=url, tenant="office")
    try:
        _case(st, sender_name="สมศรี มีสุข")
        where, args = CaseSearch(words="มีสุข").where(st._indexed())
        with st.tx() as db:
            db.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in db.execute(f"EXPLAIN SELECT id FROM cases{where}", args).fetchall())
        assert "cases_trgm_name" in plan, plan
        assert db.execute("SHOW search_path").fetchone()[0] == '"agency_office"' or \
            db.execute("SHOW search_path").fetchone()[0] == "agency_office"
    finally:
        st.close()


@pytest.mark.slow
def test_the_intake_case_and_console_suites_pass_with_the_state_in_postgresql(postgres):
    """The acceptance tests of intake, cases and the console, run again with every workspace's
    state in a PostgreSQL tenant (MAILBOT_TEST_STORE=postgresql; their fast tier)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    modules = ["tests/test_intake.py", "tests/test_cycle.py", "tests/test_cases.py", "tests/test_console_routes.py",
               "tests/test_console_signin.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", *modules, "-m", "not slow", "-q", "-p", "no:cacheprovider"],
                         env=dict(os.environ, MAILBOT_TEST_STORE="postgresql"), cwd=repo, capture_output=True,
                         text=True, timeout=1200)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    print(f"\nwith the state in PostgreSQL: {summary}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in summary and "failed" not in summary


def test_the_translation_to_postgresql():
    """The store's SQL, written once in SQLite's form, as PostgreSQL reads it."""
    from mailbot.store.pg import translate

    assert translate("SELECT * FROM t WHERE a=? AND b LIKE 'x%' AND c=?") == \
        "SELECT * FROM t WHERE a=%s AND b ILIKE 'x%%' AND c=%s"
    assert translate("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"          # a ? in a literal stays
    assert translate("SELECT 'a%b'", with_params=False) == "SELECT 'a%b'"
    assert translate("UPDATE m SET n=max(0, n-1), k=min(a, b) WHERE x=?") == \
        "UPDATE m SET n=GREATEST(0, n-1), k=LEAST(a, b) WHERE x=%s"
    assert translate("SELECT max(seq) FROM cases") == "SELECT max(seq) FROM cases"   # the aggregate stays
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?)") == "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING id") == \
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING RETURNING id"
    assert translate("SELECT group_concat(o.status) FROM o") == "SELECT string_agg(CAST(o.status AS TEXT), ',') FROM o"
    assert "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in translate("CREATE TABLE t (id INTEGER PRIMARY KEY)",
                                                                              with_params=False)
    for bad in ("SELECT 1 -- it's ?", "SELECT group_concat(a, ', ') FROM t"):
        with pytest.raises(ValueError):
            translate(bad)


def test_a_changed_case_marks_its_own_years_register_and_row(opener):
    """``update_case`` reads the year of the row it changed from the UPDATE itself (RETURNING),
    on both databases: the register of that year, not another, is rewritten."""
    st = opener()
    old, new = _case(st, year=2568), _case(st, year=2569)
    written = st.dirty_years()
    for year, version in written.items():
        st.clear_dirty(year, version)
    with st.tx():
        st.db.execute("DELETE FROM register_dirty_cases")
    assert st.dirty_years() == {}
    said: list[str] = []
    if isinstance(st.db, sqlite3.Connection):       # SQLite: the statements themselves are seen
        st.db.set_trace_callback(said.append)
    with st.tx():
        st.update_case(old["id"], reply_status="ส่งแล้ว")
    if isinstance(st.db, sqlite3.Connection):
        st.db.set_trace_callback(None)
        assert [s for s in said if "FROM cases" in s] == [], said     # no second look at the row
    assert st.dirty_years() == {2568: 1}
    assert st.case(old["receipt"])["reply_status"] == "ส่งแล้ว"
    assert st.case(new["receipt"])["reply_status"] is None
    dirty = [r[0] for r in st.db.execute("SELECT case_id FROM register_dirty_cases")]
    assert dirty == [old["id"]]
    with pytest.raises(TypeError):       # no such case: as before, an error, and nothing marked
        with st.tx():
            st.update_case(10_000, reply_status="x")
    assert st.dirty_years() == {2568: 1}
