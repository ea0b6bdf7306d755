"""Registers as the Sarabun regulation writes them (issue 15) and service times (issue 16):
numbering patterns and resets, cancelled numbers staying burned, the dispatch register, the
audit chain (verifiable after a legitimate restore), the licence register's open data, due dates and the Act's 7-day notices."""
from __future__ import annotations

import csv
import email
import io
import sqlite3
import subprocess
from datetime import date, datetime, timedelta, timezone
from email import policy

import openpyxl
import pytest

from mailbot.config import yaml_load
from mailbot.registers.numbering import numbering_year, period_label
from mailbot.thai import BANGKOK

from .conftest import letter, state_db

pytestmark = pytest.mark.slow   # registers written and read back over months


def db(env) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con


def arrive(env, subject: str, when: datetime, sender: str = "somchai@example.com") -> None:  # type: ignore[no-untyped-def]
    with env.client() as c:
        c.append("INBOX", bytes(letter(subject, sender=sender, when=when)), msg_time=when)


def bkk(*args) -> datetime:  # type: ignore[no-untyped-def]
    return datetime(*args, tzinfo=BANGKOK)


def test_numbering_years_calendar_and_fiscal():
    assert numbering_year(bkk(2026, 12, 31, 23, 59)) == 2569
    assert numbering_year(bkk(2027, 1, 1, 0, 1)) == 2570
    assert numbering_year(bkk(2027, 9, 30, 23, 59), "fiscal") == 2570
    assert numbering_year(bkk(2027, 10, 1, 0, 1), "fiscal") == 2571
    assert numbering_year(datetime(2027, 9, 30, 17, 30, tzinfo=timezone.utc), "fiscal") == 2571   # 00:30 Bangkok
    assert period_label(2571, "fiscal") == "ปีงบประมาณ พ.ศ. 2571"


def test_calendar_reset_across_new_year(env):
    arrive(env, "ขออนุญาตก่อสร้างอาคาร ปลายปี", bkk(2026, 12, 31, 23, 30))
    arrive(env, "ขออนุญาตก่อสร้างอาคาร ต้นปี", bkk(2027, 1, 1, 0, 10), sender="b@example.com")
    receipts = [h.receipt for h in env.cycle().handled]
    assert receipts == ["1/2569", "1/2570"]
    assert (env.cfg.registers_dir / "ทะเบียนรับ-2569.xlsx").exists()
    assert (env.cfg.registers_dir / "ทะเบียนรับ-2570.xlsx").exists()


def test_fiscal_reset_across_30_september(env):
    env.set_config(registers={"year_reset": "fiscal", "receipt_pattern": "รับ {seq}/{year}"})
    arrive(env, "ขออนุญาตก่อสร้างอาคาร สิ้นปีงบ", bkk(2027, 9, 30, 16, 0))
    arrive(env, "ขออนุญาตก่อสร้างอาคาร ต้นปีงบ", bkk(2027, 10, 1, 8, 30), sender="b@example.com")
    arrive(env, "ร้องเรียนถนนชำรุด", bkk(2027, 10, 2, 9, 0), sender="c@example.com")
    receipts = [h.receipt for h in env.cycle().handled]
    assert receipts == ["1/2570", "1/2571", "2/2571"]                 # the key stays <seq>/<year>
    wb = openpyxl.load_workbook(env.cfg.registers_dir / "ทะเบียนรับ-2571.xlsx")
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == ["รับ 1/2571", "รับ 2/2571"]        # written with the pattern
    assert "ปีงบประมาณ พ.ศ. 2571" in (ws.oddHeader.center.text or "") + (ws.oddHeader.left.text or "") + \
        (ws.oddHeader.right.text or "")
    reply = email.message_from_bytes(env.smtp.messages[1].data, policy=policy.default)
    assert "[เลขรับ 1/2571]" in str(reply["Subject"])


