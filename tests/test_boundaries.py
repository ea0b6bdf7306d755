"""The shape of the package, held by a test: the rooms a message passes through, what each may
import, and that nothing imports in a circle.

Imports are read from the source with ``ast`` (including imports inside functions and under
``TYPE_CHECKING``), walking every file with ``rglob`` so that sub-packages such as
``console/`` are covered, so a late import cannot slip past."""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mailbot"

# the rooms, in the order a message passes through them, and the ground they stand on
ROOMS = ("mail", "intake", "casework", "documents", "registers", "ops", "setup", "store", "console", "host")
GROUND = {"config", "errors", "clock", "thai", "kinds", "files", "faults", "starter"}
FACES = {"cli", "demo", "console", "present", "host.console"}   # host.console: the host's web (agencies' consoles)
RUNNERS = {"ops.daemon",     # the service: drives the core on a schedule and serves the console
           "host.worker"}    # a host's worker: drives the core of each agency as jobs of its queue

# take data, return decisions: no network, no disk, no clock of their own
PURE = ["thai", "kinds", "mail.charsets", "mail.parse", "mail.addresses", "mail.forwarded", "mail.language",
        "intake.classify",
        "intake.verdict",
        "casework.completeness", "casework.workflow", "casework.wording", "casework.triage", "casework.trust",
        "documents.promptpay", "ops.schedule"]
IO_MODULES = {"socket", "ssl", "sqlite3", "imapclient", "aiosmtplib", "smtplib", "imaplib", "urllib",
              "http", "requests", "subprocess", "shutil", "tempfile", "filelock", "apscheduler", "openpyxl",
              "pyhanko", "fpdf", "asyncio", "threading", "os"}
# mailbot modules a pure module may import: other pure ones and the settings it is given
PURE_MAY_IMPORT = set(PURE) | {"config", "errors"}


def name_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {name_of(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module a mailbot module imports (``mailbot.``-less for our own, full for others)."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "":
        package = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name[len("mailbot."):] if alias.name.startswith("mailbot.") else alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "mailbot" or node.module.startswith("mailbot.")):
                mod = node.module[len("mailbot."):] if node.module != "mailbot" else ""
            else:
                found.add(node.module or "")
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}" if mod else alias.name
                found.add(sub if sub in modules() else mod)
    return frozenset(found)


def ours(module: str) -> set[str]:
    return {m for m in imports(module) if m in modules() and m != module}


def room(module: str) -> str:
    return module.split(".")[0]


