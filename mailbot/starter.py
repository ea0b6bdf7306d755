"""Starter files: the commented mailbot.yaml, rules.yaml and templates/ that ``mailbot init``
and ``mailbot demo`` copy.

Owns: finding them (inside the installed package as ``mailbot/starter/``, or at the top of
a source checkout) and copying them without overwriting an officer's edits.
"""
from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

from .errors import MailbotError
from .thai import BANGKOK

NAMES = ("mailbot.yaml", "rules.yaml", "templates")


def starter_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "starter", here.parent):
        if all((candidate / n).exists() for n in NAMES):
            return candidate
    raise MailbotError(
        "ไม่พบไฟล์ตั้งต้นของ mailbot (ติดตั้งไม่สมบูรณ์)",
        "mailbot's starter files are missing (incomplete installation)",
    )


def init(target: Path, today: date | None = None) -> tuple[list[Path], list[Path]]:
    """Copy the starter files into ``target``; returns (written, kept-as-they-were).

    ``today`` is the day written as ``imap.since`` (default: today in Bangkok); tests pass their
    own so that nothing depends on the calendar."""
    src = starter_dir()
    if target.exists() and not target.is_dir():
        raise MailbotError(
            f"{target} เป็นไฟล์ ไม่ใช่โฟลเดอร์ ให้ระบุโฟลเดอร์ที่จะสร้างไฟล์ตั้งต้น เช่น mailbot init C:\\mailbot",
            f"{target} is a file, not a folder; give the folder to write the starter files into",
        )
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []
    for name in NAMES:
        s, d = src / name, target / name
        if s.is_dir():
            d.mkdir(exist_ok=True)
            for f in sorted(s.iterdir()):
                if f.is_file():
                    _copy(f, d / f.name, written, kept, today)
        else:
            _copy(s, d, written, kept, today)
    for folder in ("registers", "data"):
        (target / folder).mkdir(exist_ok=True)
    return written, kept


def _copy(src: Path, dst: Path, written: list[Path], kept: list[Path], today: date | None) -> None:
    if dst.exists():
        kept.append(dst)
    elif src.name == "mailbot.yaml":    # imap.since: the day this office starts, in Buddhist-Era form
        day = today or datetime.now(BANGKOK).date()
        # quoted: unquoted, YAML would read 2571-02-29 as a Gregorian date that does not exist
        text = src.read_text(encoding="utf-8").replace(
            '  since: ""', f'  since: "{day.year + 543}-{day.month:02d}-{day.day:02d}"', 1)
        dst.write_text(text, encoding="utf-8")
        written.append(dst)
    else:
        shutil.copyfile(src, dst)
        written.append(dst)
