"""Shared fixtures: real IMAP (pymap, in process) and SMTP (aiosmtpd) servers on loopback
(``env``), or the in-memory double of both (``mem_env``: mailbot/mail/memory.py, no sockets),
a workspace made from the starter files, and helpers to deliver mail and run cycles."""
from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailbot.app import run_cycle
from mailbot.config import Config, load_config, yaml_load
from mailbot.demo import make_workspace
from mailbot.intake.cycle import CycleReport
from mailbot.mail.memory import MemoryServer
from mailbot.mail.servers import HOST, ImapServer, SmtpServer

AGENCY = "saraban@example.go.th"
# imap.since of every test workspace: a fixed day before any clock a test injects, so that no test
# depends on the day it runs (mailbot init writes the real day; tests pass theirs)
SINCE = date(2026, 1, 1)
# The moment every test workspace starts at: Friday 4 December 2026 (4 ธันวาคม 2569), 10:00 in
# Bangkok. Mail is delivered, cycles run and the command line runs on a clock that starts here and
# runs on at the real pace (Env.clock), so a test reads the same on any day it runs.
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)
YEAR = 2569    # NOW's Buddhist-Era year: the year of the receipt numbers a test's mail gets


class TestClock:
    """A clock that starts at ``start`` and runs on at the real pace; ``set`` moves it."""

    __test__ = False   # not a test class

    def __init__(self, start: datetime) -> None:
        self.set(start)

    def set(self, when: datetime) -> None:
        self.start, self.began = when, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)
PASSWORD = "s3cret-test-pass"
# a port nobody listens on (discard): the workspace of mem_env names it, so a session that escaped
# the double would fail at once (connection refused) instead of reaching a real server; and
# Env.unreachable points the workspace at it
UNUSED_PORT = 9
REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MAILBOT_CORPUS") or REPO.parent / "shared" / "corpus")


class Workspace:
    """What both kinds of test environment share: the workspace's files, its config and its rules."""

    root: Path
    config_path: Path

    @property
    def cfg(self) -> Config:
        return load_config(self.config_path)

    def set_forwarding(self, units: dict[str, list[str]]) -> None:
        """Set forward_to of each service code given (all others: none) in the workspace rules."""
        import yaml

        path = self.root / "rules.yaml"
        rules = yaml_load(path.read_text(encoding="utf-8"))
        for service in rules["services"]:
            service["forward_to"] = units.get(service["code"], [])
        path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def set_config(self, **sections: dict) -> None:
        import yaml

        data = yaml_load(self.config_path.read_text(encoding="utf-8"))
        for key, value in sections.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        self.config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@dataclass
class Env(Workspace):
    imap: ImapServer
    smtp: SmtpServer
    root: Path
    config_path: Path
    clock: TestClock = field(default_factory=lambda: TestClock(NOW))

    @property
    def wire(self):  # type: ignore[no-untyped-def]
        """How this environment's office reaches its servers: the real IMAP and SMTP sessions."""
        from mailbot.mail.wire import REAL

        return REAL

    def unreachable(self, server: str, down: bool = True) -> None:
        """Make "imap" or "smtp" unreachable (the workspace points at a port nobody listens on), or
        reachable again."""
        port = UNUSED_PORT if down else (self.imap.port if server == "imap" else self.smtp.port)
        self.set_config(**{server: {"port": port}})

    def client(self) -> IMAPClient:
        c = IMAPClient(HOST, port=self.imap.port, ssl=False)
        c.login(AGENCY, PASSWORD)
        return c

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "INBOX", when: datetime | None = None) -> None:
        """Append to a folder with INTERNALDATE ``when`` (default: now on the test clock)."""
        with self.client() as c:
            for m in messages:
                c.append(folder, bytes(m) if isinstance(m, EmailMessage) else m, msg_time=when or self.clock())

    def folder_count(self, folder: str) -> int:
        with self.client() as c:
            if folder not in {n for _, _, n in c.list_folders()}:
                return 0
            return int(c.select_folder(folder, readonly=True)[b"EXISTS"])

    def folder_messages(self, folder: str) -> list[bytes]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search()
            return [v[b"BODY[]"] for _, v in sorted(c.fetch(uids, ["BODY.PEEK[]"]).items())] if uids else []

    def cycle(self, **kw) -> CycleReport:  # type: ignore[no-untyped-def]
        kw.setdefault("clock", self.clock)
        return run_cycle(self.cfg, **kw)

    def replies(self) -> list[EmailMessage]:
        return [email.message_from_bytes(m.data, policy=policy.default) for m in self.smtp.messages]  # type: ignore[misc]

    def cli(self, *args: str, env: dict | None = None, timeout: int = 120,
            input_text: str | None = None) -> subprocess.CompletedProcess:
        env = dict(env or {})
        if "MAILBOT_NOW" not in env:     # the test clock, unless the test sets a clock of its own
            env.update(MAILBOT_NOW=self.clock().isoformat(), MAILBOT_TEST_CLOCK="1")
        full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **env}
        return subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(self.config_path), *args],
            capture_output=True, text=True, encoding="utf-8", env=full_env, timeout=timeout, input=input_text,
        )



