"""Store: the database, and every SQL statement mailbot runs. Nothing outside this package
executes SQL or imports sqlite3 (``ops.backup`` copies the file with SQLite's backup API).

Owns: ``State``, one object over one SQLite file, made of one part per kind of record —
``db`` (connection, transactions, migrations, meta, events), ``ledger`` (server messages),
``cases`` (numbers, cases, their events and files), ``outbox`` (messages owed and sent),
``audit`` (the hash-chained log), ``registers`` (dispatches, licences, the register's row cache),
``officers`` (console accounts, items marked dealt with), ``ops`` (privacy, recovery) and
``queries`` (what the faces read), ``graph`` (the mirror of a mailbox read through Microsoft
Graph: folders, delta links, the UIDs given to immutable ids) — so that each part's SQL sits in one file. This is also the seam where another database (PostgreSQL, for a host) plugs in: callers see methods, not SQL.
``Row`` (a result row, indexed by column name) is re-exported for the callers' annotations.
"""
from __future__ import annotations

from sqlite3 import Row

from .audit import AuditStore
from .cases import CaseStore
from .db import Database, from_iso, iso
from .graph import GraphStore
from .ledger import Ledger, LedgerStore
from .officers import OfficerStore
from .ops import OpsStore
from .outbox import OutboxStore
from .queries import CaseSearch, QueryStore
from .registers import RegisterStore
from .schema import MIGRATIONS, SCHEMA_VERSION


class State(LedgerStore, CaseStore, OutboxStore, AuditStore, RegisterStore, OfficerStore, OpsStore, QueryStore,
            GraphStore):
    """One SQLite database under the data folder, with every part's statements."""


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "CaseSearch", "Database", "Ledger", "Row", "State", "from_iso", "iso"]
