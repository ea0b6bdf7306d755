"""Register: the Sarabun receive register as Excel workbooks, a view of the state database.

Owns: the columns and their order, the file name per Buddhist-Era year
(``ทะเบียนรับ-2569.xlsx``), the look (frozen header, auto-filter, Thai-capable font, widths,
top-aligned cells, long text wrapped, rows as tall as their text), the print set-up (from
printable: the regulation's eight columns on A4 landscape, header row on every page, title,
page numbers) carried through the streamed append path, keeping every text cell a text cell (a
subject like ``=HYPERLINK(...)`` never becomes a formula), and the atomic write (temp file in
the same folder, then replace). A workbook that cannot be written (open in Excel on Windows,
read-only) is left as it is and retried next cycle; SQLite stays the source of truth. Also the
year's printable PDF (``ทะเบียนรับ-2569.pdf``, written on demand: ``write_pdf``) and
``write_table``, one call for any other register as xlsx + PDF.
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
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as xml_escape

from .. import files
from ..casework import workflow
from ..documents import printable
from ..documents.printable import Column, Table
from ..files import write_atomic
from ..store import State, from_iso
from ..thai import thai_date_short, thai_datetime, to_bangkok
from . import xlsxzip
from .numbering import YearReset, numbering_year, written
from .numbering import period_label as numbering_period

if TYPE_CHECKING:      # openpyxl (~0.2 s to import) loads only when a register is written: a poll
    from openpyxl import Workbook      # that finds no new mail never loads it
    from openpyxl.cell import Cell

log = logging.getLogger(__name__)

FONT_NAME = printable.WORKBOOK_FONT      # TH Sarabun New (the bundled Sarabun stands in where it is missing)
FONT_SIZE = printable.WORKBOOK_SIZE

# the regulation's eight columns first (they are the print area), then the technical ones (each
# as wide as its header: the header row is one line high)
COLUMNS: list[Column] = [      # the printed ones: 150 units, so that 16 pt prints at 12 pt or more
    Column("เลขทะเบียนรับ", 14, wrap=True),
    Column("ที่", 7, wrap=True),
    Column("ลงวันที่", 12, wrap=True),
    Column("จาก", 24, wrap=True),
    Column("ถึง", 16, wrap=True),
    Column("เรื่อง", 34, wrap=True),
    Column("การปฏิบัติ", 24, wrap=True),
    Column("หมายเหตุ", 19, wrap=True),
    Column("วันเวลาที่รับ (received)", 24, printed=False),
    Column("อีเมลผู้ส่ง (sender address)", 26, printed=False),
    Column("รหัสบริการ (service code)", 24, printed=False),
    Column("สถานะ (status)", 18, printed=False),
    Column("Message-ID", 30, printed=False),
    Column("ไฟล์แนบ (attachments)", 22, printed=False),
    Column("ไฟล์ต้นฉบับ (archive file)", 32, printed=False),
    Column("SHA-256", 18, printed=False),
    Column("การตอบกลับ (reply)", 19, printed=False),
    Column("ชั้นความเร็ว/ชั้นความลับ (urgency/secrecy)", 38, printed=False),
    Column("กำหนดแล้วเสร็จ (due date)", 25, printed=False),
]
TITLE = "ทะเบียนหนังสือรับ"

# The PDF: the regulation's columns, then when it came in and where it stands.
PDF_COLUMNS: list[Column] = [
    Column("เลขทะเบียนรับ", 20, align="C"),
    Column("ที่", 8, align="C"),
    Column("ลงวันที่", 16, align="C"),
    Column("จาก", 42),
    Column("ถึง", 24),
    Column("เรื่อง", 62),
    Column("การปฏิบัติ", 50),
    Column("หมายเหตุ", 38),
    Column("วันเวลาที่รับ", 17, align="C"),
]

# Cell styles of the streamed rows (see _template: openpyxl gives them these numbers).
STYLE_TOP, STYLE_WRAP = 1, 2
# Bump when render_row's output changes: cached rows are rendered again and the file rewritten.
ROW_FORMAT = "5"


@dataclass(frozen=True)
class Numbering:
    """How the register writes numbers and names its period (config.RegistersConfig)."""

    receipt_pattern: str = "{seq}/{year}"
    year_reset: YearReset = "calendar"

    @classmethod
    def of(cls, settings) -> "Numbering":
        return cls(settings.receipt_pattern, settings.year_reset) if settings is not None else cls()

    def key(self) -> str:
        return f"{self.receipt_pattern}|{self.year_reset}"


DEFAULT = Numbering()


def register_path(folder: Path, year_be: int) -> Path:
    return folder / f"ทะเบียนรับ-{year_be}.xlsx"


def action_text(case) -> str:
    """การปฏิบัติ, with a cancellation stated first (the row stays; the number stays burned)."""
    action = case["action"] or ""
    if case["cancelled_at"]:
        cancelled = (f"ยกเลิก {thai_date_short(from_iso(case['cancelled_at']))} โดย {case['cancelled_by'] or '-'}: "
                     f"{case['cancel_reason'] or ''}")
        action = f"{cancelled}; {action}" if action else cancelled
    return action


def marked(subject: str, *marks: str | None) -> str:
    """The subject with its urgency and secrecy marks in brackets before it, each mark once: one
    the subject says already is not added ("ด่วนที่สุด สอบถาม…", not "[ด่วนที่สุด] ด่วนที่สุด สอบถาม…")."""
    shown = " ".join(m for m in marks if m and m not in subject)
    return f"[{shown}] {subject}" if shown else subject


def case_row(case, agency_name: str, numbering: Numbering = DEFAULT) -> list[object]:
    received = from_iso(case["received_at"])
    doc_date = thai_date_short(from_iso(case["doc_date"])) if case["doc_date"] else ""
    sender = case["sender_name"] or ""
    if case["sender_addr"]:
        sender = f"{sender} <{case['sender_addr']}>" if sender else case["sender_addr"]
    marks = " ".join(m for m in (case["urgency"], case["secrecy"]) if m)
    due = case["due_date"]
    return [
        written(numbering.receipt_pattern, case["seq"], case["year_be"]),
        "-",
        doc_date,
        sender,
        agency_name,
        marked(case["subject"] or "", case["urgency"], case["secrecy"]),
        action_text(case),
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
        marks,
        thai_date_short(date.fromisoformat(due)) if due else "",
    ]


def period_label(year_be: int, reset: YearReset = "calendar") -> str:
    """The period a year's register covers, as its printed title says it."""
    return numbering_period(year_be, reset)


