"""Two `gcx scheduler` processes on one Redis and one database never double a scheduled run."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
import sqlalchemy as sa

from gcx_core.storage.database import Database
from gcx_core.storage.tables import job_runs

RUN_FOR = 125  # seconds: at least two minute boundaries, so every-minute schedules fire twice
SLOT = re.compile(r"schedule (\S+) slot (\S+): (sent|already sent by another scheduler)")


@pytest.mark.slow
async def test_two_schedulers_send_each_slot_once(gcx_database_url, gcx_redis_url, spawn):
    env = {
        "GCX_DATABASE_URL": gcx_database_url,
        "GCX_REDIS_URL": gcx_redis_url,
        "GCX_SECRET_KEY": "two-schedulers-test",
    }
    first = await spawn("scheduler-1", "scheduler", env=env)
    second = await spawn("scheduler-2", "scheduler", env=env)
    await first.wait_for("scheduler ready")
    await second.wait_for("scheduler ready")
    await asyncio.sleep(RUN_FOR)
    await first.stop()
    await second.stop()

    outcomes: Counter[tuple[str, str, str]] = Counter()
    for process in (first, second):
        for line in process.lines:
            if match := SLOT.search(line):
                outcomes[match.groups()] += 1
    sent = Counter(
        (schedule, slot)
        for (schedule, slot, what), n in outcomes.items()
        if what == "sent"
        for _ in range(n)
    )
    skipped = sum(n for (_, _, what), n in outcomes.items() if what != "sent")
    sweep_slots = [slot for (schedule, slot) in sent if schedule == "gcx.sweep"]
    print(f"\nsent: {sorted(sent.items())}; skipped by the other scheduler: {skipped}")
    assert len(sweep_slots) >= 2, "two minutes should hold at least two sweep slots"
    assert set(sent.values()) == {1}, "each schedule slot was sent exactly once"
    assert skipped >= len(sweep_slots), "the other scheduler saw each slot taken"

    db = Database.from_url(gcx_database_url)
    async with db.read() as conn:
        keys = [k for (k,) in await conn.execute(sa.select(job_runs.c.run_key))]
    await db.dispose()
    assert sorted(keys) == sorted(f"{schedule}:{slot}" for schedule, slot in sent)
