"""The applications list's queue views at 1k, 100k and 1M applications, through the service the
back office and the staff API call (filters parsed, the page read, the total counted).

    python bench/bench_queues.py [--rounds 200] [--quick]

For each size, a fresh embedded database gets that many applications spread over every status
and over 20 reviewers (a tenth of the open ones nobody holds), written by one SQL statement.
Timed: "My queue" (one reviewer's open applications, newest first), "Unassigned" (open ones
nobody holds) and the whole list, `--rounds` times each. The figures to watch: p99 at 1M, and
its ratio to the same view at 1k.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit  # noqa: E402

from gcx_core.entities import Actor  # noqa: E402
from gcx_core.samples import make_submission  # noqa: E402
from gcx_core.services import applications  # noqa: E402
from gcx_core.services.queries import list_applications  # noqa: E402
from gcx_core.settings import Settings  # noqa: E402
from gcx_core.system import Gcx  # noqa: E402
from gcx_web.backoffice.filters import parse_filter  # noqa: E402

SIZES = (1_000, 100_000, 1_000_000)
REVIEWERS = 20
STATUSES = (
    "pending_review",
    "under_review",
    "documents_requested",
    "approved",
    "rejected",
    "withdrawn",
)
VIEWS = {"mine": {"queue": "mine"}, "unassigned": {"queue": "unassigned"}, "all": {}}

# Statuses spread over the workflow; reviewers 1..20 hold nine in ten applications, nobody the
# tenth; creation and status times over the last year. Every row carries the details of one
# real submission (pages decode them), the rest is filler.
INSERT = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO applications (
    tracking_code, status, version, revision, business_name, search_name, business_type,
    registration_number, tin, email, telephone, region, details, created_at, updated_at,
    status_changed_at, assigned_reviewer_id
)
SELECT
    printf('GCX-B%03d-%04d-%04d', i / 100000000, (i / 10000) % 10000, i % 10000),
    CASE i % {len(STATUSES)} {" ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(STATUSES))} END,
    1, 1, 'Bench Farms ' || i || ' Ltd', 'bench farms ' || i || ' ltd', 'limited_company',
    'CS' || i, 'P' || i, 'bench' || i || '@example.com', '+233241234567', 'AA', :details,
    strftime('%Y-%m-%d %H:%M:%f000', 'now', -(i % 365) || ' days', -(i % 86400) || ' seconds'),
    strftime('%Y-%m-%d %H:%M:%f000', 'now'),
    strftime('%Y-%m-%d %H:%M:%f000', 'now', -(i % 30) || ' days', -(i % 3600) || ' seconds'),
    CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i / 7) % {REVIEWERS} END
FROM n
"""


async def measure(size: int, rounds: int) -> dict[str, tuple[float, float]]:
    data_dir = Path(tempfile.mkdtemp(prefix="gcx-bench-queues-"))
    settings = Settings(data_dir=data_dir, secret_key="bench-secret")
    async with await Gcx.open(settings, migrate=True) as gcx:
        await applications.submit(gcx, make_submission(), Actor.applicant())
    with sqlite3.connect(data_dir / "gcx.db") as db:
        (details,) = db.execute("SELECT details FROM applications").fetchone()
        db.execute("DELETE FROM applications")
        db.execute(INSERT, {"count": size, "details": details})
        db.execute("ANALYZE")
    found: dict[str, tuple[float, float]] = {}
    async with await Gcx.open(settings) as gcx:
        for name, params in VIEWS.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                page = await list_applications(gcx, parse_filter(params, gcx, me=3))
                times.append((time.perf_counter() - started) * 1000)
            assert page.items, name
            times.sort()
            found[name] = (statistics.median(times), times[int(len(times) * 0.99) - 1])
    return found


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 rounds per view and size")
    args = parser.parse_args()
    rounds = 50 if args.quick else args.rounds
    results = {}
    for size in SIZES:
        results[size] = await measure(size, rounds)
        for name, (median, p99) in results[size].items():
            print(
                f"list {name:>10}, {size:>9,} applications: "
                f"median {median:7.2f} ms, p99 {p99:7.2f} ms"
            )
    for name in VIEWS:
        ratio = results[SIZES[-1]][name][1] / results[SIZES[0]][name][1]
        print(f"{name}: p99 1M / 1k: {ratio:.1f}")
    emit({"queues": {str(k): {n: v[1] for n, v in r.items()} for k, r in results.items()}})


if __name__ == "__main__":
    asyncio.run(main())
