"""Files: the one way mailbot writes a file — whole or not at all.

Owns: atomic writes (temp file in the target's folder, fsync, then replace in one step), so a
crash or a full disk never leaves a half-written archive message or register behind.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def replace_file(src: str, dst: Path) -> None:
    """os.replace, named so tests can play Windows refusing to replace a file open in Excel."""
    os.replace(src, dst)


@contextmanager
def replacing(target: Path, suffix: str = "") -> Iterator[str]:
    """A temp file next to ``target`` for the caller to fill (and fsync); it replaces the target
    when the block ends, and is removed if the block fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".~mailbot-", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        replace_file(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(target: Path, data: bytes) -> None:
    with replacing(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
