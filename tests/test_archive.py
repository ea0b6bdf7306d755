"""The raw-mail archive (mailbot/ops/archive.py): one file per message, each listed once in its
month's MANIFEST.sha256, which ``sha256sum -c`` checks."""
from __future__ import annotations

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


def test_a_manifest_line_cut_off_mid_write_does_not_swallow_the_next(tmp_path):
    month = datetime(2027, 1, 5, 3, 0, tzinfo=timezone.utc)
    folder = tmp_path / "archive" / "2570" / "01"
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text("3a2d878ab5", encoding="utf-8")           # the power went mid-line
    rel, digest = Archive(tmp_path).store(RAW, month)
    assert rel == f"archive/2570/01/{digest}.eml"
    assert _lines(folder / MANIFEST) == ["3a2d878ab5", f"{digest}  {digest}.eml"]


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
