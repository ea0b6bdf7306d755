"""Officers work while the service runs (issue 11 §2): with a real `mailbot run` up over pymap,
every officer verb succeeds, never at the same moment as a cycle, says so in Thai when it must
wait, and the register shows the change."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import openpyxl
import pytest

from mailbot.documents.certs import make_demo_pki
from mailbot.registers.receive import register_path

from .conftest import letter
from .test_results import make_pdf

pytestmark = pytest.mark.slow


def wait_for(predicate, seconds=60.0):  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_every_officer_verb_works_while_the_service_runs(env, tmp_path):
    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    store = tmp_path / "backups"
    store.mkdir()
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0}, backup={"dir": str(store)},
                   schedule={"idle": True, "every_minutes": 600, "after_hours_every_minutes": 600, "workdays": []})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"),
                letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    # every cycle holds for 4 s after fetching: officers' commands meet a running cycle
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(env.config_path), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "utf-8", "MAILBOT_PAUSE": "after_fetch:4"})
    try:
        assert wait_for(lambda: len(env.smtp.messages) >= 2), "the service did not answer"
        time.sleep(1.0)
        env.deliver(letter("ขอข้อมูลข่าวสาร", sender="c@example.com"))     # IDLE starts a cycle, which holds
        time.sleep(1.5)
        r = env.cli("case", "set", "1/2569", "--status", "in_progress", "--note", "ระหว่างบริการทำงาน", "--by", "สมศรี")
        assert r.returncode == 0, r.stderr
        waited = "รอให้รอบการทำงานที่กำลังทำอยู่เสร็จก่อน" in r.stderr
        rows = list(openpyxl.load_workbook(register_path(env.cfg.registers_dir, 2569)).active.iter_rows(
            min_row=2, values_only=True))
        assert "อยู่ระหว่างดำเนินการ" in rows[0][11] and "สมศรี" in rows[0][6]
        (env.root / "results" / "outbox").mkdir(parents=True, exist_ok=True)
        (env.root / "results" / "outbox" / "2-2569.pdf").write_bytes(make_pdf("Done"))
        for args in (["results"], ["results", "letter", "1/2569", "--outcome", "approved"],
                     ["results", "letter", "1/2569", "--outcome", "approved", "--preview"],
                     ["report"], ["backup"], ["publish"], ["status"], ["check"],
                     ["case", "show", "1/2569"], ["case", "list"], ["reply", "list"]):
            r = env.cli(*args)
            assert r.returncode == 0, (args, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr
            waited = waited or "รอให้รอบการทำงานที่กำลังทำอยู่เสร็จก่อน" in r.stderr
        assert waited, "no command ever met a running cycle"
        rows = list(openpyxl.load_workbook(register_path(env.cfg.registers_dir, 2569)).active.iter_rows(
            min_row=2, values_only=True))
        assert rows[1][11] == "ส่งผลการพิจารณาแล้ว" or "ส่งผล" in rows[1][6]
        assert list(store.glob("mailbot-backup-*"))
        assert wait_for(lambda: any(m.rcpt_tos == ["c@example.com"] for m in env.smtp.messages))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
