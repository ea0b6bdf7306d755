"""Issue 12 defects end to end over pymap + aiosmtpd, with the reference wiring of trust.py /
triage.py into pipeline.py (branch trust-wiring: a sketch for the lead, not for merging as is)."""
from __future__ import annotations

import sqlite3

from .conftest import AGENCY, letter

MX = "mx.example.go.th"


def with_files(subject, *names, sender="สมชาย ใจดี <somchai@example.com>", **headers):  # type: ignore[no-untyped-def]
    msg = letter(subject, sender=sender, **headers)
    for name in names:
        msg.add_attachment(b"%PDF-1.4\n" + b"x" * 2048, maintype="application", subtype="pdf", filename=name)
    return msg


def db(env):  # type: ignore[no-untyped-def]
    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
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
    assert row["via"] is None and row["sender_addr"] == "clerk@example.go.th" and "flagged" in row["remark"]


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
    assert con.execute("SELECT count(*) FROM cases WHERE remark LIKE '%flagged%'").fetchone()[0] == 20
    assert con.execute("SELECT count(*) FROM outbox WHERE status='held'").fetchone()[0] == 20   # officer may release


def test_x_loop_naming_us_is_automatic(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", X_Loop=AGENCY))
    [h] = env.cycle().handled
    assert h.outcome == "automatic" and env.smtp.messages == []


def test_secret_request_reply_carries_only_the_number(env):
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("[ลับ] ขออนุญาตก่อสร้างอาคาร ของนายสมชาย"))
    [h] = env.cycle().handled
    assert h.outcome == "registered"
    [reply] = env.smtp.messages          # no internal forward
    msg = env.replies()[0]
    assert "นายสมชาย" not in str(msg["Subject"]) + msg.get_body(("plain",)).get_content()
    assert "(เรื่องลับ)" in str(msg["Subject"])
