"""`/metrics`: Prometheus text, guarded by a token or by coming straight from this machine."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

from gcx_core.samples import make_submission
from gcx_core.settings import Settings
from tests.gcx_web.conftest import submit_json


def value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(pattern, text)
    assert found, f"{name}{{{want}}} not in metrics:\n" + "\n".join(
        line for line in text.splitlines() if line.startswith(name)
    )
    return float(found.group(1))


@pytest.fixture(name="local")
async def _local(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on this machine (the app's test client is a remote address)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as local:
        yield local


async def test_metrics_count_requests_and_read_the_outbox(
    client: httpx.AsyncClient, local: httpx.AsyncClient
) -> None:
    await submit_json(client, make_submission())
    await client.get("/api/v1/applications/GCX-AAAA-BBBB-CCCC")
    assert (await client.get("/metrics")).status_code == 404  # not from another machine
    response = await local.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert (
        value(
            text,
            "gcx_http_requests_total",
            method="POST",
            route="/api/v1/applications",
            status="201",
        )
        == 1
    )
    assert (
        value(
            text,
            "gcx_http_requests_total",
            method="GET",
            route="/api/v1/applications/{tracking_code}",
            status="404",
        )
        == 1
    )
    assert "gcx_http_request_seconds_bucket" in text
    assert value(text, "gcx_applications", status="pending_review") == 1
    assert value(text, "gcx_notifications", status="pending") >= 1
    assert "gcx_notifications_oldest_due_seconds" in text
    assert "set-cookie" not in response.headers


async def test_metrics_refuse_whoever_came_through_a_proxy(local: httpx.AsyncClient) -> None:
    proxied = await local.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
    assert proxied.status_code == 404


class TestWithAToken:
    @pytest.fixture(name="gcx_settings")
    def _with_token(self, gcx_settings: Settings) -> Settings:
        return attrs.evolve(gcx_settings, metrics_token="scrape-me")

    async def test_a_configured_token_is_required(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 404
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 404
        right = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        assert right.status_code == 200 and "gcx_http_requests_total" in right.text


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/v1/applications/GCX-AAAA-BBBB-CCCC")
    second = await client.get("/api/v1/applications/GCX-AAAA-BBBB-CCCC")
    assert re.fullmatch(r"[0-9a-f]{16}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    given = await client.get("/track", headers={"x-request-id": "lb-7f3a.91"})
    assert given.headers["x-request-id"] == "lb-7f3a.91"
    odd = await client.get("/track", headers={"x-request-id": "<script>"})
    assert odd.headers["x-request-id"] != "<script>"
