"""Printing the receive register: pages for N rows, and whether every page shows the whole header row.

    python bench/print_registers.py [--rows 200 213] [--pdf-only 5000] [--keep DIR]

For each N: fills a state database with N realistic cases (Thai senders, long subjects and
actions), writes the year's workbook (the streamed register, as the daemon does) and our PDF,
converts the workbook with ``libreoffice --headless --convert-to pdf``, then counts pages
(pdfinfo) and checks every page with ``pdftotext -bbox``: the header row from เลขทะเบียนรับ to
หมายเหตุ on one line above the data, and every row's first cell (receipt number) on the same
page as its last (the remark's marker). Target: 200 rows in at most 20 pages.
``--pdf-only`` adds sizes for which only our PDF is timed (LibreOffice is slow on big sheets).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailbot.registers import receive as register  # noqa: E402
from mailbot.store import State  # noqa: E402
from tests.printcheck import RECEIVE_HEADERS, check_pages, fill_cases, landscape_a4, missing_tools, page_count, to_pdf  # noqa: E402

AGENCY = "เทศบาลตำบลบ้านตัวอย่าง"
YEAR = 2569
RECEIPT = re.compile(r"(\d+)/2569")
MARKER = re.compile(r"\[r(\d+)\]")


def one(n: int, folder: Path, libreoffice: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = State(folder / "state.sqlite3")
    fill_cases(state, n, YEAR)
    t = time.perf_counter()
    [xlsx] = register.write_registers(state, folder, AGENCY, datetime.now(timezone.utc)).written
    xlsx_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = register.write_pdf(state, folder, YEAR, AGENCY)
    pdf_s = time.perf_counter() - t
    state.close()
    results = [("ours (fpdf2)", ours, pdf_s)]
    if libreoffice:
        t = time.perf_counter()
        [lo] = to_pdf([xlsx], folder / "libreoffice")
        results.append(("xlsx via LibreOffice", lo, time.perf_counter() - t))
    print(f"rows={n}  xlsx_write_s={xlsx_s:.2f}  xlsx_kb={xlsx.stat().st_size // 1024}")
    for name, pdf, secs in results:
        pages = page_count(pdf)
        line = (f"  {name:<22} pages={pages:<4} rows/page={n / pages:5.1f}  landscape_A4={landscape_a4(pdf)}"
                f"  seconds={secs:.2f}  ms/row={secs / n * 1000:.1f}")
        if n > 1000:          # reading every page back takes long: pages and time only
            print(line)
            continue
        problems = check_pages(pdf, RECEIVE_HEADERS, RECEIPT, MARKER)
        ok_pages = pages - len({p.split(":")[0] for p in problems})
        target = -(-n * 20 // 200)    # 20 pages per 200 rows
        verdict = "PROBLEMS" if problems else "OK" if pages <= target else "OVER TARGET"
        print(f"{line}  pages_with_whole_header={ok_pages}/{pages}  target<={target}  {verdict}")
        for p in problems[:5]:
            print(f"    {p}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[200, 213])
    ap.add_argument("--pdf-only", type=int, nargs="*", default=[])
    ap.add_argument("--keep", type=Path, help="write here instead of a temporary folder")
    args = ap.parse_args()
    why = missing_tools()
    if why:
        print(f"LibreOffice/poppler check skipped: {why}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="mailbot-print-"))
    for n in args.rows:
        one(n, root / f"rows-{n}", libreoffice=why is None)
    for n in args.pdf_only:
        one(n, root / f"rows-{n}", libreoffice=False)
    print(f"files: {root}")


if __name__ == "__main__":
    main()
