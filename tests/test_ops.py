"""Running for years on an office PC: the daemon with IMAP IDLE (pymap), the daily log, backup
and restore (folders named in Buddhist-Era years), alerts (aiosmtpd: to the agency and its
supervisors, saying when the problem began, our own alert left flagged in the INBOX), status and
logs."""
from __future__ import annotations

import email
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import openpyxl
import pytest

from mailbot.ops.daemon import Daemon
from mailbot.thai import BANGKOK

from .conftest import AGENCY, PASSWORD, letter

pytestmark = pytest.mark.slow   # the daemon, backups and IDLE


def wait_for(predicate, seconds=20.0):  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def mails_to(env, address):  # type: ignore[no-untyped-def]
    return [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages if address in m.rcpt_tos]


def test_idle_brings_new_mail_in_without_waiting_for_the_next_poll(env):
    # no working days: no guaranteed checks, so only IDLE can bring the second message in quickly
    env.set_config(schedule={"idle": True, "every_minutes": 600, "after_hours_every_minutes": 600, "workdays": []})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="first@example.com"))
    daemon = Daemon(env.cfg)   # the scheduler's own time: the daemon runs on it
    daemon.start()
    try:
        assert wait_for(lambda: mails_to(env, "first@example.com"))       # the first poll, at start
        # the start's cycle and the one the IDLE connection started once watching: the next message
        # can only come in through IDLE (the next poll is ten hours away)
        assert wait_for(lambda: daemon.idle_thread is not None and daemon.cycles >= 2)
        env.deliver(letter("ร้องเรียนถนนชำรุด", sender="second@example.com"))
        assert wait_for(lambda: mails_to(env, "second@example.com"), 15), "IDLE did not trigger a poll"
        time.sleep(1.0)   # the cycle finishes and puts the regular poll back
        assert daemon.sched.get_job("poll") is not None, (daemon.sched.get_jobs(), daemon._running.locked(), daemon.cycles)
        assert daemon.sched.get_job("poll").next_run_time > datetime.now(BANGKOK) + timedelta(hours=5)
    finally:
        daemon.stop()
    assert daemon.cycles >= 3      # the start's, the watch's, and the one IDLE announced


def test_sigterm_stops_cleanly(env):
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    try:
        assert wait_for(lambda: (env.cfg.data_dir / "state.sqlite3").exists(), 30)
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err and "stopped" in out


def test_daily_report_rows_totals_chart_and_email(env):
    env.set_config(supervisors=["head@example.go.th"])
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ขอทำบัตรประชาชน"),
                letter("ตอบกลับอัตโนมัติ", Auto_Submitted="auto-replied"), letter("=1+2 สอบถาม"), b"\r\n\r\n")
    env.cycle()
    today = env.clock().astimezone(BANGKOK).date()
    be = f"{today.year + 543}-{today.month:02d}-{today.day:02d}"
    r = env.cli("report", "--date", be, "--email")
    assert r.returncode == 0, r.stderr
    path = env.root / "registers" / "daily" / f"{be}.xlsx"
    assert str(path) in r.stdout
    wb = openpyxl.load_workbook(path)
    rows = list(wb["รายการ"].iter_rows(values_only=True))
    assert len(rows) == 6
    outcomes = [row[3] for row in rows[1:]]
    assert sorted(outcomes) == sorted(["ลงทะเบียนรับ", "แนะนำหน่วยงานอื่น", "อีเมลอัตโนมัติ (ไม่ตอบ)", "ลงทะเบียนรับ", "กักกัน"])
    for row in wb["รายการ"].iter_rows(min_row=2):
        assert all(c.data_type != "f" for c in row)
    summary = {row[0]: row[1] for row in wb["สรุป"].iter_rows(values_only=True) if row and row[0]}
    assert summary["ลงทะเบียนรับ"] == 2 and summary["รวม (total)"] == 5
    assert summary["ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร"] == 1 and "BLD" not in summary  # names, not codes
    replies = {row[5] for row in rows[1:]}
    from mailbot.kinds import SEND_STATES

    assert replies <= {*SEND_STATES.values(), "ไม่ได้ตอบ", "-"}, replies          # Thai words, not outbox codes
    assert "ส่งแล้ว" in replies
    assert len(wb["สรุป"]._charts) == 1
    [mail] = mails_to(env, "head@example.go.th")
    names = [p.get_filename() for p in mail.iter_attachments()]
    assert names == [f"{be}.xlsx", f"{be}.pdf"]
    assert path.with_suffix(".pdf").is_file() and str(path.with_suffix(".pdf")) in r.stdout
    # the CE form of the date gives the same file
    assert env.cli("report", "--date", today.isoformat()).returncode == 0
    if shutil.which("soffice") or shutil.which("libreoffice"):
        from .test_libreoffice import to_csv

        rows = to_csv(path, env.root / "csv")
        assert "ลงทะเบียนรับ" in [cell for row in rows for cell in row]


