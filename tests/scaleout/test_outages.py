"""Services taken away under a running `gcx web`: clear answers, and recovery without restarts."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gcx_core.samples import make_submission
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from gcx_core.testing.servers import free_port
from tests.scaleout.conftest import wait_http


async def migrate(url: str) -> None:
    async with await Gcx.open(Settings(database_url=url, secret_key="x"), migrate=True):
        pass


@pytest.mark.slow
async def test_a_postgresql_outage_is_503s_then_recovers_by_itself(
    pg_service, gcx_redis_url, spawn
):
    await migrate(pg_service.url)
    port = free_port()
    web = await spawn(
        "web",
        "web",
        "--port",
        str(port),
        env={
            "GCX_DATABASE_URL": pg_service.url,
            "GCX_REDIS_URL": gcx_redis_url,
            "GCX_SECRET_KEY": "outage-test-secret",
            "GCX_RATE_LIMITS": "off",
        },
    )
    base = f"http://127.0.0.1:{port}"
    await wait_http(base + "/health/live")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (
            await client.post("/api/v1/applications", json=make_submission())
        ).status_code == 201
        assert (await client.get("/health/ready")).status_code == 200

        pg_service.stop()
        outage_started = time.monotonic()
        answers = []
        while time.monotonic() - outage_started < 10:  # ten seconds without the database
            began = time.monotonic()
            response = await client.post("/api/v1/applications", json=make_submission())
            answers.append((response, time.monotonic() - began))
            await asyncio.sleep(0.2)
        ready = await client.get("/health/ready")
        page = await client.get("/track/GCX-AAAA-BBBB-CCCC")
        pg_service.start()

        statuses = {r.status_code for r, _ in answers}
        assert statuses == {503}, statuses
        for response, took in answers:
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"]["code"] == "unavailable"
            assert took < 12, f"a request waited {took:.1f} s"  # a clear answer, not a hang
        assert ready.status_code == 503 and "database" in ready.json()["checks"]
        assert page.status_code == 503 and "try again" in page.text

        # Back by itself: no restart of the web process.
        deadline = time.monotonic() + 30
        while True:
            response = await client.post("/api/v1/applications", json=make_submission())
            if response.status_code == 201 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert response.status_code == 201, response.text
        assert (await client.get("/health/ready")).status_code == 200
    await web.stop()
    log = "\n".join(web.lines)
    assert "Traceback" not in log, log[-3000:]
    # One line per ten seconds of outage, not one per request.
    assert 1 <= log.count("database unavailable") <= 3, log[-3000:]
    # uvicorn shuts down gracefully, then ends by the signal it was given.
    assert web.proc.returncode in (0, -15)
