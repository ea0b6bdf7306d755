"""Trust and triage on hostile subjects: time per call of defang, receipt_refs and triage for
growing adversarial strings (each should grow linearly).

    python bench/defang.py
"""
import time
from datetime import datetime, timezone

from mailbot.casework.triage import triage
from mailbot.casework.trust import defang
from mailbot.intake.classify import receipt_refs

NOW = datetime(2026, 11, 27, tzinfo=timezone.utc)

SHAPES = {"a": "a", "a.": "a.", "a-": "a-", "1.": "1.", "a@": "a@", "@a.": "@a.", "a@b.": "a@b.",
          "http://": "http://", "www.": "www.", "x.y/": "x.y/", "thai": "ก", "ด่วน": "ด่วน ", "ลับ": "ลับ ",
          "ภายใน": "ด่วนภายใน 5 ธ.ค. ", "tag": "[เลขรับ 1/2569]", "foreign": "สถานะ 1/2569 ของอำเภอ "}
FUNCTIONS = {"defang": defang, "receipt_refs": receipt_refs, "triage": lambda s: triage(s, NOW)}

if __name__ == "__main__":
    for fname, fn in FUNCTIONS.items():
        for n in (10_000, 100_000, 1_000_000):
            worst, shape = 0.0, ""
            for name, unit in SHAPES.items():
                text = unit * (n // len(unit))
                t = time.perf_counter()
                fn(text)
                took = time.perf_counter() - t
                if took > worst:
                    worst, shape = took, name
            print(f"{fname:>12} {n:>9} chars: slowest shape {shape!r}: {worst * 1000:.1f} ms")
