"""Archive: raw message bytes kept on disk, exactly as fetched, under the data folder.

Owns: where a raw message is stored (``archive/<Buddhist-Era year>/<month>/<sha256>.eml``,
content-addressed so a rerun writes nothing new), writing it durably (temp file, fsync,
rename) before anything is decided, and the quarantine copy with its reason beside it.
Nothing is ever written outside the data folder.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from .files import write_atomic
from .thai import be_year, to_bangkok


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Archive:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()

    def store(self, raw: bytes, received: datetime) -> tuple[str, str]:
        """Keep the raw bytes; returns (path relative to the data folder, sha256)."""
        digest = sha256(raw)
        local = to_bangkok(received)
        rel = Path("archive") / str(be_year(local)) / f"{local.month:02d}" / f"{digest}.eml"
        target = self.root / rel
        if not (target.exists() and target.stat().st_size == len(raw)):
            write_atomic(target, raw)
            # the month's manifest, in sha256sum format (the file name is its hash too)
            with (target.parent / "MANIFEST.sha256").open("a", encoding="utf-8") as fh:
                fh.write(f"{digest}  {target.name}\n")
        return rel.as_posix(), digest

    def quarantine(self, raw: bytes, name: str, reason: str) -> str:
        """A copy for the officer in ``quarantine/`` with a .txt saying why."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "message"
        rel = Path("quarantine") / f"{safe}.eml"
        write_atomic(self.root / rel, raw)
        write_atomic(self.root / rel.with_suffix(".txt"), (reason + "\n").encode("utf-8"))
        return rel.as_posix()
