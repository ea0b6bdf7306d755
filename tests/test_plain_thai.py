"""Plain Thai where officers and citizens read Thai: no English word (3 letters or more) inside a
Thai sentence of a mail template or a console page, as no CE date is (test_cli). English has its
own place: after " / ", below the mail's divider, in the console's small ``.en`` labels, behind
รายละเอียด; what a citizen wrote (``<bdi>``), addresses and file names are theirs.

A short allow-list keeps the names people know as they are (PDF, Excel, IMAP ...)."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailbot.casework.replies import Templates, sample_context, template_globals
from mailbot.config import load_config
from mailbot.mail.language import letters

from .conftest import NOW, letter
from .test_console_routes import building_request, case_path, handled, open_console, rows  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
THAI = re.compile("[\u0e00-\u0e7f]")
# names people know as they are written (and our own name); words in capitals (codes such as a
# service's BLD, acronyms such as PDF, a folder's INBOX) count as names too
ALLOWED = {"PDF", "IMAP", "SMTP", "Excel", "CSV", "Reply", "mailbot", "PromptPay", "QR", "Microsoft", "Google",
           "Gmail", "Outlook", "OAuth", "Windows", "LINE", "TLS", "SSL", "DKIM", "SPF", "DMARC", "Enter",
           "Adobe", "Acrobat", "Reader", "JPG", "JPEG", "PNG", "ZIP", "DOC", "DOCX", "XLSX", "HEIC", "TIFF"}
WORD = re.compile(r"(?<![\w@./:-])[A-Za-z]{3,}(?![\w@/-]|\.\w)")
KEY = re.compile(r"(?<![\w@./-])[a-z]+(?:_[a-z]+)*\.[a-z_]+(?:\.[a-z_]+)*(?![\w@/-])")   # a setting: limits.max_message_mb


def english_in_thai(text: str) -> list[str]:
    """(line, word) for each English word inside the Thai half of a Thai line."""
    found = []
    for line in text.splitlines():
        if not THAI.search(line):
            continue
        thai = line.split(" / ")[0]
        thai = re.sub(r"\S+@\S+|https?://\S+|\S+\.(pdf|xlsx|eml|csv|txt|yaml|zip|jpg|png)\b", " ", thai)
        words = [w for w in WORD.findall(thai) if w not in ALLOWED and not w.isupper()]   # codes, acronyms: as named
        words += KEY.findall(thai)
        found += [f"{w!r} in: {line.strip()[:160]}" for w in words]
    return found


def mostly_thai(line: str, values: tuple[str, ...] = ()) -> bool:
    """A Thai sentence: more of the template's own letters Thai than not (mail/language.py counts
    them); the values it carries (a person's, the agency's, a service's name) are not its words."""
    for value in values:
        line = line.replace(value, " ")
    thai, other = letters(line)
    return thai > other


def thai_values(ctx: object) -> tuple[str, ...]:
    """Every text with Thai in a reply's context, longest first."""
    found: set[str] = set()

    def walk(v: object) -> None:
        if isinstance(v, str) and THAI.search(v):
            found.add(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
    walk(ctx)
    return tuple(sorted(found, key=len, reverse=True))


def test_the_sweep_finds_what_it_looks_for():
    assert english_in_thai("สถานะ: queued แล้ว") == ["'queued' in: สถานะ: queued แล้ว"]
    assert english_in_thai("ส่งแล้ว / sent at 10:00") == []
    assert english_in_thai("แนบไฟล์ PDF ที่ somchai@example.com ชื่อ แบบ.pdf") == []
    assert english_in_thai("Dear applicant, your request") == []
    assert english_in_thai("เพิ่ม limits.max_message_mb") == ["'limits.max_message_mb' in: เพิ่ม limits.max_message_mb"]
    assert english_in_thai("บริการ (BLD) ในโฟลเดอร์ INBOX") == []
    assert not mostly_thai("เทศบาลตำบลบ้านตัวอย่าง never asks for passwords, card details or payment")
    assert mostly_thai("สถานะเรื่อง: queued แล้ว")
    assert not mostly_thai("Dear นายตัวอย่าง ใจดี,", ("นายตัวอย่าง ใจดี",))
    assert mostly_thai("เรียน Mr John Smith", ("Mr John Smith",))


def test_every_mail_template_speaks_thai_in_its_thai_part(env):
    cfg = load_config(env.config_path)
    templates = Templates(ROOT / "templates", template_globals(cfg))
    wrong = []
    for path in sorted((ROOT / "templates").glob("[!_]*.txt.j2")):
        name = path.name[: -len(".txt.j2")]
        if name == "result_letter":
            continue          # the letter's own words: test_letters reads the PDF
        if name.endswith(".en"):
            # English first (a sender who wrote in English): English paragraphs, then the Thai; the
            # footer's lines in both. Every line that is mostly Thai is a Thai sentence and swept;
            # the English ones may name the agency or the person in Thai.
            ctx = {**sample_context(cfg.agency, NOW), "language": "en"}
            text = templates.render(name[:-3], ctx)
            assert text.index("Dear") < text.index("เรียน"), path.name
            names = thai_values(ctx)
            thai_part = "\n".join(line for line in text.splitlines() if mostly_thai(line, names))
        else:
            text = templates.render(name, sample_context(cfg.agency, NOW))
            thai_part = re.split(r"\n-{20,}\n", text)[0]           # English goes below the divider
        wrong += [f"{path.name}: {w}" for w in english_in_thai(thai_part)]
    assert not wrong, "\n".join(wrong)


class _Visible(HTMLParser):
    """The page's Thai text as the officer reads it: English labels (.en), the technical details
    (รายละเอียด), the citizen's own words (<bdi>) and code left out."""

    SKIP = {"script", "style", "head", "bdi", "code", "option", "pre"}   # <pre>: a mail as sent (its template: above)
    BLOCKS = {"p", "div", "section", "h1", "h2", "h3", "tr", "li", "td", "th", "label", "summary", "details",
              "button", "a", "form", "table", "br", "header", "footer", "nav", "pre"}

    def __init__(self) -> None:
        super().__init__()
        self.out: list[str] = []
        self.stack: list[bool] = []          # per open element: skipped?

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        skip = tag in self.SKIP or "en" in classes or "tech" in classes or "addr" in classes or "dl" in classes
        if tag in self.BLOCKS:
            self.out.append("\n")
        if tag not in ("br", "input", "meta", "link", "img"):
            self.stack.append(skip)

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag in self.BLOCKS:
            self.out.append("\n")
        if tag not in ("br", "input", "meta", "link", "img") and self.stack:
            self.stack.pop()

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if not any(self.stack):
            self.out.append(data)


def thai_text(html: str) -> str:
    v = _Visible()
    v.feed(html)
    return re.sub(r"[ \t]+", " ", "".join(v.out))


def test_every_console_page_speaks_thai_in_its_thai_sentences(env, open_console):
    spam = letter("ด่วนที่สุด โปรดโอนเงิน", sender="promo@lucky.example", X_Spam_Flag="YES")
    got = handled(env, building_request(), letter("ร้องเรียนถนนชำรุด", sender="road@example.com"), spam, b"\r\n\r\n")
    console = open_console()
    [quarantined] = rows(env, "SELECT id FROM messages WHERE outcome='quarantined'")
    pages = ["/", "/cases", "/results", "/quarantine", f"/quarantine/{quarantined[0]}", "/registers", "/settings",
             "/settings?subject=ขออนุญาตก่อสร้าง", *[case_path(r) for r in got.values()]]
    wrong = []
    for path in pages:
        page = console.get(path)
        assert page.status_code == 200, path
        wrong += [f"{path}: {w}" for w in english_in_thai(thai_text(page.get_data(as_text=True)))]
    assert not wrong, "\n".join(wrong)
