"""Staff websockets and the staff API through Litestar's TestClient (the app's own loop).

Also: two web app instances on one real Redis, where an action on one reaches a websocket
on the other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.settings import Settings
from gcx_web import plugin as web_plugin
from gcx_web.app import create_app
from gcx_web.config import WebConfig, parse_rate_limits

ORIGIN = {"origin": "http://testserver.local"}
PASSWORD = "correct horse battery staple"


def make_app(settings: Settings) -> Any:
    return create_app(
        settings,
        make_plugin_manager(plugins=[web_plugin], load_entry_points=False),
        migrate=False,
        role="web" if settings.redis_url else "serve",
        config=WebConfig(rate_limits=parse_rate_limits("off")),
    )


def sign_in(client: TestClient, email: str) -> str:  # type: ignore[type-arg]
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"_csrf_token": token, "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(client.cookies.get("gcx_csrf"))


@pytest.fixture(name="reviewer_email")
async def _reviewer(gcx_staff: Any) -> str:
    from gcx_core.entities import Role

    user, _ = await gcx_staff(Role.REVIEWER)
    return str(user.email)


@pytest.fixture(name="client")
def _client(gcx_settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(make_app(gcx_settings)) as client:
        yield client


def submit(client: TestClient) -> int:  # type: ignore[type-arg]
    code = client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
    listed = client.get("/api/v1/staff/applications", params={"q": code}).json()
    return int(listed["items"][0]["id"])


def test_websockets_refuse_anonymous_and_foreign_origins(
    client: TestClient, reviewer_email: str
) -> None:  # type: ignore[type-arg]
    for path in ("/ws/dashboard", "/ws/notifications", "/ws/applications/1"):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(path, headers=ORIGIN) as ws,
        ):
            ws.receive_json(timeout=5)
        assert refused.value.code == 4401, path
    sign_in(client, reviewer_email)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/dashboard", headers={"origin": "https://evil.example"}) as ws,
    ):
        ws.receive_json(timeout=5)
    assert refused.value.code == 4403


def test_dashboard_delta_within_a_second_of_an_api_action(
    client: TestClient, reviewer_email: str
) -> None:  # type: ignore[type-arg]
    csrf = sign_in(client, reviewer_email)
    app_id = submit(client)
    with client.websocket_connect("/ws/dashboard", headers=ORIGIN) as ws:
        first = ws.receive_json(timeout=5)
        assert first["type"] == "dashboard"
        before = {s["status"]: s["count"] for s in first["data"]["statuses"]}
        assert round(sum(s["percent"] for s in first["data"]["statuses"]), 1) == 100.0
        response = client.post(
            f"/api/v1/staff/applications/{app_id}/actions/start_review",
            json={"version": 1},
            headers={"x-csrftoken": csrf},
        )
        assert response.status_code == 200, response.text
        # The submission's own snapshot may still be on its way: wait for the review's.
        changes: list[Any] = []
        for _ in range(10):  # a snapshot per change at most: a handful of messages
            message = ws.receive_json(timeout=5)
            assert message["type"] == "dashboard"
            changes = message["data"]["changes"]
            if any(c["action"] == "start_review" for c in changes):
                break
        else:
            pytest.fail("no dashboard message carried the review")
        change = next(c for c in changes if c["application_id"] == app_id)
        assert change.pop("at")  # when it happened, for "moved 2 s ago" and latency figures
        assert change == {
            "application_id": app_id,
            "action": "start_review",
            "from": "pending_review",
            "to": "under_review",
        }
        after = {s["status"]: s["count"] for s in message["data"]["statuses"]}
        assert after["under_review"] == before["under_review"] + 1
        assert after["pending_review"] == before["pending_review"] - 1


def test_application_socket_follows_changes(client: TestClient, reviewer_email: str) -> None:  # type: ignore[type-arg]
    csrf = sign_in(client, reviewer_email)
    app_id = submit(client)
    with client.websocket_connect(f"/ws/applications/{app_id}", headers=ORIGIN) as ws:
        assert ws.receive_json(timeout=5)["data"]["version"] == 1
        client.post(
            f"/api/v1/staff/applications/{app_id}/actions/start_review",
            json={"version": 1},
            headers={"x-csrftoken": csrf},
        )
        assert ws.receive_json(timeout=2)["type"] == "transition"


def test_staff_api(client: TestClient, reviewer_email: str) -> None:  # type: ignore[type-arg]
    csrf = sign_in(client, reviewer_email)
    app_id = submit(client)
    detail = client.get(f"/api/v1/staff/applications/{app_id}").json()
    assert detail["actions"] == ["start_review", "reject"]
    assert detail["application"]["business"]["name"]
    url = f"/api/v1/staff/applications/{app_id}/actions"
    # A session call without the CSRF header is refused.
    assert client.post(f"{url}/start_review", json={"version": 1}).status_code == 403
    assert (
        client.post(
            f"{url}/start_review", json={"version": 1}, headers={"x-csrftoken": csrf}
        ).status_code
        == 200
    )
    stale = client.post(
        f"{url}/reject",
        json={"version": 1, "reason_code": "other", "message": "x"},
        headers={"x-csrftoken": csrf},
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    unknown = client.post(f"{url}/fly", json={"version": 2}, headers={"x-csrftoken": csrf})
    assert unknown.status_code == 404
    bad = client.post(
        f"{url}/reject", json={"version": 2, "nonsense": 1}, headers={"x-csrftoken": csrf}
    )
    assert bad.status_code == 400
    refused = client.post(f"{url}/reject", json={"version": 2}, headers={"x-csrftoken": csrf})
    assert refused.status_code == 409 and "reason_code" in str(refused.json()["error"])
    # Retrying notifications is for admins.
    assert (
        client.post(
            "/api/v1/staff/notifications/retry",
            json={"all_dead": True},
            headers={"x-csrftoken": csrf},
        ).status_code
        == 403
    )
    assert client.get("/api/v1/staff/applications/999999").status_code == 404
    schema = client.get("/schema/openapi.json").json()
    assert "/api/v1/staff/applications/{app_id}/actions/{action}" in schema["paths"]


@pytest.fixture(name="redis_settings")
def _redis_settings(
    gcx_settings: Settings, gcx_postgres_database_url: str, gcx_redis_url: str
) -> Settings:
    return attrs.evolve(
        gcx_settings,
        database_url=gcx_postgres_database_url,
        redis_url=gcx_redis_url,
        broker_url=gcx_redis_url,
    )


async def test_two_web_instances_share_live_updates_through_redis(redis_settings: Settings) -> None:
    import asyncio

    from gcx_core.entities import Actor, Role
    from gcx_core.services.accounts import create_user
    from gcx_core.system import Gcx

    async with await Gcx.open(
        redis_settings, plugin_manager=make_plugin_manager(load_entry_points=False)
    ) as gcx:
        user, _ = await create_user(
            gcx, "two@staff.example", Role.REVIEWER, Actor.system("t"), password=PASSWORD
        )

    def run() -> None:
        with (
            TestClient(make_app(redis_settings)) as one,
            TestClient(make_app(redis_settings)) as two,
        ):
            csrf = sign_in(one, user.email)
            sign_in(two, user.email)
            app_id = submit(one)
            with two.websocket_connect("/ws/dashboard", headers=ORIGIN) as ws:
                assert ws.receive_json(timeout=5)["type"] == "dashboard"
                time.sleep(0.3)  # the subscription reaches Redis
                response = one.post(
                    f"/api/v1/staff/applications/{app_id}/actions/start_review",
                    json={"version": 1},
                    headers={"x-csrftoken": csrf},
                )
                assert response.status_code == 200
                changed: list[Any] = []
                deadline = time.monotonic() + 3
                while not changed and time.monotonic() < deadline:
                    message = ws.receive_json(timeout=3)
                    changed = [
                        c
                        for c in message["data"].get("changes", [])
                        if c["application_id"] == app_id and c["action"] == "start_review"
                    ]
                assert changed and changed[0]["to"] == "under_review"

    await asyncio.get_running_loop().run_in_executor(None, run)


async def test_a_web_process_hears_the_snapshots_other_processes_publish(
    redis_settings: Settings,
) -> None:
    """A web process's own counts that moved without a transition wait for the next snapshot
    from any process (heard through its channels) instead of broadcasting their own."""
    import asyncio

    import redis

    client = redis.Redis.from_url(redis_settings.redis_url)
    watch = client.pubsub(ignore_subscribe_messages=True)
    watch.subscribe("dashboard")

    def run() -> float:
        with TestClient(make_app(redis_settings)) as web:
            publisher = web.app.state.gcx.plugins.get_plugin("gcx_web.publisher")
            publisher.DELAY, publisher.COVERED_AFTER = 3.0, 0.05
            time.sleep(0.3)  # the subscription reaches Redis

            async def counts_moved() -> None:
                publisher.schedule_snapshot(urgent=False)

            web.blocking_portal.call(counts_moved)
            time.sleep(0.1)
            began = time.monotonic()
            client.publish("dashboard", b'{"type":"dashboard","seq":1}')  # another process's

            async def settled() -> None:
                await asyncio.wait_for(publisher.idle(), 10)

            web.blocking_portal.call(settled)
            return time.monotonic() - began

    try:
        took = await asyncio.get_running_loop().run_in_executor(None, run)
        assert took < 2  # it stopped waiting once it heard
        seen = []
        until = time.monotonic() + 1
        while time.monotonic() < until:
            message = watch.get_message(timeout=0.2)
            if message is not None:
                seen.append(message["data"])
        assert seen == [b'{"type":"dashboard","seq":1}']  # nothing of the web's own
    finally:
        watch.close()
        client.close()
