"""The dashboard's first message at 1k, 100k and 1M applications: it must not grow with them.

    python bench/bench_dashboard.py [--rounds 300]

For each size, a fresh embedded database gets that many applications in every status
(written by one SQL statement: the rows' contents do not matter to the dashboard, their
number and statuses do), the counters are reconciled as the scheduler would, and the work a
staff websocket does before its first message (`dashboard_data` and its JSON encoding) is
timed `--rounds` times in one process. The figure to watch is the 1M/1k ratio of the medians.
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

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit  # noqa: E402

from gcx_core.services.dashboard import reconcile_counters  # noqa: E402
from gcx_core.settings import Settings  # noqa: E402
from gcx_core.system import Gcx  # noqa: E402
from gcx_web.live.publisher import LiveMessage, dashboard_data  # noqa: E402

SIZES = (1_000, 100_000, 1_000_000)
STATUSES = (
    "pending_review",
    "under_review",
    "documents_requested",
    "approved",
    "rejected",
    "withdrawn",
)

# Every column the dashboard reads is realistic: statuses spread over the workflow, creation
# and status times spread over the last year, unique codes. The rest is filler.
INSERT = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO applications (
    tracking_code, status, version, revision, business_name, search_name, business_type,
    registration_number, tin, email, telephone, region, details, created_at, updated_at,
    status_changed_at
)
SELECT
    printf('GCX-B%03d-%04d-%04d', i / 100000000, (i / 10000) % 10000, i % 10000),
    CASE i % {len(STATUSES)} {" ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(STATUSES))} END,
    1, 1, 'Bench Farms ' || i || ' Ltd', 'bench farms ' || i || ' ltd', 'limited_company',
    'CS' || i, 'P' || i, 'bench' || i || '@example.com', '+233241234567', 'AA', '{{}}',
    strftime('%Y-%m-%d %H:%M:%f000', 'now', -(i % 365) || ' days', -(i % 86400) || ' seconds'),
    strftime('%Y-%m-%d %H:%M:%f000', 'now'),
    strftime('%Y-%m-%d %H:%M:%f000', 'now', -(i % 30) || ' days', -(i % 3600) || ' seconds')
FROM n
"""


async def measure(size: int, rounds: int) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix="gcx-bench-dashboard-"))
    settings = Settings(data_dir=data_dir, secret_key="bench-secret")
    async with await Gcx.open(settings, migrate=True):
        pass
    with sqlite3.connect(data_dir / "gcx.db") as db:
        db.execute(INSERT, {"count": size})
    async with await Gcx.open(settings) as gcx:
        await reconcile_counters(gcx)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            data = await dashboard_data(gcx, [])
            msgspec.json.encode(LiveMessage("dashboard", 0, gcx.now(), data))
            times.append((time.perf_counter() - started) * 1000)
        assert data["total"] == size, data["total"]
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="100 rounds per size")
    args = parser.parse_args()
    rounds = 100 if args.quick else args.rounds
    medians = {}
    for size in SIZES:
        medians[size] = await measure(size, rounds)
        print(f"dashboard first message, {size:>9,} applications: {medians[size]:.3f} ms median")
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    print(f"1M / 1k: {ratio:.2f}")
    emit({"dashboard": {str(k): v for k, v in medians.items()}})


if __name__ == "__main__":
    asyncio.run(main())
