"""Two `gcx web` processes behind one (imaginary) load balancer, a worker, PostgreSQL, Redis."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time

import httpx
import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services.accounts import create_user
from gcx_core.settings import Settings
from gcx_core.storage.tables import applications, notifications, status_changes
from gcx_core.system import Gcx
from gcx_core.testing.servers import free_port
from tests.scaleout.conftest import process_env, wait_http

PASSWORD = "correct horse battery staple"


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = await client.post(
        "/login", data={"_csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert done.status_code == 303, done.text
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


@pytest.fixture(name="cluster")
async def _cluster(gcx_database_url, gcx_redis_url, slow_sink, spawn):
    slow_sink.delay = 0.01
    secret = "two-webs-secret"
    settings = Settings(database_url=gcx_database_url, redis_url=gcx_redis_url, secret_key=secret)
    async with await Gcx.open(settings) as gcx:
        await create_user(
            gcx, "staff@two.example", Role.REVIEWER, Actor.system("t"), password=PASSWORD
        )
    ports = [free_port(), free_port()]
    env = process_env(
        gcx_database_url,
        gcx_redis_url,
        secret,
        slow_sink.port,
        GCX_RATE_LIMITS="off",
        GCX_STOP_TIMEOUT="5",
    )
    webs = []
    for n, port in enumerate(ports, 1):
        webs.append(
            await spawn(
                f"web-{n}",
                "web",
                "--port",
                str(port),
                env={**env, "GCX_BASE_URL": f"http://127.0.0.1:{ports[0]}"},
            )
        )
    worker = await spawn("worker", "worker", env=env)
    await worker.wait_for("worker ready")
    for port in ports:
        await wait_http(f"http://127.0.0.1:{port}/health/live")
    return [f"http://127.0.0.1:{p}" for p in ports], webs, worker, settings


async def counted(settings: Settings) -> dict[str, int]:
    async with await Gcx.open(settings) as gcx, gcx.database.read() as conn:
        apps = (
            await conn.execute(sa.select(sa.func.count()).select_from(applications))
        ).scalar_one()
        changes = (
            await conn.execute(sa.select(sa.func.count()).select_from(status_changes))
        ).scalar_one()
        outbox = (
            await conn.execute(sa.select(sa.func.count()).select_from(notifications))
        ).scalar_one()
    return {"applications": apps, "status_changes": changes, "notifications": outbox}


@pytest.mark.slow
async def test_both_webs_serve_and_live_updates_cross_processes(cluster) -> None:
    import websockets

    (first, second), _, _, settings = cluster
    async with httpx.AsyncClient(base_url=first) as one, httpx.AsyncClient(base_url=second) as two:
        cookie = await sign_in(one, "staff@two.example")
        async with (
            websockets.connect(
                first.replace("http", "ws") + "/ws/dashboard",
                origin=first,
                additional_headers={"Cookie": cookie},
            ) as dashboard,
            websockets.connect(
                first.replace("http", "ws") + "/ws/notifications",
                origin=first,
                additional_headers={"Cookie": cookie},
            ) as outbox,
        ):
            assert json.loads(await asyncio.wait_for(dashboard.recv(), 10))["type"] == "dashboard"
            assert json.loads(await asyncio.wait_for(outbox.recv(), 10))["type"] == "notifications"
            # Submissions spread over both processes.
            codes = []
            for n in range(10):
                client = one if n % 2 else two
                response = await client.post("/api/v1/applications", json=make_submission())
                assert response.status_code == 201
                codes.append(response.json()["tracking_code"])
            # An action made on web 2 reaches the dashboard open on web 1.
            await sign_in(two, "staff@two.example")
            listing = (await two.get("/api/v1/staff/applications")).json()
            target = listing["items"][0]
            response = await two.post(
                f"/api/v1/staff/applications/{target['id']}/actions/start_review",
                json={"version": target["version"]},
                headers={"x-csrftoken": two.cookies.get("gcx_csrf", "")},
            )
            assert response.status_code == 200, response.text

            async def until(socket, predicate):
                while True:
                    message = json.loads(await socket.recv())
                    if predicate(message):
                        return message

            seen = await asyncio.wait_for(
                until(
                    dashboard,
                    lambda m: any(
                        c["application_id"] == target["id"] and c["to"] == "under_review"
                        for c in m["data"].get("changes", [])
                    ),
                ),
                15,
            )
            assert seen["type"] == "dashboard"
            # A delivery outcome from the worker reaches web 1's notification stream.
            delivered = await asyncio.wait_for(
                until(outbox, lambda m: m["type"] == "notification"), 30
            )
            assert delivered["data"]["status"] in ("sent", "retrying", "dead")
    assert (await counted(settings))["applications"] == 10


@pytest.mark.slow
async def test_sigkill_of_a_web_mid_load_keeps_every_answered_submission(cluster) -> None:
    (first, second), webs, _, settings = cluster
    answered: list[str] = []

    async def submit(client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/api/v1/applications", json=make_submission())
        except httpx.TransportError:
            return  # the process died under this request: no answer, no promise
        if response.status_code == 201:
            answered.append(response.json()["tracking_code"])

    async with httpx.AsyncClient(base_url=second, timeout=30) as client:
        load = [asyncio.create_task(submit(client)) for _ in range(60)]
        while len(answered) < 10:
            await asyncio.sleep(0.01)
        webs[1].proc.send_signal(signal.SIGKILL)
        await asyncio.gather(*load)
    await webs[1].proc.wait()
    assert answered, "some submissions were answered before the kill"
    async with await Gcx.open(settings) as gcx, gcx.database.read() as conn:
        stored = set((await conn.execute(sa.select(applications.c.tracking_code))).scalars())
        # No partial application: each has its status change and its outbox rows.
        orphans = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(applications)
                .outerjoin(status_changes, status_changes.c.application_id == applications.c.id)
                .where(status_changes.c.id.is_(None))
            )
        ).scalar_one()
        silent = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(applications)
                .outerjoin(notifications, notifications.c.application_id == applications.c.id)
                .where(notifications.c.id.is_(None))
            )
        ).scalar_one()
    assert set(answered) <= stored, set(answered) - stored
    assert orphans == 0 and silent == 0
    # The other process never noticed.
    async with httpx.AsyncClient(base_url=first) as client:
        assert (
            await client.post("/api/v1/applications", json=make_submission())
        ).status_code == 201


@pytest.mark.slow
async def test_sigterm_of_a_web_finishes_requests_and_says_going_away(cluster) -> None:
    import websockets

    (first, _), webs, _, _ = cluster
    answers: list[int] = []

    async def submit(client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/api/v1/applications", json=make_submission())
            answers.append(response.status_code)
        except httpx.TransportError:
            answers.append(0)

    async with httpx.AsyncClient(base_url=first, timeout=30) as client:
        response = await client.post("/api/v1/applications", json=make_submission())
        code = response.json()["tracking_code"]
        socket = await websockets.connect(
            first.replace("http", "ws") + f"/ws/track/{code}", origin=first
        )
        await asyncio.wait_for(socket.recv(), 10)
        load = [asyncio.create_task(submit(client)) for _ in range(30)]
        await asyncio.sleep(0.05)
        began = time.monotonic()
        webs[0].proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*load)

        async def drain() -> None:
            while True:  # status messages may still come before the close
                await socket.recv()

        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(drain(), 15)
        await asyncio.wait_for(webs[0].proc.wait(), 20)
    took = time.monotonic() - began
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    assert took < 15, f"stopping took {took:.1f} s"
    # Requests that reached the process before the signal were answered in full.
    assert 201 in answers and all(status in (201, 0) for status in answers), answers
