"""Report: the supervisors' daily log as an Excel workbook (``registers/daily/<BE date>.xlsx``).

Owns: one row per message handled that day (time, sender, subject, outcome, receipt number,
reply, error), a summary sheet with counts by outcome and by service and a bar chart, and the
date forms supervisors type (``2026-11-27`` or Buddhist-Era ``2569-11-27``).
"""
from __future__ import annotations

import io
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill

from .files import write_atomic
from .kinds import OUTCOMES, outcome_label
from .state import State, from_iso, iso
from .thai import BANGKOK, thai_date, to_bangkok

# the daily log's outcomes, in this order, with the labels of the one outcome table (kinds.py)
SHOWN = ("registered", "wrong_agency", "followup", "automatic", "quarantined", "duplicate", "own_alert")
OUTCOME_TH = {key: OUTCOMES[key].thai for key in SHOWN}
COLUMNS = [("เวลา (time)", 10), ("ผู้ส่ง (sender)", 32), ("เรื่อง (subject)", 50), ("ผลการจัดการ (outcome)", 20),
           ("เลขรับ (receipt)", 12), ("การตอบกลับ (reply)", 20), ("ข้อผิดพลาด/หมายเหตุ (error)", 40)]


def parse_day(text: str) -> date:
    """A day as supervisors type it: '29/11/2569', '2569-11-29', '2026-11-29' (Thai digits too)."""
    from .config import person_date

    return person_date(text)


def file_name(day: date) -> str:
    return f"{day.year + 543}-{day.month:02d}-{day.day:02d}.xlsx"


def rows_for(state: State, day: date) -> list[list[object]]:
    start = datetime.combine(day, time(0), BANGKOK)
    end = start + timedelta(days=1)
    out = []
    query = (
        "SELECT m.*, c.receipt, c.service_code, "
        " (SELECT group_concat(o.status) FROM outbox o WHERE o.message_row = m.id AND o.kind <> 'forward') AS reply "
        "FROM messages m LEFT JOIN cases c ON c.id = m.case_id "
        "WHERE m.decided_at >= ? AND m.decided_at < ? ORDER BY m.decided_at, m.id"
    )
    for r in state.db.execute(query, (iso(start), iso(end))):
        reply = r["reply"] or ("-" if r["outcome"] in ("automatic", "quarantined") else "ไม่ได้ตอบ / none")
        error = r["reason"] if r["outcome"] == "quarantined" else (r["last_error"] or "")
        if r["duplicate_of"]:
            error = f"ซ้ำ (duplicate) {error}".strip()
        out.append([
            to_bangkok(from_iso(r["decided_at"])).strftime("%H:%M"), r["sender"] or "", r["subject"] or "",
            outcome_label(r["outcome"]), r["receipt"] or "", reply, error,
            r["service_code"] or "",
        ])
    return out


def build(state: State, day: date, agency: str) -> bytes:
    rows = rows_for(state, day)
    wb = Workbook()
    ws = wb.active
    ws.title = "รายการ"
    bold, fill = Font(name="Tahoma", bold=True), PatternFill("solid", fgColor="DDEBF7")
    ws.append([name for name, _ in COLUMNS])
    for i, (_, width) in enumerate(COLUMNS, start=1):
        ws.cell(1, i).font, ws.cell(1, i).fill = bold, fill
        ws.column_dimensions[ws.cell(1, i).column_letter].width = width
    for row in rows:
        ws.append(row[:7])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"          # never a formula
            cell.font = Font(name="Tahoma")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:G{max(1, len(rows) + 1)}"

    summary = wb.create_sheet("สรุป")
    summary.append([f"บันทึกประจำวัน {agency}", thai_date(day)])
    summary.append([])
    summary.append(["ผลการจัดการ (outcome)", "จำนวน (count)"])
    by_outcome = Counter(r[3] for r in rows)
    first = summary.max_row + 1
    for key, label in OUTCOME_TH.items():
        summary.append([label, by_outcome.get(label, 0)])
    last = summary.max_row
    summary.append(["รวม (total)", len(rows)])
    summary.append([])
    summary.append(["บริการ (service)", "จำนวน (count)"])
    for code, n in sorted(Counter(r[7] or "ไม่ระบุ" for r in rows if r[4]).items()):
        summary.append([code, n])
    for row in summary.iter_rows():
        for cell in row:
            cell.font = Font(name="Tahoma", bold=cell.row in (1, 3) or cell.value in ("บริการ (service)",))
    summary.column_dimensions["A"].width = 30
    summary.column_dimensions["B"].width = 16
    chart = BarChart()
    chart.type = "bar"
    chart.title = "จำนวนตามผลการจัดการ"
    chart.y_axis.title = "จำนวน"
    chart.add_data(Reference(summary, min_col=2, min_row=first - 1, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(summary, min_col=1, min_row=first, max_row=last))
    chart.legend = None
    summary.add_chart(chart, "D3")
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def write(state: State, day: date, folder: Path, agency: str) -> Path:
    target = folder / "daily" / file_name(day)
    write_atomic(target, build(state, day, agency))
    return target
