"""The applicant's live status socket (Litestar's TestClient: it runs the app in its own loop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.settings import Settings
from gcx_web import plugin as web_plugin
from gcx_web.app import create_app
from gcx_web.config import WebConfig, parse_rate_limits
from tests.gcx_web.conftest import withdrawal_tokens


@pytest.fixture(name="client")
def _client(gcx_settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(
        gcx_settings,
        make_plugin_manager(plugins=[web_plugin], load_entry_points=False),
        migrate=False,
        config=WebConfig(
            rate_limits=parse_rate_limits("off"), allowed_origins=("https://gcx.example",)
        ),
    )
    with TestClient(app) as client:
        yield client


def test_status_now_then_after_every_change(client: TestClient) -> None:  # type: ignore[type-arg]
    code = client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
    with client.websocket_connect(
        f"/ws/track/{code}", headers={"origin": "http://testserver.local"}
    ) as ws:
        first = ws.receive_json(timeout=5)
        assert first["type"] == "status"
        assert first["data"]["status"] == "pending_review"
        url = f"/api/v1/applications/{code}/withdraw"
        assert client.post(url, json={"confirm": True}).status_code == 202
        # The link's token, read in the app's own loop.
        (token,) = client.blocking_portal.call(withdrawal_tokens, client.app.state.gcx, code)
        assert client.post(f"{url}/confirm", json={"token": token}).status_code == 200
        update = ws.receive_json(timeout=5)
        assert update["data"]["status"] == "withdrawn"
        assert update["data"]["can_withdraw"] is False


def test_an_allowed_origin_may_connect(client: TestClient) -> None:  # type: ignore[type-arg]
    code = client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
    with client.websocket_connect(
        f"/ws/track/{code}", headers={"origin": "https://gcx.example"}
    ) as ws:
        assert ws.receive_json(timeout=5)["data"]["tracking_code"] == code


def test_foreign_origins_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    code = client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(
            f"/ws/track/{code}", headers={"origin": "https://evil.example"}
        ) as ws,
    ):
        ws.receive_json(timeout=5)
    assert refused.value.code == 4403


def test_unknown_codes_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/track/GCX-0000-0000-0000") as ws,
    ):
        ws.receive_json(timeout=5)
    assert refused.value.code == 4404


def test_the_thread_arrives_live_and_notes_never_do(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    from gcx_core.entities import Actor, Role
    from gcx_core.services import accounts, messages, notes

    code = client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
    gcx = client.app.state.gcx

    async def staff() -> Actor:
        user, _ = await accounts.create_user(
            gcx,
            "live@staff.example.com",
            Role.REVIEWER,
            Actor.system("test"),
            password="correct horse battery staple",
        )
        return Actor.for_user(user)

    reviewer = client.blocking_portal.call(staff)
    with client.websocket_connect(
        f"/ws/track/{code}", headers={"origin": "http://testserver.local"}
    ) as ws:
        assert ws.receive_json(timeout=5)["data"]["messages"] == []
        client.blocking_portal.call(
            notes.add_note, gcx, code, reviewer, "Internal: zebra-7731 checks pending"
        )
        after_note = ws.receive_json(timeout=5)
        assert "zebra-7731" not in str(after_note)
        client.blocking_portal.call(
            messages.write_to_applicant, gcx, code, reviewer, "When can we visit?"
        )
        update = ws.receive_json(timeout=5)
        (message,) = update["data"]["messages"]
        assert message["from"] == "staff" and message["body"] == "When can we visit?"
        assert "zebra-7731" not in str(update)
