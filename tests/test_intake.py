"""End to end over real IMAP (pymap) and SMTP (aiosmtpd): every outcome, replies, register; a
duplicate delivery is a registration nowhere (poll totals, daily log, cases)."""
from __future__ import annotations

import base64
import sqlite3
from datetime import datetime, timezone

import openpyxl
import pytest

from mailbot.registers.receive import register_path
from mailbot.thai import BANGKOK

from .conftest import AGENCY, YEAR, letter, state_db


def db(env):  # type: ignore[no-untyped-def]
    return state_db(env.cfg)


def register_rows(env, year=None):  # type: ignore[no-untyped-def]
    year = year or YEAR
    wb = openpyxl.load_workbook(register_path(env.cfg.registers_dir, year))
    ws = wb.active
    return [[c.value for c in row] for row in ws.iter_rows()], ws


def test_service_request_is_registered_answered_and_moved(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", message_id="<req1@example.com>"))
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"]
    year = YEAR
    assert report.handled[0].receipt == f"1/{year}"

    # the reply
    [reply] = env.replies()
    assert env.smtp.messages[0].mail_from == AGENCY          # envelope sender: bounces come back to us
    assert env.smtp.messages[0].rcpt_tos == ["somchai@example.com"]
    assert env.smtp.logins == [AGENCY]                       # authenticated
    assert reply["From"].addresses[0].addr_spec == AGENCY
    from mailbot.mail.parse import parse

    ours = parse(env.smtp.messages[0].data)   # (the stdlib splits folded Thai names; ours does not)
    assert ours.from_name == "เทศบาลตำบลบ้านตัวอย่าง" and ours.from_addr == AGENCY
    assert "=?utf-8?" in env.smtp.messages[0].data.split(b"\r\n\r\n")[0].decode().lower()  # Thai name encoded
    assert reply["In-Reply-To"] == "<req1@example.com>"
    assert "<req1@example.com>" in reply["References"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["Message-ID"].endswith("@example.go.th>")
    assert reply["Subject"] == f"Re: ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 [เลขรับ 1/{year}]"
    body = reply.get_content()
    assert body.index("เลขทะเบียนรับ") < body.index("Receipt number")   # Thai first, English second
    assert f"1/{year}" in body and "น." in body and "ขออนุญาตก่อสร้าง" in body

    # server folders: out of INBOX into the outcome folder; a copy of the reply in Sent? (no Sent here)
    assert env.folder_count("INBOX") == 0
    assert env.folder_count("ลงทะเบียนแล้ว") == 1

    # the register
    rows, ws = register_rows(env)
    assert rows[0][:8] == ["เลขทะเบียนรับ", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ"]
    assert rows[1][0] == f"1/{year}"
    assert rows[1][5] == "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"
    assert "somchai@example.com" in rows[1]
    assert "BLD" in rows[1]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref.startswith("A1:")
    assert ws["A1"].font.name == "TH Sarabun New" and ws["F2"].font.name == "TH Sarabun New"
    assert ws["F2"].font.size == 16 and ws.column_dimensions["F"].width >= 24


def test_reply_goes_to_reply_to_and_copy_lands_in_sent(env):
    with env.client() as c:
        c.create_folder("Sent")
    env.deliver(letter("ร้องเรียนเสียงดังรบกวน", sender="Office <office@example.com>",
                       Reply_To="นางสาวดวงใจ <duangjai@example.org>"))
    env.cycle()
    assert env.smtp.messages[0].rcpt_tos == ["duangjai@example.org"]
    [copy] = env.folder_messages("Sent")
    assert b"Auto-Submitted: auto-replied" in copy


def test_wrong_agency_gets_referral_without_number(env):
    env.deliver(letter("ขอทำบัตรประชาชนใหม่"))
    report = env.cycle()
    [h] = report.handled
    assert h.outcome == "wrong_agency" and h.receipt is None
    [reply] = env.replies()
    body = reply.get_content()
    assert "สำนักทะเบียนอำเภอเมือง" in body and "1548" in body
    assert "เลขรับ" not in reply["Subject"]
    assert env.folder_count("ส่งต่อหน่วยงานอื่น") == 1
    con = db(env)
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 0
    assert con.execute("SELECT outcome FROM messages").fetchone()[0] == "wrong_agency"


def test_service_beats_referral(env):
    env.deliver(letter("ขออนุญาตก่อสร้าง แนบสำเนาทะเบียนบ้าน"))
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.receipt


def test_unclassified_is_registered_for_officer_review(env):
    env.deliver(letter("สอบถามเรื่องทั่วไป"))
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.receipt
    rows, _ = register_rows(env)
    assert "รอเจ้าหน้าที่ตรวจสอบ" in rows[1]
    assert "เจ้าหน้าที่สารบรรณจะพิจารณา" in env.replies()[0].get_content()


AUTOMATIC = [
    {"Auto_Submitted": "auto-replied"},
    {"Auto_Submitted": "auto-generated"},
    {"Precedence": "bulk"},
    {"Precedence": "junk"},
    {"Precedence": "list"},
    {"Precedence": "auto_reply"},
    {"X_Autoreply": "yes"},
    {"X_Autorespond": "yes"},
    {"X_Auto_Response_Suppress": "All"},
    {"List_Id": "<news.example.com>"},
    {"List_Unsubscribe": "<mailto:unsub@example.com>"},
    {"Return_Path": "<>"},
    {"sender": "MAILER-DAEMON@mx.example.com"},
    {"sender": "postmaster@example.com"},
    {"sender": "no-reply@bank.example"},
    {"sender": "noreply@shop.example"},
]


@pytest.mark.parametrize("headers", AUTOMATIC, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
def test_automatic_mail_is_never_answered(env, headers):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", **headers))
    [h] = env.cycle().handled
    assert h.outcome == "automatic"
    assert env.smtp.messages == []
    assert env.folder_count("อีเมลอัตโนมัติ") == 1
    assert env.folder_count("INBOX") == 0


@pytest.mark.parametrize("headers", [
    {"sender": AGENCY},
    {"sender": "director@example.go.th",
     "Authentication_Results": "mx.example.go.th; spf=fail smtp.mailfrom=example.go.th; dkim=none; dmarc=fail"},
])
def test_mail_claiming_to_be_us_is_registered_flagged_and_not_answered(env, headers):
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", **headers))
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.receipt and "flagged" in h.reason
    assert env.smtp.messages == []                     # no reply, no internal forward
    rows, _ = register_rows(env)
    assert "อ้างเป็นอีเมลของหน่วยงาน" in rows[1][7] and "ผู้ส่งตรวจสอบไม่ผ่าน" in rows[1][16]
    assert "flagged" not in rows[1][7] + rows[1][16]                 # plain Thai on the register


def test_own_domain_passing_authentication_is_an_ordinary_request(env):
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="clerk@example.go.th",
                       Authentication_Results="mx.example.go.th; spf=pass; dkim=pass; dmarc=pass"))
    [h] = env.cycle().handled
    assert h.outcome == "registered" and "flagged" not in h.reason and len(env.smtp.messages) == 1


def test_bounce_of_our_reply_is_matched_to_its_case(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="typo@gmial.example"))
    [h] = env.cycle().handled
    ours = env.replies()[0]["Message-ID"]
    dsn = (f"From: MAILER-DAEMON@mx.example.go.th\r\nTo: {AGENCY}\r\nSubject: Undelivered Mail\r\n"
           "Message-ID: <dsn1@mx>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nHost not found\r\n"
           "--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.1.2\r\n"
           f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ours}\r\nTo: typo@gmial.example\r\n"
           "--b--\r\n").encode()
    env.deliver(dsn)
    [b] = env.cycle().handled
    assert b.outcome == "automatic" and "bounce of our receipt" in b.reason
    rows, _ = register_rows(env)
    assert "ส่งอีเมลไม่สำเร็จ" in rows[1][7] and "bounced" in rows[1][16]
    assert len(env.smtp.messages) == 1                # nobody answers a bounce
    assert h.receipt == rows[1][0]


