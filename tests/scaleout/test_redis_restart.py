"""Redis restarted (and emptied) under a running scale-out set: everything comes back by itself."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.system import Gcx
from gcx_core.testing.servers import free_port
from gcx_notify import plugin as notify_plugin
from gcx_notify.runtime import Notifier
from tests.scaleout.conftest import outbox_statuses, process_env, scaleout_settings, wait_http

BEFORE, AFTER = 10, 10


@pytest.mark.slow
async def test_a_redis_restart_loses_nothing_and_live_updates_resume(
    gcx_settings, gcx_database_url, redis_service, slow_sink, spawn
):
    import websockets

    slow_sink.delay = 0.01
    settings = scaleout_settings(gcx_settings, redis_service.url, slow_sink.port)
    port = free_port()
    env = process_env(
        gcx_database_url,
        redis_service.url,
        settings.secret_key,
        slow_sink.port,
        GCX_RATE_LIMITS="off",
        GCX_BASE_URL=f"http://127.0.0.1:{port}",
    )
    web = await spawn("web", "web", "--port", str(port), env=env)
    worker = await spawn("worker", "worker", env=env)
    await worker.wait_for("worker ready")
    base = f"http://127.0.0.1:{port}"
    await wait_http(base + "/health/live")
    pm = make_plugin_manager(plugins=[notify_plugin], load_entry_points=False)
    async with (
        await Gcx.open(settings, plugin_manager=pm) as gcx,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        sweeper = Notifier(gcx)  # stands in for `gcx scheduler`'s minute sweep
        await sweeper.start(run_scheduler=False, kick=False)
        codes = []
        for _ in range(BEFORE):
            response = await client.post("/api/v1/applications", json=make_submission())
            assert response.status_code == 201
            codes.append(response.json()["tracking_code"])
        followed = codes[-1]
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/track/{followed}", origin=base
        ) as socket:
            first = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert first["type"] == "status"

            redis_service.restart()  # every key gone: the stream, the group, sessions, counters

            # The web process resubscribes by itself and sends the open socket a fresh status.
            again = json.loads(await asyncio.wait_for(socket.recv(), 30))
            assert again["type"] == "status" and again["data"]["tracking_code"] == followed
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text  # degraded at worst, never out
            for _ in range(AFTER):
                response = await client.post("/api/v1/applications", json=make_submission())
                assert response.status_code == 201, response.text

            # No notification lost: the sweep re-kicks what Redis forgot; the worker (which
            # recreates its consumer group) delivers everything.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                counts = await outbox_statuses(gcx)
                if set(counts) == {"sent"}:
                    break
                await sweeper.sweep()
                await asyncio.sleep(1)
            assert set(counts) == {"sent"}, counts
            assert sum(counts.values()) == BEFORE + AFTER  # one confirmation per application
        await sweeper.stop()

    assert (await asyncio.to_thread(lambda: None)) is None
    await worker.stop()
    await web.stop()
    for process in (web, worker):
        log = "\n".join(process.lines)
        assert log.count("Traceback") == 0, log[-4000:]
    assert any("consumer group" in line and "recreating" in line for line in worker.lines)
    assert web.proc.returncode in (0, -15) and worker.proc.returncode == 0
