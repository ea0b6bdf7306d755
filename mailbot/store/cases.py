"""Cases: receipt numbers (one counter per numbering year), cases, their events and files,
the results signed and mailed for them, and which register years need writing again.

Owns: the ``counters``, ``cases``, ``case_events``, ``case_files`` and ``results`` statements
the case desk and intake run, and the register bookkeeping (``register_dirty*``).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Iterable

from ..casework import workflow
from . import audit
from .audit import AuditStore
from .db import iso


def _marks(keys: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """Placeholders and their values for ``IN (...)`` over a set of keys (sorted: stable SQL)."""
    values = tuple(sorted(keys))
    return ",".join("?" * len(values)), values


class CaseStore(AuditStore):
    """The ``counters``, ``cases``, ``case_events``, ``case_files``, ``results`` and register
    bookkeeping tables."""

    # ------------------------------------------------------------------ cases

    def next_receipt(self, year_be: int) -> int:
        return self.db.execute(
            "INSERT INTO counters (year_be, last) VALUES (?, 1) "
            "ON CONFLICT (year_be) DO UPDATE SET last = counters.last + 1 RETURNING last",
            (year_be,),
        ).fetchone()[0]

    def new_case(self, year_be: int, **fields: object) -> sqlite3.Row:
        seq = self.next_receipt(year_be)
        receipt = f"{seq}/{year_be}"
        cols = ["receipt", "year_be", "seq", *fields]
        case_id = self.db.execute(
            f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) RETURNING id",
            (receipt, year_be, seq, *fields.values()),
        ).fetchone()[0]
        self.mark_dirty(year_be, case_id)
        case = self.case(receipt)
        assert case is not None         # inserted just above, in this transaction
        self.audit(case["received_at"], "mailbot", "registered", receipt, audit.registration(case))
        return case

    def insert_case(self, year_be: int, seq: int, **fields: object) -> sqlite3.Row:
        """A case whose number was issued already (rebuilt after a lost or restored database)."""
        receipt = f"{seq}/{year_be}"
        cols = ["receipt", "year_be", "seq", *fields]
        case_id = self.db.execute(
            f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) RETURNING id",
            (receipt, year_be, seq, *fields.values()),
        ).fetchone()[0]
        self.raise_floor(year_be, seq)
        self.mark_dirty(year_be, case_id)
        case = self.case(receipt)
        assert case is not None         # inserted just above, in this transaction
        self.audit(case["received_at"], "mailbot", "recovered", receipt, audit.registration(case))
        return case

    def raise_floor(self, year_be: int, seq: int) -> None:
        """The year's counter never goes below a number known to be issued."""
        self.db.execute("INSERT INTO counters (year_be, last) VALUES (?, ?) "
                        "ON CONFLICT (year_be) DO UPDATE SET last = max(counters.last, excluded.last)",
                        (year_be, seq))

    def issued(self) -> dict[int, int]:
        """The highest number issued in each year, as this database knows it."""
        out = {r[0]: r[1] for r in self.db.execute("SELECT year_be, last FROM counters")}
        for year, top in self.db.execute("SELECT year_be, max(seq) FROM cases GROUP BY year_be"):
            out[year] = max(out.get(year, 0), top)
        return out

    def want_forward(self, case_id: int, targets: list[str], actor: str, now: datetime) -> None:
        """A forward to be sent once its stamped copies are made (inside the caller's transaction)."""
        self.db.execute("INSERT INTO forwards_wanted (case_id, targets, actor, created_at) VALUES (?,?,?,?)",
                        (case_id, "\n".join(targets), actor, iso(now)))

    def forwards_wanted(self) -> list[sqlite3.Row]:
        """Forwards waiting for their stamped copies, oldest first."""
        return self.db.execute("SELECT * FROM forwards_wanted WHERE done_at IS NULL ORDER BY id").fetchall()

    def forward_done(self, wanted_id: int, now: datetime) -> None:
        self.db.execute("UPDATE forwards_wanted SET done_at=? WHERE id=?", (iso(now), wanted_id))

    def last_received(self) -> str | None:
        """When the newest case this database knows reached the mailbox (ISO), or None."""
        return self.db.execute("SELECT max(received_at) FROM cases").fetchone()[0]

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
        # the year whose register shows the row, read by the UPDATE itself (one statement, not two:
        # this runs two or three times for each registered message)
        year = self.db.execute(f"UPDATE cases SET {cols} WHERE id=? RETURNING year_be",
                               (*fields.values(), case_id)).fetchone()[0]
        self.mark_dirty(year, case_id)

    def cases_of_year(self, year_be: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM cases WHERE year_be=? ORDER BY seq", (year_be,)).fetchall()

    def cases_received_between(self, year_be: int, start: str, end: str) -> list[sqlite3.Row]:
        """The cases of a numbering year received in [start, end) (iso times), in number order."""
        return self.db.execute("SELECT * FROM cases WHERE year_be=? AND received_at>=? AND received_at<? ORDER BY seq",
                               (year_be, start, end)).fetchall()

    def clear_case_hold(self, case_id: int) -> None:
        """The case's receipt is no longer held (an officer vouched); its register row is left as it is."""
        self.db.execute("UPDATE cases SET held=NULL WHERE id=?", (case_id,))

    def receipt_of(self, case_id: int) -> str:
        """The receipt number of a case, by its id."""
        return self.db.execute("SELECT receipt FROM cases WHERE id=?", (case_id,)).fetchone()[0]

    def cases_from_sender_since(self, address: str, since: datetime) -> int:
        """How many cases an address (any letter case) opened since a moment."""
        return self.db.execute("SELECT count(*) FROM cases WHERE lower(sender_addr)=lower(?) AND received_at>=?",
                               (address, iso(since))).fetchone()[0]

    # ------------------------------------------------------------------ the case desk's clock

    def unheld_cases_in(self, status: str) -> list[sqlite3.Row]:
        """Cases in one status whose receipt is not held, oldest first."""
        return self.db.execute("SELECT * FROM cases WHERE status=? AND held IS NULL ORDER BY id",
                               (status,)).fetchall()

    def late_cases(self, today: str) -> list[sqlite3.Row]:
        """Unheld cases on the agency's clock (``workflow.AGENCY_CLOCK``) due before ``today``
        (ISO date), the most urgent first, then the earliest due."""
        marks, statuses = _marks(workflow.AGENCY_CLOCK)
        return self.db.execute(
            "SELECT * FROM cases WHERE due_date IS NOT NULL AND due_date < ? AND held IS NULL AND status IN "
            f"({marks}) ORDER BY urgency_rank DESC, due_date",
            (today, *statuses)).fetchall()

    def cases_due_by(self, until: str) -> list[sqlite3.Row]:
        """Cases on the agency's clock (``workflow.AGENCY_CLOCK``) due on or before ``until`` (ISO
        date), the most urgent first, then the earliest due."""
        marks, statuses = _marks(workflow.AGENCY_CLOCK)
        return self.db.execute(
            f"SELECT * FROM cases WHERE due_date IS NOT NULL AND due_date <= ? AND status IN "
            f"({marks}) ORDER BY urgency_rank DESC, due_date", (until, *statuses)).fetchall()

    def decided_open_cases(self) -> list[sqlite3.Row]:
        """Open cases (``workflow.OPEN``) with a decision (a result letter) recorded."""
        marks, statuses = _marks(workflow.OPEN)
        return self.db.execute(f"SELECT * FROM cases WHERE decided_at IS NOT NULL AND status IN ({marks})",
                               statuses).fetchall()

    # ------------------------------------------------------------------ case events and files

    def add_case_event(self, case_id: int, at: datetime, kind: str, note: str, *, actor: str | None,
                       message_row: int | None = None) -> int:
        """Insert one case event; returns its id."""
        cur = self.db.execute(
            "INSERT INTO case_events (case_id, at, kind, note, message_row, actor) VALUES (?,?,?,?,?,?) RETURNING id",
            (case_id, iso(at), kind, note, message_row, actor),
        ).fetchone()
        return cur[0]

    def case_events(self, case_id: int) -> list[sqlite3.Row]:
        """A case's events (at, kind, note, actor), oldest first."""
        return self.db.execute(
            "SELECT at, kind, note, actor FROM case_events WHERE case_id=? ORDER BY id", (case_id,)).fetchall()

    def add_case_files(self, case_id: int, message_row: int | None, files: Iterable[tuple[str, int, str | None]],
                       at: datetime) -> None:
        """Record the files (name, size, content type) a case received with one message."""
        self.db.executemany(
            "INSERT INTO case_files (case_id, message_row, name, size, content_type, at) VALUES (?,?,?,?,?,?)",
            [(case_id, message_row, name, size, content_type, iso(at)) for name, size, content_type in files],
        )

    def case_files(self, case_id: int) -> list[sqlite3.Row]:
        """The files a case received (name, size, content_type), in the order they came."""
        return self.db.execute(
            "SELECT name, size, content_type FROM case_files WHERE case_id=? ORDER BY id", (case_id,)).fetchall()

    # ------------------------------------------------------------------ results (a case's signed result mail)

    def result_of_file(self, sha256: str, case_id: int) -> sqlite3.Row | None:
        """The result already recorded for these bytes on this case, if any."""
        return self.db.execute("SELECT * FROM results WHERE sha256=? AND case_id=?", (sha256, case_id)).fetchone()

    def add_result(self, *, case_id: int, sha256: str, file_name: str, original: str, signed: str, level: str,
                   outcome: str, signed_at: datetime, timestamp_pending: bool) -> int:
        """Record a signed result, queued to be mailed; returns its id."""
        cur = self.db.execute(
            "INSERT INTO results (case_id, sha256, file_name, original, signed, level, outcome, signed_at, "
            "timestamp_pending, status) VALUES (?,?,?,?,?,?,?,?,?, 'queued') RETURNING id",
            (case_id, sha256, file_name, original, signed, level, outcome, iso(signed_at), int(timestamp_pending)),
        ).fetchone()
        return cur[0]

    def set_result_message(self, result_id: int, outbox_message_id: str) -> None:
        """The Message-ID of the mail that carries a result."""
        self.db.execute("UPDATE results SET outbox_message_id=? WHERE id=?", (outbox_message_id, result_id))

    def set_result_status(self, outbox_message_id: str, status: str) -> None:
        """What became of the mail carrying a result (``sent`` or ``failed``)."""
        self.db.execute("UPDATE results SET status=? WHERE outbox_message_id=?", (status, outbox_message_id))

    def result_by_message(self, outbox_message_id: str) -> sqlite3.Row | None:
        """The result (its file_name) carried by one outgoing message, if any."""
        return self.db.execute("SELECT file_name FROM results WHERE outbox_message_id=?",
                               (outbox_message_id,)).fetchone()

    def results_awaiting_timestamp(self) -> list[sqlite3.Row]:
        """Results signed while the timestamp server was away."""
        return self.db.execute("SELECT * FROM results WHERE timestamp_pending=1").fetchall()

    def mark_result_timestamped(self, result_id: int) -> None:
        """A result's signed file got its document timestamp."""
        self.db.execute("UPDATE results SET timestamp_pending=0, level='B-B+DocTimeStamp' WHERE id=?", (result_id,))

    # ------------------------------------------------------------------ register bookkeeping

    def mark_dirty(self, year_be: int, case_id: int | None = None) -> None:
        """The year's workbook must be rewritten; the case's row must be rendered again."""
        if case_id is not None:
            self.db.execute("INSERT INTO register_dirty_cases (case_id) VALUES (?) ON CONFLICT DO NOTHING", (case_id,))
        self.db.execute(
            "INSERT INTO register_dirty (year_be, version) VALUES (?, 1) "
            "ON CONFLICT (year_be) DO UPDATE SET version = register_dirty.version + 1",
            (year_be,),
        )

    def dirty_years(self) -> dict[int, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT year_be, version FROM register_dirty")}

    def clear_dirty(self, year_be: int, version: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM register_dirty WHERE year_be=? AND version=?", (year_be, version))
