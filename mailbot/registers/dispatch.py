"""Dispatch: the register of outgoing documents (ทะเบียนหนังสือส่ง, ข้อ 43) and their numbers.

Owns: giving every result letter and every result e-mail its outgoing number — the running
number of the numbering year and its written form from ``registers.dispatch_pattern`` (the
letter's "ที่", e.g. "มท 0808.2/15") — recorded before the document leaves (intent before
effect), never reused; recognising a document that already has one (a letter written with
``results letter`` keeps its number when the next step signs and mails it); and the register
as a view: ``registers/ทะเบียนส่ง-<year>.xlsx`` and ``.pdf`` with the regulation's columns
(เลขทะเบียนส่ง, ที่, ลงวันที่, จาก, ถึง, เรื่อง, การปฏิบัติ, หมายเหตุ) plus the receipt it answers.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..config import Config
from ..documents.printable import Column, Table
from ..store import Row, State, audit, from_iso, iso
from ..thai import thai_date_short
from .numbering import numbering_year, period_label, written

TITLE = "ทะเบียนหนังสือส่ง"
COLUMNS = [      # 148 units: the workbook's 16 pt prints at 12 pt or more (printable.effective_pt)
    Column("เลขทะเบียนส่ง", 13, align="C", wrap=True),
    Column("ที่", 16, wrap=True),
    Column("ลงวันที่", 12, wrap=True),
    Column("จาก", 18, wrap=True),
    Column("ถึง", 20, wrap=True),
    Column("เรื่อง", 27, wrap=True),
    Column("การปฏิบัติ", 18, wrap=True),
    Column("หมายเหตุ", 12, wrap=True),
    Column("เลขรับที่ตอบ", 12, align="C", wrap=True),
]


def peek(state: State, cfg: Config, when: datetime) -> str:
    """The number the next document would take (for a preview; nothing is issued)."""
    year = numbering_year(when, cfg.registers.year_reset)
    return written(cfg.registers.dispatch_pattern, state.dispatch_counter(year) + 1, year)


def issue(state: State, cfg: Config, *, when: datetime, case: Row | None, kind: str, subject: str,
          recipient: str | None, recipient_name: str = "", sha256: str | None = None, file_name: str | None = None,
          actor: str = "mailbot") -> Row:
    """A new outgoing number, recorded (inside the caller's transaction if there is one)."""
    year = numbering_year(when, cfg.registers.year_reset)
    with state.tx():
        seq = state.next_dispatch_seq(year)
        number = written(cfg.registers.dispatch_pattern, seq, year)
        action = "ส่งทางอีเมล (รอส่ง)" if kind == "result_email" else "หนังสือแจ้งผล (รอลงนามและส่ง)"
        row = state.add_dispatch(
            year_be=year, seq=seq, number=number, dated=iso(when), recipient=recipient, recipient_name=recipient_name,
            subject=subject, action=action, case_id=case["id"] if case is not None else None,
            receipt=case["receipt"] if case is not None else None, kind=kind, sha256=sha256, file_name=file_name)
        state.audit(when, actor, "dispatched", number,
                    {"number": number, "receipt": case["receipt"] if case is not None else None,
                     "to": recipient, "subject": audit.subject_sha(subject)})
        state.mark_dispatch_dirty(year)     # negative in register_dirty: the dispatch register's year
        return row


def find(state: State, case_id: int, sha256: str) -> Row | None:
    """The number a document already has (the same bytes for the same case)."""
    return state.dispatch_for_document(case_id, sha256)


def settle(state: State, dispatch_id: int, *, sha256: str | None = None, outbox_message_id: str | None = None,
           action: str | None = None) -> None:
    """Later facts about a document: its final bytes, its e-mail, what happened to it."""
    fields = {k: v for k, v in (("sha256", sha256), ("outbox_message_id", outbox_message_id), ("action", action))
              if v is not None}
    if not fields:
        return
    state.update_dispatch(dispatch_id, **fields)


def mail_done(state: State, message_id: str, when: datetime, sent: bool, error: str = "") -> None:
    """The outbox's answer for a result e-mail: its dispatch row says sent, or not sent and why."""
    row = state.dispatch_for_outbox(message_id)
    if row is None:
        return
    text = (f"ส่งทางอีเมลแล้ว {thai_date_short(when)}" if sent
            else f"ส่งทางอีเมลไม่สำเร็จ {thai_date_short(when)}: {error[:100]}")
    settle(state, row["id"], action=text)


def path(folder: Path, year_be: int) -> Path:
    return folder / f"ทะเบียนส่ง-{year_be}.xlsx"


def table(state: State, cfg: Config, year_be: int) -> Table:
    rows = []
    for d in state.dispatches_of_year(year_be):
        to = f"{d['recipient_name']} <{d['recipient']}>" if d["recipient_name"] and d["recipient"] else (
            d["recipient_name"] or d["recipient"] or "")
        remark = f"ยกเลิก: {d['cancel_reason']}" if d["cancelled_at"] else ""
        rows.append([str(d["seq"]), d["number"], thai_date_short(from_iso(d["dated"])), cfg.agency.name, to,
                     d["subject"], d["action"] or "", remark, d["receipt"] or ""])
    return Table(TITLE, cfg.agency.name, period_label(year_be, cfg.registers.year_reset), COLUMNS, rows)


def write(state: State, cfg: Config) -> list[Path]:
    """Rewrite the dispatch registers whose documents changed (xlsx and PDF)."""
    from .receive import write_table

    written_paths: list[Path] = []
    for year_key, version in sorted(state.dirty_years().items()):
        if year_key >= 0:
            continue
        year = -year_key
        xlsx, pdf = write_table(cfg.registers_dir, f"ทะเบียนส่ง-{year}", table(state, cfg, year), sheet=f"ทะเบียนส่ง {year}")
        state.clear_dirty(year_key, version)
        written_paths += [xlsx, pdf]
    return written_paths