def test_backup_verify_and_restore_round_trip(env, tmp_path):
    store = tmp_path / "D-drive" / "สำรอง mailbot"          # Thai folder name with a space
    store.mkdir(parents=True)
    env.set_config(backup={"dir": str(store), "keep_days": 30})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ร้องเรียนถนนชำรุด"))
    env.cycle()
    r = env.cli("backup")
    assert r.returncode == 0, r.stderr
    [folder] = sorted(store.glob("mailbot-backup-*"))
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))["files"]
    assert "state.sqlite3" in manifest and any(k.startswith("archive/") for k in manifest)
    assert any(k.startswith("registers/") for k in manifest)
    from mailbot.ops.backup import verify

    assert verify(folder) == []
    # restore into a new office folder
    other = tmp_path / "new office"
    shutil.copytree(env.root, other, ignore=shutil.ignore_patterns("data", "registers"))
    r = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(other / "mailbot.yaml"), "restore",
                        "--from", str(store)], capture_output=True, text=True, encoding="utf-8",
                       env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert r.returncode == 0, r.stderr
    receipts = "SELECT receipt, subject FROM cases ORDER BY seq"
    original = sqlite3.connect(env.cfg.data_dir / "state.sqlite3").execute(receipts).fetchall()
    restored = sqlite3.connect(other / "data" / "state.sqlite3").execute(receipts).fetchall()
    assert restored == original and len(restored) == 2
    assert list((other / "registers").glob("ทะเบียนรับ-*.xlsx"))
    assert len(list((other / "data" / "archive").rglob("*.eml"))) == 2
    # a damaged backup is refused
    victim = next(p for p in folder.rglob("*.eml"))
    victim.write_bytes(victim.read_bytes() + b"x")
    assert verify(folder) != []
    r = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(other / "mailbot.yaml"), "restore",
                        "--from", str(folder), "--force"], capture_output=True, text=True, encoding="utf-8")
    assert r.returncode != 0 and "เสียหาย" in r.stderr


def test_backup_pruning(env, tmp_path):
    from mailbot.ops.backup import backup

    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store), "keep_days": 7})
    env.cycle()
    old = backup(env.cfg, env.clock() - timedelta(days=10)).folder
    new = backup(env.cfg, env.clock())
    assert not old.exists() and new.folder.exists() and new.pruned == [old]


