"""Recovery: a receipt number is never issued twice, whatever happens to the database.

Owns: gathering every receipt number ever issued from every place that records one — the
state database, the database a restore replaced (kept as ``state.sqlite3.before-restore-…``),
the receipt index beside the raw archive (``archive/<BE year>/receipts.tsv``), the register
workbooks (including copies set aside), and the subject tags of the replies in the mailbox's
Sent folder — then raising each year's counter above the highest one and rebuilding the cases
the database no longer has, from the best evidence left (old database, then the archived raw
mail, then the register row, then the Sent copy). A number known only as a number stays
burned: it gets a placeholder row and is listed for the officer.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..casework import workflow
from ..config import Config, Rules
from ..intake.classify import match_subject
from ..mail.parse import Unparseable, parse
from ..store import State, iso
from ..store.ops import DatabaseError, old_database_cases
from ..thai import one_line, parse_thai_datetime, thai_date_short, thai_digits_to_arabic
from .archive import JOURNAL

log = logging.getLogger(__name__)

PRIORITY = {"database": 0, "archive": 1, "register": 2, "sent": 3}
SOURCE_TH = {"database": "ฐานข้อมูลเดิมก่อนกู้คืน", "archive": "ต้นฉบับอีเมลที่เก็บไว้", "register": "ทะเบียนรับ (Excel)",
             "sent": "สำเนาอีเมลตอบกลับในโฟลเดอร์ Sent"}
_TAG = re.compile(r"\[เลขรับ\s*(\d{1,7})\s*/\s*(\d{4})\]")


@dataclass
class Evidence:
    year: int
    seq: int
    source: str
    fields: dict = field(default_factory=dict)

    @property
    def receipt(self) -> str:
        return f"{self.seq}/{self.year}"


@dataclass
class Recovery:
    recovered: list[tuple[str, str]] = field(default_factory=list)   # (receipt, source)
    burned: list[str] = field(default_factory=list)                  # known only as a number
    floors: dict[int, int] = field(default_factory=dict)             # year -> highest number issued

    def __bool__(self) -> bool:
        return bool(self.recovered or self.burned)

    def lines(self) -> list[str]:
        if not self:
            return []
        out = [f"พบเลขรับที่ออกไปแล้วแต่ไม่มีในฐานข้อมูล {len(self.recovered) + len(self.burned)} เรื่อง "
               "เลขเหล่านี้จะไม่ถูกออกซ้ำ / receipt numbers already issued but missing from the database: "
               f"{len(self.recovered) + len(self.burned)}; none will be issued again"]
        for receipt, source in self.recovered:
            out.append(f"  - {receipt}: กู้คืนเรื่องจาก{SOURCE_TH[source]} / rebuilt from {source}")
        for receipt in self.burned:
            out.append(f"  - {receipt}: รู้เพียงเลข ไม่มีข้อมูลเรื่อง ตรวจจากทะเบียนกระดาษหรืออีเมลของผู้ยื่น / "
                       "known only as a number: check paper records")
        for year, top in sorted(self.floors.items()):
            out.append(f"  เลขรับถัดไปของปี {year}: {top + 1}/{year} / the next number of {year} is {top + 1}/{year}")
        return out


# ---------------------------------------------------------------------------- evidence

def local_evidence(cfg: Config) -> dict[tuple[int, int], Evidence]:
    """Numbers known outside the live database: old databases, the receipt index, registers."""
    found: dict[tuple[int, int], Evidence] = {}

    def add(ev: Evidence) -> None:
        key = (ev.year, ev.seq)
        if key not in found or PRIORITY[ev.source] < PRIORITY[found[key].source]:
            found[key] = ev

    for ev in _old_databases(cfg.data_dir):
        add(ev)
    for ev in _journal(cfg.data_dir):
        add(ev)
    for ev in _registers(cfg.registers_dir):
        add(ev)
    return found


def register_tops(cfg: Config, state: State) -> dict[int, int]:
    """The highest number in each register workbook on disk that may know more than the database
    (cheap: read at every cycle). A year's register is read only when it is not the file the
    database wrote (its size differs from the recorded layout: an older ``data/`` copied back by
    hand, say); any other workbook (a copy set aside) only when it is new or changed since it was
    last read (its size and time are remembered)."""
    tops: dict[int, int] = {}
    for path in sorted(cfg.registers_dir.glob("ทะเบียนรับ-*.xlsx")):
        try:
            stat = path.stat()
        except OSError:
            continue
        m = re.fullmatch(r"ทะเบียนรับ-(\d{4})\.xlsx", path.name)
        if m:
            layout = json.loads(state.get(f"register_layout:{m[1]}") or "null") or {}
            if layout.get("file_size") == stat.st_size:
                continue                         # the very file the database wrote
        else:
            seen = f"{stat.st_size}:{stat.st_mtime_ns}"
            if state.get(f"register_seen:{path.name}") == seen:
                continue
        for ev in _registers(cfg.registers_dir, only=path):
            tops[ev.year] = max(tops.get(ev.year, 0), ev.seq)
        if not m:
            state.put(f"register_seen:{path.name}", f"{stat.st_size}:{stat.st_mtime_ns}")
    return tops


def sent_tops(headers: list[bytes], domain: str) -> tuple[dict[int, int], list[Evidence]]:
    """The highest number each year in the tags of mailbot's own copies in the Sent folder (only a
    Message-ID mailbot made vouches for a number it issued), and that evidence."""
    rows = []
    ours = f"@{domain}>"
    for raw in headers:
        try:
            letter = parse(raw + b"\r\n\r\n")
        except Unparseable:
            continue
        mid = letter.message_id or ""
        if mid.startswith("<mailbot.") and mid.endswith(ours):
            rows.append((letter.subject, letter.to[0] if letter.to else "", iso(letter.date) if letter.date else None))
    found = sent_evidence(rows)
    tops: dict[int, int] = {}
    for ev in found:
        tops[ev.year] = max(tops.get(ev.year, 0), ev.seq)
    return tops, found


def journal_top(data_dir: Path) -> dict[int, int]:
    """The highest number in each year's receipt index (cheap: read at every cycle)."""
    out: dict[int, int] = {}
    for ev in _journal(data_dir):
        out[ev.year] = max(out.get(ev.year, 0), ev.seq)
    return out


