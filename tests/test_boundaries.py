"""The shape of the package, held by a test: pure modules do no I/O, only the mailbox and sender
modules talk IMAP or SMTP, and the faces call the application core instead of each other.

Imports are read from the source with ``ast`` (including imports inside functions), so a
late import cannot slip past."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mailbot"

# take data, return decisions: no network, no disk, no clock of their own
PURE = ["thai", "charsets", "parse", "classify", "completeness", "workflow", "schedule", "forwarded",
        "kinds", "addresses", "promptpay", "trust", "triage"]
IO_MODULES = {"socket", "ssl", "sqlite3", "imapclient", "aiosmtplib", "smtplib", "imaplib", "urllib",
              "http", "requests", "subprocess", "shutil", "tempfile", "filelock", "apscheduler", "openpyxl",
              "pyhanko", "fpdf", "asyncio", "threading", "os"}
# mailbot modules a pure module may import (the others are at the edges)
PURE_MAY_IMPORT = set(PURE) | {"config", "errors"}
FACES = ["cli", "daemon", "demo"]


def imports(module: str) -> set[str]:
    path = PACKAGE / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split("/")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:        # from .x import y / from . import x (relative to the module's package)
                parts = ["mailbot", *package][: len(package) + 2 - node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
                if node.module:
                    found.add(base)
                else:
                    found.update(f"{base}.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module):
    names = imports(module)
    top = {n.split(".")[0] for n in names if not n.startswith("mailbot.")}
    assert not (top & IO_MODULES), f"{module} imports {sorted(top & IO_MODULES)}"
    ours = {n.split(".")[1] for n in names if n.startswith("mailbot.")}
    assert ours <= PURE_MAY_IMPORT, f"{module} imports {sorted(ours - PURE_MAY_IMPORT)}"


def all_modules() -> list[str]:
    return sorted(str(p.relative_to(PACKAGE).with_suffix("")) for p in PACKAGE.rglob("*.py"))


def test_only_the_mailbox_and_sender_modules_talk_imap_or_smtp():
    for module in all_modules():
        path = PACKAGE / f"{module}.py"
        names = {n.split(".")[0] for n in imports(module)}
        if "imapclient" in names:
            assert module in ("fetch", "servers"), f"{module} imports imapclient"
        if "aiosmtplib" in names:
            assert module == "send", f"{module} imports aiosmtplib"


def test_faces_call_the_core_not_each_other():
    """The command line is the entry point that starts the service and the demo; neither of
    them reaches back into it or into each other."""
    for face in ("daemon", "demo"):
        ours = {n.split(".")[1] for n in imports(face) if n.startswith("mailbot.")}
        assert not ours & (set(FACES) - {face}), f"{face} imports {ours & set(FACES)}"
        assert "app" in ours, f"{face} does not use the application core"
    assert "mailbot.cli" not in imports("daemon")
    console = [m for m in all_modules() if m.startswith("console/")]
    assert console, "the console package is missing"
    used = set().union(*(imports(m) for m in console))
    assert "mailbot.app" in used, "the console does not use the application core"
    assert not {"mailbot.cli", "mailbot.daemon", "mailbot.demo", "mailbot.pipeline"} & used


def test_only_the_core_wires_the_office():
    """State, rules, templates, desk, outbox and alerts are put together in app.py alone."""
    wiring = {"State(", "Desk(", "Outbox(", "Alerts(", "Templates("}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in ("app", "checks"):
            continue
        text = path.read_text(encoding="utf-8")
        for needle in wiring:
            assert f" {needle}" not in text and f"={needle}" not in text, f"{path.stem} builds {needle[:-1]} itself"


def test_every_module_says_what_it_owns():
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in ("__init__", "__main__"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{path.stem} has no module docstring"
