"""Nothing stops the mailbox, nothing is issued twice (issue 10): one bad address, reply, result,
register or optional template never stops the others; restores and lost databases never hand out a number twice;
old mail is left alone; changed registers are kept. Over real pymap and aiosmtpd."""
from __future__ import annotations

import email
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import openpyxl
import pytest

from mailbot.config import load_config
from mailbot.mail.servers import SmtpServer
from mailbot.registers.receive import register_path
from mailbot.thai import BANGKOK

from .conftest import AGENCY, PASSWORD, letter, state_db

pytestmark = pytest.mark.slow   # failures of the machine, through subprocesses


def db(env) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con


def raw_from(address: str, subject: str, message_id: str) -> bytes:
    """A message whose From: holds an address Python's email package would not write for us."""
    return (f"From: {address}\r\nTo: {AGENCY}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            "Date: Sat, 28 Nov 2026 10:00:00 +0700\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "ขอแจ้งเรื่องตามหัวเรื่อง\r\n").encode("utf-8")


ODD = {
    "idn": "somchai@ตัวอย่าง.ไทย",
    "thai_local": "สมชาย@example.com",
    "nbsp": "som\u00a0chai@example.com",
    "line_separator": "somchai@exam\u2028ple.com",
    "nbsp_domain": "somchai@exam\u00a0ple.com",
}


@pytest.mark.parametrize("smtputf8", [False, True], ids=["no-smtputf8", "smtputf8"])
def test_odd_addresses_never_block_the_cycle(env, smtputf8):
    with SmtpServer(AGENCY, PASSWORD, smtputf8=smtputf8) as server:
        env.set_config(smtp={"port": server.port})
        env.deliver(*[raw_from(addr, f"ร้องเรียนถนนชำรุด {key}", f"<{key}@example.com>") for key, addr in ODD.items()])
        env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="ok@example.com"))
        report = env.cycle()
        assert len(report.handled) == 6 and env.folder_count("INBOX") == 0
        # a later cycle is not stuck on any of them
        env.deliver(letter("ขออนุญาตก่อสร้างอาคาร หลังที่ 2", sender="later@example.com"))
        report = env.cycle()
        assert [h.outcome for h in report.handled] == ["registered"]
        got = {m.rcpt_tos[0] for m in server.messages}
        assert "ok@example.com" in got and "later@example.com" in got
        assert "somchai@xn--72c1a1bt4awk9o.xn--o3cw4h" in got            # IDN domain as its A-label
        idn = next(m for m in server.messages if m.rcpt_tos[0].startswith("somchai@xn--"))
        assert b"To: somchai@xn--72c1a1bt4awk9o.xn--o3cw4h" in idn.data
        assert ("สมชาย@example.com" in got) == smtputf8                   # only a server with SMTPUTF8 takes it
        con = db(env)
        failed = {r["recipient"]: r["last_error"] for r in con.execute("SELECT * FROM outbox WHERE status='failed'")}
        for key in ("nbsp", "line_separator", "nbsp_domain"):
            assert any(k.startswith("som") and ("อักขระ" in v) for k, v in failed.items()), failed
        if not smtputf8:
            assert "SMTPUTF8" in failed["สมชาย@example.com"]
        # the officer sees why, in the register's reply column and in `status`
        wb = openpyxl.load_workbook(register_path(env.cfg.registers_dir, 2569))
        replies = [r[16] for r in wb.active.iter_rows(min_row=2, values_only=True)]
        assert sum(1 for r in replies if r and r.startswith("ส่งไม่สำเร็จ")) == len(failed)
        status = env.cli("status").stdout
        assert "ส่งไม่สำเร็จ / failed: " + str(len(failed)) in status and "อักขระ" in status


def test_a_result_refused_for_good_is_not_called_sent(env, tmp_path):
    from mailbot.documents.certs import make_demo_pki

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="citizen@example.com"))
    [h] = env.cycle().handled
    with SmtpServer(AGENCY, PASSWORD, max_bytes=200_000) as small:       # refuses big mail with 552
        env.set_config(smtp={"port": small.port})
        outbox = env.root / "results" / "outbox"
        big = noisy_pdf()                                                  # ~400 KB that does not compress
        (outbox / f"{h.receipt.replace('/', '-')} อนุมัติ.pdf").write_bytes(big)
        r = env.cli("results")
    assert "signed and sent" not in r.stdout and "refused by the mail server" in r.stdout, r.stdout
    assert "552" in r.stdout and r.returncode == 1
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (h.receipt,)).fetchone()
    assert case["status"] != "completed" and case["reply_status"].startswith("ส่งไม่สำเร็จ")
    assert "ส่งผลการพิจารณาทางอีเมลไม่สำเร็จ" in case["action"]
    notes = list((env.root / "results" / "problems").glob("*.ส่งไม่สำเร็จ.txt"))
    assert notes and "552" in notes[0].read_text(encoding="utf-8")


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


