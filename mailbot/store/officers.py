"""Console accounts (officers) and the items an officer marked as dealt with (acknowledged).
"""
from __future__ import annotations

from .db import Database


class OfficerStore(Database):
    """Statements for this part (methods of ``store.State``)."""
