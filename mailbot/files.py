"""Files: the one way mailbot writes a file — whole or not at all.

Owns: atomic writes (temp file in the target's folder, fsync, then replace in one step), so a
crash or a full disk never leaves a half-written archive message or register behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(src: str, dst: Path) -> None:
    """os.replace, named so tests can play Windows refusing to replace a file open in Excel."""
    os.replace(src, dst)


def write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".~mailbot-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace_file(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
