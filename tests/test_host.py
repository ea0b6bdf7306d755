"""Host mode end to end (slow tier): `mailbot host` commands, and a farm of agencies — each with
its own pymap mailbox — served by `mailbot host worker` processes over one PostgreSQL and one
aiosmtpd relay (tests/hostfarm.py). Every mailbox drained, each agency's numbers its own and
gap-free, every citizen answered once by their own agency; then the same while workers are
SIGKILLed, every agency served again within 60 seconds."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import NOW
from .hostfarm import CLOCK, REPO, Farm, agency_name

pytestmark = pytest.mark.slow


def _mailbot(url: str, *args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MAILBOT_DATABASE_URL=url, PYTHONPATH=str(REPO), **CLOCK)
    return subprocess.run([sys.executable, "-m", "mailbot", "host", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_host_commands_add_list_and_remove_an_agency_keeping_its_data(postgres, tmp_path: Path):
    from mailbot.store import State

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=2, mails=3) as farm:
        listed = _mailbot(url, "list", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[0] for line in listed.stdout.splitlines() if line.strip()
                and not line.startswith(" ")] == ["a000", "a001"]
        farm.start_workers(1)
        farm.wait(lambda: farm.answered() == 6, 120)
        farm.stop_workers()
        # SIGTERM: both of the process's workers (cycles, and the tick and rescue) stop gracefully
        assert [p.returncode for p in farm.workers] == [0], farm.logs[0].read_text(errors="replace")[-2000:]
        listed = _mailbot(url, "list", cwd=tmp_path).stdout
        assert "a000" in listed and "ปกติ / ok" in listed and "cycles 1" in listed

        removed = _mailbot(url, "remove", "a001", cwd=tmp_path)
        assert removed.returncode == 0 and "ข้อมูลยังเก็บไว้" in removed.stdout
        assert "a001" not in _mailbot(url, "list", cwd=tmp_path).stdout
        assert "หยุดแล้ว / removed" in _mailbot(url, "list", "--all", cwd=tmp_path).stdout
        state = State(url=url, tenant="a001")            # its records are all there
        try:
            assert [c["receipt"] for c in state.cases_listed()] == ["1/2569", "2/2569", "3/2569"]
        finally:
            state.close()
        again = _mailbot(url, "add", "a001", "--config", str(tmp_path / "a001" / "mailbot.yaml"), cwd=tmp_path)
        assert again.returncode == 0 and "a001" in _mailbot(url, "list", cwd=tmp_path).stdout

        # an agency's officer accounts, in that agency's tenant only
        added = _mailbot(url, "officer", "a000", "add", "somchai", cwd=tmp_path, stdin="officer-pass-1234\n" * 2)
        assert added.returncode == 0, added.stderr
        assert "somchai" in _mailbot(url, "officer", "a000", "list", cwd=tmp_path).stdout
        other = _mailbot(url, "officer", "a001", "list", cwd=tmp_path).stdout
        assert "somchai" not in other and "0 officer account(s)" in other

        # names a host cannot use, told in Thai; a missing URL, told in Thai
        bad = _mailbot(url, "add", "Bad-Name", "--config", str(tmp_path / "a000" / "mailbot.yaml"), cwd=tmp_path)
        assert bad.returncode != 0 and "ชื่อหน่วยงาน" in bad.stderr and "Traceback" not in bad.stderr
        env = {k: v for k, v in os.environ.items() if k != "MAILBOT_DATABASE_URL"}
        missing = subprocess.run([sys.executable, "-m", "mailbot", "host", "list"], env=dict(env, PYTHONPATH=str(REPO)),
                                 capture_output=True, text=True, cwd=tmp_path)
        assert missing.returncode != 0 and "MAILBOT_DATABASE_URL" in missing.stderr and "Traceback" not in missing.stderr


def test_fifty_agencies_twenty_mails_each_three_workers(postgres, tmp_path: Path):
    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=50, mails=20) as farm:
        started = time.monotonic()
        farm.start_workers(3, concurrency=4)
        took = farm.wait(lambda: farm.answered() >= 1000, 600)
        time.sleep(2)               # anything more (a duplicate) would have arrived by now
        figures = farm.check()
        print(f"\nhost: 50 agencies x 20 mails, 3 workers: {took:.1f} s ({1000 / took:.0f} mails/s), "
              f"{time.monotonic() - started:.1f} s to check; {figures}")
        assert figures == {"undrained": 0, "gaps": 0, "duplicates": 0, "crossed": 0, "unanswered": 0,
                           "chain_broken": 0}


def test_workers_killed_every_few_seconds_lose_nothing_and_send_nothing_twice(postgres, tmp_path: Path):
    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=50, mails=20) as farm:
        farm.start_workers(3, concurrency=4)
        started = time.monotonic()

        def done() -> bool:
            answered = farm.answered()
            return answered >= 1000 or (answered >= 990 and answered + farm.held_cut_off() >= 1000)

        cuts = farm.chaos(done, every=3.0, rng=random.Random(24), timeout=600)
        took = time.monotonic() - started
        time.sleep(3)
        figures = farm.check()
        held = farm.held_cut_off()
        kills = len(farm.workers) - 3
        served = sorted(round(c.served, 1) for c in cuts if c.served is not None)
        again = sorted(round(c.cut_again, 1) for c in cuts if c.cut_again is not None)
        print(f"\nchaos: {kills} workers SIGKILLed, drained in {took:.1f} s; {len(cuts)} agencies' cycles cut short: "
              f"served again after {served} s; begun again and cut again by a later kill after {again} s; "
              f"{figures}; held for the officer {held}")
        assert kills >= 3
        # a reply the relay accepted just before its worker was killed, before the worker recorded
        # it, goes once more, with the same Message-ID (SMTP has no way to ask whether a message
        # arrived); one cut off like that twice is held for an officer instead of a third try
        # (outbox.py). Both are bounded by the kills, and measured in the note, not hidden here
        duplicates = figures.pop("duplicates")
        assert duplicates + held <= kills
        assert figures.pop("unanswered") == held
        assert figures == {"undrained": 0, "gaps": 0, "crossed": 0, "chain_broken": 0}
        # every agency a kill cut short is served again within a minute, or has its cycle begun
        # again by another worker within it (at a kill every 3 s that cycle can be cut too: the
        # later kill then times the agency from there)
        assert cuts and all(c.waited is not None and c.waited <= 60 for c in cuts)


def test_a_dead_workers_cycle_is_closed_while_every_cycle_slot_is_busy(postgres, tmp_path: Path):
    """The tick and the rescue run beside the cycles, not in their slots: with the one cycle slot
    of the live worker held by a long cycle, the cycle of a worker killed meanwhile is still closed
    within seconds (heartbeats stop, then the rescue runs), while that long cycle still runs."""
    import psycopg

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=2, mails=1) as farm:
        slow = {"MAILBOT_PAUSE": "deciding:25"}          # each cycle holds its slot for 25 s
        farm.start_worker(concurrency=1, env=slow)
        farm.start_worker(concurrency=1, env=slow)

        def doing() -> dict[str, int]:
            with psycopg.connect(url) as con:
                return {r[1]: r[0] for r in con.execute(
                    "SELECT id, lock FROM procrastinate_jobs WHERE task_name = 'mailbot.cycle' AND status = 'doing'")}

        farm.wait(lambda: len(doing()) == 2 and all(r[1] for r in farm.cycles().values()), 60)  # one on each worker
        victim = farm.workers[0]
        agency = next(a for a, r in farm.cycles().items() if r[1] and r[1].endswith(f":{victim.pid}"))
        victim_job = doing()[f"agency:{agency}"]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed = time.monotonic()
        with psycopg.connect(url) as con:
            def status() -> str:
                return con.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (victim_job,)).fetchone()[0]
            took = farm.wait(lambda: status() == "failed", 20)    # heartbeat 1 s, stalled 4 s
        print(f"\nrescue: the dead worker's cycle closed {time.monotonic() - killed:.1f} s after the kill "
              f"({took:.1f} s waited), the live worker's one slot busy all along")
        assert len(doing()) == 1                       # the live worker's long cycle is still running


def test_an_agency_a_dead_worker_cut_off_is_queued_before_the_others(postgres):
    """A cycle begun and never finished (its worker died) leaves its agency due when its lease
    ends, or at once when rescue finds the worker dead; the tick then queues that agency's cycle
    ahead of the agencies that are merely due."""
    import asyncio
    from datetime import timedelta

    import psycopg

    from mailbot.host.worker import RESCUED, make_app, prepare_queue
    from mailbot.store.host import HostStore

    url = postgres.new_database()
    with HostStore(url) as reg:
        reg.create()
        for name in ("a", "b", "c"):
            reg.add(name, "/nowhere/mailbot.yaml", NOW)
        reg.started("b", NOW, "pod-1:41", NOW)                        # cut off: its lease ends now
        reg.started("c", NOW, "pod-2:42", NOW + timedelta(minutes=5))
        reg.finished("c", NOW, error=None, handled=0, next_poll=NOW, next_daily=None)
        assert reg.due(NOW + timedelta(seconds=1)) == [("a", False), ("b", True), ("c", False)]
    prepare_queue(url)
    app = make_app(url, clock=lambda: NOW + timedelta(seconds=1))

    async def tick() -> None:
        async with app.open_async():
            await app.tasks["mailbot.tick"](timestamp=0)

    asyncio.run(tick())
    with psycopg.connect(url) as conn:
        queued = dict(conn.execute("SELECT args->>'agency', priority FROM procrastinate_jobs "
                                   "WHERE task_name = 'mailbot.cycle'").fetchall())
    assert queued == {"a": 0, "b": RESCUED, "c": 0}


def test_a_removed_agency_gets_no_cycle(postgres, tmp_path: Path):
    from mailbot.host.service import Host

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=2, mails=2) as farm:
        with Host(url) as host:
            assert host.remove(agency_name(1), NOW)
        farm.start_workers(1)
        farm.wait(lambda: farm.answered() == 2, 120)
        time.sleep(3)
        assert farm.answered() == 2                    # the removed agency's mail stays where it is
        cycles = farm.cycles()
        assert agency_name(1) not in cycles and cycles[agency_name(0)][0] >= 1


def test_the_daily_job_makes_the_log_and_a_backup_of_the_tenant(postgres, tmp_path: Path):
    """A tenant's backup holds its records as a SQLite file a single office can restore."""
    import sqlite3

    import yaml

    from mailbot.host.worker import run_daily
    from mailbot.store.host import HostStore

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=1, mails=2) as farm:
        farm.start_workers(1)
        farm.wait(lambda: farm.answered() == 2, 120)
        farm.stop_workers()
        path = tmp_path / "a000" / "mailbot.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        (tmp_path / "backups").mkdir()
        data["backup"] = {"dir": str(tmp_path / "backups")}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        assert run_daily(url, "a000", lambda: NOW) == "done"
        [backup] = list((tmp_path / "backups").glob("mailbot-backup-*"))
        copy = sqlite3.connect(backup / "state.sqlite3")
        try:
            assert [r[0] for r in copy.execute("SELECT receipt FROM cases ORDER BY seq")] == ["1/2569", "2/2569"]
        finally:
            copy.close()
        with HostStore(url) as reg:
            assert reg.agency("a000")["next_daily_at"] > NOW.isoformat()   # the next day's, not again now


