"""Settings written back: the console's forms change ``mailbot.yaml`` and ``rules.yaml``.

Owns: editing those files in place with their comments, order and quoting kept (ruamel.yaml's
round trip), so that the files stay the source of truth and a hand edit still works; every
change validated by loading the result exactly as mailbot loads it before the file is
replaced (atomically); nothing saved when it does not load, the reason said in Thai.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import load_config, load_rules
from ..errors import ConfigError, MailbotError

if TYPE_CHECKING:    # ruamel.yaml loads when a setting is changed, not with every office (37 ms a start)
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

REMOVE = object()     # a value that removes its key


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    y = YAML()                  # round trip: comments, order, quotes kept
    y.preserve_quotes = True
    y.width = 4096              # never fold a long Thai line
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _plain(value: Any) -> Any:
    """Lists and dicts from a form as ruamel's own (so they dump in the file's block style)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, Mapping):
        m = CommentedMap()
        for k, v in value.items():
            m[k] = _plain(v)
        return m
    if isinstance(value, (list, tuple)):
        return CommentedSeq(_plain(v) for v in value)
    return value


def set_path(doc: CommentedMap, dotted: str, value: Any) -> None:
    """``doc["a"]["b"] = value`` for "a.b", making the sections on the way; REMOVE deletes."""
    from ruamel.yaml.comments import CommentedMap

    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        if not isinstance(node.get(key), Mapping):
            if value is REMOVE:
                return
            node[key] = CommentedMap()
        node = node[key]
    if value is REMOVE:
        node.pop(last, None)
    else:
        node[last] = _plain(value)


def edit(path: Path, change: Callable[[CommentedMap], None], validate: Callable[[Path], object]) -> None:
    """Read ``path``, let ``change`` edit it, and put the result in place only if ``validate``
    (given the new text as a file beside the old one) accepts it."""
    from ruamel.yaml.comments import CommentedMap

    y = _yaml()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = y.load(text) if text.strip() else CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError(f"ไฟล์ {path.name} ไม่ใช่กลุ่มคีย์ แก้จากหน้าจอไม่ได้", f"{path.name} is not a mapping")
    change(doc)
    out = io.StringIO()
    y.dump(doc, out)
    new = path.with_name(f".{path.stem}.new{path.suffix}")
    new.write_text(out.getvalue(), encoding="utf-8")
    try:
        try:
            validate(new)
        except MailbotError as exc:     # said of the file the officer knows, not of the draft
            exc.thai, exc.english = (t.replace(str(new), path.name).replace(new.name, path.name)
                                     for t in (exc.thai, exc.english))
            raise
        with open(new, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(new, path)
    finally:
        new.unlink(missing_ok=True)


def update_config(path: Path, changes: Mapping[str, Any]) -> None:
    """Set each dotted key of ``changes`` in mailbot.yaml (REMOVE: delete it); saved only if the
    file then loads as a config. Raises ConfigError (Thai, then what is wrong) otherwise."""
    def change(doc: CommentedMap) -> None:
        for k, v in changes.items():
            set_path(doc, k, v)

    edit(path, change, load_config)


def update_rules(path: Path, services: list[dict[str, Any]] | None = None,
                 referrals: list[dict[str, Any]] | None = None) -> None:
    """Replace the services and/or referrals of rules.yaml; saved only if the rules then load."""
    def change(doc: CommentedMap) -> None:
        if services is not None:
            doc["services"] = _plain(services)
        if referrals is not None:
            doc["referrals"] = _plain(referrals)

    edit(path, change, load_rules)


def read(path: Path) -> Any:
    """The file as plain data (what a form shows)."""
    return _yaml().load(path.read_text(encoding="utf-8"))


def problem(exc: MailbotError) -> str:
    """What the officer is told when a change was refused."""
    return exc.thai + (f" — {exc.detail}" if exc.detail else "")
