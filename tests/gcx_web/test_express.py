"""The express lane for status lookups: Litestar's answer, sooner, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
from litestar import Litestar

from gcx_core.context import Gcx
from gcx_core.samples import make_submission
from gcx_web import express
from gcx_web.app import create_app
from gcx_web.config import WebConfig, parse_rate_limits
from gcx_web.ratelimit import scope_address
from tests.gcx_web.conftest import running, submit_json
from tests.gcx_web.test_api import UNKNOWN, error_of


def scope(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
        **extra,
    }


async def answer(app: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(request, receive, send)
    return sent


async def test_the_lane_answers_exactly_what_the_route_answers(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    code = await submit_json(client, make_submission())
    lane = app.express  # type: ignore[attr-defined]
    served: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        served.append(message)

    assert await lane(scope(f"/api/v1/applications/{code}"), keep)
    app.express = None  # type: ignore[attr-defined]
    by_litestar = await answer(app, scope(f"/api/v1/applications/{code}"))
    assert served == by_litestar
    assert served[0]["status"] == 200 and b'"status":"pending_review"' in served[1]["body"]


@pytest.mark.parametrize(
    "request_scope",
    [
        scope("/api/v1/applications/GCX-0000-0000-0000"),  # unknown: Litestar's 404
        scope("/api/v1/applications/not-a-code"),
        scope("/api/v1/applications/"),
        scope("/api/v1/applications/{code}/outstanding"),
        scope("/api/v1/applications/{code}/"),
        scope("/api/v1/applications/{code}", method="HEAD"),
        scope("/api/v1/applications/{code}", method="POST"),
        scope("/api/v1/applications/{code}", root_path="/gcx"),
        scope("/track/{code}"),
    ],
)
async def test_everything_else_is_left_to_litestar(
    app: Litestar, client: httpx.AsyncClient, request_scope: dict[str, Any]
) -> None:
    code = await submit_json(client, make_submission())
    request_scope["path"] = request_scope["path"].replace("{code}", code)
    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    assert not await app.express(request_scope, keep)  # type: ignore[attr-defined]
    assert sent == []


async def test_nothing_is_answered_before_the_app_started(gcx: Gcx) -> None:
    app = create_app(gcx=gcx, config=WebConfig(rate_limits=parse_rate_limits("off")))

    async def never(message: Any) -> None:
        raise AssertionError(message)

    assert not await app.express(scope("/api/v1/applications/" + UNKNOWN), never)  # type: ignore[attr-defined]


async def test_a_failure_in_the_lane_is_handed_to_litestar(
    app: Litestar, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = await submit_json(client, make_submission())

    async def broken(gcx: Gcx, code: str) -> Any:
        raise RuntimeError("the lane's own lookup failed")

    monkeypatch.setattr(express, "applicant_view", broken)
    response = await client.get(f"/api/v1/applications/{code}")  # Litestar's route, unbroken
    assert response.status_code == 200 and response.json()["tracking_code"] == code


async def test_a_lookup_in_the_lane_counts_as_a_request_in_progress(
    app: Litestar, client: httpx.AsyncClient, gcx: Gcx, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = await submit_json(client, make_submission())
    seen: list[int] = []
    original = express.applicant_view

    async def watched(gcx: Gcx, code: str) -> Any:
        seen.append(gcx.foreground.in_progress)
        return await original(gcx, code)

    monkeypatch.setattr(express, "applicant_view", watched)
    assert (await client.get(f"/api/v1/applications/{code}")).status_code == 200
    assert seen == [1] and gcx.foreground.in_progress == 0


class TestRateLimits:
    @pytest.fixture(name="web_config")
    def _three_lookups(self) -> WebConfig:
        return WebConfig(rate_limits=parse_rate_limits("lookup=3/minute"))

    async def test_each_lookup_counts_once_whoever_answers_it(
        self, client: httpx.AsyncClient
    ) -> None:
        code = await submit_json(client, make_submission())
        known, unknown = f"/api/v1/applications/{code}", f"/api/v1/applications/{UNKNOWN}"
        statuses = [(await client.get(path)).status_code for path in (known, unknown, known)]
        assert statuses == [200, 404, 200]
        limited = await client.get(known)  # the fourth: Litestar's 429, Retry-After and all
        assert error_of(limited, 429)["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert "nosniff" in limited.headers["x-content-type-options"]


class TestBehindAProxy:
    @pytest.fixture(name="gcx_settings")
    def _trusting_loopback(self, gcx_settings: Any) -> Any:
        return attrs.evolve(gcx_settings, trusted_proxies=("127.0.0.0/8",))

    @pytest.fixture(name="app")
    async def _app(self, gcx: Gcx) -> AsyncIterator[Litestar]:
        config = WebConfig(rate_limits=parse_rate_limits("lookup=2/minute"))
        app = create_app(gcx=gcx, config=config)
        async with running(app):
            yield app

    @pytest.fixture(name="client")
    async def _client(self, app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    async def test_clients_behind_a_trusted_proxy_have_a_budget_each(
        self, client: httpx.AsyncClient, gcx: Gcx
    ) -> None:
        from gcx_core.entities import Actor
        from gcx_core.services import applications

        code = (await applications.submit(gcx, make_submission(), Actor.applicant())).tracking_code
        url = f"/api/v1/applications/{code}"

        async def status(client_ip: str) -> int:
            response = await client.get(url, headers={"x-forwarded-for": f"{client_ip}, 127.0.0.2"})
            return response.status_code

        assert [await status("198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert [await status("198.51.100.2") for _ in range(2)] == [200, 200]


def test_the_scope_address_is_the_connection_address() -> None:
    from litestar.connection import ASGIConnection

    from gcx_web.ratelimit import client_address, parse_networks

    trusted = parse_networks(["10.0.0.0/8"])
    cases = [
        scope("/", client=("203.0.113.9", 1)),
        scope("/", client=("10.1.1.1", 1), headers=[(b"x-forwarded-for", b"198.51.100.4")]),
        scope("/", client=("10.1.1.1", 1), headers=[(b"x-forwarded-for", b"1.2.3.4, 10.9.9.9")]),
        scope("/", client=("10.1.1.1", 1), headers=[]),
        scope("/", client=None),
    ]
    for case in cases:
        expected = client_address(ASGIConnection(case), trusted)
        assert scope_address(case, trusted) == expected
        assert scope_address(case, ()) == client_address(ASGIConnection(case), ())
