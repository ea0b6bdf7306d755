"""Replies: decision + case -> the automatic reply as bytes (jinja2 templates in ``templates/``).

Owns: which template each reply kind uses, the headers every automatic reply carries
(RFC 3834: Auto-Submitted, In-Reply-To/References; X-Auto-Response-Suppress; a Message-ID
under the agency's domain, fixed before sending so a resend is recognisably the same mail),
the subject tag, and making sure nothing from the citizen is echoed raw (control and bidi
characters removed, lengths capped, links and addresses made inert by ``trust.defang``), and
the values every template may use (``template_globals``: the privacy notice's retention and
contact). Pure apart from reading the template files.
"""
from __future__ import annotations

import email
import email.base64mime
import functools
import hashlib
import itertools
import json
import logging
import mimetypes
import os
import re
import shutil
import stat
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32, compat32
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Callable

import jinja2
from jinja2.loaders import split_template_path

from ..config import AgencyConfig
from ..errors import TemplateError
from ..kinds import MAIL_KINDS
from ..mail import addresses
from ..mail.language import ENGLISH, THAI, language_of
from ..thai import addressee, english_date, english_datetime, one_line, thai_date, thai_datetime, to_bangkok
from .triage import SECRET_MASK
from .trust import defang

log = logging.getLogger(__name__)

TAG_FORMAT = "[เลขรับ {receipt}]"


def tag(receipt: str) -> str:
    return TAG_FORMAT.format(receipt=receipt)


# what a reply's subject says when the citizen's cannot be echoed: Thai first, or English first to
# a sender who wrote in English (mail/language.py)
NO_SUBJECT = {THAI: "(ไม่มีชื่อเรื่อง / no subject)", ENGLISH: "(no subject / ไม่มีชื่อเรื่อง)"}
SECRET_SUBJECT = {THAI: SECRET_MASK, ENGLISH: "(confidential / เรื่องลับ)"}


def reply_subject(original: str, receipt: str | None, language: str = THAI) -> str:
    """"Re: <the citizen's subject> [เลขรับ N/YYYY]". The tag stays as it is in every language: it
    is the thread's key (intake.classify, the recovery from the Sent folder, an officer's search)."""
    language = language_of(language)
    subject = defang(one_line(original, 200))
    if subject == SECRET_MASK:
        subject = SECRET_SUBJECT[language]
    subject = subject or NO_SUBJECT[language]
    if not subject.lower().startswith(("re:", "ตอบกลับ:")):
        subject = "Re: " + subject
    if receipt and tag(receipt) not in subject:
        subject = f"{subject} {tag(receipt)}"
    return subject


def message_id_for(kind: str, row_id: int, content_hash: str, domain: str) -> str:
    """Deterministic: the same queued reply always has the same Message-ID."""
    return f"<mailbot.{kind}.{row_id}.{content_hash[:12]}@{domain}>"


# values every template may use; the core passes template_globals(cfg) to Templates to fill them
DEFAULT_GLOBALS = {"privacy": {"years": 10, "contact": ""}}


def template_globals(cfg) -> dict:
    """The template globals of one configuration: retention.years and whom data subjects contact."""
    return {"privacy": {"years": cfg.retention.years, "contact": cfg.agency.privacy_contact}}


