"""Backup: a verified copy of everything in a second location, and the way back.

Owns: ``mailbot backup`` — the state database through SQLite's online backup API (a
consistent copy while mailbot runs, never a raw file copy), the registers, the raw archive
and the signed results, each file listed with its SHA-256 in ``MANIFEST.json`` and re-hashed
after copying; pruning backups older than ``keep_days``; and ``mailbot restore --from DIR``,
which verifies a backup and rebuilds a working data folder from it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..config import Config
from ..errors import MailbotError
from ..thai import to_bangkok
from .archive import JOURNAL, MANIFEST, end_last_line

PREFIX = "mailbot-backup-"
DB_NAME = "state.sqlite3"


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    files: int
    bytes: int
    pruned: list[Path]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parts(cfg: Config) -> dict[str, Path]:
    """What is copied besides the database: name in the backup -> folder here."""
    return {
        "registers": cfg.registers_dir,
        "archive": cfg.data_dir / "archive",
        "results-sent": cfg.resolve(cfg.results.sent),
        "quarantine": cfg.data_dir / "quarantine",
    }


def backup_root(cfg: Config) -> Path:
    if cfg.backup.dir is None:
        raise MailbotError("ยังไม่ได้ตั้งค่าที่เก็บสำรอง (backup.dir ใน mailbot.yaml)",
                           "no backup location configured (backup.dir in mailbot.yaml)")
    root = cfg.resolve(cfg.backup.dir)
    if not root.is_dir():
        raise MailbotError(f"ไม่พบที่เก็บสำรอง {root} (ไดรฟ์ถูกถอดหรือไม่ได้เชื่อมต่อ?)",
                           f"backup location {root} is missing (drive unplugged or share not connected?)")
    return root


def backup(cfg: Config, now: datetime) -> BackupResult:
    root = backup_root(cfg)
    local = to_bangkok(now)
    stamp = f"{local.year + 543}{local:%m%d-%H%M%S}"    # Buddhist-Era date in the folder name
    work = root / f".{PREFIX}{stamp}.partial"
    final = root / f"{PREFIX}{stamp}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    manifest: dict[str, str] = {}
    # 1. the database, consistent even while another process writes to it (a host's tenant: its
    # rows exported to a SQLite file of the same shape, which a single office can restore)
    if cfg.database is not None:
        from ..store import open_state

        state = open_state(cfg)
        try:
            state.export_sqlite(work / DB_NAME)          # one snapshot (REPEATABLE READ)
        finally:
            state.close()
    else:
        copy_database(cfg.data_dir / DB_NAME, work / DB_NAME)
    manifest[DB_NAME] = _sha(work / DB_NAME)
    copy = sqlite3.connect(work / DB_NAME)
    try:
        from ..store.audit import head

        audit_head = list(head(copy))
    except sqlite3.DatabaseError:
        audit_head = None
    finally:
        copy.close()
    # 2. the folders
    for name, folder in _parts(cfg).items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith(".~mailbot-"):
                rel = Path(name) / path.relative_to(folder)
                target = work / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                manifest[rel.as_posix()] = _sha(path)
    (work / "MANIFEST.json").write_text(json.dumps(
        {"created": to_bangkok(now).isoformat(timespec="seconds"), "agency": cfg.agency.name,
         "audit_head": audit_head, "files": manifest},
        ensure_ascii=False, indent=1), encoding="utf-8")
    problems = verify(work)
    if problems:
        raise MailbotError("สำรองข้อมูลแล้วแต่ตรวจสอบไม่ผ่าน: " + problems[0],
                           f"backup written but verification failed ({len(problems)} file(s)): {problems[0]}")
    work.rename(final)
    pruned = prune(root, cfg.backup.keep_days, now)
    total = sum((final / rel).stat().st_size for rel in manifest)
    return BackupResult(final, len(manifest), total, pruned)


def verify(folder: Path) -> list[str]:
    """Files whose hash does not match the manifest (empty when the backup is sound)."""
    try:
        manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return ["MANIFEST.json missing or unreadable"]
    bad = []
    for rel, digest in manifest.items():
        path = folder / rel
        if not path.is_file() or _sha(path) != digest:
            bad.append(rel)
    return bad


def prune(root: Path, keep_days: int, now: datetime) -> list[Path]:
    cutoff = to_bangkok(now) - timedelta(days=keep_days)
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        try:
            when = datetime.strptime(folder.name[len(PREFIX):], "%Y%m%d-%H%M%S").replace(tzinfo=cutoff.tzinfo)
        except ValueError:
            continue
        if when.year > 2400:     # Buddhist-Era names (CE names from earlier versions still prune)
            when = when.replace(year=when.year - 543)
        if when < cutoff:
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def latest(cfg: Config) -> Path | None:
    if cfg.backup.dir is None:
        return None
    root = cfg.resolve(cfg.backup.dir)
    found = sorted(root.glob(f"{PREFIX}*")) if root.is_dir() else []
    return found[-1] if found else None


@dataclass
class RestoreResult:
    source: Path
    files: int
    notes: list[str]

    def lines(self) -> list[str]:
        out = [f"กู้คืนจาก {self.source} แล้ว {self.files} ไฟล์ / restored {self.files} files from {self.source}"]
        return out + self.notes


APPEND_ONLY = (MANIFEST, JOURNAL)   # logs that only grow: merged, never replaced


def restore(cfg: Config, source: Path, force: bool = False, now: datetime | None = None) -> RestoreResult:
    """Rebuild the data folder, registers and signed results from a verified backup.

    Nothing newer is destroyed: the database being replaced is kept as
    ``state.sqlite3.before-restore-<date>``, a file that differs from the backup's copy is set
    aside under a dated name, the append-only indexes are merged. Finding the numbers issued
    after the backup is the caller's next step (app.restore)."""
    now = now or datetime.now().astimezone()
    if not (source / "MANIFEST.json").is_file():
        candidates = sorted(source.glob(f"{PREFIX}*"))
        if not candidates:
            raise MailbotError(f"ไม่พบข้อมูลสำรองใน {source}", f"no backup found in {source}")
        source = candidates[-1]
    bad = verify(source)
    if bad:
        raise MailbotError(f"ข้อมูลสำรองเสียหาย ({len(bad)} ไฟล์) ไม่กู้คืน", f"backup is damaged ({bad[0]}); not restored")
    db = cfg.data_dir / DB_NAME
    if db.exists() and not force:
        raise MailbotError(f"มีข้อมูลอยู่แล้วที่ {db} ใช้ --force เพื่อเขียนทับ (ข้อมูลเดิมจะถูกเก็บไว้ ไม่ลบทิ้ง)",
                           f"{db} already exists; use --force to replace it (the current data is kept aside)")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    local = to_bangkok(now)
    stamp = f"{local.year + 543}{local:%m%d-%H%M%S}"
    notes: list[str] = []
    if db.exists():
        kept = db.with_name(f"{DB_NAME}.before-restore-{stamp}")
        _keep_database(db, kept)
        notes.append(f"เก็บฐานข้อมูลเดิมไว้ที่ {kept} / the replaced database is kept as {kept}")
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy2(source / DB_NAME, db)
    count, set_aside = 1, 0
    for name, folder in _parts(cfg).items():
        part = source / name
        if not part.is_dir():
            continue
        for path in part.rglob("*"):
            if not path.is_file():
                continue
            target = folder / path.relative_to(part)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and _sha(target) != _sha(path):
                if target.name in APPEND_ONLY:
                    _merge_lines(target, path)
                    count += 1
                    continue
                target.rename(target.with_name(f"{target.stem} (ฉบับเดิม {stamp}){target.suffix}"))
                set_aside += 1
            shutil.copy2(path, target)
            count += 1
    if set_aside:
        notes.append(f"ไฟล์ที่ใหม่กว่าข้อมูลสำรอง {set_aside} ไฟล์ถูกเก็บไว้ในชื่อ \"(ฉบับเดิม {stamp})\" ไม่ได้เขียนทับ / "
                     f"{set_aside} newer files were kept under \"(ฉบับเดิม {stamp})\" names, not overwritten")
    return RestoreResult(source, count, notes)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file with SQLite's backup API, even while another process writes."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def _keep_database(db: Path, kept: Path) -> None:
    """A consistent copy of the database being replaced; raw files when it is too damaged to read."""
    try:
        copy_database(db, kept)
    except sqlite3.DatabaseError:
        kept.unlink(missing_ok=True)
        for suffix in ("", "-wal"):
            if Path(str(db) + suffix).exists():
                shutil.copy2(Path(str(db) + suffix), Path(str(kept) + suffix))


def _merge_lines(target: Path, backup_copy: Path) -> None:
    """Append to an index the lines only the backup has (the index here is usually the longer),
    on lines of their own: a manifest's last line cut off mid-write goes (``sha256sum --strict``
    refuses it; the backup's whole line replaces it), receipts.tsv's is ended and kept (a number
    it names was issued)."""
    known = set(target.read_bytes().decode("utf-8", "replace").splitlines())
    extra = [ln for ln in backup_copy.read_text(encoding="utf-8", errors="replace").splitlines() if ln not in known]
    if extra:
        with target.open("a+b") as fh:
            end_last_line(fh, drop_cut_off=target.name == MANIFEST)
            fh.write("".join(ln + "\n" for ln in extra).encode("utf-8"))
