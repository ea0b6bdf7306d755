"""Compiled reply templates are kept in the data folder between runs, and never stand in for
a template that changed or a cache that cannot be used."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailbot.casework import replies
from mailbot.casework.replies import Templates, sample_context
from mailbot.config import AgencyConfig

ROOT = Path(__file__).resolve().parents[1]
AGENCY = AgencyConfig(name="เทศบาลตำบลบ้านตัวอย่าง", address="saraban@example.go.th")
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)


def _fresh(folder: Path, cache: Path | None) -> Templates:
    replies._environment.cache_clear()      # as a new process: nothing compiled in memory
    return Templates(folder, cache=cache)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path / "templates"


def test_a_new_run_uses_the_templates_compiled_before(folder: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "data" / "cache"
    first = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    kept = list(cache.glob("templates-*/*.cache"))
    assert kept, "nothing was kept"
    compiled: list[str] = []
    original = replies.jinja2.Environment.compile
    monkeypatch.setattr(replies.jinja2.Environment, "compile",
                        lambda self, *a, **k: compiled.append(str(a[1:2])) or original(self, *a, **k))
    again = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    assert again == first
    assert compiled == [], f"compiled again: {compiled}"


def test_an_edited_template_is_compiled_again(folder: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    before = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    path = folder / "receipt.txt.j2"
    path.write_text(path.read_text(encoding="utf-8") + "\nบรรทัดที่เจ้าหน้าที่เพิ่ม\n", encoding="utf-8")
    after = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    assert after != before and "บรรทัดที่เจ้าหน้าที่เพิ่ม" in after


def test_a_damaged_cache_entry_is_compiled_from_the_source(folder: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    want = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    for entry in cache.glob("templates-*/*.cache"):
        entry.write_bytes(entry.read_bytes()[:40] + b"\x00garbage")
    assert _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW)) == want


def test_a_cache_that_cannot_be_written_only_costs_the_compiling(folder: Path, tmp_path: Path):
    want = _fresh(folder, None).render("receipt", sample_context(AGENCY, NOW))
    cache = tmp_path / "cache"
    templates = _fresh(folder, cache)
    for made in cache.iterdir():          # gone after it was opened (a cleaner, a full disk)
        shutil.rmtree(made)
    assert templates.render("receipt", sample_context(AGENCY, NOW)) == want
    assert not any(cache.iterdir())


def test_a_cache_folder_that_is_a_file_only_costs_the_compiling(folder: Path, tmp_path: Path):
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    want = _fresh(folder, None).render("receipt", sample_context(AGENCY, NOW))
    assert _fresh(folder, blocked).render("receipt", sample_context(AGENCY, NOW)) == want


def test_an_upgrade_leaves_no_compiled_set_behind_nor_half_written_entries(folder: Path, tmp_path: Path):
    """Another version's compiled set goes at the next start, with a ``.tmp`` a killed run left
    an hour or more ago; one being written now (a run beside this one) stays."""
    import os
    import time

    cache = tmp_path / "cache"
    _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    (current,) = cache.glob("templates-*")
    old = cache / "templates-0123456789ab"          # what the version before wrote
    old.mkdir()
    (old / "__jinja2_x.cache").write_bytes(b"old")
    stale, writing = current / "_x1.tmp", current / "_x2.tmp"
    for path, age in ((stale, 7200), (writing, 10)):
        path.write_bytes(b"half")
        os.utime(path, (time.time() - age, time.time() - age))
    elsewhere = tmp_path / "mine.tmp"               # outside the cache: never touched
    elsewhere.write_bytes(b"keep")
    _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    assert sorted(p.name for p in cache.iterdir()) == [current.name]
    assert not stale.exists() and writing.exists() and elsewhere.exists()
    assert list(current.glob("*.cache")), "the current set was kept"


def test_a_linked_folder_in_the_cache_is_left_alone(folder: Path, tmp_path: Path):
    """Only real folders of compiled sets are removed: a link named like one, and what it points
    to, stay (``_tidy`` skips links, and ``shutil.rmtree`` refuses them too: this holds the
    behaviour, whichever of the two a later change keeps)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "officer-files"
    outside.mkdir()
    (outside / "keep.txt").write_text("x", encoding="utf-8")
    (cache / "templates-linked").symlink_to(outside, target_is_directory=True)
    _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    assert (cache / "templates-linked").is_symlink() and (outside / "keep.txt").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions (on Windows the data folder's own are the guard)")
@pytest.mark.parametrize("how", ["anyone may write the cache", "its group may write the set", "the set is a link",
                                 "anyone may write the data folder"])
def test_a_cache_someone_else_could_write_is_not_used(folder: Path, tmp_path: Path, how: str, monkeypatch):
    """Compiled templates are code that runs: what another user could have put in the cache is
    neither read nor added to, and the mail is written as without a cache."""
    cache = tmp_path / "data" / "cache"
    want = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    (kept,) = cache.glob("templates-*")
    if how == "anyone may write the cache":
        cache.chmod(0o777)
    elif how == "its group may write the set":
        kept.chmod(0o770)
    elif how == "anyone may write the data folder":       # the cache could be swapped meanwhile
        cache.parent.chmod(0o777)
    else:
        elsewhere = tmp_path / "elsewhere"
        kept.rename(elsewhere)
        kept.symlink_to(elsewhere, target_is_directory=True)
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.cache")}
    read: list[str] = []
    load = replies._CompiledCache.load_bytecode
    monkeypatch.setattr(replies._CompiledCache, "load_bytecode",
                        lambda self, bucket: read.append(bucket.key) or load(self, bucket))
    assert replies._compiled_cache(str(cache)) is None
    assert _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW)) == want
    assert read == []
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.cache")} == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions (on Windows the data folder's own are the guard)")
def test_an_entry_put_there_while_the_cache_was_open_to_others_is_not_read(folder: Path, tmp_path: Path, monkeypatch):
    """The folders are private again, but an entry someone else could write (anyone may, here)
    is compiled from the source instead of read."""
    cache = tmp_path / "data" / "cache"
    want = _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    entries = list(cache.glob("templates-*/*.cache"))
    assert entries
    for entry in entries:
        entry.chmod(0o666)
    read: list[str] = []
    load = replies.jinja2.FileSystemBytecodeCache.load_bytecode
    monkeypatch.setattr(replies.jinja2.FileSystemBytecodeCache, "load_bytecode",
                        lambda self, bucket: read.append(bucket.key) or load(self, bucket))
    assert _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW)) == want
    assert read == []
    for entry in entries:
        entry.chmod(0o600)
    assert _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW)) == want
    assert read                                   # a private entry is read as before


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and links")
def test_a_data_folder_that_is_a_link_to_a_private_one_keeps_its_cache(folder: Path, tmp_path: Path):
    """The data folder on another disk, through a link: the folder it leads to is checked."""
    real = tmp_path / "disk2" / "data"
    real.mkdir(parents=True, mode=0o700)
    (tmp_path / "data").symlink_to(real, target_is_directory=True)
    cache = tmp_path / "data" / "cache"
    _fresh(folder, cache).render("receipt", sample_context(AGENCY, NOW))
    assert replies._compiled_cache(str(cache)) is not None
    assert list(real.glob("cache/templates-*/*.cache"))


