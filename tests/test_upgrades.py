"""Upgrades from both earlier releases: a workspace each release wrote itself (tests/fixtures/round1-full,
by the round-1 release cce1a13, and tests/fixtures/round2, by the round-2 release 23a67be; see their
README.md and make_round1.py / make_round2.py) opens with today's code and goes on working against
live loopback servers — never a crash, and never a mail sent twice: what the old release left queued
goes out exactly once, what it sent, held, failed, bounced or discarded never goes out. Mail kinds
an old release stored that today's code no longer has (round 1's ``status_<status>``) are sent and
listed like the others.
"""
from __future__ import annotations

import email
import re
import shutil
import sqlite3
from collections import Counter
from contextlib import contextmanager
from email import policy
from pathlib import Path
from typing import Iterator

import openpyxl
import pytest
import yaml

from mailbot.casework import workflow
from mailbot.config import load_config, yaml_load
from mailbot.kinds import MAIL_KINDS
from mailbot.mail.servers import ImapServer, SmtpServer

from .conftest import AGENCY, PASSWORD, YEAR, Env, letter

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = ["round1-full", "round2"]
# what round 1 stored for `mailbot case set --status` (templates/status_<status>.txt.j2); today: officer_status
ROUND1_ONLY_KINDS = {"status_in_progress", "status_awaiting_documents", "status_closed"}

pytestmark = pytest.mark.slow


@contextmanager
def old_db(release: str) -> Iterator[sqlite3.Connection]:
    """The fixture's database as the old release left it, read without touching the file."""
    path = FIXTURES / release / "data" / "state.sqlite3"
    con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    con.row_factory = sqlite3.Row
    try:
        yield con
    finally:
        con.close()


def old_outbox(release: str) -> dict[int, sqlite3.Row]:
    with old_db(release) as con:
        return {r["id"]: r for r in con.execute("SELECT id, message_id, kind, status, recipient FROM outbox")}


def old_cases(release: str) -> list[sqlite3.Row]:
    with old_db(release) as con:
        return con.execute("SELECT * FROM cases ORDER BY year_be, seq").fetchall()


def clean(r) -> str:  # type: ignore[no-untyped-def]
    """The command's whole output; it must never hold a traceback."""
    text = r.stdout + r.stderr
    assert "Traceback" not in text, text
    return text


@contextmanager
def live_copy(release: str, tmp_path: Path) -> Iterator[Env]:
    """A copy of the release's workspace, pointed at a live pymap and aiosmtpd on 127.0.0.1."""
    root = tmp_path / "office"
    shutil.copytree(FIXTURES / release, root)
    with ImapServer(AGENCY, PASSWORD) as imap, SmtpServer(AGENCY, PASSWORD) as smtp:
        path = root / "mailbot.yaml"
        data = yaml_load(path.read_text(encoding="utf-8"))
        data["imap"]["port"], data["smtp"]["port"] = imap.port, smtp.port
        data["imap"]["password"] = data["smtp"]["password"] = PASSWORD
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        env = Env(imap, smtp, root, path)
        env.release = release  # type: ignore[attr-defined]
        yield env


@pytest.fixture(params=RELEASES)
def upgraded(request, tmp_path):
    with live_copy(request.param, tmp_path) as env:
        yield env


def received_ids(env: Env) -> Counter:
    out: Counter = Counter()
    for m in env.smtp.messages:
        mid = email.message_from_bytes(m.data, policy=policy.default)["Message-ID"]
        out[str(mid).strip().lower()] += 1
    return out


def statuses(env: Env) -> dict[int, str]:
    con = sqlite3.connect(env.root / "data" / "state.sqlite3")
    try:
        return {i: s for i, s in con.execute("SELECT id, status FROM outbox")}
    finally:
        con.close()


def test_the_fixture_holds_what_the_release_could_write(upgraded):
    """The fixture is what the tests below rely on: rows queued, held, failed and sent, cases in every
    status the release had, and (round 1) the kinds today's code no longer has."""
    rows = old_outbox(upgraded.release).values()
    by_status = Counter(r["status"] for r in rows)
    for status in ("queued", "held", "failed", "sent", "bounced"):
        assert by_status[status] > 0, status
    kinds = {r["kind"] for r in rows}
    queued_kinds = {r["kind"] for r in rows if r["status"] == "queued"}
    case_statuses = {c["status"] for c in old_cases(upgraded.release)}
    if upgraded.release == "round1-full":
        assert kinds - set(MAIL_KINDS) == ROUND1_ONLY_KINDS
        assert queued_kinds >= ROUND1_ONLY_KINDS
        assert case_statuses == set(workflow.STATUSES) - {"cancelled"}
    else:
        assert kinds <= set(MAIL_KINDS) and queued_kinds == set(MAIL_KINDS)   # every kind round 2 has, queued
        assert by_status["discarded"] > 0
        assert case_statuses == set(workflow.STATUSES)