def test_backup_folder_names_are_buddhist_era(env, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    assert env.cli("backup").returncode == 0
    [folder] = list(store.glob("mailbot-backup-*"))
    assert folder.name.startswith(f"mailbot-backup-{env.clock().astimezone(BANGKOK).year + 543}")


def test_alerts_by_email_at_most_hourly(env):
    from mailbot.app import Office

    env.set_config(supervisors=["head@example.go.th"], imap={"password": "expired"})
    daemon = Daemon(env.cfg)   # the scheduler's own time: the daemon runs on it
    daemon.sched.start()
    try:
        daemon.poll()
        daemon.poll()                      # the same failure again: no second alert within the hour
    finally:
        daemon.sched.shutdown(wait=False)
    for who in (AGENCY, "head@example.go.th"):
        alerts = mails_to(env, who)
        assert len(alerts) == 1, who
        text = alerts[0].get_body(("plain",)).get_content()
        assert "เข้าสู่ระบบ" in text and "login failed" in text
        assert alerts[0]["Auto-Submitted"] == "auto-generated"
    # backup location missing and disk nearly full
    env.set_config(backup={"dir": str(env.root / "unplugged")}, alerts={"disk_free_mb": 10**9})
    with Office.open(env.cfg, clock=env.clock) as office:
        office.alerts.routine(env.clock())
        office.send_alerts()
    subjects = [m["Subject"] for m in mails_to(env, AGENCY)]
    assert any("ที่เก็บข้อมูลสำรอง" in s for s in subjects) and any("ดิสก์" in s for s in subjects)


def test_alerts_reach_a_person_and_say_when_the_problem_began(env):
    from mailbot.app import Office

    env.set_config(supervisors=["head@example.go.th"])
    with Office.open(env.cfg, clock=env.clock) as office:
        began = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
        office.alerts.alert("unreachable", "ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้มา 90 นาทีแล้ว: [imap.example] เชื่อมต่อไม่ได้ " * 3,
                            "unreachable", env.clock(), since=began, title="ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้")
        office.send_alerts()
    mails = {m.rcpt_tos[0]: email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages}
    assert set(mails) == {AGENCY, "head@example.go.th"}
    alert = mails[AGENCY]
    assert alert["Subject"] == "[mailbot แจ้งเตือน] ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้"
    assert "เริ่มเมื่อ 27 พฤศจิกายน 2569 เวลา 10:00 น." in alert.get_body(("plain",)).get_content()
    # delivered to our own mailbox, the next poll leaves it in the INBOX, flagged, for a person
    env.deliver(env.smtp.messages[0].data if env.smtp.messages[0].rcpt_tos == [AGENCY] else env.smtp.messages[1].data)
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["own_alert"]
    assert env.folder_count("INBOX") == 1
    with env.client() as c:
        c.select_folder("INBOX", readonly=True)
        flags = list(c.get_flags(c.search()).values())[0]
    assert b"\\Flagged" in flags
    assert env.cycle().handled == []


def test_unreachable_alert_only_after_the_configured_time(env):
    from mailbot.app import Office
    from mailbot.errors import ConnectionFailure

    env.set_config(alerts={"unreachable_minutes": 30})
    office = Office.open(env.cfg, clock=env.clock)
    state, alerts = office.state, office.alerts
    error = ConnectionFailure("เชื่อมต่อไม่ได้", "cannot connect to the IMAP server")
    t0 = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
    try:
        alerts.connection_failed(error, t0)
        alerts.connection_failed(error, t0 + timedelta(minutes=20))
        assert state.db.execute("SELECT count(*) FROM outbox WHERE kind='alert'").fetchone()[0] == 0
        alerts.connection_failed(error, t0 + timedelta(minutes=31))
        assert state.db.execute("SELECT count(*) FROM outbox WHERE kind='alert'").fetchone()[0] == 1
        alerts.connection_ok()
        assert state.get("unreachable_since") is None
    finally:
        office.close()


def test_status_and_logs(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    assert env.cli("poll").returncode == 0
    r = env.cli("status")
    assert r.returncode == 0, r.stderr
    for text in ("รอบถัดไปตามกำหนด / next scheduled poll", "outbox queue: 0", "quarantined: 0",
                 "อีเมลรอในกล่อง INBOX / waiting in the mailbox: 0"):
        assert text in r.stdout, text
    # a poll run by hand or by Task Scheduler counts as the last poll
    assert "last successful poll: ยังไม่เคย" not in r.stdout
    assert "2026" not in r.stdout and "25" in r.stdout               # Buddhist-Era dates only
    log = (env.cfg.data_dir / "logs" / "mailbot.log").read_bytes()
    assert log.startswith(b"\xef\xbb\xbf")                     # Notepad shows Thai
    assert b"registered" in log and PASSWORD.encode() not in log


def test_windows_style_paths_with_spaces_and_thai(env, tmp_path):
    env.set_config(paths={"data": str(tmp_path / "ข้อมูล mailbot" / "data"),
                          "registers": str(tmp_path / "ทะเบียน สารบรรณ")})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    assert env.cli("poll").returncode == 0
    assert list((tmp_path / "ทะเบียน สารบรรณ").glob("*.xlsx"))
    assert Path(tmp_path / "ข้อมูล mailbot" / "data" / "state.sqlite3").exists()
    assert pytest
