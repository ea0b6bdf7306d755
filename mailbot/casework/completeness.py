"""Completeness (pure): are the documents a service needs among the files received?

Owns: the conservative judgement, from the number of files, their types and the filename
hints in rules.yaml. It only says "incomplete" when that is certain (fewer usable files than
required documents, or none at all); when hints do not settle it, the verdict is "unsure"
and the reply says "received N files; the officer will check". No I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from ..config import Service
from ..thai import normalise

Verdict = Literal["none", "complete", "incomplete", "unsure"]


@dataclass(frozen=True)
class File:
    name: str
    size: int
    content_type: str = ""


@dataclass(frozen=True)
class Item:
    document: str
    status: Literal["found", "missing", "unknown"]
    file: str = ""            # the file that satisfied it, by name hint


@dataclass(frozen=True)
class Checklist:
    verdict: Verdict
    items: tuple[Item, ...] = ()
    files: tuple[File, ...] = ()          # usable files (accepted types)
    rejected: tuple[File, ...] = ()       # files of a type the service does not accept
    accept: tuple[str, ...] = ()
    missing_at_least: int = 0             # incomplete: how many documents are surely missing

    @property
    def missing(self) -> list[str]:
        """Documents to ask for: the surely missing ones, else the unmatched candidates."""
        sure = [i.document for i in self.items if i.status == "missing"]
        if sure or self.verdict != "incomplete":
            return sure
        return [i.document for i in self.items if i.status == "unknown"]

    def confirmed(self) -> "Checklist":
        """The same files after an officer checked them and found every document: nothing is
        asked for any more (an officer's word outranks the filename hints)."""
        return Checklist("complete", tuple(Item(i.document, "found", i.file) for i in self.items),
                         self.files, self.rejected, self.accept, 0)

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "items": [{"document": i.document, "status": i.status, "file": i.file} for i in self.items],
            "files": [{"name": f.name, "size": f.size} for f in self.files],
            "rejected": [{"name": f.name, "size": f.size} for f in self.rejected],
            "missing": self.missing,
            "accept": list(self.accept),
            "count": len(self.files),
            "missing_at_least": self.missing_at_least,
        }


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def check(service: Service | None, files: Iterable[File]) -> Checklist:
    files = list(files)
    if service is None or not service.documents:
        return Checklist("none", files=tuple(files))
    accept = tuple(a.lower().lstrip(".") for a in service.accept)
    usable = [f for f in files if not accept or extension(f.name) in accept]
    rejected = [f for f in files if f not in usable]

    # filename hints: each file satisfies at most one document, in rules order
    remaining = list(usable)
    found: dict[int, str] = {}
    for i, doc in enumerate(service.documents):
        hints = [normalise(h) for h in doc.match if normalise(h)]
        for f in remaining:
            if any(h in normalise(f.name) for h in hints):
                found[i] = f.name
                remaining.remove(f)
                break

    needed = len(service.documents)
    if not usable:
        verdict: Verdict = "incomplete"
    elif len(found) == needed:
        verdict = "complete"
    elif len(usable) < needed:
        verdict = "incomplete"       # certain: fewer files than documents
    else:
        verdict = "unsure"           # enough files, hints do not tell: the officer checks

    # unmatched documents are certainly missing only when every usable file was matched
    certain = verdict == "incomplete" and len(found) == len(usable)
    items = tuple(
        Item(doc.name, "found", found[i]) if i in found
        else Item(doc.name, "missing" if certain else "unknown")
        for i, doc in enumerate(service.documents)
    )
    at_least = max(0, needed - len(usable)) if verdict == "incomplete" else 0
    return Checklist(verdict, items, tuple(usable), tuple(rejected), accept, at_least)