class _CompiledCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept on disk between runs (every `mailbot poll` is a new process and
    compiled all 40-odd templates again: ~0.1 s of each start). jinja2 checks each entry against
    its template's source; the folder's name changes with this module (whose environment options
    shape the compiled code), jinja2's version and Python's. A cache that cannot be read
    or written only costs the compiling (a read-only or full disk never stops the mail)."""

    def __init__(self, folder: Path) -> None:
        made = hashlib.sha256(Path(__file__).read_bytes())     # this module's environment options,
        made.update(f"{jinja2.__version__} {sys.version}".encode())   # the compiler, the runtime
        self.folder = folder / f"templates-{made.hexdigest()[:12]}"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)   # private, as the rest of data/
        self.folder.mkdir(exist_ok=True, mode=0o700)
        _private(folder.parent, follow=True)     # the data folder (no one swaps the cache), maybe a link to it
        for path in (folder, self.folder):
            _private(path)
        super().__init__(str(self.folder))
        self._tidy(folder)

    def _tidy(self, folder: Path) -> None:
        """The compiled sets of other versions go (an upgrade leaves its predecessor's), and so
        do the half-written entries of a run killed while writing one (jinja2 writes each to a
        ``.tmp`` file first): an hour old, so that no other run is still writing it."""
        for other in folder.glob("templates-*"):
            if other != self.folder and other.is_dir() and not other.is_symlink():
                shutil.rmtree(other, ignore_errors=True)
        stale = time.time() - 3600
        for tmp in self.folder.glob("*.tmp"):
            try:
                if tmp.lstat().st_mtime < stale:
                    tmp.unlink()
            except OSError:
                pass

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            _private(Path(self._get_cache_filename(bucket)), regular=True)   # put there when it was not private
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - unreadable or damaged: compiled from the source
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _private(path: Path, regular: bool = False, follow: bool = False) -> None:
    """Compiled templates are code that runs: a cache someone else could have written (a folder
    or entry not this user's, writable by its group or by anyone, or a link) is not used (POSIX;
    on Windows the data folder's own permissions are the guard), as jinja2 does with its own
    folder. ``follow``: a link is checked where it leads. PermissionError when it is not
    private; FileNotFoundError when it is not there."""
    if os.name != "posix":
        return
    st = os.stat(path) if follow else os.lstat(path)
    kind = stat.S_ISREG(st.st_mode) if regular else stat.S_ISDIR(st.st_mode)
    if not kind or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        log.info("compiled templates not kept: %s is not private to this user", path)
        raise PermissionError(f"not private to this user: {path}")


def _compiled_cache(folder: str | None) -> jinja2.BytecodeCache | None:
    if folder is None:
        return None
    try:
        return _CompiledCache(Path(folder))
    except OSError:
        return None


# bumped by every new Templates (a cycle, a console request): a template file is looked at again
# once after each, not on every render
_bumps = itertools.count(1)
_generation = 0


class _Loader(jinja2.FileSystemLoader):
    """jinja2's file loader, whose check that a loaded template is still current looks at the
    file's time once per ``Templates`` made since, not on every use: an ``include`` is checked
    each time a reply renders it (four stats a receipt, 0.25 s of a 1,000-message poll), and an
    office opens a new ``Templates`` for every cycle and console request, so an officer's edit
    is still read by the next one. ``before``: folders whose templates come first (the
    agency's, for the starter set): a template taken from here is no longer current once one of
    them has a file of that name (an officer's own copy is read by the next office)."""

    def __init__(self, searchpath: str, before: tuple[str, ...] = (), encoding: str = "utf-8") -> None:
        super().__init__(searchpath, encoding=encoding)
        self.before = before

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        # the count before the file is read: a Templates made while it was read looks at it again
        seen = [_generation]
        contents, filename, uptodate = super().get_source(environment, template)
        pieces = split_template_path(template)
        ahead = [os.path.join(folder, *pieces) for folder in self.before]

        def current() -> bool:
            now = _generation
            if seen[0] == now:
                return True
            if not uptodate() or any(os.path.isfile(path) for path in ahead):
                return False
            seen[0] = now
            return True

        return contents, filename, current


@functools.lru_cache(maxsize=32)
def _environment(folder: str, settings: str, cache: str | None = None) -> jinja2.Environment:
    """The jinja2 environment of one templates folder: the agency's own templates first; a
    template a newer mailbot added and an older workspace lacks comes from the starter set.
    ``cache``: where compiled templates are kept between runs (the agency's data folder)."""
    from ..starter import starter_dir

    loaders: list[jinja2.BaseLoader] = [_Loader(folder, encoding="utf-8")]
    try:
        shipped = starter_dir() / "templates"
        if shipped.resolve() != Path(folder):
            loaders.append(_Loader(str(shipped), before=(folder,), encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an incomplete install: the agency's templates only
        pass
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,          # plain text; values are sanitised before they get here
        keep_trailing_newline=True,
        auto_reload=True,          # an officer's edit is read at once
        bytecode_cache=_compiled_cache(cache),
    )
    env.filters["thai_date"] = thai_date
    env.filters["thai_datetime"] = thai_datetime
    env.filters["english_date"] = english_date            # "4 December 2026": the English half's dates
    env.filters["english_datetime"] = english_datetime    # "4 December 2026, 10:42" (Bangkok time)
    env.globals.update({k: dict(v) for k, v in DEFAULT_GLOBALS.items()})
    for key, value in json.loads(settings).items():
        current = env.globals.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            current.update(value)
        else:
            env.globals[key] = value
    return env


@dataclass
class Templates:
    """The reply templates of one agency, loaded from its templates folder."""

    folder: Path
    settings: dict = field(default_factory=dict)   # template globals (template_globals(cfg))
    cache: Path | None = None      # compiled templates kept between runs (cfg.data_dir / "cache")

    def __post_init__(self) -> None:
        global _generation
        _generation = next(_bumps)   # templates already loaded: their files are looked at again once
        # one compiled set per folder and settings, kept between offices (every poll and every
        # console request opens one): jinja2 still reloads a template whose file changed
        key = json.dumps(self.settings, sort_keys=True, ensure_ascii=False, default=str)
        self.env = _environment(str(self.folder.resolve()), key, str(self.cache) if self.cache else None)
        self.broken: set[str] = set()      # optional templates that failed check(): not used
        # each template as this object first loaded it (None: there is none): jinja2 looks at the
        # file's time on every get_template, once per reply (0.1 s a 1,000-message poll); an
        # office opens a new Templates for every cycle and console request, so an edit is read
        # by the next one
        self._loaded: dict[str, jinja2.Template | None] = {}

    def _template(self, name: str) -> jinja2.Template | None:
        """``name`` as loaded once by this object; None when no folder has it."""
        try:
            return self._loaded[name]
        except KeyError:
            pass
        try:
            template: jinja2.Template | None = self.env.get_template(name)
        except jinja2.TemplateNotFound:
            template = None
        self._loaded[name] = template
        return template

    def has(self, kind: str) -> bool:
        """The agency's own folder holds this template (optional ones: only then is mail sent) and
        it renders."""
        return kind not in self.broken and (self.folder / f"{kind}.txt.j2").is_file()

    def render(self, kind: str, context: dict) -> str:
        """The reply ``kind`` for ``context``; to a sender who wrote in English (``context["language"]``)
        its English-first variant ``<kind>.en.txt.j2`` when there is one (the agency's own, else
        the starter set's), else the Thai-first template as it is."""
        name = f"{kind}.txt.j2"
        template = self._template(f"{kind}.en.txt.j2") if context.get("language") == ENGLISH else None
        if template is not None:
            name = template.name or name
        try:
            template = template or self._template(name)
            if template is None:
                raise jinja2.TemplateNotFound(name)
            return template.render(**context)
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"ไม่พบแม่แบบข้อความตอบกลับ: {self.folder / name}",
                f"reply template not found: {self.folder / name}",
                "สร้างใหม่ได้ด้วย mailbot init / recreate with mailbot init",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"แม่แบบข้อความตอบกลับเขียนผิดรูปแบบ: {name} บรรทัด {exc.lineno}",
                f"reply template has a syntax error: {name} line {exc.lineno}: {exc.message}",
            ) from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"แม่แบบข้อความตอบกลับใช้ชื่อตัวแปรที่ไม่มี: {name}",
                f"reply template uses an unknown variable: {name}: {exc.message}",
            ) from None

    def check(self, agency: AgencyConfig, now: datetime, problems: list[str] | None = None) -> int:
        """Render every template with sample values; raises TemplateError on the first fault of a
        template mail cannot go without. An optional one (``status_<status>``) that fails is
        reported in ``problems`` when given (intake goes on; that notice is not sent). Returns
        how many were checked."""
        optional = [p.name[: -len(".txt.j2")] for p in self.folder.glob("status_*.txt.j2")
                    if not p.name.endswith(".en.txt.j2")]       # an English-first variant: with its template
        names = [k.template_name for k in MAIL_KINDS.values() if not k.optional]
        for name in names:
            self.render(name, sample_context(agency, now))
            self.render(name, {**sample_context(agency, now), "language": ENGLISH})   # its English-first variant
        for name in optional:
            try:
                self.render(name, sample_context(agency, now))
                self.render(name, {**sample_context(agency, now), "language": ENGLISH})
            except TemplateError as exc:
                if problems is None:
                    raise
                problems.append(exc.plain().replace("\n", " / "))
                self.broken.add(name)
        names += optional
        if (self.folder / "result_letter.txt.j2").is_file():   # the result letter, with each outcome
            from .wording import decision, request_phrase

            for outcome in ("approved", "rejected", "incomplete"):
                self.render("result_letter", sample_letter_context(agency, now, outcome))
            names.append("result_letter")
        return len(names)


def sample_letter_context(agency: AgencyConfig, now: datetime, outcome: str = "approved") -> dict:
    """The result letter's values for a sample request (``check`` and the setup's preview)."""
    from .wording import decision, request_phrase

    words = decision(outcome, licence=True)
    return {"agency": {"name": agency.name, "address": agency.address}, "receipt": "15/2569",
            "service": "ขออนุญาตก่อสร้างอาคาร", "request": request_phrase("ขออนุญาตก่อสร้างอาคาร"),
            "requester": "นายตัวอย่าง ใจดี", "outcome": outcome, "granted": words.verb,
            "outcome_text": words.text, "note": "ตัวอย่าง", "received": thai_datetime(now),
            "received_date": thai_date(now), "licence": True, "fee": None,
            "appeal": {"to": agency.name, "days": 15}}


def sample_context(agency: AgencyConfig, now: datetime) -> dict:
    ctx = context(
        agency,
        receipt="15/2569",
        received_at=now,
        subject="ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12",
        sender_name="นายตัวอย่าง ใจดี",
        service={"code": "BLD", "name": "ขออนุญาตก่อสร้างอาคาร", "name_en": "Building permit", "next_steps": "เจ้าหน้าที่จะตรวจสอบเอกสาร", "days": 15},
        referral={"agency": "สำนักทะเบียนอำเภอเมือง", "contact": "โทร 0 2000 0000"},
        attachments=2,
    )
    ctx.update(
        checklist={
            "verdict": "incomplete", "count": 1, "missing_at_least": 1, "accept": ["pdf", "jpg"],
            "items": [{"document": "แบบคำขออนุญาต (ข.1)", "status": "found", "file": "ข1.pdf"},
                      {"document": "สำเนาบัตรประจำตัวประชาชน", "status": "missing", "file": ""}],
            "files": [{"name": "ข1.pdf", "size": 123456}], "rejected": [{"name": "a.zip", "size": 10}],
            "missing": ["สำเนาบัตรประจำตัวประชาชน"],
        },
        status="รอเอกสารเพิ่มเติม", status_en="waiting for more documents", via_staff="officer@example.go.th", deadline=thai_date(now),
        history=[{"at": thai_datetime(now), "note": "รับเรื่อง", "actor": "mailbot"}],
        unit="กองช่าง", sender_addr="somchai@example.com", note="ตัวอย่าง", message="ตัวอย่างข้อความ",
        result={"file": "ผลการพิจารณา เลขรับ 15-2569.pdf", "level": "B-B", "outcome": "approved",
                "outcome_text": "อนุมัติตามคำขอ"},
    )
    return ctx


def context(agency: AgencyConfig, *, receipt: str | None, received_at: datetime, subject: str,
            sender_name: str, service: dict | None = None, referral: dict | None = None,
            attachments: int = 0, sender_title: str = "", language: str | None = None) -> dict:
    """Everything a template may use. Text from the citizen is made one safe, inert line (no working
    link or address: ``trust.defang``). A secret request's subject arrives here masked already."""
    return {
        "agency": {"name": agency.name, "address": agency.address},
        "receipt": receipt,
        "tag": tag(receipt) if receipt else "",
        "received": thai_datetime(received_at),
        "received_date": thai_date(received_at),
        "received_at": to_bangkok(received_at),
        "subject": defang(one_line(subject, 200)),
        "sender_name": defang(one_line(sender_name, 80)),
        "language": language_of(language),      # th | en: the sender's, the reply's first language
        # เรียน …: as the letter addresses them (their own title, the officer's, else คุณ…)
        "addressed": defang(one_line(addressee(one_line(sender_name, 80), sender_title), 100)),
        "service": service,
        "referral": referral,
        "attachments": attachments,
        # filled in for case messages (cases.Desk.case_context); empty defaults elsewhere
        "checklist": {"verdict": "none", "items": [], "files": [], "rejected": [], "missing": [],
                      "accept": [], "count": 0, "missing_at_least": 0},
        "status": "",
        "status_en": "",        # the status in English words (workflow.label_en), for the English half
        "via_staff": "",
        "deadline": "",
        "confirmed_by_officer": False,   # documents_complete: an officer checked them, no mail came
        "history": [],
        "unit": "",
        "sender_addr": "",
        "note": "",
        "message": "",
        "status_key": "",
        "result": {"file": "", "level": "", "outcome": "", "outcome_text": ""},
        "size": "",
        "fits": "",             # too_large: about how many MB of files fit in one mail
        "fee": None,
        "fee_later": None,      # a fee asked with the approval letter: {name, amount}, named in the receipt
        "stamped": [],
        "audit_head": "",       # the daily log: the audit chain's head ("#N hash")
        "too_large": None,      # a forward over the server's SIZE: {limit_mb, files, link}
        "outage": False,        # alert: mailbot itself cannot work (ops.alerts.OUTAGES)
    }


_PLAIN_LINE = re.compile(r"[!-~]+(?: [!-~]+)*")     # printable ASCII words, one space between


class _Writing(Compat32):
    """compat32 as replies are written with it (CRLF), except that a header which is one short
    line of plain ASCII words (most of a reply's fourteen: Message-ID, Date, Auto-Submitted ...)
    is written as it is. compat32 makes a ``Header`` object and encodes every value, which was
    a third of the time of building a reply; for such a value that gives back exactly the same
    line (tests/test_replies_writing.py compares the two)."""

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        if isinstance(value, str) and len(name) + 2 + len(value) <= 78 and _PLAIN_LINE.fullmatch(value):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)  # type: ignore[misc]


WRITING = _Writing(linesep="\r\n")

# what MIMEText(text, "plain", "utf-8") puts first, in its order (compat32)
_TEXT_PART = (("Content-Type", 'text/plain; charset="utf-8"'), ("MIME-Version", "1.0"),
              ("Content-Transfer-Encoding", "base64"))


def _composed(text: str, headers: list[tuple[str, object]], attach: bytes | None,
              files: tuple[tuple[str, bytes], ...]) -> bytes:
    """The mail as the email package writes it: the text, then the original message
    (message/rfc822) and the files, each a part of its own."""
    body = MIMEText(text, "plain", "utf-8")
    msg: Message = body
    if attach is not None or files:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        if attach is not None:  # the original message, as message/rfc822
            msg.attach(MIMEMessage(email.message_from_bytes(attach, policy=compat32)))
        for filename, data in files:   # e.g. the signed result PDF, the daily log
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            part = MIMEApplication(data, mime.split("/", 1)[1])
            part.replace_header("Content-Type", mime)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
            msg.attach(part)
    for name, value in headers:
        msg[name] = value  # type: ignore[assignment]  # compat32 takes a Header object too; typeshed says str only
    return msg.as_bytes(policy=WRITING)


def _text_only(text: str, headers: list[tuple[str, object]]) -> bytes:
    """A mail that is its text alone (most replies), byte for byte as ``_composed`` writes it
    (tests/test_replies_writing.py compares them), without building the message object and
    walking it: the same headers folded by the same policy, the body in base64 lines."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:     # lone surrogates: each Python release's MIMEText has its own answer
        return _composed(text, headers, None, ())
    head = b"".join(WRITING.fold_binary(name, value) for name, value in (*_TEXT_PART, *headers))  # type: ignore[arg-type]
    return head + b"\r\n" + email.base64mime.body_encode(data).replace("\n", "\r\n").encode("ascii")


def build(*, kind: str, templates: Templates, agency: AgencyConfig, to: str, subject: str,
          receipt: str | None, in_reply_to: str | None, references: tuple[str, ...],
          message_id: str, now: datetime, ctx: dict, attach: bytes | None = None,
          files: tuple[tuple[str, bytes], ...] = (), template: str | None = None) -> bytes:
    """The reply as bytes ready for SMTP (CRLF line ends).

    Built with the compat32 classes: policy.default refolds every Thai header through its
    parser, which cost ~13 ms a reply (measured with bench/run.py); Header() encodes the same
    RFC 2047 words, split on character boundaries, at a fraction of that.
    """
    spec = MAIL_KINDS[kind]
    text = templates.render(template or spec.template_name, ctx)
    headers: list[tuple[str, object]] = [("From", formataddr((agency.name, agency.address), charset="utf-8"))]
    to_header = addresses.header_form(to)
    headers.append(("To", to_header if to_header.isascii() else "undisclosed-recipients:;"))
    # a reply keeps the citizen's subject (plus the tag); forwards, alerts and reports have their own
    title = reply_subject(subject, receipt, ctx.get("language", THAI)) if spec.threaded else one_line(subject, 250)
    if kind == "forward":   # carries the citizen's subject
        title = defang(one_line(subject, 250))
    headers.append(("Subject", Header(title, "utf-8") if not title.isascii() else title))
    headers.append(("Date", format_datetime(to_bangkok(now))))
    headers.append(("Message-ID", message_id))
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to))
        refs = [r for r in references if r != in_reply_to][-10:] + [in_reply_to]
        headers.append(("References", " ".join(refs)))
    headers += [("Auto-Submitted", spec.auto_submitted), ("X-Auto-Response-Suppress", "All"),
                ("Precedence", "auto_reply"), ("X-Mailer", "mailbot")]
    raw = _text_only(text, headers) if attach is None and not files else _composed(text, headers, attach, files)
    if not to_header.isascii():   # a non-ASCII local part: RFC 6532 UTF-8 header, sent only with SMTPUTF8
        raw = raw.replace(b"\r\nTo: undisclosed-recipients:;\r\n", b"\r\nTo: " + to_header.encode("utf-8") + b"\r\n", 1)
    return raw
