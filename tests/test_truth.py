"""What mailbot says must be true (issue 11 §4): each statement that was wrong when it was tried
as a new user would, as a test. Over real pymap and aiosmtpd where mail is involved."""
from __future__ import annotations

import email
import os
import re
import sqlite3
from datetime import datetime, timezone
from email import policy

import openpyxl
import pytest

from mailbot.registers.receive import register_path

from .conftest import AGENCY, letter
from .test_cli import mailbot

pytestmark = pytest.mark.slow   # end to end through subprocesses

CE_YEAR = re.compile(r"\b20[2-3]\d\b")


def db(env) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    return con


def register_rows(env):  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(register_path(env.cfg.registers_dir, 2569))
    return list(wb.active.iter_rows(min_row=2, values_only=True))


def test_result_email_is_sent_in_the_register_and_case_show(env):
    from mailbot.documents.certs import make_demo_pki

    from .test_results import make_pdf

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    (env.root / "results" / "outbox" / f"{h.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    env.cycle()
    [row] = register_rows(env)
    assert row[16].startswith("ส่งแล้ว") and "queued" not in row[16] and "รอส่ง" not in row[16]
    show = env.cli("case", "show", h.receipt).stdout
    assert "การตอบกลับ / reply      : ส่งแล้ว" in show


def test_duplicate_delivery_is_not_a_registration_anywhere(env):
    env.set_config(supervisors=["head@example.go.th"])
    raw = bytes(letter("ขออนุญาตก่อสร้างอาคาร", message_id="<dup@example.com>"))
    env.deliver(raw)
    env.cycle()
    env.deliver(b"Received: from relay2.example by mx; Fri, 27 Nov 2026 10:00:00 +0700\r\n" + raw)
    r = env.cli("poll")
    assert "ฉบับซ้ำ" in r.stdout and "ลงทะเบียนรับ 1" not in r.stdout.split("รวม / totals:")[1]
    from mailbot.thai import BANGKOK

    today = env.clock().astimezone(BANGKOK).date()
    r = env.cli("report", "--date", f"{today.day}/{today.month}/{today.year + 543}")
    assert r.returncode == 0, r.stderr
    path = env.cfg.registers_dir / "daily" / f"{today.year + 543}-{today.month:02d}-{today.day:02d}.xlsx"
    wb = openpyxl.load_workbook(path)
    outcomes = [row[3] for row in wb.worksheets[0].iter_rows(min_row=2, values_only=True) if row[3]]
    assert outcomes.count("ลงทะเบียนรับ") == 1 and len(outcomes) == 2
    assert db(env).execute("SELECT count(*) FROM cases").fetchone()[0] == 1


def test_followup_without_files_does_not_claim_the_cases_files(env):
    msg = letter("ขออนุญาตก่อสร้างอาคาร", sender="somchai@example.com")
    msg.add_attachment(b"%PDF-1.4\n" + b"x" * 900, maintype="application", subtype="pdf", filename="แบบ.pdf")
    env.deliver(msg)
    [h] = env.cycle().handled
    env.deliver(letter(f"Re: ขออนุญาตก่อสร้างอาคาร [เลขรับ {h.receipt}]", body="สอบถามความคืบหน้าครับ ขอบคุณ",
                       sender="somchai@example.com"))
    env.cycle()
    ack = email.message_from_bytes(env.smtp.messages[-1].data, policy=policy.default)
    assert "ไฟล์แนบที่ได้รับ" not in ack.get_body(("plain",)).get_content()


def test_replies_sent_counts_citizens_only(env):
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="somchai@example.com"))
    report = env.cycle()
    assert len(env.smtp.messages) == 2 and report.replies_sent == 1
    assert env.cli("poll").returncode == 0


