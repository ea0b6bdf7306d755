"""Files: the one way mailbot writes a file — whole or not at all.

Owns: atomic writes (temp file in the target's folder, fsync, then replace in one step), so a
crash or a full disk never leaves a half-written archive message or register behind; and CSV
files as Excel opens them (UTF-8 with BOM, CRLF), every cell that Excel would read as a formula
(= + - @, a tab or a carriage return first) kept as text.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def sheet_text(value: object) -> str:
    """A cell's text as a spreadsheet must show it: one that starts like a formula gets a leading
    apostrophe (CSV injection, OWASP), so ``=HYPERLINK(...)`` from a citizen stays words."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    """A CSV file for Excel: UTF-8 with BOM, CRLF, every cell through ``sheet_text``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([sheet_text(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def private_files() -> None:
    """From now on, every file and folder this process creates is its owner's alone (0600 files
    in 0700 folders on POSIX): the database, the archive of citizens' mail, logs, registers.
    Windows keeps a user's profile folders private already; there this does nothing."""
    if os.name == "posix":
        os.umask(0o077)


def make_private(*paths: Path) -> None:
    """Files (and folders) written by an older release under a looser umask: owner only (POSIX)."""
    if os.name != "posix":
        return
    for path in paths:
        try:
            if path.is_dir():
                path.chmod(0o700)
            elif path.is_file():
                path.chmod(0o600)
        except OSError:
            pass   # not ours to change (another owner): left as it is


def make_public(path: Path) -> None:
    """A file meant to be published (the public licence register): readable by all (POSIX)."""
    if os.name == "posix":
        path.chmod(0o644)
