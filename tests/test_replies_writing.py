"""Replies are written with compat32, except that a header which is one short line of plain
ASCII words is written as it is (replies.WRITING): the same bytes, at a fraction of the cost.
The stock compat32 policy is the oracle here."""
from __future__ import annotations

import email.generator
import random
import string
from datetime import datetime, timezone
from email.policy import compat32
from pathlib import Path

import pytest

from mailbot.casework import replies
from mailbot.casework.replies import Templates, build, sample_context
from mailbot.config import AgencyConfig
from mailbot.kinds import MAIL_KINDS

from .conftest import letter

REPO = Path(__file__).resolve().parents[1]
STOCK = compat32.clone(linesep="\r\n")
NAMES = ["To", "From", "Message-ID", "In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress",
         "Precedence", "X-Mailer", "Date", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Subject"]


def _values(rng: random.Random, count: int) -> list[str]:
    words = ["=?utf-8?b?4LmA4LiX4Lio4Lia4Liy4Lil?=", "<saraban@example.go.th>", "<a.b+c@x.example>", "auto-replied",
             "Fri, 04 Dec 2026 10:00:00 +0700", "undisclosed-recipients:;", "=?", "?=", "\"quoted name\""]
    alphabet = string.ascii_letters + string.digits + string.punctuation + " " * 6 + "\t"
    out = []
    for _ in range(count):
        pieces = [rng.choice(words) if rng.random() < 0.3 else
                  "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(rng.randint(1, 5))]
        out.append(rng.choice([" ", "  ", "", "\t"]).join(pieces))
    return out


def test_a_plain_short_header_is_written_as_compat32_writes_it():
    rng = random.Random(2569)
    fast = 0
    for value in _values(rng, 60_000):
        name = rng.choice(NAMES)
        assert replies.WRITING._fold(name, value, True) == STOCK._fold(name, value, True), (name, value)
        fast += bool(replies._PLAIN_LINE.fullmatch(value)) and len(name) + 2 + len(value) <= 78
    assert fast > 5_000          # the written-as-it-is path was taken, not only the stock one


def _through_the_package(text: str, headers: list) -> bytes:
    """A mail of text alone as the email package writes it (MIMEText, then the generator)."""
    return replies._composed(text, headers, None, ())


def _texts(rng: random.Random, count: int) -> list[str]:
    thai = "กขคงจฉชซญดตถทนบปผพฟมยรลวศสหอฮะาิีึืุูเแโใไ่้๊๋็์ํ๐๑๒๓๔๕๖๗๘๙"
    alphabet = thai + string.ascii_letters + string.digits + string.punctuation + " " * 8 + "\t" + "€😀\u200b"
    ends = ["\n", "\r\n", "\r", "\n\n", ""]
    out = ["", "\n", "a", "ก"]
    for _ in range(count):
        lines = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 40, 57, 76, 77, 200])))
                 for _ in range(rng.randint(1, 12))]
        out.append("".join(line + rng.choice(ends) for line in lines))
    return out


def test_a_mail_of_text_alone_is_written_as_the_email_package_writes_it():
    """The short way for replies without attachments against MIMEText and the generator: random
    Thai and ASCII texts (empty, long lines, every kind of line end) under every header set."""
    rng = random.Random(2569)
    values = _values(rng, 400)
    for i, text in enumerate(_texts(rng, 3_000)):
        headers = [(rng.choice(NAMES), rng.choice(values)) for _ in range(rng.randint(0, 6))]
        if i % 3 == 0:
            headers.append(("Subject", replies.Header(text[:120] or "ว่าง", "utf-8")))
        assert replies._text_only(text, headers) == _through_the_package(text, headers), (text, headers)


def _outcome(write, text: str) -> bytes | str:
    try:
        return write(text, [("Subject", "x")])
    except Exception as exc:  # noqa: BLE001 - compared: the same exception both ways
        return type(exc).__name__


@pytest.mark.parametrize("text", ["\udcff", "ก\udc80\n", "\ud800"])
def test_a_text_that_is_not_unicode_comes_out_as_the_package_makes_it(text):
    """Lone surrogates: MIMEText raised before CPython 3.11.9 and writes the escaped bytes since;
    the short way gives whatever this Python's package gives."""
    assert _outcome(replies._text_only, text) == _outcome(_through_the_package, text)


@pytest.mark.parametrize("kind", sorted(MAIL_KINDS))
def test_every_kind_of_mail_comes_out_byte_for_byte_as_before(kind, monkeypatch):
    templates = Templates(REPO / "templates")
    agency = AgencyConfig(name="เทศบาลตำบลบ้านตัวอย่าง", address="saraban@example.go.th")
    now = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)
    original = bytes(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", sender="สมชาย ใจดี <somchai@example.com>"))
    refs = tuple(f"<ref{i}.{'x' * i}@example.com>" for i in range(12))
    cases = [dict(to="somchai@example.com", subject="ขออนุญาตก่อสร้างอาคาร", in_reply_to="<a@example.com>",
                  references=refs),
             dict(to="John Smith <john.smith@example.com>", subject="Building permit request, house 12",
                  in_reply_to=None, references=()),
             dict(to="ผู้ใช้@ตัวอย่าง.ไทย", subject="x" * 120, in_reply_to="<b@example.com>", references=("<b@example.com>",))]
    ways = ((replies.WRITING, replies._text_only), (STOCK, _through_the_package))   # ours, the package's
    for i, case in enumerate(cases):
        made = []
        for policy, text_only in ways:
            monkeypatch.setattr(replies, "WRITING", policy)
            monkeypatch.setattr(replies, "_text_only", text_only)
            monkeypatch.setattr(email.generator.Generator, "_make_boundary",     # the same boundary both times
                                classmethod(lambda cls, text=None: "===============0123456789=="))
            try:
                made.append(build(kind=kind, templates=templates, agency=agency, receipt="15/2569",
                                  message_id=f"<{kind}.{i}@example.go.th>", now=now, ctx=sample_context(agency, now),
                                  attach=original if i == 0 else None,
                                  files=(("ผลการพิจารณา.pdf", b"%PDF-1.4 test"),) if i == 1 else (), **case))
            except Exception as exc:  # noqa: BLE001 - a kind whose template needs more context: both alike
                made.append(type(exc).__name__.encode())
        assert made[0] == made[1], (kind, i)