def test_each_template_is_looked_up_once_per_office_and_an_edit_reaches_the_next(folder: Path, tmp_path: Path,
                                                                                 monkeypatch):
    """One office (a cycle, a console request) looks each template up once, not once a reply (jinja2
    checks the file's time at each look); the next office reads an officer's edit."""
    templates = _fresh(folder, tmp_path / "cache")
    looked: list[str] = []
    original = replies.jinja2.Environment.get_template
    monkeypatch.setattr(replies.jinja2.Environment, "get_template",
                        lambda self, name, parent=None, *a, **k: (parent is None and looked.append(name))
                        or original(self, name, parent, *a, **k))      # (not an include's own look)
    english = {**sample_context(AGENCY, NOW), "language": "en"}
    first = [templates.render("receipt", sample_context(AGENCY, NOW)) for _ in range(3)]
    [templates.render("receipt", english) for _ in range(3)]
    assert looked.count("receipt.txt.j2") == 1 and looked.count("receipt.en.txt.j2") == 1
    path = folder / "receipt.txt.j2"
    path.write_text(path.read_text(encoding="utf-8") + "\nบรรทัดที่เจ้าหน้าที่เพิ่ม\n", encoding="utf-8")
    assert templates.render("receipt", sample_context(AGENCY, NOW)) == first[0]       # this office: as it began
    after = Templates(folder, cache=tmp_path / "cache").render("receipt", sample_context(AGENCY, NOW))
    assert "บรรทัดที่เจ้าหน้าที่เพิ่ม" in after                                         # the next one: the edit


