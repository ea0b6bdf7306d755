"""What a second reading of the round-2 change found, each as a test over real servers: no mail
is failed for a missing password, held cases get nothing automatic, silent failures alert, one
open file never stops a cycle, licences only for approvals, signed copies never overwritten,
SMTP-only outages alert, and a restore leaves the audit chain verifiable."""
from __future__ import annotations

import email
import sqlite3
from datetime import datetime, timedelta, timezone
from email import policy

import pytest

from mailbot.config import yaml_load
from mailbot.documents.certs import make_demo_pki

from .conftest import AGENCY, letter
from .test_results import make_pdf


def db(env) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    return con


def signed(env):  # type: ignore[no-untyped-def]
    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})


@pytest.mark.slow   # the command line, as a subprocess
def test_a_missing_smtp_password_keeps_the_mail_queued_and_failed_mail_can_be_sent_again(env):
    env.set_config(smtp={"password": None, "password_env": "MAILBOT_TEST_NO_SMTP_PASSWORD"})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    r = env.cli("poll")
    assert r.returncode == 3 and "MAILBOT_TEST_NO_SMTP_PASSWORD" in r.stderr + r.stdout, r.stderr
    con = db(env)
    assert [row["status"] for row in con.execute("SELECT status FROM outbox WHERE kind<>'alert'")] == ["queued"]
    con.close()
    from .conftest import PASSWORD

    env.set_config(smtp={"password": PASSWORD, "password_env": None})
    assert env.cli("poll").returncode == 0
    assert ["a@example.com"] in [m.rcpt_tos for m in env.smtp.messages]
    # a mail refused for good can be sent again once the cause is fixed
    con = db(env)
    con.execute("UPDATE outbox SET status='failed', last_error='550 mailbox unavailable' WHERE kind='receipt'")
    con.commit()
    con.close()
    listed = env.cli("reply", "list").stdout
    assert "ส่งไม่สำเร็จ" in listed and "550" in listed
    number = listed.split("#", 1)[1].split()[0]
    assert env.cli("reply", "release", number, "--by", "สมศรี").returncode == 0
    before = len(env.smtp.messages)
    assert env.cli("poll").returncode == 0
    assert [m.rcpt_tos for m in env.smtp.messages[before:]] == [["a@example.com"]]


def test_a_held_case_gets_no_reminder_or_late_notice(env):
    import yaml

    from mailbot.app import run_cycle

    mx = "mx.example.go.th"
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(days=2)
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.set_config(trust={"authserv_id": mx})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="victim@example.com",
                       Authentication_Results=f"{mx}; spf=fail smtp.mailfrom=example.com; dmarc=fail"))
    [h] = env.cycle().handled
    assert db(env).execute("SELECT held FROM cases").fetchone()[0]
    for days in (10, 20, 40):    # reminders, closure, late notices would all be due by now
        run_cycle(env.cfg, clock=lambda d=days: datetime.now(timezone.utc) + timedelta(days=d))
    assert [m for m in env.smtp.messages if m.rcpt_tos == ["victim@example.com"]] == []


def test_two_failed_cycles_alert_the_officers_even_when_the_rules_are_broken(env):
    from mailbot.ops.daemon import Daemon

    env.set_config(supervisors=["head@example.go.th"])
    (env.root / "rules.yaml").write_text("services:\n  - code: A\n", encoding="utf-8")   # broken
    daemon = Daemon(env.cfg, clock=env.clock, notify=lambda th, en: None)
    daemon._poll_once()
    assert env.smtp.messages == []
    daemon._poll_once()
    subjects = {m.rcpt_tos[0]: str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])
                for m in env.smtp.messages}
    assert "mailbot หยุดรับอีเมล" in subjects.get("head@example.go.th", "") and AGENCY in subjects


@pytest.mark.slow   # the command line, as a subprocess
def test_a_broken_optional_template_disables_only_itself(env):
    (env.root / "templates" / "status_in_progress.txt.j2").write_text("{{ no_such_variable }}", encoding="utf-8")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"]
    assert any("แม่แบบข้อความ" in w for w in report.warnings)
    r = env.cli("case", "set", report.handled[0].receipt, "--status", "in_progress", "--by", "x")
    assert r.returncode == 0, r.stderr
    assert "อยู่ระหว่างดำเนินการ" in r.stdout and "ไม่ได้แจ้งผู้ยื่น" in r.stdout


def test_a_result_file_that_cannot_be_moved_never_stops_the_cycle(env, monkeypatch):
    import mailbot.casework.results as results

    signed(env)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    [h] = env.cycle().handled
    path = env.root / "results" / "outbox" / f"{h.receipt.replace('/', '-')} อนุมัติ.pdf"
    path.write_bytes(make_pdf())

    def locked(src, dst):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "The process cannot access the file because it is being used by another process",
                              src)

    monkeypatch.setattr(results.shutil, "move", locked)
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    report = env.cycle()
    assert [x.outcome for x in report.handled] == ["registered"]
    assert report.results is not None and report.results.stuck and path.exists()
    assert any("เปิดค้าง" in w for w in report.warnings)
    monkeypatch.undo()
    report = env.cycle()
    assert not path.exists() and report.results.already                 # moved now; not signed twice
    assert db(env).execute("SELECT count(*) FROM results").fetchone()[0] == 1


def test_licences_only_for_approvals_and_signed_copies_never_overwritten(env):
    import yaml

    signed(env)
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(licence=True)
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    [h] = env.cycle().handled
    outbox = env.root / "results" / "outbox"
    n = h.receipt.replace("/", "-")
    (outbox / f"{n}.pdf").write_bytes(make_pdf("plain"))                  # no outcome in the name
    env.cycle()
    assert db(env).execute("SELECT count(*) FROM licences").fetchone()[0] == 0
    (outbox / f"{n}.pdf").write_bytes(make_pdf("second version"))        # the same name again
    env.cycle()
    sent = sorted(p.name for p in (env.root / "results" / "sent").glob("*ลงนามแล้ว*"))
    assert len(sent) == 2, sent
    (outbox / f"{n} อนุมัติ.pdf").write_bytes(make_pdf("approved"))
    env.cycle()
    assert db(env).execute("SELECT count(*) FROM licences").fetchone()[0] == 1


def test_an_smtp_only_outage_is_alerted(env):
    from mailbot.app import Office

    env.set_config(alerts={"unreachable_minutes": 30}, smtp={"port": 1})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    t0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    for minutes in (0, 20, 40):
        with Office.open(env.cfg, clock=lambda m=minutes: t0 + timedelta(minutes=m)) as office:
            office.poll()
    con = db(env)
    alerts = [r[0] for r in con.execute("SELECT subject FROM outbox WHERE kind='alert'")]
    assert any("ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้" in a for a in alerts), alerts


@pytest.mark.slow   # the command line, as a subprocess
def test_audit_verify_passes_after_a_legitimate_restore(env, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    env.cycle()
    assert env.cli("backup").returncode == 0
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    env.cycle()
    assert env.cli("report").returncode == 0            # a daily log records a later head
    assert env.cli("backup").returncode == 0            # and so does a later backup
    first = sorted(store.glob("mailbot-backup-*"))[0]
    r = env.cli("restore", "--from", str(first), "--force")
    assert r.returncode == 0, r.stderr
    r = env.cli("audit", "verify")
    assert r.returncode == 0, r.stdout
    # a rewrite after the restore is still caught
    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    con.execute("DROP TRIGGER audit_append_only_update")
    con.execute("UPDATE audit SET actor='x' WHERE id=1")
    con.commit()
    con.close()
    assert env.cli("audit", "verify").returncode == 6


@pytest.mark.slow   # the command line, as a subprocess
def test_cancellation_is_only_through_cancel_and_final(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    r = env.cli("case", "set", h.receipt, "--status", "cancelled")
    assert r.returncode != 0 and "case cancel" in r.stderr
    assert env.cli("case", "cancel", h.receipt, "--reason", "ซ้ำ").returncode == 0
    r = env.cli("case", "set", h.receipt, "--status", "received")
    assert r.returncode != 0 and "ยกเลิก" in r.stderr
