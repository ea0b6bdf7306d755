"""Schema: the tables as the round-1 release made them, and every change since as a versioned
migration (``PRAGMA user_version``), run in order in one transaction by ``db.Database``.

Owns: ``BASE_SCHEMA`` (user_version 2, never edited), ``MIGRATIONS`` (version -> SQL or a
function; one that has shipped is never edited: the next change is the next version) and
``SCHEMA_VERSION``.
"""
from __future__ import annotations

import re
import sqlite3
from typing import Callable

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


def postgresql(db) -> bool:
    """Whether a migration runs on PostgreSQL (``pg.Connection``) rather than SQLite. The same
    migrations run on both: the statements are written once (``pg.translate`` turns the column
    types and the few SQLite forms into PostgreSQL's); only triggers and the search index, which
    the two write differently, have a PostgreSQL text of their own next to SQLite's."""
    return not isinstance(db, sqlite3.Connection)


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


# finding cases by a name, an address or words of a subject (the console's search): an FTS5 index of
# trigrams — Thai has no spaces between words, and any three letters of a name find it, as LIKE
# did, without reading every case. Kept in step by triggers; SQLite without FTS5 or its trigram
# tokenizer (older than 3.34) keeps no index, and the search reads the table as before.
CASES_FTS = """
    CREATE VIRTUAL TABLE cases_fts USING fts5(sender_name, sender_addr, subject, content='cases',
        content_rowid='id', tokenize='trigram');
    CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN
        INSERT INTO cases_fts (rowid, sender_name, sender_addr, subject)
        VALUES (new.id, new.sender_name, new.sender_addr, new.subject);
    END;
    CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN
        INSERT INTO cases_fts (cases_fts, rowid, sender_name, sender_addr, subject)
        VALUES ('delete', old.id, old.sender_name, old.sender_addr, old.subject);
    END;
    CREATE TRIGGER cases_fts_update AFTER UPDATE OF sender_name, sender_addr, subject ON cases BEGIN
        INSERT INTO cases_fts (cases_fts, rowid, sender_name, sender_addr, subject)
        VALUES ('delete', old.id, old.sender_name, old.sender_addr, old.subject);
        INSERT INTO cases_fts (rowid, sender_name, sender_addr, subject)
        VALUES (new.id, new.sender_name, new.sender_addr, new.subject);
    END;
    INSERT INTO cases_fts (cases_fts) VALUES ('rebuild');
"""


# PostgreSQL: pg_trgm's GIN indexes answer the same LIKE searches (any three letters of a name)
# from an index. Without the extension (a host that may not create it) there is no index, as in a
# SQLite without FTS5, and the search reads the table.
CASES_TRGM_PG = """
    CREATE INDEX cases_trgm_name ON cases USING gin (sender_name {ext}.gin_trgm_ops);
    CREATE INDEX cases_trgm_addr ON cases USING gin (sender_addr {ext}.gin_trgm_ops);
    CREATE INDEX cases_trgm_subject ON cases USING gin (subject {ext}.gin_trgm_ops);
"""


def _v17(db: sqlite3.Connection) -> None:
    if postgresql(db):
        if db.execute("SELECT 1 FROM pg_extension WHERE extname='pg_trgm'").fetchone() is None:
            db.execute("SAVEPOINT trgm")
            try:
                db.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            except Exception:   # noqa: BLE001 - not allowed here, or made by another tenant just now
                db.execute("ROLLBACK TO trgm")
            db.execute("RELEASE trgm")
        found = db.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname='pg_trgm'").fetchone()
        if found is None:
            return
        db.script(CASES_TRGM_PG.format(ext=found[0]))  # type: ignore[attr-defined]
        return
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts_probe USING fts5(x, tokenize='trigram')")
        db.execute("DROP TABLE temp.fts_probe")
    except sqlite3.OperationalError:      # no FTS5 or no trigram tokenizer in this SQLite: no index
        return
    run_script(db, CASES_FTS)


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
            from datetime import datetime

            from ..thai import thai_date_short

            text += " " + thai_date_short(datetime.fromisoformat(sent_at))
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
    """)
    if postgresql(db):
        db.script(AUDIT_AND_CASES_FIXED_PG)  # type: ignore[attr-defined]
    else:
        run_script(db, """
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
    from .chain import start_chain

    start_chain(db)


