"""Mail sent beside the batch (mail/outbox.py ``Outbox.start(beside=True)``; intake/cycle.py): on one
office's own database a cycle's replies go out over SMTP in a thread of their own while the next
batch is committed, the two marks that must outlive a kill (handed to the server; taken by it) in
``<data>/sending.journal``. A kill between them and the database is recovered from the journal
before the next delivery: a message the server took is never sent again, one handed over with no
answer counts as cut off while sending (sent again once, then held), one seen to fail goes in its
turn. The kills of a real process at each point are in test_crash.py (after_send, after_mark_sent)."""
from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from mailbot.mail import outbox as outbox_module
from mailbot.mail.outbox import JOURNAL, Journal
from mailbot.store import from_iso

from .conftest import NOW, letter


def _queued_four(mem_env) -> list:  # type: ignore[no-untyped-def]
    """Four receipts owed (the SMTP server was down during the cycle)."""
    mem_env.unreachable("smtp")
    mem_env.deliver(*(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(4)))
    report = mem_env.cycle()
    assert report.backlog == 4 and mem_env.smtp.messages == []
    mem_env.unreachable("smtp", down=False)
    con = sqlite3.connect(mem_env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    return con.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def _rows(mem_env) -> list:  # type: ignore[no-untyped-def]
    con = sqlite3.connect(mem_env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    return con.execute("SELECT o.*, c.reply_status FROM outbox o LEFT JOIN cases c ON c.id = o.case_id "
                       "ORDER BY o.id").fetchall()


def test_what_a_killed_round_left_in_the_journal_is_recorded_before_the_next_delivery(mem_env):
    rows = _queued_four(mem_env)
    journal = Journal(mem_env.cfg.data_dir / JOURNAL)
    at = NOW + timedelta(minutes=1)
    journal.write("S", rows[0], 0, at)
    journal.write("A", rows[0], 0, at)          # the server took it: sent, never again
    journal.write("S", rows[1], 0, at)          # handed over, no answer recorded: cut off while sending
    journal.write("S", rows[2], 0, at)
    journal.write("F", rows[2], 0, None)        # seen to fail first: goes again in its turn
    journal.close()
    with open(journal.path, "ab") as fh:        # another row's line naming a different message, and a torn tail
        fh.write(f"A {rows[3]['id']} 0 {at.isoformat()} <someone-else@example>\n".encode())
        fh.write(f"A {rows[3]['id']} 0 2026-".encode())
    with mem_env.office() as office:
        office.deliver()
    assert not journal.path.exists()
    after = _rows(mem_env)
    assert [r["status"] for r in after] == ["sent"] * 4
    sent_to = [m.rcpt_tos[0] for m in mem_env.smtp.messages]
    assert sent_to == ["p1@example.com", "p2@example.com", "p3@example.com"]     # p0's is not sent again
    assert after[0]["sent_at"] == at.isoformat() and after[0]["reply_status"].startswith("ส่งแล้ว")
    assert [r["interrupted"] for r in after] == [0, 1, 0, 0]      # only p1's counts as cut off


def test_a_mark_without_a_time_is_recorded_at_the_office_clock_not_the_machine_clock(mem_env):
    """A journal line with no time ("-": written by hand, or by a release that had none) counts at
    the delivery's own clock: the sent time on the register is never the machine's date."""
    rows = _queued_four(mem_env)
    journal = Journal(mem_env.cfg.data_dir / JOURNAL)
    journal.write("S", rows[0], 0, None)
    journal.write("A", rows[0], 0, None)
    journal.close()
    assert journal.read() == {rows[0]["id"]: ("A", rows[0]["message_id"], 0, None)}
    with mem_env.office() as office:
        office.deliver()
    after = _rows(mem_env)
    assert after[0]["status"] == "sent"
    assert abs(from_iso(after[0]["sent_at"]) - NOW) < timedelta(minutes=10)      # the test clock's day
    assert [m.rcpt_tos[0] for m in mem_env.smtp.messages] == ["p1@example.com", "p2@example.com", "p3@example.com"]


def test_a_message_cut_off_a_second_time_is_held_for_the_officer(mem_env):
    rows = _queued_four(mem_env)
    journal = Journal(mem_env.cfg.data_dir / JOURNAL)
    journal.write("S", rows[1], 1, NOW)         # its second hand-over, cut off again
    journal.close()
    with mem_env.office() as office:
        report = office.deliver()
    after = _rows(mem_env)
    assert [r["status"] for r in after] == ["sent", "held", "sent", "sent"]
    assert "p1@example.com" not in [m.rcpt_tos[0] for m in mem_env.smtp.messages]
    assert any("p1@example.com" in w and "held for the officer" in w for w in report.warnings)


def test_a_journal_already_recorded_changes_nothing(mem_env):
    """A kill after the database has the round but before the journal was removed: nothing twice."""
    rows = _queued_four(mem_env)
    with mem_env.office() as office:
        office.deliver()
    assert len(mem_env.smtp.messages) == 4
    journal = Journal(mem_env.cfg.data_dir / JOURNAL)
    later = NOW + timedelta(hours=1)             # recorded again, the moments would change
    for row in rows:
        journal.write("S", row, 0, later)
        journal.write("A", row, 0, later)
    journal.write("S", rows[0], 0, later)        # even one that says "handed over" last
    journal.close()
    before = [dict(r) for r in _rows(mem_env)]
    with mem_env.office() as office:
        office.deliver()
    assert len(mem_env.smtp.messages) == 4 and [dict(r) for r in _rows(mem_env)] == before
    assert not journal.path.exists()


class _Gate:
    """The memory SMTP session of a round, held before its ``n``-th message until opened."""

    def __init__(self, smtp, n: int) -> None:  # type: ignore[no-untyped-def]
        self.smtp, self.n, self.count = smtp, n, 0
        self.reached, self.opened = threading.Event(), threading.Event()
        self.max_size = None

    def open(self) -> None:
        self.smtp.open()

    def send(self, recipient: str, raw: bytes) -> None:
        self.count += 1
        if self.count == self.n:
            self.reached.set()
            assert self.opened.wait(10)
        self.smtp.send(recipient, raw)


def _round(mem_env, office, n: int):  # type: ignore[no-untyped-def]
    """A round of the office's outbox sent beside, held before its ``n``-th message."""
    from mailbot.mail.outbox import Delivery

    session = mem_env.wire.smtp(office.cfg.smtp, office.cfg.agency.address)
    gate = _Gate(session, n)
    sending = office.outbox.start(gate, mem_env.clock, Delivery(), beside=True)
    assert gate.reached.wait(10)
    return gate, sending


def test_a_delivery_while_a_round_is_sending_sends_nothing_and_leaves_its_journal(mem_env):
    """Another delivery (a console's, another process's) while a round is in flight could not
    tell its journal from a killed round's: it sends nothing and leaves it alone."""
    _queued_four(mem_env)
    with mem_env.office() as office, mem_env.office() as other:
        gate, sending = _round(mem_env, office, 2)
        journal = mem_env.cfg.data_dir / JOURNAL
        assert journal.exists()
        report = other.deliver()
        assert report.sent == [] and any("another delivery is under way" in w for w in report.warnings)
        assert journal.exists() and len(mem_env.smtp.messages) == 1
        gate.opened.set()
        sending.finish()
        assert not journal.exists()
        again = other.deliver()                  # the round over: a delivery goes as usual
        assert again.sent == [] and not again.warnings
    assert [r["status"] for r in _rows(mem_env)] == ["sent"] * 4 and len(mem_env.smtp.messages) == 4


def test_a_round_recorded_after_a_later_reply_was_queued_leaves_that_reply_in_the_column(mem_env):
    """The round's fates are recorded after the next batch is committed: a reply about the same
    case queued meanwhile (here held by a cap) keeps the case's column, not the earlier "sent"."""
    _queued_four(mem_env)
    with mem_env.office() as office:
        gate, sending = _round(mem_env, office, 4)        # p0..p2 sent, p3 waiting at the server
        con = sqlite3.connect(mem_env.cfg.data_dir / "state.sqlite3")
        con.row_factory = sqlite3.Row
        first = con.execute("SELECT * FROM cases ORDER BY id LIMIT 1").fetchone()
        with office.state.tx():
            office.desk.reply_about(first, "followup", NOW, key=999, hold="รอเจ้าหน้าที่ตรวจ")
        held = con.execute("SELECT reply_status FROM cases WHERE id=?", (first["id"],)).fetchone()[0]
        gate.opened.set()
        sending.finish()
        rows = con.execute("SELECT id, reply_status FROM cases").fetchall()
        assert con.execute("SELECT reply_status FROM cases WHERE id=?", (first["id"],)).fetchone()[0] == held
        assert not held.startswith("ส่งแล้ว")
        others = [r["reply_status"] for r in rows if r["id"] != first["id"]]
        assert len(others) == 3 and all(r.startswith("ส่งแล้ว") for r in others)


@pytest.mark.slow   # real IMAP and SMTP servers (pymap, aiosmtpd)
def test_a_batch_that_fails_while_the_round_before_is_sending_still_records_the_round(env, monkeypatch):
    """The disk fills during the second batch's commit, with the first batch's replies going out
    beside it: the cycle stops on the machine's fault, and the replies the server took are
    recorded as sent (none owed again, no journal left)."""
    import errno

    from mailbot.errors import EnvironmentFailure
    from mailbot.intake import record

    env.set_config(imap={"batch_size": 2})
    env.deliver(*(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(4)))
    real = record.Recorder.record
    calls: list[int] = []

    def full_disk(self, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(record.Recorder, "record", full_disk)
    with pytest.raises(EnvironmentFailure):
        env.cycle()
    receipts = [r for r in _rows(env) if r["kind"] == "receipt"]      # (the alert about the disk aside)
    assert [(r["recipient"], r["status"]) for r in receipts] == [("p0@example.com", "sent"), ("p1@example.com", "sent")]
    assert [m.rcpt_tos[0] for m in env.smtp.messages if m.rcpt_tos[0].startswith("p")] == ["p0@example.com",
                                                                                           "p1@example.com"]
    assert not (env.cfg.data_dir / JOURNAL).exists()
    monkeypatch.setattr(record.Recorder, "record", real)
    env.cycle()
    assert sorted(m.rcpt_tos[0] for m in env.smtp.messages if m.rcpt_tos[0].startswith("p")) == [
        f"p{i}@example.com" for i in range(4)]


@pytest.mark.slow   # real IMAP and SMTP servers (pymap, aiosmtpd)
def test_a_cycle_sends_beside_its_batches_and_records_every_fate(env, monkeypatch):
    """Over the real servers, in batches of two: the sending runs in its own thread, a refusal
    for good and one for now are recorded as in this thread, the rest is sent, and no journal
    is left behind."""
    env.set_config(imap={"batch_size": 2})
    env.smtp.refuse("gone@example.com", permanent=True)          # 550
    env.smtp.refuse("busy@example.com", permanent=False)         # 451
    senders = ["a@example.com", "gone@example.com", "b@example.com", "busy@example.com", "c@example.com",
               "d@example.com"]
    env.deliver(*(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=s) for i, s in enumerate(senders)))
    threads: list[str] = []
    real = outbox_module.Outbox.send_rows

    def send_rows(self, rows, *a, **k):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(self, rows, *a, **k)

    monkeypatch.setattr(outbox_module.Outbox, "send_rows", send_rows)
    report = env.cycle()
    assert "mailbot-sending" in threads
    assert sorted(m.rcpt_tos[0] for m in env.smtp.messages) == ["a@example.com", "b@example.com",
                                                               "c@example.com", "d@example.com"]
    assert [(who, kind) for who, kind, _ in report.delivery.failed] == [("gone@example.com", "receipt")]
    assert len(report.delivery.sent) == 4 and report.backlog == 1
    by = {r["recipient"]: r for r in _rows(env)}
    assert by["gone@example.com"]["status"] == "failed" and by["gone@example.com"]["reply_status"].startswith("ส่งไม่สำเร็จ")
    assert by["busy@example.com"]["status"] == "queued" and by["busy@example.com"]["next_attempt_at"]
    assert by["busy@example.com"]["attempts"] == 1 and by["busy@example.com"]["interrupted"] == 0
    assert all(by[s]["status"] == "sent" and by[s]["send_started_at"] is None for s in senders if "@example.com" in s
               and s not in ("gone@example.com", "busy@example.com"))
    assert not (env.cfg.data_dir / JOURNAL).exists()
    env.smtp.accept()
    env.clock.set(NOW + timedelta(minutes=5))                     # after the back-off
    report = env.cycle()
    assert report.backlog == 0 and [m.rcpt_tos[0] for m in env.smtp.messages][4:] == ["busy@example.com"]


def test_a_later_reply_no_longer_owed_hides_nothing_in_the_column(mem_env):
    """Only a later reply still owed (queued or held) keeps the column: one the officer discarded
    leaves the earlier reply's fate to show when it is sent."""
    _queued_four(mem_env)
    con = sqlite3.connect(mem_env.cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    with mem_env.office() as office:
        first = con.execute("SELECT * FROM cases ORDER BY id LIMIT 1").fetchone()
        with office.state.tx():
            office.desk.reply_about(first, "followup", NOW, key=999, hold="รอเจ้าหน้าที่ตรวจ")
        later = con.execute("SELECT id FROM outbox WHERE status='held'").fetchone()[0]
        office.outbox.discard(later, "สมศรี", NOW)
        office.deliver()
    column = con.execute("SELECT reply_status FROM cases WHERE id=?", (first["id"],)).fetchone()[0]
    assert column.startswith("ส่งแล้ว"), column


@pytest.mark.slow
def test_on_a_host_a_delivery_while_a_round_is_sending_sends_nothing(postgres, request):
    """A host's database: two deliveries of one tenant at once (a worker's cycle, and the alerts
    of a daily job or a console on another pod, which hold no work lock) would both send what is
    owed, the message in flight twice. The round's lock is the tenant's, in PostgreSQL: the other
    delivery sends nothing, and goes as usual once the round is over, or once the process that
    held it is gone."""
    from .conftest import state_db

    request.node._pg_url = postgres.new_database()
    mem_env = request.getfixturevalue("mem_env")
    assert mem_env.cfg.database is not None
    mem_env.unreachable("smtp")
    mem_env.deliver(*(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(4)))
    assert mem_env.cycle().backlog == 4
    mem_env.unreachable("smtp", down=False)
    from mailbot.mail.outbox import Delivery

    with mem_env.office() as office, mem_env.office() as other:
        session = mem_env.wire.smtp(office.cfg.smtp, office.cfg.agency.address)
        gate = _Gate(session, 2)
        done: list = []
        worker = threading.Thread(target=lambda: done.append(office.outbox.deliver(gate, mem_env.clock, Delivery())))
        worker.start()
        assert gate.reached.wait(10)                # the round has sent one and is handing over the second
        report = other.deliver()
        assert report.sent == [] and any("another delivery is under way" in w for w in report.warnings)
        assert len(mem_env.smtp.messages) == 1
        gate.opened.set()
        worker.join(10)
        assert len(done[0].sent) == 4
        again = other.deliver()                      # the round over: a delivery goes as usual
        assert again.sent == [] and not again.warnings
        # a round that fails lets the lock go too (the disk full while sending: the error is raised)
        failing = _Failing(mem_env.wire.smtp(office.cfg.smtp, office.cfg.agency.address))
        mem_env.deliver(letter("ร้องเรียนไฟฟ้าสาธารณะดับ", sender="q@example.com"))
        assert other.state.take_round()              # a cycle while another round goes: told once
        report = mem_env.cycle()
        assert report.backlog == 1 and len(mem_env.smtp.messages) == 4
        assert sum("another delivery is under way" in w for w in report.warnings) == 1, report.warnings
        other.state.let_round_go()
        with pytest.raises(OSError):
            office.outbox.deliver(failing, mem_env.clock, Delivery())
        assert other.state.take_round()
        other.state.let_round_go()
        assert office.state.take_round()             # a process killed mid-round: held by its session...
        assert not other.state.take_round()
    with mem_env.office() as third:                  # ...until its connection ends
        assert third.state.take_round()
        third.state.let_round_go()
    con = state_db(mem_env.cfg)
    assert [r["status"] for r in con.execute("SELECT status FROM outbox ORDER BY id")] == ["sent"] * 4 + ["queued"]
    con.close()
    assert len(mem_env.smtp.messages) == 4


class _Failing:
    """An SMTP session whose disk fills up as the message is handed over."""

    def __init__(self, smtp) -> None:  # type: ignore[no-untyped-def]
        self.smtp, self.max_size = smtp, None

    def open(self) -> None:
        self.smtp.open()

    def send(self, recipient: str, raw: bytes) -> None:
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")
