"""Issue 12 end to end over pymap + aiosmtpd: who may touch a case, foreign numbers, spoofed
staff forwards, phishing links, unknown numbers, backscatter, urgency and secrecy."""
from __future__ import annotations

import sqlite3

import pytest

from mailbot.casework import trust

from .conftest import AGENCY, letter, state_db

pytestmark = pytest.mark.slow   # end to end through subprocesses

MX = "mx.example.go.th"


def with_files(subject, *names, sender="สมชาย ใจดี <somchai@example.com>", **headers):  # type: ignore[no-untyped-def]
    msg = letter(subject, sender=sender, **headers)
    for name in names:
        msg.add_attachment(b"%PDF-1.4\n" + b"x" * 2048, maintype="application", subtype="pdf", filename=name)
    return msg


def db(env):  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con


def test_stranger_naming_a_case_gets_a_linked_case_and_the_owner_is_not_mailed(env):
    env.deliver(with_files("ขออนุญาตก่อสร้างอาคาร", "แบบคำขอ ข1.pdf"))
    [h] = env.cycle().handled
    before = db(env).execute("SELECT status FROM cases WHERE receipt=?", (h.receipt,)).fetchone()["status"]
    sent = len(env.smtp.messages)
    env.deliver(with_files(f"Re: ขออนุญาตก่อสร้างอาคาร [เลขรับ {h.receipt}]", "บัตร.pdf", "แปลน.pdf",
                           sender="Mallory <mallory@example.net>"))
    [s] = env.cycle().handled
    assert s.outcome == "registered" and s.receipt != h.receipt
    con = db(env)
    owner = con.execute("SELECT * FROM cases WHERE receipt=?", (h.receipt,)).fetchone()
    assert owner["status"] == before and owner["attachments"] == 1
    assert "มีผู้อื่นส่งอีเมลอ้างถึงเรื่องนี้" in owner["remark"]
    new = env.smtp.messages[sent:]
    assert [m.rcpt_tos for m in new] == [["mallory@example.net"]]     # the owner is not mailed