def test_auto_submitted_no_is_a_person(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", Auto_Submitted="no"))
    [h] = env.cycle().handled
    assert h.outcome == "registered"


def test_bounce_multipart_report_is_automatic(env):
    raw = (b"From: Mail System <mailer@mx.example.com>\r\nTo: saraban@example.go.th\r\nSubject: failure\r\n"
           b"Message-ID: <b1@mx>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
           b"--x\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Action: failed\r\n--x--\r\n")
    env.deliver(raw)
    [h] = env.cycle().handled
    assert h.outcome == "automatic" and "multipart/report" in h.reason


def test_followup_by_tag_attaches_to_case_and_acknowledges_once_a_day(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", message_id="<orig@example.com>"))
    [first] = env.cycle().handled
    receipt = first.receipt
    thai_digits = receipt.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))
    env.deliver(letter(f"Re: ขออนุญาตก่อสร้างอาคาร [เลขรับ {receipt}]", body="ส่งแบบแปลนเพิ่มครับ"),
                letter(f"ส่งเพิ่มเติม เลขรับ {thai_digits}", body="ลืมแจ้งเบอร์โทรครับ 081"))
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["followup", "followup"]
    assert {h.receipt for h in report.handled} == {receipt}
    replies = env.replies()
    assert len(replies) == 2  # receipt + one acknowledgement (not two the same day)
    assert "ไม่ออกเลขรับใหม่" in replies[1].get_content()
    con = db(env)
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    rows, _ = register_rows(env)
    assert len(rows) == 2 and "ติดตาม" in rows[1][7]
    assert env.folder_count("ติดตามเรื่อง") == 2