def _journal(data_dir: Path):
    for path in sorted((data_dir / "archive").glob(f"*/{JOURNAL}")):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split("\t")
            if len(parts) < 8 or not parts[0].isdigit() or "/" not in parts[1]:
                continue
            seq, receipt = int(parts[0]), parts[1]
            year = int(receipt.rsplit("/", 1)[1])
            yield Evidence(year, seq, "archive", {
                "received_at": parts[2], "sha256": parts[3] or None, "archive": parts[4] or None,
                "sender_addr": parts[5] or None, "message_id": parts[6] or None, "subject": parts[7]})


def _old_databases(data_dir: Path):
    for path in sorted(data_dir.glob("state.sqlite3.before-restore-*")):
        try:
            rows = old_database_cases(path)
        except DatabaseError as exc:
            log.warning("old database %s unreadable: %s", path, exc)
            continue
        for r in rows:
            fields = {k: r[k] for k in r.keys() if k not in ("id", "receipt", "year_be", "seq")}
            yield Evidence(r["year_be"], r["seq"], "database", fields)


def _registers(folder: Path, only: Path | None = None):
    paths = [only] if only is not None else sorted(folder.glob("ทะเบียนรับ-*.xlsx"))
    if not paths:       # a new office, the first poll: openpyxl (0.09 s to import) is not loaded
        return
    from openpyxl import load_workbook

    for path in paths:
        try:
            wb = load_workbook(path, read_only=True)
            rows = list(wb.worksheets[0].iter_rows(min_row=2, values_only=True))
            wb.close()
        except Exception as exc:  # noqa: BLE001 - a damaged workbook is simply not evidence
            log.warning("register %s unreadable: %s", path, exc)
            continue
        for row in rows:
            if not row or not row[0]:
                continue
            # the number as the register wrote it, with or without receipt_pattern's words ("รับ 15/2569")
            m = re.search(r"(\d+)\s*/\s*(\d{4})\s*$", thai_digits_to_arabic(str(row[0])).strip())
            if not m:
                continue
            cell = lambda i: (str(row[i]) if len(row) > i and row[i] not in (None, "") else None)  # noqa: E731
            received = parse_thai_datetime(cell(8) or "")
            subject = re.sub(r"^\[[^\]]*\]\s*", "", cell(5) or "")     # without the [ด่วน]/[ลับ] marks
            yield Evidence(int(m[2]), int(m[1]), "register", {
                "subject": subject or None, "action": cell(6), "remark": cell(7),
                "received_at": iso(received) if received else None, "sender_addr": cell(9),
                "service_code": cell(10), "status": workflow.status_key(cell(11) or "") or "review",
                "message_id": cell(12), "archive": cell(14), "sha256": cell(15),
                "sender_name": (cell(3) or "").split(" <")[0] if cell(3) and "<" in (cell(3) or "") else None})


def sent_evidence(headers: list[tuple[str, str, str | None]]) -> list[Evidence]:
    """From (subject, recipient, date) of the Sent folder's copies: our tag names the number."""
    out = []
    for subject, recipient, when in headers:
        for seq, year in _TAG.findall(thai_digits_to_arabic(subject or "")):
            out.append(Evidence(int(year), int(seq), "sent", {
                "subject": re.sub(r"^(re:\s*)+", "", _TAG.sub("", subject), flags=re.I).strip(),
                "sender_addr": recipient or None, "reply_to": recipient or None, "received_at": when}))
    return out


