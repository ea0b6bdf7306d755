"""Alerts where officers look: LINE (issue 25, part 2). Every test pushes to a loopback server that
answers as the Messaging API's push endpoint does (tests/line_server.py: 200, 400, 401, 409, 429,
a lost answer, a hang), bound to 127.0.0.1. The token lives in the credential store, never in
mailbot.yaml; a push goes after the work, never under the work lock; a push retried (a lost
answer, a crash) is delivered once; and a cycle whose mailbox sign-in fails still reaches a person."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import timedelta

import pytest

from mailbot.config import load_config
from mailbot.errors import ConfigError, ConnectionFailure
from mailbot.mail.credentials import Store
from mailbot.ops import line
from mailbot.ops.checks import run_checks

from .conftest import NOW, YEAR, letter, state_db
from .line_server import GROUP, OTHER_GROUP, TOKEN, LineServer
from .test_console_routes import open_console  # noqa: F401
from .test_plain_thai import english_in_thai


@pytest.fixture
def server():
    with LineServer() as s:
        yield s


def set_up(env, server, *, token: str | None = TOKEN, to=(GROUP,), **line_settings) -> None:
    env.set_config(alerts={"line": {"to": list(to), "api": server.url, "timeout_seconds": 2, **line_settings}})
    if token is not None:
        Store(env.cfg.data_dir).set(line.TOKEN, token)


def db(env) -> sqlite3.Connection:
    return state_db(env.cfg)


def owed(env) -> list[sqlite3.Row]:
    return db(env).execute("SELECT * FROM line_outbox ORDER BY id").fetchall()


def alert(office, key: str = "disk", **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("title", "พื้นที่ดิสก์ใกล้เต็ม")
    return office.alerts.alert(key, kw.pop("thai", "พื้นที่ดิสก์ใกล้เต็ม เหลือ 900 MB"), "disk nearly full",
                               office.clock(), **kw)


# ---------------------------------------------------------------------------- 200: what the group reads

def test_an_alert_goes_to_the_group_as_short_thai_with_a_link_under_a_retry_key(mem_env, server):
    set_up(mem_env, server)
    mem_env.set_config(console={"hosts": ["saraban-pc"]})
    with mem_env.office() as office:
        alert(office, f"marked-12/{YEAR}", title=f"ด่วนที่สุด เลขรับ 12/{YEAR}", receipt=f"12/{YEAR}",
              thai="เรื่องเลขรับ 12/2569 ด่วนที่สุด: ขอข้อมูล จาก somchai@example.com ดำเนินการก่อนเรื่องอื่น",
              short=f"เรื่องเลขรับ 12/{YEAR} ด่วนที่สุด: ดำเนินการก่อนเรื่องอื่น")
        assert server.pushes() == []             # recorded with the alert; pushed after the work
        result = office.send_line()
    assert result.sent == 1
    [push] = server.pushes()
    assert push["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert push["headers"]["Content-Type"] == "application/json"
    uuid.UUID(push["headers"]["X-Line-Retry-Key"])
    assert push["body"]["to"] == GROUP
    [message] = push["body"]["messages"]
    text = message["text"]
    assert message["type"] == "text" and len(text) <= 5000
    assert text.startswith(f"[mailbot แจ้งเตือน] ด่วนที่สุด เลขรับ 12/{YEAR}")
    assert f"http://saraban-pc:8470/cases/{YEAR}/12" in text
    assert "somchai@example.com" not in text and "ขอข้อมูล" not in text     # the citizen's words stay home
    assert english_in_thai(text) == []
    [row] = owed(mem_env)
    assert row["status"] == "sent" and row["push_key"] == push["headers"]["X-Line-Retry-Key"]
    with mem_env.office() as office:
        st = office.status().line
    assert st.last_sent is not None and st.queued == 0 and st.problem is None


def test_the_token_is_never_in_mailbot_yaml_the_database_or_the_log(mem_env, server, caplog):
    set_up(mem_env, server, token="wrong-" + "y" * 40)
    with mem_env.office() as office:
        alert(office)
        office.send_line()
    assert server.pushes()[0]["headers"]["Authorization"] == "Bearer wrong-" + "y" * 40
    assert "wrong-" not in mem_env.config_path.read_text(encoding="utf-8")
    assert b"wrong-" not in (mem_env.cfg.data_dir / "state.sqlite3").read_bytes()
    assert "wrong-" not in caplog.text and "LINE" in caplog.text      # the failure is logged, the token is not


# ---------------------------------------------------------------------------- 401, 400, 429

def test_a_refused_token_is_explained_in_thai_the_alert_waits_and_a_new_token_sends_it(mem_env, server):
    set_up(mem_env, server, token="old-" + "z" * 40)
    with mem_env.office() as office:
        alert(office)
        office.send_line()
        st = office.status().line
    assert [p["headers"]["Authorization"] for p in server.pushes()] == ["Bearer old-" + "z" * 40]
    assert server.delivered == []
    assert "โทเค็น" in st.problem["thai"] and st.problem["fix"] == "mailbot secret set line"
    assert st.problem["status"] == 401 and st.queued == 1 and st.paused_until is not None
    assert english_in_thai(st.problem["thai"]) == []
    with mem_env.office() as office:
        office.send_line()                      # paused: no request in vain
        assert len(server.pushes()) == 1
        with pytest.raises(ConfigError) as refused:  # a token LINE refuses is not kept
            office.set_line_token("another-bad-" + "q" * 30)
        assert "โทเค็น" in str(refused.value.thai)
        assert "บัญชี LINE" in office.set_line_token(TOKEN)    # tried with GET /v2/bot/info, kept
        office.send_line()
        st = office.status().line
    assert len(server.delivered) == 1 and st.problem is None and st.queued == 0
    assert Store(mem_env.cfg.data_dir).get(line.TOKEN) == TOKEN


def test_a_group_the_bot_is_not_in_is_refused_for_good_and_the_others_still_get_it(mem_env, server):
    set_up(mem_env, server, to=(OTHER_GROUP, GROUP))
    with mem_env.office() as office:
        alert(office)
        office.send_line()
        office.send_line()                      # refused for good: not asked again
        st = office.status().line
    assert [p["body"]["to"] for p in server.pushes()] == [OTHER_GROUP, GROUP]
    assert server.delivered == [(GROUP, server.delivered[0][1])]
    assert st.failed == 1 and st.queued == 0 and "เชิญบัญชี LINE" in st.refused
    assert {r["recipient"]: r["status"] for r in owed(mem_env)} == {OTHER_GROUP: "failed", GROUP: "sent"}


def test_429_honours_retry_after_and_the_alert_goes_once_after_it(mem_env, server):
    set_up(mem_env, server)
    server.plan = [(429, "120")]
    with mem_env.office() as office:
        alert(office)
        before = mem_env.clock()
        office.send_line()
        st = office.status().line
    assert st.problem["status"] == 429 and "โควตา" in st.problem["thai"]
    assert abs((st.paused_until - (before + timedelta(seconds=120))).total_seconds()) < 5
    start = mem_env.clock()
    mem_env.clock.set(start + timedelta(seconds=60))
    with mem_env.office() as office:
        office.send_line()
    assert len(server.pushes()) == 1            # not before LINE said
    mem_env.clock.set(start + timedelta(seconds=125))
    with mem_env.office() as office:
        office.send_line()
        st = office.status().line
    keys = [p["headers"]["X-Line-Retry-Key"] for p in server.pushes()]
    assert len(keys) == 2 and keys[0] == keys[1]       # the same push, tried again
    assert len(server.delivered) == 1 and st.problem is None and st.queued == 0


def test_429_without_retry_after_backs_off_longer_each_time(mem_env, server):
    set_up(mem_env, server)
    server.plan = [429, 429]
    start = mem_env.clock()
    with mem_env.office() as office:
        alert(office)
        office.send_line()
        first = office.status().line.paused_until
    mem_env.clock.set(first + timedelta(seconds=1))
    with mem_env.office() as office:
        office.send_line()
        second = office.status().line.paused_until
    assert 55 <= (first - start).total_seconds() <= 65
    assert 115 <= (second - first).total_seconds() <= 125
    assert server.delivered == [] and len(server.pushes()) == 2


# ---------------------------------------------------------------------------- once, whatever happens

def test_a_push_whose_answer_is_lost_is_delivered_once(mem_env, server):
    """LINE took the push but its answer never came (a timeout, a cut connection): the text stays
    owed under the same retry key; the next round is refused as a repeat (409) and marked sent."""
    set_up(mem_env, server)
    server.plan = ["lose"]
    with mem_env.office() as office:
        alert(office)
        office.send_line()
        assert office.status().line.queued == 1
        mem_env.clock.set(mem_env.clock() + timedelta(minutes=5))
        office.send_line()
        st = office.status().line
    pushes = server.pushes()
    assert len(pushes) == 2 and pushes[0]["headers"]["X-Line-Retry-Key"] == pushes[1]["headers"]["X-Line-Retry-Key"]
    assert len(server.delivered) == 1
    assert st.queued == 0 and st.last_sent is not None


def test_a_hung_line_server_never_holds_a_cycle_for_long(mem_env, server):
    set_up(mem_env, server, timeout_seconds=0.5)
    server.plan = ["hang"]
    server.hang_seconds = 12.0      # far beyond the timeout and the bound below (a loaded machine needs the room)
    mem_env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    with mem_env.office() as office:
        alert(office)
        began = time.monotonic()
        report = office.poll()
        spent = time.monotonic() - began
        st = office.status().line
    assert report.handled and spent < 6
    assert st.problem["status"] == 0 and "ติดต่อ LINE ไม่ได้" in st.problem["thai"] and st.queued == 1


def test_a_crash_right_after_the_push_never_sends_it_twice(mem_env, server, monkeypatch):
    """The process stops between LINE's answer and recording it (faults.point after_line_push)."""
    from mailbot import faults

    set_up(mem_env, server)
    crashed = []

    def crash(step: str) -> None:
        if step == "after_line_push" and not crashed:
            crashed.append(step)
            raise SystemExit(86)

    monkeypatch.setattr(faults, "point", crash)
    with mem_env.office() as office:
        alert(office)
        with pytest.raises(SystemExit):
            office.upkeep.line._deliver()
    assert len(server.delivered) == 1 and owed(mem_env)[0]["status"] == "queued"
    with mem_env.office() as office:
        office.send_line()
    assert len(server.delivered) == 1 and len(server.pushes()) == 2
    assert owed(mem_env)[0]["status"] == "sent"