def test_another_agencys_number_is_a_new_request(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    env.deliver(letter(f"ขอคืนเงินค่าธรรมเนียม อ้างถึงเลขรับ {h.receipt} ของที่ว่าการอำเภอเมือง",
                       sender="other@example.org"))
    [s] = env.cycle().handled
    assert s.outcome == "registered" and s.receipt and s.receipt != h.receipt
    assert [m.rcpt_tos for m in env.smtp.messages[1:]] == [["other@example.org"]]


def test_spoofed_staff_forward_is_held_under_the_outer_sender(env):
    env.set_config(staff=["clerk@example.go.th"], trust={"authserv_id": MX})
    fwd = letter("Fwd: ขออนุญาตก่อสร้างอาคาร", sender="clerk@example.go.th",
                 body="---------- Forwarded message ---------\nFrom: Somchai <victim@example.com>\n"
                      "Subject: ขออนุญาตก่อสร้างอาคาร\n\nขออนุญาตครับ",
                 Authentication_Results=f"{MX}; spf=fail smtp.mailfrom=example.go.th; dkim=none; dmarc=fail")
    env.deliver(fwd)
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.sender == "clerk@example.go.th"
    assert env.smtp.messages == []
    row = db(env).execute("SELECT * FROM cases").fetchone()
    assert row["via"] is None and row["sender_addr"] == "clerk@example.go.th" and trust.CLAIMS_US_NOTE in row["remark"]


def test_phishing_subject_is_echoed_inert(env):
    env.deliver(letter("คืนภาษี https://refund-rd-go-th.example/login", sender="เหยื่อ <victim@example.com>"))
    env.cycle()
    [reply] = env.replies()
    text = str(reply["Subject"]) + reply.get_body(("plain",)).get_content()
    assert "https://refund" not in text and "refund-rd-go-th.example" not in text
    assert "hxxps://refund-rd-go-th[.]example/login" in str(reply["Subject"])
    assert "never asks for passwords" in text


def test_inquiry_about_an_unknown_number_creates_no_case_and_reveals_nothing(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    env.deliver(letter("สถานะ 57/2569", sender="curious@example.net", body="ถึงไหนแล้ว"))
    [h] = env.cycle().handled
    assert h.outcome == "followup" and h.receipt is None
    assert db(env).execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    reply = env.replies()[-1]
    text = reply.get_body(("plain",)).get_content()
    assert "1/25" not in text and "เลขรับ" not in str(reply["Subject"])


def test_a_flood_of_spoofed_requests_is_registered_flagged_and_never_answered(env):
    env.set_config(trust={"authserv_id": MX})
    for i in range(20):
        env.deliver(letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"victim{i}@example.com",
                           Authentication_Results=f"{MX}; spf=fail smtp.mailfrom=example.com; dmarc=fail"))
    handled = env.cycle().handled
    assert len(handled) == 20 and all(h.outcome == "registered" and h.receipt for h in handled)
    assert env.smtp.messages == []                                     # backscatter: zero
    con = db(env)
    assert sum(trust.is_flagged(held, remark) for held, remark in con.execute("SELECT held, remark FROM cases")) == 20
    assert con.execute("SELECT count(*) FROM outbox WHERE status='held'").fetchone()[0] == 20   # officer may release


def test_x_loop_naming_us_is_automatic(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", X_Loop=AGENCY))
    [h] = env.cycle().handled
    assert h.outcome == "automatic" and env.smtp.messages == []


def test_secret_request_reply_carries_only_the_number(env):
    import email
    from email import policy

    env.set_config(supervisors=["head@example.go.th"])
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("[ลับ] ขออนุญาตก่อสร้างอาคาร ของนายสมชาย", sender="somchai@example.com"))
    [h] = env.cycle().handled
    assert h.outcome == "registered"
    mails = [(m.rcpt_tos[0], email.message_from_bytes(m.data, policy=policy.default)) for m in env.smtp.messages]
    assert "kongchang@example.go.th" not in [to for to, _ in mails]          # never forwarded automatically
    [reply] = [m for to, m in mails if to == "somchai@example.com"]
    assert "นายสมชาย" not in str(reply["Subject"]) + reply.get_body(("plain",)).get_content()
    assert "(เรื่องลับ)" in str(reply["Subject"]) and h.receipt in str(reply["Subject"])
    alerts = [m for to, m in mails if to in (AGENCY, "head@example.go.th")]
    assert alerts and all("นายสมชาย" not in m.get_body(("plain",)).get_content() for m in alerts)
    assert "ลับ" in str(alerts[0]["Subject"])
    # later replies on the case never echo it either
    env.deliver(letter(f"สถานะ {h.receipt}", sender="somchai@example.com"))
    env.cycle()
    status = [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages
              if m.rcpt_tos == ["somchai@example.com"]][-1]
    assert "นายสมชาย" not in str(status["Subject"]) + status.get_body(("plain",)).get_content()
    # the daily log masks it; the register (internal) records the secrecy in its own column
    r = env.cli("report", "--email")
    assert r.returncode == 0, r.stderr
    import openpyxl

    daily = next((env.cfg.registers_dir / "daily").glob("*.xlsx"))
    subjects = [row[2] for row in openpyxl.load_workbook(daily).worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert "(เรื่องลับ)" in subjects and not any("นายสมชาย" in str(x) for x in subjects)
    reg = next(env.cfg.registers_dir.glob("ทะเบียนรับ-*.xlsx"))
    row = next(openpyxl.load_workbook(reg).active.iter_rows(min_row=2, values_only=True))
    assert row[17] == "ลับ" and row[5].startswith("[ลับ]")


def test_urgent_request_alerts_the_unit_and_comes_first(env):
    import email
    from email import policy

    import openpyxl

    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร ธรรมดา", sender="a@example.com"))
    env.cycle()
    env.deliver(letter("ด่วนที่สุด ขออนุญาตก่อสร้างอาคาร ซ่อมหลังคาถล่ม", sender="b@example.com"))
    [h] = env.cycle().handled
    mails = [(m.rcpt_tos[0], email.message_from_bytes(m.data, policy=policy.default)) for m in env.smtp.messages]
    unit = [m for to, m in mails if to == "kongchang@example.go.th" and "แจ้งเตือน" in str(m["Subject"])]
    assert unit and "ด่วนที่สุด" in str(unit[0]["Subject"]) and h.receipt in unit[0].get_body(("plain",)).get_content()
    assert any(to == AGENCY and "ด่วนที่สุด" in str(m["Subject"]) for to, m in mails)
    assert env.cli("report").returncode == 0
    daily = next((env.cfg.registers_dir / "daily").glob("*.xlsx"))
    rows = list(openpyxl.load_workbook(daily).worksheets[0].iter_rows(min_row=2, values_only=True))
    # urgent first in the daily log, its mark once: the subject says ด่วนที่สุด already, so no "[ด่วนที่สุด]"
    assert rows[0][2].startswith("ด่วนที่สุด ขออนุญาตก่อสร้าง") and "[ด่วนที่สุด]" not in rows[0][2]
    reg = next(env.cfg.registers_dir.glob("ทะเบียนรับ-*.xlsx"))
    last = list(openpyxl.load_workbook(reg).active.iter_rows(min_row=2, values_only=True))[-1]
    assert last[17] == "ด่วนที่สุด"


def test_flood_of_spoofed_requests_gets_no_reply_and_all_are_registered(env):
    env.set_config(trust={"authserv_id": MX}, limits={"replies_per_sender_per_day": 1000})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร {i}", sender=f"victim{i}@example.com",
                         Authentication_Results=f"{MX}; spf=fail smtp.mailfrom=example.com; dkim=fail; dmarc=fail")
                  for i in range(200)])
    report = env.cycle()
    assert len([h for h in report.handled if h.outcome == "registered"]) == 200
    citizens = [m for m in env.smtp.messages if m.rcpt_tos[0].startswith("victim")]
    assert citizens == []                                           # backscatter: zero
    con = db(env)
    assert con.execute("SELECT count(*) FROM outbox WHERE status='held'").fetchone()[0] == 200
    assert con.execute("SELECT count(*) FROM cases WHERE held IS NOT NULL").fetchone()[0] == 200


