"""The daily job's time against the size of the year (issue 23: t(10k)/t(1k) ≤ 1.5).

Builds a workspace from the starter files, fills its state database with N registered cases of
the Buddhist-Era year 2569 (realistic Thai senders, subjects and long actions, as the printing
tests use) — the same ``--recent`` ones in the last six weeks whatever N is, the rest of the
year's history before them — writes the registers once (what the cycles did during the year),
then times, on 15 December 2569:

  daily     ``Office.daily_log``: the day's log (xlsx + PDF) and this and last month's receive
            register PDF — what runs every evening
  year      the whole year's receive register PDF (what the daily job used to write every day;
            now made only when someone asks for it)

    python bench/daily.py [--rows 1000 10000] [--runs 3]

Prints the median of each per N; the last line is
``RESULT daily_1000=<s> daily_10000=<s> ratio=<x.xx> year_1000=<s> year_10000=<s>``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailbot.app import Office  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from mailbot.registers import receive  # noqa: E402
from mailbot.starter import init  # noqa: E402
from mailbot.store import iso  # noqa: E402
from tests.printcheck import ACTIONS, REMARKS, SENDERS, STATUSES, SUBJECTS  # noqa: E402

DAY = date(2026, 12, 15)
NOW = datetime(2026, 12, 15, 11, 0, tzinfo=timezone.utc)


def fill(office: Office, n: int, recent: int) -> None:
    """``n`` cases in the year: ``recent`` of them from 1 November to 15 December (what the office
    handles in the six weeks the daily job prints: the same in both years), the rest spread over
    January to October (the history a bigger year has more of)."""
    import random

    rnd = random.Random(23)

    def spread(count: int, first: datetime, last: datetime) -> list[datetime]:
        step = (last - first) / max(1, count)
        return [first + step * i for i in range(count)]

    times = (spread(n - recent, datetime(2026, 1, 1, 2, tzinfo=timezone.utc), datetime(2026, 10, 31, 2, tzinfo=timezone.utc))
             + spread(recent, datetime(2026, 11, 1, 2, tzinfo=timezone.utc), datetime(2026, 12, 15, 2, tzinfo=timezone.utc)))
    with office.state.tx():
        for i, at in enumerate(times):
            office.state.new_case(
                2569, message_row=i, received_at=iso(at), sender_name=rnd.choice(SENDERS),
                sender_addr=f"citizen{i + 1}@example.co.th", reply_to=f"citizen{i + 1}@example.co.th",
                subject=rnd.choice(SUBJECTS).format(i=i + 1), service_code="BLD", service_name="ขออนุญาตก่อสร้าง",
                status=rnd.choice(STATUSES), action=rnd.choice(ACTIONS), remark=rnd.choice(REMARKS),
                message_id=f"<{i}@example.com>", attachments=1, archive="archive/x.eml", sha256="0" * 64)


def measure(n: int, runs: int, recent: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-daily-"))
    init(folder, today=DAY)
    cfg = load_config(folder / "mailbot.yaml")
    with Office.open(cfg, clock=lambda: NOW) as office:
        fill(office, n, recent)
        office.registers.write()                 # the workbook and its row cache, as the cycles left them
        daily, year = [], []
        for _ in range(runs):
            t = time.perf_counter()
            office.daily_log(DAY)
            daily.append(time.perf_counter() - t)
            t = time.perf_counter()
            receive.write_pdf(office.state, cfg.registers_dir, 2569, cfg.agency.name, NOW)
            year.append(time.perf_counter() - t)
    d, y = statistics.median(daily), statistics.median(year)
    print(f"rows={n:>6}  daily job {d:6.2f} s   the year's PDF {y:6.2f} s   ({folder})")
    return d, y


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs=2, default=[1000, 10000])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--recent", type=int, default=300, help="cases in the last six weeks (the same for each N)")
    args = p.parse_args()
    small, large = (measure(n, args.runs, args.recent) for n in args.rows)
    a, b = args.rows
    print(f"RESULT daily_{a}={small[0]:.2f} daily_{b}={large[0]:.2f} ratio={large[0] / small[0]:.2f} "
          f"year_{a}={small[1]:.2f} year_{b}={large[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
