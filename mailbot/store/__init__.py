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
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ..config import Config


class State(LedgerStore, CaseStore, OutboxStore, AuditStore, RegisterStore, OfficerStore, OpsStore, QueryStore,
            GraphStore):
    """One agency's database (its SQLite file, or its tenant in a host's PostgreSQL), with every
    part's statements."""


def open_state(cfg: "Config") -> State:
    """The agency's state: ``database`` in its config (a host's PostgreSQL, this agency's tenant),
    else ``state.sqlite3`` in its data folder."""
    if cfg.database is not None:
        return State(url=cfg.database.url(), tenant=cfg.database.tenant)
    return State(cfg.data_dir / "state.sqlite3")


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "CaseSearch", "Database", "Ledger", "Row", "State", "from_iso", "open_state", "iso"]