# the same rules in PostgreSQL: the audit log is append-only (also against TRUNCATE, which SQLite
# does not have), and a registered number, its date of receipt and its subject never change
AUDIT_AND_CASES_FIXED_PG = """
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
    CREATE FUNCTION cases_number_date_subject_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.receipt IS DISTINCT FROM NEW.receipt OR OLD.year_be IS DISTINCT FROM NEW.year_be
           OR OLD.seq IS DISTINCT FROM NEW.seq OR OLD.received_at IS DISTINCT FROM NEW.received_at
           OR OLD.subject IS DISTINCT FROM NEW.subject THEN
            RAISE EXCEPTION 'a registered number, date of receipt and subject never change'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER cases_number_date_subject_fixed BEFORE UPDATE OF receipt, year_be, seq, received_at, subject
        ON cases FOR EACH ROW EXECUTE FUNCTION cases_number_date_subject_fixed();
"""

# migration 9 in PostgreSQL: the verdict read from the checklist's JSON (none when it is not JSON)
CHECKLIST_VERDICT_PG = """
    ALTER TABLE cases ADD COLUMN checklist_verdict TEXT;
    CREATE FUNCTION checklist_verdict(doc TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN CASE WHEN jsonb_typeof(doc::jsonb) = 'object' THEN doc::jsonb ->> 'verdict' END;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END $$;
    UPDATE cases SET checklist_verdict = checklist_verdict(checklist);
    CREATE FUNCTION cases_checklist_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.checklist_verdict := checklist_verdict(NEW.checklist);
        RETURN NEW;
    END $$;
    CREATE TRIGGER cases_checklist_verdict BEFORE INSERT OR UPDATE OF checklist ON cases
        FOR EACH ROW EXECUTE FUNCTION cases_checklist_verdict();
    CREATE INDEX cases_checklist_verdict ON cases (status, received_at) WHERE checklist_verdict='unsure';
    DROP INDEX IF EXISTS cases_unsure;
"""


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