@dataclass
class MemEnv(Workspace):
    """The helpers of ``Env`` for what runs in this process, over the in-memory double of both
    servers (``server``; ``smtp`` is the same object, so ``smtp.messages`` reads as on ``env``).
    No ``cli``: the command line runs as a subprocess and cannot reach this process's memory."""

    server: MemoryServer
    root: Path
    config_path: Path
    clock: TestClock = field(default_factory=lambda: TestClock(NOW))

    @property
    def smtp(self) -> MemoryServer:
        return self.server

    @property
    def wire(self):  # type: ignore[no-untyped-def]
        return self.server.wire()

    def unreachable(self, server: str, down: bool = True) -> None:
        """Make "imap" or "smtp" unreachable (connection refused), or reachable again."""
        setattr(self.server, f"{server}_down", down)

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "INBOX", when: datetime | None = None) -> None:
        """Put into a folder with INTERNALDATE ``when`` (default: now on the test clock)."""
        self.server.deliver(*messages, folder=folder, when=when or self.clock())

    def folder_count(self, folder: str) -> int:
        return self.server.count(folder)

    def folder_messages(self, folder: str) -> list[bytes]:
        return self.server.messages_in(folder)

    def cycle(self, **kw) -> CycleReport:  # type: ignore[no-untyped-def]
        kw.setdefault("clock", self.clock)
        kw.setdefault("wire", self.wire)
        return run_cycle(self.cfg, **kw)

    def office(self, **kw):  # type: ignore[no-untyped-def]
        """The office of this workspace on the test clock, over the double."""
        from mailbot.app import Office

        kw.setdefault("clock", self.clock)
        return Office.open(self.cfg, wire=self.wire, **kw)

    def replies(self) -> list[EmailMessage]:
        return [email.message_from_bytes(m.data, policy=policy.default) for m in self.server.messages]  # type: ignore[misc]


@pytest.fixture(scope="session")
def postgres():
    """One throw-away PostgreSQL for the session (tests/postgres.py); each test takes a fresh
    database from it. Skipped where PostgreSQL is not installed; in CI that is a failure."""
    from . import postgres as pgmod

    if not pgmod.available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed: .ci/run must install postgresql")
        pytest.skip("PostgreSQL not installed here (apt-get install postgresql)")
    with pgmod.Postgres() as server:
        yield server


def use_postgres(cfg_path: Path, url: str, tenant: str = "office") -> None:
    """The workspace's state in a tenant of a PostgreSQL database, as a host's agency keeps it."""
    with open(cfg_path, "a", encoding="utf-8") as f:
        f.write(f"\ndatabase:\n  tenant: {tenant}\n")
    os.environ["MAILBOT_DATABASE_URL"] = url