def test_an_included_file_is_looked_at_once_per_office_and_an_edit_reaches_the_next(folder: Path, tmp_path: Path,
                                                                                    monkeypatch):
    """The parts a receipt includes (checklist, fee, footer) are checked against their files once
    per office, not on every reply (jinja2 stats each include at each render); an officer's edit of
    one is read by the next office (here, with no other office meanwhile, not by the one that had
    begun)."""
    templates = _fresh(folder, tmp_path / "cache")
    ctx = sample_context(AGENCY, NOW)
    first = templates.render("receipt", ctx)
    looked: list[str] = []
    original = os.path.getmtime
    monkeypatch.setattr(os.path, "getmtime", lambda p: looked.append(str(p)) or original(p))
    for _ in range(5):
        assert templates.render("receipt", ctx) == first
    assert not looked                      # this office checked them when it loaded them
    footer = folder / "_footer.txt.j2"
    footer.write_text(footer.read_text(encoding="utf-8") + "\nท้ายข้อความที่เจ้าหน้าที่แก้\n", encoding="utf-8")
    os.utime(footer, (footer.stat().st_atime, footer.stat().st_mtime + 5))    # a later time, whatever the clock's grain
    assert templates.render("receipt", ctx) == first                         # this office: as it began
    nxt = Templates(folder, cache=tmp_path / "cache")
    looked.clear()
    after = [nxt.render("receipt", ctx) for _ in range(5)]
    assert "ท้ายข้อความที่เจ้าหน้าที่แก้" in after[0] and len(set(after)) == 1  # the next one: the edit
    assert looked.count(str(footer)) <= 2     # looked at once (and read once, as it changed), not per reply


def test_an_edit_made_while_another_office_read_the_file_reaches_the_next_office(folder: Path, tmp_path: Path,
                                                                                  monkeypatch):
    """One office (a console request) reads the footer; the officer saves an edit and another office
    (a cycle) starts while that read is still under way: the cycle's receipts carry the edit."""
    templates = _fresh(folder, tmp_path / "cache")
    ctx = sample_context(AGENCY, NOW)
    footer = folder / "_footer.txt.j2"
    original = replies.jinja2.FileSystemLoader.get_source
    later: list[Templates] = []

    def reading(self, environment, name):
        got = original(self, environment, name)
        if name == "_footer.txt.j2" and not later:       # read as it was; then the edit, and the next office
            footer.write_text(footer.read_text(encoding="utf-8") + "\nแก้ระหว่างอ่าน\n", encoding="utf-8")
            os.utime(footer, (footer.stat().st_atime, footer.stat().st_mtime + 5))
            later.append(Templates(folder, cache=tmp_path / "cache"))
        return got

    monkeypatch.setattr(replies.jinja2.FileSystemLoader, "get_source", reading)
    assert "แก้ระหว่างอ่าน" not in templates.render("receipt", ctx)     # read before the edit
    assert later and "แก้ระหว่างอ่าน" in later[0].render("receipt", ctx)


def test_an_officers_own_copy_of_a_starter_template_reaches_the_next_office(folder: Path, tmp_path: Path):
    """A template the agency's folder lacked came from the starter set; once the officer puts a
    copy of their own there, the next office uses it (while the program keeps running)."""
    footer = folder / "_footer.txt.j2"
    shipped = footer.read_text(encoding="utf-8")
    footer.unlink()
    ctx = sample_context(AGENCY, NOW)
    before = _fresh(folder, tmp_path / "cache").render("receipt", ctx)
    footer.write_text(shipped + "\nท้ายข้อความของหน่วยงานเอง\n", encoding="utf-8")
    after = Templates(folder, cache=tmp_path / "cache").render("receipt", ctx)
    assert "ท้ายข้อความของหน่วยงานเอง" not in before and "ท้ายข้อความของหน่วยงานเอง" in after
