"""Upgrades keep the data: a workspace written by the round-1 release (its database, config,
rules, templates, register and archive, kept in tests/fixtures/round1) opens with today's code,
is migrated in one step after a copy is kept, and goes on working against real servers."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import openpyxl
import pytest
import yaml

from mailbot.config import load_config, yaml_load
from mailbot.mail.servers import ImapServer, SmtpServer
from mailbot.store import SCHEMA_VERSION, State

from .conftest import Env, letter

pytestmark = pytest.mark.slow   # old workspaces through subprocesses

ROUND1 = Path(__file__).parent / "fixtures" / "round1"
from .conftest import AGENCY as USER  # noqa: E402
from .conftest import PASSWORD


@pytest.fixture
def old_office(tmp_path):
    root = tmp_path / "office"
    shutil.copytree(ROUND1, root)
    with ImapServer(USER, PASSWORD) as imap, SmtpServer(USER, PASSWORD) as smtp:
        path = root / "mailbot.yaml"
        data = yaml_load(path.read_text(encoding="utf-8"))
        data["imap"]["port"], data["smtp"]["port"] = imap.port, smtp.port
        data["imap"]["password"] = data["smtp"]["password"] = PASSWORD
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        yield Env(imap, smtp, root, path)


def test_round1_database_migrates_once_after_a_copy_is_kept(old_office):
    env = old_office
    db = env.root / "data" / "state.sqlite3"
    before = sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
    assert before == 2
    state = State(db)
    try:
        assert state.migrated_from == 2
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cases = [tuple(r) for r in state.db.execute("SELECT receipt, status FROM cases ORDER BY seq")]
        assert cases == [("1/2569", "awaiting_documents"), ("2/2569", "completed"), ("3/2569", "received"),
                         ("4/2569", "review")]
        # round 1 wrote "ส่งแล้ว / sent" in the reply column: Thai only now
        assert all("/ sent" not in (r[0] or "") for r in state.db.execute("SELECT reply_status FROM cases"))
        assert state.db.execute("SELECT status FROM results").fetchone()[0] == "sent"
    finally:
        state.close()
    kept = db.with_name("state.sqlite3.schema2.bak")
    assert kept.exists() and sqlite3.connect(kept).execute("PRAGMA user_version").fetchone()[0] == 2
    again = State(db)                                   # the second open migrates nothing
    assert again.migrated_from is None
    again.close()


def test_round1_workspace_keeps_working(old_office):
    env = old_office
    load_config(env.config_path)                       # the old mailbot.yaml loads as it is
    r = env.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    r = env.cli("case", "show", "1/2569")
    assert r.returncode == 0 and "รอเอกสารเพิ่มเติม" in r.stdout, r.stderr
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร หลังใหม่", sender="new@example.com"))
    r = env.cli("poll")
    assert r.returncode == 0, r.stderr
    assert "5/2569" in r.stdout                          # the numbers go on from round 1's
    wb = openpyxl.load_workbook(env.root / "registers" / "ทะเบียนรับ-2569.xlsx")
    rows = list(wb.active.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == ["1/2569", "2/2569", "3/2569", "4/2569", "5/2569"]
    # round 1's register was written by round 1's code: mailbot knows it by its recorded size only,
    # so it is rewritten whole; nothing is set aside
    assert not list((env.root / "registers").glob("*ฉบับเดิม*"))
    r = env.cli("case", "set", "3/2569", "--status", "in_progress", "--note", "หลังอัปเกรด", "--by", "ทดสอบ")
    assert r.returncode == 0, r.stderr
    r = env.cli("status")
    assert r.returncode == 0 and "ยังไม่เคย / never" not in r.stdout.splitlines()[0]