@pytest.fixture(autouse=True)
def _store_under_test(request):
    """MAILBOT_TEST_STORE=postgresql: every workspace made by the fixtures below keeps its state in
    PostgreSQL (to run a whole module against it); by default SQLite, as one office does. The
    variables a host process sets for itself (host.service.use_host_secrets) never outlive a test."""
    names = ("MAILBOT_DATABASE_URL", "MAILBOT_SECRET_STORE")
    saved = {name: os.environ.pop(name, None) for name in names}
    if os.environ.get("MAILBOT_TEST_STORE") == "postgresql":
        request.node._pg_url = request.getfixturevalue("postgres").new_database()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def state_db(cfg: Config):  # type: ignore[no-untyped-def]
    """A connection to a workspace's state for a test's own reading (sqlite3, or the store's
    PostgreSQL connection, which takes the same statements)."""
    if cfg.database is not None:
        from mailbot.store import pg

        return pg.connect(cfg.database.url(), cfg.database.tenant)
    import sqlite3

    con = sqlite3.connect(cfg.data_dir / "state.sqlite3")
    con.row_factory = sqlite3.Row
    return con


def _maybe_postgres(request, cfg_path: Path) -> None:
    url = getattr(request.node, "_pg_url", None)
    if url:
        use_postgres(cfg_path, url)


@pytest.fixture
def mem_env(tmp_path: Path, request):
    """``env`` without sockets: the same workspace over ``MemoryServer`` (fast; for the cycle's logic)."""
    clock = TestClock(NOW)
    server = MemoryServer(AGENCY, PASSWORD, clock=clock)
    root = tmp_path / "office"
    cfg_path = make_workspace(root, UNUSED_PORT, UNUSED_PORT, PASSWORD, since=SINCE)
    _maybe_postgres(request, cfg_path)
    e = MemEnv(server, root, cfg_path, clock)
    e.set_forwarding({})
    yield e


@pytest.fixture(params=["memory", pytest.param("pymap", marks=pytest.mark.slow)])
def mail_env(request):
    """One test, two servers: the workspace over the in-memory double (``mem_env``, fast tier) and
    over pymap + aiosmtpd (``env``, slow tier), so the double cannot drift from a real server.
    Both offer deliver, folder_count, folder_messages, replies, cycle, wire, unreachable, and
    ``smtp.refuse``/``smtp.accept``."""
    e = request.getfixturevalue("mem_env" if request.param == "memory" else "env")
    e.kind = request.param
    return e


@pytest.fixture
def env(tmp_path: Path, request):
    with ImapServer(AGENCY, PASSWORD) as imap, SmtpServer(AGENCY, PASSWORD) as smtp:
        root = tmp_path / "office"
        cfg_path = make_workspace(root, imap.port, smtp.port, PASSWORD, since=SINCE)
        _maybe_postgres(request, cfg_path)
        e = Env(imap, smtp, root, cfg_path)
        # intake tests count the mail sent to citizens; internal forwarding is switched on
        # explicitly by the tests about it (set_forwarding)
        e.set_forwarding({})
        yield e


@pytest.fixture(params=["pymap", "dovecot"])
def server_env(request, tmp_path: Path):
    """The same acceptance tests against pymap and against a real Dovecot. Without Dovecot the
    Dovecot half is skipped locally; in CI (CI=true) a missing Dovecot is a failure."""
    from . import dovecot

    if request.param == "pymap":
        imap_cm = ImapServer(AGENCY, PASSWORD)
    else:
        if not dovecot.available():
            if os.environ.get("CI") == "true":
                pytest.fail("Dovecot is not installed: .ci/run must install dovecot-imapd")
            pytest.skip("Dovecot not installed here (apt-get install dovecot-imapd)")
        imap_cm = dovecot.Dovecot(tmp_path / "dovecot", AGENCY, PASSWORD)
    with imap_cm as imap, SmtpServer(AGENCY, PASSWORD) as smtp:
        root = tmp_path / "office"
        cfg_path = make_workspace(root, imap.port, smtp.port, PASSWORD, since=SINCE)
        _maybe_postgres(request, cfg_path)
        e = Env(imap, smtp, root, cfg_path)
        e.kind = request.param
        e.set_forwarding({})
        yield e


def letter(subject: str, body: str = "รายละเอียดตามไฟล์แนบ", sender: str = "สมชาย ใจดี <somchai@example.com>",
           when: datetime | None = None, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when or NOW)
    msg["Message-ID"] = headers.pop("message_id", None) or make_msgid(domain="example.com")
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg
