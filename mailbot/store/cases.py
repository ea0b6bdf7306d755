"""Cases: receipt numbers (one counter per numbering year), cases, their events and files,
and which register years need writing again.
"""
from __future__ import annotations

import sqlite3

from . import audit
from .db import Database


class CaseStore(Database):
    """The ``counters``, ``cases``, ``case_events``, ``case_files`` and register bookkeeping tables."""

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
