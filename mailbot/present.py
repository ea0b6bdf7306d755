"""Present: what the terminal faces (command line, service, demo) print — Thai first, English
second, Buddhist-Era dates.

Owns: the plain-text views of a cycle report, a case, the service's status and a progress
line for long polls. Takes results from ``app`` and returns or prints text; decides nothing.
"""
from __future__ import annotations

import sys
import time
from datetime import date
from typing import Callable, TextIO

from .casework import workflow
from .intake.cycle import CycleReport
from .kinds import OUTCOMES, kind_label, outcome_label, send_state
from .ops.line import FIX_TOKEN, LineStatus
from .thai import BANGKOK, pad, thai_date, thai_datetime

Out = Callable[[str], None]


def print_report(report: CycleReport, out: Out = print) -> None:
    if not report.handled:
        line = "ไม่มีอีเมลใหม่ / no new mail"
        if report.replies_sent:
            line += f" · ส่งอีเมลตอบกลับที่ค้างไว้ {report.replies_sent} ฉบับ / queued replies sent {report.replies_sent}"
        out(line)
        if report.left_before_since:
            out(f"อีเมลเก่าก่อนวันเริ่มใช้ (imap.since) คงไว้ในกล่อง {report.left_before_since} ฉบับ / "
                f"{report.left_before_since} older messages left in the mailbox (imap.since)")
        for w in report.warnings:
            out("คำเตือน / warning: " + w)
        return
    out(pad("UID", 5) + pad("ผลการจัดการ / outcome", 26) + pad("เลขรับ", 10) + pad("จาก / from", 31) + "เรื่อง / subject")
    out("-" * 110)
    for h in report.handled:
        line = (pad(str(h.uid), 5) + pad(outcome_label(h.outcome), 26) + pad(h.receipt or "-", 10)
                + pad(h.sender or "-", 30) + " " + pad(h.subject or h.reason, 45))
        out(line.rstrip())
    out("-" * 110)
    counts = report.counts()
    order = [k for k in OUTCOMES if k in counts] + [k for k in counts if k not in OUTCOMES]
    out("รวม / totals: " + ", ".join(f"{outcome_label(k)} {counts[k]}" for k in order)
        + f" · ตอบกลับผู้ยื่นแล้ว / replies sent {report.replies_sent}")
    if report.left_before_since:
        out(f"อีเมลเก่าก่อนวันเริ่มใช้ (imap.since) คงไว้ในกล่อง {report.left_before_since} ฉบับ / "
            f"{report.left_before_since} older messages left in the mailbox (imap.since)")
    for w in report.warnings:
        out("คำเตือน / warning: " + w)


def case_lines(view) -> list[str]:
    case = view.case
    from .store import from_iso
    from .thai import addressee

    lines = [
        f"เลขทะเบียนรับ / receipt : {case['receipt']}",
        f"เรื่อง / subject        : {case['subject']}",
        f"จาก / from              : {case['sender_name'] or ''} <{case['sender_addr'] or '-'}>",
        f"เรียน (หนังสือ) / letter : {addressee(case['sender_name'] or '', case['sender_title'] or '') or '-'}",
        f"รับเมื่อ / received       : {thai_datetime(from_iso(case['received_at']))}",
        f"บริการ / service        : {case['service_name'] or 'ยังไม่ได้คัดแยก / unclassified'}"
        + (f" ({case['service_code']})" if case["service_code"] else ""),
        f"สถานะ / status          : {workflow.label(case['status'])} ({case['status']})",
        f"การตอบกลับ / reply      : {case['reply_status'] or '-'}",
    ]
    if case["due_date"]:
        lines.append(f"กำหนดแล้วเสร็จ / due     : {thai_date(date.fromisoformat(case['due_date']))}")
    if case["cancelled_at"]:
        lines.append(f"ยกเลิก / cancelled       : {case['cancel_reason'] or ''} ({case['cancelled_by'] or '-'})")
    checklist = view.checklist
    if checklist.verdict != "none":
        verdict = {"complete": "ครบตามรายการ", "incomplete": "ยังไม่ครบ", "unsure": "รอเจ้าหน้าที่ตรวจ"}.get(
            checklist.verdict, checklist.verdict)
        lines.append(f"เอกสาร / documents      : {verdict} ({checklist.verdict})")
        for item in checklist.items:
            mark = {"found": "/", "missing": " ", "unknown": "?"}[item.status]
            lines.append(f"   [{mark}] {item.document}")
    lines.append("ความเป็นมา / history:")
    for h in view.history:
        lines.append(f"   {h['at']}  {h['note']}  ({h['actor']})")
    if view.mail:
        lines.append("อีเมลที่ส่ง / mail sent:")
        for m in view.mail:
            when = thai_datetime(from_iso(m["sent_at"] or m["created_at"]))
            lines.append(f"   {when}  {kind_label(m['kind'])}  ถึง/to {m['recipient']}  {send_state(m['status'])}"
                         + (f": {m['last_error'] or m['hold_reason']}" if m["status"] in ("failed", "held") else ""))
    return lines


