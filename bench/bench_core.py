"""gcx_core speed on one process and SQLite: submit, lookup by tracking code, dashboard snapshot.

    python bench/bench_core.py                     # 100k stored, then 1M for the dashboard
    python bench/bench_core.py --quick             # 10k stored, 100k for the dashboard

Prints one line per figure. Nothing here asserts: compare with the targets in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gcx_core.context import Gcx
from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.seed import seed_demo
from gcx_core.services import accounts, applications, dashboard, queries
from gcx_core.settings import Settings
from gcx_core.storage.tables import applications as application_rows


def line(name: str, value: float, unit: str, target: str) -> None:
    print(f"{name:<44} {value:>12,.1f} {unit:<10} (target {target})", flush=True)


async def bench_submit(gcx: Gcx, total: int, concurrency: int) -> None:
    payloads = [make_submission() for _ in range(total)]
    actor = Actor.applicant("127.0.0.1")
    queue = iter(payloads)

    async def worker() -> None:
        for payload in queue:
            await applications.submit(gcx, payload, actor)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    line(f"submit, {concurrency} concurrent callers", total / elapsed, "apps/s", ">= 2,000/s")


async def bench_lookup(gcx: Gcx, total: int, concurrency: int) -> None:
    import sqlalchemy as sa

    async with gcx.database.read() as conn:
        codes = list(
            (
                await conn.execute(sa.select(application_rows.c.tracking_code).limit(20_000))
            ).scalars()
        )
    rng = random.Random(1)
    picks = iter([rng.choice(codes) for _ in range(total)])

    async def worker() -> None:
        for code in picks:
            await queries.find_by_tracking_code(gcx, code)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    line(
        f"lookup by tracking code, {concurrency} concurrent",
        total / elapsed,
        "lookups/s",
        ">= 10,000/s",
    )


async def bench_dashboard(gcx: Gcx, rounds: int, stored: int) -> None:
    await dashboard.snapshot(gcx)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        await dashboard.snapshot(gcx)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    line(
        f"dashboard snapshot at {stored:,} apps, median",
        statistics.median(timings),
        "ms",
        "<= 1 ms",
    )
    line(
        f"dashboard snapshot at {stored:,} apps, p99",
        timings[int(len(timings) * 0.99)],
        "ms",
        "<= 1 ms",
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--dashboard-stored", type=int, default=1_000_000)
    parser.add_argument("--submits", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.stored, args.dashboard_stored, args.submits, args.lookups = (
            10_000,
            100_000,
            4000,
            20_000,
        )
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="gcx-bench-"))
    settings = Settings(data_dir=data_dir)
    print(f"python {sys.version.split()[0]}, data in {data_dir}", flush=True)

    started = time.perf_counter()
    await seed_demo(settings, args.stored, progress=False, with_documents=False)
    line(
        f"seed-demo of {args.stored:,} applications",
        args.stored / (time.perf_counter() - started),
        "apps/s",
        "1M in minutes",
    )
    async with await Gcx.open(settings) as gcx:
        for role in (Role.REVIEWER, Role.REVIEWER, Role.ADMIN):
            await accounts.create_user(
                gcx, f"{role}{random.random()}@bench.test", role, Actor.system("bench")
            )
        await bench_submit(gcx, args.submits, args.concurrency)
        await bench_lookup(gcx, args.lookups, args.concurrency)
        await bench_dashboard(gcx, 2000, args.stored + args.submits)

    more = args.dashboard_stored - args.stored - args.submits
    if more > 0:
        started = time.perf_counter()
        await seed_demo(settings, more, progress=False, with_documents=False)
        line(
            f"seed-demo of {more:,} more",
            more / (time.perf_counter() - started),
            "apps/s",
            "1M in minutes",
        )
        async with await Gcx.open(settings) as gcx:
            await bench_dashboard(gcx, 2000, args.dashboard_stored)


if __name__ == "__main__":
    asyncio.run(main())
