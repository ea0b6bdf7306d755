"""Register: the Sarabun receive register as Excel workbooks, a view of the state database.

Owns: the columns and their order, the file name per Buddhist-Era year
(``ทะเบียนรับ-2569.xlsx``), the look (frozen header, auto-filter, Thai-capable font, widths),
keeping every text cell a text cell (a subject like ``=HYPERLINK(...)`` never becomes a
formula), and the atomic write (temp file in the same folder, then replace). A workbook that
cannot be written (open in Excel on Windows, read-only) is left as it is and retried next
cycle; SQLite stays the source of truth.
"""
from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils.indexed_list import IndexedList

from . import workflow
from .files import write_atomic
from .state import State, from_iso
from .thai import thai_date_short, thai_datetime

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


def _refresh_rows(state: State, year_be: int, agency_name: str) -> None:
    """Render the rows of cases that changed (and any never rendered) into the row cache."""
    db = state.db
    stale = db.execute(
        "SELECT c.* FROM cases c LEFT JOIN register_rows r ON r.case_id = c.id "
        "WHERE c.year_be = ? AND (r.case_id IS NULL OR c.id IN (SELECT case_id FROM register_dirty_cases))",
        (year_be,),
    ).fetchall()
    with state.tx(durable=False):
        db.executemany(
            "INSERT INTO register_rows (case_id, year_be, seq, xml) VALUES (?,?,?,?) "
            "ON CONFLICT (case_id) DO UPDATE SET xml=excluded.xml, seq=excluded.seq",
            [(c["id"], year_be, c["seq"], render_row(case_row(c, agency_name), c["seq"] + 1)) for c in stale],
        )
        db.executemany("DELETE FROM register_dirty_cases WHERE case_id=?", [(c["id"],) for c in stale])


def _assemble(state: State, year_be: int) -> bytes:
    """The workbook from the cached rows: cost grows with the file, not with Python objects per cell."""
    count = state.db.execute("SELECT count(*) FROM register_rows WHERE year_be=?", (year_be,)).fetchone()[0]
    members, head, tail = _template(f"ทะเบียนรับ {year_be}", count)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in members.items():
            z.writestr(name, data)
        with z.open(SHEET, "w", force_zip64=True) as sheet:
            sheet.write(head)
            batch: list[str] = []
            for (xml,) in state.db.execute(
                    "SELECT xml FROM register_rows WHERE year_be=? ORDER BY seq", (year_be,)):
                batch.append(xml)
                if len(batch) >= 2000:
                    sheet.write("".join(batch).encode("utf-8"))
                    batch.clear()
            sheet.write("".join(batch).encode("utf-8"))
            sheet.write(tail)
    return out.getvalue()


def write_registers(state: State, folder: Path, agency_name: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Rewrite the workbook of every year whose cases changed. Returns (written, failed)."""
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for year_be, version in sorted(state.dirty_years().items()):
        target = register_path(folder, year_be)
        _refresh_rows(state, year_be, agency_name)
        try:
            write_atomic(target, _assemble(state, year_be))
        except OSError as exc:
            failed.append((target, f"{type(exc).__name__}: {exc.strerror or exc}"))
            log.warning("register %s not written (%s); will retry next cycle", target, exc)
            continue
        state.clear_dirty(year_be, version)
        written.append(target)
    return written, failed
