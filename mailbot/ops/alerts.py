"""Alerts: problems that must not stay silent for days, told to people.

Owns: the checks (login failure, server unreachable longer than ``alerts.unreachable_minutes``,
disk nearly full, backup location missing, certificate near expiry), and telling: always to the
log and the console, by email to ``alerts.to`` (default: the agency address) and the
supervisors while SMTP works, and to LINE when ``alerts.line`` is set (``ops.line``: short Thai
with a link to the console; it needs no mail server, so a mailbox sign-in that fails still
reaches a person) — the same alert at most once an hour.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import sys
from datetime import datetime, timedelta

from ..casework.replies import context
from ..config import Config
from ..mail.outbox import Outbox
from ..store import State, from_iso, iso
from ..thai import one_line, thai_date, thai_datetime, to_bangkok
from . import line

log = logging.getLogger(__name__)
REPEAT = timedelta(hours=1)
# alerts about mailbot itself being unable to work (their mail says that unhandled mail waits in
# the mailbox, nothing lost); every other alert is about one piece of work
OUTAGES = ("login", "unreachable-", "environment", "disk", "recovery", "cycle-failed")


class Alerts:
    def __init__(self, cfg: Config, state: State, outbox: Outbox) -> None:
        self.cfg = cfg
        self.state = state
        self.outbox = outbox

    def recipients(self) -> list[str]:
        return list(dict.fromkeys([*(self.cfg.alerts.to or [self.cfg.agency.address]), *self.cfg.supervisors]))

    def alert(self, key: str, thai: str, english: str, now: datetime, since: datetime | None = None,
              title: str = "", also: tuple[str, ...] = (), receipt: str | None = None, short: str = "") -> bool:
        """Tell everyone (and ``also``: e.g. the unit responsible for an urgent request); False when
        the same alert went out less than an hour ago.

        ``since``: when the problem began (default: now); every alert says it, so an alert
        delivered late after an outage still tells when things went wrong. LINE (when set up) gets
        ``short`` (default: the Thai text) and a link to the case ``receipt`` (else the Today page),
        owed in the same transaction and pushed after the work (``ops.line.Channel.deliver``)."""
        began = since or now
        text = (f"{thai}\nเริ่มเมื่อ {thai_datetime(began)}\n\n"
                f"{english}\n(since {to_bangkok(began):%Y-%m-%d %H:%M} Bangkok time)")
        log.warning("ALERT %s: %s", key, english)
        with self.state.tx():
            last = self.state.alert_last_at(key)
            if last is not None and now - from_iso(last) < REPEAT:
                return False
            self.state.record_alert(key, now, text)
            line.queue(self.cfg, self.state, "alert", f"alert|{key}|{iso(now)}",
                       line.alert_text(self.cfg, one_line(title or thai.split(":")[0], 70), short or thai, began,
                                       receipt), now)
            print(f"แจ้งเตือน / ALERT: {thai}\n  {english}", file=sys.stderr)
            ctx = context(self.cfg.agency, receipt=None, received_at=now, subject="", sender_name="")
            ctx["note"] = text
            ctx["outage"] = key.startswith(OUTAGES)
            subject = "[mailbot แจ้งเตือน] " + one_line(title or thai.split(":")[0], 70)
            stamp = int(now.timestamp()) // 60
            for to in dict.fromkeys([*self.recipients(), *also]):
                digest = hashlib.sha256(f"{key}|{to}".encode()).hexdigest()
                self.outbox.queue("alert", recipient=to, subject=subject, now=now, ctx=ctx, key=stamp,
                                  key_hash=digest)
        return True

    # ------------------------------------------------------------------ checks

    def connection_failed(self, error, now: datetime, server: str = "imap") -> None:
        """A cycle could not reach or sign in to a server (``server``: imap or smtp, each with its
        own clock, so an SMTP-only outage is counted too)."""
        login = "login" in error.english.lower() or "password" in error.english.lower()
        key = "unreachable_since" if server == "imap" else f"unreachable_since:{server}"
        since = self.state.get(key)
        if since is None:
            self.state.put(key, iso(now))
            since = iso(now)
        kind = getattr(error, "kind", "")      # an OAuth2 sign-in says what went wrong itself
        if kind and kind != "unreachable":
            self.alert("login", "เข้าสู่ระบบอีเมลไม่ได้: " + error.thai, "mail sign-in failed: " + error.english, now,
                       since=from_iso(since), title="เข้าสู่ระบบอีเมลไม่ได้")
        elif login:
            self.alert("login", "เข้าสู่ระบบอีเมลไม่ได้: " + error.thai,
                       "mail login failed (expired password or app password?): " + error.english, now,
                       since=from_iso(since), title="เข้าสู่ระบบอีเมลไม่ได้")
        elif now - from_iso(since) >= timedelta(minutes=self.cfg.alerts.unreachable_minutes):
            minutes = int((now - from_iso(since)).total_seconds() // 60)
            self.alert(f"unreachable-{server}", f"ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้มา {minutes} นาทีแล้ว: {error.thai}",
                       f"mail server unreachable for {minutes} minutes: {error.english}", now,
                       since=from_iso(since), title="ติดต่อเซิร์ฟเวอร์อีเมลไม่ได้")

    def connection_ok(self, server: str = "imap") -> None:
        key = "unreachable_since" if server == "imap" else f"unreachable_since:{server}"
        if self.state.get(key) is not None:
            self.state.put(key, None)

    def routine(self, now: datetime) -> None:
        """Disk, backup location, certificate, OAuth2 secrets and refresh tokens: checked every cycle
        (the OAuth2 warnings at most once a day each)."""
        from ..mail.oauth import expiry_warnings, in_use
        from ..thai import to_bangkok

        if in_use(self.cfg):
            today = to_bangkok(now).date()
            for key, thai, english in expiry_warnings(self.cfg, now):
                self.alert(f"{key}-{today}", thai, english, now, title=thai.split(":")[0][:60])
        usage = shutil.disk_usage(self.cfg.data_dir if self.cfg.data_dir.exists() else self.cfg.base_dir)
        free_mb = usage.free // (1024 * 1024)
        if free_mb < self.cfg.alerts.disk_free_mb:
            self.alert("disk", f"พื้นที่ดิสก์ใกล้เต็ม เหลือ {free_mb} MB", f"disk nearly full: {free_mb} MB free", now)
        if self.cfg.backup.dir is not None and not self.cfg.resolve(self.cfg.backup.dir).is_dir():
            where = self.cfg.resolve(self.cfg.backup.dir)
            self.alert("backup-location", f"ไม่พบที่เก็บข้อมูลสำรอง {where}", f"backup location missing: {where}", now)
        if self.cfg.signing is not None:
            from ..documents.certs import certificate_info
            from ..errors import MailbotError

            try:
                info = certificate_info(self.cfg.resolve(self.cfg.signing.pkcs12), self.cfg.signing.key_password())
            except MailbotError as exc:
                self.alert("certificate", exc.thai, exc.english, now)
                return
            left = info.days_left(now)
            if left <= self.cfg.alerts.certificate_days:
                self.alert("certificate", f"ใบรับรองอิเล็กทรอนิกส์จะหมดอายุใน {left} วัน ({thai_date(info.not_after)})",
                           f"signing certificate expires in {left} days ({info.not_after:%Y-%m-%d})", now,
                           title="ใบรับรองอิเล็กทรอนิกส์ใกล้หมดอายุ")