# ---------------------------------------------------------------------------- the sign-in that fails

def test_a_cycle_whose_mailbox_sign_in_fails_reaches_the_group_while_no_mail_can_go(mem_env, server):
    """Round 2 left this without any alert that reaches a person: the password expired, so IMAP
    and SMTP both refuse it. The alert's mail waits in the outbox; LINE has it."""
    set_up(mem_env, server)
    mem_env.set_config(imap={"password": "expired"}, smtp={"password": "expired"})
    mem_env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    with pytest.raises(ConnectionFailure):
        mem_env.cycle()
    assert mem_env.smtp.messages == []                                    # no e-mail alert could go
    mails = db(mem_env).execute("SELECT status, subject FROM outbox WHERE kind='alert'").fetchall()
    assert [m["status"] for m in mails] and all(m["status"] != "sent" for m in mails)
    assert any("เข้าสู่ระบบอีเมลไม่ได้" in m["subject"] for m in mails)
    [(to, [text])] = server.delivered
    assert to == GROUP and "เข้าสู่ระบบอีเมลไม่ได้" in text and "http://localhost:8470/" in text
    assert english_in_thai(text.split("\n")[0]) == []
    mem_env.clock.set(mem_env.clock() + timedelta(minutes=10))
    with pytest.raises(ConnectionFailure):
        mem_env.cycle()                          # the same alert at most hourly: nothing more
    assert len(server.delivered) == 1


# ---------------------------------------------------------------------------- rate limits

def test_a_burst_of_alerts_is_capped_per_hour_five_texts_a_push(mem_env, server):
    set_up(mem_env, server, max_per_hour=2)
    with mem_env.office() as office:
        for i in range(12):
            alert(office, f"template-{i}", title=f"แม่แบบที่ {i} มีข้อผิดพลาด", thai=f"แม่แบบที่ {i} มีข้อผิดพลาด")
        office.send_line()
        first = [len(p["body"]["messages"]) for p in server.pushes()]
        assert office.status().line.queued == 2
        office.send_line()
        assert len(server.pushes()) == 2         # the hour's two pushes are spent
        mem_env.clock.set(mem_env.clock() + timedelta(hours=1, minutes=1))
        office.send_line()
    assert first == [5, 5]
    assert [len(p["body"]["messages"]) for p in server.pushes()] == [5, 5, 2]
    texts = [t for _, ts in server.delivered for t in ts]
    assert len(texts) == 12 and len(set(texts)) == 12
    assert [t.split("\n")[0] for t in texts] == [f"[mailbot แจ้งเตือน] แม่แบบที่ {i} มีข้อผิดพลาด" for i in range(12)]


# ---------------------------------------------------------------------------- the daily summary, overdue cases

def test_the_daily_summary_and_the_overdue_cases_go_to_line_once_a_day(mem_env, server):
    set_up(mem_env, server)
    mem_env.deliver(letter("แจ้งซ่อมไฟฟ้าสาธารณะ ไฟส่องสว่างดับ", sender="road@example.com"))
    [handled] = mem_env.cycle().handled
    mem_env.clock.set(NOW + timedelta(days=30))
    day = (NOW + timedelta(days=30)).date()
    with mem_env.office() as office:
        late = [c["receipt"] for c in office.state.late_cases(day.isoformat())]
        assert late == [handled.receipt]
        office.daily_log(day)                     # written only, not sent: nothing to LINE
        assert server.delivered == []
        office.daily_log(day, email=True)
        office.daily_log(day, email=True)         # once a day
    [(to, [summary, overdue])] = server.delivered              # one push, two texts; not again
    assert summary.startswith("[mailbot] สรุปประจำวัน") and "เรื่องเกินกำหนดเวลา 1 เรื่อง" in summary
    assert overdue.startswith("[mailbot] เรื่องเกินกำหนดเวลา 1 เรื่อง") and f"เลขรับ {handled.receipt}" in overdue
    assert "ไฟส่องสว่าง" not in overdue and "road@example.com" not in overdue
    assert all(english_in_thai(t) == [] for t in (summary, overdue))


# ---------------------------------------------------------------------------- settings, check

def test_old_configs_load_unchanged_and_a_wrong_group_id_names_the_key(mem_env):
    assert mem_env.cfg.alerts.line is None
    mem_env.set_config(alerts={"line": {"to": ["@saraban"]}})
    with pytest.raises(ConfigError) as bad:
        load_config(mem_env.config_path)
    assert "alerts.line.to" in bad.value.plain() or "to" in bad.value.plain()
    mem_env.set_config(alerts={"line": {"to": [GROUP], "api": "http://api.line.me"}})
    with pytest.raises(ConfigError):               # plain http only to this computer
        load_config(mem_env.config_path)


def test_check_tries_the_token_and_each_group_and_explains_in_thai(mem_env, server):
    set_up(mem_env, server, to=(GROUP,))
    [found] = [c for c in run_checks(mem_env.cfg, NOW, wire=mem_env.wire) if "LINE" in c.label]
    assert found.ok and "สารบรรณ แจ้งเตือน" in found.detail and "งานสารบรรณ" in found.detail
    set_up(mem_env, server, to=(GROUP, OTHER_GROUP))
    [found] = [c for c in run_checks(mem_env.cfg, NOW, wire=mem_env.wire) if "LINE" in c.label]
    assert not found.ok and "เชิญบัญชีเข้ากลุ่ม" in found.detail and OTHER_GROUP in found.detail
    set_up(mem_env, server, token="bad-" + "w" * 30)
    [found] = [c for c in run_checks(mem_env.cfg, NOW, wire=mem_env.wire) if "LINE" in c.label]
    assert not found.ok and "โทเค็น" in found.detail and "mailbot secret set line" in found.detail
    assert server.pushes() == []                   # nothing was sent by the check
    assert {r["path"] for r in server.requests} == {"/v2/bot/info", f"/v2/bot/group/{GROUP}/summary",
                                                    f"/v2/bot/group/{OTHER_GROUP}/summary"}


def test_the_real_host_is_verified_by_tls(monkeypatch):
    import ssl

    made = []
    real = ssl.create_default_context

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        made.append(real(*a, **kw))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", spy)
    answer = line.Api("https://127.0.0.1:9", TOKEN, 1.0, lambda: NOW).bot_info()
    assert answer.status == 0                      # nothing listens there: told, not raised
    assert made and made[0].verify_mode == ssl.CERT_REQUIRED and made[0].check_hostname


def test_status_lines_say_when_and_why_in_thai(mem_env, server):
    from mailbot.present import status_lines

    set_up(mem_env, server, token=None)
    with mem_env.office() as office:
        alert(office)
        office.send_line()
        lines = status_lines(office.status())
    text = "\n".join(lines)
    assert "แจ้งเตือนทาง LINE" in text and "รอส่ง / owed: 1" in text
    assert "mailbot secret set line" in text and "ยังไม่ได้บันทึกโทเค็น" in text
    assert json.dumps(lines, ensure_ascii=False).count("LINE") >= 2


def test_the_today_page_shows_the_line_failure_in_plain_thai_with_its_fix(env, server, open_console):
    from mailbot.app import Office

    from .test_plain_thai import thai_text

    set_up(env, server, token="old-" + "z" * 40)
    with Office.open(env.cfg, clock=env.clock) as office:
        alert(office)
        office.send_line()
    page = open_console().get("/")
    html = page.get_data(as_text=True)
    visible = thai_text(html)
    assert "แจ้งเตือนทาง LINE" in visible and "ยังไม่เคยส่ง" in visible and "รอส่ง 1" in visible
    assert "ส่งไม่สำเร็จเมื่อ" in visible and "โทเค็น" in visible
    assert "<code>mailbot secret set line</code>" in html
    assert english_in_thai(visible) == []
    env.set_config(alerts={"line": None})
    assert "แจ้งเตือนทาง LINE" not in thai_text(open_console().get("/").get_data(as_text=True))   # not set up: no row


# ---------------------------------------------------------------------------- the command line (subprocesses)

@pytest.mark.slow
def test_secret_set_line_keeps_the_token_out_of_the_yaml_and_status_and_check_tell_the_channel(env, server):
    set_up(env, server, token=None)
    before = env.config_path.read_text(encoding="utf-8")
    r = env.cli("secret", "set", "line", "--stdin", input_text="not-the-token\n")
    assert r.returncode == 2 and "โทเค็น" in r.stderr and TOKEN not in r.stdout + r.stderr
    r = env.cli("secret", "set", "line", "--stdin", input_text=TOKEN + "\n")
    assert r.returncode == 0, r.stderr
    assert "สารบรรณ แจ้งเตือน" in r.stdout and TOKEN not in r.stdout + r.stderr
    assert env.config_path.read_text(encoding="utf-8") == before
    assert Store(env.cfg.data_dir).get(line.TOKEN) == TOKEN
    r = env.cli("check")
    assert "✓ แจ้งเตือนทาง LINE / LINE alerts" in r.stdout and "งานสารบรรณ" in r.stdout, r.stdout
    r = env.cli("status")
    assert r.returncode == 0 and "แจ้งเตือนทาง LINE" in r.stdout and "ยังไม่เคยส่ง" in r.stdout, r.stdout
    r = env.cli("secret", "delete", "line")
    assert r.returncode == 0 and Store(env.cfg.data_dir).get(line.TOKEN) is None
    assert server.pushes() == []


@pytest.mark.slow
def test_mailbot_poll_killed_right_after_the_push_never_sends_it_twice(env, server):
    """A power cut between LINE's answer and recording it (MAILBOT_FAULT=after_line_push), in a
    cycle whose mailbox sign-in fails: the next cycle pushes under the same key, LINE says 409."""
    set_up(env, server)
    env.set_config(imap={"password": "expired"}, smtp={"password": "expired"})
    r = env.cli("poll", env={"MAILBOT_FAULT": "after_line_push"})
    assert r.returncode == 86, r.stderr
    assert len(server.delivered) == 1 and owed(env)[0]["status"] == "queued"
    r = env.cli("poll")
    assert r.returncode == 3, r.stderr
    keys = [p["headers"]["X-Line-Retry-Key"] for p in server.pushes()]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(server.delivered) == 1 and [r["status"] for r in owed(env)] == ["sent"]


def test_a_service_that_cannot_even_open_its_office_still_reaches_the_group(mem_env, server):
    """Broken rules: the office cannot open, cycle after cycle. The second failure's alert goes
    through the starter templates (app.alert_anyhow) and, with no mail server reachable, to LINE."""
    from mailbot.ops.daemon import Daemon

    set_up(mem_env, server)
    mem_env.unreachable("smtp")
    (mem_env.root / "rules.yaml").write_text("services:\n  - code: A\n", encoding="utf-8")   # broken
    daemon = Daemon(mem_env.cfg, clock=mem_env.clock, notify=lambda th, en: None, wire=mem_env.wire)
    daemon._poll_once()
    assert server.delivered == []
    daemon._poll_once()
    [(to, [text])] = server.delivered
    assert text.startswith("[mailbot แจ้งเตือน] mailbot หยุดรับอีเมล") and mem_env.smtp.messages == []
