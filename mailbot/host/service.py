"""The host's commands over its registry: init, add, list, remove; an agency's settings as the
host runs them (its own file, its tenant in the host's database); each agency's health.

Owns: ``Host`` (the registry's verbs and the health table the host operator reads) and
``agency_config`` (an agency's ``mailbot.yaml`` with ``database`` set to its tenant: the file
may not choose another agency's tenant).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import Config, DatabaseConfig, load_config
from ..errors import MailbotError
from ..store import open_state
from ..store.host import HostStore
from ..store.pg import TENANT

log = logging.getLogger(__name__)

URL_ENV = "MAILBOT_DATABASE_URL"


def host_url() -> str:
    url = os.environ.get(URL_ENV)
    if not url:
        raise MailbotError(f"ยังไม่ได้ตั้งที่อยู่ฐานข้อมูลของผู้ให้บริการ: ตั้งตัวแปรสภาพแวดล้อม {URL_ENV} "
                           "เช่น postgresql://mailbot@db/mailbot",
                           f"the host's database is not set: set {URL_ENV}, e.g. postgresql://mailbot@db/mailbot")
    return url


RESERVED = {"signin", "signout", "static", "fonts", "host"}     # the host console's own paths


def use_host_secrets(url: str) -> None:
    """A host's process: every agency's secrets (the audit chain's key and head, sign-in tokens)
    in a file of its own data folder, never in the machine's keyring, whose names are one per
    machine; and every tenant opened on this host's database."""
    os.environ["MAILBOT_SECRET_STORE"] = "file"
    os.environ[URL_ENV] = url


def check_name(name: str) -> str:
    if not TENANT.match(name) or name in RESERVED:
        raise MailbotError(f"ชื่อหน่วยงานต้องเป็นอักษรอังกฤษตัวเล็ก ตัวเลข หรือ _ ขึ้นต้นด้วยตัวอักษร: {name!r}",
                           f"an agency name is a-z, 0-9 and _, starting with a letter: {name!r}")
    return name


def agency_config(name: str, path: str | Path) -> Config:
    """An agency's settings as the host runs them: its own file, its records in its tenant."""
    return load_config(Path(path)).pin(database=DatabaseConfig(url_env=URL_ENV, tenant=name))


@dataclass
class Health:
    """One agency's line in the operator's table, as its last cycle found it."""
    name: str
    config: str
    last_ok_at: datetime | None
    last_finished_at: datetime | None       # the last poll, good or not
    last_error: str | None
    last_error_th: str | None
    cycles: int
    queued_jobs: int
    running: bool
    outbox_waiting: int | None              # None: not measured yet (no cycle since it was added)
    alerts_day: int | None
    signin_expires_at: datetime | None      # when the mailbox sign-in lapses unless someone acts
    signin_th: str | None
    signin_en: str | None
    certificate_expires_at: datetime | None
    removed: bool

    def days_left(self, when: datetime | None, now: datetime) -> int | None:
        return None if when is None else (when - now).days

    def line(self, now: datetime) -> str:
        state = "หยุดแล้ว / removed" if self.removed else ("ผิดพลาด / error" if self.last_error else "ปกติ / ok")
        signin = "-"
        if self.signin_expires_at is not None:
            signin = f"{self.signin_expires_at:%Y-%m-%d} ({self.days_left(self.signin_expires_at, now)} d)"
        elif self.signin_en:
            signin = self.signin_en
        cert = f"{self.certificate_expires_at:%Y-%m-%d}" if self.certificate_expires_at else "-"
        last_ok = f"{self.last_ok_at:%Y-%m-%d %H:%M}" if self.last_ok_at else "-"
        return (f"{self.name:<24} {state:<18} last ok {last_ok:<17} cycles {self.cycles:<6} "
                f"jobs {self.queued_jobs}{'+running' if self.running else '':<9} "
                f"outbox {'-' if self.outbox_waiting is None else self.outbox_waiting:<4} "
                f"alerts(24h) {'-' if self.alerts_day is None else self.alerts_day:<3} sign-in until {signin} "
                f"certificate until {cert}" + (f"\n    {self.last_error}" if self.last_error else ""))


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:                       # a registry edited by hand: shown as unknown
        return None


def measure(office: Any, now: datetime) -> dict[str, Any]:
    """What the operator's table shows of an agency, read at the end of its cycle: replies waiting
    or held, alerts in the last 24 hours, when its mailbox sign-in and its signing certificate
    lapse. Never fails the cycle: a part it cannot read is left unknown."""
    from ..mail.oauth import signin_lapse

    state, cfg = office.state, office.cfg
    found: dict[str, Any] = {"outbox_waiting": 0, "alerts_day": 0, "signin_expires_at": None,
                             "signin_th": "-", "signin_en": "-", "certificate_expires_at": None}
    try:
        found["outbox_waiting"] = state.count_outbox("queued") + state.count_outbox("held")
        found["alerts_day"] = state.count_alerts_since((now - timedelta(days=1)).isoformat())
        found["signin_expires_at"], found["signin_th"], found["signin_en"] = signin_lapse(cfg, now)
        if cfg.signing is not None:
            from ..documents.certs import certificate_info

            try:
                found["certificate_expires_at"] = certificate_info(cfg.resolve(cfg.signing.pkcs12),
                                                                   cfg.signing.key_password()).not_after
            except MailbotError:
                pass                       # the cycle's own alert says what is wrong with it
    except Exception:  # noqa: BLE001 - the table is a convenience; the cycle's result stands
        log.warning("health of %s not read", cfg.database.tenant if cfg.database else "?", exc_info=True)
    return found


class Host:
    """The registry of agencies in the host's database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or host_url()
        use_host_secrets(self.url)
        self.store = HostStore(self.url)
        self.store.upgrade()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init(self) -> None:
        """The registry (the worker engine's tables: ``worker.prepare_queue``)."""
        self.store.create()

    def _ready(self) -> None:
        if not self.store.ready():
            raise MailbotError("ยังไม่ได้เตรียมฐานข้อมูลของผู้ให้บริการ สั่ง mailbot host init ก่อน",
                               "the host's database is not prepared: run mailbot host init first")

    def add(self, name: str, config: Path, now: datetime) -> bool:
        """An agency added: its settings checked and its tenant made (or found as it was kept)."""
        self._ready()
        check_name(name)
        path = config.resolve()
        cfg = agency_config(name, path)
        state = open_state(cfg)          # the tenant's schema, at this release's version
        state.close()
        added = self.store.add(name, str(path), now)
        self.store.set_idle(name, cfg.schedule.idle)
        return added

    def remove(self, name: str, now: datetime) -> bool:
        """No more cycles; the tenant's records stay (mailbot host add takes it back)."""
        self._ready()
        return self.store.remove(check_name(name), now)

    def health(self, now: datetime, with_removed: bool = False) -> list[Health]:
        """Every agency's health, for the host operator: last poll and last good cycle, the queue,
        replies waiting, alerts, sign-in and certificate expiry. Two queries of the registry and the
        queue, whatever the number of agencies (each cycle leaves its agency's figures there)."""
        self._ready()
        jobs = self.store.jobs()
        found = []
        for row in self.store.agencies(with_removed=with_removed):
            j = jobs.get(row["name"], {})
            found.append(Health(
                row["name"], row["config"], _when(row["last_ok_at"]), _when(row["last_finished_at"]),
                row["last_error"], row["last_error_th"], row["cycles"], j.get("todo", 0), bool(j.get("doing")),
                row["outbox_waiting"], row["alerts_day"], _when(row["signin_expires_at"]), row["signin_th"],
                row["signin_en"], _when(row["certificate_expires_at"]), row["removed_at"] is not None))
        return found
