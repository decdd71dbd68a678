"""SIGTERM on a busy worker: it stops within its bound and hands back what it could not send."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import httpx
import pytest

from gcx_core.entities import Actor
from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.system import Gcx
from gcx_core.testing.servers import free_port
from gcx_notify import plugin as notify_plugin
from gcx_notify.runtime import Notifier
from tests.scaleout.conftest import outbox_statuses, process_env, scaleout_settings

TOTAL = 30
GRACE = 2


@pytest.mark.slow
async def test_sigterm_on_a_busy_worker_finishes_or_hands_back_its_batch(
    gcx_settings, gcx_database_url, gcx_redis_url, slow_sink, spawn
):
    slow_sink.delay = 30  # every message takes longer than the worker's grace period
    metrics_port = free_port()
    settings = scaleout_settings(gcx_settings, gcx_redis_url, slow_sink.port)
    env = process_env(
        gcx_database_url,
        gcx_redis_url,
        settings.secret_key,
        slow_sink.port,
        GCX_STOP_TIMEOUT=str(GRACE),
        # A lease far longer than the test: rows come back because the worker hands them
        # back, not because their lease ran out.
        GCX_NOTIFICATION_LEASE_SECONDS="3600",
        GCX_METRICS_PORT=str(metrics_port),
    )
    pm = make_plugin_manager(plugins=[notify_plugin], load_entry_points=False)
    async with await Gcx.open(settings, plugin_manager=pm) as gcx:
        producer = Notifier(gcx)
        await producer.start(run_scheduler=False, kick=False)
        worker = await spawn("worker-1", "worker", "--concurrency", "4", env=env)
        await worker.wait_for("worker ready")
        for _ in range(TOTAL):
            await applications.submit(gcx, make_submission(), Actor.applicant())
        for _ in range(200):
            if (await outbox_statuses(gcx)).get("sending", 0) >= 4:
                break
            await asyncio.sleep(0.05)
        assert (await outbox_statuses(gcx)).get("sending", 0) >= 4, "the worker should be busy"
        # The worker's metrics, on its own port.
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert "gcx_delivery_seconds_bucket" in scraped or "gcx_deliveries_total" in scraped
        assert "gcx_notifications_oldest_due_seconds" in scraped

        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.proc.wait(), GRACE + 15)
        took = time.monotonic() - began
        assert worker.proc.returncode == 0, "\n".join(worker.lines[-30:])
        assert took < GRACE + 10, f"stopping took {took:.1f} s"
        assert any("went back to the outbox" in line for line in worker.lines), "\n".join(
            worker.lines
        )
        assert not any("Traceback" in line for line in worker.lines), "\n".join(worker.lines)
        counts = await outbox_statuses(gcx)
        assert counts.get("sending", 0) == 0, counts  # nothing left claimed by the dead worker

        slow_sink.delay = 0.01
        second = await spawn("worker-2", "worker", "--concurrency", "8", env=env)
        await second.wait_for("worker ready")
        for _ in range(120):
            await producer.sweep()
            counts = await outbox_statuses(gcx)
            if set(counts) == {"sent"}:
                break
            await asyncio.sleep(0.5)
        await second.stop()
        await producer.stop()
    assert set(counts) == {"sent"}, counts
    ids = Counter(m["Message-ID"] for m in slow_sink.messages)
    assert len(ids) == sum(counts.values())
    assert all(n == 1 for n in ids.values()), "a handed-back message is sent once"