def test_cancelled_number_stays_burned_and_history_cannot_be_rewritten(env):
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"p{i}@example.com") for i in range(3)])
    env.cycle()
    r = env.cli("case", "cancel", "2/2569", "--reason", "ลงทะเบียนซ้ำกับ 1/2569", "--by", "สมศรี")
    assert r.returncode == 0, r.stderr
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="new@example.com"))
    [h] = env.cycle().handled
    assert h.receipt == "4/2569"
    rows = list(openpyxl.load_workbook(env.cfg.registers_dir / "ทะเบียนรับ-2569.xlsx").worksheets[0]
                .iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == ["1/2569", "2/2569", "3/2569", "4/2569"]    # the row stays
    assert rows[1][6].startswith("ยกเลิก") and "สมศรี" in rows[1][6] and "ลงทะเบียนซ้ำ" in rows[1][6]
    assert rows[1][11] == "ยกเลิก"
    con = db(env)
    with pytest.raises(sqlite3.DatabaseError):
        con.execute("UPDATE cases SET subject='แก้ไขเรื่อง' WHERE receipt='1/2569'")
    with pytest.raises(sqlite3.DatabaseError):
        con.execute("UPDATE cases SET received_at='2020-01-01T00:00:00+00:00' WHERE receipt='1/2569'")
    con.rollback()
    con.close()
    again = env.cli("case", "cancel", "2/2569", "--reason", "x")
    assert again.returncode != 0 and "ยกเลิกไปแล้ว" in again.stderr


def test_audit_verify_untouched_edited_and_deleted(env, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"p{i}@example.com") for i in range(3)])
    env.cycle()
    env.cli("case", "set", "1/2569", "--status", "in_progress", "--by", "สมศรี")
    r = env.cli("audit", "verify")
    assert r.returncode == 0 and "ครบถ้วน" in r.stdout, r.stdout + r.stderr
    assert env.cli("backup").returncode == 0                          # the head goes into the backup
    assert env.cli("report").returncode == 0                          # ... and into the daily log
    assert list((env.cfg.registers_dir / "daily").glob("*.audit"))
    path = env.cfg.data_dir / "state.sqlite3"
    # someone edits a row behind mailbot's back (the triggers must be dropped first)
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_append_only_update")
    con.execute("DROP TRIGGER audit_append_only_delete")
    con.execute("UPDATE audit SET actor='ใครก็ได้' WHERE id=3")
    con.commit()
    r = env.cli("audit", "verify")
    assert r.returncode != 0 and "รายการที่ 3 ถูกแก้ไข" in r.stdout, r.stdout
    # ... or deletes one
    con.execute("DELETE FROM audit WHERE id=2")
    con.commit()
    r = env.cli("audit", "verify")
    assert r.returncode != 0 and "หายไป" in r.stdout
    con.close()


def test_audit_rewrite_of_the_whole_chain_shows_against_recorded_heads(env, tmp_path):
    from mailbot.store import audit

    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    assert env.cli("report").returncode == 0
    con = state_db(env.cfg)
    con.execute("DROP TRIGGER audit_append_only_delete")
    con.execute("DELETE FROM audit")                                  # history rewritten from scratch ...
    audit.start_chain(con)                                            # ... consistently
    con.commit()
    con.close()
    r = env.cli("audit", "verify")
    assert r.returncode != 0 and "จุดอ้างอิงที่บันทึกไว้" in r.stdout


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
    con = state_db(env.cfg)
    con.execute("DROP TRIGGER audit_append_only_update")
    con.execute("UPDATE audit SET actor='x' WHERE id=1")
    con.commit()
    con.close()
    assert env.cli("audit", "verify").returncode == 6


def test_result_email_and_letter_get_dispatch_numbers(env):
    from mailbot.documents.certs import make_demo_pki

    from .test_results import make_pdf

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0}, registers={"dispatch_pattern": "มท 0808.2/{seq}"})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"),
                letter("ขออนุญาตก่อสร้างอาคาร หลังที่ 2", sender="b@example.com"))
    first, second = env.cycle().handled
    (env.root / "results" / "outbox" / f"{first.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    env.cycle()                                                       # a result e-mail: number 1
    r = env.cli("results", "letter", second.receipt, "--outcome", "approved")
    assert r.returncode == 0, r.stderr
    con = db(env)
    rows = con.execute("SELECT * FROM dispatches ORDER BY seq").fetchall()
    assert [(d["number"], d["receipt"], d["kind"]) for d in rows] == [
        ("มท 0808.2/1", first.receipt, "result_email"), ("มท 0808.2/2", second.receipt, "result_letter")]
    signed = next((env.root / "results" / "sent").glob(f"{second.receipt.replace('/', '-')}* (ลงนามแล้ว).pdf"))
    text = subprocess.run(["pdftotext", str(signed), "-"], capture_output=True, text=True).stdout
    assert "มท 0808.2/2" in text                                    # the letter's ที่
    assert all(d["action"].startswith("ส่งทางอีเมลแล้ว") for d in con.execute("SELECT * FROM dispatches"))
    wb = openpyxl.load_workbook(env.cfg.registers_dir / "ทะเบียนส่ง-2569.xlsx")
    table = list(wb.worksheets[0].iter_rows(values_only=True))
    header = next(r for r in table if r and r[0] == "เลขทะเบียนส่ง")
    assert list(header) == ["เลขทะเบียนส่ง", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ",
                            "เลขรับที่ตอบ"]
    body = [r for r in table[table.index(header) + 1:] if r and r[0]]
    assert [(r[0], r[1], r[8]) for r in body] == [("1", "มท 0808.2/1", first.receipt), ("2", "มท 0808.2/2", second.receipt)]
    # เรื่อง: the letter's own, and the same words for the result sent without a letter (issue 26)
    # (a line break inside the letter's เรื่อง reads as a space: compared without spaces)
    bare = "".join(text.split())
    assert "เรื่อง" + "".join(body[1][5].split()) + "เรียน" in bare, (body[1][5], bare[:300])
    assert body[0][5] == body[1][5] and "ขอขอ" not in body[0][5]
    assert (env.cfg.registers_dir / "ทะเบียนส่ง-2569.pdf").exists()
    # a preview shows the next number and issues none
    r = env.cli("results", "letter", first.receipt, "--outcome", "approved", "--preview")
    assert r.returncode == 0 and con.execute("SELECT count(*) FROM dispatches").fetchone()[0] == 2


def test_licence_register_holder_iso_dates_and_own_numbers(env):
    import yaml

    from mailbot.documents.certs import make_demo_pki

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0}, registers={"licence_pattern": "อ. {seq}/{year}"})
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(licence=True, licence_years=1)
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="สมชาย ใจดี <a@example.com>"))
    [h] = env.cycle().handled
    r = env.cli("results", "letter", h.receipt, "--outcome", "approved", "--holder", "บริษัท ตัวอย่าง จำกัด")
    assert r.returncode == 0, r.stderr
    public = env.cfg.resolve(env.cfg.publish.folder)
    rows = list(csv.reader(io.StringIO((public / "ทะเบียนใบอนุญาต.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0][-2:] == ["วันที่ออก (ISO 8601)", "วันหมดอายุ (ISO 8601)"]
    number, holder = rows[1][0], rows[1][1]
    assert number.startswith("อ. 1/") and holder == "บริษัท ตัวอย่าง จำกัด"
    issued = date.fromisoformat(rows[1][-2])
    assert date.fromisoformat(rows[1][-1]) == issued.replace(year=issued.year + 1)


def clock(at: datetime):  # type: ignore[no-untyped-def]
    return lambda: at


def test_late_notices_every_seven_days_over_a_month_with_holidays(env):
    import yaml

    from mailbot.app import run_cycle

    # BLD takes 5 working days; 7 and 8 December 2569 (CE 2026) are holidays in this office
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(days=5, documents=[])
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.set_config(schedule={"holidays": ["2569-12-07", "2569-12-08"]})
    arrive(env, "ขออนุญาตก่อสร้างอาคาร", bkk(2026, 12, 1, 9, 0))        # a Tuesday
    [h] = run_cycle(env.cfg, clock=clock(bkk(2026, 12, 1, 9, 5))).handled
    due = db(env).execute("SELECT due_date FROM cases").fetchone()[0]
    assert due == "2026-12-10"          # Wed 2, Thu 3, Fri 4, (Mon 7, Tue 8 off), Wed 9, Thu 10
    notices = []
    day = date(2026, 12, 1)
    while day <= date(2026, 12, 31):
        before = len(env.smtp.messages)
        run_cycle(env.cfg, clock=clock(datetime.combine(day, datetime.min.time(), BANGKOK) + timedelta(hours=10)))
        for m in env.smtp.messages[before:]:
            msg = email.message_from_bytes(m.data, policy=policy.default)
            if "ยังพิจารณาไม่แล้วเสร็จ" in msg.get_body(("plain",)).get_content():
                notices.append(day)
        day += timedelta(days=1)
    assert notices == [date(2026, 12, 11), date(2026, 12, 18), date(2026, 12, 25)]
    con = db(env)
    assert con.execute("SELECT count(*) FROM case_events WHERE kind='late_notice'").fetchone()[0] == 3
    # an officer gives the reason and the date: the next notice says them
    env.cli("case", "set", h.receipt, "--late-reason", "รอผลตรวจพื้นที่จากกองช่าง", "--expected", "15/1/2570",
            "--by", "สมศรี")
    before = len(env.smtp.messages)
    run_cycle(env.cfg, clock=clock(bkk(2027, 1, 1, 10)))
    text = email.message_from_bytes(env.smtp.messages[before].data, policy=policy.default).get_body(
        ("plain",)).get_content()
    assert "รอผลตรวจพื้นที่จากกองช่าง" in text and "15 มกราคม 2570" in text
    # closed: no more notices
    env.cli("case", "set", h.receipt, "--status", "closed", "--by", "สมศรี")
    before = len(env.smtp.messages)
    run_cycle(env.cfg, clock=clock(bkk(2027, 1, 15, 10)))
    assert not any("ยังพิจารณาไม่แล้วเสร็จ" in m.data.decode("utf-8", "replace") for m in env.smtp.messages[before:])


def test_due_date_in_register_case_show_and_daily_log(env):
    import yaml

    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(days=15, documents=[])
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    row = next(openpyxl.load_workbook(env.cfg.registers_dir / "ทะเบียนรับ-2569.xlsx").worksheets[0]
               .iter_rows(min_row=2, values_only=True))
    assert row[18] and row[18].endswith("2569") or row[18].endswith("2570")
    show = env.cli("case", "show", h.receipt).stdout
    assert "กำหนดแล้วเสร็จ" in show


def test_result_not_sent_within_seven_days_raises_an_alert(env):
    from mailbot.app import run_cycle
    from mailbot.documents.certs import make_demo_pki

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    [h] = env.cycle().handled
    con = db(env)
    decided = (env.clock() - timedelta(days=8)).isoformat(timespec="seconds")
    con.execute("UPDATE cases SET decided_at=? WHERE receipt=?", (decided, h.receipt))
    con.commit()
    run_cycle(env.cfg, clock=env.clock)
    subjects = [str(email.message_from_bytes(m.data, policy=policy.default)["Subject"]) for m in env.smtp.messages]
    assert any("ยังไม่ได้ส่งผลการพิจารณา" in s and h.receipt in s for s in subjects)


def _tamper(env):  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.execute("DROP TRIGGER audit_append_only_update")
    con.execute("DROP TRIGGER audit_append_only_delete")
    return con


def test_deleting_the_entries_after_the_last_checkpoint_is_seen(env):
    """The head of the chain is kept outside the database each time the office closes (the
    credential store): cutting off the newest entries no longer passes."""
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"p{i}@example.com") for i in range(2)])
    env.cycle()
    assert env.cli("report").returncode == 0                          # a checkpoint (the daily log)
    env.cli("case", "set", "1/2569", "--status", "in_progress", "--by", "สมศรี")
    env.cli("case", "set", "2/2569", "--note", "โทรแจ้งแล้ว", "--by", "สมศรี")
    assert env.cli("audit", "verify").returncode == 0
    con = _tamper(env)
    top = con.execute("SELECT max(id) FROM audit").fetchone()[0]
    con.execute("DELETE FROM audit WHERE id > ?", (top - 2,))         # the newest two entries gone
    con.commit()
    con.close()
    r = env.cli("audit", "verify")
    assert r.returncode == 6 and "ไม่อยู่ในบันทึกตรวจสอบแล้ว" in r.stdout and "credential store" in r.stdout, r.stdout


def test_a_rewritten_chain_needs_the_key(env, tmp_path):
    """Editing a subject mid-chain and rewriting every hash after it (and MANIFEST.json's head)
    fails: the entries are signed with the chain's key, which is not in the database."""
    import json

    from mailbot.store import chain

    store = tmp_path / "store"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"p{i}@example.com") for i in range(3)])
    env.cycle()
    assert env.cli("backup").returncode == 0
    con = _tamper(env)
    con.execute("DROP TRIGGER cases_number_date_subject_fixed")
    con.execute("UPDATE cases SET subject='เรื่องอื่น' WHERE receipt='2/2569'")
    rows = con.execute("SELECT id, at, actor, action, ref, detail FROM audit ORDER BY id").fetchall()
    prev = chain.GENESIS
    for rid, at, actor, action, ref, detail in rows:                  # the attacker's consistent rewrite
        if ref == "2/2569" and action == "registered":
            detail = json.dumps({**json.loads(detail), "subject": chain.subject_sha("เรื่องอื่น")},
                                ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        digest = chain._digest(prev, at, actor, action, ref or "", detail)
        con.execute("UPDATE audit SET detail=?, prev=?, hash=? WHERE id=?", (detail, prev, digest, rid))
        prev = digest
    con.commit()
    con.close()
    manifest = next(store.glob("mailbot-backup-*")) / "MANIFEST.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["audit_head"] = [rows[-1][0], prev]
    manifest.write_text(json.dumps(data), encoding="utf-8")
    r = env.cli("audit", "verify")
    assert r.returncode == 6 and "ถูกแก้ไข" in r.stdout, r.stdout


def test_a_deleted_case_leaves_a_gap_in_the_numbers(env):
    """Numbers are gap-free by design (a cancelled number keeps its row): one missing was deleted,
    even when its audit entries went with it."""
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"p{i}@example.com") for i in range(3)])
    env.cycle()
    r = env.cli("case", "cancel", "3/2569", "--reason", "ยื่นซ้ำ", "--by", "สมศรี")
    assert r.returncode == 0, r.stderr
    assert env.cli("audit", "verify").returncode == 0                 # a cancellation is no gap
    con = _tamper(env)
    con.execute("DELETE FROM audit WHERE ref='2/2569'")
    con.execute("DELETE FROM case_events WHERE case_id=(SELECT id FROM cases WHERE receipt='2/2569')")
    con.execute("DELETE FROM case_files WHERE case_id=(SELECT id FROM cases WHERE receipt='2/2569')")
    con.execute("UPDATE messages SET case_id=NULL WHERE case_id=(SELECT id FROM cases WHERE receipt='2/2569')")
    con.execute("DELETE FROM outbox WHERE case_id=(SELECT id FROM cases WHERE receipt='2/2569')")
    con.execute("DELETE FROM cases WHERE receipt='2/2569'")
    con.commit()
    con.close()
    r = env.cli("audit", "verify")
    assert r.returncode == 6 and "เลขรับ 2/2569 หายไปจากทะเบียน" in r.stdout, r.stdout


