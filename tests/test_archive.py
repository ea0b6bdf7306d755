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


@pytest.mark.parametrize("name", [MANIFEST, "receipts.tsv"])
@pytest.mark.parametrize("ending", ["cut off", "CR only"])
def test_a_restore_adds_the_backups_lines_after_a_line_cut_off_not_onto_it(tmp_path, name, ending):
    """Restoring merges the append-only indexes (a manifest, receipts.tsv): the lines only the
    backup has go on lines of their own, also when the last line here was cut off mid-write. A
    manifest's cut-off line goes (``sha256sum --strict`` refuses it); receipts.tsv keeps it (a
    number it names was issued); a line lacking only its LF gets it."""
    from mailbot.ops.backup import _merge_lines

    folder = tmp_path / "here"
    folder.mkdir()
    here, kept = folder / name, tmp_path / "backup.copy"
    a, b = (hashlib.sha256(x).hexdigest() for x in (b"a\r\n", b"b\r\n"))
    (folder / f"{a}.eml").write_bytes(b"a\r\n")
    (folder / f"{b}.eml").write_bytes(b"b\r\n")
    last = f"{b}  {b}.e" if ending == "cut off" else f"{a}  {a}.eml\r"
    here.write_bytes(f"{a}  {a}.eml\n{last}".encode())
    kept.write_bytes(f"{a}  {a}.eml\n{b}  {b}.eml\n".encode())
    _merge_lines(here, kept)
    if ending == "CR only":
        assert here.read_bytes() == f"{a}  {a}.eml\n{a}  {a}.eml\r\n{b}  {b}.eml\n".encode()
    elif name == MANIFEST:
        assert here.read_bytes() == f"{a}  {a}.eml\n{b}  {b}.eml\n".encode()
    else:
        assert here.read_bytes() == f"{a}  {a}.eml\n{b}  {b}.e\n{b}  {b}.eml\n".encode()
    if name == MANIFEST and shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "--strict", "-c", MANIFEST], cwd=folder, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("junk", [b"\0" * 4096, b"x" * 600])
def test_a_long_cut_off_tail_is_removed_too(tmp_path, junk):
    """A block of NUL bytes (what some file systems leave after a power cut), or a cut-off line
    longer than a line: back to the last line end."""
    archive = Archive(tmp_path)
    rel, first = archive.store(b"first message\r\n", NOW)
    manifest = (tmp_path / rel).parent / MANIFEST
    with manifest.open("ab") as fh:
        fh.write(junk)
    _, second = Archive(tmp_path).store(RAW, NOW)
    assert manifest.read_bytes() == f"{first}  {first}.eml\n{second}  {second}.eml\n".encode()


def test_a_whole_line_lacking_only_its_lf_is_dropped_and_listed_again(tmp_path):
    """Its own line cut off just before the LF: the manifest does not count it, so the file is
    listed again when its message is stored again (as every undecided message is)."""
    archive = Archive(tmp_path)
    rel, digest = archive.store(RAW, NOW)
    manifest = (tmp_path / rel).parent / MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:-1])
    Archive(tmp_path).store(RAW, NOW)
    assert manifest.read_bytes() == f"{digest}  {digest}.eml\n".encode()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names the synced files through /proc (Linux)")
def test_the_manifest_lines_are_on_disk_before_the_messages_are_decided(tmp_path, monkeypatch):
    """One fsync per month's manifest per batch, after its messages are archived and before any
    of them is decided."""
    import os as os_module

    from mailbot.ops import archive as archive_module

    archive = Archive(tmp_path)
    synced: list[str] = []
    fsync = os_module.fsync
    monkeypatch.setattr(archive_module.os, "fsync", lambda fd: synced.append(os_module.readlink(f"/proc/self/fd/{fd}"))
                        or fsync(fd))
    rel, _ = archive.store(RAW, NOW)
    archive.store(b"another\r\n", NOW)

    def manifests() -> list[str]:
        return [path for path in synced if path.endswith(MANIFEST)]

    assert manifests() == []
    archive.sync()
    assert manifests() == [str((tmp_path / rel).parent / MANIFEST)]
    archive.sync()
    assert len(manifests()) == 1                    # nothing new: nothing to do
