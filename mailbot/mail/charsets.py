"""Charset alias map: the names Thai mail clients send that Python does not know.

Owns: teaching Python's codec registry the aliases (so stdlib ``email`` decodes RFC 2047
subjects, bodies and RFC 2231 filenames correctly instead of garbling them), and a
``decode_bytes`` that never raises. Pure; registering is idempotent.

Thai Outlook labels text ``windows-874``; Python only knows ``cp874``. TIS-620 labelled mail
often really contains cp874 punctuation (smart quotes, ellipsis, euro) in 0x80-0x9F, so the
TIS-620 family is decoded with cp874, its superset.
"""
from __future__ import annotations

import codecs

ALIASES: dict[str, str] = {
    "windows-874": "cp874",
    "windows874": "cp874",
    "x-windows-874": "cp874",
    "win-874": "cp874",
    "ms874": "cp874",
    "x-cp874": "cp874",
    "cp-874": "cp874",
    "ibm874": "cp874",
    "tis-620": "cp874",
    "tis620": "cp874",
    "x-tis-620": "cp874",
    "x-tis620": "cp874",
    "tis-620-2533": "cp874",
    "tis620-0": "cp874",
    "tis620.2533-0": "cp874",
    "iso-8859-11": "cp874",
    "iso8859-11": "cp874",
    "iso_8859-11": "cp874",
    "thai": "cp874",
    # other labels common in the wild that Python lacks
    "ks_c_5601-1987": "cp949",
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "x-mac-thai": "cp874",
    "utf8": "utf-8",
    "x-utf-8": "utf-8",
}

_registered = False


def _norm(name: str) -> str:
    return name.strip().strip('"').lower().replace("_", "-")


def _search(name: str) -> codecs.CodecInfo | None:
    # Python normalises the requested name (lower case, spaces to underscores)
    # before calling search functions; accept both '-' and '_' spellings.
    target = ALIASES.get(_norm(name)) or ALIASES.get(name.lower())
    if target is None:
        return None
    return codecs.lookup(target)


def register() -> None:
    """Install the alias map in Python's codec registry (once per process)."""
    global _registered
    if not _registered:
        codecs.register(_search)
        _registered = True


def codec_for(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None if unknown."""
    if not label:
        return None
    label = _norm(label)
    if label in ALIASES:
        return ALIASES[label]
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError, TypeError):
        return None


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Decode text whatever its label says; never raises.

    Order: the declared charset (through the alias map), then UTF-8, then cp874 (the
    most likely undeclared charset in a Thai mailbox), always with replacement.
    """
    codec = codec_for(label)
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec:
        try:
            return data.decode(codec, errors="replace")
        except LookupError:
            pass
    return data.decode("cp874", errors="replace")


register()
