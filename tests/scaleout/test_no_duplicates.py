"""Without any fault, nothing is sent twice: not by two workers, not by a sweep during a load."""

from __future__ import annotations

import asyncio
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

TOTAL = 150


@pytest.mark.slow
async def test_each_notification_is_sent_once_by_two_workers_and_busy_sweeps(
    gcx_settings, gcx_database_url, gcx_redis_url, slow_sink, spawn
):
    slow_sink.delay = 0.02
    settings = scaleout_settings(gcx_settings, gcx_redis_url, slow_sink.port)
    env = process_env(gcx_database_url, gcx_redis_url, settings.secret_key, slow_sink.port)
    workers = [await spawn(f"worker-{n}", "worker", env=env) for n in (1, 2)]
    for worker in workers:
        await worker.wait_for("worker ready")
    pm = make_plugin_manager(plugins=[notify_plugin], load_entry_points=False)
    async with await Gcx.open(settings, plugin_manager=pm) as gcx:
        web_side = Notifier(gcx)  # kicks each commit's rows, as a web process does
        await web_side.start(run_scheduler=False, kick=False)
        for _ in range(TOTAL):
            await applications.submit(gcx, make_submission(), Actor.applicant())
            await web_side.sweep()  # a sweep in the middle of the load, again and again
        for _ in range(120):
            counts = await outbox_statuses(gcx)
            if set(counts) == {"sent"}:
                break
            await web_side.sweep()
            await asyncio.sleep(0.5)
        await web_side.stop()
    assert set(counts) == {"sent"}, counts
    ids = Counter(m["Message-ID"] for m in slow_sink.messages)
    assert len(ids) == TOTAL
    assert max(ids.values()) == 1, {k: n for k, n in ids.items() if n > 1}
