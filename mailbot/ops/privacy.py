"""Privacy (PDPA): what mailbot holds about one person, and keeping raw mail no longer than needed.

Owns: ``mailbot privacy export ADDRESS`` — everything held about a sender (their cases with
their history, the raw messages they sent, the replies mailbot sent them) written to one folder
with a Thai note explaining it, for a data-subject request — and ``mailbot privacy prune``:
raw mail older than ``retention.years`` (default 10), listed first and deleted only after
confirmation, never for a case that is still open. The registers keep their rows (a legal
record); only the raw messages and their quarantine copies go.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..casework import workflow
from ..config import Config
from ..files import csv_bytes, write_atomic
from ..mail.parse import safe_filename
from ..store import State, from_iso, iso
from ..thai import thai_date, thai_datetime, to_bangkok


@dataclass
class Export:
    folder: Path
    cases: int
    messages: int
    replies: int


def export(state: State, cfg: Config, address: str, target: Path, now: datetime) -> Export:
    """Write what is held about ``address`` into a new folder under ``target``."""
    who = address.strip().lower()
    local = to_bangkok(now)
    folder = target / safe_filename(f"ข้อมูลส่วนบุคคล {who} {local.year + 543}{local:%m%d-%H%M}")
    folder.mkdir(parents=True, exist_ok=True)
    cases = state.privacy_cases(who)
    rows = []
    for c in cases:
        history = "; ".join(f"{thai_datetime(from_iso(e['at']))} {e['note']}" for e in
                           state.privacy_case_events(c["id"]))
        rows.append([c["receipt"], thai_datetime(from_iso(c["received_at"])), c["subject"] or "",
                     c["service_name"] or "", workflow.label(c["status"]), c["sender_name"] or "",
                     c["sender_addr"] or "", history])
    header = ["เลขทะเบียนรับ", "รับเมื่อ", "เรื่อง", "บริการ", "สถานะ", "ชื่อผู้ยื่น", "อีเมล", "ความเป็นมา"]
    write_atomic(folder / "เรื่องที่ยื่น (cases).csv", csv_bytes(header, rows))
    messages = 0
    for m in state.privacy_messages(who):
        source = cfg.data_dir / m["archive"]
        if source.is_file():
            messages += 1
            write_atomic(folder / "อีเมลที่ส่งมา (messages)" / f"{messages:04d}.eml", source.read_bytes())
    replies = 0
    for outbox_id in state.privacy_reply_ids(who):
        r = state.outbox_row(outbox_id)     # one at a time: a unit's address may hold gigabytes
        if r is None:
            continue
        replies += 1
        write_atomic(folder / "อีเมลที่ตอบกลับ (replies)" / f"{replies:04d}-{r['kind']}.eml", bytes(r["raw"]))
    note = (f"ข้อมูลที่{cfg.agency.name}เก็บเกี่ยวกับ {who} ณ {thai_datetime(now)}\r\n"
            f"- เรื่องที่ยื่น {len(cases)} เรื่อง: เรื่องที่ยื่น (cases).csv (เปิดด้วย Excel)\r\n"
            f"- อีเมลที่ส่งมา {messages} ฉบับ ตามที่ได้รับ: โฟลเดอร์ อีเมลที่ส่งมา\r\n"
            f"- อีเมลที่หน่วยงานตอบกลับ {replies} ฉบับ: โฟลเดอร์ อีเมลที่ตอบกลับ\r\n"
            "ทะเบียนรับเป็นเอกสารราชการตามระเบียบงานสารบรรณ จึงเก็บต่อไปตามกำหนด\r\n\r\n"
            f"What {cfg.agency.name} holds about {who}: cases (CSV), the messages received, the replies sent.\r\n")
    write_atomic(folder / "อ่านก่อน (README).txt", note.encode("utf-8-sig"))
    return Export(folder, len(cases), messages, replies)


@dataclass
class Prune:
    before: datetime
    files: list[Path] = field(default_factory=list)        # raw messages past their time
    kept_open: int = 0                                      # past their time, but their case is open
    bytes: int = 0
    refused: list[str] = field(default_factory=list)       # recorded paths outside archive/ and quarantine/


# the only folders prune may delete from (inside data/)
PRUNABLE = ("archive", "quarantine")


def inside_prunable(data_dir: Path, rel: str) -> Path | None:
    """The file a recorded relative path names, resolved, if it lies inside ``data/archive`` or
    ``data/quarantine``; None for anything else (``..``, an absolute path, a link out)."""
    root = data_dir.resolve()
    try:
        path = (root / rel).resolve()
    except (OSError, ValueError):
        return None
    for folder in PRUNABLE:
        if (root / folder) in path.parents:
            return path
    return None


def due(state: State, cfg: Config, now: datetime) -> Prune:
    """What has passed ``retention.years``: raw messages (archive and quarantine copies).

    Only paths mailbot recorded itself, in their own columns (``archive``, ``quarantine_copy``),
    are considered; never text from a message's reason. Each must resolve inside
    ``data/archive`` or ``data/quarantine``, or it is refused and named."""
    years = cfg.retention.years
    local = to_bangkok(now)
    try:
        before = local.replace(year=local.year - years)
    except ValueError:       # 29 February
        before = (local - timedelta(days=1)).replace(year=local.year - years)
    result = Prune(before)
    rows = state.prunable_messages(iso(before))
    seen: set[Path] = set()
    for r in rows:
        if r["status"] in workflow.OPEN:
            result.kept_open += 1
            continue
        for rel in (r["archive"], r["quarantine_copy"]):
            if not rel:
                continue
            path = inside_prunable(cfg.data_dir, rel)
            if path is None:
                result.refused.append(rel)
                continue
            if path.is_file() and path not in seen:
                seen.add(path)
                result.files.append(path)
                result.bytes += path.stat().st_size
    return result


def prune(state: State, cfg: Config, plan: Prune, now: datetime) -> int:
    """Delete what ``due`` listed (each path checked again); an event records it. Returns how
    many files went."""
    gone = 0
    for listed in plan.files:
        path = inside_prunable(cfg.data_dir, str(listed))
        if path is None or path.suffix != ".eml":
            continue
        path.unlink(missing_ok=True)
        gone += 1
        if path.parent.name == "quarantine":
            path.with_suffix(".txt").unlink(missing_ok=True)
    state.event(now, "info", "privacy_prune",
                f"ลบต้นฉบับอีเมลที่เก็บเกิน {cfg.retention.years} ปี (ก่อน {thai_date(plan.before)}) "
                f"{gone} ไฟล์ / pruned {gone} raw messages older than {cfg.retention.years} years")
    return gone