def noisy_pdf() -> bytes:
    from fpdf import FPDF
    from PIL import Image

    img = Image.frombytes("RGB", (380, 380), os.urandom(380 * 380 * 3))
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=150)
    return bytes(pdf.output())


def test_the_same_pdf_for_two_cases_is_two_results(env):
    from mailbot.documents.certs import make_demo_pki

    from .test_results import make_pdf

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="one@example.com"),
                letter("ขออนุญาตก่อสร้างอาคาร หลังที่ 2", sender="two@example.com"))
    first, second = env.cycle().handled
    outbox = env.root / "results" / "outbox"
    data = make_pdf("Approved")
    (outbox / f"{first.receipt.replace('/', '-')}.pdf").write_bytes(data)
    env.cycle()
    (outbox / f"{second.receipt.replace('/', '-')}.pdf").write_bytes(data)      # the very same bytes
    env.cycle()
    sent = {m.rcpt_tos[0] for m in env.smtp.messages if m.data.count(b"application/pdf")}
    assert sent == {"one@example.com", "two@example.com"}
    rows = db(env).execute("SELECT case_id, status FROM results ORDER BY id").fetchall()
    assert len(rows) == 2 and all(r["status"] == "sent" for r in rows)


def test_8bit_message_id_is_registered_not_quarantined(env):
    raw = (b"From: somchai@example.com\r\nTo: saraban@example.go.th\r\nSubject: "
           + "ขออนุญาตก่อสร้างอาคาร".encode() + b"\r\nMessage-ID: <\xe0\xb8\x81\xff.1@mail.example>\r\n"
           b"In-Reply-To: <\xa1\xa2@other>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n")
    env.deliver(raw)
    [h] = env.cycle().handled
    assert h.outcome == "registered" and env.folder_count("INBOX") == 0
    assert [m.rcpt_tos[0] for m in env.smtp.messages] == ["somchai@example.com"]


def test_old_mail_before_since_is_left_alone(env):
    old = datetime(2019, 3, 1, 10, 0, tzinfo=timezone.utc)
    with env.client() as c:
        c.append("INBOX", bytes(letter("ขออนุญาตก่อสร้างอาคาร ปี 2562", sender="old@example.com", when=old)),
                 msg_time=old)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="new@example.com"))
    today = env.clock().astimezone(BANGKOK).date()
    env.set_config(imap={"since": f"{today.year + 543}-{today.month:02d}-{today.day:02d}"})
    report = env.cycle()
    assert [h.sender for h in report.handled] == ["new@example.com"]
    assert report.handled[0].receipt.endswith(f"/{today.year + 543}")
    assert report.left_before_since == 1
    assert env.folder_count("INBOX") == 1                                 # untouched, unanswered
    assert {m.rcpt_tos[0] for m in env.smtp.messages} == {"new@example.com"}
    assert not (env.cfg.registers_dir / "ทะเบียนรับ-2562.xlsx").exists()
    assert env.cycle().handled == []                                       # not looked at again
    assert "ก่อนวันเริ่มใช้" in env.cli("status").stdout


def test_init_writes_since_today(tmp_path):
    from .test_cli import mailbot

    # the day comes from the (test) clock; on a leap day the Buddhist-Era date is written quoted,
    # or YAML would read 2571-02-29 as a Gregorian date that does not exist
    r = mailbot("init", str(tmp_path), env={"MAILBOT_NOW": "2028-02-29T09:00", "MAILBOT_TEST_CLOCK": "1"})
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "mailbot.yaml").read_text(encoding="utf-8")
    assert 'since: "2571-02-29"' in text
    assert load_config(tmp_path / "mailbot.yaml").imap.since == date(2028, 2, 29)
    assert mailbot("--config", str(tmp_path / "mailbot.yaml"), "rules", "test", "ขออนุญาตก่อสร้าง").returncode == 0


