"""The `mailbot` command as an officer uses it: init, rules test, check, poll, demo. What it
says must be true (issue 11 §4): exit codes as the README gives them, Thai output without English
words or Common-Era years, every mistake on the command line or in the config explained, a long
poll showing its progress, the test clock only with its switch and always announced."""
import os
import re
from pathlib import Path
import subprocess
import sys

import openpyxl
import pytest

from mailbot.mail.servers import SmtpServer
from mailbot.registers.receive import register_path

from .conftest import AGENCY, PASSWORD, letter

pytestmark = pytest.mark.slow   # the command line, as subprocesses

CE_YEAR = re.compile(r"\b20[2-3]\d\b")


def mailbot(*args, cwd=None, env=None, timeout=120):  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "mailbot", *args], capture_output=True, text=True,
                          encoding="utf-8", cwd=cwd, timeout=timeout,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})})


def register_rows(env):  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(register_path(env.cfg.registers_dir, 2569))
    return list(wb.active.iter_rows(min_row=2, values_only=True))


def test_init_writes_commented_starter_files_and_keeps_edits(tmp_path):
    r = mailbot("init", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for name in ("mailbot.yaml", "rules.yaml", "templates/receipt.txt.j2", "templates/referral.txt.j2",
                 "templates/unclassified.txt.j2", "templates/followup.txt.j2"):
        assert (tmp_path / name).is_file(), name
    text = (tmp_path / "mailbot.yaml").read_text(encoding="utf-8")
    assert "# " in text and "ชื่อหน่วยงาน" in text and "agency name" in text
    rules = (tmp_path / "rules.yaml").read_text(encoding="utf-8")
    assert "ก่อสร้าง" in rules and "ภาษีที่ดิน" in rules and "ร้องเรียน" in rules and "บัตรประชาชน" in rules
    (tmp_path / "rules.yaml").write_text("services: []\n", encoding="utf-8")
    r = mailbot("init", str(tmp_path))
    assert (tmp_path / "rules.yaml").read_text(encoding="utf-8") == "services: []\n"   # never overwritten


def test_init_then_check_reports_each_failing_part_in_thai_and_english(tmp_path):
    mailbot("init", str(tmp_path))
    r = mailbot("check", cwd=tmp_path, timeout=200)
    assert r.returncode != 0
    assert "✓ กฎการจัดประเภท / rules" in r.stdout
    assert "✓ แม่แบบข้อความตอบกลับ / templates" in r.stdout
    assert "✗ รับอีเมล / IMAP login" in r.stdout and "IMAP" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_rules_test_explains_the_decision_in_thai_with_rules_counted_from_one(tmp_path):
    mailbot("init", str(tmp_path))
    r = mailbot("rules", "test", "ขออนุญาต ก่อ สร้าง บ้านเลขที่ ๑๒", cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ลงทะเบียนรับ: บริการ") and "(BLD)" in lines[0] and "กฎบริการข้อที่ 1" in lines[0]
    assert "ก่อสร้าง" in lines[0] and lines[1].startswith("registered: service BLD (services rule 1")
    assert "ขออนุญาตก่อสร้างบ้านเลขที่12" in lines[2]
    r = mailbot("rules", "test", "ขอทำบัตรประชาชน", cwd=tmp_path)
    assert r.stdout.splitlines()[0].startswith("แนะนำหน่วยงานอื่น: สำนักทะเบียนอำเภอเมือง (ที่ว่าการอำเภอ)")
    r = mailbot("rules", "test", "สวัสดี", cwd=tmp_path)
    assert r.stdout.splitlines()[0].startswith("ลงทะเบียนรับ รอเจ้าหน้าที่คัดแยก")


def test_rules_test_gives_the_pipelines_decision_for_follow_ups_and_inquiries(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    r = env.cli("rules", "test", f"Re: ขออนุญาตก่อสร้างอาคาร [เลขรับ {h.receipt}]")
    assert r.stdout.splitlines()[0].startswith(f"ติดตามเรื่องเดิมเลขรับ {h.receipt}"), r.stdout
    r = env.cli("rules", "test", f"สถานะ {h.receipt}")
    assert r.stdout.splitlines()[0].startswith(f"สอบถามสถานะเรื่องเลขรับ {h.receipt}"), r.stdout
    # the pipeline agrees: the same subject becomes a follow-up on that case
    env.deliver(letter(f"Re: ขออนุญาตก่อสร้างอาคาร [เลขรับ {h.receipt}]"))
    [f] = env.cycle().handled
    assert f.outcome == "followup" and f.receipt == h.receipt


def test_config_from_environment_variable(tmp_path):
    mailbot("init", str(tmp_path / "office"))
    r = mailbot("rules", "test", "ร้องเรียน", cwd=tmp_path, env={"MAILBOT_CONFIG": str(tmp_path / "office" / "mailbot.yaml")})
    assert "(CMP)" in r.stdout.splitlines()[0]


@pytest.mark.parametrize("text,key", [("agency: {name: x}\n", "agency.address"), ("imap: [\n", "line")])
def test_bad_config_is_plain_language_without_traceback(tmp_path, text, key):
    (tmp_path / "mailbot.yaml").write_text(text, encoding="utf-8")
    r = mailbot("poll", cwd=tmp_path)
    assert r.returncode == 2
    assert key in r.stderr and "ไฟล์ตั้งค่า" in r.stderr and "config" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_rules_is_plain_language(env):
    (env.root / "rules.yaml").write_text("services:\n  - code: A\n", encoding="utf-8")
    r = env.cli("poll")
    assert r.returncode == 2 and "services ข้อที่ 1 → name (บรรทัด/line 2)" in r.stderr and "กฎ" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_and_poll_against_real_servers(env):
    r = env.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✓ รับอีเมล / IMAP login" in r.stdout and "✓ ส่งอีเมล / SMTP login" in r.stdout
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"))
    r = env.cli("poll")
    assert r.returncode == 0, r.stderr
    assert "ลงทะเบียนรับ" in r.stdout and "1/25" in r.stdout


def test_wrong_password_is_a_login_failure(env):
    env.set_config(imap={"password": "wrong"})
    r = env.cli("poll")
    assert r.returncode == 3
    assert "เข้าสู่ระบบ IMAP ไม่สำเร็จ" in r.stderr and "IMAP login failed" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_server(env):
    env.set_config(imap={"port": 1}, smtp={"port": 1})
    r = env.cli("poll")
    assert r.returncode == 3 and "เชื่อมต่อ" in r.stderr and "cannot connect" in r.stderr


def test_smtp_without_auth_is_a_clear_error_not_an_unauthenticated_send(env):
    with SmtpServer(AGENCY, PASSWORD, offer_auth=False) as open_relay:
        env.set_config(smtp={"port": open_relay.port})
        env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
        r = env.cli("poll")
        assert r.returncode == 3
        assert "AUTH" in r.stderr + r.stdout
        assert open_relay.messages == []
    # the case is registered and the reply waits; with a proper server it goes out
    env.set_config(smtp={"port": env.smtp.port})
    assert env.cli("poll").returncode == 0
    assert len(env.smtp.messages) == 1


def test_demo_runs_with_no_setup(tmp_path):
    r = mailbot("demo", "--dir", str(tmp_path / "demo"), timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for word in ("ลงทะเบียนรับ", "แนะนำหน่วยงานอื่น", "อีเมลอัตโนมัติ", "ติดตามเรื่องเดิม", "ทะเบียนรับ-25"):
        assert word in out, word
    assert "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12" in out      # the windows-874 subject, not mojibake
    assert "[เลขรับ 1/25" in out
    assert "Traceback" not in r.stderr
    assert list((tmp_path / "demo" / "registers").glob("ทะเบียนรับ-*.xlsx"))


def test_run_keeps_polling_and_stops_cleanly_on_ctrl_c(env):
    import signal
    import time

    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "run", "--every", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not env.smtp.messages:
            time.sleep(0.2)
        assert len(env.smtp.messages) == 1          # the first cycle runs at start
        # a second instance on the same data refuses to start while this one runs
        second = env.cli("poll")
        assert second.returncode == 4
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "ทุก 1 นาที" in out


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


def test_missing_password_variable_is_named_with_setx(env):
    env.set_config(imap={"password": None, "password_env": "MAILBOT_TEST_NO_SUCH_VAR"})
    r = env.cli("check")
    assert "MAILBOT_TEST_NO_SUCH_VAR" in r.stdout and "setx MAILBOT_TEST_NO_SUCH_VAR" in r.stdout


def test_unreachable_server_exit_code_matches_the_readme(env):
    env.set_config(imap={"port": 1}, smtp={"port": 1})
    assert env.cli("check").returncode == 3
    assert env.cli("poll").returncode == 3


def test_a_long_poll_shows_progress(env):
    env.deliver(*[letter(f"ร้องเรียนถนนชำรุด จุดที่ {i}", sender=f"p{i}@example.com") for i in range(30)])
    r = env.cli("poll")
    assert r.returncode == 0 and "30/30 ฉบับ" in r.stderr and "ฉบับ/วินาที" in r.stderr
    assert "รวม / totals" in r.stdout


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


def test_demo_says_where_its_folder_is_and_makes_every_output(tmp_path):
    r = mailbot("demo", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mailbot demo --dir" in r.stdout
    assert "บันทึกประจำวัน" in r.stdout and "ทะเบียนใบอนุญาต" in r.stdout
    r = mailbot("demo", "--dir", str(tmp_path / "keep"), timeout=300)
    assert f"เก็บไว้ที่ {tmp_path / 'keep'}" in r.stdout
    # every path it names exists (the letter is where it went after signing), and it ends with
    # how to open the console on this workspace
    named = re.findall(r": (/\S.*?\.(?:pdf|xlsx))$", r.stdout, re.M)
    assert named and all(Path(p).is_file() for p in named), [p for p in named if not Path(p).is_file()]
    assert "results/outbox" not in r.stdout
    assert f'mailbot --config "{tmp_path / "keep" / "mailbot.yaml"}" console' in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].startswith("แล้วเปิด http://127.0.0.1:")
    assert list((tmp_path / "keep" / "registers" / "daily").glob("*.xlsx"))
    assert list((tmp_path / "keep" / "registers" / "public").glob("*.xlsx"))


def test_test_clock_only_with_the_switch_and_always_announced(env):
    r = env.cli("status", env={"MAILBOT_NOW": "2570-01-05T09:00"})
    assert "นาฬิกาทดสอบ" not in r.stderr
    r = env.cli("status", env={"MAILBOT_NOW": "2570-01-05T09:00", "MAILBOT_TEST_CLOCK": "1"})
    assert "นาฬิกาทดสอบ" in r.stderr and "TEST CLOCK" in r.stderr
    assert "มกราคม 2570" in r.stdout


def test_no_environment_leak(env):
    assert "MAILBOT_TEST_CLOCK" not in os.environ


def test_a_missing_signing_password_is_named_with_its_setx_line_not_called_wrong(env):
    """A certificate password variable that is not set is said as the IMAP and SMTP ones are,
    in check and status; only a password that is set and does not open the file is "wrong"."""
    from .test_console import signing

    signing(env)
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": None,
                            "password_env": "MAILBOT_TEST_NO_SIGNING_VAR"})
    check, status = env.cli("check").stdout, env.cli("status").stdout
    for out in (check, status):
        assert "MAILBOT_TEST_NO_SIGNING_VAR" in out and "รหัสผ่านไม่ถูกต้อง" not in out, out
    assert "setx MAILBOT_TEST_NO_SIGNING_VAR" in check
    # set, but wrong: that is a wrong password
    r = env.cli("check", env={"MAILBOT_TEST_NO_SIGNING_VAR": "not-the-password"})
    assert "รหัสผ่านไม่ถูกต้อง" in r.stdout
    # no password at all for a certificate that needs one: said so, with how to set it
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": None, "password_env": None})
    r = env.cli("check")
    assert "ต้องใช้รหัสผ่าน แต่ยังไม่ได้ตั้งรหัสผ่าน" in r.stdout and "setx MAILBOT_SIGNING_PASSWORD" in r.stdout


def test_check_names_every_starter_value_and_refuses_the_placeholder_letter_code(tmp_path):
    """A fresh `mailbot init`: the ที่ pattern is a plain placeholder that check refuses, and each
    other starter value that would go out as it is (example addresses, the holiday list's end) is
    named."""
    mailbot("init", str(tmp_path))
    r = mailbot("check", cwd=tmp_path, timeout=200,
                env={"MAILBOT_NOW": "2026-12-04T10:00", "MAILBOT_TEST_CLOCK": "1",
                     "MAILBOT_IMAP_PASSWORD": "x", "MAILBOT_SMTP_PASSWORD": "x"})
    assert r.returncode == 2
    assert "✗ ค่าตัวอย่างจากไฟล์ตั้งต้น / starter values" in r.stdout
    assert "ยังไม่ได้ตั้งรหัสหนังสือของหน่วยงาน" in r.stdout
    for named in ("kongchang@example.go.th", "palad@example.go.th", "saraban@example.go.th",
                  "รายการวันหยุดราชการมีถึง 1 มกราคม 2570"):
        assert named in r.stdout, named
    # the letter code set, the example units replaced, next year's holidays added: nothing left
    text = (tmp_path / "mailbot.yaml").read_text(encoding="utf-8")
    text = text.replace('"(ตั้งรหัสหนังสือ) {seq}/{year}"', '"มท 0808.2/{seq}"')
    text = re.sub(r"holidays: \[[^\]]*\]", "holidays: [2027-12-31]", text)
    text = text.replace("saraban@example.go.th", "saraban@tambon-banrai.go.th")
    (tmp_path / "mailbot.yaml").write_text(text, encoding="utf-8")
    rules = (tmp_path / "rules.yaml").read_text(encoding="utf-8").replace("example.go.th", "tambon-banrai.go.th")
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    r = mailbot("check", cwd=tmp_path, timeout=200,
                env={"MAILBOT_NOW": "2026-12-04T10:00", "MAILBOT_TEST_CLOCK": "1",
                     "MAILBOT_IMAP_PASSWORD": "x", "MAILBOT_SMTP_PASSWORD": "x"})
    assert "✓ ค่าตัวอย่างจากไฟล์ตั้งต้น / starter values: ไม่มีค่าตัวอย่างค้างอยู่" in r.stdout, r.stdout
