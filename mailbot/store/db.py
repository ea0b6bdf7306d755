"""State (SQLite): the source of truth. Every write is inside a transaction.

Owns: the ledger of server messages keyed on (account, folder, UIDVALIDITY, UID) with
their Message-ID and content hash; cases with their receipt numbers (one counter per
Buddhist-Era year); the outbox of replies with fixed Message-IDs; the events officers may
need to know about. Excel registers are views rebuilt from here.

Timestamps are stored as ISO-8601 UTC strings so they compare as text.
"""
from __future__ import annotations

import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from ..errors import MailbotError
from ..registers import audit

# The round-1 schema (user_version 2), kept as it was: every later change is a migration below.
BASE_VERSION = 2
BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    account TEXT NOT NULL, folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL,
    seen_at TEXT NOT NULL, PRIMARY KEY (account, folder));
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL, folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    message_id TEXT, content_hash TEXT, sha256 TEXT, archive TEXT, size INTEGER,
    received_at TEXT, sender TEXT, subject TEXT,
    outcome TEXT, reason TEXT, case_id INTEGER, duplicate_of INTEGER,
    target_folder TEXT, moved INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, decided_at TEXT,
    UNIQUE (account, folder, uidvalidity, uid));
CREATE INDEX IF NOT EXISTS messages_hash ON messages (content_hash);
CREATE INDEX IF NOT EXISTS messages_mid ON messages (message_id);
CREATE INDEX IF NOT EXISTS messages_pending ON messages (moved, outcome);
CREATE TABLE IF NOT EXISTS counters (year_be INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    receipt TEXT NOT NULL UNIQUE, year_be INTEGER NOT NULL, seq INTEGER NOT NULL,
    message_row INTEGER NOT NULL, received_at TEXT NOT NULL, doc_date TEXT,
    sender_name TEXT, sender_addr TEXT, reply_to TEXT, subject TEXT,
    service_code TEXT, service_name TEXT, status TEXT NOT NULL, action TEXT, remark TEXT,
    message_id TEXT, attachments INTEGER NOT NULL DEFAULT 0, archive TEXT, sha256 TEXT,
    reply_status TEXT, via TEXT, awaiting_since TEXT, reminded_at TEXT, checklist TEXT, location TEXT,
    UNIQUE (year_be, seq));
CREATE INDEX IF NOT EXISTS cases_status ON cases (status);
CREATE TABLE IF NOT EXISTS case_files (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, message_row INTEGER, name TEXT NOT NULL,
    size INTEGER NOT NULL, content_type TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_files_case ON case_files (case_id);
CREATE INDEX IF NOT EXISTS cases_mid ON cases (message_id);
CREATE TABLE IF NOT EXISTS case_events (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    note TEXT, message_row INTEGER, actor TEXT);
CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    case_id INTEGER, message_row INTEGER, recipient TEXT NOT NULL, subject TEXT,
    raw BLOB NOT NULL, status TEXT NOT NULL, hold_reason TEXT,
    created_at TEXT NOT NULL, sent_at TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, copied INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status);
CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox (recipient, created_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, level TEXT NOT NULL, kind TEXT NOT NULL, text TEXT);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, sha256 TEXT NOT NULL UNIQUE, file_name TEXT NOT NULL,
    original TEXT, signed TEXT, level TEXT, outcome TEXT, signed_at TEXT NOT NULL, outbox_message_id TEXT,
    timestamp_pending INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS licences (
    id INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, year_be INTEGER NOT NULL, seq INTEGER NOT NULL,
    holder TEXT, activity TEXT, location TEXT, issued TEXT NOT NULL, expires TEXT, receipt TEXT NOT NULL,
    case_id INTEGER NOT NULL, UNIQUE (year_be, seq));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, last_at TEXT NOT NULL, text TEXT);
