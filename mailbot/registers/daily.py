"""Report: the supervisors' daily log as an Excel workbook and a PDF (``registers/daily/<BE date>.xlsx``
and ``.pdf`` beside it).

Owns: one row per message handled that day (time, sender, subject, outcome, receipt number,
reply in Thai words, error), a summary with counts by outcome and by service (the service's
name, not its code) and a bar chart that prints whole on one page, the print set-up of both
sheets, and the date forms supervisors type (``29/11/2569``, ``2569-11-29``, ``2026-11-29``).
"""
from __future__ import annotations

import io
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.indexed_list import IndexedList

from ..casework.triage import SECRET_MASK, secrecy_of
from ..documents import printable
from ..documents.printable import Column, Table
from ..files import write_atomic
from ..kinds import OUTCOMES, outcome_label, send_state
from ..kinds import Outcome as O
from ..store import State, from_iso, iso
from ..thai import BANGKOK, thai_date, to_bangkok
from .receive import marked

if TYPE_CHECKING:
    from ..documents.thaipdf import Pdf

TITLE = "บันทึกประจำวัน"
# the daily log's outcomes, in this order, with the labels of the one outcome table (kinds.py)
SHOWN = (O.REGISTERED, O.WRONG_AGENCY, O.FOLLOWUP, O.AUTOMATIC, O.QUARANTINED, O.DUPLICATE, O.OWN_ALERT)
OUTCOME_TH = {key: OUTCOMES[key].thai for key in SHOWN}
NO_REPLY = "ไม่ได้ตอบ"
COLUMNS = [      # 150 units: the workbook's 16 pt prints at 12 pt or more (printable.effective_pt)
    Column("เวลา (time)", 8, weight=7, align="C", wrap=True, pdf_header="เวลา\n(time)"),
    Column("ผู้ส่ง (sender)", 25, weight=30, wrap=True, pdf_header="ผู้ส่ง\n(sender)"),
    Column("เรื่อง (subject)", 40, weight=46, wrap=True, pdf_header="เรื่อง\n(subject)"),
    Column("ผลการจัดการ (outcome)", 16, weight=16, wrap=True, pdf_header="ผลการจัดการ\n(outcome)"),
    Column("เลขรับ (receipt)", 11, weight=11, align="C", wrap=True, pdf_header="เลขรับ\n(receipt)"),
    Column("การตอบกลับ (reply)", 20, weight=20, wrap=True, pdf_header="การตอบกลับ\n(reply)"),
    Column("ข้อผิดพลาด/หมายเหตุ (error)", 30, weight=30, wrap=True, pdf_header="ข้อผิดพลาด/หมายเหตุ\n(error)"),
]


def reply_text(statuses: str | None, outcome: str | None) -> str:
    """'sent,queued' from the outbox as Thai words (kinds.SEND_STATES): 'ส่งแล้ว, รอส่ง'."""
    if not statuses:
        return "-" if outcome in (O.AUTOMATIC, O.QUARANTINED) else NO_REPLY
    labels = [send_state(x) for x in statuses.split(",") if x]
    return ", ".join(dict.fromkeys(labels))


def parse_day(text: str) -> date:
    """A day as supervisors type it: '29/11/2569', '2569-11-29', '2026-11-29' (Thai digits too)."""
    from ..config import person_date

    return person_date(text)


def file_name(day: date) -> str:
    return f"{day.year + 543}-{day.month:02d}-{day.day:02d}.xlsx"


def rows_for(state: State, day: date) -> list[list[object]]:
    """The day's rows: the seven columns, then the service's name (for the summary)."""
    start = datetime.combine(day, time(0), BANGKOK)
    end = start + timedelta(days=1)
    out = []
    for r in state.daily_rows(iso(start), iso(end)):      # urgent requests first
        error = r["reason"] if r["outcome"] == O.QUARANTINED else (r["last_error"] or "")
        if r["duplicate_of"]:
            error = f"ซ้ำ (duplicate) {error}".strip()
        secret = r["secrecy"] or secrecy_of(r["subject"] or "")      # also mail that made no case
        subject = SECRET_MASK if secret else (r["subject"] or "")       # a secret subject never shows
        subject = marked(subject, r["urgency"])          # once: not again when the subject says it
        out.append([
            to_bangkok(from_iso(r["decided_at"])).strftime("%H:%M"), r["sender"] or "", subject,
            outcome_label(r["outcome"]), r["receipt"] or "", reply_text(r["reply"], r["outcome"]),
            error, r["service_name"] or r["service_code"] or "",
        ])
    return out


