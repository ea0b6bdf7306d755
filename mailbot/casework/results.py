"""Results: PDFs the officer drops in ``results/outbox/`` signed and sent back to the requester.

Owns: reading a receipt number out of a file name (``15-2569.pdf``, ``15_2569 อนุมัติ.pdf``,
``๑๕-๒๕๖๙.pdf``), waiting until a file stops growing, signing it in memory (``sign``), writing
the signed copy atomically, queuing the reply with the signed PDF in the request's thread,
closing the case (การปฏิบัติ "ส่งผลการพิจารณาแล้ว <date>"), recording a licence for services
marked ``licence: true``, and moving problem files to ``results/problems/`` with a Thai note.
A result is the file's SHA-256 for one case (the same bytes named for two cases are two
results), so a crash never signs or sends it twice; it is called sent only when the mail
server took it, and every result gets its outgoing number in the dispatch register.
The result letter's words come from ``templates/result_letter.txt.j2`` and ``wording``: the
dispatch register's เรื่อง and ถึง, the covering e-mail's outcome and the file's name say what the
letter says.
"""
from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from .. import faults
from ..clock import utcnow
from ..config import Config, SigningConfig
from ..documents.certs import read_pkcs12
from ..documents.limits import HelperUnavailable
from ..documents.promptpay import FeeQr, fee_qr  # noqa: F401 - re-exported for callers of results
from ..documents.sign import BadPdf, SigningHelper, add_document_timestamp, load_signer
from ..errors import MailbotError, explain_environment
from ..files import write_atomic
from ..registers import dispatch, licences
from ..store import from_iso, iso
from ..thai import addressee, thai_date, thai_date_short, thai_datetime, thai_digits_to_arabic
from . import workflow
from .cases import Desk
from .replies import message_id_for
from .wording import APPROVAL, decision, fee_moment, outcome_from_name, request_phrase, undouble

log = logging.getLogger(__name__)

_RECEIPT_IN_NAME = re.compile(r"^\D{0,20}?(\d{1,7})\s*[-_./ ]\s*(\d{4})(?!\d)")


def receipt_from_filename(name: str) -> str | None:
    stem = thai_digits_to_arabic(Path(name).stem).strip()
    m = _RECEIPT_IN_NAME.match(stem)
    return f"{int(m.group(1))}/{m.group(2)}" if m else None


def attachment_name(receipt: str) -> str:
    return f"ผลการพิจารณา เลขรับ {receipt.replace('/', '-')}.pdf"


