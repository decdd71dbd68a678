"""A worker killed with SIGKILL mid-backlog loses nothing; duplicates only for in-flight mail."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest

from gcx_core.entities import Actor
from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.system import Gcx
from gcx_notify import plugin as notify_plugin
from gcx_notify.runtime import Notifier
from tests.scaleout.conftest import outbox_statuses, process_env, scaleout_settings

TOTAL = 240
CONCURRENCY = 8
LEASE = 3


@pytest.mark.slow
async def test_sigkill_of_a_worker_loses_no_notification(
    gcx_settings, gcx_database_url, gcx_redis_url, slow_sink, spawn
):
    settings = scaleout_settings(
        gcx_settings, gcx_redis_url, slow_sink.port, notification_lease_seconds=LEASE
    )
    env = process_env(
        gcx_database_url,
        gcx_redis_url,
        settings.secret_key,
        slow_sink.port,
        GCX_NOTIFICATION_LEASE_SECONDS=str(LEASE),
    )
    pm = make_plugin_manager(plugins=[notify_plugin], load_entry_points=False)
    async with await Gcx.open(settings, plugin_manager=pm) as gcx:
        producer = Notifier(gcx)  # the web process's side: it only kicks tasks onto Redis
        await producer.start(run_scheduler=False, kick=False)
        for _ in range(TOTAL):
            await applications.submit(gcx, make_submission(), Actor.applicant())
        worker = await spawn("worker-1", "worker", "--concurrency", str(CONCURRENCY), env=env)
        await worker.wait_for("worker ready")

        async def until(predicate, timeout):
            async def poll():
                while not predicate():
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(poll(), timeout)

        await until(lambda: len(slow_sink.messages) >= TOTAL // 4, 60)
        await worker.stop(signal.SIGKILL)
        delivered_before_kill = len(slow_sink.messages)
        assert delivered_before_kill < TOTAL, "the worker finished before it could be killed"

        second = await spawn("worker-2", "worker", "--concurrency", str(CONCURRENCY), env=env)
        await second.wait_for("worker ready")
        # What the scheduler's sweep does every minute: re-kick rows whose lease ran out.
        for _ in range(60):
            counts = await outbox_statuses(gcx)
            if counts.get("sent", 0) == TOTAL:
                break
            await asyncio.sleep(1)
            await producer.sweep()
        await second.stop()
        await producer.stop()
        counts = await outbox_statuses(gcx)

    ids = Counter(m["Message-ID"] for m in slow_sink.messages)
    duplicates = {mid: n for mid, n in ids.items() if n > 1}
    print(
        f"\ndelivered before SIGKILL: {delivered_before_kill}; messages received: "
        f"{len(slow_sink.messages)}; distinct: {len(ids)}; duplicates: {len(duplicates)} "
        f"{sorted(duplicates)}"
    )
    assert counts == Counter({"sent": TOTAL}), counts
    assert len(ids) == TOTAL, "every notification reached the SMTP server"
    # Only messages in flight at the kill may arrive twice, and a copy keeps its Message-ID.
    assert len(duplicates) <= CONCURRENCY
    assert all(n == 2 for n in duplicates.values())