def _v9(db: sqlite3.Connection) -> None:
    """The checklist's verdict in a column of its own (``cases.checklist_verdict``), so that the
    console finds the cases whose documents an officer must check without reading the JSON's
    text (migration 7's ``cases_unsure`` matched ``{"verdict": "unsure"`` at the start: it held
    only while ``verdict`` was the first key written). Triggers keep the column in step with
    ``cases.checklist`` whoever writes it; a checklist that is not valid JSON has no verdict."""
    if postgresql(db):
        db.script(CHECKLIST_VERDICT_PG)  # type: ignore[attr-defined]
        return
    # json_valid/json_extract: SQLite's JSON functions, built in since SQLite 3.38 (and in
    # Python's own SQLite builds before that)
    run_script(db, """
        ALTER TABLE cases ADD COLUMN checklist_verdict TEXT;
        UPDATE cases SET checklist_verdict = json_extract(checklist, '$.verdict') WHERE json_valid(checklist);
        CREATE TRIGGER cases_checklist_verdict_insert AFTER INSERT ON cases
            BEGIN UPDATE cases SET checklist_verdict = CASE WHEN json_valid(NEW.checklist)
                THEN json_extract(NEW.checklist, '$.verdict') END WHERE id = NEW.id; END;
        CREATE TRIGGER cases_checklist_verdict_update AFTER UPDATE OF checklist ON cases
            BEGIN UPDATE cases SET checklist_verdict = CASE WHEN json_valid(NEW.checklist)
                THEN json_extract(NEW.checklist, '$.verdict') END WHERE id = NEW.id; END;
        CREATE INDEX cases_checklist_verdict ON cases (status, received_at) WHERE checklist_verdict='unsure';
        DROP INDEX IF EXISTS cases_unsure;
    """)


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
    9: _v9,
    # a message's observed failures apart from the runs that were cut off while working on it
    # (a kill from outside is not the message's fault): failures, interruptions, the attempt open
    10: """
        ALTER TABLE messages ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN attempt_open INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN attempt_alone INTEGER NOT NULL DEFAULT 0;
        UPDATE messages SET failures = 1 WHERE outcome IS NULL AND last_error IS NOT NULL;
    """,
    # the thread a reply answers (the first Message-ID of its References): replies are capped per thread
    11: """
        ALTER TABLE outbox ADD COLUMN thread TEXT;
        CREATE INDEX outbox_thread ON outbox (thread, created_at) WHERE thread IS NOT NULL;
    """,
    # console passwords as werkzeug.security writes them ("scrypt:32768:8:1$salt$hash"); the
    # hand-made scrypt columns stay for accounts made before, until their next sign-in
    12: "ALTER TABLE officers ADD COLUMN password_hash TEXT;",
    # forwards to units waiting for their stamped copies (made outside the batch and the work lock)
    13: """
        CREATE TABLE forwards_wanted (
            id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, targets TEXT NOT NULL, actor TEXT NOT NULL,
            created_at TEXT NOT NULL, done_at TEXT);
        CREATE INDEX forwards_wanted_open ON forwards_wanted (done_at) WHERE done_at IS NULL;
    """,
    # the requester's title (นาย, นาง, นางสาว, a rank) as the officer set it: the letter's เรียน and the
    # licence register name them with it (none: the title their name carries, else คุณ)
    14: "ALTER TABLE cases ADD COLUMN sender_title TEXT;",
    # alerts pushed to LINE (alerts.line): each text owed to one group or user, recorded with the
    # alert (intent before effect); a push takes several owed texts under one X-Line-Retry-Key, fixed
    # before the request is made, so a push retried after a crash or a timeout is delivered once
    15: """
        CREATE TABLE line_outbox (
            id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, recipient TEXT NOT NULL,
            text TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
            push_key TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, sent_at TEXT,
            last_error TEXT);
        CREATE INDEX line_outbox_owed ON line_outbox (status, id) WHERE status = 'queued';
        CREATE INDEX line_outbox_sent ON line_outbox (sent_at) WHERE sent_at IS NOT NULL;
    """,
    # the console's sign-in sessions, kept across a restart of the console or the service (before: in
    # memory, so a restart signed everyone out): the token is stored only as its SHA-256, so a copy of
    # the database opens no session; ``expires`` is a Unix time; the flash messages wait here too
    16: """
        CREATE TABLE console_sessions (
            token_hash TEXT PRIMARY KEY, csrf TEXT NOT NULL, officer TEXT, expires REAL NOT NULL,
            flashes TEXT NOT NULL DEFAULT '[]');
        CREATE INDEX console_sessions_expires ON console_sessions (expires);
    """,
    17: lambda db: _v17(db),
    # the language the requester wrote in (mail/language.py): "en" gets the replies English first;
    # none (every case before) is Thai
    18: "ALTER TABLE cases ADD COLUMN language TEXT;",
    # a mailbox read through Microsoft Graph (mail/graph.py; store/graph.py): each folder mailbot has
    # seen (Graph's id, the UIDVALIDITY mailbot gives it, the delta link its next delta query starts
    # from) and each message in it, its immutable id given a UID that only grows (AUTOINCREMENT:
    # never used twice), so that the ledger keys a Graph message as it keys an IMAP one
    19: """
        CREATE TABLE graph_folders (
            account TEXT NOT NULL, folder_id TEXT NOT NULL, name TEXT NOT NULL, uidvalidity INTEGER NOT NULL,
            delta_link TEXT, synced_at TEXT, PRIMARY KEY (account, folder_id));
        CREATE TABLE graph_items (
            uid INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, folder_id TEXT NOT NULL,
            item_id TEXT NOT NULL, received_at TEXT, sha256 TEXT, size INTEGER,
            gone INTEGER NOT NULL DEFAULT 0);
        CREATE UNIQUE INDEX graph_items_present ON graph_items (account, folder_id, item_id) WHERE gone = 0;
        CREATE INDEX graph_items_folder ON graph_items (account, folder_id, gone, uid);
        CREATE INDEX graph_items_item ON graph_items (account, item_id);
        CREATE INDEX graph_items_sha ON graph_items (account, sha256) WHERE sha256 IS NOT NULL;
    """,
    # the officer's first hour (setup/, console/setup.py): each setup step done, when, by whom, and
    # what it was done for (the mailbox test: the servers and account it passed with, so that a
    # change of them asks for the test again); and which officers may change settings (with accounts,
    # only an administrator: the oldest account of an office that already has some)
    20: """
        CREATE TABLE setup_steps (
            step TEXT PRIMARY KEY, done_at TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
        ALTER TABLE officers ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
        UPDATE officers SET admin = 1 WHERE name = (SELECT name FROM officers ORDER BY created_at, name LIMIT 1);
    """,
    # the console's case list filtered by service and status (the filter officers use most): counted
    # from the index alone and listed newest first without a sort (bench/console.py: 10.5 ms -> 0.2 ms
    # at 100,000 cases)
    21: "CREATE INDEX cases_service_status ON cases (service_code, status, year_be, seq);",
    # the messages about one case: its page, the follow-up cap, and whether a later reply about it
    # was queued before an earlier one's fate is recorded (outbox.Outbox._shows_in_column); each was
    # a scan of the whole outbox
    22: "CREATE INDEX outbox_case ON outbox (case_id, id);",
    # when mailbot first started work on a message (store/ledger.py start_attempts): a message the
    # server gives no arrival time (no INTERNALDATE) counts as received then, on every later attempt
    # too, so a retry in the next month neither archives it again there nor registers a later date
    23: "ALTER TABLE messages ADD COLUMN first_seen TEXT;",
}
SCHEMA_VERSION = max(MIGRATIONS)
