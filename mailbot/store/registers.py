"""Registers' records: dispatch numbers and their counters, licences, results, and the rows the receive register was written with.

Owns: the ``dispatch_counters`` and ``dispatches`` tables (the outgoing numbers, issued inside
the caller's transaction), the ``licences`` table, the ``register_rows`` cache of rendered
receive-register rows (with ``register_dirty_cases``, the cases to render again) and the
dispatch register's marks in ``register_dirty`` (its years are stored negative).
"""
from __future__ import annotations

import sqlite3

from .db import Database


class RegisterStore(Database):
    """Statements for this part (methods of ``store.State``)."""

    # ------------------------------------------------------------------ dispatches

    def dispatch_counter(self, year_be: int) -> int:
        """The last outgoing number issued in the numbering year (0 if none yet)."""
        row = self.db.execute("SELECT last FROM dispatch_counters WHERE year_be=?", (year_be,)).fetchone()
        return row[0] if row else 0

    def next_dispatch_seq(self, year_be: int) -> int:
        """Take the year's next outgoing number (inside the caller's transaction); returns it."""
        return self.db.execute("INSERT INTO dispatch_counters (year_be, last) VALUES (?, 1) ON CONFLICT (year_be) "
                               "DO UPDATE SET last = dispatch_counters.last + 1 RETURNING last", (year_be,)).fetchone()[0]

    def add_dispatch(self, *, year_be: int, seq: int, number: str, dated: str, recipient: str | None,
                     recipient_name: str, subject: str, action: str, case_id: int | None, receipt: str | None,
                     kind: str, sha256: str | None, file_name: str | None) -> sqlite3.Row:
        """Insert a dispatch row (inside the caller's transaction); returns the row as stored."""
        return self.db.execute(
            "INSERT INTO dispatches (year_be, seq, number, dated, recipient, recipient_name, subject, action, case_id, "
            "receipt, kind, sha256, file_name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING *",
            (year_be, seq, number, dated, recipient, recipient_name, subject, action, case_id, receipt, kind,
             sha256, file_name)).fetchone()

    def mark_dispatch_dirty(self, year_be: int) -> None:
        """The year's dispatch register must be rewritten (kept in register_dirty under ``-year_be``)."""
        self.db.execute("INSERT INTO register_dirty (year_be, version) VALUES (?, 1) ON CONFLICT (year_be) "
                        "DO UPDATE SET version = register_dirty.version + 1", (-year_be,))

    def update_dispatch(self, dispatch_id: int, **fields: object) -> None:
        """Set columns of a dispatch row and mark its year's register dirty, in one transaction."""
        with self.tx() as db:
            db.execute(f"UPDATE dispatches SET {', '.join(f'{k}=?' for k in fields)} WHERE id=?",
                       (*fields.values(), dispatch_id))
            year = db.execute("SELECT year_be FROM dispatches WHERE id=?", (dispatch_id,)).fetchone()[0]
            self.mark_dispatch_dirty(year)

    def dispatch_for_document(self, case_id: int, sha256: str) -> sqlite3.Row | None:
        """The first dispatch of the same bytes for the same case, if any."""
        return self.db.execute("SELECT * FROM dispatches WHERE case_id=? AND sha256=? ORDER BY id LIMIT 1",
                               (case_id, sha256)).fetchone()

    def dispatch_for_outbox(self, message_id: str) -> sqlite3.Row | None:
        """The dispatch (its id) whose e-mail is the outbox message ``message_id``, if any."""
        return self.db.execute("SELECT id FROM dispatches WHERE outbox_message_id=?", (message_id,)).fetchone()

    def dispatches_of_year(self, year_be: int) -> list[sqlite3.Row]:
        """Every dispatch of the numbering year, by number."""
        return self.db.execute("SELECT * FROM dispatches WHERE year_be=? ORDER BY seq", (year_be,)).fetchall()

    # ------------------------------------------------------------------ licences

    def next_licence_seq(self, year_be: int) -> int:
        """The next licence number of the year (one above the highest recorded)."""
        return self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM licences WHERE year_be=?",
                               (year_be,)).fetchone()[0]

    def add_licence(self, *, number: str, year_be: int, seq: int, holder: str, activity: str, location: str,
                    issued: str, expires: str | None, receipt: str, case_id: int) -> None:
        """Insert a licence row (inside the caller's transaction)."""
        self.db.execute(
            "INSERT INTO licences (number, year_be, seq, holder, activity, location, issued, expires, receipt, case_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (number, year_be, seq, holder, activity, location, issued, expires, receipt, case_id),
        )

    def licences(self) -> list[sqlite3.Row]:
        """Every licence, by year and number."""
        return self.db.execute("SELECT * FROM licences ORDER BY year_be, seq").fetchall()

    # ------------------------------------------------------------------ the receive register's row cache

    def reset_register_rows(self, row_format: str) -> None:
        """Forget every cached row and record the format the next rows are rendered in, in one transaction."""
        with self.tx() as db:
            db.execute("DELETE FROM register_rows")
            db.execute("INSERT INTO meta (key, value) VALUES ('register_row_format', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value=excluded.value", (row_format,))

    def register_changed_cases(self, year_be: int) -> list[sqlite3.Row]:
        """The year's cases marked to be rendered again."""
        return self.db.execute(
            "SELECT c.* FROM register_dirty_cases d JOIN cases c ON c.id = d.case_id WHERE c.year_be = ?", (year_be,)
        ).fetchall()

    def register_unrendered_cases(self, year_be: int) -> list[sqlite3.Row]:
        """The year's cases with no cached row, or marked to be rendered again."""
        return self.db.execute(
            "SELECT c.* FROM cases c LEFT JOIN register_rows r ON r.case_id = c.id WHERE c.year_be = ? "
            "AND (r.case_id IS NULL OR c.id IN (SELECT case_id FROM register_dirty_cases))", (year_be,)).fetchall()

    def register_case_top(self, year_be: int) -> int:
        """The highest receipt number among the year's cases (0 if none)."""
        return self.db.execute("SELECT max(seq) FROM cases WHERE year_be=?", (year_be,)).fetchone()[0] or 0

    def register_rows_top(self, year_be: int) -> int:
        """The highest receipt number with a cached row in the year (0 if none)."""
        return self.db.execute("SELECT max(seq) FROM register_rows WHERE year_be=?", (year_be,)).fetchone()[0] or 0

    def save_register_rows(self, year_be: int, rendered: list[tuple[int, int, str]]) -> None:
        """Cache rendered rows ``(case_id, seq, xml)`` and unmark their cases, in one non-durable transaction."""
        with self.tx(durable=False) as db:
            db.executemany(
                "INSERT INTO register_rows (case_id, year_be, seq, xml) VALUES (?,?,?,?) "
                "ON CONFLICT (case_id) DO UPDATE SET xml=excluded.xml, seq=excluded.seq",
                [(case_id, year_be, seq, xml) for case_id, seq, xml in rendered],
            )
            db.executemany("DELETE FROM register_dirty_cases WHERE case_id=?", [(case_id,) for case_id, _, _ in rendered])

    def register_row_heads(self, year_be: int, after: int = 0) -> list[str]:
        """The start of each cached row's XML of the year after receipt number ``after``
        (``<row r=".." ht="..">``: its height), in order: what the page breaks need, without
        reading every row's text."""
        return [head for (head,) in self.db.execute(
            "SELECT substr(xml, 1, 40) FROM register_rows WHERE year_be=? AND seq>? ORDER BY seq", (year_be, after))]

    def register_row_xml(self, year_be: int, after: int = 0) -> list[str]:
        """The cached rows' XML of the year after receipt number ``after``, in order."""
        return [xml for (xml,) in self.db.execute(
            "SELECT xml FROM register_rows WHERE year_be=? AND seq>? ORDER BY seq", (year_be, after))]
