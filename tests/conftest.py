"""Shared fixtures: real IMAP (pymap, in process) and SMTP (aiosmtpd) servers on loopback,
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
REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MAILBOT_CORPUS") or REPO.parent / "shared" / "corpus")


@dataclass
class Env:
    imap: ImapServer
    smtp: SmtpServer
    root: Path
    config_path: Path
    clock: TestClock = field(default_factory=lambda: TestClock(NOW))

    @property
    def cfg(self) -> Config:
        return load_config(self.config_path)

    def client(self) -> IMAPClient:
        c = IMAPClient(HOST, port=self.imap.port, ssl=False)
        c.login(AGENCY, PASSWORD)
        return c

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "INBOX") -> None:
        with self.client() as c:
            for m in messages:
                c.append(folder, bytes(m) if isinstance(m, EmailMessage) else m, msg_time=self.clock())

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

    def cli(self, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        env = dict(env or {})
        if "MAILBOT_NOW" not in env:     # the test clock, unless the test sets a clock of its own
            env.update(MAILBOT_NOW=self.clock().isoformat(), MAILBOT_TEST_CLOCK="1")
        full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **env}
        return subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(self.config_path), *args],
            capture_output=True, text=True, encoding="utf-8", env=full_env, timeout=timeout,
        )

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


@pytest.fixture
def env(tmp_path: Path):
    with ImapServer(AGENCY, PASSWORD) as imap, SmtpServer(AGENCY, PASSWORD) as smtp:
        root = tmp_path / "office"
        cfg_path = make_workspace(root, imap.port, smtp.port, PASSWORD, since=SINCE)
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
