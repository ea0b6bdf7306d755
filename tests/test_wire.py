"""One contract, two wires: the sessions the in-memory double opens (mailbot/mail/memory.py)
keep the contract of the real IMAP and SMTP sessions (mail/mailbox.py, mail/smtp.py). Each test
runs over the double (fast tier) and over pymap + aiosmtpd through the real sessions (slow tier):
what passes on one and fails on the other is the double drifting from a real server."""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import pytest

from mailbot.errors import ConfigError, ConnectionFailure
from mailbot.mail.mailbox import Fetched
from mailbot.mail.smtp import SendRefused

from .conftest import AGENCY, NOW, letter


def mailbox(e):  # type: ignore[no-untyped-def]
    return e.wire.mailbox(e.cfg.imap)


def smtp(e):  # type: ignore[no-untyped-def]
    return e.wire.smtp(e.cfg.smtp, AGENCY)


def test_uids_ascend_and_fetch_gives_the_bytes_and_the_time_of_delivery(mail_env):
    first, second = letter("ก", message_id="<a@x>"), letter("ข", message_id="<b@x>")
    mail_env.deliver(first, when=NOW)
    mail_env.deliver(second, when=NOW + timedelta(minutes=7, seconds=30, microseconds=500))
    with mailbox(mail_env) as mb:
        validity = mb.select()
        assert validity == mb.select("INBOX") and validity > 0
        uids = mb.uids()
        assert uids == sorted(uids) and len(uids) == 2
        got = mb.fetch(uids)
        assert all(isinstance(f, Fetched) for f in got.values())
        assert [b"<a@x>" in got[u].raw for u in uids] == [True, False]
        assert [got[u].internal_date for u in uids] == [NOW, NOW + timedelta(minutes=7, seconds=30)]
        sizes = mb.arrivals(uids)
        assert [sizes[u] for u in uids] == [(len(got[u].raw), got[u].internal_date) for u in uids]
        assert mb.fetch([]) == {}


def test_a_missing_folder_is_a_plain_error(mail_env):
    with mailbox(mail_env) as mb, pytest.raises(ConnectionFailure) as failed:
        mb.select("ไม่มีโฟลเดอร์นี้")
    assert "ไม่พบโฟลเดอร์" in failed.value.thai


def test_a_move_keeps_the_bytes_and_gives_new_uids_in_order(mail_env):
    mail_env.deliver(letter("ก"), letter("ข"), letter("ค"))
    with mailbox(mail_env) as mb:
        mb.select()
        uids = mb.uids()
        before = mb.fetch(uids)
        mb.move(uids[:2], "ลงทะเบียนแล้ว")                 # created when missing, a Thai name
        mb.move(uids[:2], "ลงทะเบียนแล้ว")                 # a repeated MOVE changes nothing
        assert mb.uids() == uids[2:]
        assert "ลงทะเบียนแล้ว" in mb.folders()
        mb.select("ลงทะเบียนแล้ว")
        moved = mb.uids()
        assert moved == sorted(moved) and len(moved) == 2
        assert [f.raw for f in mb.fetch(moved).values()] == [before[u].raw for u in uids[:2]]
        assert [f.internal_date for f in mb.fetch(moved).values()] == [before[u].internal_date for u in uids[:2]]
    assert mail_env.folder_count("INBOX") == 1 and mail_env.folder_count("ลงทะเบียนแล้ว") == 2


def test_uidvalidity_changes_when_the_folder_is_made_again(mail_env):
    with mailbox(mail_env) as mb:
        mb.ensure_folder("คำร้อง")
        old = mb.select("คำร้อง")
    if mail_env.kind == "memory":
        mail_env.server.delete_folder("คำร้อง")
        mail_env.server.create_folder("คำร้อง")
    else:
        with mail_env.client() as c:
            c.delete_folder("คำร้อง")
            c.create_folder("คำร้อง")
    mail_env.deliver(letter("ก"), folder="คำร้อง")
    with mailbox(mail_env) as mb:
        assert mb.select("คำร้อง") != old
        assert len(mb.uids()) == 1


def test_the_sent_folder_copies_and_their_headers(mail_env):
    with mailbox(mail_env) as mb:
        assert mb.sent_folder() is None                    # no Sent folder: no copies
        mb.ensure_folder("Sent")
    reply = letter("Re: ขออนุญาต [เลขรับ 1/2569]", sender=AGENCY, message_id="<mailbot.1@example.go.th>")
    with mailbox(mail_env) as mb:
        mb.select()
        assert mb.sent_folder() == "Sent"
        mb.append_sent_many("Sent", [bytes(reply), bytes(letter("อีกฉบับ"))])
        headers = mb.sent_headers()
        assert mb.uids() == []                             # the watched folder is selected again
    assert len(headers) == 2
    fields = {line.split(b":", 1)[0].lower() for line in headers[0].splitlines() if b":" in line}
    assert fields == {b"subject", b"to", b"date", b"message-id"}
    assert b"<mailbot.1@example.go.th>" in headers[0]
    assert mail_env.folder_count("Sent") == 2
    mail_env.set_config(imap={"sent_folder": ""})
    with mailbox(mail_env) as mb:
        assert mb.sent_folder() is None                    # "" : never copy


def test_a_message_is_found_by_its_digest(mail_env):
    with mailbox(mail_env) as mb:
        mb.ensure_folder("กักกัน")
    mail_env.deliver(letter("อื่น"), letter("กักกัน"), folder="กักกัน")
    with mailbox(mail_env) as mb:
        mb.select("กักกัน")
        uid = mb.uids()[-1]
        kept = mb.fetch([uid])[uid].raw                    # the bytes as the server holds them
        mb.select()
        assert mb.find_raw("กักกัน", hashlib.sha256(kept).hexdigest(), len(kept)) == uid
        assert mb.find_raw("กักกัน", hashlib.sha256(b"x").hexdigest(), len(kept)) is None
        assert mb.find_raw("ไม่มี", hashlib.sha256(kept).hexdigest(), len(kept)) is None


def test_recent_headers_and_the_junk_folder(mail_env):
    mail_env.deliver(*[letter(f"เรื่อง {i}", message_id=f"<h{i}@x>") for i in range(3)])
    with mailbox(mail_env) as mb:
        mb.select()
        heads = mb.recent_headers(2)
        assert len(heads) == 2 and b"<h2@x>" in heads[-1] and all(b"\n\n" in h.replace(b"\r\n", b"\n") for h in heads)
        assert mb.is_junk("Junk") and not mb.is_junk("INBOX")


@pytest.mark.slow   # a timed wait: under faketime (the fast tier's other dates) it never returns
def test_new_mail_is_noticed_while_waiting(mail_env):
    stop = threading.Event()
    with mailbox(mail_env) as mb:
        assert mb.wait_for_new_mail(stop, rearm_seconds=0.3) is False     # nothing new: the wait ends
        threading.Timer(0.3, lambda: mail_env.deliver(letter("ใหม่"))).start()
        assert mb.wait_for_new_mail(stop, rearm_seconds=10) is True
        stop.set()
        assert mb.wait_for_new_mail(stop, rearm_seconds=10) is False      # stopped: at once


def test_a_wrong_password_or_no_server_is_a_connection_failure(mail_env):
    mail_env.set_config(imap={"password": "wrong"}, smtp={"password": "wrong"})
    with pytest.raises(ConnectionFailure) as imap_refused:
        mailbox(mail_env).connect()
    assert "เข้าสู่ระบบ IMAP ไม่สำเร็จ" in imap_refused.value.thai
    with smtp(mail_env) as s, pytest.raises(ConnectionFailure) as smtp_refused:
        s.send("somchai@example.com", bytes(letter("ก")))
    assert "เข้าสู่ระบบ SMTP ไม่สำเร็จ: ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in smtp_refused.value.thai
    mail_env.set_config(imap={"password": "", "password_env": "MAILBOT_TEST_NO_SUCH_VAR"})
    with pytest.raises(ConfigError):
        mailbox(mail_env).connect()
    mail_env.unreachable("imap")
    mail_env.unreachable("smtp")
    mail_env.set_config(imap={"password_env": None, "password": "x"})
    with pytest.raises(ConnectionFailure) as down:
        mailbox(mail_env).connect()
    assert "เชื่อมต่อเซิร์ฟเวอร์รับอีเมล (IMAP) ไม่ได้" in down.value.thai
    with smtp(mail_env) as s, pytest.raises(ConnectionFailure) as down:
        s.send("somchai@example.com", bytes(letter("ก")))
    assert "เชื่อมต่อเซิร์ฟเวอร์ส่งอีเมล (SMTP) ไม่ได้" in down.value.thai
    assert mail_env.smtp.messages == []


