"""A host's farm for the tests and the benchmark: N agencies, each with its own pymap mailbox
(optionally behind a loopback proxy that delays every command), one aiosmtpd relay for all, one
PostgreSQL, and `mailbot host worker` processes — what a provincial host runs, on loopback.

``Farm.check()`` reads back what happened: every mailbox drained, each agency's numbers 1..M
with no gap and its own, every citizen answered once, by their own agency, and no case holding
another agency's mail."""
from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.utils import parseaddr
from pathlib import Path

import yaml
from imapclient import IMAPClient

from mailbot.config import yaml_load
from mailbot.demo import make_workspace, seed
from mailbot.mail.servers import HOST, ImapServer, SmtpServer, free_port

from .conftest import NOW, SINCE, YEAR, letter

PASSWORD = "farm-pass"
RELAY = "relay@example.go.th"
CLOCK = {"MAILBOT_TEST_CLOCK": "1", "MAILBOT_NOW": NOW.isoformat()}
REPO = Path(__file__).resolve().parents[1]


def agency_name(i: int) -> str:
    return f"a{i:03d}"


def agency_address(i: int) -> str:
    return f"saraban-{agency_name(i)}@example.go.th"


def citizen(i: int, j: int) -> str:
    return f"citizen-{agency_name(i)}-{j:02d}@example.com"


class LatencyProxy:
    """127.0.0.1:port -> target, each chunk from the client held ``delay`` seconds before it is
    passed on (an IMAP command: a WAN's round trip)."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="latency-proxy")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port)

    async def _pipe(self, reader, writer, delay: float) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, self.delay), self._pipe(up_reader, writer, 0))

    def start(self) -> "LatencyProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


@dataclass
class Cut:
    """An agency's cycle that a SIGKILL of ``Farm.chaos`` cut short."""

    agency: str
    at: float                          # time.monotonic() of the kill
    cycles: int                        # the agency's cycles finished then
    served: float | None = None        # seconds until it had finished a cycle again
    cut_again: float | None = None     # or until a later kill cut the cycle it had begun again

    @property
    def waited(self) -> float | None:
        """Seconds until the agency was served again, or at least begun again (None: neither)."""
        return self.served if self.served is not None else self.cut_again


