"""A mailbox with no IMAP and no SMTP: the whole intake over Microsoft Graph (mail/graph.py),
against a loopback Graph built from Microsoft's documented shapes (tests/graph_server.py).

The office is the same as over IMAP; only its wire differs (``mailbox: graph``). A test's token
source stands in for msal (``FakeTokens``: the seam ``graph.TokenProvider``) and a test clock for
the limits and Retry-After (``Mono``: nothing waits on the wall clock); ``test_msal_*`` signs in
through msal for real, against the loopback OAuth2 authority of tests/oauth_authority.py."""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.app import Office, run_cycle
from mailbot.config import Config
from mailbot.demo import make_workspace
from mailbot.errors import ConnectionFailure
from mailbot.intake.cycle import CycleReport
from mailbot.mail.graph import GraphClient, Limits
from mailbot.mail.oauth import Token
from mailbot.mail.wire import graph_wire

from .conftest import AGENCY, NOW, PASSWORD, SINCE, UNUSED_PORT, TestClock, Workspace, letter
from .graph_server import GraphServer

TENANT = "agency.example"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
REGISTERED = "ลงทะเบียนแล้ว"


class Mono:
    """The limits' clock (seconds) and sleeper: a sleep moves it on at once, and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeTokens:
    """The token seam (``graph.TokenProvider``): tokens the loopback Graph issued; ``revoked``: the
    sign-in service hands out tokens Graph does not take (an app whose access was withdrawn)."""

    def __init__(self, server: GraphServer) -> None:
        self.server = server
        self.current: Token | None = None
        self.issued = 0
        self.revoked = False

    def token(self, force: bool = False) -> Token:
        if force or self.current is None:
            now = datetime.now(timezone.utc)
            value = "not-a-graph-token" if self.revoked else self.server.issue()
            self.current = Token(value, now + timedelta(hours=1), now, ("Mail.ReadWrite", "Mail.Send"))
            self.issued += 1
        return self.current

    def rejected(self, token: Token) -> None:
        if self.current is token:
            self.current = None


@dataclass
class GraphEnv(Workspace):
    server: GraphServer
    root: Path
    config_path: Path
    clock: TestClock
    mono: Mono = field(default_factory=Mono)
    tokens: FakeTokens | None = None

    def __post_init__(self) -> None:
        self.tokens = FakeTokens(self.server)
        self.wire = graph_wire(tokens=self.tokens, clock=self.mono, sleep=self.mono.sleep)

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "Inbox", when: datetime | None = None) -> list[str]:
        return self.server.deliver(*messages, folder=folder, when=when or self.clock())

    def cycle(self, **kw) -> CycleReport:  # type: ignore[no-untyped-def]
        kw.setdefault("clock", self.clock)
        kw.setdefault("wire", self.wire)
        return run_cycle(self.cfg, **kw)

    def office(self) -> Office:
        return Office.open(self.cfg, clock=self.clock, wire=self.wire)

    def replies(self) -> list[EmailMessage]:
        return [s.message for s in self.server.sent]  # type: ignore[misc]

    def db(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.cfg.data_dir / "state.sqlite3")
        con.row_factory = sqlite3.Row
        return con


def graph_section(server: GraphServer, **extra) -> dict:
    section = {"tenant_id": TENANT, "client_id": CLIENT_ID, "base_url": server.url, "mailbox": AGENCY,
               "page_size": 2}
    section.update(extra)
    return section


@pytest.fixture
def genv(tmp_path: Path):
    clock = TestClock(NOW)
    with GraphServer(AGENCY, clock=clock) as server:
        root = tmp_path / "office"
        cfg_path = make_workspace(root, UNUSED_PORT, UNUSED_PORT, PASSWORD, since=SINCE)
        e = GraphEnv(server, root, cfg_path, clock)
        e.set_forwarding({})
        e.set_config(mailbox="graph", graph=graph_section(server))
        yield e


def sender(n: int) -> str:
    return f"ผู้ยื่น {n} <citizen{n}@example.com>"


# ---------------------------------------------------------------------------- the configuration

def test_mailbox_graph_needs_no_imap_or_smtp_section(tmp_path: Path):
    data = {"agency": {"name": "เทศบาล", "address": AGENCY}, "mailbox": "graph",
            "graph": {"tenant_id": TENANT, "client_id": CLIENT_ID}}
    cfg = Config.model_validate(data)
    assert cfg.imap.folder == "Inbox" and cfg.imap.host == "graph.microsoft.com"
    assert cfg.graph_mailbox == AGENCY and cfg.account == f"{AGENCY}@graph.microsoft.com"
    assert cfg.graph is not None and cfg.graph.scope == "https://graph.microsoft.com/.default"
    with pytest.raises(ValueError, match="no graph section"):
        Config.model_validate({**data, "graph": None})
    with pytest.raises(ValueError, match="https"):           # plain http only to this computer
        Config.model_validate({**data, "graph": {"tenant_id": TENANT, "client_id": CLIENT_ID,
                                                  "base_url": "http://graph.example.com/v1.0"}})


# ---------------------------------------------------------------------------- the intake over Graph

def test_a_request_is_registered_and_its_receipt_goes_out_through_sendmail_with_our_headers(genv):
    original = letter("ขออนุญาตก่อสร้างอาคาร", message_id="<req-1@example.com>")
    [item] = genv.deliver(original)
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] and report.smtp_error is None
    receipt = report.handled[0].receipt
    [reply] = genv.replies()
    assert reply["In-Reply-To"] == "<req-1@example.com>"
    assert "<req-1@example.com>" in reply["References"]
    assert reply["Auto-Submitted"].startswith("auto-replied")
    assert reply["Message-ID"].startswith("<mailbot.") and receipt in reply["Subject"]
    assert genv.server.sent[0].recipients == ["somchai@example.com"]
    # moved to the outcome folder under the same immutable id; the mirror knows it there
    assert genv.server.count("Inbox") == 0
    assert [i.id for i in genv.server.in_folder(REGISTERED)] == [item]
    with genv.db() as con:
        rows = con.execute("SELECT folder_id, gone FROM graph_items WHERE item_id=? ORDER BY uid", (item,)).fetchall()
    registered = genv.server.folder(REGISTERED)
    assert registered is not None
    assert [(r["folder_id"] == registered.id, r["gone"]) for r in rows] == [(False, 1), (True, 0)]
    # Graph kept the copy in Sent Items; mailbot added none of its own
    assert genv.server.count("Sent Items") == 1
    # every request asked for immutable ids; the delta query for pages of graph.page_size
    assert all('IdType="ImmutableId"' in r["prefer"] for r in genv.server.requests)
    assert all("odata.maxpagesize=2" in r["prefer"] for r in genv.server.asked("/messages/delta"))


def test_a_second_poll_sends_and_registers_nothing_again(genv):
    genv.deliver(*[letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(n)) for n in range(5)])
    first = genv.cycle()
    assert [h.outcome for h in first.handled] == ["registered"] * 5 and len(genv.server.sent) == 5
    delta_before = len(genv.server.asked("/messages/delta"))
    second = genv.cycle()
    assert second.handled == [] and len(genv.server.sent) == 5
    # the second round started from the kept delta link: only what changed (the five moved out),
    # never the whole folder listed again
    rounds = genv.server.asked("/messages/delta")[delta_before:]
    assert "$deltatoken" in rounds[0]["query"] and all(r["query"] for r in rounds)
    with genv.db() as con:
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 5
        assert con.execute("SELECT count(*) FROM outbox WHERE status='sent'").fetchone()[0] == 5
    # mail that comes later is picked up from the same link
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(9)))
    assert [h.outcome for h in genv.cycle().handled] == ["registered"] and len(genv.server.sent) == 6


def test_a_429_in_the_middle_of_the_delta_query_is_waited_out(genv):
    genv.deliver(*[letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(n)) for n in range(5)])   # 3 pages of 2
    genv.server.throttle(1, status=429, retry_after=7, match="/messages/delta", skip=1)   # the second page
    report = genv.cycle()
    assert genv.mono.sleeps == [7.0]
    assert [h.outcome for h in report.handled] == ["registered"] * 5 and len(genv.server.sent) == 5
    assert [r["status"] for r in genv.server.asked("/messages/delta")] == [200, 429, 200, 200]


def test_a_503_on_sendmail_is_waited_out_and_the_reply_goes_once(genv):
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    genv.server.throttle(2, status=503, retry_after=3, match="sendMail")
    report = genv.cycle()
    assert report.smtp_error is None and len(genv.server.sent) == 1 and genv.mono.sleeps == [3.0, 3.0]


def test_graph_asking_to_wait_longer_than_a_cycle_may_stops_the_cycle_and_the_next_goes_on(genv):
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    genv.server.throttle(1, status=429, retry_after=1000, match="/messages/delta")
    with pytest.raises(ConnectionFailure) as stopped:
        genv.cycle()
    assert "รอบถัดไปจะทำต่อ" in stopped.value.thai and genv.mono.sleeps == []   # never slept 1000 s
    assert genv.server.sent == [] and genv.server.count("Inbox") == 1
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] and len(genv.server.sent) == 1


def test_an_expired_token_is_replaced_once_and_the_cycle_goes_on(genv):
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    genv.cycle()
    assert genv.tokens.issued == 1
    genv.server.expire()                                   # the token in hand has expired
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(2)))
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] and len(genv.server.sent) == 2
    assert genv.tokens.issued == 2
    assert [r["status"] for r in genv.server.requests].count(401) == 1


def test_a_second_401_is_a_sign_in_failure_alerted_like_imaps(genv):
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    genv.tokens.revoked = True
    with pytest.raises(ConnectionFailure) as failed:
        genv.cycle()
    assert getattr(failed.value, "kind", "") == "refused"
    assert "Microsoft Graph ไม่ยอมรับการลงชื่อเข้าใช้" in failed.value.thai and "Mail.ReadWrite" in failed.value.thai
    assert "Traceback" not in failed.value.thai + failed.value.english
    # the cycle's two tries, then the alert's own two on sendMail (the same app cannot send it)
    assert [(r["status"], "sendMail" in r["path"]) for r in genv.server.requests] == \
        [(401, False), (401, False), (401, True), (401, True)]
    with genv.db() as con:
        alert = con.execute("SELECT text FROM alerts WHERE key='login'").fetchone()
        owed = con.execute("SELECT status, attempts FROM outbox WHERE kind='alert'").fetchall()
    assert alert is not None and "เข้าสู่ระบบอีเมลไม่ได้" in alert["text"]
    assert owed and all(r["status"] == "queued" for r in owed)    # kept for when the sign-in works again
    assert genv.server.count("Inbox") == 1               # nothing lost: the next cycle takes it


def test_an_app_the_administrator_kept_out_of_the_mailbox_is_told_what_permission_to_give(genv):
    genv.server.allowed = set()          # the RBAC scope (or access policy) leaves this mailbox out
    with pytest.raises(ConnectionFailure) as failed:
        genv.cycle()
    assert getattr(failed.value, "kind", "") == "consent"
    assert "Mail.ReadWrite" in failed.value.thai and "Mail.Send" in failed.value.thai
    assert "RBAC for Applications" in failed.value.english
    with genv.db() as con:
        assert con.execute("SELECT count(*) FROM alerts WHERE key='login'").fetchone()[0] == 1


def test_a_reply_graph_refuses_fails_alone(genv):
    genv.server.refuse("bad@example.com")
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="bad@example.com"),
                 letter("ขออนุญาตก่อสร้างอาคาร", sender="good@example.com"))
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] * 2 and report.smtp_error is None
    assert [s.recipients for s in genv.server.sent] == [["good@example.com"]]
    with genv.db() as con:
        row = con.execute("SELECT status, last_error FROM outbox WHERE recipient='bad@example.com'").fetchone()
    assert row["status"] == "failed" and "ErrorInvalidRecipients" in row["last_error"]


def test_the_sender_never_sends_to_anyone_but_the_recipient_nor_more_than_one_request_takes(genv):
    from mailbot.mail.smtp import SendRefused

    reply = letter("เรื่องของท่าน", sender=AGENCY)
    reply.replace_header("To", "someone@example.com")
    big = letter("เรื่องของท่าน", body="ก" * 1_100_000, sender=AGENCY)   # over 3 MB as UTF-8, base64 more
    big.replace_header("To", "someone@example.com")
    with genv.wire.smtp(genv.cfg.smtp, AGENCY) as s:
        with pytest.raises(SendRefused) as other:
            s.send("another@example.com", bytes(reply))        # Graph sends to the MIME's To, not an envelope
        with pytest.raises(SendRefused) as large:
            s.send("someone@example.com", bytes(big))
        s.send("someone@example.com", bytes(reply))
    assert other.value.permanent and large.value.permanent and "ใหญ่เกิน" in str(large.value)
    assert [x.recipients for x in genv.server.sent] == [["someone@example.com"]]


def test_thirty_messages_a_minute_then_the_rest_waits_queued(genv):
    genv.deliver(*[letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(n)) for n in range(34)])
    first = genv.cycle()
    assert len(first.handled) == 34 and len(genv.server.sent) == 30 and first.backlog == 4
    assert any("30 ฉบับต่อนาที" in w for w in first.warnings)
    with genv.db() as con:
        assert con.execute("SELECT count(*) FROM outbox WHERE status='queued' AND attempts=0").fetchone()[0] == 4
    genv.cycle()                                   # within the same minute: nothing more goes
    assert len(genv.server.sent) == 30
    genv.mono.now += 61
    third = genv.cycle()
    assert len(genv.server.sent) == 34 and third.backlog == 0
    ids = [s.message["Message-ID"] for s in genv.server.sent]
    assert len(set(ids)) == 34                     # queued, never dropped, never sent twice


def test_mail_moved_out_by_hand_is_left_and_mail_moved_back_is_not_registered_twice(genv):
    [kept, taken] = genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(1)),
                                 letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(2)))
    genv.cycle()
    assert len(genv.server.sent) == 2
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(3)))
    genv.server.move_by_hand(genv.server.in_folder("Inbox")[0].id, "งานของฉัน")   # an officer takes it first
    genv.server.move_by_hand(kept, "Inbox")          # and puts a registered one back in the Inbox
    report = genv.cycle()
    with genv.db() as con:
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 2
    assert len(genv.server.sent) == 2                # no second receipt, nothing for the one taken
    # the one put back has a new UID in the Inbox (as on an IMAP server) and is known by its content
    assert [(h.outcome, h.receipt) for h in report.handled] == [("duplicate", "1/2569")]
    assert genv.server.count("งานของฉัน") == 1 and genv.server.count(REGISTERED) == 2


def test_an_expired_delta_link_lists_the_folder_again_without_doing_anything_twice(genv):
    genv.deliver(*[letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(n)) for n in range(3)])
    genv.cycle()
    genv.server._snapshots.clear()                   # Graph forgot the sync state: 410 for the link
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(7)))
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["registered"] and len(genv.server.sent) == 4
    assert 410 in [r["status"] for r in genv.server.asked("/messages/delta")]


def test_a_quarantined_message_goes_back_and_through_again(genv):
    genv.set_config(limits={"max_message_mb": 0.002})            # 2 KB: a longer letter is too large
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", body="ก" * 3000))
    report = genv.cycle()
    assert [h.outcome for h in report.handled] == ["quarantined"] and genv.server.count("กักกัน") == 1
    genv.set_config(limits={"max_message_mb": 25})
    with genv.office() as office:
        [row] = office.quarantined()
        office.reprocess(row["id"], "ทดสอบ")
    assert genv.server.count("กักกัน") == 0 and genv.server.count("Inbox") == 1
    # found by its immutable id and hash: the quarantine folder was not listed for it
    assert not [r for r in genv.server.asked("/messages/delta") if "กักกัน" in r["path"]]
    again = genv.cycle()
    assert [h.outcome for h in again.handled] == ["registered"]


def test_at_most_four_requests_at_once_for_the_mailbox(genv):
    genv.server.delay = 0.2     # each request held long enough for eight threads' requests to overlap, loaded or not
    cfg = genv.cfg

    refused: list[ConnectionFailure] = []

    def hammer(limits: Limits) -> None:
        client = GraphClient(cfg, genv.tokens, limits)
        try:
            for _ in range(3):
                client.request("GET", "/mailFolders/inbox")
        except ConnectionFailure as exc:        # Graph kept saying 429 (only without the limit)
            refused.append(exc)
        finally:
            client.close()

    def run(limits: Limits) -> list[int]:
        genv.server.max_in_flight = 0
        threads = [threading.Thread(target=hammer, args=(limits,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [r["status"] for r in genv.server.asked("/mailFolders/inbox")]

    statuses = run(Limits(genv.mono, genv.mono.sleep))
    assert genv.server.max_in_flight <= 4 and 429 not in statuses and refused == []
    genv.server.requests.clear()
    run(Limits(genv.mono, genv.mono.sleep, concurrent=8))       # without the limit Graph says no
    assert genv.server.max_in_flight > 4


def test_the_ten_minute_request_window_waits_its_turn_within_the_budget(genv):
    limits = Limits(genv.mono, genv.mono.sleep, requests=3, window=100.0)
    client = GraphClient(genv.cfg, genv.tokens, limits)
    for _ in range(4):
        assert client.request("GET", "/mailFolders/inbox").status_code == 200
    assert genv.mono.sleeps == [100.0]                  # the fourth waited for the first to age out
    tight = Limits(genv.mono, genv.mono.sleep, requests=1, window=10_000.0)
    client = GraphClient(genv.cfg, genv.tokens, tight)
    client.request("GET", "/mailFolders/inbox")
    with pytest.raises(ConnectionFailure):              # more than graph.max_wait_seconds: not waited
        client.request("GET", "/mailFolders/inbox")


def test_the_sent_items_copies_vouch_for_the_receipt_numbers_as_imaps_sent_folder_does(genv):
    from mailbot.ops import recovery

    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"), letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(2)))
    report = genv.cycle()
    receipts = sorted(h.receipt for h in report.handled)
    with genv.wire.mailbox(genv.cfg.imap) as mb:
        mb.select()
        headers = mb.sent_headers()
        since = mb.sent_headers_since(NOW.date())
    tops, evidence = recovery.sent_tops(headers, genv.cfg.agency.domain)
    assert tops == {int(receipts[-1].split("/")[1]): 2} and len(evidence) == 2
    assert recovery.sent_tops(since, genv.cfg.agency.domain)[0] == tops


def test_a_message_is_found_by_its_bytes_and_put_back(genv):
    raw = bytes(letter("ขออนุญาตก่อสร้างอาคาร", message_id="<lost@example.com>"))
    genv.deliver(raw, folder="เก็บไว้")                           # never fetched: its hash is unknown
    import hashlib

    with genv.wire.mailbox(genv.cfg.imap) as mb:
        assert mb.find_raw("ไม่มีโฟลเดอร์นี้", hashlib.sha256(raw).hexdigest(), len(raw)) is None
        uid = mb.find_raw("เก็บไว้", hashlib.sha256(raw).hexdigest(), len(raw))
        assert uid is not None
        assert mb.find_raw("เก็บไว้", hashlib.sha256(b"other").hexdigest(), len(raw)) is None
        mb.move([uid], "Inbox")
        mb.append("Inbox", bytes(letter("ขอทำบัตรประชาชน", message_id="<put-back@example.com>")))
    assert genv.server.count("เก็บไว้") == 0
    assert [b"<lost@example.com>" in m or b"<put-back@example.com>" in m
            for m in genv.server.messages_in("Inbox")] == [True, True]
    report = genv.cycle()
    assert len(report.handled) == 2


# ---------------------------------------------------------------------------- check and status

def test_check_knows_the_graph_mailbox_and_says_sending_cannot_be_tried(genv):
    from mailbot.ops.checks import run_checks

    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    checks = {c.label: c for c in run_checks(genv.cfg, NOW, wire=genv.wire)}
    mailbox = checks["กล่องอีเมล Microsoft Graph / Microsoft Graph mailbox"]
    assert mailbox.ok and "1 ข้อความ" in mailbox.detail and "Inbox" in mailbox.detail
    sending = checks["ส่งอีเมลผ่าน Microsoft Graph / sending through Microsoft Graph"]
    assert sending.ok and "ไม่ได้ทดลองส่งจริง" in sending.warning and "cannot be tested without sending" in sending.warning
    assert genv.server.sent == []                        # check never sends
    assert not any("IMAP" in label or "SMTP" in label for label in checks)


def test_check_says_so_when_the_app_may_not_open_the_mailbox(genv):
    from mailbot.ops.checks import exit_code, run_checks

    genv.server.allowed = set()
    checks = run_checks(genv.cfg, NOW, wire=genv.wire)
    failed = [c for c in checks if not c.ok]
    assert failed and "Mail.ReadWrite" in failed[0].detail and exit_code(checks) == 3


def test_status_names_the_graph_mailbox_and_its_last_sync(genv):
    from mailbot.present import status_lines

    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    genv.cycle()
    with genv.office() as office:
        lines = status_lines(office.status())
        waiting = office.mailbox_waiting()
    text = "\n".join(lines)
    assert f"กล่องอีเมล / mailbox: Microsoft Graph: {AGENCY}" in text
    assert "โฟลเดอร์ / folder Inbox: 0 ฉบับ / messages" in text
    assert waiting == 0


# ---------------------------------------------------------------------------- msal, for real

@pytest.fixture
def authority(tmp_path: Path):
    from .oauth_authority import Authority

    with Authority(tmp_path / "authority") as a:
        a.add_client(CLIENT_ID, "Cl1ent~S3cret-sentinel.QQ", roles=("Mail.ReadWrite", "Mail.Send"))
        yield a


def test_msal_signs_in_for_graph_and_a_401_gets_a_fresh_token(genv, authority, monkeypatch):
    from .oauth_authority import TENANT as AUTH_TENANT

    monkeypatch.setenv("MAILBOT_GRAPH_SECRET", "Cl1ent~S3cret-sentinel.QQ")
    genv.set_config(graph=graph_section(genv.server, tenant_id=AUTH_TENANT, authority=authority.url,
                                        ca_file=str(authority.ca_path), store="file",
                                        client_secret_env="MAILBOT_GRAPH_SECRET"))
    genv.server.check = lambda token: token in authority.access and authority.access[token]["active"]
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    report = run_cycle(genv.cfg, clock=genv.clock)      # the real wire: mailbox graph chooses Graph
    assert [h.outcome for h in report.handled] == ["registered"] and len(genv.server.sent) == 1
    assert len(authority.grants("client_credentials")) == 1
    genv.server.expire()
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender=sender(2)))
    report = run_cycle(genv.cfg, clock=genv.clock)
    assert [h.outcome for h in report.handled] == ["registered"] and len(genv.server.sent) == 2
    assert len(authority.grants("client_credentials")) == 2     # msal asked again, once


def test_mailbot_login_keeps_the_graph_secret_in_the_credential_store(genv, authority):
    from mailbot.mail import oauth

    from .oauth_authority import TENANT as AUTH_TENANT

    genv.set_config(graph=graph_section(genv.server, tenant_id=AUTH_TENANT, authority=authority.url,
                                        ca_file=str(authority.ca_path), store="file"))
    said: list[str] = []
    assert oauth.login(genv.cfg, out=said.append, read_secret=lambda prompt: "Cl1ent~S3cret-sentinel.QQ") == 0
    text = "\n".join(said)
    assert "รหัสลับใช้ได้" in text and "Microsoft Graph" in text
    src = oauth.graph_source(genv.cfg)
    assert src.store.get(src.secret_name) == "Cl1ent~S3cret-sentinel.QQ"
    assert "Cl1ent~S3cret" not in (genv.root / "mailbot.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConnectionFailure) as wrong:          # a wrong secret is said plainly, not kept
        oauth.login(genv.cfg, out=said.append, read_secret=lambda prompt: "wrong", new_secret=True)
    assert "รหัสลับของแอปไม่ถูกต้อง" in wrong.value.thai
    assert src.store.get(src.secret_name) == "Cl1ent~S3cret-sentinel.QQ"


@pytest.mark.slow
def test_check_poll_and_status_on_the_command_line_over_graph(genv, authority):
    """The commands an officer types, in their own process: msal against the loopback authority,
    the loopback Graph for the mailbox."""
    import os
    import subprocess
    import sys

    from .oauth_authority import TENANT as AUTH_TENANT

    genv.set_config(graph=graph_section(genv.server, tenant_id=AUTH_TENANT, authority=authority.url,
                                        ca_file=str(authority.ca_path), store="file",
                                        client_secret_env="MAILBOT_GRAPH_SECRET"))
    genv.server.check = lambda token: token in authority.access and authority.access[token]["active"]
    genv.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MAILBOT_GRAPH_SECRET": "Cl1ent~S3cret-sentinel.QQ",
               "MAILBOT_NOW": genv.clock().isoformat(), "MAILBOT_TEST_CLOCK": "1"}
        return subprocess.run([sys.executable, "-m", "mailbot", "--config", str(genv.config_path), *args],
                              capture_output=True, text=True, encoding="utf-8", env=env, timeout=180)

    r = cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✓ ลงชื่อเข้าใช้ Microsoft Graph / Microsoft Graph sign-in" in r.stdout
    assert f"✓ กล่องอีเมล Microsoft Graph / Microsoft Graph mailbox: {AGENCY} (Microsoft Graph): 1 ข้อความ" in r.stdout
    assert "ไม่ได้ทดลองส่งจริง" in r.stdout and "IMAP" not in r.stdout
    assert genv.server.sent == []
    r = cli("poll")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(genv.server.sent) == 1 and genv.server.count(REGISTERED) == 1
    r = cli("status")
    assert r.returncode == 0 and f"Microsoft Graph: {AGENCY}" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


# ---------------------------------------------------------------------------- the corpus

@pytest.mark.slow
def test_whole_corpus_through_polls_over_graph(genv):
    """The shared corpus as tests/test_corpus_poll.py sends it through IMAP: nothing stays in the
    Inbox, each message lands in one outcome folder, no automatic mail is answered; the replies go
    30 a minute, the rest queued, each exactly once as the minutes pass."""
    import time

    from .conftest import CORPUS
    from .test_corpus import FILES, need_corpus
    from .test_corpus_poll import FOLDERS

    need_corpus()
    delivered = len(genv.deliver(*[(CORPUS / name).read_bytes() for name in FILES]))
    genv.set_config(graph=graph_section(genv.server, page_size=100))
    started = time.monotonic()
    report = genv.cycle()
    took = time.monotonic() - started
    assert genv.server.count("Inbox") == 0
    in_folders = {f: genv.server.count(f) for f in FOLDERS}
    assert sum(in_folders.values()) == delivered, in_folders
    assert len(genv.server.sent) <= 30
    with genv.db() as con:
        assert con.execute("SELECT count(*) FROM messages WHERE outcome IS NULL").fetchone()[0] == 0
        answered_auto = con.execute("SELECT count(*) FROM outbox o JOIN messages m ON m.id = o.message_row "
                                    "WHERE m.outcome='automatic'").fetchone()[0]
    assert answered_auto == 0
    cycles = 1
    while report.backlog and cycles < 40:          # a minute later, thirty more
        genv.mono.now += 61
        genv.clock.set(genv.clock() + timedelta(seconds=61))
        report = genv.cycle()
        cycles += 1
    with genv.db() as con:
        outbox = {row[0]: row[1] for row in con.execute("SELECT status, count(*) FROM outbox GROUP BY status")}
    assert "queued" not in outbox, outbox
    ids = [s.message["Message-ID"] for s in genv.server.sent]
    assert len(ids) == len(set(ids)) == outbox.get("sent", 0)
    assert not [r for s in genv.server.sent for r in s.recipients if r.split("@")[0] in ("mailer-daemon", "postmaster")]
    print(f"\n[graph] corpus: {delivered} delivered, first poll {took:.1f} s, {cycles} polls, "
          f"{len(genv.server.requests)} requests, folders {in_folders}, outbox {outbox}")