def summary(rows: list[list[object]]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Counts by outcome (every outcome, zero included) and by service (registered rows)."""
    by_outcome = Counter(r[3] for r in rows)
    outcomes = [(label, by_outcome.get(label, 0)) for label in OUTCOME_TH.values()]
    registered = OUTCOMES[O.REGISTERED].thai      # new registrations only: no follow-ups, no duplicates
    services = sorted(Counter(str(r[7] or "ไม่ระบุบริการ") for r in rows if r[3] == registered).items(),
                      key=lambda x: (-x[1], x[0]))
    return outcomes, services


def _font(bold: bool = False) -> Font:
    return Font(name=printable.WORKBOOK_FONT, size=printable.WORKBOOK_SIZE, bold=bold)


def build(state: State, day: date, agency: str, rows: list[list[object]] | None = None, *,
          audit_head: str = "", late: list[list[object]] | None = None,
          starts: list[int] | None = None) -> bytes:
    """The day's log as a workbook: the list (its page breaks ``starts``, the PDF's), the summary
    with the audit chain's head and the chart below both, and the late cases when there are any.
    Every sheet prints landscape, in the workbook's font at 12 pt or more."""
    rows = rows_for(state, day) if rows is None else rows
    period = f"วันที่ {thai_date(day)}"
    wb = Workbook()
    # the default font is the workbook's: the column width unit is its digit (printable.PX_PER_CHAR)
    wb._fonts = IndexedList([_font()])  # type: ignore[attr-defined]
    ws = wb.worksheets[0]                # a new workbook's one (and active) sheet
    ws.title = "รายการ"
    bold, fill, plain = _font(True), PatternFill("solid", fgColor="DDEBF7"), _font()
    ws.append([c.header for c in COLUMNS])
    for i, col in enumerate(COLUMNS, start=1):
        cell = ws.cell(1, i)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="top", wrap_text=True)
        ws.column_dimensions[get_column_letter(i)].width = col.width
    header = printable.header_height(COLUMNS)
    ws.row_dimensions[1].height = header
    aligns = [Alignment(vertical="top", wrap_text=c.wrap) for c in COLUMNS]
    heights = []
    for row in rows:
        ws.append(row[:7])
        for cell, align in zip(ws[ws.max_row], aligns):
            if isinstance(cell.value, str):
                cell.data_type = "s"          # never a formula
            cell.font, cell.alignment = plain, align
        height = printable.row_height(row[:7], COLUMNS)
        heights.append(height)
        if height:
            ws.row_dimensions[ws.max_row].height = height
    from openpyxl.worksheet.pagebreak import Break

    for start in printable.page_starts(heights, COLUMNS, header) if starts is None else starts:
        ws.row_breaks.append(Break(id=start + 1))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:G{max(1, len(rows) + 1)}"
    printable.sheet_setup(ws, COLUMNS, title=TITLE, agency=agency, period=period, last_row=len(rows) + 1)

    outcomes, services = summary(rows)
    sheet = wb.create_sheet("สรุป")
    sheet.append([f"{TITLE} {agency}", thai_date(day)])
    sheet.append([])
    sheet.append(["ผลการจัดการ (outcome)", "จำนวน (count)"])
    first = sheet.max_row + 1
    for label, n in outcomes:
        sheet.append([label, n])
    last = sheet.max_row
    sheet.append(["รวม (total)", len(rows)])
    sheet.append([])
    sheet.append(["บริการ (service)", "จำนวน (count)"])
    for name, n in services:
        sheet.append([name, n])
    if audit_head:      # the chain's head at the end of the day, above the chart, never under it
        sheet.append([])
        sheet.append(["บันทึกตรวจสอบ ณ สิ้นวัน (audit chain head)", audit_head])
        sheet.cell(sheet.max_row, 2).data_type = "s"
    widths = (60, 50)
    summary_columns = [Column("", widths[0], wrap=True), Column("", widths[1], wrap=True)]
    for row_cells in sheet.iter_rows():
        for cell in row_cells:
            cell.font = _font(cell.row in (1, 3) or cell.value == "บริการ (service)")
            cell.alignment = Alignment(vertical="top", wrap_text=True)
    sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width = widths
    for r in range(1, sheet.max_row + 1):
        height = printable.row_height([sheet.cell(r, 1).value, sheet.cell(r, 2).value], summary_columns)
        if height:
            sheet.row_dimensions[r].height = height
    counts = [n for _label, n in outcomes]
    chart = BarChart()
    chart.type = "bar"
    chart.style = 10
    chart.title = "จำนวนข้อความตามผลการจัดการ"
    chart.y_axis.title = "จำนวน (ฉบับ)"
    chart.add_data(Reference(sheet, min_col=2, min_row=first - 1, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=first, max_row=last))
    chart.legend = None
    chart.x_axis.delete = False          # openpyxl 3.1 leaves the axes out unless told
    chart.y_axis.delete = False
    chart.x_axis.scaling.orientation = "maxMin"   # the first outcome on top, as in the table
    chart.x_axis.tickLblSkip = 1         # every outcome named (LibreOffice otherwise skips some)
    chart.x_axis.tickMarkSkip = 1
    chart.y_axis.majorGridlines = None
    chart.y_axis.number_format = "0"     # counts: whole numbers, never 0.5
    chart.y_axis.majorUnit = max(1, -(-max(counts, default=0) // 8))
    chart.y_axis.scaling.min = 0
    chart.dataLabels = DataLabelList(showVal=True, showSerName=False, showCatName=False, showLegendKey=False,
                                     showPercent=False)
    # cm: room for the longest Thai label and a bar for every outcome (types-openpyxl says int)
    chart.width, chart.height = 24.0, 2.0 + 1.3 * len(outcomes)  # type: ignore[assignment]
    sheet.add_chart(chart, f"A{sheet.max_row + 3}")               # below everything, with a gap
    printable.sheet_setup(sheet, summary_columns, title=TITLE, agency=agency, period=period,
                          header_rows=0, fit_height=True)
    sheet.print_options.gridLines = False
    del sheet.defined_names["_xlnm.Print_Area"]    # the chart is outside A:B's cells: print the used area
    if late:
        _late_sheet(wb, late, agency, period)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def table(rows: list[list[object]], day: date, agency: str, now: datetime | None = None) -> Table:
    """The log as a printable table, with the summary and the chart on a last page."""
    outcomes, services = summary(rows)
    note = f"พิมพ์เมื่อ {to_bangkok(now):%H:%M} น." if now else ""
    return Table(TITLE, agency, f"วันที่ {thai_date(day)}", COLUMNS, [r[:7] for r in rows], note=note,
                 extra=[lambda pdf: _summary_page(pdf, outcomes, services, len(rows))])


def _summary_page(pdf: "Pdf", outcomes: list[tuple[str, int]], services: list[tuple[str, int]],
                  total: int) -> None:
    """Counts by outcome with a bar chart beside them, and counts by service, on one page."""
    font = printable.FONT
    x0, y = pdf.l_margin, pdf.get_y() + 2
    pdf.set_font(font, "B", 12)
    pdf.set_xy(x0, y)
    pdf.text_line(0, 8, "สรุปผลการจัดการ (outcome)")
    y += 9
    pdf.set_font(font, "", 11)
    label_w = max(pdf.get_string_width(x) for x, _ in [*outcomes, ("รวม (total)", 0)]) + 6
    peak = max([n for _, n in outcomes] + [1])
    bar_max = 120.0
    for label, n in [*outcomes, ("รวม (total)", total)]:
        pdf.set_xy(x0, y)
        pdf.set_font(font, "B" if label == "รวม (total)" else "", 11)
        pdf.text_line(label_w, 7, label)
        pdf.text_line(14, 7, str(n), align="R")
        if label != "รวม (total)":
            w = bar_max * n / peak
            pdf.set_fill_color(91, 155, 213)
            if w > 0:
                pdf.rect(x0 + label_w + 20, y + 1.2, w, 4.6, style="F")
            pdf.set_xy(x0 + label_w + 22 + w, y)
            pdf.set_font(font, "", 10)
            pdf.text_line(12, 7, str(n))
        y += 7.5
    pdf.set_draw_color(120, 120, 120)
    pdf.line(x0 + label_w + 20, y - 7.5 * (len(outcomes) + 1), x0 + label_w + 20, y - 7.5)
    y += 5
    pdf.set_xy(x0, y)
    pdf.set_font(font, "B", 12)
    pdf.text_line(0, 8, "เรื่องที่ลงทะเบียน แยกตามบริการ (service)")
    y += 9
    pdf.set_font(font, "", 11)
    width = 150.0
    bottom = pdf.h - 16
    for i, (name, n) in enumerate(services or [("ไม่มีเรื่องที่ลงทะเบียน", 0)]):
        lines = printable.wrap(name, width - 6, pdf.get_string_width)
        if y + 6.5 * (len(lines) + 1) > bottom and i < len(services) - 1:   # keep to one page
            rest = services[i:]
            lines, name, n = [f"บริการอื่นอีก {len(rest)} บริการ"], "", sum(x for _, x in rest)
        for k, line in enumerate(lines):
            pdf.set_xy(x0, y)
            pdf.text_line(width, 6.5, line)
            if k == 0 and services:
                pdf.text_line(20, 6.5, str(n), align="R")
            y += 6.5
        if not name:
            break


def write(state: State, day: date, folder: Path, agency: str, now: datetime | None = None,
          audit_head: str = "", late: list[list[object]] | None = None) -> tuple[Path, Path]:
    """registers/daily/<BE date>.xlsx and the PDF beside it; returns both paths. ``audit_head``
    (the audit chain's last entry) is written in the log and in a ``.audit`` file beside it, so
    a later rewrite of history shows; ``late``: the overdue and due-this-week cases (a sheet)."""
    target = folder / "daily" / file_name(day)
    rows = rows_for(state, day)
    pdf = target.with_suffix(".pdf")
    table_ = table(rows, day, agency, now)
    if audit_head:
        table_.note = (table_.note + " · " if table_.note else "") + f"บันทึกตรวจสอบ {audit_head[:24]}…"
    # the workbook's pages are the PDF's (and any more the PDF needs): the same rows on each
    table_.starts = printable.page_starts([printable.row_height(r[:7], COLUMNS) for r in rows], COLUMNS,
                                          printable.header_height(COLUMNS))
    data, starts = printable.render_pages(table_)
    write_atomic(target, build(state, day, agency, rows, audit_head=audit_head, late=late, starts=starts))
    write_atomic(pdf, data)
    if audit_head:   # appended, never rewritten: every head a day's log ever showed stays on record
        anchor = target.with_suffix(".audit")
        seen = anchor.read_text(encoding="ascii").splitlines() if anchor.exists() else []
        if audit_head not in seen:
            write_atomic(anchor, "".join(f"{line}\n" for line in [*seen, audit_head]).encode("ascii"))
    return target, pdf


LATE_COLUMNS = [("เลขรับ (receipt)", 12), ("เรื่อง (subject)", 46), ("บริการ (service)", 30),
                ("กำหนดแล้วเสร็จ (due)", 16), ("สถานะ (status)", 22), ("เกินกำหนด (days late)", 16)]


def _late_sheet(wb: Workbook, late: list[list[object]], agency: str, period: str) -> None:
    ws = wb.create_sheet("เกินกำหนดและครบกำหนดสัปดาห์นี้")
    columns = [Column(header, width, wrap=True) for header, width in LATE_COLUMNS]
    ws.append([c.header for c in columns])
    for i, col in enumerate(columns, start=1):
        ws.cell(1, i).font = _font(True)
        ws.cell(1, i).alignment = Alignment(vertical="top", wrap_text=True)
        ws.column_dimensions[ws.cell(1, i).column_letter].width = col.width
    ws.row_dimensions[1].height = printable.header_height(columns)
    for row in late:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
            cell.font = _font()
            cell.alignment = Alignment(vertical="top", wrap_text=True)
        height = printable.row_height(row, columns)
        if height:
            ws.row_dimensions[ws.max_row].height = height
    printable.sheet_setup(ws, columns, title="เรื่องเกินกำหนดและครบกำหนดสัปดาห์นี้", agency=agency, period=period,
                          last_row=len(late) + 1)
