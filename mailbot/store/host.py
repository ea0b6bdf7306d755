"""The host's registry (PostgreSQL, schema ``mailbot_host``): which agencies a host runs, where
each one's settings are, when each is next due, and how its last cycle went.

Owns: the ``mailbot_host.agencies`` statements. An agency's own records are in its tenant schema
(``pg``), reached only through a ``State`` opened for that tenant; this registry holds no citizen's
data, only the host's bookkeeping, one row per agency.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .db import iso
from .pg import schema_of

REGISTRY = """
CREATE SCHEMA IF NOT EXISTS mailbot_host;
CREATE TABLE IF NOT EXISTS mailbot_host.agencies (
    name TEXT PRIMARY KEY, config TEXT NOT NULL, added_at TEXT NOT NULL, removed_at TEXT,
    next_poll_at TEXT NOT NULL, next_daily_at TEXT,
    last_started_at TEXT, last_finished_at TEXT, last_ok_at TEXT, last_error TEXT,
    last_handled BIGINT NOT NULL DEFAULT 0, cycles BIGINT NOT NULL DEFAULT 0, worker TEXT);
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS idle BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS last_error_th TEXT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS outbox_waiting BIGINT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS alerts_day BIGINT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS signin_expires_at TEXT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS signin_th TEXT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS signin_en TEXT;
ALTER TABLE mailbot_host.agencies ADD COLUMN IF NOT EXISTS certificate_expires_at TEXT;
CREATE TABLE IF NOT EXISTS mailbot_host.operators (
    name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
"""
NEWEST_COLUMN = "certificate_expires_at"     # the registry's last addition (upgrade looks for it)
_UPGRADED: set[str] = set()                  # registries this process has brought up to date


class HostStore:
    """One connection to the host's database, for the registry of agencies."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[dict[str, Any]] = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "HostStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        """The registry, and pg_trgm for the tenants' name search (made once, here, by the host)."""
        self.conn.execute(REGISTRY.encode())
        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        except psycopg.Error:    # not allowed for this role: the tenants' search reads the table
            pass

    def upgrade(self) -> None:
        """The registry brought to this release's columns (a worker or console of a newer release
        started on a host prepared by an older one); nothing if ``host init`` has not run."""
        if self.url in _UPGRADED:         # once a process: it runs where every page opens a Host
            return
        if self.ready() and not self.conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'mailbot_host' "
                "AND table_name = 'agencies' AND column_name = %s", (NEWEST_COLUMN,)).fetchone():
            self.conn.execute(REGISTRY.encode())
        if self.ready():
            _UPGRADED.add(self.url)

    def _exists(self, table: str) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (table,)).fetchone()
        return bool(row and row["ok"])

    def ready(self) -> bool:
        return self._exists("mailbot_host.agencies")

    def has_queue(self) -> bool:
        """Whether the worker engine's tables (procrastinate's) are there."""
        return self._exists("procrastinate_jobs")

    def add(self, name: str, config: str, now: datetime) -> bool:
        """An agency registered (or taken back after a remove, its data as it was); False if it was
        there already."""
        schema_of(name)
        row = self.conn.execute(
            "INSERT INTO mailbot_host.agencies (name, config, added_at, next_poll_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET config = excluded.config, removed_at = NULL, "
            "next_poll_at = excluded.next_poll_at WHERE mailbot_host.agencies.removed_at IS NOT NULL "
            "RETURNING name", (name, config, iso(now), iso(now))).fetchone()
        return row is not None

    def remove(self, name: str, now: datetime) -> bool:
        """No more cycles for this agency; its tenant (cases, registers, audit) stays."""
        cur = self.conn.execute("UPDATE mailbot_host.agencies SET removed_at = %s WHERE name = %s "
                                "AND removed_at IS NULL", (iso(now), name))
        return cur.rowcount > 0

    def agency(self, name: str) -> dict[str, Any] | None:
        return self.conn.execute("SELECT * FROM mailbot_host.agencies WHERE name = %s", (name,)).fetchone()

    def agencies(self, with_removed: bool = False) -> list[dict[str, Any]]:
        where = "" if with_removed else " WHERE removed_at IS NULL"
        return self.conn.execute(f"SELECT * FROM mailbot_host.agencies{where} ORDER BY name").fetchall()

    def due(self, now: datetime) -> list[tuple[str, bool]]:
        """Agencies whose next cycle is due, each with whether its last cycle was cut off (begun,
        never finished: its worker died): those are served first."""
        return [(r["name"], bool(r["cut"])) for r in self.conn.execute(
            "SELECT name, (last_started_at IS NOT NULL AND (last_finished_at IS NULL "
            "OR last_started_at > last_finished_at)) AS cut FROM mailbot_host.agencies "
            "WHERE removed_at IS NULL AND next_poll_at <= %s ORDER BY next_poll_at", (iso(now),))]

    def daily_due(self, now: datetime) -> list[str]:
        return [r["name"] for r in self.conn.execute(
            "SELECT name FROM mailbot_host.agencies WHERE removed_at IS NULL AND next_daily_at IS NOT NULL "
            "AND next_daily_at <= %s ORDER BY name", (iso(now),))]

    def started(self, name: str, now: datetime, worker: str, lease: datetime) -> None:
        """A cycle begun; the agency is due again at ``lease`` unless the cycle finishes (a worker
        that dies mid-cycle leaves it due: another worker takes it on then)."""
        self.conn.execute("UPDATE mailbot_host.agencies SET last_started_at = %s, worker = %s, next_poll_at = %s "
                          "WHERE name = %s", (iso(now), worker, iso(lease), name))

    def finished(self, name: str, now: datetime, *, error: str | None, handled: int, next_poll: datetime,
                 next_daily: datetime | None, error_th: str | None = None) -> None:
        self.conn.execute(
            "UPDATE mailbot_host.agencies SET last_finished_at = %s, last_error = %s, last_error_th = %s, "
            "last_handled = %s, cycles = cycles + 1, next_poll_at = %s, next_daily_at = coalesce(next_daily_at, %s), "
            "last_ok_at = CASE WHEN %s::text IS NULL THEN %s ELSE last_ok_at END WHERE name = %s",
            (iso(now), error, error_th if error else None, handled, iso(next_poll),
             iso(next_daily) if next_daily else None, error, iso(now), name))

    def measured(self, name: str, *, outbox_waiting: int, alerts_day: int,
                 signin_expires_at: datetime | None, signin_th: str, signin_en: str,
                 certificate_expires_at: datetime | None) -> None:
        """What the operator's health table shows of an agency, as its last cycle found it (so that
        the table is one query, whatever the number of agencies)."""
        self.conn.execute(
            "UPDATE mailbot_host.agencies SET outbox_waiting = %s, alerts_day = %s, "
            "signin_expires_at = %s, signin_th = %s, signin_en = %s, certificate_expires_at = %s WHERE name = %s",
            (outbox_waiting, alerts_day, iso(signin_expires_at) if signin_expires_at else None,
             signin_th, signin_en, iso(certificate_expires_at) if certificate_expires_at else None, name))

    def daily_done(self, name: str, next_daily: datetime) -> None:
        self.conn.execute("UPDATE mailbot_host.agencies SET next_daily_at = %s WHERE name = %s",
                          (iso(next_daily), name))

    def poll_soon(self, name: str, now: datetime) -> None:
        """The next tick takes this agency (new mail announced, or an operator's request)."""
        self.conn.execute("UPDATE mailbot_host.agencies SET next_poll_at = %s WHERE name = %s", (iso(now), name))

    def set_idle(self, name: str, idle: bool) -> None:
        """Whether the agency wants its mailbox watched (its ``schedule.idle``), as last read."""
        self.conn.execute("UPDATE mailbot_host.agencies SET idle = %s WHERE name = %s AND idle <> %s",
                          (idle, name, idle))

    def idle_wanted(self) -> list[str]:
        """Agencies that want IMAP IDLE and have no watch job queued or running."""
        queue = ("AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = 'idle:' || a.name "
                 "AND j.status IN ('todo', 'doing'))") if self.has_queue() else ""
        return [r["name"] for r in self.conn.execute(
            f"SELECT a.name FROM mailbot_host.agencies a WHERE a.idle AND a.removed_at IS NULL {queue} ORDER BY a.name")]

    def still_idle(self, name: str) -> bool:
        row = self.conn.execute("SELECT idle AND removed_at IS NULL AS on FROM mailbot_host.agencies WHERE name = %s",
                                (name,)).fetchone()
        return bool(row and row["on"])

    def save_operator(self, name: str, password_hash: str, now: datetime) -> None:
        self.conn.execute("INSERT INTO mailbot_host.operators (name, password_hash, created_at) VALUES (%s, %s, %s) "
                          "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
                          (name, password_hash, iso(now)))

    def operator_hash(self, name: str) -> str | None:
        row = self.conn.execute("SELECT password_hash FROM mailbot_host.operators WHERE name = %s", (name,)).fetchone()
        return row["password_hash"] if row else None

    def jobs(self) -> dict[str, dict[str, int]]:
        """Each agency's jobs in the worker engine's queue, by status (todo, doing)."""
        if not self.has_queue():
            return {}
        found: dict[str, dict[str, int]] = {}
        for row in self.conn.execute(
                "SELECT args->>'agency' AS agency, status::text AS status, count(*) AS n FROM procrastinate_jobs "
                "WHERE status IN ('todo', 'doing') GROUP BY 1, 2"):
            if row["agency"]:
                found.setdefault(row["agency"], {})[row["status"]] = row["n"]
        return found


class TenantWorkLock:
    """The work lock of one tenant across machines (a host's workers and consoles on other pods,
    whose shared volume may not share file locks): a session advisory lock on a connection of its
    own, held for one block of work (a cycle, sending now, an officer's action). Another key than
    ``AgencyLock``'s, which the worker holds around the whole cycle."""

    def __init__(self, url: str, tenant: str) -> None:
        self.url = url
        self.key = schema_of(tenant)
        self.conn: psycopg.Connection[Any] | None = None

    def acquire(self, timeout: float) -> bool:
        self.conn = psycopg.connect(self.url, autocommit=True)
        try:
            self.conn.execute(f"SET lock_timeout = '{max(1, int(timeout * 1000))}ms'")
            self.conn.execute("SELECT pg_advisory_lock(hashtext(%s), 2)", (self.key,))
            return True
        except psycopg.errors.LockNotAvailable:
            self.release()
            return False

    def release(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class AgencyLock:
    """At most one cycle of an agency at a time, across every worker: a session advisory lock held
    on a connection of its own for the whole cycle. A worker that dies loses its connection, and
    PostgreSQL lets the lock go at once."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.key = schema_of(name)
        self.conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        self.conn = psycopg.connect(self.url, autocommit=True)
        got = self.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), 1)", (self.key,)).fetchone()
        if not got or not got[0]:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self.conn is not None:
            self.conn.close()          # the session's advisory locks go with it
            self.conn = None
