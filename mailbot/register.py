"""Register: the Sarabun receive register as Excel workbooks, a view of the state database.

Owns: the columns and their order, the file name per Buddhist-Era year
(``ทะเบียนรับ-2569.xlsx``), the look (frozen header, auto-filter, Thai-capable font, widths),
keeping every text cell a text cell (a subject like ``=HYPERLINK(...)`` never becomes a
formula), and the atomic write (temp file in the same folder, then replace). A workbook that
cannot be written (open in Excel on Windows, read-only) is left as it is and retried next
cycle; SQLite stays the source of truth.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils.indexed_list import IndexedList

from . import files, workflow, xlsxzip
from .files import write_atomic
from .state import State, from_iso
from .thai import thai_date_short, thai_datetime, to_bangkok

log = logging.getLogger(__name__)

FONT_NAME = "Tahoma"  # on every Windows PC, has Thai glyphs

# (header, width)
COLUMNS: list[tuple[str, int]] = [
    ("เลขทะเบียนรับ", 14),
    ("ที่", 10),
    ("ลงวันที่", 14),
    ("จาก", 28),
    ("ถึง", 24),
    ("เรื่อง", 50),
    ("การปฏิบัติ", 30),
    ("หมายเหตุ", 36),
    ("วันเวลาที่รับ (received)", 28),
    ("อีเมลผู้ส่ง (sender address)", 30),
    ("รหัสบริการ (service code)", 12),
    ("สถานะ (status)", 24),
    ("Message-ID", 36),
    ("ไฟล์แนบ (attachments)", 10),
    ("ไฟล์ต้นฉบับ (archive file)", 40),
    ("SHA-256", 20),
    ("การตอบกลับ (reply)", 24),
]


def register_path(folder: Path, year_be: int) -> Path:
    return folder / f"ทะเบียนรับ-{year_be}.xlsx"


def case_row(case, agency_name: str) -> list[object]:
    received = from_iso(case["received_at"])
    doc_date = thai_date_short(from_iso(case["doc_date"])) if case["doc_date"] else ""
    sender = case["sender_name"] or ""
    if case["sender_addr"]:
        sender = f"{sender} <{case['sender_addr']}>" if sender else case["sender_addr"]
    return [
        case["receipt"],
        "-",
        doc_date,
        sender,
        agency_name,
        case["subject"] or "",
        case["action"] or "",
        case["remark"] or "",
        thai_datetime(received),
        case["sender_addr"] or "",
        case["service_code"] or "",
        workflow.label(case["status"] or ""),
        case["message_id"] or "",
        int(case["attachments"] or 0),
        case["archive"] or "",
        case["sha256"] or "",
        case["reply_status"] or "",
    ]


def build_workbook(rows: list[list[object]], title: str) -> Workbook:
    return build_workbook_columns(COLUMNS, rows, title)


def build_workbook_columns(columns: list[tuple[str, int]], rows: list[list[object]], title: str) -> Workbook:
    """A write-only workbook: header styled, body plain (a per-cell style costs 2.4x the time)."""
    wb = Workbook(write_only=True)
    # every cell's default font becomes Tahoma (openpyxl has no public setter for it)
    wb._fonts = IndexedList([Font(name=FONT_NAME, sz=10, family=2)])
    ws = wb.create_sheet(title)
    ws.freeze_panes = "A2"
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[_col(i)].width = width
    header_font = Font(name=FONT_NAME, size=10, bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    header = []
    for name, _ in columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font, cell.fill = header_font, fill
        header.append(cell)
    ws.append(header)
    for row in rows:
        ws.append([_text_cell(ws, v) if isinstance(v, str) and v.startswith("=") else v for v in row])
    last = _col(len(columns))
    ws.auto_filter.ref = f"A1:{last}{max(1, len(rows) + 1)}"
    return wb


def _text_cell(ws, value: str) -> WriteOnlyCell:  # type: ignore[no-untyped-def]
    """openpyxl makes any string starting with '=' a formula; this one stays text."""
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _col(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def atomic_save(wb: Workbook, target: Path) -> None:
    """Build the file in memory, then write it next to the target and replace in one step."""
    buffer = io.BytesIO()
    wb.save(buffer)
    write_atomic(target, buffer.getvalue())


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_row(values: list[object], r: int) -> str:
    """One sheet row as SpreadsheetML: text as inline strings (never a formula), numbers as numbers."""
    cells = []
    for i, value in enumerate(values, start=1):
        if value is None or value == "":
            continue
        ref = f"{_col(i)}{r}"
        if isinstance(value, int) and not isinstance(value, bool):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        else:
            text = xml_escape(_INVALID_XML.sub("", str(value)))
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
    return f'<row r="{r}">{"".join(cells)}</row>'


def _template(title: str, rows: int) -> tuple[dict[str, bytes], bytes, bytes]:
    """The workbook's fixed parts from openpyxl (styles, header row, frozen pane, widths, filter):
    members, and the sheet XML before and after the data rows."""
    buffer = io.BytesIO()
    build_workbook([], title).save(buffer)
    with zipfile.ZipFile(buffer) as z:
        members = {name: z.read(name) for name in z.namelist()}
    sheet = members.pop(SHEET)
    head, sep, tail = sheet.partition(b"</sheetData>")
    last = _col(len(COLUMNS))
    tail = re.sub(rb'<autoFilter ref="[^"]*"', f'<autoFilter ref="A1:{last}{max(1, rows + 1)}"'.encode(), sep + tail)
    return members, head, tail


SHEET = "xl/worksheets/sheet1.xml"


def _refresh_rows(state: State, year_be: int, agency_name: str) -> set[int]:
    """Render the rows of cases that changed (and any never rendered) into the row cache;
    returns the receipt sequence numbers rendered."""
    db = state.db
    stale = db.execute(
        "SELECT c.* FROM register_dirty_cases d JOIN cases c ON c.id = d.case_id WHERE c.year_be = ?", (year_be,)
    ).fetchall()
    cases = db.execute("SELECT max(seq) FROM cases WHERE year_be=?", (year_be,)).fetchone()[0] or 0
    rendered = db.execute("SELECT max(seq) FROM register_rows WHERE year_be=?", (year_be,)).fetchone()[0] or 0
    if rendered + len([c for c in stale if c["seq"] > rendered]) < cases:   # rows never rendered (new cache)
        stale = db.execute(
            "SELECT c.* FROM cases c LEFT JOIN register_rows r ON r.case_id = c.id WHERE c.year_be = ? "
            "AND (r.case_id IS NULL OR c.id IN (SELECT case_id FROM register_dirty_cases))", (year_be,)).fetchall()
    with state.tx(durable=False):
        db.executemany(
            "INSERT INTO register_rows (case_id, year_be, seq, xml) VALUES (?,?,?,?) "
            "ON CONFLICT (case_id) DO UPDATE SET xml=excluded.xml, seq=excluded.seq",
            [(c["id"], year_be, c["seq"], render_row(case_row(c, agency_name), c["seq"] + 1)) for c in stale],
        )
        db.executemany("DELETE FROM register_dirty_cases WHERE case_id=?", [(c["id"],) for c in stale])
    return {c["seq"] for c in stale}


def _rows(state: State, year_be: int, after: int = 0) -> list[bytes]:
    return [xml.encode("utf-8") for (xml,) in state.db.execute(
        "SELECT xml FROM register_rows WHERE year_be=? AND seq>? ORDER BY seq", (year_be, after))]


def file_sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except FileNotFoundError:
        return None


def set_aside(target: Path, when: datetime) -> Path:
    """A register that mailbot did not write as it is (edited by hand, replaced, or from another
    database) is kept beside the new one under a dated name, never overwritten."""
    local = to_bangkok(when)
    stamp = f"{local.day:02d}-{local.month:02d}-{local.year + 543} {local:%H%M%S}"
    kept = target.with_name(f"{target.stem} (ฉบับเดิม {stamp}){target.suffix}")
    os.replace(target, kept)
    return kept


def _write_year(state: State, year_be: int, target: Path, changed: set[int], now: datetime) -> Path | None:
    """Append the new rows to last cycle's file when only new cases changed; else write it whole.
    Either way into a temp file next to the target, then one replace. mailbot knows its own file
    by the hash of what it wrote: a file changed by anyone else is set aside first (returned)."""
    # receipt numbers run 1..N without gaps, so the last one is the row count (an index look-up)
    count = state.db.execute("SELECT max(seq) FROM register_rows WHERE year_be=?", (year_be,)).fetchone()[0] or 0
    members, head, tail = _template(f"ทะเบียนรับ {year_be}", count)
    key = f"register_layout:{year_be}"
    saved = json.loads(state.get(key) or "null")
    written_hash = saved.pop("sha256", None) if saved else None
    layout = xlsxzip.Layout(**saved) if saved else None
    current = file_sha256(target)
    if written_hash is None and layout is not None and current is not None \
            and target.stat().st_size == layout.file_size:
        written_hash = current      # recorded by round 1 (size only): trusted once, hashed from now on
    kept = None
    if current is not None and current != written_hash:
        kept = set_aside(target, now)
        layout = None
    appendable = (
        layout is not None and current is not None
        and bool(changed) and sorted(changed) == list(range(layout.rows + 1, count + 1))
    )
    with files.replacing(target, suffix=".xlsx") as tmp:
        if appendable:
            assert layout is not None
            shutil.copyfile(target, tmp)
            with open(tmp, "r+b") as out:
                layout = xlsxzip.append(out, layout, SHEET, _rows(state, year_be, layout.rows), tail, count)
                out.flush()
                os.fsync(out.fileno())
        else:
            with open(tmp, "w+b") as out:
                layout = xlsxzip.write_new(out, members, SHEET, head, _rows(state, year_be), tail, count)
                out.flush()
                os.fsync(out.fileno())
    state.put(key, json.dumps({**layout.to_json(), "sha256": file_sha256(target)}))
    return kept


@dataclass
class RegisterWrite:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    kept: list[tuple[Path, Path]] = field(default_factory=list)     # (register, the changed file set aside)


def write_registers(state: State, folder: Path, agency_name: str, now: datetime) -> RegisterWrite:
    """Rewrite the workbook of every year whose cases changed."""
    out = RegisterWrite()
    written, failed = out.written, out.failed
    for year_be, version in sorted(state.dirty_years().items()):
        target = register_path(folder, year_be)
        changed = _refresh_rows(state, year_be, agency_name)
        try:
            kept = _write_year(state, year_be, target, changed, now)
            if kept is not None:
                out.kept.append((target, kept))
        except OSError as exc:
            failed.append((target, f"{type(exc).__name__}: {exc.strerror or exc}"))
            log.warning("register %s not written (%s); will retry next cycle", target, exc)
            continue
        state.clear_dirty(year_be, version)
        written.append(target)
    return out
