"""Applications left in a state whose plugin is no longer loaded (GCX_DISABLE_PLUGINS, an
uninstall): shown as an unknown state everywhere, refused every action with a clear error,
counted on the dashboard, and named in a warning when the process starts."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from gcx_core.entities import Actor, Role
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.system import Gcx
from gcx_core.testing import running_app
from gcx_core.workflow import State, Transition
from gcx_web import plugin as web_plugin
from gcx_web.app import create_app
from tests.gcx_web.test_backoffice import sign_in


class Hold:
    @hookimpl
    def gcx_register_workflow(self, builder: Any) -> None:
        builder.add_state(State("on_hold", "On hold"))
        builder.add_transition(Transition("hold", frozenset({"under_review"}), "on_hold", "review"))


@pytest.fixture(name="gcx_extra_plugins")
def _plugins() -> list[object]:
    return [Hold()]


@pytest.fixture(name="held")
async def _held(gcx: Gcx, gcx_staff: Any) -> Any:
    admin, actor = await gcx_staff(Role.ADMIN)
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    app = await applications.act(gcx, app.id, "start_review", actor)
    app = await applications.act(gcx, app.id, "hold", actor)
    return admin, app


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(name="warnings")
def _warnings() -> Any:
    handler = Recorded()
    logger = logging.getLogger("gcx_core.workflow")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(name="without_plugin")
async def _without_plugin(gcx: Gcx, gcx_web_config: Any, held: Any, warnings: Any) -> Any:
    """The same database served by a process that does not load Hold."""
    pm = make_plugin_manager(plugins=[web_plugin], load_entry_points=False)
    other = await Gcx.open(gcx.settings, plugin_manager=pm, clock=gcx.clock)
    app = create_app(gcx=other, config=gcx_web_config)
    async with running_app(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    await other.close()


async def test_the_start_warns_about_applications_in_unknown_states(
    without_plugin: httpx.AsyncClient, warnings: list[str]
) -> None:
    warned = [m for m in warnings if "on_hold" in m]
    assert warned and "no installed plugin defines" in warned[0] and "1 application" in warned[0]


async def test_pages_and_api_show_the_unknown_state(
    without_plugin: httpx.AsyncClient, held: Any
) -> None:
    admin, app = held
    client = without_plugin
    public = await client.get(f"/api/v1/applications/{app.tracking_code}")
    assert public.status_code == 200, public.text
    assert public.json()["status"] == "on_hold"
    track = await client.get(f"/track/{app.tracking_code}")
    assert track.status_code == 200 and "on_hold" in track.text
    assert (await sign_in(client, admin.email)).status_code == 303
    staff = await client.get(f"/api/v1/staff/applications/{app.id}")
    assert staff.status_code == 200, staff.text
    assert staff.json()["actions"] == []
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert page.status_code == 200, page.text
    assert "On hold (unknown status)" in page.text
    listing = await client.get("/backoffice/applications")
    assert listing.status_code == 200 and app.tracking_code in listing.text
    dashboard = await client.get("/backoffice/")
    assert dashboard.status_code == 200 and "(unknown status)" in dashboard.text


async def test_actions_on_an_unknown_state_are_refused_clearly(
    without_plugin: httpx.AsyncClient, held: Any
) -> None:
    admin, app = held
    client = without_plugin
    assert (await sign_in(client, admin.email)).status_code == 303
    csrf = client.cookies["gcx_csrf"]
    response = await client.post(
        f"/api/v1/staff/applications/{app.id}/actions/reject",
        json={"version": app.version, "reason_code": "other", "message": "x"},
        headers={"x-csrftoken": csrf},
    )
    assert response.status_code == 409, response.text
    assert "on_hold" in response.text and "no installed plugin" in response.text


async def test_a_plugin_state_sits_among_the_open_ones_on_the_dashboard(gcx: Gcx) -> None:
    from gcx_core.services import dashboard

    names = [s.status for s in (await dashboard.snapshot(gcx)).statuses]
    assert names.index("on_hold") < names.index("rejected") < names.index("withdrawn")
    assert names.index("under_review") < names.index("on_hold")
