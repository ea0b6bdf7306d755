"""Reading ahead (intake/reading.py): in a cycle with several batches of new mail, the next batch
is parsed in a helper process and archived in a thread while this one is decided and sent. It only saves
time: the same mail gets the same outcomes, numbers, reasons, replies and archive files as when
every batch is read in its turn, and when the helper dies the cycle parses the batch itself."""
from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from mailbot.demo import make_workspace
from mailbot.intake import reading
from mailbot.mail.memory import MemoryServer
from mailbot.mail.parse import parse

from .conftest import AGENCY, NOW, PASSWORD, SINCE, UNUSED_PORT, MemEnv, TestClock, letter


def _office(tmp_path: Path, name: str) -> MemEnv:
    clock = TestClock(NOW)
    root = tmp_path / name
    cfg_path = make_workspace(root, UNUSED_PORT, UNUSED_PORT, PASSWORD, since=SINCE)
    e = MemEnv(MemoryServer(AGENCY, PASSWORD, clock=clock), root, cfg_path, clock)
    e.set_forwarding({})
    e.set_config(imap={"batch_size": 3}, limits={"max_message_mb": 1})
    return e


def _mail() -> list:
    big = letter("ขออนุญาตก่อสร้างอาคาร แนบแบบแปลนใหญ่", sender="big@example.com")
    big.add_attachment(b"\x00" * (2 * 1024 * 1024), maintype="application", subtype="pdf", filename="แบบ.pdf")
    withpdf = letter("ขออนุญาตก่อสร้างอาคาร แนบแบบ", sender="pdf@example.com")
    withpdf.add_attachment(b"%PDF-1.4 " + b"1" * 400_000, maintype="application", subtype="pdf", filename="แบบ.pdf")
    same = bytes(letter("ร้องเรียนไฟฟ้าดับ ซอย 3", sender="twice@example.com"))
    mails = [letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(4)]
    mails += [
        same,
        letter("ขอทำบัตรประชาชน", sender="wrong@example.com"),                        # another agency's work
        letter("ตอบกลับอัตโนมัติ", sender="auto@example.com", Auto_Submitted="auto-replied"),
        b"\r\n\r\n",                                                                  # unparseable
        withpdf,
        same,                                                                         # the same message again
        big,                                                                          # over max_message_mb
        letter("สอบถามเรื่องทั่วไป", sender="q@example.com"),
    ]
    return mails


def _what_happened(e: MemEnv, report) -> dict:
    con = sqlite3.connect(e.cfg.data_dir / "state.sqlite3")
    ledger = con.execute("SELECT uid, outcome, archive, sha256, failures, interruptions, last_error "
                         "FROM messages ORDER BY uid").fetchall()
    con.close()
    files = sorted(p.relative_to(e.cfg.data_dir).as_posix() for p in (e.cfg.data_dir / "archive").rglob("*")
                   if p.is_file())
    return {
        "ledger": ledger,            # each message's archive file and hash, outcome and attempts
        "handled": [(h.uid, h.sender, h.subject, h.outcome, h.receipt, h.reason, h.reply) for h in report.handled],
        "replies": sorted((str(m["To"]), str(m["Subject"]), m.get_body(("plain",)).get_content())
                          for m in e.replies()),
        "archive": files,
        "manifests": sorted((p.parent.name, sorted(p.read_text(encoding="utf-8").splitlines()))
                            for p in (e.cfg.data_dir / "archive").rglob("MANIFEST.sha256")),
    }


def _twins(tmp_path: Path, monkeypatch, name: str) -> tuple[MemEnv, dict]:
    """An office named ``name`` and a twin holding the same mail, already polled without reading
    ahead; returns the office (not yet polled) and what its twin's cycle did."""
    office, twin = _office(tmp_path, name), _office(tmp_path, "in-turn")
    mail = [bytes(m) for m in _mail()]
    for e in (office, twin):
        e.deliver(*mail)
    with monkeypatch.context() as m:
        m.setattr(reading, "FROM_BATCHES", 10 ** 6)     # never read ahead
        return office, _what_happened(twin, twin.cycle())


def _used(monkeypatch) -> list:
    """The helper's Letters the cycle used instead of parsing in turn."""
    used: list = []
    letter_from = reading.letter_from

    def counting(answer):  # type: ignore[no-untyped-def]
        got = letter_from(answer)
        if got is not None:
            used.append(got)
        return got

    monkeypatch.setattr(reading, "letter_from", counting)
    return used


