"""Fault injection for crash tests: stop the process dead at a named step of the pipeline.

Set ``MAILBOT_FAULT=<step>`` (or ``<step>:<n>`` to stop at its n-th hit) and the process
exits with status 86 there, without cleanup, as a power cut would. ``deciding@<text>`` stops
only while deciding a message whose subject holds the text: a message that kills the program
every time (out of memory, say). Steps, in order:
after_fetch, after_archive, deciding (as one message is decided), after_decide (inside the
transaction, before COMMIT),
after_commit, after_send (SMTP accepted, not yet marked sent), after_mark_sent,
after_move (moved on the server, not yet marked moved); and for results:
after_result_commit (signed, recorded and queued; the PDF not yet moved out of the outbox); and for
LINE: after_line_push (LINE has the push, its answer not yet recorded).
``MAILBOT_PAUSE=<step>:<seconds>`` holds the process at a step instead (a slow cycle, for the
tests of officers waiting for it). Unset in normal use: then a call costs two dictionary lookups.
"""
from __future__ import annotations

import os
import time

STEPS = ("after_fetch", "after_archive", "after_decide", "after_commit",
         "after_send", "after_mark_sent", "after_move", "deciding")
EXIT_CODE = 86
_hits: dict[str, int] = {}


def armed(step: str) -> bool:
    """MAILBOT_FAULT names ``step`` (a point whose promise needs work finished before it)."""
    spec = os.environ.get("MAILBOT_FAULT") or ""
    return spec.partition(":")[0].partition("@")[0] == step


def point(step: str, about: str = "") -> None:
    pause = os.environ.get("MAILBOT_PAUSE")   # "<step>:<seconds>": hold there (tests of waiting officers)
    if pause and pause.partition(":")[0] == step:
        time.sleep(float(pause.partition(":")[2] or 1))
    spec = os.environ.get("MAILBOT_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    name, _, text = name.partition("@")
    if name != step or text not in about:
        return
    _hits[step] = _hits.get(step, 0) + 1
    if _hits[step] >= int(nth or 1):
        os._exit(EXIT_CODE)
