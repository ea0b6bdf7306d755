"""Starting with the computer: the setup's "run every day" step.

Owns: making mailbot start when the officer signs in — a Task Scheduler task at log-on on
Windows (``schtasks``, the user's own task: no administrator right needed), a systemd user unit
elsewhere (``~/.config/systemd/user/mailbot.service``) — telling whether it is in place, and
removing it again. What it runs is ``mailbot start --no-browser`` in the workspace.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import MailbotError

TASK = "mailbot งานสารบรรณ"
UNIT = "mailbot.service"


@dataclass
class Autostart:
    on: bool
    where: str          # the task's or the unit's name, for the page
    detail: str = ""    # what the officer should know (Thai)


def command(workspace: Path, exe: str | None = None) -> list[str]:
    """What starts mailbot in ``workspace``: the installed ``mailbot`` (or this Python's -m mailbot)."""
    found = exe or shutil.which("mailbot")
    base = [found] if found else [sys.executable, "-m", "mailbot"]
    return base + ["--config", str(workspace / "mailbot.yaml"), "start", "--no-browser"]


def unit_path(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "systemd" / "user" / UNIT


def unit_text(workspace: Path, cmd: list[str]) -> str:
    quoted = " ".join(f'"{c}"' if " " in c else c for c in cmd)
    return ("[Unit]\n"
            "Description=mailbot งานสารบรรณ (saraban mailbox)\n"
            "After=network-online.target\n\n"
            "[Service]\n"
            f"WorkingDirectory={workspace}\n"
            f"ExecStart={quoted}\n"
            "Restart=on-failure\n"
            "RestartSec=30\n\n"
            "[Install]\n"
            "WantedBy=default.target\n")


def _run(args: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None


def status(platform: str = sys.platform, env: dict[str, str] | None = None) -> Autostart:
    if platform == "win32":
        done = _run(["schtasks", "/Query", "/TN", TASK])
        return Autostart(done is not None and done.returncode == 0, TASK)
    path = unit_path(env)
    return Autostart(path.is_file(), str(path))


def install(workspace: Path, platform: str = sys.platform, env: dict[str, str] | None = None,
            exe: str | None = None) -> Autostart:
    cmd = command(workspace, exe)
    if platform == "win32":
        line = " ".join(f'"{c}"' for c in cmd)
        done = _run(["schtasks", "/Create", "/F", "/SC", "ONLOGON", "/TN", TASK, "/TR", line, "/RL", "LIMITED"])
        if done is None or done.returncode != 0:
            raise MailbotError("ตั้งให้ mailbot เริ่มทำงานเมื่อเปิดเครื่องไม่สำเร็จ (Task Scheduler ไม่ยอมรับ)",
                               f"Task Scheduler refused the task: {(done.stderr if done else '')[:200]}")
        return Autostart(True, TASK)
    path = unit_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".new")
    tmp.write_text(unit_text(workspace, cmd), encoding="utf-8")
    os.replace(tmp, path)
    detail = ""
    if shutil.which("systemctl"):
        done = _run(["systemctl", "--user", "enable", "--now", UNIT])
        if done is None or done.returncode != 0:
            detail = ("เขียนไฟล์ตั้งเวลาแล้ว แต่ระบบยังไม่ได้เปิดใช้ (systemctl --user ไม่ทำงานในเครื่องนี้) "
                      "จะเริ่มทำงานเมื่อเข้าสู่ระบบครั้งถัดไป")
    else:
        detail = "เครื่องนี้ไม่มี systemd: เขียนไฟล์ตั้งเวลาไว้แล้ว แต่ต้องให้ผู้ดูแลเปิดใช้"
    return Autostart(True, str(path), detail)


def remove(platform: str = sys.platform, env: dict[str, str] | None = None) -> Autostart:
    if platform == "win32":
        _run(["schtasks", "/Delete", "/F", "/TN", TASK])
        return status(platform, env)
    path = unit_path(env)
    if shutil.which("systemctl") and path.exists():
        _run(["systemctl", "--user", "disable", UNIT])
    path.unlink(missing_ok=True)
    return Autostart(False, str(path))