def status_lines(st, console_url: str | None = None) -> list[str]:
    lines = [
        "ตรวจกล่องอีเมลสำเร็จล่าสุด / last successful poll: "
        + (thai_datetime(st.last_poll) if st.last_poll else "ยังไม่เคย / never"),
        f"รอบถัดไปตามกำหนด / next scheduled poll: {thai_datetime(st.next_poll)}",
        f"บันทึกประจำวันถัดไป / next daily log: {thai_datetime(st.next_daily)}",
        f"อีเมลรอส่ง / outbox queue: {st.queued} · ระงับรอเจ้าหน้าที่ / held: {st.held} · ส่งไม่สำเร็จ / failed: {st.failed}",
        f"กักกัน / quarantined: {st.quarantined}",
        f"เรื่องเกินกำหนดเวลา / overdue cases: {st.overdue}",
    ]
    if st.graph is not None:
        mailbox, folders = st.graph
        lines.append(f"กล่องอีเมล / mailbox: Microsoft Graph: {mailbox}")
        for name, synced, count in folders:
            lines.append(f"   โฟลเดอร์ / folder {name}: {count} ฉบับ / messages · ปรับล่าสุด / last synced: "
                         + (thai_datetime(synced) if synced else "ยังไม่เคย / never"))
    if st.before_since:
        lines.append(f"อีเมลเก่าก่อนวันเริ่มใช้ที่คงไว้ในกล่อง / left before imap.since: {st.before_since}")
    for r in st.failed_replies:
        lines.append(f"   ✗ {r['receipt'] or '-'} ถึง/to {r['recipient']} ({kind_label(r['kind'])}): {r['last_error'] or ''}")
    if st.last_backup is None:
        lines.append("สำรองข้อมูลล่าสุด / last backup: ยังไม่เคย / never")
    else:
        when, folder = st.last_backup
        lines.append("สำรองข้อมูลล่าสุด / last backup: " + (thai_datetime(when) + " " if when else "") + folder)
    if st.certificate is not None:
        expires, days, problem = st.certificate
        if expires is None:
            lines.append(f"ใบรับรองอิเล็กทรอนิกส์ / certificate: {problem}")
        else:
            lines.append(f"ใบรับรองหมดอายุ / certificate expires: {thai_date(expires)} (อีก {days} วัน / {days} days)")
    lines += line_lines(st.line)
    if console_url:
        lines.append(f"หน้าจอเจ้าหน้าที่ / officer console: {console_url}")
    return lines


def line_lines(st: "LineStatus | None") -> list[str]:
    """Alerts to LINE for ``mailbot status``: last sent, what is owed, the last failure and its fix."""
    if st is None:
        return []
    head = f"แจ้งเตือนทาง LINE / LINE alerts ({st.recipients} กลุ่มหรือผู้รับ / recipients): "
    lines = [head + ("ส่งสำเร็จล่าสุด " + thai_datetime(st.last_sent) if st.last_sent else "ยังไม่เคยส่ง / never sent")
             + f" · รอส่ง / owed: {st.queued} · ส่งไม่สำเร็จ / refused: {st.failed}"]
    if not st.token:
        lines.append(f"  ! ยังไม่ได้บันทึกโทเค็นของบัญชี LINE / no channel access token: {FIX_TOKEN}")
    if st.problem:
        lines.append(f"  ! ส่งไม่สำเร็จเมื่อ {thai_datetime(st.problem['at'])}: {st.problem['thai']}")
        lines.append(f"    {st.problem['english']}")
        if st.problem.get("fix"):
            lines.append(f"    แก้ไขโดยสั่ง / fix: {st.problem['fix']}")
    if st.paused_until:
        lines.append(f"  จะลองส่งอีกครั้งหลัง {thai_datetime(st.paused_until)} / next try after "
                     f"{st.paused_until.astimezone(BANGKOK):%Y-%m-%d %H:%M} Bangkok time")
    if st.failed and st.refused:
        lines.append(f"  ข้อความที่ LINE ไม่รับครั้งล่าสุด / last refused: {st.refused}")
    return lines


class ProgressLine:
    """Count and rate while a backlog is read: a bar on a terminal, a line every 10% elsewhere."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if total < 20:
            return
        rate = done / max(0.001, time.monotonic() - self.start)
        text = f"{done}/{total} ฉบับ ({rate:.1f} ฉบับ/วินาที / msgs/s)"
        if self.tty:
            filled = int(30 * done / total)
            self.stream.write("\r[" + "#" * filled + "." * (30 - filled) + "] " + text)
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif done * 10 // total != self.last_tenth:
            self.last_tenth = done * 10 // total
            print("กำลังอ่านอีเมล / reading mail: " + text, file=self.stream, flush=True)
