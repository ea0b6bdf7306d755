"""Acceptance tests run against both pymap and a real Dovecot (Debian's dovecot-imapd):
outcomes, Sent copies, duplicates, MOVE and its COPY fallback, Thai folder names in modified
UTF-7, a UIDVALIDITY change, IDLE, TLS (ssl and starttls), a crash and rerun."""
from __future__ import annotations

import sqlite3
import time

import pytest

from mailbot.faults import EXIT_CODE
from mailbot.ops.daemon import Daemon

from .conftest import letter, state_db

pytestmark = pytest.mark.slow   # a real Dovecot

FOLDERS = ["ลงทะเบียนแล้ว", "ส่งต่อหน่วยงานอื่น", "อีเมลอัตโนมัติ", "ติดตามเรื่อง", "กักกัน"]


def test_every_outcome_and_sent_copies(server_env):
    env = server_env
    with env.client() as c:
        if "Sent" not in {n for _, _, n in c.list_folders()}:
            c.create_folder("Sent")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", message_id="<i1@example.com>"),
                letter("ขอทำบัตรประชาชน", sender="b@example.com"),
                letter("ไม่อยู่", sender="c@example.com", Auto_Submitted="auto-replied"),
                b"\r\n\r\n")
    first = env.cycle()
    env.deliver(letter("Re: ขออนุญาตก่อสร้างอาคาร", body="ส่งเพิ่ม", In_Reply_To="<i1@example.com>"))
    second = env.cycle()
    outcomes = sorted(h.outcome for h in first.handled + second.handled)
    assert outcomes == ["automatic", "followup", "quarantined", "registered", "wrong_agency"]
    assert env.folder_count("INBOX") == 0
    assert [env.folder_count(f) for f in FOLDERS] == [1, 1, 1, 1, 1]
    with env.client() as c:
        names = {n for _, _, n in c.list_folders()}
        wire = c._imap.list()[1]                         # the LIST lines as the server sent them
    assert set(FOLDERS) <= names                         # Thai names round-trip (modified UTF-7)
    assert any(b'"&Dg' in line or b" &Dg" in line for line in wire)      # really mUTF-7 on the wire
    assert len(env.folder_messages("Sent")) == len(env.smtp.messages) == 3


def test_duplicate_and_move_fallback(server_env, monkeypatch):
    env = server_env
    from mailbot.mail import mailbox as fetch

    original = fetch.Mailbox.connect

    def no_move(self):  # type: ignore[no-untyped-def]
        original(self)
        self.use_move = False

    monkeypatch.setattr(fetch.Mailbox, "connect", no_move)
    raw = bytes(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.deliver(raw, raw)
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered", "duplicate"]
    assert len(env.smtp.messages) == 1
    assert env.folder_count("INBOX") == 0 and env.folder_count("ลงทะเบียนแล้ว") == 2


def test_uidvalidity_change_by_recreating_the_mailbox(server_env):
    env = server_env
    env.set_config(imap={"folder": "คำร้องออนไลน์"})
    with env.client() as c:
        c.create_folder("คำร้องออนไลน์")
        old = c.select_folder("คำร้องออนไลน์")[b"UIDVALIDITY"]
    raw = bytes(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.deliver(raw, folder="คำร้องออนไลน์")
    env.cycle()
    with env.client() as c:
        c.delete_folder("คำร้องออนไลน์")
        time.sleep(1.1)                                  # Dovecot's UIDVALIDITY is a timestamp
        c.create_folder("คำร้องออนไลน์")
        new = c.select_folder("คำร้องออนไลน์")[b"UIDVALIDITY"]
    assert new != old
    env.deliver(raw, letter("ร้องเรียนถนนชำรุด"), folder="คำร้องออนไลน์")
    report = env.cycle()
    assert any("UIDVALIDITY" in w for w in report.warnings)
    first, second = report.handled
    assert first.reason.startswith("duplicate")                 # matched through the ledger
    assert second.outcome == "registered" and second.receipt.startswith("2/")
    assert len(env.smtp.messages) == 2                          # no second receipt for the old message
    con = state_db(env.cfg)
    assert con.execute("SELECT count(*) FROM events WHERE kind='uidvalidity'").fetchone()[0] == 1
    assert env.folder_count("คำร้องออนไลน์") == 0


def test_idle(server_env):
    env = server_env
    env.set_config(schedule={"idle": True, "every_minutes": 600, "after_hours_every_minutes": 600, "workdays": []})
    daemon = Daemon(env.cfg)   # the scheduler's own time: the daemon runs on it
    daemon.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and daemon.cycles < 2:   # the start's cycle, the watch's cycle
            time.sleep(0.1)
        assert daemon.cycles >= 2
        env.deliver(letter("ร้องเรียนถนนชำรุด", sender="idle@example.com"))
        deadline = time.time() + 20
        while time.time() < deadline and not env.smtp.messages:
            time.sleep(0.1)
        assert env.smtp.messages, "IDLE did not trigger a cycle"
    finally:
        daemon.stop()


@pytest.mark.parametrize("server_env", ["dovecot"], indirect=True)   # the ssl/starttls listeners
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_paths_on_dovecot(server_env, security):
    env = server_env
    port = env.imap.ssl_port if security == "ssl" else env.imap.port
    env.set_config(imap={"security": security, "port": port, "timeout_seconds": 10})
    r = env.cli("check")
    assert "✗ รับอีเมล / IMAP login" in r.stdout and "certificate" in r.stdout.lower()   # self-signed: refused
    env.set_config(imap={"verify_tls": False})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    r = env.cli("poll")
    assert r.returncode == 0, r.stderr
    assert "WARNING: TLS certificate verification is OFF" in r.stderr
    assert env.folder_count("ลงทะเบียนแล้ว") == 1


def test_crash_and_rerun(server_env):
    env = server_env
    env.set_config(imap={"batch_size": 2})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้าง {i}", sender=f"p{i}@example.com") for i in range(5)])
    assert env.cli("poll", env={"MAILBOT_FAULT": "after_move"}).returncode == EXIT_CODE
    assert env.cli("poll").returncode == 0
    con = state_db(env.cfg)
    assert sorted(r[0] for r in con.execute("SELECT seq FROM cases")) == [1, 2, 3, 4, 5]
    assert len(env.smtp.messages) == 5 and env.folder_count("INBOX") == 0