def test_the_rooms_exist_and_nothing_else_sits_at_the_top():
    top = {m for m in modules() if "." not in m and m}
    rooms = {m for m in top if (PACKAGE / m).is_dir()}
    assert rooms == set(ROOMS), rooms
    assert top - rooms <= GROUND | FACES | {"app", "__main__"}, sorted(top - rooms - GROUND - FACES)


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import, late ones included."""
    graph = {m: ours(m) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == [], cycles


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module):
    names = imports(module)
    top = {n.split(".")[0] for n in names if n not in modules()}
    assert not (top & IO_MODULES), f"{module} imports {sorted(top & IO_MODULES)}"
    mine = ours(module) - {room(module)}
    assert mine <= PURE_MAY_IMPORT, f"{module} imports {sorted(mine - PURE_MAY_IMPORT)}"


def test_the_ground_stands_on_nothing_above_it():
    """config, errors, clock, thai, kinds ...: no room, no face, no core (registers.numbering is
    the one room module config reads, to check a number pattern)."""
    for module in GROUND:
        above = {m for m in ours(module) if room(m) not in GROUND}
        assert above <= {"registers.numbering", "registers"}, f"{module} imports {sorted(above)}"


def test_only_the_mailbox_and_smtp_modules_talk_imap_or_smtp():
    for module in modules():
        names = {n.split(".")[0] for n in imports(module)}
        if "imapclient" in names:
            assert module in ("mail.mailbox", "mail.servers"), f"{module} imports imapclient"
        if "aiosmtplib" in names:
            assert module == "mail.smtp", f"{module} imports aiosmtplib"


def test_only_the_store_opens_sqlite():
    """Every SQL statement lives in store/; ops.backup uses SQLite's backup API (a copy of the
    file, no SQL) and ops.restore-time checks open the copy it made."""
    for module, path in modules().items():
        if room(module) == "store" or module == "ops.backup":
            continue
        assert "sqlite3" not in imports(module), f"{module} imports sqlite3"
        assert not {n for n in imports(module) if n.split(".")[0] == "psycopg"}, f"{module} imports psycopg"
        text = path.read_text(encoding="utf-8")
        for call in (".execute(", ".executemany(", ".executescript("):
            assert call not in text, f"{module} runs SQL ({call})"
        # nor reaches for the store's connection: callers see methods
        tree = ast.parse(text)
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "db"], \
            f"{module} uses the store's raw connection (.db)"


def test_rooms_do_not_reach_into_the_faces_or_the_core():
    for module in modules():
        if room(module) in ("console",) or module in FACES | RUNNERS | {"app", "__main__"}:
            continue
        reached = {m for m in ours(module) if m in FACES or room(m) == "console" or m == "app"}
        assert not reached, f"{module} imports {sorted(reached)}"


def test_faces_call_the_core_not_each_other():
    """The command line starts the service, the console and the demo; none of them reaches back
    into it or into each other; each goes through app.Office."""
    console = {m for m in modules() if room(m) == "console"}
    used = set().union(*(ours(m) for m in console))
    assert "app" in used, "the console does not use the application core"
    assert not {"cli", "demo", "ops.daemon", "intake.cycle"} & used
    assert "app" in ours("demo") and "cli" not in ours("demo")
    assert "cli" not in ours("ops.daemon")


def test_only_the_core_wires_the_office():
    """State, rules, templates, desk, outbox and alerts are put together in app.py alone."""
    wiring = {"State(", "Desk(", "Outbox(", "Alerts(", "Templates("}
    for module, path in modules().items():
        if module in ("app", "ops.checks") or room(module) == "store":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in wiring:
            assert f" {needle}" not in text and f"={needle}" not in text, f"{module} builds {needle[:-1]} itself"


def test_every_module_says_what_it_owns():
    for module, path in modules().items():
        if path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{module or 'mailbot'} has no module docstring"


# ---------------------------------------------------------------------------- the tables

def test_every_outcome_and_every_mail_kind_is_complete():
    """One table each, and each row whole: an outcome has a Thai label, a folder that mailbot.yaml
    knows (or none of its own) and a usual reply that is a mail kind; a mail kind has a Thai label
    and a template in templates/ (an optional one may be absent); every verdict names them."""
    from mailbot import kinds
    from mailbot.config import FoldersConfig
    from mailbot.intake import verdict

    folders = set(FoldersConfig.model_fields)
    templates = {p.name.removesuffix(".txt.j2") for p in (PACKAGE.parent / "templates").glob("*.txt.j2")}
    assert set(kinds.OUTCOMES) == set(kinds.Outcome)
    for key, row in kinds.OUTCOMES.items():
        assert row.key == key and row.thai and not row.thai.isascii(), key
        assert row.folder == "" or row.folder in folders, (key, row.folder)
        assert row.reply is None or row.reply in kinds.MAIL_KINDS, (key, row.reply)
    for key, kind in kinds.MAIL_KINDS.items():
        assert kind.key == key and kind.thai and not kind.thai.isascii(), key
        name = kind.template_name
        assert kind.optional or "{" in name or name in templates, f"templates/{name}.txt.j2 is missing"
    chain = dict(verdict.CHAIN)
    assert list(chain)[-1] == "classify" and len(chain) == len(verdict.CHAIN)


OUTCOME_KEYS = {o.value for o in __import__("mailbot.kinds", fromlist=["Outcome"]).Outcome}


def test_outcome_keys_are_written_only_in_the_table():
    """Code names an outcome Outcome.X: an outcome key written as a literal where an outcome is
    compared, passed or looked up, or quoted in SQL (outside the migrations, which never change),
    would drift from the table the day a key changes."""
    import re

    sql_literal = re.compile(r"\boutcome\s*(?:=|<>|!=|IN|NOT IN)\s*\(?\s*'")
    found = []
    for module, path in modules().items():
        if module in ("kinds", "store.schema"):
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            literals = []
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    literals += side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            elif isinstance(node, ast.keyword) and node.arg == "outcome":
                literals.append(node.value)
            elif isinstance(node, ast.Subscript):
                literals.append(node.slice)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and sql_literal.search(node.value):
                found.append(f"{module}:{node.lineno}: SQL {node.value[:60]!r}")
            found += [f"{module}:{lit.lineno}: {lit.value!r}" for lit in literals
                      if isinstance(lit, ast.Constant) and lit.value in OUTCOME_KEYS]
    assert found == []


def test_one_office_never_loads_postgresql_or_the_job_queue():
    """`mailbot run`, the console and the demo import neither psycopg nor procrastinate: an
    office's PC needs no PostgreSQL and no queue (host mode loads them, in host/ and store/pg)."""
    import subprocess
    import sys

    code = ("import sys, mailbot.cli, mailbot.app, mailbot.demo, mailbot.ops.daemon, mailbot.console.web, "
            "mailbot.intake.cycle, mailbot.store; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'procrastinate', 'psycopg_pool')); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


# libraries a poll of an IMAP mailbox does not load before it knows there is work: each is
# imported where it is needed (a register written, PDFs, signing, OAuth2, the console,
# PostgreSQL, the word segmenter of printed rows, the settings editor's YAML round trip)
NOT_ON_THE_POLL_PATH = ("openpyxl", "PIL", "fpdf", "pyhanko", "msal", "flask", "werkzeug", "waitress", "psycopg",
                        "procrastinate", "segno", "apscheduler", "newmm_tokenizer", "fontTools", "pdfminer", "ruamel")


def test_a_poll_starts_without_the_libraries_it_does_not_use():
    """``mailbot poll`` imports the core and the command line, not these: a poll every few
    minutes that finds nothing pays each one's import again (openpyxl alone ~0.2 s)."""
    import subprocess
    import sys

    probe = ("import sys, mailbot.app, mailbot.cli; "
             f"print(' '.join(m for m in {NOT_ON_THE_POLL_PATH!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent,
                         check=True).stdout.split()
    assert out == [], f"imported when a poll starts: {out}"

