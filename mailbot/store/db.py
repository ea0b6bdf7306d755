"""Database (SQLite for one office; PostgreSQL for a host, through ``pg``): the connection, transactions and migrations. Every write is inside a
transaction; timestamps are stored as ISO-8601 UTC strings so they compare as text.

Owns: opening the file (WAL, full sync before any reply leaves), refusing a database from a
newer release, keeping a copy before a migration touches it, running ``schema.MIGRATIONS``,
nested transactions as savepoints, the ``meta`` key-value table, the ``events`` log and the
``alerts`` table (when each alert last went out).
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, cast

from ..errors import MailbotError
from ..files import make_private
from .schema import BASE_SCHEMA, BASE_VERSION, MIGRATIONS, SCHEMA_VERSION, run_script


def iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


EXPORT_BATCH = 2000      # rows read at a time when a database is exported
CACHE_KB = 8192          # SQLite page cache of one connection, in KB (PRAGMA cache_size)


class Database:
    """One database: a SQLite file under the data folder (one office), or one tenant's schema in
    PostgreSQL (a host: ``url`` and ``tenant``) — the connection, transactions and migrations.
    ``store.State`` adds the statements of each part of mailbot to it."""

    dialect = "sqlite"
    # a sqlite3 connection, or pg.Connection, which answers the same calls for PostgreSQL
    db: sqlite3.Connection
    path: Path | None
    tenant: str | None

    def __init__(self, path: Path | None = None, *, url: str | None = None, tenant: str | None = None) -> None:
        self._depth = 0
        self.created = False        # made just now (a lost or new database)
        self.migrated_from: int | None = None
        if url is not None:
            from . import pg

            if not tenant:
                raise ValueError("a PostgreSQL store belongs to one tenant")
            self.dialect = "postgresql"
            self.tenant = tenant
            self.path = None
            self.db = pg.connect(url, tenant)        # type: ignore[assignment]
            try:
                self._open_pg()
            except BaseException:
                self.db.close()
                raise
            return
        if path is None:
            raise ValueError("a SQLite store needs its file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tenant = None
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # citizens' data: the owner's alone, also when an older release made it under umask 022
        make_private(path.parent, path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        self.db.execute("PRAGMA synchronous=FULL")  # durable before any reply leaves
        self.db.execute("PRAGMA foreign_keys=ON")
        # each message is recorded under a savepoint: SQLite keeps the pages it changes in a
        # statement journal, a file in the system's temporary folder unless told otherwise
        # (163 MB written there, in 84,000 writes, for a 1,000-message poll; on an office PC the
        # virus scanner reads each). In memory it is the size of one message's changes.
        self.db.execute("PRAGMA temp_store=MEMORY")
        # 8 MB of pages kept (SQLite's default is 2 MB): a busy poll re-read 26,000 pages from
        # the database and its WAL, 8,500 with this
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KB}")
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise

    def _newer(self, version: int) -> MailbotError:
        where = self.path or f"tenant {self.tenant}"
        return MailbotError(
            f"ฐานข้อมูล {where} มาจาก mailbot รุ่นใหม่กว่า (แบบที่ {version}) ใช้กับรุ่นนี้ไม่ได้ "
            "ให้ติดตั้ง mailbot รุ่นเดียวกับที่สร้างข้อมูล",
            f"the state database {where} comes from a newer mailbot (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); install that version again",
        )

    def _migrate(self, version: int) -> None:
        """From ``version`` (0: nothing yet) to ``SCHEMA_VERSION``, inside the caller's transaction."""
        if self.created:
            run_script(self.db, BASE_SCHEMA)
            version = BASE_VERSION
        for target in range(version + 1, SCHEMA_VERSION + 1):
            step = MIGRATIONS[target]
            if callable(step):
                step(self.db)
            else:
                run_script(self.db, step)
        if self.created:   # a new or lost database: numbers issued before must be looked for
            self.db.execute("INSERT INTO meta (key, value) VALUES ('recovery_pending', 'created')")

    def _open(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        if version == SCHEMA_VERSION:
            return
        tables = self.db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        if version == 0 and tables == 0:
            self.created = True
        elif version < BASE_VERSION:
            raise MailbotError(
                f"ฐานข้อมูล {self.path} มาจาก mailbot รุ่นทดลองก่อนรุ่นแรก ย้ายข้อมูลอัตโนมัติไม่ได้",
                f"the state database {self.path} predates the first release (schema {version}); it cannot be upgraded",
            )
        else:
            self.migrated_from = version
            self._keep_copy(version)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # another process (the service and a console request at the first start after an
            # upgrade) may have migrated while this one waited for the write lock
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                self.db.execute("COMMIT")
                return
            if version == 0:
                self.created = self.db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] == 0
            self._migrate(version)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _open_pg(self) -> None:
        """The tenant's schema at this release's version: its version is kept in ``schema_version``
        (SQLite's user_version), and migrations run under the tenant's write lock, in one transaction."""
        self._begin()
        try:
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self.db.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise self._newer(version)
            if version < SCHEMA_VERSION:
                self.created = version == 0
                if not self.created:
                    self.migrated_from = version
                self._migrate(version)
                self.db.execute("DELETE FROM schema_version")
                self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _begin(self) -> None:
        """A write transaction: one writer at a time for this database (SQLite's BEGIN IMMEDIATE;
        in PostgreSQL a transaction-scoped advisory lock keyed by the tenant), so that numbers,
        counters and the audit chain are written by one transaction after another, as in SQLite."""
        if self.dialect == "sqlite":
            self.db.execute("BEGIN IMMEDIATE")
            return
        # READ COMMITTED whatever the server's default: each statement after the lock sees what the
        # writer before committed (as in SQLite); a writer stuck for 30 s is an error, as SQLite's busy timeout
        self.db.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            self.db.execute("SET LOCAL lock_timeout = '30s'")
            self.db.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def has_table(self, name: str) -> bool:
        if self.dialect == "sqlite":
            return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                   (name,)).fetchone() is not None
        return self.db.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0]

    def _keep_copy(self, version: int) -> Path:
        """A copy of the database as it was, before a migration touches it."""
        assert self.path is not None
        target = self.path.with_name(f"{self.path.name}.schema{version}.bak")
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        copy = sqlite3.connect(partial)
        try:
            with copy:
                self.db.backup(copy)
        finally:
            copy.close()
        os.replace(partial, target)
        return target

    def close(self) -> None:
        self.db.close()

    def export_sqlite(self, target: Path) -> None:
        """The whole database as one SQLite file (a host tenant's backup, or an agency leaving its
        host for a PC of its own): made by the same migrations, then every table's rows as they
        are, the audit chain with its hashes. ``target`` must not exist."""
        copy = Database(target)
        snapshot = self.dialect == "postgresql" and not self._depth
        if snapshot:      # every table as of one moment, writers going on meanwhile
            self.db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            copy.db.execute("BEGIN IMMEDIATE")
            copy.db.execute("DELETE FROM meta")        # the new file's own 'created' mark: not this data's
            tables = [r[0] for r in copy.db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE 'cases_fts%' ORDER BY name")]
            for table in tables:
                cols = [r[1] for r in copy.db.execute(f'PRAGMA table_info("{table}")')]
                names = ", ".join(cols)
                insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"
                for rows in self._batches(f"SELECT {names} FROM {table}"):
                    copy.db.executemany(insert, [tuple(r) for r in rows])
            copy.db.execute("COMMIT")
        except BaseException:
            copy.db.execute("ROLLBACK")
            copy.close()
            target.unlink(missing_ok=True)
            raise
        finally:
            if snapshot:
                self.db.execute("COMMIT")
        copy.close()

    def _batches(self, statement: str) -> Iterator[list[Any]]:
        """A query's rows EXPORT_BATCH at a time (a big table is never read whole). On PostgreSQL
        a server-side cursor, inside export_sqlite's transaction."""
        if self.dialect == "postgresql":
            yield from cast(Any, self.db).batches(statement, EXPORT_BATCH)   # pg.Connection
            return
        cur = self.db.execute(statement)
        while rows := cur.fetchmany(EXPORT_BATCH):
            yield rows

    @contextmanager
    def tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; a nested call is a savepoint that rolls back on its own.

        ``durable=False`` (bookkeeping after an effect: "sent", "moved", "copied", attempt
        counters) commits without waiting for the disk: it survives a killed process, and only a
        power cut could lose it — then a reply may go out once more, as after a crash between
        SMTP and the commit. Decisions (numbers, outcomes, queued replies) are always durable.
        """
        if self._depth:
            name = f"sp{self._depth}"
            self.db.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            else:
                self.db.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        if not durable and self.dialect == "sqlite":
            self.db.execute("PRAGMA synchronous=NORMAL")
        self._begin()
        if not durable and self.dialect == "postgresql":
            self.db.execute("SET LOCAL synchronous_commit TO off")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0
            if not durable and self.dialect == "sqlite":
                self.db.execute("PRAGMA synchronous=FULL")

    # ------------------------------------------------------------------ meta

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str | None) -> None:
        with self.tx() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=?",
                           (key, value, value))

    # ------------------------------------------------------------------ events

    def event(self, at: datetime, level: str, kind: str, text: str) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO events (at, level, kind, text) VALUES (?,?,?,?)", (iso(at), level, kind, text))

    # ------------------------------------------------------------------ alerts

    def alert_last_at(self, key: str) -> str | None:
        """When the alert with this key last went out (ISO), or None if never."""
        row = self.db.execute("SELECT last_at FROM alerts WHERE key=?", (key,)).fetchone()
        return row["last_at"] if row else None

    def record_alert(self, key: str, now: datetime, text: str) -> None:
        """The alert with this key goes out now, with this text."""
        self.db.execute("INSERT INTO alerts (key, last_at, text) VALUES (?,?,?) ON CONFLICT (key) "
                        "DO UPDATE SET last_at=excluded.last_at, text=excluded.text", (key, iso(now), text))
