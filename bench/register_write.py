"""Register write cost: rebuild the year's workbook from the state DB at N rows.

    python bench/register_write.py [--rows 10000 100000]

Prints seconds per full rewrite and per row. (The full intake benchmark comes with issue 7.)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from mailbot.registers.receive import write_registers
from mailbot.store import State, iso


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    now = datetime.now(timezone.utc)
    for n in args.rows:
        folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
        st = State(folder / "state.sqlite3")
        with st.tx():
            for i in range(n):
                st.new_case(2569, message_row=i, received_at=iso(now), sender_name="สมชาย ใจดี",
                            sender_addr=f"p{i}@example.com", reply_to=f"p{i}@example.com",
                            subject=f"ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i}", service_code="BLD",
                            service_name="ขออนุญาตก่อสร้าง", status="รับเรื่องแล้ว", action="รับเรื่อง",
                            remark="", message_id=f"<{i}@example.com>", attachments=1,
                            archive="archive/2569/11/x.eml", sha256="0" * 64)
        t = time.perf_counter()
        out = write_registers(st, folder / "registers", "เทศบาลตำบลบ้านตัวอย่าง", datetime.now(timezone.utc))
        written, failed = out.written, out.failed
        secs = time.perf_counter() - t
        size = written[0].stat().st_size // 1024
        print(f"rows={n} rewrite_s={secs:.2f} per_row_ms={secs / n * 1000:.3f} file_kb={size}")


if __name__ == "__main__":
    main()