@dataclass
class ResultsReport:
    queued: list[tuple[str, str, str]] = field(default_factory=list)  # (receipt, file, Message-ID): signed, owed
    sent: list[tuple[str, str]] = field(default_factory=list)       # (receipt, file): the server took it
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (receipt, file, the server's answer)
    problems: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    waiting: list[str] = field(default_factory=list)                # still being written
    stuck: list[tuple[str, str]] = field(default_factory=list)      # (file, why): could not be moved yet
    already: list[tuple[str, str, str]] = field(default_factory=list)  # (receipt, file, when): signed before
    licences_changed: bool = False
    published: list[Path] = field(default_factory=list)


class Results:
    def __init__(self, cfg: Config, desk: Desk, clock: Callable[[], datetime] = utcnow, *,
                 signs: bool = True) -> None:
        """``signs``: False for what never signs (a letter's preview): no certificate needed."""
        if cfg.signing is None and signs:
            raise MailbotError(
                "ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์ (ส่วน signing ใน mailbot.yaml)",
                "no signing certificate configured (signing: in mailbot.yaml)",
            )
        self.cfg = cfg
        self.signing = cfg.signing
        self.desk = desk
        self.clock = clock
        self.state = desk.state
        self.cert = self.signer = self._p12 = None
        if signs and cfg.signing is not None:
            p12, self.cert = read_pkcs12(cfg.resolve(cfg.signing.pkcs12), cfg.signing.key_password())
            self.signer = load_signer(p12, cfg.signing.key_password())   # fails here, early, on a wrong password
            self._p12 = p12
        self._helper: SigningHelper | None = None
        self.outbox = cfg.resolve(cfg.results.outbox)
        self.sent_dir = cfg.resolve(cfg.results.sent)
        self.problems_dir = cfg.resolve(cfg.results.problems)
        for d in (self.outbox, self.sent_dir, self.problems_dir):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def sc(self) -> SigningConfig:
        """The signing settings; only what signs asks for them (a preview never does)."""
        if self.signing is None:
            raise MailbotError("ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์ (ส่วน signing ใน mailbot.yaml)",
                               "no signing certificate configured (signing: in mailbot.yaml)")
        return self.signing

    # ------------------------------------------------------------------ outbox

    def candidates(self) -> list[Path]:
        return sorted(p for p in self.outbox.iterdir()
                      if p.is_file() and not p.name.startswith((".", "~$")) and p.suffix.lower() != ".txt")

    def stable(self, files: list[Path]) -> tuple[list[Path], list[Path]]:
        """Files whose size did not change over ``stable_seconds`` (one wait for all)."""
        before = {p: _size(p) for p in files}
        wait = self.cfg.results.stable_seconds
        if files and wait:
            time.sleep(wait)
        ready: list[Path] = []
        waiting: list[Path] = []
        for p in files:
            after = _size(p)
            if after is None:
                continue
            fresh = time.time() - p.stat().st_mtime < wait
            (waiting if after != before[p] or fresh else ready).append(p)
        return ready, waiting

    def process(self, now: datetime) -> ResultsReport:
        report = ResultsReport()
        ready, waiting = self.stable(self.candidates())
        report.waiting = [p.name for p in waiting]
        self.retry_timestamps()
        try:
            for path in ready:
                try:
                    reason = self._one(path, now, report)
                except HelperUnavailable:
                    raise                 # the machine's fault, not the file's: the cycle stops cleanly
                except Exception as exc:  # noqa: BLE001 - one file never stops the others
                    failure = explain_environment(exc, self.cfg.data_dir)
                    if failure is not None:
                        raise failure from None
                    log.exception("result file %s failed", path.name)
                    reason = (f"ประมวลผลไฟล์นี้ไม่ได้ ({type(exc).__name__}) ตรวจว่าเป็น PDF ที่เปิดได้ แล้ววางใหม่\n"
                              f"This file could not be processed ({type(exc).__name__}: {str(exc)[:160]}); "
                              "check that it opens as a PDF and drop it again.")
                if reason:
                    self._problem(path, reason)
                    report.problems.append((path.name, reason))
        finally:
            if self._helper is not None:
                self._helper.close()
                self._helper = None
        if report.licences_changed:   # the public register follows every change
            report.published = licences.publish(self.state, self.cfg.resolve(self.cfg.publish.folder),
                                                self.cfg.agency.name, now)
        return report

    def _one(self, path: Path, now: datetime, report: ResultsReport) -> str | None:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        receipt = receipt_from_filename(path.name)
        if receipt is None:
            return ("ชื่อไฟล์ไม่มีเลขทะเบียนรับ ตั้งชื่อไฟล์ตามเลขรับ เช่น 15-2569.pdf แล้ววางในโฟลเดอร์ outbox อีกครั้ง\n"
                    "The file name holds no receipt number; name it like 15-2569.pdf and drop it again.")
        case = self.state.case(receipt)
        if case is None:
            return (f"ไม่พบเรื่องเลขทะเบียนรับ {receipt} ตรวจสอบเลขในชื่อไฟล์\n"
                    f"No case has receipt number {receipt}; check the number in the file name.")
        # a result is this file for this case: the same bytes named for another case are another result
        done = self.state.result_of_file(digest, case["id"])
        if done is not None:       # signed and queued before (a crash, or dropped again): only the move is left
            report.already.append((receipt, path.name, thai_datetime(from_iso(done["signed_at"]))))
            self._move_out(path, self.sent_dir / done["file_name"], report)
            return None
        if case["cancelled_at"]:
            return (f"เรื่อง {receipt} ถูกยกเลิกแล้ว ({case['cancel_reason'] or ''}) จึงไม่ลงนามและไม่ส่งผล\n"
                    f"Case {receipt} was cancelled; the result is neither signed nor sent.")
        if not case["reply_to"]:
            return (f"เรื่อง {receipt} ไม่มีอีเมลสำหรับตอบกลับ ส่งผลทางช่องทางอื่น (ไปรษณีย์/รับด้วยตนเอง)\n"
                    f"Case {receipt} has no address to reply to; deliver the result another way.")
        try:
            signed = self.helper().sign(data, agency=self.cfg.agency.name,
                                        signer_name=self.sc.signer_name,
                                        when=now, tsa_url=self.sc.tsa_url, digits=self.cfg.letters.digits)
        except BadPdf as exc:
            return f"{exc}\nแก้ไฟล์ (บันทึกเป็น PDF ที่ไม่ตั้งรหัสผ่าน) แล้ววางใหม่ / fix the file and drop it again."
        name = _free(self.sent_dir, f"{path.stem} (ลงนามแล้ว).pdf")   # the signed copy, in Thai; never overwritten
        write_atomic(self.sent_dir / name, signed.data)   # signed in memory, written whole
        outcome = outcome_from_name(path.name)
        service = self.desk.service(case["service_code"])
        words = decision(outcome, bool(service and service.licence))
        subject = self.letter_subject(case, outcome)      # the register's เรื่อง: a letter's words for this result
        with self.state.tx():
            # its outgoing number: the one the letter was written with, or a new one for this e-mail
            issued = dispatch.find(self.state, case["id"], digest) or dispatch.issue(
                self.state, self.cfg, when=now, case=case, kind="result_email", subject=subject,
                recipient=case["reply_to"], recipient_name=self.addressee(case), sha256=digest,
                file_name=path.name)
            result_id = self.state.add_result(
                case_id=case["id"], sha256=digest, file_name=path.name, original=path.name, signed=name,
                level=signed.level, outcome=outcome, signed_at=now,
                timestamp_pending=bool(self.sc.tsa_url) and signed.level == "B-B")
            mid = message_id_for("result", result_id, case["sha256"] or case["receipt"], self.cfg.agency.domain)
            self.state.set_result_message(result_id, mid)
            dispatch.settle(self.state, issued["id"], outbox_message_id=mid, action="ส่งทางอีเมล (รอส่ง)")
            self.desk.event(case, now, "result_signed", f"ลงนามผลการพิจารณา {thai_date_short(now)}", action=True)
            self.desk.reply_about(
                case, "result", now, key=result_id, received_at=from_iso(case["received_at"]),
                files=((attachment_name(receipt), signed.data),),
                result={"file": attachment_name(receipt), "level": signed.level, "outcome": outcome,
                        "outcome_text": words.text},
            )
            if service is not None and service.licence and outcome == "approved":   # an approval is a licence
                licences.record(self.state, case, service, now, self.cfg.registers.licence_pattern)
                report.licences_changed = True
        faults.point("after_result_commit")
        report.queued.append((receipt, path.name, mid))
        self._move_out(path, self.sent_dir / path.name, report)
        return None

    def _move_out(self, src: Path, dst: Path, report: ResultsReport) -> None:
        """Out of the outbox once recorded. A file that cannot be moved (open in another program on
        Windows) is that file's matter: said, and moved on a later cycle — never the cycle's."""
        try:
            self._move(src, dst)
        except OSError as exc:
            report.stuck.append((src.name, f"ย้ายไฟล์ไม่ได้ (เปิดค้างอยู่ในโปรแกรมอื่นหรือไม่?) จะลองใหม่รอบถัดไป / "
                                           f"cannot move it yet ({exc.strerror or exc}); retried next cycle"))

    def settle(self, report: ResultsReport) -> None:
        """After delivery: which queued results the server took, and which it refused."""
        for receipt, name, mid in report.queued:
            row = self.state.outbox_fate(mid)
            if row is None:
                continue
            if row["status"] == "sent":
                report.sent.append((receipt, name))
            elif row["status"] == "failed":
                report.refused.append((receipt, name, row["last_error"] or ""))

    def helper(self) -> SigningHelper:
        """The signing helper process (started at the first file of a cycle, closed at its end):
        a file that makes the PDF library loop is stopped after ``signing.timeout_seconds``."""
        if self._helper is None:
            sc = self.sc
            assert self._p12 is not None        # read with the certificate (signs=True)
            self._helper = SigningHelper(self._p12, sc.key_password(), timeout=sc.timeout_seconds)
        return self._helper

    def _move(self, src: Path, dst: Path) -> None:
        shutil.move(str(src), str(dst.parent / _free(dst.parent, dst.name)))

    def _problem(self, path: Path, reason: str) -> None:
        target = self.problems_dir / path.name
        self._move(path, target)
        note = (f"ไฟล์: {path.name}\nเวลา: {thai_datetime(self.clock())}\n\n{reason}\n")
        write_atomic(self.problems_dir / (path.name + ".txt"), note.encode("utf-8"))

    def retry_timestamps(self) -> None:
        """Files signed while the timestamp server was away get a document timestamp now."""
        tsa = self.sc.tsa_url
        if not tsa:
            return
        for row in self.state.results_awaiting_timestamp():
            path = self.sent_dir / row["signed"]
            try:
                stamped = add_document_timestamp(path.read_bytes(), tsa)
            except Exception:  # noqa: BLE001 - still away: try again next cycle
                return
            write_atomic(path, stamped)
            with self.state.tx():
                self.state.mark_result_timestamped(row["id"])

    # ------------------------------------------------------------------ letters

    def letter(self, receipt: str, outcome: str, note: str, now: datetime, location: str = "", *,
               dispatch_no: str = "", holder: str = "", preview: bool = False) -> Path:
        """Write the official result letter (หนังสือภายนอก) for a case.

        Normally it goes to the outbox, where the next step signs it (in the letter's signature
        space) and sends it. With ``preview`` it goes to ``results/preview/`` instead: not signed,
        not sent, nothing recorded. ``dispatch_no`` is the letter's "ที่" from the dispatch
        register (e.g. "มท 0808.2/15"). ``holder`` names the licence holder for the licence
        register when it is not the requester.
        """
        case = self.state.case(receipt)
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        if outcome not in workflow.RESULT_OUTCOMES:
            raise MailbotError(f"ผลการพิจารณาไม่ถูกต้อง: {outcome}",
                               f"unknown outcome {outcome!r}; use one of: {', '.join(workflow.RESULT_OUTCOMES)}")
        if outcome == "rejected" and not note.strip():
            raise MailbotError("หนังสือแจ้งไม่อนุมัติต้องระบุเหตุผล (--note \"เหตุผล\")",
                               "a rejection must state the reason (--note \"reason\")")
        if case["cancelled_at"]:
            raise MailbotError(f"เรื่อง {receipt} ถูกยกเลิกแล้ว ออกหนังสือแจ้งผลไม่ได้",
                               f"case {receipt} was cancelled; no result letter")
        service = self.desk.service(case["service_code"])
        words = decision(outcome, bool(service and service.licence))
        stem = f"{receipt.replace('/', '-')} {words.file_word}"   # the letter's own word, which the officer reads
        if dispatch_no or preview:
            pdf = self.render_letter(case, outcome, note, now, signature_field=not preview,
                                     dispatch_no=dispatch_no or dispatch.peek(self.state, self.cfg, now))
        else:
            # the letter's "ที่" is the dispatch register's next number: issued, written into the letter
            # and recorded with the letter's bytes in one transaction (a letter that fails to render
            # burns no number); the outbox step knows the letter by its bytes and keeps the number.
            # The register's เรื่อง and ถึง are the letter's own.
            worded = self.letter_words(case, outcome, note)
            with self.state.tx():
                issued = dispatch.issue(self.state, self.cfg, when=now, case=case, kind="result_letter",
                                        subject=worded.subject, recipient=case["reply_to"],
                                        recipient_name=worded.to)
                pdf = self.render_letter(case, outcome, note, now, dispatch_no=issued["number"],
                                         signature_field=True)
                dispatch.settle(self.state, issued["id"], sha256=hashlib.sha256(pdf).hexdigest())
        if preview:
            folder = self.outbox.parent / "preview"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{stem} (ตัวอย่าง).pdf"
            write_atomic(target, pdf)
            return target
        fields: dict[str, object] = {}
        if location:
            fields["location"] = location
        if holder.strip():
            fields["holder"] = holder.strip()
        fields["decided_at"] = iso(now)      # the 7-day clock for sending the result starts
        with self.state.tx():
            self.state.update_case(case["id"], **fields)
        target = self.outbox / f"{stem}.pdf"
        write_atomic(target, pdf)
        return target

    def addressee(self, case) -> str:
        """Whom the letter addresses (เรียน ...) and the dispatch register's ถึง: the requester with
        their title (``thai.addressee``), or their e-mail address when no name is known."""
        return addressee(case["sender_name"] or "", case["sender_title"] or "") or case["sender_addr"] or ""

    def letter_subject(self, case, outcome: str = "") -> str:
        """The letter's เรื่อง for a case (the template's words), also the dispatch register's
        เรื่อง for a result sent without a letter; an outcome not known words it as a result."""
        try:
            return self.letter_words(case, outcome or "approved", "").subject
        except Exception:  # noqa: BLE001 - a broken letter template never stops a dropped result
            log.warning("result_letter.txt.j2 could not word the subject for %s", case["receipt"], exc_info=True)
            return f"แจ้งผลการพิจารณา{request_phrase(case['service_name'] or case['subject'] or '')}"

    def letter_words(self, case, outcome: str, note: str) -> "LetterWords":
        """What the letter says, worded by ``templates/result_letter.txt.j2`` (the one source of its
        words): เรื่อง, อ้างถึง, สิ่งที่ส่งมาด้วย, the body's paragraphs, and whom it addresses."""
        cfg, lc = self.cfg, self.cfg.letters
        service_rule = self.desk.service(case["service_code"])
        service = case["service_name"] or case["subject"] or ""
        receipt = case["receipt"]
        licence = bool(service_rule and service_rule.licence)
        words = decision(outcome, licence)
        # the fee is asked with the approval letter only when it is asked at approval (fee.when)
        fee = fee_qr(service_rule, receipt) if outcome == "approved" and fee_moment(service_rule) == APPROVAL else None
        to = self.addressee(case)
        context = {
            "agency": {"name": cfg.agency.name, "address": cfg.agency.address}, "receipt": receipt,
            "service": service, "request": request_phrase(service), "requester": to, "outcome": outcome,
            "granted": words.verb, "outcome_text": words.text, "note": note.strip(),
            "received": thai_datetime(from_iso(case["received_at"])),
            "received_date": thai_date(from_iso(case["received_at"])),
            "licence": licence, "fee": fee.context if fee else None,
            "appeal": {"to": lc.appeal_to or cfg.agency.name, "days": lc.appeal_days},
        }
        module = self.desk.templates.env.get_template("result_letter.txt.j2").make_module(context)

        def said(text: object) -> str:         # an older template's "คำขอ" + a name that starts with ขอ
            return undouble(str(text or ""), service)

        body = said(module)
        subject = said(getattr(module, "subject", "")).strip() or f"แจ้งผลการพิจารณา{request_phrase(service)}"
        reference = said(getattr(module, "reference", "")).strip()
        enclosures = [ln.strip() for ln in said(getattr(module, "enclosures", "")).splitlines() if ln.strip()]
        return LetterWords(subject=" ".join(subject.split()), to=to, reference=reference, enclosures=enclosures,
                           paragraphs=[p.strip() for p in body.split("\n\n") if p.strip()], fee=fee)

    def render_letter(self, case, outcome: str, note: str, now: datetime, *, dispatch_no: str = "",
                      signature_field: bool = True) -> bytes:
        """The letter's PDF bytes for a case (no files written, nothing recorded)."""
        from ..documents import letters  # the word segmenter loads its dictionary (~1 s): only when writing letters

        cfg, lc = self.cfg, self.cfg.letters
        worded = self.letter_words(case, outcome, note)
        fee = worded.fee
        emblem = None
        if lc.emblem is not None:
            path = cfg.resolve(lc.emblem)
            try:
                emblem = path.read_bytes()
            except OSError:
                raise MailbotError(f"ไม่พบไฟล์ตราสัญลักษณ์: {path} (letters.emblem)",
                                   f"emblem image not found: {path} (letters.emblem)") from None
        signer = lc.signer_name or (cfg.signing.signer_name if cfg.signing else "")
        parts = letters.LetterParts(
            agency=cfg.agency.name, address=list(lc.address), dispatch_no=dispatch_no, date=thai_date(now),
            subject=worded.subject, to=worded.to, reference=worded.reference, enclosures=worded.enclosures,
            paragraphs=worded.paragraphs,
            signer_name=signer, signer_position=[ln for ln in lc.signer_position.split("\n") if ln.strip()],
            unit=lc.unit, phone=lc.phone, fax=lc.fax, email=lc.email or cfg.agency.address, emblem=emblem,
            qr_png=fee.png if fee else None, qr_caption=fee.caption if fee else [],
            title=f"{worded.subject} (เลขรับ {case['receipt']})", digits=lc.digits,
        )
        return letters.render(parts, signature_field=signature_field).pdf


@dataclass
class LetterWords:
    """A result letter's words (from the template), before layout."""

    subject: str
    to: str
    reference: str = ""
    enclosures: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    fee: FeeQr | None = None


def _free(folder: Path, name: str) -> str:
    """``name``, or "name (2)", "name (3)" ... : a file in ``folder`` is never overwritten."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None