def test_followup_by_threading_headers(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    our_reply = env.replies()[0]["Message-ID"]
    env.deliver(letter("Re: something else", body="แนบเอกสารเพิ่มเติม", In_Reply_To=our_reply, References=our_reply))
    [h] = env.cycle().handled
    assert h.outcome == "followup"


def test_answer_to_our_reply_with_nothing_new_is_automatic(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    our = env.replies()[0]
    env.deliver(letter("Re: " + our["Subject"], body="> quoted only\n> more quote\n", In_Reply_To=our["Message-ID"]))
    [h] = env.cycle().handled
    assert h.outcome == "automatic"


def test_same_message_delivered_twice_is_registered_once(env):
    msg = letter("ขออนุญาตก่อสร้างอาคาร", message_id="<twice@example.com>")
    raw = bytes(msg)
    copy2 = b"Received: from relay2.example by mx; Fri, 27 Nov 2026 10:00:00 +0700\r\nDelivered-To: other@example.go.th\r\n" + raw
    env.deliver(raw)
    env.cycle()
    env.deliver(copy2)
    report = env.cycle()
    [h] = report.handled
    assert h.reason.startswith("duplicate")
    assert len(env.smtp.messages) == 1
    assert env.folder_count("ลงทะเบียนแล้ว") == 2
    assert db(env).execute("SELECT count(*) FROM cases").fetchone()[0] == 1


def test_duplicates_inside_one_batch(env):
    raw = bytes(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.deliver(raw, raw, raw)
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered", "duplicate", "duplicate"]
    assert report.counts() == {"registered": 1, "duplicate": 2}  # a duplicate is no registration
    assert len([h for h in report.handled if h.receipt]) == 3   # all name the same case
    assert len({h.receipt for h in report.handled}) == 1
    assert len(env.smtp.messages) == 1


@pytest.mark.slow   # the command line, as a subprocess
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


def test_no_usable_sender_is_registered_without_reply(env):
    raw = (b"From: somebody\r\nTo: saraban@example.go.th\r\nSubject: =?utf-8?b?"
           + base64.b64encode("ขออนุญาตก่อสร้างอาคาร".encode()) + b"?=\r\nMessage-ID: <x1@y>\r\n\r\nhello\r\n")
    env.deliver(raw)
    [h] = env.cycle().handled
    assert h.outcome == "registered"
    assert env.smtp.messages == []
    rows, _ = register_rows(env)
    assert "ไม่มีที่อยู่สำหรับตอบกลับ" in rows[1][7]


def test_unparseable_is_quarantined_with_raw_bytes(env):
    env.deliver(b"\r\n\r\n   \r\n")
    [h] = env.cycle().handled
    assert h.outcome == "quarantined"
    assert env.folder_count("กักกัน") == 1
    kept = list((env.cfg.data_dir / "quarantine").glob("*.eml"))
    assert kept and kept[0].read_bytes() == b"\r\n\r\n   \r\n"
    assert kept[0].with_suffix(".txt").read_text(encoding="utf-8").strip()
    row = db(env).execute("SELECT reason FROM messages").fetchone()
    assert "unparseable" in row[0]


def test_processing_failure_three_times_quarantines_and_does_not_block_others(env, monkeypatch):
    from mailbot.intake import verdict

    real = verdict.verdict

    def flaky(p, *a, **kw):  # a bug that hits one message only
        if "POISON" in p.letter.subject:
            raise ValueError("boom")
        return real(p, *a, **kw)

    monkeypatch.setattr(verdict, "verdict", flaky)
    env.deliver(letter("POISON ขออนุญาตก่อสร้าง"), letter("ขออนุญาตก่อสร้างอาคาร หลังที่สอง"))
    outcomes = []
    for _ in range(3):
        outcomes.append([h.outcome for h in env.cycle().handled])
    assert outcomes[0] == ["registered"]          # the healthy one is not held up
    assert outcomes[1] == []                      # second failure: still waiting
    assert outcomes[2] == ["quarantined"]
    assert env.folder_count("กักกัน") == 1 and env.folder_count("INBOX") == 0
    assert "boom" in db(env).execute("SELECT reason FROM messages WHERE outcome='quarantined'").fetchone()[0]


def test_formula_looking_subjects_stay_text(env):
    subjects = ['=HYPERLINK("http://evil.example","คลิก")', "+1+2", "-2+3", "@SUM(A1:A2)", "=1+1 ขออนุญาตก่อสร้าง"]
    env.deliver(*[letter(s) for s in subjects])
    env.cycle()
    rows, ws = register_rows(env)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    assert {r[5] for r in rows[1:]} == set(subjects)
    # and in the raw XML there is no formula element at all
    import zipfile

    with zipfile.ZipFile(register_path(env.cfg.registers_dir, YEAR)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet and b"<f " not in sheet


def test_locked_register_does_not_stop_the_cycle_and_catches_up(env, monkeypatch):
    import mailbot.files as files

    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    target = register_path(env.cfg.registers_dir, YEAR)
    before = target.read_bytes()

    real_replace = files.replace_file

    def locked(src, dst):  # what Windows says while Excel has the workbook open
        if str(dst).endswith(".xlsx"):
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        real_replace(src, dst)

    monkeypatch.setattr(files, "replace_file", locked)
    env.deliver(letter("ร้องเรียนถนนชำรุด"))
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"]
    assert report.register_failures and any("ทะเบียน" in w for w in report.warnings)
    assert target.read_bytes() == before
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".~mailbot-")]  # no temp left behind
    monkeypatch.undo()
    report = env.cycle()                      # nothing new arrives: the view still catches up
    assert report.registers == [target]
    rows, _ = register_rows(env)
    assert len(rows) == 3


def test_register_path_that_cannot_be_replaced(env):
    target = register_path(env.cfg.registers_dir, YEAR)
    target.mkdir(parents=True)          # a real filesystem refusal, not a simulated one
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"]
    assert report.register_failures
    target.rmdir()
    assert env.cycle().registers == [target]


def test_per_sender_cap_holds_replies_and_says_so(env):
    env.set_config(limits={"replies_per_sender_per_day": 2})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}") for i in range(4)])
    report = env.cycle()
    assert len([h for h in report.handled if h.receipt]) == 4
    assert len(env.smtp.messages) == 2
    con = db(env)
    assert con.execute("SELECT count(*) FROM outbox WHERE status='held'").fetchone()[0] == 2
    rows, _ = register_rows(env)
    assert sum("ระงับ" in str(r[16]) for r in rows[1:]) == 2     # the reply column says so, in Thai


def test_global_cap_leaves_backlog_that_is_sent_later(env):
    env.set_config(limits={"replies_per_hour": 2})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้าง {i}", sender=f"p{i}@example.com") for i in range(5)])
    report = env.cycle()
    assert len(env.smtp.messages) == 2 and report.backlog == 3
    assert db(env).execute("SELECT count(*) FROM outbox WHERE status='queued'").fetchone()[0] == 3
    # the next poll within the hour: nothing can go, and the officer is told why the replies wait
    report = env.cycle()
    assert len(env.smtp.messages) == 2 and report.backlog == 3
    assert any("hourly reply limit 2 reached; 3 replies wait" in w for w in report.warnings), report.warnings
    env.set_config(limits={"replies_per_hour": 300})
    report = env.cycle()
    assert len(env.smtp.messages) == 5 and report.backlog == 0
    assert len({m.rcpt_tos[0] for m in env.smtp.messages}) == 5


def test_receipt_numbers_restart_each_buddhist_year(env):
    from mailbot.app import run_cycle

    def at(y, m, d, hh, mm):
        return lambda: datetime(y, m, d, hh, mm, tzinfo=BANGKOK).astimezone(timezone.utc)

    env.deliver(letter("ขออนุญาตก่อสร้าง ก"), letter("ขออนุญาตก่อสร้าง ข"))
    r1 = run_cycle(env.cfg, clock=at(2026, 12, 31, 23, 50))
    assert [h.receipt for h in r1.handled][0].endswith("/2569")
    # arrival times come from the server (INTERNALDATE); stamp new ones in the new year
    with env.client() as c:
        for subj in ("ขออนุญาตก่อสร้าง ค", "ขออนุญาตก่อสร้าง ง"):
            c.append("INBOX", bytes(letter(subj)), msg_time=datetime(2027, 1, 1, 0, 5, tzinfo=BANGKOK))
    r2 = run_cycle(env.cfg, clock=at(2027, 1, 1, 0, 10))
    assert [h.receipt for h in r2.handled] == ["1/2570", "2/2570"]
    assert register_path(env.cfg.registers_dir, 2570).exists()


def test_move_fallback_without_move_capability(env, monkeypatch):
    from mailbot.mail import mailbox as fetch

    original = fetch.Mailbox.connect

    def no_move(self):  # type: ignore[no-untyped-def]
        original(self)
        self.use_move = False

    monkeypatch.setattr(fetch.Mailbox, "connect", no_move)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ขอทำบัตรประชาชน"))
    env.cycle()
    assert env.folder_count("INBOX") == 0
    assert env.folder_count("ลงทะเบียนแล้ว") == 1 and env.folder_count("ส่งต่อหน่วยงานอื่น") == 1


def test_citizen_text_is_not_echoed_raw(env):
    evil = "ขออนุญาตก่อสร้าง \u202egnp.exe\u202c \x07 <script>alert(1)</script>"
    env.deliver(letter(evil))
    env.cycle()
    [reply] = env.replies()
    assert "\u202e" not in reply["Subject"] and "\x07" not in reply.get_content()
    assert "\u202e" not in reply.get_content()


def test_read_messages_are_left_unread_until_moved(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    with env.client() as c:
        c.select_folder("ลงทะเบียนแล้ว")
        flags = c.get_flags(c.search())
    assert all(b"\\Seen" not in f for f in flags.values())   # BODY.PEEK: officers still see it as new


def test_thai_outlook_windows_874_end_to_end(env):
    from mailbot.demo import sample_messages

    outlook = sample_messages()[0]
    assert b"windows-874" in outlook
    env.deliver(outlook)
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.subject == "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"
    rows, _ = register_rows(env)
    assert rows[1][3].startswith("สมชาย ใจดี <") and rows[1][5] == "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"
    assert env.replies()[0]["Subject"].startswith("Re: ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 [เลขรับ ")


def test_batches_respect_a_byte_budget(env):
    env.set_config(imap={"batch_megabytes": 0.05, "batch_size": 50})
    big = letter("ขออนุญาตก่อสร้าง แนบแบบแปลน")
    big.add_attachment(b"x" * 40_000, maintype="application", subtype="pdf", filename="แบบ.pdf")
    env.deliver(big, letter("ร้องเรียน ก"), letter("ร้องเรียน ข"), big)
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] * 3 + ["duplicate"]   # big came twice
    assert report.batches == 3          # [big] [small, small] [big]


def test_reply_to_our_own_address_is_never_answered(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", Reply_To=AGENCY))
    [h] = env.cycle().handled
    assert h.outcome == "registered" and env.smtp.messages == []


def test_too_large_message_is_kept_and_the_sender_told_the_limit(env):
    env.set_config(limits={"max_message_mb": 1})
    big = letter("ขออนุญาตก่อสร้างอาคาร แนบแบบแปลน")
    big.add_attachment(b"\x00" * (2 * 1024 * 1024), maintype="application", subtype="pdf", filename="แบบ.pdf")
    raw = bytes(big)
    env.deliver(raw)
    [h] = env.cycle().handled
    assert h.outcome == "quarantined" and "too large" in h.reason
    [reply] = env.replies()
    assert "1 MB" in reply.get_content() and "เกินขนาด" in reply.get_content()
    # the size the sender sees in their folder (2 MB of file), not the ~2.8 MB it became in transit
    assert len(raw) > 2.7 * 1024 * 1024 and "ประมาณ 2.0 MB" in reply.get_content(), reply.get_content()
    kept = list((env.cfg.data_dir / "quarantine").glob("*.eml"))
    assert kept and kept[0].read_bytes().replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")  # as the server holds it
    assert env.folder_count("กักกัน") == 1


def test_the_size_people_see_is_the_files_not_their_encoding():
    import os

    from mailbot.mail.parse import size_people_see

    for mb in (1, 27):
        msg = letter("แนบไฟล์")
        msg.add_attachment(os.urandom(mb * 1024 * 1024), maintype="application", subtype="pdf", filename="a.pdf")
        raw = bytes(msg)
        assert len(raw) / 1024 / 1024 > mb * 1.35                            # base64 in transit
        assert abs(size_people_see(raw) / 1024 / 1024 - mb) < 0.01 * mb + 0.01, size_people_see(raw)
    plain = bytes(letter("ข้อความล้วน", body="please see the plan of the house. " * 300))   # 7bit text: as it is
    assert abs(size_people_see(plain) - len(plain)) < len(plain) * 0.05


def test_register_grows_by_appending_and_stays_a_valid_workbook(env):
    import zipfile

    env.deliver(*[letter(f"ขออนุญาตก่อสร้าง {i}", sender=f"p{i}@example.com") for i in range(3)])
    env.cycle()
    target = register_path(env.cfg.registers_dir, YEAR)
    first = target.read_bytes()
    env.deliver(*[letter(f"ร้องเรียน {i}", sender=f"q{i}@example.com") for i in range(2)])
    env.cycle()                                            # only new rows: appended
    grown = target.read_bytes()
    sheet_start = first.index(b"xl/worksheets/sheet1.xml") - 30     # the sheet's local header
    assert grown[:sheet_start] == first[:sheet_start]      # the fixed parts were not rewritten
    with zipfile.ZipFile(target) as z:
        assert z.testzip() is None                         # every CRC checks
    rows, ws = register_rows(env)
    assert [r[0] for r in rows[1:]] == [f"{i}/{YEAR}" for i in range(1, 6)]
    assert ws.auto_filter.ref.endswith("6")
    # a change to an old row (a follow-up) rewrites the file whole, still valid
    env.deliver(letter(f"Re: x [เลขรับ {rows[1][0]}]", sender="p0@example.com", body="เพิ่มเติม"))
    env.cycle()
    with zipfile.ZipFile(target) as z:
        assert z.testzip() is None
    rows, _ = register_rows(env)
    assert len(rows) == 6 and "ติดตาม" in (rows[1][7] or "")


def test_replies_in_one_conversation_are_capped_per_day(env):
    """A robot that answers every reply from new addresses in one thread: after
    limits.replies_per_thread_per_day replies in the thread, the rest are held for the officer."""
    env.set_config(limits={"replies_per_thread_per_day": 2, "replies_per_sender_per_day": 50})
    root = "<thread-root@robot.example>"
    mails = [letter(f"สอบถามข้อมูล ครั้งที่ {i}", sender=f"bot{i}@robot.example", In_Reply_To=root, References=root)
             for i in range(4)]
    env.deliver(*mails)
    report = env.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] * 4
    con = db(env)
    states = [r[0] for r in con.execute("SELECT status FROM outbox WHERE thread=? ORDER BY id", (root,))]
    assert states == ["sent", "sent", "held", "held"], states
    reason = con.execute("SELECT hold_reason FROM outbox WHERE status='held'").fetchone()[0]
    assert "การสนทนาเดียวกัน" in reason


def test_replies_address_the_requester_as_the_letter_does(env):
    """เรียน คุณสมชาย ใจดี (a name without its title), and once the officer sets the title, the case's
    next e-mail says เรียน นายสมชาย ใจดี, as the letter would; an organisation is named as it is."""
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"),
                letter("ขออนุญาตก่อสร้างอาคาร โกดัง", sender="ร้านดอกไม้บ้านตัวอย่าง <shop@example.com>"))
    report = env.cycle()
    person, company = (h.receipt for h in report.handled)
    bodies = [r.get_content() for r in env.replies()]
    assert any(b.startswith("เรียน คุณสมชาย ใจดี\n") and person in b for b in bodies)
    assert any(b.startswith("เรียน ร้านดอกไม้บ้านตัวอย่าง\n") and company in b for b in bodies)
    from mailbot.app import Office

    with Office.open(env.cfg, clock=env.clock, wire=env.wire) as office:
        office.set_title(person, "นาย", "เจ้าหน้าที่")
        office.set_case(person, status="in_progress", note="", tell="yes", actor="เจ้าหน้าที่")
        office.deliver()
    told = [r.get_content() for r in env.replies()][len(bodies):]
    assert told and all(b.startswith("เรียน นายสมชาย ใจดี\n") for b in told)


