"""The express lane for lookups and submissions: Litestar's answer, sooner, and nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar

from gcx_core.context import Gcx
from gcx_core.samples import make_submission
from gcx_core.storage.tables import applications as applications_table
from gcx_core.storage.tables import audit_log
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


async def nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


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

    assert await lane(scope(f"/api/v1/applications/{code}"), nothing, keep) is None
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

    assert await app.express(request_scope, nothing, keep) is nothing  # type: ignore[attr-defined]
    assert sent == []


async def test_nothing_is_answered_before_the_app_started(gcx: Gcx) -> None:
    app = create_app(gcx=gcx, config=WebConfig(rate_limits=parse_rate_limits("off")))

    async def never(message: Any) -> None:
        raise AssertionError(message)

    lookup = scope("/api/v1/applications/" + UNKNOWN)
    assert await app.express(lookup, nothing, never) is nothing  # type: ignore[attr-defined]


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


# Submissions


def post(body: bytes, *, chunks: int = 1, **headers: bytes) -> tuple[dict[str, Any], Any]:
    """A scope for POST /api/v1/applications and a `receive` giving `body` in `chunks` parts."""
    fields = {"content-type": b"application/json", "content-length": b"%d" % len(body)}
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    request = scope("/api/v1/applications", method="POST")
    request["headers"] = [(b"host", b"testserver")] + [
        (k.encode(), v) for k, v in fields.items() if v is not None
    ]
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return request, receive


async def stored(gcx: Gcx) -> int:
    from tests.gcx_web.test_api import count

    return await count(gcx, applications_table)


async def test_a_submission_in_the_lane_is_answered_as_the_route_answers(
    app: Litestar, gcx: Gcx
) -> None:
    lane = app.express  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        sent.append(message)

    request, receive = post(json.dumps(make_submission()).encode(), chunks=3)
    assert await lane(request, receive, keep) is None
    app.express = None  # type: ignore[attr-defined]
    request, receive = post(json.dumps(make_submission()).encode())
    by_litestar: list[dict[str, Any]] = []

    async def also_keep(message: dict[str, Any]) -> None:
        by_litestar.append(message)

    await app(request, receive, also_keep)
    assert [m["status"] for m in (sent[0], by_litestar[0])] == [201, 201]

    def named(message: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in message["headers"] if k != b"content-length"]

    assert named(sent[0]) == named(by_litestar[0])
    mine, theirs = json.loads(sent[1]["body"]), json.loads(by_litestar[1]["body"])
    assert mine.keys() == theirs.keys() and mine["status"] == theirs["status"] == "pending_review"
    assert mine["status_url"] == f"/api/v1/applications/{mine['tracking_code']}"
    assert await stored(gcx) == 2


async def test_the_lane_records_the_client_s_address(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    async with gcx.database.read() as conn:
        addresses = (
            await conn.execute(
                sa.select(audit_log.c.client_address).where(audit_log.c.action == "submit")
            )
        ).scalars()
        assert list(addresses) == ["203.0.113.7"]
    assert (await client.get(f"/api/v1/applications/{code}")).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"business": ', 400, None),  # not JSON
        (json.dumps({**make_submission(), "surprise": 1}).encode(), 400, "surprise"),
        (json.dumps(make_submission(**{"business.tin": "?"})).encode(), 422, "business.tin"),
    ],
)
async def test_a_refused_submission_is_answered_by_litestar_from_the_same_body(
    app: Litestar, gcx: Gcx, body: bytes, status: int, field: str | None
) -> None:
    request, receive = post(body, chunks=2)
    sent: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        sent.append(message)

    replay = await app.express(request, receive, keep)  # type: ignore[attr-defined]
    assert replay is not None and sent == []
    app.express = None  # type: ignore[attr-defined]
    await app(request, replay, keep)  # what the app does next: Litestar, on the replayed body
    assert sent[0]["status"] == status
    error = json.loads(sent[1]["body"])["error"]
    assert error["status"] == status
    if field:
        assert field in json.dumps(error["fields"])
    assert await stored(gcx) == 0


async def test_a_duplicate_is_refused_by_litestar(client: httpx.AsyncClient, gcx: Gcx) -> None:
    body = make_submission()
    assert (await client.post("/api/v1/applications", json=body)).status_code == 201
    again = await client.post("/api/v1/applications", json=body)
    assert again.status_code == 409
    assert set(again.json()["error"]["fields"]) == {"contact.email", "business.tin"}
    assert await stored(gcx) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"content_type": None},
        {"content_type": b"text/plain"},
        {"content_type": b"application/jsonx"},
        {"content_length": None},  # chunked: Litestar reads it
        {"content_length": b"2000000"},  # over the limit: Litestar's 413
        {"content_length": b"12x"},
    ],
)
async def test_bodies_the_lane_does_not_take(app: Litestar, headers: dict[str, Any]) -> None:
    request, receive = post(json.dumps(make_submission()).encode(), **headers)

    async def never(message: Any) -> None:
        raise AssertionError(message)

    assert await app.express(request, receive, never) is receive  # type: ignore[attr-defined]


async def test_a_body_over_the_limit_or_cut_short_goes_to_litestar_whole(
    app: Litestar, gcx: Gcx
) -> None:
    lane = app.express  # type: ignore[attr-defined]
    body = json.dumps(make_submission()).encode()

    async def never(message: Any) -> None:
        raise AssertionError(message)

    # It says it is short but keeps coming: the lane stops at its limit and hands all over.
    lane.max_body = 100
    request, receive = post(body, chunks=10, content_length=b"50")
    replay = await lane(request, receive, never)
    assert replay is not None
    again = [await replay() for _ in range(10)]
    assert b"".join(m["body"] for m in again) == body and not again[-1]["more_body"]
    # The client goes away mid-body.
    lane.max_body = 1_000_000
    request, _ = post(body, chunks=2)
    first = {"type": "http.request", "body": body[:10], "more_body": True}
    messages = [first, {"type": "http.disconnect"}]

    async def receive_then_leave() -> dict[str, Any]:
        return messages.pop(0)

    replay = await lane(request, receive_then_leave, never)
    assert [await replay(), await replay()] == [first, {"type": "http.disconnect"}]
    assert await stored(gcx) == 0


class TestSubmissionLimits:
    @pytest.fixture(name="web_config")
    def _three_submissions(self) -> WebConfig:
        return WebConfig(rate_limits=parse_rate_limits("submit=3/minute"))

    async def test_each_submission_counts_once_whoever_answers_it(
        self, client: httpx.AsyncClient, gcx: Gcx
    ) -> None:
        invalid = make_submission(**{"business.tin": "?"})
        statuses = [
            (await client.post("/api/v1/applications", json=body)).status_code
            for body in (make_submission(), invalid, make_submission())
        ]
        assert statuses == [201, 422, 201]
        limited = await client.post("/api/v1/applications", json=make_submission())
        assert error_of(limited, 429)["code"] == "rate_limited"
        assert await stored(gcx) == 2
