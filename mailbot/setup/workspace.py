"""The workspace: the one folder an office's mailbot lives in when it was started without a
terminal (``mailbot`` with no arguments, ``mailbot start``, the Start-menu shortcut).

Owns: where that folder is (``MAILBOT_HOME``; else ``Documents\\mailbot`` on Windows, ``~/mailbot``
elsewhere), making it on the first run from the starter files, and finding its ``mailbot.yaml``.
"""
from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

from ..starter import init

CONFIG = "mailbot.yaml"


def documents_folder(home: Path | None = None, platform: str = sys.platform) -> Path:
    """The user's documents folder on Windows (the profile's Documents, where File Explorer shows
    it; OneDrive's copy when the profile's is redirected there), else the home folder."""
    home = home or Path.home()
    if platform == "win32":
        for candidate in (Path(os.environ.get("OneDrive", "")) / "Documents" if os.environ.get("OneDrive") else None,
                          home / "Documents"):
            if candidate is not None and candidate.is_dir():
                return candidate
        return home / "Documents"
    return home


def workspace(env: dict[str, str] | None = None, home: Path | None = None, platform: str = sys.platform) -> Path:
    """The workspace folder: ``MAILBOT_HOME`` if set, else ``<documents>/mailbot``."""
    env = dict(os.environ) if env is None else env
    if env.get("MAILBOT_HOME"):
        return Path(env["MAILBOT_HOME"]).expanduser()
    return documents_folder(home, platform) / "mailbot"


def ensure(folder: Path, today: date) -> tuple[Path, bool]:
    """The workspace's ``mailbot.yaml``, the folder made from the starter files first if it has
    none; and whether it was made now (the first run: the console opens at the setup page)."""
    config = folder / CONFIG
    if config.is_file():
        return config, False
    init(folder, today=today)
    return config, True
