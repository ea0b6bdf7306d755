"""The registers kept in step with the database, for ``app.Office`` and its services.

Owns: rewriting the receive and dispatch registers after every change (``write``: a register
open in Excel is retried next cycle, one changed by someone else is set aside and written afresh,
and the officers are told), the supervisors' daily log with this and last month's receive
register as PDF (``daily_log``, queued to the supervisors when asked; the year's PDF is made on
request: ``receive_register_pdf``) and the published licences (``publish``).
Reports run under the work lock it is given (``app.Office.work``).
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from ..casework import workflow
from ..casework.replies import context
from ..config import Config
from ..store import State
from ..thai import thai_date
from . import dispatch
from .receive import Numbering, write_registers

if TYPE_CHECKING:
    from ..casework.cases import Desk
    from ..mail.outbox import Outbox
    from ..ops.locks import Work


class Report(Protocol):
    """What a cycle's report (``intake.cycle.CycleReport``) keeps of the registers written."""

    registers: list[Path]
    register_failures: list[tuple[Path, str]]
    warnings: list[str]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Registers:
    """The registers of one office: written after each change, the daily log, the licences."""

    def __init__(self, *, cfg: Config, clock: Callable[[], datetime], state: State, desk: "Desk",
                 outbox: "Outbox", notify: Callable[[str, str], None], work: "Work",
                 send_alerts: Callable[[], None]) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state
        self.desk = desk
        self.outbox = outbox
        self.notify = notify
        self.work = work
        self.send_alerts = send_alerts

    def write(self, report: Report | None = None) -> list[str]:
        """The receive and dispatch registers rewritten where cases changed; the warnings."""
        result = write_registers(self.state, self.cfg.registers_dir, self.cfg.agency.name, self.clock(),
                                 Numbering.of(self.cfg.registers))
        try:
            dispatch.write(self.state, self.cfg)
        except OSError as exc:
            result.failed.append((self.cfg.registers_dir / "ทะเบียนส่ง", f"{type(exc).__name__}: {exc}"))
        warnings = [f"เขียนทะเบียนไม่ได้ (เปิดค้างใน Excel หรือไม่?) จะลองใหม่รอบถัดไป: {path.name} / "
                    f"register not written ({why}); retried next cycle" for path, why in result.failed]
        for target, kept in result.kept:
            text = (f"ทะเบียน {target.name} ถูกแก้ไขหรือแทนที่โดยผู้อื่น จึงเก็บฉบับนั้นไว้เป็น {kept.name} "
                    f"และเขียนทะเบียนใหม่จากฐานข้อมูล (อย่าแก้ทะเบียนใน Excel ให้ใช้คำสั่ง mailbot case set) / "
                    f"{target.name} was changed by someone else: kept as {kept.name}, a fresh one written")
            warnings.append(text)
            self.state.event(self.clock(), "warning", "register_kept", text)
            self.notify(text.split(" / ")[0], text.split(" / ")[-1])
        if report is not None:
            report.registers, report.register_failures = result.written, result.failed
            report.warnings.extend(warnings)
        return warnings

    def receive_register_pdf(self, year_be: int) -> Path:
        """The year's receive register as PDF, made now when it is missing or older than its
        workbook (the daily job makes it too): what an officer asks to print is never stale."""
        from . import receive as register

        target = register.pdf_path(self.cfg.registers_dir, year_be)
        workbook = target.with_suffix(".xlsx")
        if target.is_file() and (not workbook.is_file() or target.stat().st_mtime >= workbook.stat().st_mtime):
            return target
        with self.work():
            return register.write_pdf(self.state, self.cfg.registers_dir, year_be, self.cfg.agency.name,
                                      self.clock(), Numbering.of(self.cfg.registers))

    def daily_log(self, day: date, email: bool = False) -> Path:
        """registers/daily/<BE date>.xlsx and .pdf, and this and last month's receive register as
        PDF (registers/ทะเบียนรับ-<BE year>-<month>.pdf); the log queued to the supervisors when
        ``email``."""
        from . import daily as report
        from . import receive as register

        with self.work():
            now = self.clock()
            late = [[c["receipt"], "(เรื่องลับ)" if c["secrecy"] else (c["subject"] or ""),
                     c["service_name"] or "", thai_date(date.fromisoformat(c["due_date"])), workflow.label(c["status"]),
                     max(0, (day - date.fromisoformat(c["due_date"])).days)] for c in self.desk.due_soon(day)]
            path, pdf = report.write(self.state, day, self.cfg.registers_dir, self.cfg.agency.name, now,
                                     audit_head=self.state.audit_head_text(), late=late)
            # this month's and last month's pages of the receive register (a case may still change
            # in the month after it came): the job's cost is two months of rows, whatever the year
            # holds; the year's PDF is made when someone asks for it (receive_register_pdf)
            last_month = (day.replace(day=1) - timedelta(days=1))
            for year, month in ((last_month.year, last_month.month), (day.year, day.month)):
                register.write_month_pdf(self.state, self.cfg.registers_dir, year, month, self.cfg.agency.name, now,
                                         Numbering.of(self.cfg.registers))
            if email and self.cfg.supervisors:
                ctx = context(self.cfg.agency, receipt=None, received_at=now, subject="", sender_name="")
                ctx["received_date"] = thai_date(day)
                n, digest = self.state.audit_head()
                # the chain's head leaves the computer with every daily log: in the subject (the first
                # 16 characters of its hash, which `audit verify` finds in the Sent folder) and whole
                # in the text, for the supervisor's copy to be pasted back (`audit verify --head`)
                ctx["audit_head"] = f"#{n} {digest}"
                with self.state.tx():
                    for i, to in enumerate(self.cfg.supervisors):
                        self.outbox.queue("daily_report", recipient=to,
                                          subject=f"บันทึกประจำวัน {thai_date(day)} [#{n} {digest[:16]}]",
                                          now=now, ctx=ctx, key=int(f"{day:%Y%m%d}"),
                                          key_hash=_digest(f"{to}|{i}"),
                                          files=((path.name, path.read_bytes()), (pdf.name, pdf.read_bytes())))
                self.send_alerts()
            return path

    def publish(self) -> list[Path]:
        from . import licences

        with self.work():
            return licences.publish(self.state, self.cfg.resolve(self.cfg.publish.folder), self.cfg.agency.name,
                                    self.clock())
