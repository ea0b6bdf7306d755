"""The whole shared public corpus through a full `mailbot poll`, with SMTP replies, on pymap and
on a real Dovecot: nothing stays in the INBOX, every message lands in exactly one outcome folder,
a second poll is clean, and no bounce or automatic message is answered."""
from __future__ import annotations

import sqlite3
import time

import pytest

from .conftest import CORPUS
from .test_corpus import FILES, need_corpus

FOLDERS = ["ลงทะเบียนแล้ว", "ส่งต่อหน่วยงานอื่น", "อีเมลอัตโนมัติ", "ติดตามเรื่อง", "กักกัน"]

pytestmark = pytest.mark.slow


def test_whole_corpus_through_poll(server_env):
    need_corpus()
    env = server_env
    delivered = 0
    with env.client() as c:
        for name in FILES:
            raw = (CORPUS / name).read_bytes()
            try:
                c.append("INBOX", raw)
                delivered += 1
            except Exception:  # noqa: BLE001 - a server may refuse bytes that are not a message at all
                pass
    assert delivered >= 400, delivered
    started = time.monotonic()
    r = env.cli("poll", timeout=1200)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    assert env.folder_count("INBOX") == 0
    in_folders = {f: env.folder_count(f) for f in FOLDERS}
    assert sum(in_folders.values()) == delivered, in_folders
    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    assert con.execute("SELECT count(*) FROM messages WHERE outcome IS NULL").fetchone()[0] == 0
    # no automatic mail (bounces, auto-replies, lists) was answered
    answered_auto = con.execute(
        "SELECT count(*) FROM outbox o JOIN messages m ON m.id = o.message_row WHERE m.outcome='automatic'").fetchone()[0]
    assert answered_auto == 0
    recipients = [m.rcpt_tos[0].lower() for m in env.smtp.messages]
    assert not [r for r in recipients if r.split("@")[0] in ("mailer-daemon", "postmaster")]
    outbox = {row[0]: row[1] for row in con.execute("SELECT status, count(*) FROM outbox GROUP BY status")}
    assert "queued" not in outbox, outbox            # everything owed was sent, failed or held with a reason
    print(f"\n[{env.kind}] corpus poll: {delivered} delivered, {took:.1f} s, folders {in_folders}, outbox {outbox}")
    r2 = env.cli("poll", timeout=600)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert env.folder_count("INBOX") == 0