def test_idle_watches_take_new_mail_at_once_and_move_to_another_worker(postgres, tmp_path: Path):
    """Agencies with schedule.idle: one long-lived watch each, on the IDLE workers; a new mail is
    answered in seconds (the next poll is ten minutes away); a watch whose worker is killed is
    taken on by another."""
    import signal

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=3, mails=1, idle=True) as farm:
        farm.start_workers(1, concurrency=2)
        watchers = [farm.start_worker(concurrency=10, idle=True) for _ in range(2)]
        farm.wait(lambda: farm.answered() == 3, 120)
        time.sleep(3)                                  # the watches are up; every next poll is 10 minutes away
        farm.deliver(1, 50)
        took = farm.wait(lambda: farm.answered() == 4, 60, every=0.2)
        assert took < 20, took

        from mailbot.store.host import HostStore

        with HostStore(url) as reg:
            running = reg.conn.execute("SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name='mailbot.idle' "
                                       "AND status='doing'").fetchone()["n"]
        assert running == 3                            # one watch for each agency
        watchers[0].send_signal(signal.SIGKILL)        # its watches go to the other IDLE worker
        watchers[0].wait()
        time.sleep(8)                                  # stalled after 4 s, rescued, deferred again, watching
        for i in range(3):
            farm.deliver(i, 60)
        took = farm.wait(lambda: farm.answered() == 7, 60, every=0.2)
        print(f"\nIDLE in host mode: receipts in {took:.1f} s after a watcher was killed")
        assert took < 20, took
        assert farm.check()["duplicates"] == 0


def test_the_demo_runs_where_postgresql_and_the_queue_cannot_be_imported(tmp_path: Path):
    """One office, unchanged: `mailbot demo` with psycopg and procrastinate made unimportable."""
    block = tmp_path / "block"
    block.mkdir()
    for name in ("psycopg", "procrastinate"):
        (block / f"{name}.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(block), str(REPO)]))
    env.pop("MAILBOT_DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-m", "mailbot", "demo", "--dir", str(tmp_path / "demo")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "demo" / "data" / "state.sqlite3").exists()
