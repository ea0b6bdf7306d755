"""Anchors: the audit chain held fast from outside the database, so that rewriting it needs more
than the database file.

Owns: the chain's key (32 random bytes, made once, with the id of the first entry it signs) and
the head last seen, both in the credential store (``mail.credentials``: the operating system's
store where there is one); and the heads found elsewhere — backups' MANIFEST.json, the daily
logs' ``.audit`` files, the daily log mails in the Sent folder (their subject carries the head),
and heads an officer pastes from the supervisors' copies — that ``mailbot audit verify`` checks.
"""
from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from ..config import Config
from ..mail.credentials import Store
from ..store import State

KEY = "audit-chain-key"        # {"key": hex, "from": first entry id it signs}
HEAD = "audit-chain-head"      # "#N hash": the head when the office last closed
_HEAD = re.compile(r"#(\d+)\s+([0-9a-f]{16,64})\b")


def store(cfg: Config) -> Store:
    return Store(cfg.data_dir, cfg.oauth2.store if cfg.oauth2 is not None else "auto")


def use_key(state: State, secrets_store: Store) -> None:
    """Sign the chain with its key (made now, for the entries after the current head, when there is none)."""
    saved = secrets_store.get(KEY)
    if saved:
        try:
            data = json.loads(saved)
            state.use_audit_key(bytes.fromhex(data["key"]), int(data["from"]))
        except (ValueError, KeyError, TypeError):
            pass        # unreadable: the chain is checked without it (verify says so), a new key is not made
        return
    if state.get("audit_keyed_from"):
        return          # the key was made and is gone: never silently start another (verify says so)
    start = state.audit_head()[0] + 1
    key = secrets.token_bytes(32)
    secrets_store.set(KEY, json.dumps({"key": key.hex(), "from": start}))
    state.put("audit_keyed_from", str(start))    # where signed entries start, should the key be lost
    state.use_audit_key(key, start)


def remember_head(state: State, secrets_store: Store) -> None:
    """The head as it is now, kept in the credential store (written only when it moved)."""
    n, digest = state.audit_head()
    text = f"#{n} {digest}"
    if n and secrets_store.get(HEAD) != text:
        secrets_store.set(HEAD, text)


def parse_heads(text: str, where: str) -> list[tuple[str, int, str]]:
    """Every "#N <hash>" in a text (a hash of 16 to 64 hexadecimal characters)."""
    return [(where, int(m[1]), m[2]) for m in _HEAD.finditer(text or "")]


def recorded_heads(cfg: Config, secrets_store: Store | None = None) -> list[tuple[str, int, str]]:
    """The heads written into backups (MANIFEST.json), daily logs (.audit files) and the
    credential store."""
    out: list[tuple[str, int, str]] = []
    folders: list[Path] = []
    if cfg.backup.dir is not None and cfg.resolve(cfg.backup.dir).is_dir():
        folders = sorted(cfg.resolve(cfg.backup.dir).glob("mailbot-backup-*"))
    for folder in folders:
        try:
            head = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8")).get("audit_head")
        except (OSError, ValueError):
            continue
        if head:
            out.append((folder.name, int(head[0]), head[1]))
    for path in sorted((cfg.registers_dir / "daily").glob("*.audit")):
        out += parse_heads(path.read_text(encoding="utf-8"), path.name)
    if secrets_store is not None:
        out += parse_heads(secrets_store.get(HEAD) or "", "ที่เก็บรหัสลับ (credential store)")
    return out