def _spy(monkeypatch) -> list[dict]:
    """What the helper answered for each batch read ahead (the test fails if it never answered)."""
    seen: list[dict] = []
    take = reading.Ahead.take

    def spying(self, uids):  # type: ignore[no-untyped-def]
        early = take(self, uids)
        if early is not None:
            answers = early.answers()
            seen.append(answers)
            early = reading.Early(early.fetched, lambda: answers, early.kept)
        return early

    monkeypatch.setattr(reading.Ahead, "take", spying)
    return seen


@pytest.mark.parametrize("job_bytes", [reading.JOB_BYTES, 1])      # one job a batch; one a message
def test_reading_ahead_decides_what_reading_in_turn_decides(tmp_path, monkeypatch, job_bytes):
    monkeypatch.setattr(reading, "JOB_BYTES", job_bytes)
    seen = _spy(monkeypatch)
    ahead, expected = _twins(tmp_path, monkeypatch, "ahead")
    assert seen == []
    used = _used(monkeypatch)
    got = _what_happened(ahead, ahead.cycle())
    assert got == expected
    assert len(used) == 7          # the helper's Letters were the ones used
    # it was read ahead, for real: every batch after the first went through the helper
    assert len(seen) == 3                                      # 4 batches of 3
    kinds = [kind for answers in seen for kind, _ in answers.values()]
    assert kinds.count("ok") == 7 and kinds.count("unparseable") == 1, kinds   # the 2 MB one: read here
    outcomes = [h[3] for h in got["handled"]]
    assert outcomes.count("registered") == 7 and outcomes.count("quarantined") == 2, outcomes
    assert "duplicate" in outcomes and "automatic" in outcomes


