"""Outages: SMTP refusing, down or without its password (replies wait, back off, keep their
order, none lost; a mail refused for good is sent again once released), IMAP dropping
mid-batch, the disk failing while archiving."""
from __future__ import annotations

import email
import socket
import sqlite3
import threading
from datetime import timedelta
from email import policy

import pytest

from mailbot.app import run_cycle
from mailbot.errors import EnvironmentFailure

from .conftest import AGENCY, NOW, letter, state_db
from .test_intake import db

pytestmark = pytest.mark.slow   # servers going away and coming back


def at(minutes: float):  # type: ignore[no-untyped-def]
    base = NOW + timedelta(seconds=30)     # just after the test clock's mail arrives
    return lambda: base + timedelta(minutes=minutes)


def outbox(env):  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def test_smtp_refusing_then_recovering_delivers_everything_in_order(env):
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com", message_id="<a1@example.com>"),
                letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    env.smtp.sink.refuse = True                       # 451 for every message
    run_cycle(env.cfg, clock=at(0))
    rows = outbox(env)
    assert [r["status"] for r in rows] == ["queued", "queued"] and all(r["attempts"] == 1 for r in rows)
    # the citizen writes again meanwhile: the follow-up ack must not overtake the receipt
    env.deliver(letter("Re: ขออนุญาตก่อสร้างอาคาร", sender="a@example.com", body="ส่งเพิ่ม",
                       In_Reply_To="<a1@example.com>", References="<a1@example.com>"))
    run_cycle(env.cfg, clock=at(0.5))                 # within the back-off: nothing is tried
    assert all(r["attempts"] == 1 for r in outbox(env)[:2])
    assert outbox(env)[2]["attempts"] == 0            # blocked behind the receipt of its case
    env.smtp.sink.refuse = False
    run_cycle(env.cfg, clock=at(2))                   # back-off over, server well again
    assert [r["status"] for r in outbox(env)] == ["sent"] * 3
    to_a = [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages
            if m.rcpt_tos == ["a@example.com"]]
    assert "[เลขรับ" in to_a[0]["Subject"] and "ไม่ออกเลขรับใหม่" in to_a[1].get_content()   # receipt, then ack


def test_smtp_down_for_a_while(env):
    port = env.smtp.port
    env.smtp.stop()
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ร้องเรียนถนนชำรุด", sender="x@example.com"))
    report = run_cycle(env.cfg, clock=env.clock)
    assert report.smtp_error is not None and report.backlog == 2
    assert [h.outcome for h in report.handled] == ["registered", "registered"]
    assert env.folder_count("INBOX") == 0             # committed outcomes move on regardless
    from mailbot.mail.servers import SmtpServer

    from .conftest import AGENCY, PASSWORD

    revived = SmtpServer(AGENCY, PASSWORD)
    revived.port = port
    revived.controller.port = port
    with revived:
        report = run_cycle(env.cfg, clock=env.clock)
        assert report.backlog == 0 and len(revived.messages) == 2


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


class DroppingProxy:
    """A TCP proxy to the IMAP server that cuts the connection after N bytes from the server."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target = target_port
        self.cut_after = cut_after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.cut_after), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


def test_imap_dropping_mid_batch_loses_nothing(env):
    env.set_config(imap={"batch_size": 3})
    env.deliver(*[letter(f"ขออนุญาตก่อสร้าง {i}", sender=f"p{i}@example.com", body="รายละเอียด " * 300)
                  for i in range(8)])
    proxy = DroppingProxy(env.imap.port, cut_after=20000)   # inside the second batch's FETCH
    try:
        env.set_config(imap={"port": proxy.port})
        r = env.cli("poll")
        assert r.returncode == 3 and "ขาดระหว่างทำงาน" in r.stderr and "Traceback" not in r.stderr
    finally:
        proxy.close()
    env.set_config(imap={"port": env.imap.port})
    assert env.cli("poll").returncode == 0
    con = state_db(env.cfg)
    assert sorted(r[0] for r in con.execute("SELECT seq FROM cases")) == list(range(1, 9))
    assert env.folder_count("INBOX") == 0 and env.folder_count("ลงทะเบียนแล้ว") == 8
    assert len({m.rcpt_tos[0] for m in env.smtp.messages}) == 8 and len(env.smtp.messages) == 8


def test_disk_full_while_archiving_keeps_the_message_in_the_inbox(env, monkeypatch):
    import errno

    import mailbot.ops.archive as archive

    real = archive.write_atomic

    def full(target, data):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive, "write_atomic", full)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    with pytest.raises(EnvironmentFailure) as stopped:     # the cycle stops cleanly, naming the folder
        env.cycle()
    assert "ดิสก์เต็ม" in stopped.value.thai and "archive" in stopped.value.thai
    assert env.folder_count("INBOX") == 1
    assert [m.rcpt_tos for m in env.smtp.messages] == [[AGENCY]]    # only the alert to the officers
    assert not list((env.cfg.data_dir / "archive").rglob("*.eml")) if (env.cfg.data_dir / "archive").exists() else True
    for _ in range(4):                                   # disk still full: never quarantined for it
        with pytest.raises(EnvironmentFailure):
            env.cycle()
    monkeypatch.setattr(archive, "write_atomic", real)
    [h] = env.cycle().handled
    assert h.outcome == "registered" and h.receipt.startswith("1/")
