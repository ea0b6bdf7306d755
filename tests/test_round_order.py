"""The order of delivery in a cycle (mail/outbox.py ``forwards_last``; intake/cycle.py): a round sent
beside a cycle's batches (an IMAP mailbox on one office's own database) sends the forwards to units,
which carry the citizens' files, after the other mail, and while more batches follow it leaves them
for the round after the last one: a morning of requests forwarded with their files has every
receipt out before the first forward's megabytes. Alerts keep their queued place; a forward about
the same case to the same address as another message keeps its place; any other round (a host's
database, Graph, the start of a cycle) goes in queued order. On a host's database a cycle sends in
its own thread, not beside: these tests are for the single office's path."""
from __future__ import annotations

import email
from email import policy

import pytest

from mailbot.mail.outbox import forwards_last

from .conftest import letter


def _subject(m) -> str:  # type: ignore[no-untyped-def]
    return str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])


@pytest.mark.parametrize("batch_size", [50, 1])
def test_every_citizen_has_a_receipt_before_the_first_forward_goes(env, batch_size):
    """One batch (one round); and three batches, each with its own round while the next is committed."""
    env.set_config(imap={"batch_size": batch_size})
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(*(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in range(3)))
    report = env.cycle()
    sent = [m.rcpt_tos for m in env.smtp.messages]
    # queued receipt, forward, receipt, forward, ...: sent as the three receipts, then the three forwards
    assert sent == [["p0@example.com"], ["p1@example.com"], ["p2@example.com"]] + [["kongchang@example.go.th"]] * 3
    assert report.backlog == 0                     # the forwards went in the same cycle
    assert [f"หลังที่ {i}" in _subject(m) for i, m in enumerate(env.smtp.messages[3:])] == [True] * 3  # as queued


def test_an_alert_goes_in_the_round_of_its_batch_while_forwards_wait_for_the_last(env):
    """Three batches: the urgent case's alert to the officers goes in its own batch's round, not
    after every batch of the cycle as the forwards do."""
    env.set_config(imap={"batch_size": 1}, alerts={"to": ["saraban-alerts@example.go.th"]})
    env.set_forwarding({"BLD": ["กองช่าง <kongchang@example.go.th>"]})
    env.deliver(letter("ด่วนที่สุด ขออนุญาตก่อสร้างอาคาร หลังที่ 0", sender="p0@example.com"),
                *(letter(f"ขออนุญาตก่อสร้างอาคาร หลังที่ {i}", sender=f"p{i}@example.com") for i in (1, 2)))
    env.cycle()
    sent = [m.rcpt_tos[0] for m in env.smtp.messages]
    alert = next(i for i, to in enumerate(sent) if to.startswith("saraban-alerts"))
    assert alert < sent.index("p1@example.com") and sent[-3:] == ["kongchang@example.go.th"] * 3, sent


def row(n: int, kind: str, recipient: str, case_id: int | None = 1) -> dict:
    return {"id": n, "kind": kind, "recipient": recipient, "case_id": case_id}


def order(rows: list[dict]) -> list[int]:
    first, later = forwards_last(rows)
    return [r["id"] for r in first + later]


def test_forwards_go_after_the_rest_and_alerts_keep_their_place():
    rows = [row(1, "alert", "saraban@example.go.th", None), row(2, "forward", "unit@example.go.th", 1),
            row(3, "receipt", "a@example.com", 1), row(4, "forward", "unit@example.go.th", 2),
            row(5, "result", "b@example.com", 2), row(6, "daily_report", "boss@example.go.th", None)]
    assert order(rows) == [1, 3, 5, 6, 2, 4]


def test_a_forward_to_the_same_case_and_address_as_a_citizen_message_keeps_its_place():
    # an officer who wrote in as a citizen and is the unit too: what the address gets about case 1
    # arrives in the order it was queued; case 2's forward to that address still goes last
    rows = [row(1, "forward", "somsak@example.go.th", 1), row(2, "receipt", "somsak@example.go.th", 1),
            row(3, "forward", "somsak@example.go.th", 2), row(4, "receipt", "c@example.com", 3)]
    assert order(rows) == [1, 2, 4, 3]


def test_a_round_without_forwards_is_as_it_was_queued():
    rows = [row(i, "receipt", f"p{i}@example.com", i) for i in range(5)]
    assert forwards_last(rows) == (rows, [])