def test_a_helper_that_dies_leaves_the_batch_to_be_parsed_in_turn(tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    dying, expected = _twins(tmp_path, monkeypatch, "dying")
    parse_ahead = reading.Ahead._parse

    def dies(self, order, raws):  # type: ignore[no-untyped-def]
        run = self._helper.run        # the helper ends without an answer while on the batch (a crash)
        self._helper.run = lambda fn, *args, timeout, **kw: run(os._exit, 70, timeout=timeout)
        try:
            return parse_ahead(self, order, raws)
        finally:
            del self._helper.run

    monkeypatch.setattr(reading.Ahead, "_parse", dies)
    assert _what_happened(dying, dying.cycle()) == expected
    assert seen == [{}]     # nothing came from the helper, and reading ahead stayed off after it died


def test_a_cycle_with_few_batches_or_a_replaced_parser_reads_in_turn(mem_env, monkeypatch):
    seen = _spy(monkeypatch)
    mem_env.set_config(imap={"batch_size": 3})
    mem_env.deliver(*[letter(f"ร้องเรียน {i}", sender=f"p{i}@example.com") for i in range(6)])   # 2 batches
    assert [h.outcome for h in mem_env.cycle().handled] == ["registered"] * 6 and seen == []
    # 4 batches, but parse replaced in the cycle (a helper would not see the replacement): in turn
    import mailbot.intake.cycle as cycle

    calls: list[bytes] = []
    monkeypatch.setattr(cycle, "parse", lambda raw: calls.append(raw) or parse(raw))
    mem_env.deliver(*[letter(f"ร้องเรียน {i}", sender=f"q{i}@example.com") for i in range(12)])
    assert [h.outcome for h in mem_env.cycle().handled] == ["registered"] * 12
    assert seen == [] and len(calls) == 12


def test_what_the_helper_answers_means_what_parse_means():
    good = bytes(letter("ขออนุญาตก่อสร้างอาคาร"))
    [(kind, value), (bad_kind, why)] = reading.read_many([good, b"\r\n\r\n"])
    assert kind == "ok" and reading.letter_from((kind, value)) == parse(good)
    assert bad_kind == "unparseable" and "empty" in str(why)
    with pytest.raises(Exception) as raised:
        reading.letter_from((bad_kind, why))
    assert type(raised.value).__name__ == "Unparseable" and str(raised.value) == str(why)
    assert reading.letter_from(("again", None)) is None and reading.letter_from(None) is None


def test_an_error_of_ours_in_the_helper_is_left_to_the_cycle(monkeypatch):
    def broken(raw: bytes):  # type: ignore[no-untyped-def]
        raise KeyError("a bug of ours")

    monkeypatch.setattr(reading, "parse", broken)
    assert reading.read_many([b"Subject: x\r\n\r\nbody"]) == [("again", None)]


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to one process: POSIX")
def test_ctrl_c_in_the_console_is_left_to_the_parent():
    """Ctrl-C reaches every process of a console: the helper ignores it (the cycle decides what
    stops), so an interrupt never comes back to the cycle as a job's answer."""
    import signal
    import time

    from mailbot.documents.limits import Helper

    with Helper() as helper:
        pid = helper.run(os.getpid, timeout=60)
        os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        assert helper.run(os.getpid, timeout=60) == pid          # the same helper, still answering


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priority to lower here (Windows)")
@pytest.mark.skipif(hasattr(os, "nice") and os.nice(0) > 19 - reading.BEHIND,
                    reason="this process runs at the lowest priority already: the helper cannot go lower")
def test_the_helper_runs_behind_the_cycle():
    """The helper parses a batch ahead, with slack: it runs at a lower priority than the cycle's
    process, whose thread every batch waits for (on a two-core machine it lost 0.9 s of a
    1,000-message poll waiting for a core)."""
    ahead = reading.Ahead()
    try:
        ahead._busy[0].result(timeout=60)          # started and ready
        assert ahead._helper.run(os.nice, 0, timeout=60) == os.nice(0) + reading.BEHIND
        assert reading.BEHIND > 0
    finally:
        ahead.close()


def test_closing_stops_the_helper_at_once_and_for_good(tmp_path):
    import time

    from mailbot.mail.mailbox import Fetched

    raws = [bytes(letter(f"ขออนุญาตก่อสร้างอาคาร {i}", body="ก" * 20_000)) for i in range(400)]
    fetched = {i: Fetched(i, raw, NOW) for i, raw in enumerate(raws)}
    ahead = reading.Ahead()
    ahead.read(list(fetched), fetched, 10 ** 9, lambda item: (NOW, "archive/x.eml", "0" * 64))
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 10 and ahead._helper._proc is None
    ahead.read(list(fetched), fetched, 10 ** 9, lambda item: (NOW, "archive/x.eml", "0" * 64))
    assert ahead.take(list(fetched)) is None                   # closed: nothing more is read ahead


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_message_alone_is_committed_before_the_next_is_read(tmp_path, monkeypatch, batch_size):
    """A kill before a batch's commit counts against its messages only when the batch is one
    message alone: then the next batch is read after the commit; otherwise before the decisions,
    so that the helper parses it while this batch is decided and sent."""
    from mailbot.intake.cycle import Cycle

    e = _office(tmp_path, "order")
    e.set_config(imap={"batch_size": batch_size})
    e.deliver(*[bytes(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com")) for i in range(6)])
    decided_when_read: list[int] = []
    read_ahead = Cycle._read_ahead

    def noting(self):  # type: ignore[no-untyped-def]
        if self._following:
            decided_when_read.append(len(self.report.handled))
        return read_ahead(self)

    monkeypatch.setattr(Cycle, "_read_ahead", noting)
    report = e.cycle()
    assert [h.outcome for h in report.handled].count("registered") == 6
    batches = 6 // batch_size
    # read while batch k is worked on: k + 1 batches decided (alone), or k batches (several)
    assert decided_when_read == [batch_size * (k + (batch_size == 1)) for k in range(batches - 1)]


def _without_arrival_times(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The double answers as a server that gives no INTERNALDATE."""
    from mailbot.mail.mailbox import Fetched
    from mailbot.mail.memory import MemoryMailbox

    fetch = MemoryMailbox.fetch
    monkeypatch.setattr(MemoryMailbox, "fetch", lambda self, uids: {
        u: Fetched(f.uid, f.raw, None) for u, f in fetch(self, uids).items()})


def test_a_message_without_an_arrival_time_read_ahead_is_archived_once(tmp_path, monkeypatch):
    """A server that gives no INTERNALDATE: a message then counts as received when mailbot first
    started work on it (the ledger's first_seen). Read ahead, it is left to its batch's turn; when
    that turn comes in the next month it keeps the moment its attempt started, and it is archived
    once, in that month's folder (never registered with a date its archive file does not have)."""
    from datetime import timedelta

    from mailbot.intake.cycle import Cycle
    from mailbot.thai import to_bangkok

    e = _office(tmp_path, "undated")
    e.deliver(*[bytes(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com")) for i in range(9)])
    _without_arrival_times(monkeypatch)
    work = Cycle._work_batch
    read_ahead: list[int] = []

    def a_month_later(self, uids, fetched, ledger, early):  # type: ignore[no-untyped-def]
        if early is not None:
            early.kept()                          # archived ahead, in the month before: waited for
            read_ahead.extend(uids)
        e.clock.set(e.clock() + timedelta(days=31))
        return work(self, uids, fetched, ledger, early)

    monkeypatch.setattr(Cycle, "_work_batch", a_month_later)
    report = e.cycle()
    assert [h.outcome for h in report.handled].count("registered") == 9
    assert len(read_ahead) == 6                   # batches 2 and 3 of 3 were read ahead
    got = _what_happened(e, report)
    mail = [name for name in got["archive"] if name.endswith(".eml")]
    assert len(mail) == 9, mail                   # one copy of each
    con = sqlite3.connect(e.cfg.data_dir / "state.sqlite3")
    rows = con.execute("SELECT archive, received_at FROM cases").fetchall()
    con.close()
    assert len(rows) == 9
    for archive, received_at in rows:
        local = to_bangkok(datetime.fromisoformat(received_at))
        assert archive.split("/")[1:3] == [str(local.year + 543), f"{local.month:02d}"], (archive, received_at)


def test_a_message_without_an_arrival_time_retried_next_month_keeps_its_first_day(tmp_path, monkeypatch):
    """No INTERNALDATE, and the first attempt fails (a bug of ours on this message): it stays in the
    inbox and is tried again a month later. It counts as received when mailbot first saw it: the
    case is registered with that day, and its mail is archived once, in that month's folder (before
    the ledger kept first_seen, the retry counted it received on the day of the retry and wrote a
    second copy in the new month's folder)."""
    from datetime import timedelta

    from mailbot.intake.cycle import Cycle
    from mailbot.thai import to_bangkok

    e = _office(tmp_path, "retried")
    e.deliver(*[bytes(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com")) for i in range(4)])
    _without_arrival_times(monkeypatch)
    decide = Cycle._decide_and_record
    failing = {"p2@example.com"}

    def fails_once(self, plan, now):  # type: ignore[no-untyped-def]
        if plan.letter.from_addr in failing:
            raise RuntimeError("a bug of ours, this once")
        return decide(self, plan, now)

    monkeypatch.setattr(Cycle, "_decide_and_record", fails_once)
    first_day = e.clock()
    report = e.cycle()
    assert [h.outcome for h in report.handled].count("registered") == 3
    failing.clear()
    e.clock.set(first_day + timedelta(days=31))
    report = e.cycle()
    assert [h.outcome for h in report.handled] == ["registered"]
    got = _what_happened(e, report)
    mail = [name for name in got["archive"] if name.endswith(".eml")]
    assert len(mail) == 4, mail                    # one copy of each, the retried one too
    con = sqlite3.connect(e.cfg.data_dir / "state.sqlite3")
    rows = con.execute("SELECT sender_addr, archive, received_at FROM cases").fetchall()
    con.close()
    assert len(rows) == 4
    first_month = [str(to_bangkok(first_day).year + 543), f"{to_bangkok(first_day).month:02d}"]
    for sender, archive, received_at in rows:
        received = datetime.fromisoformat(received_at)
        assert abs((received - first_day).total_seconds()) < 60, (sender, received_at)   # the first day
        assert archive.split("/")[1:3] == first_month, (sender, archive)


def test_each_batch_syncs_the_archive_manifests_before_deciding(tmp_path, monkeypatch):
    """The month's manifest lines of a batch's messages are on disk (Archive.sync) before any of
    them is decided: a power cut after a decision cannot lose the line of a message never stored
    again."""
    from mailbot.intake.cycle import Cycle
    from mailbot.ops.archive import Archive

    e = _office(tmp_path, "synced")
    e.deliver(*[bytes(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com")) for i in range(9)])
    events: list[str] = []
    sync, commit = Archive.sync, Cycle._commit_one
    monkeypatch.setattr(Archive, "sync", lambda self: events.append("sync") or sync(self))
    monkeypatch.setattr(Cycle, "_commit_one", lambda self, plan, now: events.append("decide") or commit(self, plan, now))
    report = e.cycle()
    assert [h.outcome for h in report.handled].count("registered") == 9
    assert "".join("s" if ev == "sync" else "d" for ev in events).startswith("sddd" * 3), events


def test_a_first_seen_read_back_from_disk_never_stops_the_batch():
    """The ledger's first_seen is read back from the database: none (a row from before schema 23),
    a time without a zone, or text that is not a time gives a usable time, never an exception."""
    from datetime import timezone

    from mailbot.intake.cycle import _first_seen

    now = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)
    assert _first_seen("2026-11-30T16:59:00+00:00", now) == datetime(2026, 11, 30, 16, 59, tzinfo=timezone.utc)
    assert _first_seen("2026-11-30T16:59:00", now) == datetime(2026, 11, 30, 16, 59, tzinfo=timezone.utc)
    for bad in (None, "", "yesterday", "2569-13-45"):
        assert _first_seen(bad, now) == now, bad
