"""Host mode, the operator's page: how long the health table takes with many agencies in the
registry (each cycle leaves its agency's figures there, so the table is one query). Prints
figures; the RESULT line last.

    python bench/host_page.py --agencies 1000

The registry is filled with N agencies as their cycles leave them (no mailboxes: the page reads
the registry and the job queue only). Needs PostgreSQL (Debian's package) and the test extra."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postgres import Postgres  # noqa: E402

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agencies", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    from werkzeug.test import Client

    from mailbot.host.console import HostConsole, add_operator
    from mailbot.host.service import Host
    from mailbot.host.worker import prepare_queue
    from mailbot.store.host import HostStore

    with Postgres() as pg:
        url = pg.new_database()
        with HostStore(url) as reg:
            reg.create()
            for i in range(args.agencies):
                name = f"b{i:04d}"
                reg.add(name, f"/agencies/{name}/mailbot.yaml", NOW)
                reg.started(name, NOW, "pod:1", NOW + timedelta(minutes=2))
                reg.finished(name, NOW, error="IMAP login failed" if i % 50 == 0 else None, handled=3,
                             next_poll=NOW + timedelta(minutes=10), next_daily=None)
                reg.measured(name, outbox_waiting=i % 3, alerts_day=i % 2, signin_expires_at=NOW + timedelta(days=i % 90),
                             signin_th="รหัสลับของแอป", signin_en="client secret", certificate_expires_at=None)
        prepare_queue(url)
        add_operator(url, "operator", "operator-pass-1234", NOW)
        with Host(url) as host:
            table = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                rows = host.health(NOW)
                table.append(time.perf_counter() - t)
        client = Client(HostConsole(url, lambda: NOW, port=8480))
        head = {"Host": "127.0.0.1:8480"}
        client.post("/signin", data={"name": "operator", "password": "operator-pass-1234"},
                    headers={**head, "Origin": "http://127.0.0.1:8480"})
        page, size = [], 0
        for _ in range(args.rounds):
            t = time.perf_counter()
            r = client.get("/", headers=head)
            page.append(time.perf_counter() - t)
            assert r.status_code == 200
            size = len(r.data)

    def ms(xs: list[float], q: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000

    print(f"health table of {len(rows)} agencies: p50 {ms(table, .5):.1f} ms, p95 {ms(table, .95):.1f} ms")
    print(f"operator page: {size // 1024} KB, p50 {ms(page, .5):.0f} ms, p95 {ms(page, .95):.0f} ms "
          f"(mean {statistics.mean(page) * 1000:.0f} ms)")
    print(f"RESULT agencies={len(rows)} table_p95_ms={ms(table, .95):.1f} page_p95_ms={ms(page, .95):.0f}")


if __name__ == "__main__":
    main()
