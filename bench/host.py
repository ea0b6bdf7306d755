"""Host mode, scaling: the same load served by 1 worker and by 3, with every IMAP command of
every agency delayed on a loopback proxy (a WAN's round trip), and what one agency costs the
host's PostgreSQL. Prints figures; the RESULT line last.

    python bench/host.py --agencies 30 --mails 10 --latency 0.05

Each worker takes one cycle at a time (--concurrency 1), so that the figure is what a worker
adds; a worker's own --concurrency multiplies it again while the cycles wait on the network.
Needs PostgreSQL (Debian's package) and the test extra (pip install -e ".[test]")."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostfarm import Farm  # noqa: E402
from tests.postgres import Postgres  # noqa: E402


def run(pg: Postgres, agencies: int, mails: int, latency: float, workers: int, concurrency: int) -> tuple[float, dict]:
    root = Path(tempfile.mkdtemp(prefix="mailbot-bench-host-"))
    with Farm(root, pg.new_database(), agencies=agencies, mails=mails, latency=latency) as farm:
        farm.start_workers(workers, concurrency=concurrency)
        took = farm.wait(lambda: farm.answered() >= agencies * mails, 1800, every=0.2)
        farm.stop_workers()
        import psycopg

        with psycopg.connect(farm.url) as conn:
            sizes = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname LIKE 'agency_%' AND c.relkind IN ('r', 'm')").fetchone()[0]
            total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        figures = farm.check()
    return took, {"tenant_bytes": int(sizes or 0), "database_bytes": int(total), **figures}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agencies", type=int, default=30)
    p.add_argument("--mails", type=int, default=10)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added to every IMAP command")
    p.add_argument("--concurrency", type=int, default=1)
    a = p.parse_args()
    load = a.agencies * a.mails
    with Postgres() as pg:
        t1, f1 = run(pg, a.agencies, a.mails, a.latency, 1, a.concurrency)
        print(f"1 worker:  {t1:.1f} s for {load} mails of {a.agencies} agencies ({load / t1:.1f} mails/s); {f1}",
              flush=True)
        t3, f3 = run(pg, a.agencies, a.mails, a.latency, 3, a.concurrency)
        print(f"3 workers: {t3:.1f} s ({load / t3:.1f} mails/s); {f3}", flush=True)
    per_agency = f1["tenant_bytes"] / a.agencies
    print(f"PostgreSQL: {per_agency / 1024:.0f} KB of tables and indexes per agency after {a.mails} mails "
          f"(whole database {f1['database_bytes'] / 1024 / 1024:.1f} MB with {a.agencies} agencies)")
    print(f"RESULT workers1={t1:.1f} workers3={t3:.1f} ratio={t1 / t3:.2f} latency_ms={a.latency * 1000:.0f} "
          f"agencies={a.agencies} mails={load} kb_per_agency={per_agency / 1024:.0f}")


if __name__ == "__main__":
    main()