def test_check_status_and_every_case_after_the_upgrade(upgraded):
    env = upgraded
    load_config(env.config_path)                 # the old mailbot.yaml loads as it is
    r = env.cli("check")
    assert r.returncode == 0, clean(r)
    clean(r)
    r = env.cli("status")
    assert r.returncode == 0, clean(r)
    if env.release == "round2":                    # round 2 recorded its last poll (round 1 only in the service)
        assert "ยังไม่เคย / never" not in clean(r).splitlines()[0]
    r = env.cli("case", "list")
    assert r.returncode == 0, clean(r)
    cases = old_cases(env.release)
    assert f"{len(cases)} case(s)" in clean(r)
    shown = {}
    for case in cases:                              # one case of every status the old release left
        shown.setdefault(case["status"], case["receipt"])
    for status, receipt in shown.items():
        r = env.cli("case", "show", receipt)
        assert r.returncode == 0, clean(r)
        out = clean(r)
        assert receipt in out and workflow.label(status) in out, out


def test_three_polls_send_what_was_queued_exactly_once_and_nothing_else(upgraded):
    env = upgraded
    before = old_outbox(env.release)
    for i in range(3):
        r = env.cli("poll")
        assert r.returncode == 0, f"poll {i + 1}: " + clean(r)
        clean(r)
    got = received_ids(env)
    twice = {mid: n for mid, n in got.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    by_status: dict[str, list[sqlite3.Row]] = {}
    for row in before.values():
        by_status.setdefault(row["status"], []).append(row)
    missing = [(r["id"], r["kind"], r["recipient"]) for r in by_status["queued"] if got[r["message_id"].lower()] != 1]
    assert not missing, f"queued by the old release, not delivered exactly once: {missing}"
    for status in ("sent", "held", "failed", "bounced", "discarded"):
        again = [(r["id"], r["kind"]) for r in by_status.get(status, []) if got[r["message_id"].lower()]]
        assert not again, f"{status} rows sent again: {again}"
    now = statuses(env)
    assert all(now[r["id"]] == "sent" for r in by_status["queued"])
    for status in ("held", "failed"):              # held stays held, failed stays failed
        assert {now[r["id"]] for r in by_status[status]} == {status}, status
    if env.release == "round1-full":                # round 1's status_<x> rows went out like the rest
        assert {r["kind"] for r in by_status["queued"] if now[r["id"]] == "sent"} >= ROUND1_ONLY_KINDS

    r = env.cli("reply", "list")                    # held and failed rows of every kind, old ones too
    assert r.returncode == 0, clean(r)
    listed = {int(n) for n in re.findall(r"^#(\d+)\s", clean(r), re.M)}
    kept = {r["id"] for s in ("held", "failed") for r in by_status[s]}
    assert kept <= listed, sorted(kept - listed)
    if env.release == "round1-full":
        assert {before[i]["kind"] for i in kept} >= ROUND1_ONLY_KINDS
    r = env.cli("status")
    assert r.returncode == 0, clean(r)
    assert received_ids(env) == got                # reading the state sends nothing


def test_an_old_held_reply_released_goes_out_once(upgraded):
    """`mailbot reply release` on a row the old release held: round 1's status_<x> kind, round 2's
    flagged receipt (DMARC failed). It goes out at the next poll, once."""
    env = upgraded
    held = [r for r in old_outbox(env.release).values() if r["status"] == "held"]
    if env.release == "round1-full":
        row = next(r for r in held if r["kind"] in ROUND1_ONLY_KINDS)
    else:
        with old_db(env.release) as con:
            row = next(r for r in held if con.execute(
                "SELECT hold_reason FROM outbox WHERE id=?", (r["id"],)).fetchone()[0].startswith("flagged"))
    r = env.cli("reply", "release", str(row["id"]), "--by", "ทดสอบ")
    assert r.returncode == 0, clean(r)
    clean(r)
    for _ in range(2):
        r = env.cli("poll")
        assert r.returncode == 0, clean(r)
        clean(r)
    got = received_ids(env)
    assert got[row["message_id"].lower()] == 1, (row["kind"], got)
    assert statuses(env)[row["id"]] == "sent"
    assert not {mid: n for mid, n in got.items() if n > 1}


def test_receipt_numbers_and_the_register_go_on(upgraded):
    env = upgraded
    cases = old_cases(env.release)
    last = max(c["seq"] for c in cases if c["year_be"] == YEAR)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร หลังใหม่ หลังการปรับรุ่น", sender="ผู้ยื่นใหม่ <new.citizen@example.com>"))
    r = env.cli("poll")
    assert r.returncode == 0, clean(r)
    new = f"{last + 1}/{YEAR}"
    assert new in clean(r)
    r = env.cli("case", "show", new)
    assert r.returncode == 0 and "หลังการปรับรุ่น" in clean(r), clean(r)
    wb = openpyxl.load_workbook(env.root / "registers" / f"ทะเบียนรับ-{YEAR}.xlsx")
    numbers = [row[0] for row in wb.active.iter_rows(values_only=True)
               if isinstance(row[0], str) and re.fullmatch(rf"\d+/{YEAR}", row[0])]
    assert numbers == [c["receipt"] for c in cases if c["year_be"] == YEAR] + [new]
    replies = [m for m in env.replies() if "new.citizen@example.com" in str(m["To"])]
    assert len(replies) == 1 and new in str(replies[0]["Subject"])


@pytest.fixture
def round2(tmp_path):
    """The round-2 workspace only (its audit log, dispatch register, console accounts, OAuth2 token)."""
    with live_copy("round2", tmp_path) as env:
        yield env


def test_round2_audit_dispatch_numbers_accounts_and_token_survive(round2):
    env = round2
    with old_db("round2") as con:
        dispatches = con.execute("SELECT seq, number FROM dispatches WHERE year_be=? ORDER BY seq", (YEAR,)).fetchall()
        pattern = yaml_load((FIXTURES / "round2" / "mailbot.yaml").read_text(encoding="utf-8"))["registers"][
            "dispatch_pattern"]
        # a case the officer may still decide: in progress, with an address, no result letter yet
        receipt = con.execute("SELECT receipt FROM cases WHERE status='in_progress' AND reply_to IS NOT NULL "
                              "AND decided_at IS NULL AND cancelled_at IS NULL ORDER BY seq LIMIT 1").fetchone()[0]
    assert dispatches and [d["seq"] for d in dispatches] == list(range(1, len(dispatches) + 1))
    for _ in range(3):
        r = env.cli("poll")
        assert r.returncode == 0, clean(r)
    r = env.cli("audit", "verify")
    assert r.returncode == 0, clean(r)
    clean(r)

    # the next dispatch number follows round 2's
    r = env.cli("results", "letter", receipt, "--outcome", "approved", "--note", "หลังการปรับรุ่น")
    assert r.returncode == 0, clean(r)
    clean(r)
    con = sqlite3.connect(env.root / "data" / "state.sqlite3")
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("SELECT seq, number, receipt, kind FROM dispatches WHERE year_be=? ORDER BY seq",
                           (YEAR,)).fetchall()
    finally:
        con.close()
    assert [(d["seq"], d["number"]) for d in rows[:len(dispatches)]] == [(d["seq"], d["number"]) for d in dispatches]
    new = rows[len(dispatches)]
    assert new["seq"] == len(dispatches) + 1 and new["receipt"] == receipt
    assert new["number"] == pattern.replace("{seq}", str(new["seq"])).replace("{year}", str(YEAR))
    r = env.cli("audit", "verify")                 # and the chain holds with today's entries after round 2's
    assert r.returncode == 0, clean(r)
    clean(r)

    # round 2's console accounts still sign in (the migrated database, today's code)
    from mailbot.console import auth
    from mailbot.store import State

    state = State(env.root / "data" / "state.sqlite3")
    try:
        assert auth.verify(state, "สมศรี", "console-pass-2569") == "สมศรี"
        assert auth.verify(state, "somchai.admin", "another-pass-2569") == "somchai.admin"
        assert auth.verify(state, "สมศรี", "wrong-password") is None
    finally:
        state.close()

    # round 2's OAuth2 token, kept in the file store (data/secrets/credentials.json), loads
    from mailbot.mail import oauth

    cfg = load_config(env.config_path)
    src = oauth.source(cfg.imap)
    assert src.store.kind == "file"
    token = src.current()
    assert token is not None and token.access_token == "fixture-access-token-round2"
    assert token.expires_at.isoformat() == "2026-11-27T04:00:00+00:00"
    assert src._refresh_token == "fixture-refresh-token-round2"
