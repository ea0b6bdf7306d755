"""Alerts reach a person, in process over pymap + aiosmtpd: a service that fails cycle after
cycle (even when its rules are broken) and an outgoing server that stays unreachable while the
mailbox works are both told to the officers by email. The daemon's hourly limit and the
unreachable delay are in tests/test_ops.py."""
from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email import policy

from .conftest import AGENCY, letter
from .test_intake import db


def test_two_failed_cycles_alert_the_officers_even_when_the_rules_are_broken(env):
    from mailbot.ops.daemon import Daemon

    env.set_config(supervisors=["head@example.go.th"])
    (env.root / "rules.yaml").write_text("services:\n  - code: A\n", encoding="utf-8")   # broken
    daemon = Daemon(env.cfg, clock=env.clock, notify=lambda th, en: None)
    daemon._poll_once()
    assert env.smtp.messages == []
    daemon._poll_once()
    subjects = {m.rcpt_tos[0]: str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])
                for m in env.smtp.messages}
    assert "mailbot หยุดรับอีเมล" in subjects.get("head@example.go.th", "") and AGENCY in subjects


def test_an_smtp_only_outage_is_alerted(env):
    from mailbot.app import Office

    env.set_config(alerts={"unreachable_minutes": 30}, smtp={"port": 1})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    t0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    for minutes in (0, 20, 40):
        with Office.open(env.cfg, clock=lambda m=minutes: t0 + timedelta(minutes=m)) as office:
            office.poll()
    con = db(env)
    alerts = [r[0] for r in con.execute("SELECT subject FROM outbox WHERE kind='alert'")]
    assert any("ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้" in a for a in alerts), alerts
    [outage] = [r[0] for r in con.execute("SELECT raw FROM outbox WHERE kind='alert'")]
    assert "ไม่สูญหาย" in _body(outage)             # an outage: unhandled mail waits, nothing lost


def _body(raw: bytes) -> str:
    part = email.message_from_bytes(bytes(raw), policy=policy.default).get_body(("plain",))
    return part.get_content() if part is not None else ""


def test_an_urgent_request_is_alerted_without_the_outage_words(env):
    """ด่วนที่สุด from a sender nothing doubts: an alert to handle it first. Its mail says nothing of
    an outage ("nothing lost meanwhile" belongs to alerts about mailbot itself)."""
    env.deliver(letter("ด่วนที่สุด ขอข้อมูลข่าวสารการจัดซื้อจัดจ้าง", sender="reporter@news.example"))
    env.cycle()
    con = db(env)
    [(subject, raw)] = con.execute("SELECT subject, raw FROM outbox WHERE kind='alert'").fetchall()
    text = _body(raw)
    assert "ด่วนที่สุด" in subject and "ดำเนินการก่อนเรื่องอื่น" in text
    assert "ไม่สูญหาย" not in text and "Nothing is lost" not in text
