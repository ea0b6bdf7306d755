"""SIGKILL a real `mailbot poll` over 300 messages at random moments, 50 times, rerunning after
each kill; then every message has exactly one outcome, receipt numbers are unique with no gaps,
and replies sent equal replies owed: duplicates only from the SMTP-accepted-not-yet-marked
window, and a reply cut off there twice held for an officer (outbox.py), both bounded by the
kills, counted and printed."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from .conftest import letter

pytestmark = pytest.mark.slow   # SIGKILLs a real poll again and again

KILLS = int(os.environ.get("MAILBOT_SOAK_KILLS", "50"))
MESSAGES = int(os.environ.get("MAILBOT_SOAK_MESSAGES", "300"))


def test_sigkill_soak(env):
    rng = random.Random(20261127)
    env.set_config(imap={"batch_size": 20}, limits={"replies_per_hour": 100000})
    kinds = ["ขออนุญาตก่อสร้างอาคาร", "ขอทำบัตรประชาชน", "สอบถามทั่วไป", "ร้องเรียนถนนชำรุด"]
    with env.client() as c:
        for i in range(MESSAGES):
            extra = {"Auto_Submitted": "auto-replied"} if i % 10 == 9 else {}
            c.append("INBOX", bytes(letter(f"{kinds[i % 4]} {i}", sender=f"p{i}@example.com", **extra)))
    cmd = [sys.executable, "-m", "mailbot", "--config", str(env.config_path), "poll"]
    killed = 0
    finished_early = 0
    refills = 0          # every refill gets senders of its own: the per-sender cap never holds a reply
    while killed < KILLS:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        time.sleep(rng.uniform(0.4, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
        else:
            finished_early += 1
            if env.folder_count("INBOX") == 0:   # everything done before we could kill again:
                refills += 1                      # feed more work so the kills keep landing mid-cycle
                with env.client() as c:
                    for j in range(20):
                        c.append("INBOX", bytes(letter(f"ร้องเรียน เพิ่ม {refills}-{j}",
                                                       sender=f"q{refills}-{j}@example.com")))
    final = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    assert final.returncode == 0, final.stderr

    con = sqlite3.connect(env.cfg.data_dir / "state.sqlite3")
    total = con.execute("SELECT count(*) FROM messages").fetchone()[0]
    undecided = con.execute("SELECT count(*) FROM messages WHERE outcome IS NULL").fetchone()[0]
    assert undecided == 0 and env.folder_count("INBOX") == 0
    folders = ["ลงทะเบียนแล้ว", "ส่งต่อหน่วยงานอื่น", "อีเมลอัตโนมัติ", "ติดตามเรื่อง", "กักกัน"]
    in_folders = sum(env.folder_count(f) for f in folders)
    assert in_folders == total                                   # every message exactly once
    seqs = [r[0] for r in con.execute("SELECT seq FROM cases ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))                 # unique, no gaps
    owed = con.execute("SELECT count(*) FROM outbox").fetchone()[0]
    unsent = [tuple(r) for r in con.execute("SELECT status, hold_reason FROM outbox WHERE status<>'sent'")]
    # a reply cut off twice after the server may have had it is held for an officer instead of a
    # third try (outbox.py): the designed outcome where SMTP cannot tell; nothing else stays unsent
    held = [r for r in unsent if r[0] == "held" and "cut off twice" in (r[1] or "")]
    assert unsent == held
    ids = Counter(m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in env.smtp.messages)
    sent = {r[0].encode() for r in con.execute("SELECT message_id FROM outbox WHERE status='sent'")}
    assert sent <= set(ids) <= {r[0].encode() for r in con.execute("SELECT message_id FROM outbox")}
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates + len(held) <= killed      # each bounded by the kills, in the documented window
    print(f"\nSOAK kills={killed} finished_early={finished_early} messages={total} cases={len(seqs)} "
          f"replies_owed={owed} replies_delivered={len(env.smtp.messages)} duplicates={duplicates} "
          f"held_after_two_cut_offs={len(held)}")