def build_workbook(rows: list[list[object]], title: str, agency: str = "", period: str = "") -> Workbook:
    return build_workbook_columns(COLUMNS, rows, title, heading=TITLE, agency=agency, period=period, growing=True)


def build_workbook_columns(columns: list[Column], rows: list[list[object]], title: str, *, heading: str = "",
                           agency: str = "", period: str = "", growing: bool = False,
                           starts: list[int] | None = None) -> Workbook:
    """A write-only workbook: header styled, body cells top-aligned, long-text columns wrapped,
    and the print set-up (printable.sheet_setup) with ``heading`` (the register's name), the
    agency and the period as the printed title. ``title`` is the sheet's name; ``starts``: the
    body rows that begin a printed page (the PDF's pages; default ``printable.page_starts``)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.utils.indexed_list import IndexedList
    from openpyxl.worksheet.pagebreak import Break

    wb = Workbook(write_only=True)
    # every cell's default font becomes the workbook's (openpyxl has no public setter for it)
    wb._fonts = IndexedList([Font(name=FONT_NAME, sz=FONT_SIZE, family=2)])  # type: ignore[attr-defined]
    ws = wb.create_sheet(title)
    # the body styles first, so they get the numbers render_row writes (STYLE_TOP, STYLE_WRAP)
    align_top, align_wrap = Alignment(vertical="top"), Alignment(vertical="top", wrap_text=True)
    top, wrapped = WriteOnlyCell(ws), WriteOnlyCell(ws)
    top.alignment, wrapped.alignment = align_top, align_wrap
    if (top.style_id, wrapped.style_id) != (STYLE_TOP, STYLE_WRAP):
        raise RuntimeError(f"openpyxl numbered the cell styles {top.style_id}, {wrapped.style_id}")
    ws.freeze_panes = "A2"
    for i, col in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = col.width
    printable.sheet_setup(ws, columns, title=heading or title, agency=agency, period=period,
                          last_row=None if growing else len(rows) + 1)
    header_font = Font(name=FONT_NAME, size=FONT_SIZE, bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    centred = Alignment(horizontal="center", vertical="top", wrap_text=True)   # first lines level
    height = printable.header_height(columns)
    if height:
        ws.row_dimensions[1].height = height
    header = []
    for col in columns:
        cell = WriteOnlyCell(ws, value=col.header)
        cell.font, cell.fill, cell.alignment = header_font, fill, centred
        header.append(cell)
    ws.append(header)
    styles = [align_wrap if col.wrap else align_top for col in columns]
    heights = [printable.row_height(row, columns) for row in rows]
    if starts is None:
        starts = printable.page_starts(heights, columns, height)
    for s_ in starts:
        ws.row_breaks.append(Break(id=s_ + 1))          # after the sheet row before it (body row s_ is row s_ + 2)
    for r, (row, height) in enumerate(zip(rows, heights), start=2):
        if height:
            ws.row_dimensions[r].height = height
        out = []
        for value, alignment in zip(row, styles):
            if isinstance(value, str) and value.startswith("="):    # formula-like text stays text
                cell = _text_cell(ws, value)
            else:   # rows are typed object throughout the registers; their values are text, numbers, dates
                cell = WriteOnlyCell(ws, value)  # type: ignore[arg-type]
            cell.alignment = alignment
            out.append(cell)
        ws.append(out)
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A1:{last}{max(1, len(rows) + 1)}"
    return wb


def _text_cell(ws, value: str) -> Cell:
    """openpyxl makes any string starting with '=' a formula; this one stays text."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def atomic_save(wb: Workbook, target: Path) -> None:
    """Build the file in memory, then write it next to the target and replace in one step."""
    buffer = io.BytesIO()
    wb.save(buffer)
    write_atomic(target, buffer.getvalue())


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def row_styles(columns: list[Column]) -> list[int]:
    return [STYLE_WRAP if col.wrap else STYLE_TOP for col in columns]


