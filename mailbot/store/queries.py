"""Queries: what the faces read, across the tables (and two writes of officer actions).

Owns: the statements behind the console's today page (arrivals, the work queue by kind, recent
events and alerts), finding cases (``CaseSearch``), cases due or late, a case's messages, mail
and files, the status counts (``mailbot status``), the daily log's rows, quarantined messages
and recent results; and, until they move to the part that owns their table, two writes of
officer actions: discarding a cancelled case's unsent mail, and putting a quarantined message
back for the next cycle. Sets of statuses and kinds come from ``casework.workflow`` and
``kinds``, as placeholders.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable

from ..casework.workflow import AGENCY_CLOCK, OPEN
from ..kinds import UNDELIVERED, UNSENT, Outcome
from .db import Database


def _marks(values: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """``?,?,?`` for an ``IN (...)`` and the values, in a fixed (sorted) order."""
    items = tuple(sorted(values))
    return ",".join("?" * len(items)), items


# the columns of a case the console's work queue shows
# matches of a word search above which the list walks the receipt numbers instead of sorting them
_MANY = 500
# an outgoing mail's case receipt, read per listed row (a join would make SQLite read the whole outbox)
_RECEIPT = "(SELECT c.receipt FROM cases c WHERE c.id=o.case_id) AS receipt"
_CASE_COLUMNS = ("c.id, c.receipt, c.received_at, c.sender_name, c.sender_addr, c.subject, c.remark, c.held, "
                 "c.urgency, c.urgency_rank")


@dataclass(frozen=True)
class CaseSearch:
    """What ``cases_found`` looks for; each field left empty matches every case."""
    year_be: int | None = None         # with seq: one receipt number
    seq: int | None = None
    words: str = ""                    # in the sender's name, address or subject
    status: str = ""                   # a status key
    service: str = ""                  # a service code; "-": not classified
    received_from: str = ""            # iso(): received at or after
    received_before: str = ""          # iso(): received before

    def where(self, indexed: bool = False) -> tuple[str, list[object]]:
        """The WHERE clause (with its leading space, or empty) and its arguments. ``indexed``: the
        trigram index ``cases_fts`` exists; words of three letters or more are looked up there."""
        where: list[str] = []
        args: list[object] = []
        if self.year_be is not None:
            where.append("year_be=? AND seq=?")
            args += [self.year_be, self.seq]
        elif self.seq is not None:
            where.append("seq=?")
            args.append(self.seq)
        elif self.words and indexed and len(self.words) >= 3:
            where.append("id IN (SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?)")
            args.append('"' + self.words.replace('"', '""') + '"')       # one phrase: the text as typed
        elif self.words:
            like = "%" + self.words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(sender_name LIKE ? ESCAPE '\\' OR sender_addr LIKE ? ESCAPE '\\' "
                         "OR subject LIKE ? ESCAPE '\\')")
            args += [like, like, like]
        if self.status:
            where.append("status=?")
            args.append(self.status)
        if self.service == "-":
            where.append("service_code IS NULL")
        elif self.service:
            where.append("service_code=?")
            args.append(self.service)
        if self.received_from:
            where.append("received_at>=?")
            args.append(self.received_from)
        if self.received_before:
            where.append("received_at<?")
            args.append(self.received_before)
        return (" WHERE " + " AND ".join(where)) if where else "", args


class QueryStore(Database):
    """Read queries over several tables, for the console, the command line and the daily log."""

    # ------------------------------------------------------------------ cases

    def cases_listed(self, status: str | None = None) -> list[sqlite3.Row]:
        """Every case (or those in one status), urgent requests first, then by their numbers."""
        sql = ("SELECT * FROM cases" + (" WHERE status=?" if status else "")
               + " ORDER BY urgency_rank DESC, year_be, seq")
        return self.db.execute(sql, (status,) if status else ()).fetchall()

    def _indexed(self) -> bool:
        """Whether the trigram index of cases exists (migration 17: not in a SQLite without FTS5)."""
        if not hasattr(self, "_has_fts"):
            self._has_fts = self.has_table("cases_fts")
        return self._has_fts

    def _words_only(self, search: CaseSearch) -> int | None:
        """For a search by words alone through the trigram index: how many cases match (the index
        holds one row per case, kept by triggers), else None."""
        where, args = search.where(self._indexed())
        if not where.startswith(" WHERE id IN (SELECT rowid FROM cases_fts") or where.count(" AND ") != 0:
            return None
        return self.db.execute("SELECT count(*) FROM cases_fts WHERE cases_fts MATCH ?", args).fetchone()[0]

    def count_cases_found(self, search: CaseSearch) -> int:
        """How many cases match a search."""
        found = self._words_only(search)
        if found is not None:
            return found
        where, args = search.where(self._indexed())
        return self.db.execute(f"SELECT count(*) FROM cases{where}", args).fetchone()[0]

    def cases_found(self, search: CaseSearch, limit: int, offset: int) -> list[sqlite3.Row]:
        """One page of the cases matching a search (the columns the list shows), newest first."""
        where, args = search.where(self._indexed())
        found = self._words_only(search)
        if found is not None and found > _MANY:
            # a common name: walk the receipt numbers newest first and keep the matches ("+id" keeps
            # SQLite from sorting every match first: 7,279 matches of 100,000 cases, 17.5 ms -> 2 ms)
            where = where.replace(" WHERE id IN", " WHERE +id IN", 1)
        return self.db.execute(
            "SELECT id, receipt, year_be, seq, received_at, sender_name, sender_addr, subject, service_code, "
            f"service_name, status, reply_status, urgency, secrecy FROM cases{where} ORDER BY year_be DESC, seq DESC "
            "LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()

    def case_mail(self, case_id: int) -> list[sqlite3.Row]:
        """Everything mailbot sent (or owes) about a case, oldest first."""
        return self.db.execute("SELECT * FROM outbox WHERE case_id=? ORDER BY id", (case_id,)).fetchall()

    def case_messages(self, case_id: int, message_row: int) -> list[sqlite3.Row]:
        """The ledger rows of a case: its request and every message filed with it, in order."""
        return self.db.execute(
            "SELECT * FROM messages WHERE case_id=? OR id=? ORDER BY id", (case_id, message_row)).fetchall()

    def count_late(self, today: str) -> int:
        """Cases whose agency clock runs (workflow.AGENCY_CLOCK) past their due date (before ``today``)."""
        marks, statuses = _marks(AGENCY_CLOCK)
        return self.db.execute(f"SELECT count(*) FROM cases WHERE status IN ({marks}) AND due_date IS NOT NULL "
                               "AND due_date < ?", (*statuses, today)).fetchone()[0]

    def count_due_by(self, horizon: str) -> int:
        """Cases whose agency clock runs and that are due on or before ``horizon`` (late ones included)."""
        marks, statuses = _marks(AGENCY_CLOCK)
        return self.db.execute(f"SELECT count(*) FROM cases WHERE status IN ({marks}) AND due_date IS NOT NULL "
                               "AND due_date <= ?", (*statuses, horizon)).fetchone()[0]

    def due_soon(self, horizon: str, limit: int) -> list[sqlite3.Row]:
        """The first ``limit`` of those cases, soonest due first, then oldest."""
        marks, statuses = _marks(AGENCY_CLOCK)
        return self.db.execute(
            "SELECT id, receipt, received_at, sender_name, sender_addr, subject, service_name, due_date, urgency_rank "
            f"FROM cases WHERE status IN ({marks}) AND due_date IS NOT NULL AND due_date <= ? "
            "ORDER BY due_date, received_at LIMIT ?", (*statuses, horizon, limit)).fetchall()

    def count_overdue(self, today: str) -> int:
        """Cases whose agency clock runs and whose due date is before ``today`` (``mailbot status``)."""
        marks, statuses = _marks(AGENCY_CLOCK)
        return self.db.execute(f"SELECT count(*) FROM cases WHERE due_date < ? AND status IN ({marks})",
                               (today, *statuses)).fetchone()[0]

    # ------------------------------------------------------------------ today

    def arrivals_by_outcome(self, start: str, end: str) -> dict[str, int]:
        """Messages received in [start, end) and decided, counted by outcome."""
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT outcome, count(*) FROM messages WHERE received_at>=? AND received_at<? AND outcome IS NOT NULL "
            "GROUP BY outcome", (start, end))}

    def count_registered(self, start: str, end: str) -> int:
        """Cases received in [start, end)."""
        return self.db.execute("SELECT count(*) FROM cases WHERE received_at>=? AND received_at<?",
                               (start, end)).fetchone()[0]

    def _work(self, source: str, args: tuple, columns: str, order: str, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """How many items a source holds, and the first ``limit`` of them (none read when there are none)."""
        count = self.db.execute(f"SELECT count(*) {source}", args).fetchone()[0]
        # "+" keeps SQLite from walking an index in ``order`` (all 100,000 cases by date) to
        # find the few that match: it takes the filter's index and sorts what it found
        rows = self.db.execute(f"SELECT {columns} {source} ORDER BY +{order} LIMIT ?",
                               (*args, limit)).fetchall() if count else []
        return count, rows

    def work_unclassified(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Open cases with no service yet: how many, and the oldest ``limit``."""
        marks, statuses = _marks(OPEN)
        return self._work(f"FROM cases c WHERE c.service_code IS NULL AND c.status IN ({marks})", statuses,
                          _CASE_COLUMNS, "c.received_at", limit)

    def work_held_mail(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Outgoing mail held for an officer (with its case's receipt): how many, and the first ``limit``."""
        return self._work("FROM outbox o WHERE o.status='held'", (),
                          f"o.id, o.kind, o.recipient, o.subject, o.hold_reason, o.created_at, {_RECEIPT}", "o.id",
                          limit)

    def work_flagged(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Open cases held as suspicious that no officer has acted on: how many, and the oldest ``limit``."""
        marks, statuses = _marks(OPEN)
        return self._work(f"FROM cases c WHERE c.held IS NOT NULL AND c.status IN ({marks}) AND NOT EXISTS "
                          "(SELECT 1 FROM case_events e WHERE e.case_id=c.id AND e.kind LIKE 'officer:%')",
                          statuses, _CASE_COLUMNS, "c.received_at", limit)

    def work_quarantined(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Quarantined messages no officer dismissed: how many, and the first ``limit``."""
        return self._work("FROM messages m WHERE m.outcome=? AND NOT EXISTS (SELECT 1 FROM acknowledged "
                          "a WHERE a.kind='quarantine' AND a.ref=m.id)", (Outcome.QUARANTINED,),
                          "m.id, m.received_at, m.decided_at, m.sender, m.subject, m.reason", "m.id", limit)

    def work_undelivered(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Outgoing mail bounced or refused (kinds.UNDELIVERED) and not acknowledged: how many, and the
        first ``limit``."""
        marks, states = _marks(UNDELIVERED)
        return self._work(f"FROM outbox o WHERE o.status IN ({marks}) "
                          "AND NOT EXISTS (SELECT 1 FROM acknowledged a WHERE a.kind='mail' AND a.ref=o.id)", states,
                          f"o.id, o.kind, o.recipient, o.subject, o.status, o.last_error, o.created_at, {_RECEIPT}",
                          "o.id", limit)

    def work_documents_unsure(self, limit: int) -> tuple[int, list[sqlite3.Row]]:
        """Open cases whose documents an officer must check (checklist verdict "unsure"): how many, and
        the oldest ``limit``."""
        marks, statuses = _marks(OPEN)
        # the literal 'unsure' lets SQLite use the partial index cases_checklist_verdict (migration 9)
        return self._work(f"FROM cases c WHERE c.checklist_verdict = 'unsure' AND c.status IN ({marks})", statuses,
                          _CASE_COLUMNS, "c.received_at", limit)

    def recent_events(self, limit: int = 8) -> list[sqlite3.Row]:
        """The newest entries of the events log, newest first."""
        return self.db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()

    def recent_alerts(self, limit: int = 5) -> list[sqlite3.Row]:
        """The alerts raised most recently, newest first."""
        return self.db.execute("SELECT * FROM alerts ORDER BY last_at DESC LIMIT ?", (limit,)).fetchall()

    def count_alerts_since(self, since: str) -> int:
        """Alerts raised (or raised again) since this ISO time."""
        return self.db.execute("SELECT count(*) FROM alerts WHERE last_at >= ?", (since,)).fetchone()[0]

    # ------------------------------------------------------------------ status

    def count_outbox(self, status: str) -> int:
        """Outgoing messages in one state."""
        return self.db.execute("SELECT count(*) FROM outbox WHERE status=?", (status,)).fetchone()[0]

    def count_messages(self, outcome: str) -> int:
        """Ledger rows with one outcome."""
        return self.db.execute("SELECT count(*) FROM messages WHERE outcome=?", (outcome,)).fetchone()[0]

    def failed_replies(self, limit: int = 10) -> list[sqlite3.Row]:
        """The newest messages the server refused for good (recipient, kind, error, receipt)."""
        return self.db.execute(
            "SELECT o.recipient, o.kind, o.last_error, c.receipt FROM outbox o LEFT JOIN cases c ON c.id=o.case_id "
            "WHERE o.status='failed' ORDER BY o.id DESC LIMIT ?", (limit,)).fetchall()

    # ------------------------------------------------------------------ messages, results, the daily log

    def message_row(self, row_id: int) -> sqlite3.Row | None:
        """One ledger row by its id (None when there is none)."""
        return self.db.execute("SELECT * FROM messages WHERE id=?", (row_id,)).fetchone()

    def quarantined_messages(self, limit: int = 500) -> list[sqlite3.Row]:
        """Quarantined messages, newest first, with who dismissed each (``dismissed_by``, else NULL)."""
        return self.db.execute(
            "SELECT m.*, a.actor AS dismissed_by FROM messages m LEFT JOIN acknowledged a ON a.kind='quarantine' "
            "AND a.ref=m.id WHERE m.outcome=? ORDER BY m.id DESC LIMIT ?", (Outcome.QUARANTINED, limit)).fetchall()

    def outbox_case_kind(self, outbox_id: int) -> sqlite3.Row | None:
        """An outgoing message's case id and kind (None when there is no such message)."""
        return self.db.execute("SELECT case_id, kind FROM outbox WHERE id=?", (outbox_id,)).fetchone()

    def recent_results(self, limit: int = 20) -> list[sqlite3.Row]:
        """The newest signed results, with their case's receipt number."""
        return self.db.execute(
            "SELECT r.*, c.receipt FROM results r JOIN cases c ON c.id=r.case_id ORDER BY r.id DESC LIMIT ?",
            (limit,)).fetchall()

    def daily_rows(self, start: str, end: str) -> list[sqlite3.Row]:
        """Messages decided in [start, end) with their case's columns and the states of the replies
        to each (``reply``: comma-separated, internal forwards left out); urgent requests first."""
        return self.db.execute(
            "SELECT m.*, c.receipt, c.service_code, c.service_name, c.urgency, c.urgency_rank, c.secrecy, "
            " (SELECT group_concat(o.status) FROM outbox o WHERE o.message_row = m.id AND o.kind <> 'forward') "
            "AS reply "
            "FROM messages m LEFT JOIN cases c ON c.id = m.case_id "
            "WHERE m.decided_at >= ? AND m.decided_at < ? "
            "ORDER BY coalesce(c.urgency_rank, 0) DESC, m.decided_at, m.id",
            (start, end)).fetchall()

    # ------------------------------------------------------------------ console actions' writes
    # (on the outbox's and the ledger's tables: they belong with those parts)

    def discard_case_mail(self, case_id: int) -> int:
        """A cancelled case's mail not yet sent (kinds.UNSENT) is discarded; returns how many."""
        marks, states = _marks(UNSENT)
        return self.db.execute(
            "UPDATE outbox SET status='discarded', hold_reason='case cancelled' "
            f"WHERE case_id=? AND status IN ({marks})", (case_id, *states)).rowcount

    def unquarantine(self, row_id: int, reason: str) -> None:
        """A quarantined message's ledger row made undecided again, for the next cycle to decide afresh."""
        self.db.execute("UPDATE messages SET outcome=NULL, target_folder=NULL, duplicate_of=NULL, moved=1, "
                        "last_error=NULL, reason=? WHERE id=? AND outcome=?", (reason, row_id, Outcome.QUARANTINED))
