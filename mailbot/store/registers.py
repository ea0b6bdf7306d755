"""Registers' records: dispatch numbers and their counters, licences, results, and the rows the receive register was written with.
"""
from __future__ import annotations

from .db import Database


class RegisterStore(Database):
    """Statements for this part (methods of ``store.State``)."""
