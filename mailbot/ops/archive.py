"""Archive: raw message bytes kept on disk, exactly as fetched, under the data folder.

Owns: where a raw message is stored (and the index of receipt numbers issued, ``receipts.tsv``) (``archive/<Buddhist-Era year>/<month>/<sha256>.eml``,
content-addressed so a rerun writes nothing new), writing it durably (temp file, fsync,
rename) before anything is decided, and the quarantine copy with its reason beside it.
Nothing is ever written outside the data folder.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ..files import make_private, write_atomic
from ..thai import be_year, to_bangkok

JOURNAL = "receipts.tsv"
MANIFEST = "MANIFEST.sha256"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *][^\r\n]+\r?\n", re.MULTILINE)    # a whole line of the manifest


def _tsv(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").split())


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def end_last_line(fh: BinaryIO, drop_cut_off: bool) -> None:
    """Before appending to a file of lines opened "a+b": a last line cut off mid-write (the
    program killed, the power gone: a few characters, or a block of NUL bytes) does not run on
    into the next. ``drop_cut_off``: it is removed (back to the last line end in the last 64 KiB);
    else it is ended. A CRLF line lacking only its LF gets it."""
    end = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, end - 65536))
    tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    if tail.endswith(b"\r"):
        fh.write(b"\n")
        return
    cut = tail.rfind(b"\n")
    if drop_cut_off and (cut != -1 or end == len(tail)):
        fh.truncate(end - len(tail) + cut + 1)
    else:
        fh.write(b"\n")


class Archive:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()
        self._listed: dict[Path, set[str]] = {}     # each month folder's manifest, read once
        self._lock = threading.Lock()               # store() runs in the read-ahead thread too
        self._unsynced: set[Path] = set()            # manifests appended to since the last sync()

    def store(self, raw: bytes, received: datetime) -> tuple[str, str]:
        """Keep the raw bytes; returns (path relative to the data folder, sha256). The month's
        manifest lists each file once, also one a run wrote and was stopped before listing."""
        digest = sha256(raw)
        local = to_bangkok(received)
        rel = Path("archive") / str(be_year(local)) / f"{local.month:02d}" / f"{digest}.eml"
        target = self.root / rel
        if not (target.exists() and target.stat().st_size == len(raw)):
            try:
                write_atomic(target, raw)
            except OSError as exc:   # name the folder for the officer (disk full, no permission)
                raise OSError(exc.errno, exc.strerror, str(target.parent)) from None
        self._list(target.parent, digest, target.name)
        return rel.as_posix(), digest

    def _list(self, folder: Path, digest: str, name: str) -> None:
        """The month's manifest, in sha256sum format (the file name is its hash too), the same
        bytes on every system: the line is added after the file is in place, unless the manifest
        lists it already (a whole line). A line cut off mid-write (the power went, the program
        was killed) is removed first (``end_last_line``): its file was written by a run that
        decided nothing about its message (``sync`` comes before the decisions), which is stored,
        and so listed, again when it is tried again; so that ``sha256sum --strict -c`` checks
        every line."""
        path = folder / MANIFEST
        with self._lock:
            listed = self._listed.get(folder)
            if listed is None:
                try:
                    text = path.read_bytes().decode("utf-8", "replace")
                except FileNotFoundError:
                    text = ""
                if len(self._listed) >= 4:       # a long-running program: only the months in use
                    self._listed.clear()
                listed = self._listed[folder] = {m.group(1) for m in _LINE.finditer(text)}
            if digest in listed:
                return
            with path.open("a+b") as fh:          # (appended at the end, wherever it read)
                end_last_line(fh, drop_cut_off=True)
                fh.write(f"{digest}  {name}\n".encode("utf-8"))
            self._unsynced.add(path)
            listed.add(digest)

    def sync(self) -> None:
        """The manifest lines added so far on disk (one fsync per month's manifest, not per
        message): called before the messages they list are decided, so that a power cut after the
        decision cannot lose a line whose message is never stored again."""
        with self._lock:
            paths, self._unsynced = self._unsynced, set()
        for path in paths:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def tighten(self) -> int:
        """Every folder and file under the data folder the owner's alone (POSIX): what an older
        release wrote under umask 022 (0644 raw mail). Returns how many were looked at."""
        n = 0
        for path in [self.root, *self.root.rglob("*")]:
            make_private(path)
            n += 1
        return n

    def record_receipts(self, cases: list) -> None:
        """Append the numbers just issued to ``archive/<BE year>/receipts.tsv``: an index beside the
        raw mail that outlives the database, so a restore or a lost database can never hand a
        number out twice (recovery.py reads it back)."""
        by_year: dict[int, list[str]] = {}
        for c in cases:
            fields = [str(c["seq"]), c["receipt"], c["received_at"] or "", c["sha256"] or "", c["archive"] or "",
                      c["sender_addr"] or "", c["message_id"] or "", c["subject"] or ""]
            by_year.setdefault(c["year_be"], []).append("\t".join(_tsv(f) for f in fields))
        for year, lines in by_year.items():
            path = self.root / "archive" / str(year) / JOURNAL
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())

    def quarantine(self, raw: bytes, name: str, reason: str) -> str:
        """A copy for the officer in ``quarantine/`` with a .txt saying why."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "message"
        rel = Path("quarantine") / f"{safe}.eml"
        write_atomic(self.root / rel, raw)
        write_atomic(self.root / rel.with_suffix(".txt"), (reason + "\n").encode("utf-8"))
        return rel.as_posix()
