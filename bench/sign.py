"""Signing time for a 1-page and a 50-page PDF with the demo certificate.

    python bench/sign.py [--pages 1 50] [--repeat 3]

Prints the best of --repeat runs per size (seconds), B-B level (no timestamp server): in this
process (sign_s), and through the bounded helper process the results step uses (helper_s; the
helper's start, paid once per cycle with files to sign, is printed as helper_start_s).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

from mailbot.documents.certs import make_demo_pki
from mailbot.documents.sign import SigningHelper, load_signer, sign_pdf


def pdf(pages: int) -> bytes:
    doc = FPDF()
    for i in range(pages):
        doc.add_page()
        doc.set_font("helvetica", size=12)
        for line in range(40):
            doc.cell(0, 6, f"page {i + 1} line {line + 1} " + "x" * 60, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, nargs="+", default=[1, 50])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pki = make_demo_pki(Path(tempfile.mkdtemp(prefix="mailbot-bench-")), "เทศบาลตำบลบ้านตัวอย่าง")
    signer = load_signer(pki.p12.read_bytes(), pki.password)
    with SigningHelper(pki.p12.read_bytes(), pki.password) as helper:
        t = time.perf_counter()
        helper.check(pdf(1))
        print(f"helper_start_s={time.perf_counter() - t:.3f}")
        for pages in args.pages:
            data = pdf(pages)
            best = min(_time(data, signer) for _ in range(args.repeat))
            bounded = min(_time_helper(data, helper) for _ in range(args.repeat))
            print(f"pages={pages} input_kb={len(data) // 1024} sign_s={best:.3f} helper_s={bounded:.3f}")


def _time(data: bytes, signer) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    sign_pdf(data, signer, agency="เทศบาลตำบลบ้านตัวอย่าง", signer_name="ทดสอบ", when=datetime.now(timezone.utc))
    return time.perf_counter() - t


def _time_helper(data: bytes, helper: SigningHelper) -> float:
    t = time.perf_counter()
    helper.sign(data, agency="เทศบาลตำบลบ้านตัวอย่าง", signer_name="ทดสอบ", when=datetime.now(timezone.utc))
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