_STYLES = row_styles(COLUMNS)


def render_row(values: list[object], r: int, styles: list[int] | None = None,
               columns: list[Column] | None = None) -> str:
    """One sheet row as SpreadsheetML: text as inline strings (never a formula), numbers as numbers;
    each cell top-aligned, wrapped in the long-text columns (``styles``: the cell style per column),
    and the row as tall as its wrapped text (LibreOffice does not work that out itself)."""
    from openpyxl.utils import get_column_letter

    styles = styles or _STYLES
    height = printable.row_height(values, columns or COLUMNS)
    cells = []
    for i, value in enumerate(values, start=1):
        if value is None or value == "":
            continue
        ref = f"{get_column_letter(i)}{r}"
        s = styles[i - 1] if i <= len(styles) else STYLE_TOP
        if isinstance(value, int) and not isinstance(value, bool):
            cells.append(f'<c r="{ref}" s="{s}"><v>{value}</v></c>')
        else:
            text = xml_escape(_INVALID_XML.sub("", str(value)))
            cells.append(f'<c r="{ref}" s="{s}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
    ht = f' ht="{height:g}"' if height else ""
    return f'<row r="{r}"{ht}>{"".join(cells)}</row>'


def _template(title: str, rows: int, agency: str = "", period: str = "") -> tuple[dict[str, bytes], bytes, bytes]:
    """The workbook's fixed parts from openpyxl (styles, header row, frozen pane, widths, filter,
    print set-up and print titles): members, and the sheet XML before and after the data rows.
    The print set-up (pageSetup, printOptions, headerFooter) is in the part after the rows, which
    every append writes again; print titles and print area are defined names in workbook.xml that
    run to the sheet's last row, so they hold for rows appended later."""
    from openpyxl.utils import get_column_letter

    buffer = io.BytesIO()
    build_workbook([], title, agency, period).save(buffer)
    with zipfile.ZipFile(buffer) as z:
        members = {name: z.read(name) for name in z.namelist()}
    sheet = members.pop(SHEET)
    head, sep, tail = sheet.partition(b"</sheetData>")
    last = get_column_letter(len(COLUMNS))
    tail = re.sub(rb'<autoFilter ref="[^"]*"', f'<autoFilter ref="A1:{last}{max(1, rows + 1)}"'.encode(), sep + tail)
    return members, head, tail


SHEET = "xl/worksheets/sheet1.xml"
_HEIGHT = re.compile(r'<row r="\d+" ht="([\d.]+)"')


def page_starts_of(state: State, year_be: int, changed: set[int] | None = None) -> list[int]:
    """The rows that begin each printed page of the year's register (from the heights its cached
    rows carry): the workbook's page breaks, and the PDF's (``write_pdf``). Kept in the state
    (``register_pages:<year>``) with the last page's fill: when only new rows came (``changed``
    all after the rows counted), only their heights are read — a cycle's write does not grow
    with the year."""
    key = f"register_pages:{year_be}"
    fmt = f"{ROW_FORMAT}|{printable.header_height(COLUMNS)}|{printable.print_scale_max(COLUMNS)}"
    try:
        saved = json.loads(state.get(key) or "null")
    except ValueError:
        saved = None
    ok = (isinstance(saved, dict) and saved.get("format") == fmt and changed is not None
          and isinstance(saved.get("rows"), int) and isinstance(saved.get("starts"), list)
          and isinstance(saved.get("used"), (int, float)) and all(seq > saved["rows"] for seq in changed))
    after = saved["rows"] if ok else 0
    heights: list[float | None] = []
    for head in state.register_row_heads(year_be, after):
        m = _HEIGHT.match(head)
        heights.append(float(m.group(1)) if m else None)
    starts, used = printable.page_fill(heights, COLUMNS, printable.header_height(COLUMNS),
                                       saved["starts"] if ok else (), float(saved["used"]) if ok else 0.0, after)
    state.put(key, json.dumps({"format": fmt, "rows": after + len(heights), "starts": starts, "used": used}))
    return starts


def _with_breaks(tail: bytes, starts: list[int]) -> bytes:
    """The sheet's part after the rows with the page breaks where CT_Worksheet wants them (after
    the header and footer)."""
    breaks = printable.row_breaks_xml(starts).encode()
    if not breaks:
        return tail
    at = tail.find(b"</headerFooter>")
    if at == -1:
        return tail
    at += len(b"</headerFooter>")
    return tail[:at] + breaks + tail[at:]


def _refresh_rows(state: State, year_be: int, agency_name: str, numbering: Numbering = DEFAULT) -> set[int]:
    """Render the rows of cases that changed (and any never rendered) into the row cache;
    returns the receipt sequence numbers rendered."""
    row_format = f"{ROW_FORMAT}|{numbering.key()}"
    if state.get("register_row_format") != row_format:     # rows cached by an older version: all again
        state.reset_register_rows(row_format)
    stale = state.register_changed_cases(year_be)
    cases = state.register_case_top(year_be)
    rendered = state.register_rows_top(year_be)
    if rendered + len([c for c in stale if c["seq"] > rendered]) < cases:   # rows never rendered (new cache)
        stale = state.register_unrendered_cases(year_be)
    state.save_register_rows(
        year_be, [(c["id"], c["seq"], render_row(case_row(c, agency_name, numbering), c["seq"] + 1)) for c in stale])
    return {c["seq"] for c in stale}


def _rows(state: State, year_be: int, after: int = 0) -> list[bytes]:
    return [xml.encode("utf-8") for xml in state.register_row_xml(year_be, after)]


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


def _write_year(state: State, year_be: int, target: Path, changed: set[int], now: datetime,
                agency: str = "", numbering: Numbering = DEFAULT) -> Path | None:
    """Append the new rows to last cycle's file when only new cases changed; else write it whole.
    Either way into a temp file next to the target, then one replace. mailbot knows its own file
    by the hash of what it wrote: a file changed by anyone else is set aside first (returned)."""
    # receipt numbers run 1..N without gaps, so the last one is the row count (an index look-up)
    count = state.register_rows_top(year_be)
    members, head, tail = _template(f"ทะเบียนรับ {year_be}", count, agency,
                                    period_label(year_be, numbering.year_reset))
    tail = _with_breaks(tail, page_starts_of(state, year_be, changed))
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
        and _same_fixed_parts(layout, members)
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


def _same_fixed_parts(layout: xlsxzip.Layout, members: dict[str, bytes]) -> bool:
    """Whether the file's styles, workbook and header part are the ones this version writes
    (the document properties carry the time, so they do not count)."""
    old = {name: crc for name, _offset, crc, _packed, _size in layout.members}
    return all(old.get(name) == zlib.crc32(data) for name, data in members.items() if not name.startswith("docProps/"))


@dataclass
class RegisterWrite:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    kept: list[tuple[Path, Path]] = field(default_factory=list)     # (register, the changed file set aside)


def write_registers(state: State, folder: Path, agency_name: str, now: datetime,
                    numbering: Numbering = DEFAULT) -> RegisterWrite:
    """Rewrite the workbook of every year whose cases changed."""
    out = RegisterWrite()
    written, failed = out.written, out.failed
    for year_be, version in sorted(state.dirty_years().items()):
        if year_be < 0:        # the dispatch register's years (dispatch.py)
            continue
        target = register_path(folder, year_be)
        changed = _refresh_rows(state, year_be, agency_name, numbering)
        try:
            kept = _write_year(state, year_be, target, changed, now, agency_name, numbering)
            if kept is not None:
                out.kept.append((target, kept))
        except OSError as exc:
            failed.append((target, f"{type(exc).__name__}: {exc.strerror or exc}"))
            log.warning("register %s not written (%s); will retry next cycle", target, exc)
            continue
        state.clear_dirty(year_be, version)
        written.append(target)
    return out


# ------------------------------------------------------------------------------- printable

def pdf_path(folder: Path, year_be: int) -> Path:
    return folder / f"ทะเบียนรับ-{year_be}.pdf"


def pdf_row(case, agency_name: str, numbering: Numbering = DEFAULT) -> list[object]:
    """A case as the printed register shows it (PDF_COLUMNS): the sender's address on its own
    line, the time of receipt short."""
    received = to_bangkok(from_iso(case["received_at"]))
    doc_date = thai_date_short(from_iso(case["doc_date"])) if case["doc_date"] else ""
    sender = "\n".join(x for x in (case["sender_name"], case["sender_addr"]) if x)
    return [
        written(numbering.receipt_pattern, case["seq"], case["year_be"]), "-", doc_date, sender, agency_name,
        case["subject"] or "", action_text(case),
        case["remark"] or "", f"{thai_date_short(received)} {received:%H:%M} น.",
    ]


def register_table(state: State, year_be: int, agency: str, now: datetime | None = None,
                   numbering: Numbering = DEFAULT) -> Table:
    rows = [pdf_row(c, agency, numbering) for c in state.cases_of_year(year_be)]
    note = f"ข้อมูล ณ {thai_datetime(now)}" if now else ""
    return Table(TITLE, agency, period_label(year_be, numbering.year_reset), PDF_COLUMNS, rows, note=note)


def month_pdf_path(folder: Path, year: int, month: int) -> Path:
    """registers/ทะเบียนรับ-2569-11.pdf: one calendar month (``year``: CE) of the receive register."""
    return folder / f"ทะเบียนรับ-{year + 543}-{month:02d}.pdf"


def write_month_pdf(state: State, folder: Path, year: int, month: int, agency: str, now: datetime | None = None,
                    numbering: Numbering = DEFAULT) -> Path:
    """One calendar month of the receive register as a printable PDF (what the daily job writes:
    its cost is a month's rows, whatever the year holds; the year's PDF is made when asked)."""
    from datetime import date as _date
    from datetime import time as _time

    from ..store import iso
    from ..thai import BANGKOK, THAI_MONTHS

    first = _date(year, month, 1)
    after = _date(year + (month == 12), month % 12 + 1, 1)
    year_be = numbering_year(first, numbering.year_reset)
    cases = state.cases_received_between(year_be, iso(datetime.combine(first, _time(0), BANGKOK)),
                                         iso(datetime.combine(after, _time(0), BANGKOK)))
    rows = [pdf_row(c, agency, numbering) for c in cases]
    note = f"ข้อมูล ณ {thai_datetime(now)}" if now else ""
    heights = [printable.row_height(case_row(c, agency, numbering), COLUMNS) for c in cases]
    table = Table(TITLE, agency, f"ประจำเดือน{THAI_MONTHS[month - 1]} พ.ศ. {year + 543}", PDF_COLUMNS, rows,
                  note=note, starts=printable.page_starts(heights, COLUMNS, printable.header_height(COLUMNS)))
    target = month_pdf_path(folder, year, month)
    write_atomic(target, printable.render(table))
    return target


def write_pdf(state: State, folder: Path, year_be: int, agency: str, now: datetime | None = None,
              numbering: Numbering = DEFAULT) -> Path:
    """The year's receive register as a printable PDF beside its workbook (ทะเบียนรับ-2569.pdf)."""
    target = pdf_path(folder, year_be)
    table = register_table(state, year_be, agency, now, numbering)
    _refresh_rows(state, year_be, agency, numbering)       # the workbook's rows, for its page breaks
    table.starts = page_starts_of(state, year_be)
    write_atomic(target, printable.render(table))
    return target


def write_table(folder: Path, stem: str, table: Table, sheet: str | None = None) -> tuple[Path, Path]:
    """Any register in one call: ``<stem>.xlsx`` (print set-up included) and ``<stem>.pdf``.

    ``table.columns`` lists the workbook's columns, the printed ones first; the PDF shows the
    printed ones. For the dispatch register, e.g.::

        write_table(folder, "ทะเบียนส่ง-2569", Table("ทะเบียนหนังสือส่ง", agency, "ประจำปี พ.ศ. 2569",
                    [Column("เลขทะเบียนส่ง", 13), Column("ที่", 14, wrap=True), ..., Column("หมายเหตุ", 28, wrap=True),
                     Column("เลขรับที่ตอบ", 13)], rows))
    """
    folder.mkdir(parents=True, exist_ok=True)
    xlsx, pdf = folder / f"{stem}.xlsx", folder / f"{stem}.pdf"
    rows = [list(r) for r in table.rows]
    columns = printable.fitted_columns(table.columns, rows)     # no date or number wrapped in Excel
    # the workbook's pages (its rows' heights at its print scale) are the PDF's too, with any more
    # breaks the PDF needs: both print the same rows on the same pages
    table.starts = printable.page_starts([printable.row_height(r, columns) for r in rows], columns,
                                         printable.header_height(columns))
    data, starts = printable.render_pages(table)
    wb = build_workbook_columns(columns, rows, sheet or stem[:31], heading=table.title, agency=table.agency,
                                period=table.period, starts=starts)
    atomic_save(wb, xlsx)
    write_atomic(pdf, data)
    return xlsx, pdf