def test_sending_refusals_tell_for_good_from_for_now(mail_env):
    mail_env.smtp.refuse("gone@example.com", permanent=True)
    mail_env.smtp.refuse("busy@example.com", permanent=False)
    raw = bytes(letter("ตอบกลับ", sender=AGENCY))
    with smtp(mail_env) as s:
        with pytest.raises(SendRefused) as gone:
            s.send("gone@example.com", raw)
        with pytest.raises(SendRefused) as busy:
            s.send("busy@example.com", raw)
        with pytest.raises(SendRefused) as bad:
            s.send("not an address", raw)
        with pytest.raises(SendRefused) as thai:       # a Thai mailbox name, and no SMTPUTF8 offered
            s.send("สมชาย@example.com", raw)
        s.send("somchai@example.com", raw)
        s.send("ok@ตัวอย่าง.ไทย", raw)                  # a Thai domain goes out as its A-label
    assert (gone.value.permanent, busy.value.permanent, bad.value.permanent, thai.value.permanent) == \
        (True, False, True, True)
    assert [(m.mail_from, m.rcpt_tos) for m in mail_env.smtp.messages] == [
        (AGENCY, ["somchai@example.com"]), (AGENCY, ["ok@xn--72c1a1bt4awk9o.xn--o3cw4h"])]
    assert mail_env.smtp.messages[0].data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    mail_env.smtp.accept("busy@example.com")
    with smtp(mail_env) as s:
        s.send("busy@example.com", raw)
    assert mail_env.smtp.messages[-1].rcpt_tos == ["busy@example.com"]


def test_the_double_keeps_flags_as_a_server_does(mem_env):
    """What only the double lets a test look at directly: reading leaves \\Seen alone, a flag
    stays where it was put, copies in Sent are \\Seen, and the Sent folder is found by its special
    use before any usual name."""
    server = mem_env.server
    [uid] = server.deliver(letter("ก"))
    with mailbox(mem_env) as mb:
        mb.select()
        mb.fetch([uid])
        mb.recent_headers()
        assert server.stored("INBOX")[0].flags == set()
        mb.flag([uid])
        assert server.stored("INBOX")[0].flags == {b"\\Flagged"}
        server.create_folder("Sent")
        server.create_folder("รายการที่ส่ง", special_use="\\Sent")
        assert mb.sent_folder() == "รายการที่ส่ง"
        mb.append_sent("รายการที่ส่ง", b"Subject: x\r\n\r\ny\r\n", when=datetime(2026, 1, 2, tzinfo=timezone.utc))
        [copy] = server.stored("รายการที่ส่ง")
        assert copy.flags == {b"\\Seen"} and copy.internal_date == datetime(2026, 1, 2, tzinfo=timezone.utc)
        server.create_folder("สแปม", special_use="\\Junk")
        assert mb.is_junk("สแปม")


@pytest.mark.slow
def test_imaplib_keeps_no_trace_of_what_it_reads(env):
    """IMAPClient switches imaplib's protocol trace on (debug = 5), and imaplib then makes a repr
    of every response it stores, logged or not: 240 MB of strings for one 25 MB attachment. The
    session turns it off; the message still arrives whole."""
    big = letter("แบบแปลน", body="ก" * 200_000)
    env.deliver(big)
    with mailbox(env) as mb:
        mb.select()
        assert mb.client is not None and mb.client._imap.debug == 0
        [got] = mb.fetch(mb.uids()).values()
        import email
        from email import policy

        assert email.message_from_bytes(got.raw, policy=policy.default).get_content().count("ก") == 200_000
    # under --debug (its logger at DEBUG) the trace stays: someone is reading what the server said
    import logging

    trace = logging.getLogger("imapclient.imaplib")
    before = trace.level
    trace.setLevel(logging.DEBUG)
    try:
        with mailbox(env) as mb:
            mb.select()
            assert mb.client is not None and mb.client._imap.debug == 5
    finally:
        trace.setLevel(before)