def test_the_daily_log_mail_carries_the_head_out_and_verify_reads_it_back(env):
    """The supervisors' daily log carries the chain's head (in its subject, and whole in its text);
    `audit verify` checks the copies in the Sent folder, and a head pasted from a supervisor's copy."""
    with env.client() as c:
        c.create_folder("Sent")
    env.set_config(supervisors=["head@example.go.th"])
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    r = env.cli("report", "--email")
    assert r.returncode == 0, r.stderr
    env.cycle()                                                       # sent, and copied to Sent
    [mail] = [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages
              if "head@example.go.th" in m.rcpt_tos]
    pasted = next(line for line in mail.get_body(("plain",)).get_content().splitlines() if line.startswith("#"))
    assert "[#" in str(mail["Subject"])
    r = env.cli("audit", "verify", "--head", pasted)
    assert r.returncode == 0 and "Sent" in r.stdout and "1 ฉบับ" in r.stdout, r.stdout
    con = _tamper(env)
    con.execute("DELETE FROM audit WHERE id >= ?", (int(pasted.split()[0][1:]),))
    con.commit()
    con.close()
    r = env.cli("audit", "verify", "--head", pasted)
    assert r.returncode == 6 and "สำเนาของผู้บังคับบัญชา" in r.stdout and "อีเมลบันทึกประจำวันในโฟลเดอร์ Sent" in r.stdout
    bad = env.cli("audit", "verify", "--head", "ไม่มีรหัส")
    assert bad.returncode != 0 and "ไม่พบรหัสบันทึกตรวจสอบ" in bad.stderr and "Traceback" not in bad.stderr
