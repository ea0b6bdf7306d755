"""Result desk: the officer's side of results, for ``app.Office`` (command line and console).

Owns: a run of ``results`` (a result letter written first when asked, the PDFs in
results/outbox signed and sent, the mail delivered at once, the registers rewritten), the letter
previewed without signing, the files that went to results/problems with their Thai notes
(``result_problems``) and trying one again, an uploaded result PDF staged in results/preview and
then sent for signing, and the recent results. Changes run under the work lock it is given
(``app.Office.work``); the signing itself is ``results.Results``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..config import Config
from ..errors import ConnectionFailure, MailbotError
from ..mail.outbox import Delivery
from ..registers.numbering import normalise_receipt
from ..store import Row, State
from .cases import Desk
from .officer import case_or_fail

if TYPE_CHECKING:
    from ..ops.locks import Work
    from ..registers.service import Registers

log = logging.getLogger(__name__)


@dataclass
class ResultsRun:
    report: object                   # results.ResultsReport
    delivery: Delivery = field(default_factory=Delivery)
    letter: Path | None = None


@dataclass
class ResultProblem:
    name: str
    explanation: str
    at: datetime
    receipt: str
    refused: bool       # a signed result the mail server refused (a note only, nothing to retry)


class ResultDesk:
    """Results of one office: signed and sent, previewed, retried, uploaded."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], state: State, desk: Desk,
                 registers: "Registers", deliver: Callable[[], Delivery], work: "Work") -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state
        self.desk = desk
        self.registers = registers
        self.deliver = deliver
        self.work = work

    def results(self, letter: tuple | None = None) -> ResultsRun:
        """Sign and send what is in results/outbox (after writing a result letter, if asked)."""
        from .results import Results

        with self.work():
            results = Results(self.cfg, self.desk, self.clock)
            path = None
            if letter is not None:
                receipt, outcome, note, location, holder = (*letter, "")[:5]
                path = results.letter(normalise_receipt(receipt), outcome, note, self.clock(), location=location,
                                      holder=holder)
            report = results.process(self.clock())
            run = ResultsRun(report, letter=path)
            try:
                run.delivery = self.deliver()
            except ConnectionFailure as exc:
                run.delivery.smtp_error = exc
            results.settle(report)
            self.registers.write()
            return run

    def preview_letter(self, receipt: str, outcome: str, note: str) -> Path:
        """The result letter exactly as it would be signed and sent, written to results/preview/
        only: nothing signed, sent or recorded."""
        from .results import Results

        return Results(self.cfg, self.desk, self.clock, signs=False).letter(
            normalise_receipt(receipt), outcome, note, self.clock(), preview=True)

    def result_problems(self) -> list[ResultProblem]:
        """Files in results/problems with their Thai explanation (.txt), oldest first; notes of
        signed results the mail server refused (``.ส่งไม่สำเร็จ.txt``) too."""
        from .results import receipt_from_filename

        folder = self.cfg.resolve(self.cfg.results.problems)
        if not folder.is_dir():
            return []
        out = []
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            refused = path.name.endswith(".ส่งไม่สำเร็จ.txt")
            if path.suffix.lower() == ".txt" and not refused:
                continue
            note = path if refused else path.with_name(path.name + ".txt")
            try:
                text = note.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            receipt = (re.search(r"เรื่องเลขทะเบียนรับ (\S+)", text) or [None, None])[1] if refused \
                else receipt_from_filename(path.name)
            out.append(ResultProblem(path.name, text.strip(), at, receipt or "", refused))
        return sorted(out, key=lambda p: p.at)

    def retry_result(self, name: str, actor: str, receipt: str = "") -> ResultsRun:
        """A problem file back to results/outbox (renamed for ``receipt`` when given), then signed
        and sent at once like ``mailbot results``."""
        from ..files import write_atomic
        from ..mail.parse import safe_filename
        from .results import receipt_from_filename

        folder = self.cfg.resolve(self.cfg.results.problems)
        path = folder / safe_filename(name)
        if path.name != name or not path.is_file() or path.suffix.lower() == ".txt":
            raise MailbotError(f"ไม่พบไฟล์ {name} ใน results/problems", f"no file {name!r} in results/problems")
        target_name = path.name
        if receipt.strip():
            receipt = normalise_receipt(receipt)
            if self.state.case(receipt) is None:
                raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
            if receipt_from_filename(target_name) != receipt:
                target_name = f"{receipt.replace('/', '-')} {target_name}"
        with self.work():
            outbox = self.cfg.resolve(self.cfg.results.outbox)
            outbox.mkdir(parents=True, exist_ok=True)
            write_atomic(outbox / target_name, path.read_bytes())
            path.unlink()
            path.with_name(path.name + ".txt").unlink(missing_ok=True)
            self.state.event(self.clock(), "info", "result_retry", f"ลองไฟล์ผลการพิจารณา {name} ใหม่เป็น {target_name} โดย {actor} / {name} retried by {actor}")
        return self.results()

    def stage_result(self, receipt: str, data: bytes, outcome: str, actor: str) -> Path:
        """An uploaded result PDF for a case, kept in results/preview/ until the officer signs and
        sends it (``send_staged``): nothing is signed, sent or recorded yet."""
        from ..files import write_atomic

        from .wording import decision

        receipt = normalise_receipt(receipt)
        case = case_or_fail(self.state, receipt)
        if not data.startswith(b"%PDF-"):
            raise MailbotError("ไฟล์นี้ไม่ใช่ PDF เลือกไฟล์ PDF ของผลการพิจารณา", "the file is not a PDF")
        if len(data) > 50 * 1024 * 1024:
            raise MailbotError("ไฟล์ใหญ่เกิน 50 MB", "the file is larger than 50 MB")
        service = self.desk.service(case["service_code"])
        word = decision(outcome, bool(service and service.licence)).file_word   # the letter's own word
        word = f" {word}" if word else ""
        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{receipt.replace('/', '-')}{word} (อัปโหลด).pdf"
        write_atomic(target, data)
        log.info("result for %s uploaded by %s", receipt, actor)
        return target

    def send_staged(self, name: str, actor: str) -> ResultsRun:
        """An uploaded result (``stage_result``) into results/outbox, then signed and sent at once."""
        from ..mail.parse import safe_filename

        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        path = folder / safe_filename(name)
        if path.name != name or not name.endswith(" (อัปโหลด).pdf") or not path.is_file():
            raise MailbotError("ไม่พบไฟล์ที่อัปโหลดไว้ อัปโหลดใหม่อีกครั้ง", f"no uploaded file {name!r}")
        if self.cfg.signing is None:        # refused before the file moves: nothing signs it behind the officer's back
            raise MailbotError("ยังไม่ได้ตั้งค่าใบรับรองอิเล็กทรอนิกส์ (ส่วน signing ใน mailbot.yaml) "
                               "ไฟล์ที่อัปโหลดยังอยู่ที่เดิม",
                               "no signing certificate configured (signing: in mailbot.yaml); the upload stays staged")
        with self.work():
            outbox = self.cfg.resolve(self.cfg.results.outbox)
            outbox.mkdir(parents=True, exist_ok=True)
            path.replace(outbox / name.replace(" (อัปโหลด)", ""))
            self.state.event(self.clock(), "info", "result_upload", f"ส่งไฟล์ {name} ไปลงนาม โดย {actor} / {name} sent for signing by {actor}")
        return self.results()

    def preview_file(self, name: str) -> Path:
        """A file of results/preview/ (a letter preview or an uploaded result), by its name."""
        from ..mail.parse import safe_filename

        folder = self.cfg.resolve(self.cfg.results.outbox).parent / "preview"
        path = folder / safe_filename(name)
        if path.name != name or not path.is_file():
            raise MailbotError("ไม่พบไฟล์ตัวอย่าง", f"no preview file {name!r}")
        return path

    def recent_results(self, limit: int = 20) -> list[Row]:
        return self.state.recent_results(limit)
