"""Size and rate limits: 413 for files over their limit, 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gcx_core.samples import make_submission
from gcx_core.services.queries import find_by_tracking_code
from gcx_core.storage.tables import applications, documents
from gcx_core.system import Gcx
from gcx_web.config import WebConfig, parse_rate_limits
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import UNKNOWN, count, csrf_of, error_of, submit_json


@pytest.fixture(name="gcx_settings")
def _small_uploads(gcx_settings: Any) -> Any:
    import attrs

    return attrs.evolve(gcx_settings, max_upload_bytes=4096)


async def test_oversize_upload_is_413(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    big = PDF + b"0" * 5000
    response = await client.post(
        f"/api/v1/applications/{code}/documents/tax_clearance", files={"file": ("big.pdf", big)}
    )
    error = error_of(response, 413)
    assert error["message"].endswith("the most this document may be is 4 KB")
    assert await count(gcx, documents) == 0


@pytest.fixture(name="gcx_web_config")
def _tight_limits() -> WebConfig:
    return WebConfig(
        rate_limits=parse_rate_limits(
            "submit=2/minute,lookup=3/minute,upload=1/hour,login=2/minute"
        )
    )


async def test_rate_limits_answer_429_with_retry_after(client: httpx.AsyncClient, gcx: Gcx) -> None:
    for _ in range(2):
        await submit_json(client, make_submission())
    limited = await client.post("/api/v1/applications", json=make_submission())
    error = error_of(limited, 429)
    assert error["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert await count(gcx, applications) == 2
    for _ in range(3):
        await client.get(f"/api/v1/applications/{UNKNOWN}")
    error_of(await client.get(f"/api/v1/applications/{UNKNOWN}"), 429)


async def test_too_many_multipart_parts_is_413(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    files = [(f"part{i}", (f"f{i}.pdf", PDF)) for i in range(60)]
    response = await client.post(
        f"/api/v1/applications/{code}/documents/tax_clearance", files=files
    )
    error_of(response, 413)
    assert await count(gcx, documents) == 0


async def test_sign_in_is_rate_limited(client: httpx.AsyncClient) -> None:
    from tests.gcx_web.conftest import csrf_of

    page = await client.get("/login")
    token = csrf_of(page.text)
    statuses = []
    for _ in range(4):
        response = await client.post(
            "/login", data={"_csrf_token": token, "email": "who@example.com", "password": "x"}
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 429, 429]
    assert int(response.headers["retry-after"]) >= 1


async def test_rate_limits_hold_per_process_while_redis_is_away() -> None:
    from redis.asyncio import Redis

    from gcx_core.testing.servers import free_port
    from gcx_web.security.ratelimit import RedisCounter

    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    counter = RedisCounter(redis)  # nothing listens there: every call fails over to memory
    try:
        counts = [(await counter.hit("submit:203.0.113.7", 60))[0] for _ in range(3)]
    finally:
        await redis.aclose()
    assert counts == [1, 2, 3]


def test_an_unreachable_redis_is_an_outage_not_a_bug() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from gcx_core.storage.database import database_unavailable
    from gcx_web.errors import describe

    body, headers = describe(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379"))
    assert (body.status, body.code, headers) == (503, "unavailable", {"Retry-After": "5"})
    assert not database_unavailable(ValueError("a bug"))


async def test_applicants_messages_are_rate_limited(client: httpx.AsyncClient, gcx: Gcx) -> None:
    from gcx_core.services import messages

    code = await submit_json(client, make_submission())
    track = f"/track/{code}"
    token = csrf_of((await client.get(track)).text)
    first = await client.post(f"{track}/messages", data={"_csrf_token": token, "body": "Hello"})
    assert first.status_code == 303
    second = await client.post(f"{track}/messages", data={"_csrf_token": token, "body": "Again"})
    assert second.status_code == 429 and 1 <= int(second.headers["retry-after"]) <= 3600
    app = await find_by_tracking_code(gcx, code)
    assert [m.body for m in await messages.thread(gcx, app.id)] == ["Hello"]