def test_a_register_changed_by_hand_is_kept_and_the_officer_told(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    path = register_path(env.cfg.registers_dir, 2569)
    wb = openpyxl.load_workbook(path)                 # the officer edits and saves in Excel
    wb.active["H2"] = "แก้ด้วยมือ"
    wb.save(path)
    edited = path.read_bytes()
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    report = env.cycle()
    kept = [p for p in path.parent.glob("ทะเบียนรับ-2569 (ฉบับเดิม*.xlsx")]
    assert len(kept) == 1 and kept[0].read_bytes() == edited
    assert any("ถูกแก้ไข" in w for w in report.warnings)
    rows = list(openpyxl.load_workbook(path).active.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 2
    # a different file of exactly the same size is not appended to blindly
    same_size = bytearray(path.read_bytes())
    other = openpyxl.Workbook()
    other.active["A1"] = "x"
    buf = Path(env.root / "other.xlsx")
    other.save(buf)
    data = buf.read_bytes()
    data = data + b"\0" * (len(same_size) - len(data)) if len(data) < len(same_size) else data[:len(same_size)]
    path.write_bytes(data)
    env.deliver(letter("ร้องเรียนไฟดับ", sender="c@example.com"))
    report = env.cycle()
    assert report.register_failures == []
    rows = list(openpyxl.load_workbook(path).active.iter_rows(min_row=2, values_only=True))   # a valid zip again
    assert len(rows) == 3
    env.deliver(letter("ร้องเรียนน้ำท่วม", sender="d@example.com"))
    env.cycle()
    assert len(list(openpyxl.load_workbook(path).active.iter_rows(min_row=2, values_only=True))) == 4


def receipts_sent(env) -> list[str]:  # type: ignore[no-untyped-def]
    import re

    out = []
    for m in env.smtp.messages:
        subject = str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])
        out += re.findall(r"\[เลขรับ (\d+/\d{4})\]", subject)
    return out


def test_restore_then_poll_never_reissues_a_number(env, tmp_path):
    store = tmp_path / "backups"
    store.mkdir()
    env.set_config(backup={"dir": str(store)})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"a{i}@example.com") for i in range(3)])
    env.cycle()
    assert env.cli("backup").returncode == 0
    env.deliver(*[letter(f"ร้องเรียนถนนชำรุด จุดที่ {i}", sender=f"b{i}@example.com") for i in range(4)])
    env.cycle()                                          # 4/.. to 7/.. issued after the backup
    before = receipts_sent(env)
    r = env.cli("restore", "--from", str(store), "--force")
    assert r.returncode == 0, r.stderr
    assert "ออกหลังจากวันที่สำรองข้อมูล" in r.stdout and "7/25" in r.stdout, r.stdout
    env.deliver(*[letter(f"ขอข้อมูลข่าวสาร ฉบับที่ {i}", sender=f"c{i}@example.com") for i in range(2)])
    assert env.cli("poll").returncode == 0
    numbers = receipts_sent(env)
    firsts = [n for i, n in enumerate(numbers) if n not in numbers[:i]]
    assert len(set(numbers) - set(before)) == 2 and all(int(n.split("/")[0]) >= 8 for n in set(numbers) - set(before))
    con = db(env)
    assert [r[0] for r in con.execute("SELECT seq FROM cases ORDER BY seq")] == list(range(1, 10))
    assert len(firsts) == 9
    recovered = con.execute("SELECT count(*) FROM case_events WHERE kind='recovered'").fetchone()[0]
    assert recovered == 4
    # the newer register was kept under a dated name, not overwritten by the older copy
    kept = list(env.cfg.registers_dir.glob("ทะเบียนรับ-*(ฉบับเดิม*).xlsx"))
    assert kept and len(list(openpyxl.load_workbook(kept[0]).active.iter_rows(min_row=2))) == 7


def test_lost_database_then_poll_never_reissues_a_number(env):
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"a{i}@example.com") for i in range(3)])
    env.cycle()
    for suffix in ("", "-wal", "-shm"):
        Path(str(env.cfg.data_dir / "state.sqlite3") + suffix).unlink(missing_ok=True)
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="new@example.com"))
    report = env.cycle()
    [h] = report.handled
    assert h.receipt.startswith("4/"), h.receipt
    assert any("ไม่มีในฐานข้อมูล" in w for w in report.warnings)
    numbers = receipts_sent(env)
    assert len(numbers) == len(set(numbers)) == 4
    con = db(env)
    subjects = [r[0] for r in con.execute("SELECT subject FROM cases ORDER BY seq")]
    assert subjects[:3] == [f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}" for i in range(3)]   # rebuilt from the archive


def test_lost_database_and_archive_index_numbers_come_from_the_sent_folder(env):
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"a{i}@example.com") for i in range(2)])
    env.cycle()
    with env.client() as c:
        c.create_folder("Sent")
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    env.cycle()                     # the copy of this reply (3/..) lands in Sent
    shutil.rmtree(env.cfg.data_dir)
    shutil.rmtree(env.cfg.registers_dir)
    env.deliver(letter("ร้องเรียนไฟดับ", sender="c@example.com"))
    [h] = env.cycle().handled
    assert int(h.receipt.split("/")[0]) == 4, h.receipt
    numbers = receipts_sent(env)
    assert len(numbers) == len(set(numbers))


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_on_a_real_filesystem(env, tmp_path):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "6m"):
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a small tmpfs in CI (needs root)")
        pytest.skip("mounting a small tmpfs needs root here")
    try:
        data = small / "data"
        shutil.copytree(env.cfg.data_dir, data) if env.cfg.data_dir.exists() else data.mkdir()
        env.set_config(paths={"data": str(data)})
        env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="first@example.com"))
        assert env.cli("poll").returncode == 0
        filler = small / "filler"
        with filler.open("wb", buffering=0) as fh:     # fill the disk to the last byte (unbuffered: no flush left to fail at close)
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        env.deliver(letter("ร้องเรียนถนนชำรุด", sender="second@example.com",
                           body="รายละเอียด " + "ก" * 20000))
        for _ in range(4):
            r = env.cli("poll")
            assert r.returncode == 5 and "ดิสก์เต็ม" in r.stderr and "Traceback" not in r.stderr, r.stderr
        filler.unlink()
        r = env.cli("poll")
        assert r.returncode == 0, r.stderr
        con = db(env)
        outcomes = [r[0] for r in con.execute("SELECT outcome FROM messages ORDER BY id")]
        assert outcomes == ["registered", "registered"]              # nothing quarantined, nothing lost
        assert env.folder_count("INBOX") == 0
        con.close()
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_newer_database_is_refused_in_plain_words(env):
    env.cycle()
    con = state_db(env.cfg)
    con.execute("PRAGMA user_version=999")
    con.commit()
    con.close()
    r = env.cli("status")
    assert r.returncode != 0 and "รุ่นใหม่กว่า" in r.stderr and "Traceback" not in r.stderr


def test_damaged_database_names_restore(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    env.cycle()
    path = env.cfg.data_dir / "state.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))
    r = env.cli("poll")
    assert r.returncode != 0 and "mailbot restore" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "saved data is safe" not in r.stderr


@pytest.mark.parametrize("rolled_back", [("data",), ("data", "registers")])
def test_an_older_data_folder_copied_back_by_hand_issues_no_number_twice(env, rolled_back):
    """Every start reconciles with every witness: an older data/ (database and receipt index
    together) put back by hand is caught by the register workbooks on disk; with registers/
    rolled back too, by the tags of mailbot's copies in the Sent folder (one SEARCH SINCE)."""
    with env.client() as c:
        c.create_folder("Sent")
    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"a{i}@example.com") for i in range(3)])
    env.cycle()
    saved = env.root.parent / "by-hand"
    for name in rolled_back:
        shutil.copytree(env.root / name, saved / name)
    env.deliver(*[letter(f"ร้องเรียนถนนชำรุด ซอย {i}", sender=f"b{i}@example.com") for i in range(2)])
    env.cycle()                                                   # 4/ and 5/ issued and answered
    for name in rolled_back:                                      # the officer copies the old folders back
        shutil.rmtree(env.root / name)
        shutil.copytree(saved / name, env.root / name)
    env.deliver(*[letter(f"ขอข้อมูลข่าวสาร ฉบับที่ {i}", sender=f"c{i}@example.com") for i in range(2)])
    report = env.cycle()
    assert sorted(int(h.receipt.split("/")[0]) for h in report.handled if h.receipt) == [6, 7], report.handled
    numbers = receipts_sent(env)
    assert len(numbers) == len(set(numbers)) == 7                 # 0 numbers issued twice
    assert any("4/" in w or "5/" in w for w in report.warnings)   # the officer is told what was found


def test_register_workbooks_are_evidence_and_none_costs_no_openpyxl(env, tmp_path):
    """A full recovery reads the receive registers on disk; where there are none (a new office's
    first poll) openpyxl is not even loaded (0.09 s of that poll)."""
    from mailbot.ops import recovery

    env.deliver(*[letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"a{i}@example.com") for i in range(2)])
    env.cycle()
    found = sorted((ev.year, ev.seq, ev.source) for ev in recovery._registers(env.cfg.registers_dir))
    assert [(seq, source) for _, seq, source in found] == [(1, "register"), (2, "register")]
    empty = tmp_path / "no-registers"
    empty.mkdir()
    probe = ("import sys; from pathlib import Path; from mailbot.ops import recovery; "
             f"assert list(recovery._registers(Path({str(empty)!r}))) == []; print('openpyxl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False", out.stdout + out.stderr
