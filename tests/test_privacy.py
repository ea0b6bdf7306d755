"""Privacy prune under attack: only files mailbot recorded itself, inside data/archive and
data/quarantine, can ever be deleted (issue 21, item 1)."""
from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from .conftest import letter


def files_outside(root: Path, data: Path) -> dict[str, bytes]:
    """Every file of the workspace (and the sentinel beside it) except the prunable folders."""
    keep = {}
    for path in sorted(root.parent.rglob("*")):
        if not path.is_file() or (data / "archive") in path.parents or (data / "quarantine") in path.parents:
            continue
        if path.name.endswith(("-wal", "-shm")) or path.suffix in (".sqlite3", ".log"):   # changed by any command
            keep[str(path)] = b""
            continue
        keep[str(path)] = path.read_bytes()
    return keep


@pytest.mark.slow   # the command line, as a subprocess
def test_prune_never_deletes_a_path_named_in_a_header_or_recorded_outside_data(env):
    data = env.cfg.data_dir
    sentinel = env.root.parent / "sentinel.txt"
    sentinel.write_text("outside the workspace", encoding="utf-8")
    (env.root / "certs").mkdir(exist_ok=True)
    (env.root / "certs" / "agency.p12").write_bytes(b"not really a key")
    # the attack: the sender's own Auto-Submitted value lands in the recorded reason
    targets = ["../mailbot.yaml", "state.sqlite3", "../certs/agency.p12", str(sentinel), "../../sentinel.txt"]
    env.deliver(*[letter(f"ตอบกลับอัตโนมัติ {i}", sender=f"bot{i}@example.com",
                         Auto_Submitted=f"auto-replied (copy: {t}")
                  for i, t in enumerate(targets)],
                *[letter(f"ตอบกลับอัตโนมัติ ปิด {i}", sender=f"bot{i}@example.com",
                         Auto_Submitted=f"auto-replied (copy: {t})") for i, t in enumerate(targets)],
                letter("ร้องเรียนถนนชำรุด", sender="citizen@example.com"),
                b"\r\n\r\n")                                            # quarantined: a real copy
    report = env.cycle()
    assert report.counts().get("automatic") == 2 * len(targets), report.counts()
    con = sqlite3.connect(data / "state.sqlite3")
    assert con.execute("SELECT count(*) FROM messages WHERE reason LIKE '%(copy: %'").fetchone()[0] >= len(targets)
    [(qcopy,)] = con.execute("SELECT quarantine_copy FROM messages WHERE outcome='quarantined'").fetchall()
    assert qcopy.startswith("quarantine/") and (data / qcopy).is_file()
    # a tampered or hand-restored database naming files outside data/archive and data/quarantine
    con.execute("UPDATE messages SET archive='../mailbot.yaml' WHERE subject LIKE '%อัตโนมัติ 0'")
    con.execute("UPDATE messages SET quarantine_copy='quarantine/../../mailbot.yaml' WHERE subject LIKE '%อัตโนมัติ 1'")
    con.execute("UPDATE messages SET archive=? WHERE subject LIKE '%อัตโนมัติ 2'", (str(sentinel),))
    con.execute("UPDATE messages SET archive='archive/../state.sqlite3' WHERE subject LIKE '%อัตโนมัติ 3'")
    con.execute("UPDATE cases SET status='closed'")
    con.commit()
    con.close()
    before = files_outside(env.root, data)
    archived = list((data / "archive").rglob("*.eml"))
    assert archived

    later = (env.clock() + timedelta(days=365 * 11)).strftime("%Y-%m-%dT%H:%M")
    r = env.cli("privacy", "prune", "--yes", env={"MAILBOT_NOW": later, "MAILBOT_TEST_CLOCK": "1"})
    assert r.returncode == 0, r.stderr
    assert "ไม่ลบ 4 รายการ" in r.stdout                              # the four planted paths, named
    after = files_outside(env.root, data)
    assert {p: after.get(p) for p in before} == before             # 0 files outside archive/quarantine deleted
    assert (env.root / "mailbot.yaml").is_file() and (data / "state.sqlite3").is_file() and sentinel.is_file()
    # what mailbot recorded itself, inside its own folders, did go
    # (3 stay: the rows whose archive column was overwritten above no longer name them)
    assert len(list((data / "archive").rglob("*.eml"))) == 3 and len(archived) > 3
    assert not (data / qcopy).exists() and not (data / qcopy).with_suffix(".txt").exists()


def test_a_quarantine_copy_recorded_by_an_earlier_release_is_taken_only_in_mailbots_own_form():
    from mailbot.store.schema import _OWN_QUARANTINE_COPY

    assert _OWN_QUARANTINE_COPY.search("processing failed: X (copy: quarantine/25691204-100000-uid7.eml)")
    for forged in ("auto-replied (copy: ../mailbot.yaml)", "x (copy: quarantine/../../mailbot.yaml)",
                   "x (copy: quarantine/25691204-100000-uid7.eml) trailing", "x (copy: /etc/passwd)"):
        assert not _OWN_QUARANTINE_COPY.search(forged), forged


@pytest.mark.slow   # the command line, as a subprocess
def test_privacy_export_keeps_formula_looking_cells_as_text(env, tmp_path):
    import csv

    tricky = ['=HYPERLINK("http://evil.example","คลิก")', "+1+2", "-2+3", "@SUM(1)", "\tx"]
    env.deliver(*[letter(s, sender="=cmd|' /C calc'!A0 <somchai@example.com>") for s in tricky])
    env.cycle()
    r = env.cli("privacy", "export", "somchai@example.com", "--to", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    [folder] = list((tmp_path / "out").iterdir())
    with open(folder / "เรื่องที่ยื่น (cases).csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == len(tricky)
    for row in rows:
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t") for cell in row), row
    assert {row[2] for row in rows} >= {"'" + s for s in tricky[:4]}
    assert all(row[5].startswith("'=cmd") for row in rows)


@pytest.mark.slow   # the command line, as a subprocess
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes; Windows keeps a user's profile private")
def test_personal_data_is_the_owners_alone(env):
    """0600 files in 0700 folders: the database, the log, the archive of citizens' mail, the
    quarantine; also what an older release left readable to all (umask 022)."""
    data = env.cfg.data_dir
    data.mkdir(parents=True, exist_ok=True)
    old = data / "archive" / "2569" / "11"
    old.mkdir(parents=True)
    (old / "old.eml").write_bytes(b"Subject: x\r\n\r\nkept by round 2")
    for p in (data, data / "archive", data / "archive" / "2569", old):
        p.chmod(0o755)
    (old / "old.eml").chmod(0o644)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), b"\r\n\r\n")
    r = env.cli("poll")
    assert r.returncode == 0, r.stderr
    loose = [(str(p.relative_to(env.root)), oct(p.stat().st_mode & 0o777)) for p in [data, *data.rglob("*")]
             if p.stat().st_mode & 0o077]
    assert loose == [], loose
    assert (data / "state.sqlite3").stat().st_mode & 0o777 == 0o600
    assert list(data.rglob("*.log")) and list((data / "quarantine").glob("*.eml"))
