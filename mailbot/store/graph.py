"""Graph mirror: what mailbot knows of a mailbox it reads through Microsoft Graph (``mailbox: graph``).

Owns: the ``graph_folders`` table (each folder seen: Graph's folder id, the UIDVALIDITY mailbot
gives it, the delta link the next delta query starts from, when it was last synced) and the
``graph_items`` table (each message in such a folder: its immutable id, the UID mailbot gave it,
when it was received, the SHA-256 and size of its MIME once fetched, and whether it has left the
folder). A UID is an integer that only grows (SQLite AUTOINCREMENT never hands one out twice), so
the ledger keys a Graph message by (account, folder, UIDVALIDITY, UID) exactly as it keys an IMAP
one; a message that leaves a folder and comes back gets a new UID there, as on an IMAP server.

``GraphStore`` is a part of ``store.State`` (``status`` reads the sync times); ``open_mirror``
gives the Graph session its own connection to the same file (``GraphMirror``), since a mail
session is opened from the configuration alone. The session never writes inside a transaction of
the cycle's connection: it is called between them.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterable

from .db import Database, iso


class GraphStore(Database):
    """Statements for the Graph mirror (methods of ``store.State`` and of ``GraphMirror``)."""

    # ------------------------------------------------------------------ folders

    def graph_folder(self, account: str, folder_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM graph_folders WHERE account=? AND folder_id=?",
                               (account, folder_id)).fetchone()

    def graph_remember_folder(self, account: str, folder_id: str, name: str, uidvalidity: int) -> sqlite3.Row:
        """The folder's row, made the first time it is seen (no delta link yet)."""
        with self.tx() as db:
            db.execute("INSERT INTO graph_folders (account, folder_id, name, uidvalidity) VALUES (?,?,?,?) "
                       "ON CONFLICT (account, folder_id) DO UPDATE SET name=excluded.name",
                       (account, folder_id, name, uidvalidity))
        row = self.graph_folder(account, folder_id)
        assert row is not None
        return row

    def graph_apply_delta(self, account: str, folder_id: str, present: Iterable[tuple[str, str | None]],
                          removed: Iterable[str], delta_link: str | None, full: bool, now: datetime) -> None:
        """One delta round, in one transaction: the messages now in the folder (immutable id,
        received) get a UID when they have none there; those removed leave it. ``full``: the round
        started without a delta link, so it listed the whole folder: what it did not list has left.
        The delta link is kept only with the changes it follows."""
        with self.tx() as db:
            listed: set[str] = set()
            for item_id, received in present:
                listed.add(item_id)
                db.execute("INSERT INTO graph_items (account, folder_id, item_id, received_at) VALUES (?,?,?,?) "
                           "ON CONFLICT (account, folder_id, item_id) WHERE gone = 0 "
                           "DO UPDATE SET received_at=coalesce(excluded.received_at, graph_items.received_at)",
                           (account, folder_id, item_id, received))
            db.executemany("UPDATE graph_items SET gone=1 WHERE account=? AND folder_id=? AND item_id=? AND gone=0",
                           [(account, folder_id, i) for i in removed])
            if full:
                known = db.execute("SELECT uid, item_id FROM graph_items WHERE account=? AND folder_id=? AND gone=0",
                                   (account, folder_id)).fetchall()
                db.executemany("UPDATE graph_items SET gone=1 WHERE uid=?",
                               [(r["uid"],) for r in known if r["item_id"] not in listed])
            db.execute("UPDATE graph_folders SET delta_link=?, synced_at=? WHERE account=? AND folder_id=?",
                       (delta_link, iso(now), account, folder_id))

    def graph_forget_link(self, account: str, folder_id: str) -> None:
        """The delta link expired (Graph answered 410): the next round lists the folder whole."""
        with self.tx() as db:
            db.execute("UPDATE graph_folders SET delta_link=NULL WHERE account=? AND folder_id=?",
                       (account, folder_id))

    def graph_sync_times(self, account: str) -> list[sqlite3.Row]:
        """Each folder's name, when it was last synced and how many messages it holds (for status)."""
        return self.db.execute(
            "SELECT f.name, f.synced_at, (SELECT count(*) FROM graph_items i WHERE i.account=f.account AND "
            "i.folder_id=f.folder_id AND i.gone=0) AS messages FROM graph_folders f WHERE f.account=? "
            "ORDER BY f.name", (account,)).fetchall()

    # ------------------------------------------------------------------ messages

    def graph_uids(self, account: str, folder_id: str) -> list[int]:
        """The UIDs of the messages in the folder, ascending."""
        return [r[0] for r in self.db.execute(
            "SELECT uid FROM graph_items WHERE account=? AND folder_id=? AND gone=0 ORDER BY uid",
            (account, folder_id))]

    def graph_items(self, account: str, uids: list[int]) -> dict[int, sqlite3.Row]:
        """The rows of these UIDs (those that left their folder too: ``gone``)."""
        out: dict[int, sqlite3.Row] = {}
        for i in range(0, len(uids), 500):
            chunk = uids[i:i + 500]
            for r in self.db.execute(f"SELECT * FROM graph_items WHERE account=? AND uid IN ({','.join('?' * len(chunk))})",
                                     (account, *chunk)):
                out[r["uid"]] = r
        return out

    def graph_place(self, account: str, folder_id: str, item_id: str, *, received_at: str | None = None,
                    sha256: str | None = None, size: int | None = None) -> int:
        """The UID of a message in a folder, given one when it has none there (a move's
        destination, a message found by its content)."""
        with self.tx() as db:
            db.execute("INSERT INTO graph_items (account, folder_id, item_id, received_at, sha256, size) "
                       "VALUES (?,?,?,?,?,?) ON CONFLICT (account, folder_id, item_id) WHERE gone = 0 DO NOTHING",
                       (account, folder_id, item_id, received_at, sha256, size))
            return db.execute("SELECT uid FROM graph_items WHERE account=? AND folder_id=? AND item_id=? AND gone=0",
                              (account, folder_id, item_id)).fetchone()[0]

    def graph_moved(self, account: str, uid: int, folder_id: str, item_id: str) -> int:
        """A message moved out of its folder into ``folder_id`` (where Graph calls it ``item_id``:
        the same immutable id): gone from the first, given a UID in the second; that UID."""
        with self.tx():
            row = self.db.execute("SELECT * FROM graph_items WHERE uid=?", (uid,)).fetchone()
            self.db.execute("UPDATE graph_items SET gone=1 WHERE uid=?", (uid,))
            return self.graph_place(account, folder_id, item_id,
                                    received_at=row["received_at"] if row is not None else None,
                                    sha256=row["sha256"] if row is not None else None,
                                    size=row["size"] if row is not None else None)

    def graph_gone(self, uids: list[int]) -> None:
        """These messages are no longer where the mirror had them (Graph answered 404)."""
        with self.tx(durable=False) as db:
            db.executemany("UPDATE graph_items SET gone=1 WHERE uid=?", [(u,) for u in uids])

    def graph_fetched(self, seen: list[tuple[int, str, int]]) -> None:
        """The SHA-256 and size of each (UID, hash, size) whose MIME was fetched."""
        with self.tx(durable=False) as db:
            db.executemany("UPDATE graph_items SET sha256=?, size=? WHERE uid=?", [(h, n, u) for u, h, n in seen])

    def graph_by_hash(self, account: str, sha256: str) -> list[sqlite3.Row]:
        """Every row, in any folder, whose fetched MIME had this SHA-256 (newest first)."""
        return self.db.execute("SELECT * FROM graph_items WHERE account=? AND sha256=? ORDER BY uid DESC",
                               (account, sha256)).fetchall()


class GraphMirror(GraphStore):
    """The Graph mirror over its own connection to the state database (a Graph session's)."""


def open_mirror(path: Path) -> GraphMirror:
    """The Graph mirror of the state database at ``path`` (migrated like every opening)."""
    return GraphMirror(path)