CREATE TABLE IF NOT EXISTS register_dirty (year_be INTEGER PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS register_dirty_cases (case_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS register_rows (
    case_id INTEGER PRIMARY KEY, year_be INTEGER NOT NULL, seq INTEGER NOT NULL, xml TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS register_rows_year ON register_rows (year_be, seq);
"""


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of a script, inside the caller's transaction (executescript would commit)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            db.execute(buffer)
            buffer = ""
    if buffer.strip():
        db.execute(buffer)


def _v3(db: sqlite3.Connection) -> None:
    """Results are keyed by (file content, case); their delivery has a status. Thai-only
    reply-column texts (round 1 wrote "ส่งแล้ว / sent"); result e-mails that went out no longer
    read "queued"."""
    run_script(db, """
        CREATE TABLE results_v3 (
            id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, sha256 TEXT NOT NULL, file_name TEXT NOT NULL,
            original TEXT, signed TEXT, level TEXT, outcome TEXT, signed_at TEXT NOT NULL, outbox_message_id TEXT,
            timestamp_pending INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'queued',
            UNIQUE (sha256, case_id));
        INSERT INTO results_v3 (id, case_id, sha256, file_name, original, signed, level, outcome, signed_at,
                                outbox_message_id, timestamp_pending, status)
            SELECT r.id, r.case_id, r.sha256, r.file_name, r.original, r.signed, r.level, r.outcome, r.signed_at,
                   r.outbox_message_id, r.timestamp_pending,
                   coalesce((SELECT o.status FROM outbox o WHERE o.kind='result' AND o.case_id=r.case_id
                             ORDER BY o.id DESC LIMIT 1), 'queued')
            FROM results r;
        DROP TABLE results;
        ALTER TABLE results_v3 RENAME TO results;
        CREATE INDEX results_mid ON results (outbox_message_id);
        ALTER TABLE messages ADD COLUMN environment_errors INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX IF NOT EXISTS messages_outcome ON messages (outcome);
    """)
    for case_id, in db.execute("SELECT id FROM cases").fetchall():
        last = db.execute("SELECT status, sent_at FROM outbox WHERE case_id=? AND kind NOT IN ('forward') "
                          "ORDER BY id DESC LIMIT 1", (case_id,)).fetchone()
        if last is None:
            continue
        status, sent_at = last
        text = {"sent": "ส่งแล้ว", "queued": "รอส่ง", "held": "ระงับไว้ รอเจ้าหน้าที่", "failed": "ส่งไม่สำเร็จ",
                "bounced": "ส่งอีเมลไม่สำเร็จ (ตีกลับ)"}.get(status)
        if text is None:
            continue
        if status == "sent" and sent_at:
            from ..thai import thai_date_short

            text += " " + thai_date_short(from_iso(sent_at))
        db.execute("UPDATE cases SET reply_status=? WHERE id=? AND reply_status IS NOT NULL "
                   "AND reply_status NOT LIKE 'ไม่%'", (text, case_id))
        db.execute("INSERT OR IGNORE INTO register_dirty_cases (case_id) VALUES (?)", (case_id,))
    for (year,) in db.execute("SELECT DISTINCT year_be FROM cases").fetchall():
        db.execute("INSERT INTO register_dirty (year_be, version) VALUES (?, 1) "
                   "ON CONFLICT (year_be) DO UPDATE SET version = version + 1", (year,))


def _v6(db: sqlite3.Connection) -> None:
    """Registers as the regulation writes them: cancellation, the dispatch register, service
    times, and an append-only audit log whose hash chain starts from what is already there."""
    run_script(db, """
        ALTER TABLE cases ADD COLUMN cancelled_at TEXT;
        ALTER TABLE cases ADD COLUMN cancelled_by TEXT;
        ALTER TABLE cases ADD COLUMN cancel_reason TEXT;
        ALTER TABLE cases ADD COLUMN due_date TEXT;
        ALTER TABLE cases ADD COLUMN late_notified_at TEXT;
        ALTER TABLE cases ADD COLUMN delay_reason TEXT;
        ALTER TABLE cases ADD COLUMN expected_date TEXT;
        ALTER TABLE cases ADD COLUMN decided_at TEXT;
        CREATE INDEX cases_due ON cases (due_date);
        CREATE TABLE dispatches (
            id INTEGER PRIMARY KEY, year_be INTEGER NOT NULL, seq INTEGER NOT NULL, number TEXT NOT NULL,
            dated TEXT NOT NULL, recipient TEXT, recipient_name TEXT, subject TEXT NOT NULL, action TEXT,
            remark TEXT, case_id INTEGER, receipt TEXT, kind TEXT NOT NULL, sha256 TEXT, file_name TEXT,
            outbox_message_id TEXT, cancelled_at TEXT, cancel_reason TEXT, UNIQUE (year_be, seq));
        CREATE INDEX dispatches_case ON dispatches (case_id, sha256);
        CREATE TABLE dispatch_counters (year_be INTEGER PRIMARY KEY, last INTEGER NOT NULL);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, ref TEXT,
            detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER cases_number_date_subject_fixed BEFORE UPDATE OF receipt, year_be, seq, received_at, subject
            ON cases
            WHEN OLD.receipt IS NOT NEW.receipt OR OLD.year_be IS NOT NEW.year_be OR OLD.seq IS NOT NEW.seq
                 OR OLD.received_at IS NOT NEW.received_at OR OLD.subject IS NOT NEW.subject
            BEGIN SELECT RAISE(ABORT, 'a registered number, date of receipt and subject never change'); END;
    """)
    from ..registers.audit import start_chain

    start_chain(db)


# the name archive.Archive.quarantine gives a copy: quarantine/<BE date>-<time>-uid<uid>.eml
_OWN_QUARANTINE_COPY = re.compile(r"\(copy: (quarantine/[0-9]{8}-[0-9]{6}-uid[0-9]+\.eml)\)$")


def _v8(db: sqlite3.Connection) -> None:
    """The quarantine copy's path in a column of its own: prune and the console never read a path
    out of a reason's text (an automatic mail's reason holds the sender's own header value).
    Rows written before: only a quarantined message's reason ends with mailbot's own suffix, and
    only a name in mailbot's own pattern is taken; anything else stays unknown."""
    db.execute("ALTER TABLE messages ADD COLUMN quarantine_copy TEXT")
    # intent before effect for sending: set when a message is handed to the SMTP server, cleared
    # when its answer is recorded; found set, the attempt was interrupted (see Outbox.deliver)
    db.execute("ALTER TABLE outbox ADD COLUMN send_started_at TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0")
    rows = db.execute("SELECT id, reason FROM messages WHERE outcome='quarantined' AND reason LIKE '%(copy: %'")
    for row_id, reason in rows.fetchall():
        m = _OWN_QUARANTINE_COPY.search(reason or "")
        if m:
            db.execute("UPDATE messages SET quarantine_copy=? WHERE id=?", (m.group(1), row_id))


# Versioned migrations: version -> change (SQL or a function), run in order in one transaction,
# after a copy of the file is kept. Never edit one that has shipped; add the next.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None] | str] = {
    3: _v3,
    # the licence holder named with `results letter --holder` (else the requester's name)
    4: "ALTER TABLE cases ADD COLUMN holder TEXT;",
    # trust and triage: the case a request named, why its reply is held, urgency and secrecy
    5: """
        ALTER TABLE cases ADD COLUMN linked_to TEXT;
        ALTER TABLE cases ADD COLUMN held TEXT;
        ALTER TABLE cases ADD COLUMN urgency TEXT;
        ALTER TABLE cases ADD COLUMN urgency_rank INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE cases ADD COLUMN deadline TEXT;
        ALTER TABLE cases ADD COLUMN secrecy TEXT;
        CREATE INDEX IF NOT EXISTS cases_sender_day ON cases (sender_addr, received_at);
        CREATE INDEX IF NOT EXISTS cases_urgency ON cases (urgency_rank, received_at);
    """,
    6: _v6,
    # the officer's console: officer accounts (scrypt), items an officer marked as dealt with,
    # and the indexes its pages need to stay fast with 100,000 cases
    7: """
        CREATE TABLE officers (
            name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL,
            n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL,
            created_at TEXT NOT NULL, changed_at TEXT NOT NULL);
        CREATE TABLE acknowledged (
            kind TEXT NOT NULL, ref INTEGER NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
            PRIMARY KEY (kind, ref));
        CREATE INDEX messages_case ON messages (case_id);
        CREATE INDEX messages_received ON messages (received_at);
        CREATE INDEX cases_received ON cases (received_at);
        CREATE INDEX cases_status_seq ON cases (status, year_be, seq);
        CREATE INDEX cases_service_seq ON cases (service_code, year_be, seq);
        CREATE INDEX cases_status_due ON cases (status, due_date);
        CREATE INDEX cases_unclassified ON cases (status, received_at) WHERE service_code IS NULL;
        CREATE INDEX cases_held ON cases (status, received_at) WHERE held IS NOT NULL;
        CREATE INDEX cases_unsure ON cases (status, received_at) WHERE checklist LIKE '{"verdict": "unsure"%';
    """,
    8: _v8,
}
SCHEMA_VERSION = max(MIGRATIONS)


def iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Ledger:
    id: int
    uid: int
    outcome: str | None
    target_folder: str | None
    moved: bool
    attempts: int
    last_error: str | None


class State:
    """One SQLite database under the data folder."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # durable before any reply leaves
        self.db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self.created = False        # made just now (a lost or new database)
        self.migrated_from: int | None = None
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise

    def _open(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise MailbotError(
                f"ฐานข้อมูล {self.path} มาจาก mailbot รุ่นใหม่กว่า (แบบที่ {version}) ใช้กับรุ่นนี้ไม่ได้ "
                "ให้ติดตั้ง mailbot รุ่นเดียวกับที่สร้างข้อมูล",
                f"the state database {self.path} comes from a newer mailbot (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); install that version again",
            )
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
            if self.created:
                run_script(self.db, BASE_SCHEMA)
                version = BASE_VERSION
            for target in range(version + 1, SCHEMA_VERSION + 1):
                step = MIGRATIONS[target]
                if callable(step):
                    step(self.db)
                else:
                    run_script(self.db, step)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            if self.created:   # a new or lost database: numbers issued before must be looked for
                self.db.execute("INSERT INTO meta (key, value) VALUES ('recovery_pending', 'created')")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _keep_copy(self, version: int) -> Path:
        """A copy of the database as it was, before a migration touches it."""
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
        if not durable:
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("BEGIN IMMEDIATE")
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
            if not durable:
                self.db.execute("PRAGMA synchronous=FULL")

    # ------------------------------------------------------------------ folders

    def check_uidvalidity(self, account: str, folder: str, uidvalidity: int, now: datetime) -> int | None:
        """Remember the folder's UIDVALIDITY; return the old value if it changed."""
        with self.tx() as db:
            row = db.execute(
                "SELECT uidvalidity FROM folders WHERE account=? AND folder=?", (account, folder)
            ).fetchone()
            if row is None:
                db.execute("INSERT INTO folders VALUES (?,?,?,?)", (account, folder, uidvalidity, iso(now)))
                return None
            db.execute(
                "UPDATE folders SET uidvalidity=?, seen_at=? WHERE account=? AND folder=?",
                (uidvalidity, iso(now), account, folder),
            )
            return row["uidvalidity"] if row["uidvalidity"] != uidvalidity else None

    # ------------------------------------------------------------------ ledger

    def ledger(self, account: str, folder: str, uidvalidity: int, uids: list[int]) -> dict[int, Ledger]:
        """What the ledger knows of these UIDs (looked up in chunks, not the whole history)."""
        out: dict[int, Ledger] = {}
        for i in range(0, len(uids), 500):
            chunk = uids[i:i + 500]
            rows = self.db.execute(
                "SELECT id, uid, outcome, target_folder, moved, attempts, last_error FROM messages "
                f"WHERE account=? AND folder=? AND uidvalidity=? AND uid IN ({','.join('?' * len(chunk))})",
                (account, folder, uidvalidity, *chunk),
            ).fetchall()
            for r in rows:
                out[r["uid"]] = Ledger(r["id"], r["uid"], r["outcome"], r["target_folder"], bool(r["moved"]),
                                       r["attempts"], r["last_error"])
        return out

    def start_attempts(self, account: str, folder: str, uidvalidity: int, uids: list[int]) -> None:
        """Record intent before work: each UID's attempt counter goes up by one, durably."""
        with self.tx(durable=False) as db:
            db.executemany(
                "INSERT INTO messages (account, folder, uidvalidity, uid, attempts) VALUES (?,?,?,?,1) "
                "ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET attempts = attempts + 1",
                [(account, folder, uidvalidity, u) for u in uids],
            )

    def leave_alone(self, account: str, folder: str, uidvalidity: int, uids: list[int], now: str) -> None:
        """Messages older than imap.since: in the ledger as 'before_since', never fetched or moved."""
        with self.tx() as db:
            db.executemany(
                "INSERT INTO messages (account, folder, uidvalidity, uid, outcome, moved, reason) "
                "VALUES (?,?,?,?, 'before_since', 1, ?) "
                "ON CONFLICT (account, folder, uidvalidity, uid) DO NOTHING",
                [(account, folder, uidvalidity, u, f"older than imap.since (seen {now})") for u in uids])

    def release_attempts(self, row_ids: list[int]) -> None:
        """A failure of the machine (disk full, no permission, database locked) is not the
        messages' fault: their attempt counters go back down."""
        with self.tx(durable=False) as db:
            db.executemany("UPDATE messages SET attempts=max(0, attempts-1), "
                           "environment_errors=environment_errors+1 WHERE id=? AND outcome IS NULL",
                           [(i,) for i in row_ids])

    def row_id(self, account: str, folder: str, uidvalidity: int, uid: int) -> int:
        return self.db.execute(
            "SELECT id FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
            (account, folder, uidvalidity, uid),
        ).fetchone()["id"]

    def record_message(self, row_id: int, **fields: object) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE messages SET {cols} WHERE id=?", (*fields.values(), row_id))

    def find_duplicate(self, row_id: int, content_hash: str, message_id: str | None, sender: str | None) -> sqlite3.Row | None:
        """The first decided message with the same content (or same Message-ID from the same sender)."""
        row = self.db.execute(
            "SELECT * FROM messages WHERE content_hash=? AND id<>? AND outcome IS NOT NULL "
            "AND outcome <> 'before_since' AND duplicate_of IS NULL ORDER BY id LIMIT 1",
            (content_hash, row_id),
        ).fetchone()
        if row is None and message_id:
            row = self.db.execute(
                "SELECT * FROM messages WHERE message_id=? AND id<>? AND outcome IS NOT NULL "
                "AND outcome <> 'before_since' AND duplicate_of IS NULL AND lower(coalesce(sender,''))=lower(?) "
                "ORDER BY id LIMIT 1",
                (message_id, row_id, sender or ""),
            ).fetchone()
        return row

    def unmoved(self, account: str, folder: str, uidvalidity: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, uid, target_folder FROM messages WHERE account=? AND folder=? AND uidvalidity=? "
            "AND outcome IS NOT NULL AND moved=0",
            (account, folder, uidvalidity),
        ).fetchall()

    def mark_moved(self, row_ids: list[int]) -> None:
        with self.tx(durable=False) as db:
            db.executemany("UPDATE messages SET moved=1 WHERE id=?", [(i,) for i in row_ids])

    # ------------------------------------------------------------------ cases

    def next_receipt(self, year_be: int) -> int:
        return self.db.execute(
            "INSERT INTO counters (year_be, last) VALUES (?, 1) "
            "ON CONFLICT (year_be) DO UPDATE SET last = last + 1 RETURNING last",
            (year_be,),
        ).fetchone()[0]

    def new_case(self, year_be: int, **fields: object) -> sqlite3.Row:
        seq = self.next_receipt(year_be)
        receipt = f"{seq}/{year_be}"
        cols = ["receipt", "year_be", "seq", *fields]
        cur = self.db.execute(
            f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            (receipt, year_be, seq, *fields.values()),
        )
        self.mark_dirty(year_be, cur.lastrowid)
        case = self.case(receipt)
        assert case is not None         # inserted just above, in this transaction
        audit.append(self.db, case["received_at"], "mailbot", "registered", receipt, audit.registration(case))
        return case

    def insert_case(self, year_be: int, seq: int, **fields: object) -> sqlite3.Row:
        """A case whose number was issued already (rebuilt after a lost or restored database)."""
        receipt = f"{seq}/{year_be}"
        cols = ["receipt", "year_be", "seq", *fields]
        cur = self.db.execute(
            f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            (receipt, year_be, seq, *fields.values()),
        )
        self.raise_floor(year_be, seq)
        self.mark_dirty(year_be, cur.lastrowid)
        case = self.case(receipt)
        assert case is not None         # inserted just above, in this transaction
        audit.append(self.db, case["received_at"], "mailbot", "recovered", receipt, audit.registration(case))
        return case

    def raise_floor(self, year_be: int, seq: int) -> None:
        """The year's counter never goes below a number known to be issued."""
        self.db.execute("INSERT INTO counters (year_be, last) VALUES (?, ?) "
                        "ON CONFLICT (year_be) DO UPDATE SET last = max(last, excluded.last)", (year_be, seq))

    def issued(self) -> dict[int, int]:
        """The highest number issued in each year, as this database knows it."""
        out = {r[0]: r[1] for r in self.db.execute("SELECT year_be, last FROM counters")}
        for year, top in self.db.execute("SELECT year_be, max(seq) FROM cases GROUP BY year_be"):
            out[year] = max(out.get(year, 0), top)
        return out

    def case(self, receipt: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM cases WHERE receipt=?", (receipt,)).fetchone()

    def case_by_id(self, case_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM cases WHERE id=?", (case_id,)).fetchone()

    def case_for_thread(self, message_ids: list[str]) -> tuple[sqlite3.Row | None, bool]:
        """The case a reply belongs to, by its threading headers; and whether they name our reply."""
        for mid in message_ids:
            row = self.db.execute(
                "SELECT case_id FROM outbox WHERE message_id=? AND case_id IS NOT NULL", (mid,)
            ).fetchone()
            if row:
                return self.case_by_id(row["case_id"]), True
        for mid in message_ids:
            ours = self.db.execute("SELECT 1 FROM outbox WHERE message_id=?", (mid,)).fetchone()
            row = self.db.execute("SELECT * FROM cases WHERE message_id=? ORDER BY id LIMIT 1", (mid,)).fetchone()
            if row:
                return row, bool(ours)
            if ours:
                return None, True
        return None, False

    def update_case(self, case_id: int, **fields: object) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE cases SET {cols} WHERE id=?", (*fields.values(), case_id))
        year = self.db.execute("SELECT year_be FROM cases WHERE id=?", (case_id,)).fetchone()[0]
        self.mark_dirty(year, case_id)

    def cases_of_year(self, year_be: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM cases WHERE year_be=? ORDER BY seq", (year_be,)).fetchall()

    # ------------------------------------------------------------------ register bookkeeping

    def mark_dirty(self, year_be: int, case_id: int | None = None) -> None:
        """The year's workbook must be rewritten; the case's row must be rendered again."""
        if case_id is not None:
            self.db.execute("INSERT OR IGNORE INTO register_dirty_cases (case_id) VALUES (?)", (case_id,))
        self.db.execute(
            "INSERT INTO register_dirty (year_be, version) VALUES (?, 1) "
            "ON CONFLICT (year_be) DO UPDATE SET version = version + 1",
            (year_be,),
        )

    def dirty_years(self) -> dict[int, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT year_be, version FROM register_dirty")}

    def clear_dirty(self, year_be: int, version: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM register_dirty WHERE year_be=? AND version=?", (year_be, version))

    # ------------------------------------------------------------------ outbox

    def queue_reply(self, *, message_id: str, kind: str, case_id: int | None, message_row: int | None,
                    recipient: str, subject: str, raw: bytes, status: str, hold_reason: str | None,
                    now: datetime) -> bool:
        """Put one composed message in the outbox; False when that Message-ID is there already."""
        cur = self.db.execute(
            "INSERT INTO outbox (message_id, kind, case_id, message_row, recipient, subject, raw, status, "
            "hold_reason, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (message_id) DO NOTHING",
            (message_id, kind, case_id, message_row, recipient.lower(), subject, raw, status, hold_reason, iso(now)),
        )
        return cur.rowcount > 0

    def replies_to_since(self, recipient: str, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Automatic replies owed or sent to one address since a moment (held ones and the
        given kinds excluded)."""
        kinds = sorted(exclude) or [""]
        return self.db.execute(
            "SELECT count(*) FROM outbox WHERE recipient=? AND created_at>=? AND status IN ('queued','sent') "
            f"AND kind NOT IN ({','.join('?' * len(kinds))})",
            (recipient.lower(), iso(since), *kinds),
        ).fetchone()[0]

    def sent_since(self, since: datetime, exclude: frozenset[str] = frozenset()) -> int:
        """Messages sent since a moment, not counting the given kinds."""
        kinds = sorted(exclude) or [""]
        marks = ",".join("?" * len(kinds))
        return self.db.execute(
            f"SELECT count(*) FROM outbox WHERE status='sent' AND sent_at>=? AND kind NOT IN ({marks})",
            (iso(since), *kinds),
        ).fetchone()[0]

    def followup_ack_since(self, case_id: int, since: datetime) -> bool:
        return self.db.execute(
            "SELECT 1 FROM outbox WHERE case_id=? AND kind='followup' AND created_at>=? LIMIT 1",
            (case_id, iso(since)),
        ).fetchone() is not None

    def queued(self, limit: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM outbox WHERE status='queued' ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.db.execute(sql).fetchall()

    def mark_sending(self, outbox_id: int, now: datetime, interrupted: int) -> None:
        """About to hand a message to the server (``interrupted``: earlier attempts cut off)."""
        with self.tx(durable=False) as db:
            db.execute("UPDATE outbox SET send_started_at=?, interrupted=? WHERE id=?", (iso(now), interrupted, outbox_id))

    def clear_sending(self, outbox_id: int, interrupted: int) -> None:
        """The attempt was seen to fail before the server took the message: not an interruption."""
        with self.tx(durable=False) as db:
            db.execute("UPDATE outbox SET send_started_at=NULL, interrupted=? WHERE id=?", (interrupted, outbox_id))

    def uncopied(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT id, raw FROM outbox WHERE status='sent' AND copied=0 ORDER BY id").fetchall()

    def mark_copied(self, outbox_ids: list[int]) -> None:
        with self.tx(durable=False) as db:
            db.executemany("UPDATE outbox SET copied=1 WHERE id=?", [(i,) for i in outbox_ids])

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