def test_holidays_in_buddhist_era_and_impossible_ones(tmp_path):
    from mailbot.config import load_config
    from mailbot.errors import ConfigError

    mailbot("init", str(tmp_path))
    path = tmp_path / "mailbot.yaml"
    base = path.read_text(encoding="utf-8")
    path.write_text(base + "\nschedule:\n  holidays: [2569-12-05, 10/12/2569, 2026-12-31]\n", encoding="utf-8")
    assert [d.isoformat() for d in load_config(path).schedule.holidays] == ["2026-12-05", "2026-12-10", "2026-12-31"]
    path.write_text(base + "\nschedule:\n  holidays: [2569-02-30]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "ไม่มีจริง" in bad.value.thai and "holidays" in bad.value.detail
    path.write_text(base + "\nschedule:\n  holidays: ['31/4/2569']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "schedule.holidays" in bad.value.detail and "31/4/2569" in bad.value.detail


def test_no_english_or_ce_date_in_thai_outputs(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    status = env.cli("status").stdout
    for line in status.splitlines():
        thai = line.split(" / ")[0]
        assert not CE_YEAR.search(line), line
        assert not re.search(r"\b(sent|queued|never|incomplete)\b", thai), line
    r = env.cli("case", "set", "1/2569", "--status", "closed", "--by", "x")
    assert "not notified" not in r.stdout and "ไม่ได้แจ้งผู้ยื่น" in r.stdout
    r = env.cli("case", "show", "1/2569")
    assert "documents: incomplete" not in r.stdout
    [row] = register_rows(env)
    assert "sent" not in row[16]
    r = env.cli("frobnicate")
    assert r.returncode == 2 and r.stderr.startswith("คำสั่งไม่ถูกต้อง") and "Traceback" not in r.stderr


def test_backup_folder_names_are_buddhist_era(env, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    assert env.cli("backup").returncode == 0
    [folder] = list(store.glob("mailbot-backup-*"))
    assert folder.name.startswith(f"mailbot-backup-{datetime.now(timezone.utc).year + 543}")


def test_command_line_and_config_mistakes_are_explained(tmp_path, env):
    r = env.cli("run", "--every", "-5")
    assert r.returncode == 2 and "1–1440" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    r = mailbot("init", str(tmp_path / "afile"))
    assert r.returncode != 0 and "ไม่ใช่โฟลเดอร์" in r.stderr and "FileExistsError" not in r.stderr
    r = mailbot("init", str(tmp_path / "new"))
    assert "cd " in r.stdout and str(tmp_path / "new") in r.stdout
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    assert env.cli("report", "--date", "29/11/2569").returncode == 0
    other = env.root / "other.yaml"
    other.write_text(env.config_path.read_text(encoding="utf-8"), encoding="utf-8")
    r = env.cli("--config", str(other), "check")
    assert str(other) in r.stdout
    (env.root / "rules.yaml").write_text("services: []\nreferrals: []\n", encoding="utf-8")
    r = env.cli("check")
    assert r.returncode == 2 and "ไม่มีบริการ" in r.stdout


def test_check_refuses_forward_outside_the_agency(env):
    env.set_forwarding({"BLD": ["Outside <helper@gmail.example>"]})
    r = env.cli("check")
    assert r.returncode == 2 and "helper@gmail.example" in r.stdout and "โดเมน" in r.stdout


def test_unreachable_server_exit_code_matches_the_readme(env):
    env.set_config(imap={"port": 1}, smtp={"port": 1})
    assert env.cli("check").returncode == 3
    assert env.cli("poll").returncode == 3


@pytest.mark.parametrize("text,hint", [
    ("agency:\n  name: x\n  address: a@b.co\nschedule:\n\tidle: true\n", "Tab"),
    ("agency:\n  name: เทศบาล: ตำบล\n", "คำพูด"),
    ("agency:\n  name: x\nstaff: []\n  - a@b.co\n", "[]"),
])
def test_common_yaml_mistakes_get_a_thai_hint(tmp_path, text, hint):
    (tmp_path / "mailbot.yaml").write_text(text, encoding="utf-8")
    r = mailbot("check", cwd=tmp_path)
    assert r.returncode == 2 and "บรรทัด/line" in r.stderr and "คำแนะนำ" in r.stderr and hint in r.stderr, r.stderr


@pytest.mark.parametrize("encoding,words", [("utf-16", "UTF-16"), ("cp874", "ANSI")])
def test_a_config_saved_in_another_encoding_says_save_as_utf8(tmp_path, encoding, words):
    (tmp_path / "mailbot.yaml").write_bytes("agency:\n  name: เทศบาลตำบล\n".encode(encoding))
    r = mailbot("check", cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr and "UTF-8" in r.stderr


def test_missing_password_variable_is_named_with_setx(env):
    env.set_config(imap={"password": None, "password_env": "MAILBOT_TEST_NO_SUCH_VAR"})
    r = env.cli("check")
    assert "MAILBOT_TEST_NO_SUCH_VAR" in r.stdout and "setx MAILBOT_TEST_NO_SUCH_VAR" in r.stdout


def test_alerts_reach_a_person_and_say_when_the_problem_began(env):
    from mailbot.app import Office

    env.set_config(supervisors=["head@example.go.th"])
    with Office.open(env.cfg, clock=env.clock) as office:
        began = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
        office.alerts.alert("unreachable", "ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้มา 90 นาทีแล้ว: [imap.example] เชื่อมต่อไม่ได้ " * 3,
                            "unreachable", datetime.now(timezone.utc), since=began, title="ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้")
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


def test_demo_says_where_its_folder_is_and_makes_every_output(tmp_path):
    r = mailbot("demo", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mailbot demo --dir" in r.stdout
    assert "บันทึกประจำวัน" in r.stdout and "ทะเบียนใบอนุญาต" in r.stdout
    r = mailbot("demo", "--dir", str(tmp_path / "keep"), timeout=300)
    assert f"เก็บไว้ที่ {tmp_path / 'keep'}" in r.stdout
    assert list((tmp_path / "keep" / "registers" / "daily").glob("*.xlsx"))
    assert list((tmp_path / "keep" / "registers" / "public").glob("*.xlsx"))


def test_a_long_poll_shows_progress(env):
    env.deliver(*[letter(f"ร้องเรียนถนนชำรุด จุดที่ {i}", sender=f"p{i}@example.com") for i in range(30)])
    r = env.cli("poll")
    assert r.returncode == 0 and "30/30 ฉบับ" in r.stderr and "ฉบับ/วินาที" in r.stderr
    assert "รวม / totals" in r.stdout


def test_test_clock_only_with_the_switch_and_always_announced(env):
    r = env.cli("status", env={"MAILBOT_NOW": "2570-01-05T09:00"})
    assert "นาฬิกาทดสอบ" not in r.stderr
    r = env.cli("status", env={"MAILBOT_NOW": "2570-01-05T09:00", "MAILBOT_TEST_CLOCK": "1"})
    assert "นาฬิกาทดสอบ" in r.stderr and "TEST CLOCK" in r.stderr
    assert "มกราคม 2570" in r.stdout


def test_no_environment_leak(env):
    assert "MAILBOT_TEST_CLOCK" not in os.environ
