"""The raw-mail archive (mailbot/ops/archive.py): one file per message, each listed once in its
month's MANIFEST.sha256, which ``sha256sum -c`` checks."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailbot.files import write_atomic
from mailbot.ops.archive import MANIFEST, Archive

from .conftest import NOW, letter

RAW = bytes(letter("ขออนุญาตก่อสร้างอาคาร", sender="p@example.com"))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_each_message_is_kept_once_and_listed_once(tmp_path):
    archive = Archive(tmp_path)
    rel, digest = archive.store(RAW, NOW)
    again = Archive(tmp_path).store(RAW, NOW)                # a second run, the same message
    assert again == (rel, digest)
    assert (tmp_path / rel).read_bytes() == RAW
    folder = (tmp_path / rel).parent
    assert _lines(folder / MANIFEST) == [f"{digest}  {digest}.eml"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{digest}.eml", MANIFEST])


def test_a_file_kept_by_a_run_stopped_before_listing_it_is_listed_by_the_next(tmp_path):
    """A run killed between putting the file in place and adding its manifest line: the next run
    finds the file there (and writes nothing) and adds the line."""
    rel, digest = Archive(tmp_path).store(b"another message\r\n", NOW)     # the month's manifest exists
    folder = (tmp_path / rel).parent
    stopped = Archive(tmp_path).store(RAW, NOW)[0]
    (folder / MANIFEST).write_text(f"{digest}  {digest}.eml\n", encoding="utf-8")   # as the killed run left it
    assert (tmp_path / stopped).exists()
    _, kept = Archive(tmp_path).store(RAW, NOW)
    assert _lines(folder / MANIFEST) == [f"{digest}  {digest}.eml", f"{kept}  {kept}.eml"]
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "--strict", "-c", MANIFEST], cwd=folder, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("torn", ["3a2d878ab5", f"{'a' * 64}  {'a' * 64}.em", "\r"])
def test_a_manifest_line_cut_off_mid_write_is_removed_before_the_next(tmp_path, torn):
    """The power went while a line was written (a few characters; all but the end of the name;
    all but the LF of a CRLF). Cut off in the middle, the line goes (its message is stored again,
    and listed, when it is tried again) and is never taken for a listed file; a CRLF line that
    lacks only its LF gets it. ``sha256sum --strict -c`` then checks every line."""
    month = datetime(2027, 1, 5, 3, 0, tzinfo=timezone.utc)
    folder = tmp_path / "archive" / "2570" / "01"
    folder.mkdir(parents=True)
    digest = hashlib.sha256(RAW).hexdigest()
    earlier = hashlib.sha256(b"an earlier message\r\n").hexdigest()       # listed whole before
    (folder / f"{earlier}.eml").write_bytes(b"an earlier message\r\n")
    whole = f"{earlier}  {earlier}.eml" + ("\r\n" if torn == "\r" else "\n")
    before = whole[:-1] if torn == "\r" else whole + torn.replace("a" * 64, digest)
    (folder / MANIFEST).write_bytes(before.encode())
    rel, got = Archive(tmp_path).store(RAW, month)
    assert (rel, got) == (f"archive/2570/01/{digest}.eml", digest)
    assert (folder / MANIFEST).read_bytes() == (whole + f"{digest}  {digest}.eml\n").encode()
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "--strict", "-c", MANIFEST], cwd=folder, capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout.count(": OK") == 2, check.stdout + check.stderr


def test_a_line_another_run_cut_off_meanwhile_is_removed_before_the_next(tmp_path):
    """Another process appended to the month's manifest after this run read it, and was stopped
    mid-line: this run's next line does not run on from it."""
    archive = Archive(tmp_path)
    rel, first = archive.store(b"first message\r\n", NOW)
    manifest = (tmp_path / rel).parent / MANIFEST
    with manifest.open("ab") as fh:
        fh.write(b"0123abc")
    _, second = archive.store(RAW, NOW)
    assert _lines(manifest) == [f"{first}  {first}.eml", f"{second}  {second}.eml"]


@pytest.mark.parametrize("months", [1, 6])
def test_a_long_running_program_lists_every_month_right(tmp_path, months):
    """The manifests read are remembered for a few months only; what is listed stays right."""
    archive = Archive(tmp_path)
    kept = []
    for m in range(months):
        when = datetime(2027, 1 + m, 10, 3, 0, tzinfo=timezone.utc)
        for i in range(3):
            kept.append(archive.store(f"message {m} {i}\r\n".encode(), when))
            archive.store(f"message {m} {i}\r\n".encode(), when)          # the same again
    for rel, digest in kept:
        assert _lines((tmp_path / rel).parent / MANIFEST).count(f"{digest}  {digest}.eml") == 1


def test_a_restore_adds_the_backups_lines_after_a_line_cut_off_not_onto_it(tmp_path):
    """Restoring merges the append-only indexes (a manifest, receipts.tsv): the lines only the
    backup has go after the last line here, also when that line was cut off mid-write."""
    from mailbot.ops.backup import _merge_lines

    here, kept = tmp_path / MANIFEST, tmp_path / "backup.sha256"
    a, b = "a" * 64, "b" * 64
    here.write_bytes(f"{a}  {a}.eml\n{b}  {b}.e".encode())
    kept.write_bytes(f"{a}  {a}.eml\n{b}  {b}.eml\n".encode())
    _merge_lines(here, kept)
    assert _lines(here) == [f"{a}  {a}.eml", f"{b}  {b}.e", f"{b}  {b}.eml"]