def test_a_request_written_in_english_is_answered_in_english_first(env):
    """The receipt and every later reply about the case come English first for a sender who wrote
    in English (the case remembers it); a Thai sender's stay Thai first."""
    env.deliver(letter("Building permit application, 12 Moo 3", body="Please find the plans attached. Regards, John",
                       sender="John Smith <john@example.com>"),
                letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"))
    report = env.cycle()
    english, thai = (h.receipt for h in report.handled)
    replies = {r["To"].addresses[0].addr_spec: r for r in env.replies()}
    bodies = {to: r.get_content() for to, r in replies.items()}
    to_john, to_somchai = bodies["john@example.com"], bodies["somchai@example.com"]
    assert to_john.startswith("Dear John Smith,") and to_john.index("Dear") < to_john.index("เรียน")
    assert to_somchai.startswith("เรียน ") and to_somchai.index("เรียน") < to_somchai.index("Dear")
    # dates: English (CE) first for John, Thai (BE) first for Somchai; both halves in each
    assert to_john.index("4 December 2026") < to_john.index("4 ธันวาคม 2569")
    assert to_somchai.index("4 ธันวาคม 2569") < to_somchai.index("4 December 2026")
    assert replies["john@example.com"]["Subject"] == f"Re: Building permit application, 12 Moo 3 [เลขรับ {english}]"
    assert db(env).execute("SELECT language FROM cases WHERE receipt=?", (english,)).fetchone()[0] == "en"
    assert db(env).execute("SELECT language FROM cases WHERE receipt=?", (thai,)).fetchone()[0] == "th"
    from mailbot.app import Office

    with Office.open(env.cfg, clock=env.clock, wire=env.wire) as office:
        office.set_case(english, status="in_progress", note="", tell="yes", actor="เจ้าหน้าที่")
        office.deliver()
    later = [r.get_content() for r in env.replies()][2:]
    assert later and later[0].startswith("Dear ")
    # a status question, even a short Thai-tagged one, is answered in the case's language
    env.deliver(letter(f"Re: Building permit application, 12 Moo 3 [เลขรับ {english}] status",
                       body="Any news?", sender="John Smith <john@example.com>"))
    env.cycle()
    status = env.replies()[-1].get_content()
    assert status.startswith("Dear ") and "in progress" in status.split("-" * 64)[0], status
