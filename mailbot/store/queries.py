"""Read queries for the faces: the console's pages (today, finding cases, due cases, messages) and the status and daily-log counts.
"""
from __future__ import annotations

from .db import Database


class QueryStore(Database):
    """Statements for this part (methods of ``store.State``)."""
