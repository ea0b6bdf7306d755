"""The host's commands over its registry: init, add, list, remove; an agency's settings as the
host runs them (its own file, its tenant in the host's database); each agency's health.

Owns: ``Host`` (the registry's verbs and the health table the host operator reads) and
``agency_config`` (an agency's ``mailbot.yaml`` with ``database`` set to its tenant: the file
may not choose another agency's tenant).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..config import Config, DatabaseConfig, load_config
from ..errors import MailbotError
from ..store import open_state
from ..store.host import HostStore
from ..store.pg import TENANT

URL_ENV = "MAILBOT_DATABASE_URL"


def host_url() -> str:
    url = os.environ.get(URL_ENV)
    if not url:
        raise MailbotError(f"ยังไม่ได้ตั้งที่อยู่ฐานข้อมูลของผู้ให้บริการ: ตั้งตัวแปรสภาพแวดล้อม {URL_ENV} "
                           "เช่น postgresql://mailbot@db/mailbot",
                           f"the host's database is not set: set {URL_ENV}, e.g. postgresql://mailbot@db/mailbot")
    return url


RESERVED = {"signin", "signout", "static", "host"}     # the host console's own paths


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
    name: str
    config: str
    last_ok_at: str | None
    last_finished_at: str | None
    last_error: str | None
    cycles: int
    queued_jobs: int
    running: bool
    outbox_waiting: int
    alerts_day: int
    removed: bool

    def line(self) -> str:
        state = "หยุดแล้ว / removed" if self.removed else ("ผิดพลาด / error" if self.last_error else "ปกติ / ok")
        return (f"{self.name:<24} {state:<18} last ok {self.last_ok_at or '-':<25} cycles {self.cycles:<6} "
                f"jobs {self.queued_jobs}{'+running' if self.running else '':<9} outbox {self.outbox_waiting:<4} "
                f"alerts(24h) {self.alerts_day}" + (f"\n    {self.last_error}" if self.last_error else ""))


class Host:
    """The registry of agencies in the host's database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or host_url()
        use_host_secrets(self.url)
        self.store = HostStore(self.url)

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
        """Every agency's health, for the host operator: last cycle, queue, outbox, alerts."""
        self._ready()
        jobs = self.store.jobs()
        found = []
        for row in self.store.agencies(with_removed=with_removed):
            waiting = alerts = 0
            try:
                state = open_state(agency_config(row["name"], row["config"]))
                try:
                    waiting = state.count_outbox("queued") + state.count_outbox("held")
                    since = (now - timedelta(days=1)).isoformat()
                    alerts = sum(1 for a in state.recent_alerts(50) if (a["last_at"] or "") >= since)
                finally:
                    state.close()
            except MailbotError:
                pass
            j = jobs.get(row["name"], {})
            found.append(Health(row["name"], row["config"], row["last_ok_at"], row["last_finished_at"],
                                row["last_error"], row["cycles"], j.get("todo", 0), bool(j.get("doing")),
                                waiting, alerts, row["removed_at"] is not None))
        return found