# ---------------------------------------------------------------------------- rebuilding

def recover(state: State, evidence: dict[tuple[int, int], Evidence] | list[Evidence], cfg: Config, rules: Rules,
            now: datetime) -> Recovery:
    """Raise the counters above every number known and rebuild the cases that are missing."""
    if isinstance(evidence, list):
        merged: dict[tuple[int, int], Evidence] = {}
        for ev in evidence:
            key = (ev.year, ev.seq)
            if key not in merged or PRIORITY[ev.source] < PRIORITY[merged[key].source]:
                merged[key] = ev
        evidence = merged
    result = Recovery()
    have = state.case_numbers()
    tops: dict[int, int] = {}
    for (year, seq) in evidence:
        tops[year] = max(tops.get(year, 0), seq)
    issued = state.issued()
    missing = sorted(key for key in evidence if key not in have)
    # numbers below a known one that nobody recorded anywhere are burned too (never reissued)
    with state.tx():
        for year, top in tops.items():
            for seq in range(1, top + 1):
                if (year, seq) not in have and (year, seq) not in evidence and seq > issued.get(year, 0):
                    evidence[(year, seq)] = Evidence(year, seq, "none")
                    missing.append((year, seq))
        for key in sorted(set(missing)):
            ev = evidence[key]
            fields = _case_fields(ev, cfg, rules, now)
            case = state.insert_case(ev.year, ev.seq, **fields)
            note = (f"กู้คืนเลขรับหลังฐานข้อมูลสูญหาย/กู้คืนข้อมูล {thai_date_short(now)} "
                    f"(ที่มา: {SOURCE_TH.get(ev.source, 'ไม่มีข้อมูล')})")
            state.recovered_event(case["id"], iso(now), note)
            if ev.source == "none":
                result.burned.append(ev.receipt)
            else:
                result.recovered.append((ev.receipt, ev.source))
        for year, top in tops.items():
            state.raise_floor(year, top)
            if top > issued.get(year, 0):
                result.floors[year] = top
    return result


def _case_fields(ev: Evidence, cfg: Config, rules: Rules, now: datetime) -> dict:
    f = dict(ev.fields)
    if ev.source == "archive" and f.get("archive"):
        f.update(_from_raw(cfg.data_dir / f["archive"], rules))
    received = f.get("received_at") or iso(now)
    if ev.source == "database":
        keep = {k: v for k, v in f.items() if k not in ("message_row",)}
        keep.setdefault("received_at", received)
        keep["message_row"] = 0
        keep["remark"] = ((keep.get("remark") or "") + "; กู้คืนจากฐานข้อมูลเดิม").strip("; ")
        return keep
    service = None
    if f.get("service_code"):
        service = next((s for s in rules.services if s.code == f["service_code"]), None)
    elif f.get("subject"):
        m = match_subject(f["subject"], rules)
        service = m.service
    placeholder = ev.source == "none"
    return {
        "message_row": 0, "received_at": received, "doc_date": f.get("doc_date"),
        "sender_name": f.get("sender_name"), "sender_addr": f.get("sender_addr"),
        "reply_to": f.get("reply_to") or f.get("sender_addr"),
        "subject": one_line(f.get("subject") or ("(ไม่ทราบเรื่อง: ข้อมูลสูญหาย)" if placeholder else ""), 500),
        "service_code": service.code if service else None, "service_name": service.name if service else None,
        "status": f.get("status") if f.get("status") in workflow.STATUSES else "review",
        "action": f.get("action") or ("ข้อมูลเรื่องสูญหาย ตรวจสอบจากหลักฐานอื่น" if placeholder
                                      else "กู้คืนหลังข้อมูลสูญหาย รอเจ้าหน้าที่ตรวจสอบ"),
        "remark": f.get("remark") or "",
        "message_id": f.get("message_id"), "attachments": int(f.get("attachments") or 0),
        "archive": f.get("archive"), "sha256": f.get("sha256"),
        "reply_status": "ตอบรับไปแล้วก่อนข้อมูลสูญหาย" if ev.source in ("sent", "archive", "register") else None,
        "checklist": json.dumps({"verdict": "none"}),
    }


def _from_raw(path: Path, rules: Rules) -> dict:
    try:
        letter = parse(path.read_bytes())
    except (OSError, Unparseable):
        return {}
    return {
        "subject": letter.subject, "sender_name": one_line(letter.from_name, 120), "sender_addr": letter.from_addr,
        "reply_to": letter.reply_to, "message_id": letter.message_id,
        "doc_date": iso(letter.date) if letter.date else None,
        "attachments": len([a for a in letter.attachments if not a.inline]),
    }
