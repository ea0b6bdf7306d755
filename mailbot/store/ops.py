"""Operations' records: alerts sent (at most hourly), and what privacy prune and recovery read.
"""
from __future__ import annotations

from .db import Database


class OpsStore(Database):
    """Statements for this part (methods of ``store.State``)."""
