"""Chain (store): the audit log's hash chain, over a connection: an append-only log with a hash chain over everything that happens to the registers.

Owns: appending an entry (registration, status change, case event and officer action,
cancellation, dispatch) whose hash covers the previous entry's hash, so that editing or
deleting any row breaks the chain from there on; the chain's start for a database that
existed before the log (one entry per case already registered); the head (last id and hash)
that backups and daily logs record, so a rewrite of history stays visible later; and
verification (`mailbot audit verify`): the chain is whole, the rows still agree with the cases
they describe, and every head recorded elsewhere is still in it. The database refuses UPDATE
and DELETE on the log (triggers); verification catches whoever drops them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

GENESIS = "0" * 64
# the entries that fix a case's number, date of receipt and subject (a registration, or a number
# found again by recovery); audit actions, not message outcomes
REGISTRATION_ACTIONS = ("registered", "recovered")


def _iso(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _digest(prev: str, at: str, actor: str, action: str, ref: str, detail: str, key: bytes | None = None) -> str:
    """SHA-256 of the entry and the one before it; HMAC-SHA256 with the chain's key once it has
    one (rewriting the chain then needs the key, kept outside the database, as well as the file)."""
    blob = json.dumps([prev, at, actor, action, ref, detail], ensure_ascii=False, separators=(",", ":"))
    if key is not None:
        return hmac.new(key, blob.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def subject_sha(subject: str | None) -> str:
    return hashlib.sha256((subject or "").encode("utf-8")).hexdigest()[:16]


def append(db: sqlite3.Connection, at: datetime | str, actor: str, action: str, ref: str = "",
           detail: dict | None = None, key: bytes | None = None) -> str:
    """One entry, inside the caller's transaction; returns its hash. Its number is the last one
    plus one, given here under the write lock: a gap in the numbers means entries were deleted, so
    a transaction rolled back must leave none (PostgreSQL's sequences would: they do not roll back)."""
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev = last[1] if last else GENESIS
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    stamp = _iso(at)
    digest = _digest(prev, stamp, actor, action, ref, text, key)
    db.execute("INSERT INTO audit (id, at, actor, action, ref, detail, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
               ((last[0] if last else 0) + 1, stamp, actor, action, ref, text, prev, digest))
    return digest


def registration(case) -> dict:
    """What a registration entry fixes: the number, the date of receipt, the subject."""
    return {"receipt": case["receipt"], "received_at": case["received_at"], "subject": subject_sha(case["subject"])}


def start_chain(db: sqlite3.Connection) -> None:
    """A database older than the log: each case already registered gets its entry, in order."""
    for case in db.execute("SELECT receipt, received_at, subject FROM cases ORDER BY year_be, seq").fetchall():
        append(db, case[1], "mailbot (ก่อนมีบันทึกตรวจสอบ / before the audit log)", "registered", case[0],
               {"receipt": case[0], "received_at": case[1], "subject": subject_sha(case[2])})


def head(db: sqlite3.Connection) -> tuple[int, str]:
    row = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def head_text(db: sqlite3.Connection) -> str:
    n, digest = head(db)
    return f"#{n} {digest}"


@dataclass
class Verification:
    entries: int = 0
    head: tuple[int, str] = (0, GENESIS)
    problems: list[tuple[int, str, str]] = field(default_factory=list)   # (entry id or 0, thai, english)
    notes: list[str] = field(default_factory=list)                       # what it was checked against

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.ok:
            return self.notes + [f"บันทึกตรวจสอบครบถ้วน ไม่มีการแก้ไขย้อนหลัง: {self.entries} รายการ "
                    f"(ล่าสุด #{self.head[0]} {self.head[1][:16]}…) / the audit chain is whole: {self.entries} entries"]
        out = [f"บันทึกตรวจสอบถูกแก้ไขหรือลบ พบ {len(self.problems)} จุด / the audit chain is broken "
               f"({len(self.problems)} problem(s))"]
        out += [f"  - {thai} / {english}" for _, thai, english in self.problems]
        return self.notes + out


def verify(db: sqlite3.Connection, recorded_heads: Sequence[tuple[str, int, str]] = (),
           key: bytes | None = None, keyed_from: int | None = None) -> Verification:
    """Walk the chain (entries from ``keyed_from`` on with the chain's key); compare registrations
    with the cases; find every receipt number between 1 and a year's highest (a cancelled number
    keeps its row: one missing was deleted); look for the heads recorded outside the database —
    backups, daily logs, the supervisors' copies, the credential store (``(where, id, hash)``; a
    hash may be given by its first 16 characters, as a daily log's subject carries it)."""
    result = Verification()
    unkeyed_reported = False
    prev, expected_id = GENESIS, None
    hashes: dict[int, str] = {}
    registered: dict[str, dict] = {}
    superseded: set[tuple[int, str]] = set()
    for row in db.execute("SELECT id, at, actor, action, ref, detail, prev, hash FROM audit ORDER BY id"):
        rid, at, actor, action, ref, detail, row_prev, digest = row
        if expected_id is not None and rid != expected_id:
            result.problems.append((rid, f"รายการที่ {expected_id}–{rid - 1} หายไป (ถูกลบ)",
                                    f"entries {expected_id}-{rid - 1} are missing (deleted)"))
        if row_prev != prev:
            result.problems.append((rid, f"รายการที่ {rid} ไม่ต่อจากรายการก่อนหน้า (มีการลบหรือแทรก)",
                                    f"entry {rid} does not follow the one before it (deleted or inserted)"))
        keyed = keyed_from is not None and rid >= keyed_from
        if keyed and key is None:
            if not unkeyed_reported:       # e.g. restored on another computer: said, not called tampering
                unkeyed_reported = True
                result.notes.append(f"ไม่พบกุญแจของบันทึกตรวจสอบในที่เก็บรหัสลับของเครื่องนี้ (เช่น กู้คืนบนเครื่องใหม่) "
                                    f"จึงตรวจการแก้ไขเนื้อหารายการตั้งแต่ที่ {rid} ไม่ได้ ตรวจได้เฉพาะความต่อเนื่องและจุดอ้างอิง / "
                                    f"the audit chain's key is not in this computer's credential store: the content "
                                    f"of entries from {rid} on cannot be checked, only their order and the heads")
        elif _digest(row_prev, at, actor, action, ref or "", detail, key if keyed else None) != digest:
            result.problems.append((rid, f"รายการที่ {rid} ถูกแก้ไข ({action} {ref or ''})",
                                    f"entry {rid} was edited ({action} {ref or ''})"))
        if action == "restored":       # heads recorded after the backup that was restored: on the record
            try:
                superseded.update((int(n), h) for _, n, h in json.loads(detail).get("superseded", []))
            except (ValueError, TypeError):
                pass
        if action in REGISTRATION_ACTIONS:
            try:
                registered[ref] = json.loads(detail)
            except ValueError:
                pass
        hashes[rid] = digest
        prev, expected_id = digest, rid + 1
        result.entries += 1
    result.head = (expected_id - 1, prev) if expected_id else (0, GENESIS)
    for case in db.execute("SELECT receipt, received_at, subject FROM cases"):
        fixed = registered.pop(case[0], None)
        if fixed is None:
            result.problems.append((0, f"เรื่อง {case[0]} ไม่มีรายการลงทะเบียนในบันทึกตรวจสอบ",
                                    f"case {case[0]} has no registration entry"))
        elif fixed.get("received_at") != case[1] or fixed.get("subject") != subject_sha(case[2]):
            result.problems.append((0, f"วันที่รับหรือเรื่องของ {case[0]} ถูกแก้ไขหลังลงทะเบียน",
                                    f"the date of receipt or subject of {case[0]} changed after registration"))
    for receipt in registered:
        result.problems.append((0, f"เรื่อง {receipt} ถูกลบออกจากทะเบียน", f"case {receipt} was deleted from the register"))
    numbers: dict[int, set[int]] = {}
    for year, seq in db.execute("SELECT year_be, seq FROM cases"):
        numbers.setdefault(year, set()).add(seq)
    for year, seqs in sorted(numbers.items()):
        missing = sorted(set(range(1, max(seqs) + 1)) - seqs)
        if missing:
            shown = ", ".join(f"{n}/{year}" for n in missing[:20]) + (" ..." if len(missing) > 20 else "")
            result.problems.append((0, f"เลขรับ {shown} หายไปจากทะเบียน (เลขที่ยกเลิกยังคงอยู่ในทะเบียน เลขที่หายไปแสดงว่าถูกลบ)",
                                    f"receipt numbers missing from the register (a cancelled number keeps its row): {shown}"))
    for where, n, digest in recorded_heads:
        if len(digest) < 64 and hashes.get(n, "").startswith(digest):
            continue
        if hashes.get(n) != digest and (n, digest) not in superseded:
            result.problems.append((n, f"จุดอ้างอิงที่บันทึกไว้ใน {where} (#{n}) ไม่อยู่ในบันทึกตรวจสอบแล้ว",
                                    f"the chain head recorded in {where} (#{n}) is no longer in the log"))
    return result