@dataclass
class Farm:
    root: Path
    url: str
    agencies: int
    mails: int
    latency: float = 0.0
    idle: bool = False          # the agencies want their mailboxes watched (schedule.idle)
    imaps: list[ImapServer] = field(default_factory=list)
    proxies: list[LatencyProxy] = field(default_factory=list)
    smtp: SmtpServer | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def env(self) -> dict[str, str]:
        # one timeline for every worker, whenever it starts: the test clock at NOW when the farm began
        now = NOW + timedelta(seconds=time.monotonic() - self.began)
        env = dict(os.environ, MAILBOT_DATABASE_URL=self.url, PYTHONPATH=str(REPO), **CLOCK)
        env["MAILBOT_NOW"] = now.isoformat()
        env.pop("MAILBOT_CONFIG", None)
        return env

    def __enter__(self) -> "Farm":
        os.environ["MAILBOT_DATABASE_URL"] = self.url
        self.smtp = SmtpServer(RELAY, PASSWORD)
        self.smtp.controller.start()
        from mailbot.host.service import Host
        from mailbot.host.worker import prepare_queue

        with Host(self.url) as host:
            host.init()
            prepare_queue(self.url)
            for i in range(self.agencies):
                imap = ImapServer(agency_address(i), PASSWORD).start()
                self.imaps.append(imap)
                port = imap.port
                if self.latency:
                    proxy = LatencyProxy(imap.port, self.latency).start()
                    self.proxies.append(proxy)
                    port = proxy.port
                folder = self.root / agency_name(i)
                cfg_path = make_workspace(folder, port, self.smtp.port, PASSWORD, since=SINCE)
                data = yaml_load(cfg_path.read_text(encoding="utf-8"))
                data["agency"]["address"] = agency_address(i)
                data["agency"]["name"] = f"เทศบาลตำบลทดลองที่ {i + 1}"
                data["imap"]["username"] = agency_address(i)
                data["smtp"]["username"] = RELAY
                if self.idle:
                    data.setdefault("schedule", {})["idle"] = True
                cfg_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
                seed(imap.port, agency_address(i), PASSWORD, [], folder="Sent")
                seed(imap.port, agency_address(i), PASSWORD, [
                    letter("ขออนุญาตก่อสร้างอาคาร", sender=f"ผู้ยื่น {j} <{citizen(i, j)}>",
                           body=f"คำขอที่ {j} ของหน่วยงาน {agency_name(i)}").as_bytes()
                    for j in range(self.mails)])
                host.add(agency_name(i), cfg_path, NOW)
        return self

    def start_workers(self, n: int, concurrency: int = 4, tick: int = 1, heartbeat: float = 1.0,
                      stalled: float = 4.0) -> None:
        for _ in range(n):
            self.start_worker(concurrency, tick, heartbeat, stalled)

    def start_worker(self, concurrency: int = 4, tick: int = 1, heartbeat: float = 1.0,
                     stalled: float = 4.0, idle: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.workers)}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "host", "worker", "--concurrency", str(concurrency),
             "--tick", str(tick), "--heartbeat", str(heartbeat), "--stalled", str(stalled)]
            + (["--idle"] if idle else []),
            env={**self.env(), **(env or {})}, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=self.root)
        self.workers.append(proc)
        return proc

    def deliver(self, i: int, j: int) -> None:
        """One more request into agency i's mailbox, from citizen j."""
        seed(self.imaps[i].port, agency_address(i), PASSWORD, [
            letter("ขออนุญาตก่อสร้างอาคาร", sender=f"ผู้ยื่น {j} <{citizen(i, j)}>",
                   body=f"คำขอที่ {j} ของหน่วยงาน {agency_name(i)}").as_bytes()])

    def replies(self) -> list[email.message.EmailMessage]:
        assert self.smtp is not None
        return [email.message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
                for m in list(self.smtp.messages)]

    def answered(self) -> int:
        """Citizens who have their receipt (read from the envelopes: cheap enough to ask often,
        so the relay's thread in this process is not starved while a test watches)."""
        assert self.smtp is not None
        return len({to for m in list(self.smtp.messages) for to in m.rcpt_tos if to.startswith("citizen-")})

    def wait(self, until, timeout: float, every: float = 0.5) -> float:  # type: ignore[no-untyped-def]
        start = time.monotonic()
        while not until():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not done in {timeout} s: {self.answered()} answered; logs: "
                                   + " | ".join(p.read_text(errors="replace")[-1500:] for p in self.logs))
            time.sleep(every)
        return time.monotonic() - start

    def check(self) -> dict[str, int]:
        """What the host did, read back from the servers and the database."""
        from mailbot.store import State

        figures = {"undrained": 0, "gaps": 0, "duplicates": 0, "crossed": 0, "unanswered": 0, "chain_broken": 0}
        for i, imap in enumerate(self.imaps):
            with IMAPClient(HOST, port=imap.port, ssl=False) as c:
                c.login(agency_address(i), PASSWORD)
                figures["undrained"] += c.select_folder("INBOX")[b"EXISTS"]
            state = State(url=self.url, tenant=agency_name(i))
            try:
                cases = state.cases_listed()
                if sorted(c["seq"] for c in cases) != list(range(1, self.mails + 1)) or \
                        {c["year_be"] for c in cases} != {YEAR}:
                    figures["gaps"] += 1
                figures["crossed"] += sum(1 for c in cases if not (c["sender_addr"] or "").startswith(
                    f"citizen-{agency_name(i)}-"))
            finally:
                state.close()
            from mailbot.app import Office
            from mailbot.host.service import agency_config

            with Office.open(agency_config(agency_name(i), self.root / agency_name(i) / "mailbot.yaml")) as office:
                verified = office.audit_verify()
                if not verified.ok:
                    figures["chain_broken"] += 1
                    print(f"audit of {agency_name(i)}:", *verified.lines(), sep="\n  ")
        seen: dict[str, int] = {}
        for r in self.replies():
            to = parseaddr(str(r["To"]))[1]
            if not to.startswith("citizen-"):
                continue
            seen[to] = seen.get(to, 0) + 1
            agency = to.split("-")[1]
            if parseaddr(str(r["From"]))[1] != f"saraban-{agency}@example.go.th":
                figures["crossed"] += 1
        figures["duplicates"] = sum(n - 1 for n in seen.values())
        figures["unanswered"] = self.agencies * self.mails - len(seen)
        return figures

    def held_cut_off(self) -> int:
        """Replies to citizens held for an officer because sending them was cut off twice after
        the relay may have had them (outbox.py): the designed outcome where SMTP cannot tell."""
        from mailbot.store import State

        held = 0
        for i in range(self.agencies):
            state = State(url=self.url, tenant=agency_name(i))
            try:
                held += state.db.execute("SELECT count(*) FROM outbox WHERE status = 'held' AND recipient LIKE "
                                         "'citizen-%' AND hold_reason LIKE '%cut off twice%'").fetchone()[0]
            finally:
                state.close()
        return held

    def unsent(self) -> list[str]:
        """Every outgoing message not sent, in every tenant, with why (for a run that did not finish)."""
        from mailbot.store import State

        found = []
        for i in range(self.agencies):
            state = State(url=self.url, tenant=agency_name(i))
            try:
                for r in state.db.execute("SELECT id, kind, recipient, status, hold_reason, last_error, interrupted, "
                                          "send_started_at FROM outbox WHERE status <> 'sent'").fetchall():
                    found.append(f"{agency_name(i)} #{r[0]} {r[1]} {r[2]} {r[3]} interrupted={r[6]} "
                                 f"started={r[7]} hold={r[4]} error={r[5]}")
            finally:
                state.close()
        return found

    def cycles(self) -> dict[str, tuple[int, str | None, str | None, str | None]]:
        """Each agency's registry row: cycles finished, worker, last started, last finished."""
        from mailbot.store.host import HostStore

        with HostStore(self.url) as reg:
            return {r["name"]: (r["cycles"], r["worker"], r["last_started_at"], r["last_finished_at"])
                    for r in reg.agencies()}

    def chaos(self, until, every: float, rng, timeout: float, **worker) -> list[Cut]:  # type: ignore[no-untyped-def]
        """SIGKILL a random worker every ``every`` seconds (a new one takes its place) until
        ``until()``; returns each agency's cycle a kill cut short, with the seconds until the
        agency finished a cycle again, or until a later kill cut the cycle it had begun again
        (watched from here, on the wall clock). Not seen as cut: a cycle begun in the same
        second as the agency's last one finished (the registry keeps whole seconds), or begun
        after the rows were read; both are rare here (a rescue comes 4 s after a kill at the
        earliest), and neither can hide an agency never served again (the timeout)."""
        import socket

        start = time.monotonic()
        cuts: list[Cut] = []
        next_kill = time.monotonic() + every
        while not until() or any(c.waited is None for c in cuts):
            now = time.monotonic()
            if now - start > timeout:
                raise TimeoutError(f"chaos run not done in {timeout} s: {self.answered()} answered, "
                                   f"{sum(c.waited is None for c in cuts)} cut agencies not served again; "
                                   f"not sent: {self.unsent()}")
            rows = self.cycles()
            for c in cuts:
                if c.waited is None and rows[c.agency][0] > c.cycles:
                    c.served = now - c.at
            if now >= next_kill and not until():
                live = [p for p in self.workers if p.poll() is None]
                victim = live[rng.randrange(len(live))]
                tag = f"{socket.gethostname()}:{victim.pid}"
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed_at = time.monotonic()
                rows = self.cycles()        # read after the kill: the dead worker's rows stay as it left them
                for agency, (cycles, worker_tag, began, finished) in rows.items():
                    if worker_tag != tag or (finished is not None and (began or "") <= finished):
                        continue
                    for c in cuts:          # cut before, and its cycle begun again by another worker
                        if c.agency == agency and c.waited is None:
                            if cycles > c.cycles:
                                c.served = killed_at - c.at
                            else:
                                c.cut_again = killed_at - c.at
                    cuts.append(Cut(agency, killed_at, cycles))
                self.start_worker(**worker)
                next_kill = killed_at + every
            time.sleep(0.2)
        return cuts

    def stop_workers(self) -> None:
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop_workers()
        for proxy in self.proxies:
            proxy.stop()
        for imap in self.imaps:
            imap.stop()
        if self.smtp is not None:
            self.smtp.controller.stop()
        os.environ.pop("MAILBOT_DATABASE_URL", None)
