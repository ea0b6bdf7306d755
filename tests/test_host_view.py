"""The host operator's health table as it is shown (fast tier, no PostgreSQL): Thai first,
Buddhist-Era dates in Bangkok time, a sign-in or certificate lapsing within 30 days in amber and
one that has lapsed in red, an agency never run told apart from a healthy one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailbot.host.console import view_rows
from mailbot.host.service import Health

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)


def health(name: str, **changes) -> Health:
    base = dict(name=name, config="/x/mailbot.yaml", last_ok_at=NOW - timedelta(minutes=5),
                last_finished_at=NOW - timedelta(minutes=5), last_error=None, last_error_th=None, cycles=7,
                queued_jobs=0, running=False, outbox_waiting=0, alerts_day=0, signin_expires_at=None,
                signin_th="รหัสผ่าน (ไม่ทราบวันหมดอายุ)", signin_en="password (no known expiry)",
                certificate_expires_at=None, removed=False)
    base.update(changes)
    return Health(**base)  # type: ignore[arg-type]


def test_the_health_table_reads_in_thai_with_buddhist_era_dates_and_flags_lapses():
    rows = {r["name"]: r for r in view_rows([
        health("ok"),
        health("soon", signin_expires_at=NOW + timedelta(days=12), signin_th="รหัสลับของแอป",
               certificate_expires_at=NOW + timedelta(days=400)),
        health("gone", signin_expires_at=NOW - timedelta(days=1), certificate_expires_at=NOW - timedelta(days=2),
               last_error="IMAP login failed", last_error_th="เข้าสู่ระบบกล่องอีเมลไม่ได้", running=True,
               queued_jobs=1),
        health("new", last_ok_at=None, last_finished_at=None, outbox_waiting=None, alerts_day=None,
               signin_th=None, signin_en=None, cycles=0),
    ], NOW)}
    ok = rows["ok"]
    assert (ok["state"], ok["state_class"]) == ("ปกติ", "ok")
    assert ok["last_poll"] == "5 ธ.ค. 2569 09:55 น."                  # Bangkok time, Buddhist Era
    assert ok["signin"] == "รหัสผ่าน (ไม่ทราบวันหมดอายุ)" and ok["signin_class"] == ""
    soon = rows["soon"]
    assert soon["signin"] == "17 ธ.ค. 2569 (อีก 12 วัน)" and soon["signin_class"] == "warn"
    assert soon["signin_note"] == "รหัสลับของแอป" and soon["cert_class"] == "" and "2571" in soon["cert"]
    gone = rows["gone"]
    assert gone["signin_class"] == gone["cert_class"] == "bad" and "หมดแล้ว" in gone["signin"]
    assert (gone["state"], gone["error"], gone["error_en"]) == ("ผิดพลาด", "เข้าสู่ระบบกล่องอีเมลไม่ได้",
                                                                "IMAP login failed")
    assert gone["jobs"] == "1 + กำลังทำ"
    new = rows["new"]
    assert (new["state"], new["last_poll"], new["waiting"], new["alerts"], new["signin"]) == \
        ("ยังไม่เริ่ม", "-", "-", "-", "-")
    for r in rows.values():                                            # no Common-Era year in a Thai cell
        assert not any("2026" in str(v) or "2027" in str(v) for v in r.values())
    line = health("soon", signin_expires_at=NOW + timedelta(days=12)).line(NOW)
    assert "sign-in until 2026-12-17 (12 d)" in line


def test_the_certificate_read_every_cycle_is_opened_once_while_it_stays_the_same(tmp_path, monkeypatch):
    """Opening a .p12 costs tens of milliseconds of key derivation: the expiry check each cycle
    (and the host's health figures) keeps what it read while the file and its password stay."""
    import os

    import pytest

    from mailbot.documents import certs
    from mailbot.errors import MailbotError

    pki = certs.make_demo_pki(tmp_path, "เทศบาลทดลอง")
    opened = []
    real = certs.read_pkcs12
    monkeypatch.setattr(certs, "read_pkcs12", lambda p, pw: opened.append(p) or real(p, pw))
    first = certs.certificate_info(pki.p12, pki.password)
    assert certs.certificate_info(pki.p12, pki.password) == first and len(opened) == 1
    with pytest.raises(MailbotError):                       # another password: opened again, and refused
        certs.certificate_info(pki.p12, "wrong-password")
    assert len(opened) == 2
    other = certs.make_demo_pki(tmp_path / "new", "เทศบาลทดลอง", days=30)   # the certificate renewed
    os.replace(other.p12, pki.p12)
    renewed = certs.certificate_info(pki.p12, pki.password)
    assert len(opened) == 3 and renewed.not_after < first.not_after