def test_check_shows_the_authserv_id_seen_on_recent_mail(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", Authentication_Results=f"{MX}; spf=pass smtp.mailfrom=example.com"))
    r = env.cli("check")
    assert f"{MX} (1)" in r.stdout and "trust.authserv_id is not set; likely: " + MX in r.stdout
    assert f"ยังไม่ได้ตั้งชื่อเซิร์ฟเวอร์รับอีเมลของหน่วยงาน" in r.stdout and f"ตั้งเป็น {MX}" in r.stdout
    env.set_config(trust={"authserv_id": MX})
    r = env.cli("check")
    assert "ยังไม่ได้ตั้งชื่อเซิร์ฟเวอร์รับอีเมล" not in r.stdout and "trust.authserv_id is not set" not in r.stdout


def test_junk_folder_is_never_the_watched_folder(env):
    with env.client() as c:
        c.create_folder("Junk")
    env.set_config(imap={"folder": "Junk"})
    r = env.cli("check")
    assert r.returncode == 2 and "Junk" in r.stdout and "ไม่แตะต้อง" in r.stdout


def test_privacy_export_and_prune(env, tmp_path):
    from datetime import timedelta

    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="somchai@example.com"),
                letter("ร้องเรียนถนนชำรุด", sender="other@example.com"))
    env.cycle()
    exports = tmp_path / "exports"
    r = env.cli("privacy", "export", "somchai@example.com", "--to", str(exports))
    assert r.returncode == 0, r.stderr
    [folder] = [p for p in exports.iterdir() if p.is_dir()]
    cases = (folder / "เรื่องที่ยื่น (cases).csv").read_text(encoding="utf-8-sig")
    assert "ขออนุญาตก่อสร้างอาคาร" in cases and "ร้องเรียนถนนชำรุด" not in cases
    assert len(list((folder / "อีเมลที่ส่งมา (messages)").glob("*.eml"))) == 1
    assert len(list((folder / "อีเมลที่ตอบกลับ (replies)").glob("*.eml"))) == 1
    # nothing has passed ten years yet
    r = env.cli("privacy", "prune", "--yes")
    assert r.returncode == 0 and ": 0 ไฟล์" in r.stdout
    # eleven years on (test clock): the closed case's raw mail goes, the open one's stays
    con = db(env)
    con.execute("UPDATE cases SET status='closed' WHERE sender_addr='other@example.com'")
    con.commit()
    later = (env.clock() + timedelta(days=365 * 11)).strftime("%Y-%m-%dT%H:%M")
    clock = {"MAILBOT_NOW": later, "MAILBOT_TEST_CLOCK": "1"}
    r = env.cli("privacy", "prune", env=clock, timeout=60)
    assert "1 ไฟล์" in r.stdout and "คงไว้ 1 ฉบับ" in r.stdout and "ไม่ได้ลบ" in r.stdout
    archived = list((env.cfg.data_dir / "archive").rglob("*.eml"))
    assert len(archived) == 2
    r = env.cli("privacy", "prune", "--yes", env=clock)
    assert r.returncode == 0 and "ลบแล้ว 1 ไฟล์" in r.stdout
    assert len(list((env.cfg.data_dir / "archive").rglob("*.eml"))) == 1
    assert len(list(openpyxl_rows(env))) == 2                      # the register keeps both rows


def openpyxl_rows(env):  # type: ignore[no-untyped-def]
    import openpyxl

    reg = next(env.cfg.registers_dir.glob("ทะเบียนรับ-*.xlsx"))
    return list(openpyxl.load_workbook(reg).active.iter_rows(min_row=2, values_only=True))


def test_rules_test_on_an_unknown_number_explains_the_neutral_note(env):
    r = env.cli("rules", "test", "สถานะ 57/2569")
    assert "ไม่มีในระบบ" in r.stdout.splitlines()[0] and "57" not in r.stdout.splitlines()[0].split(":")[1]
