"""gcx_web's hooks, used by throwaway plugins the way a third party would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
from litestar import Request, get
from litestar.response import Template

from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.system import Gcx
from gcx_core.testing import running_app
from gcx_web.app import create_app
from gcx_web.config import WebConfig, parse_rate_limits
from tests.gcx_web.conftest import csrf_of, post_step, step_form


@get("/programme/faq")
async def faq(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"programme": request.app.state.gcx.settings.programme_name}


@get("/programme/page", include_in_schema=False)
async def page() -> Template:
    return Template("programme.html", context={"title": "Deadlines"})


class WebPlugin:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[str] = []

    @hookimpl
    def gcx_web_register_routes(self, register: Any) -> None:
        register(faq)
        register(page)

    @hookimpl
    def gcx_web_register_templates(self, register: Any) -> None:
        register(self.folder)
        register(
            jinja2.DictLoader({"programme.html": "<p>{{ title }} of {{ programme_name }}</p>"})
        )

    @hookimpl
    def gcx_process_services(self, gcx: Gcx, role: str) -> Any:
        @contextlib.asynccontextmanager
        async def service() -> AsyncIterator[None]:
            self.events.append(f"start:{role}")
            yield
            self.events.append("stop")

        return service()


@pytest.fixture(name="plugin")
def _plugin(tmp_path: Path) -> WebPlugin:
    folder = tmp_path / "templates" / "apply"
    folder.mkdir(parents=True)
    (folder / "done.html").write_text(
        '{% extends "base.html" %}{% block main %}'
        '<p id="tracking-code">{{ application.tracking_code }}</p>'
        "<p>Custom thanks from the plugin</p>{% endblock %}"
    )
    return WebPlugin(tmp_path / "templates")


@pytest.fixture(name="gcx_extra_plugins")
def _extra(plugin: WebPlugin) -> list[object]:
    from gcx_web import plugin as web_plugin

    # The manager is built without entry points: gcx_web's own plugin brings its hookspecs.
    return [web_plugin, plugin]


async def test_plugins_add_routes_templates_and_services(gcx: Gcx, plugin: WebPlugin) -> None:
    app = create_app(gcx=gcx, config=WebConfig(rate_limits=parse_rate_limits("off")))
    async with running_app(app):
        assert plugin.events == ["start:serve"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/programme/faq")).json() == {
                "programme": gcx.settings.programme_name
            }
            assert "Deadlines of" in (await client.get("/programme/page")).text
            # The plugin's apply/done.html replaces the built-in page.
            html = (await client.get("/apply/business")).text

            data = make_submission()
            for step in (
                "business",
                "contact",
                "commodities",
                "team",
                "next_of_kin",
                "bank",
                "documents",
                "declaration",
            ):
                await post_step(client, step, step_form(data, step))
            sent = await client.post("/apply/submit", data={"_csrf_token": csrf_of(html)})
            assert sent.status_code == 303
            done = await client.get(sent.headers["location"])
            assert "Custom thanks from the plugin" in done.text
            # ...while the built-in pages are still there.
            assert (await client.get("/track")).status_code == 200
    assert plugin.events == ["start:serve", "stop"]


class MailPlugin:
    """Stands in for a delivery engine: previews and a captured mailbox of its own."""

    @hookimpl(tryfirst=True)
    def gcx_web_notification_preview(self, gcx: Gcx, notification: Any) -> dict[str, str]:
        return {"subject": f"Preview of {notification.type}", "text": "<b>not html</b>", "html": ""}

    @hookimpl(tryfirst=True)
    async def gcx_web_captured_mail(
        self, gcx: Gcx, limit: int, recipient: str
    ) -> list[dict[str, Any]]:
        return [m for m in self.messages() if recipient in m["recipient"]][:limit]

    @hookimpl(tryfirst=True)
    async def gcx_web_captured_message(self, gcx: Gcx, message_id: int) -> dict[str, Any] | None:
        return next((m for m in self.messages() if m["id"] == message_id), None)

    @staticmethod
    def messages() -> list[dict[str, Any]]:
        from datetime import UTC, datetime

        return [
            {
                "id": 7,
                "created_at": datetime.now(UTC),
                "recipient": "a@b.example",
                "subject": "Hello <there>",
                "text": "See https://gcx.example/track/X <now>",
                "html": "<p>Hi</p><script>alert(1)</script>",
            }
        ]


async def test_back_office_mail_ports(gcx: Gcx, gcx_staff: Any) -> None:
    from gcx_core.entities import Actor, Role
    from gcx_core.services import applications as app_service

    gcx.plugins.register(MailPlugin())
    await app_service.submit(gcx, make_submission(), Actor.applicant())
    admin, _ = await gcx_staff(Role.ADMIN)
    app = create_app(gcx=gcx, config=WebConfig(rate_limits=parse_rate_limits("off")))
    async with running_app(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/login")
            await client.post(
                "/login",
                data={
                    "_csrf_token": csrf_of(page.text),
                    "email": admin.email,
                    "password": "correct horse battery staple",
                },
            )
            detail = await client.get("/backoffice/notifications/1")
            assert "Preview of application_received" in detail.text
            assert "&lt;b&gt;not html&lt;/b&gt;" in detail.text
            outbox = await client.get("/backoffice/outbox")
            assert "Hello &lt;there&gt;" in outbox.text
            # Links in the text are links; the HTML part opens in a sandbox without scripts.
            assert '<a href="https://gcx.example/track/X"' in outbox.text
            assert "&lt;now&gt;" in outbox.text
            html = await client.get("/backoffice/outbox/7/html")
            assert html.status_code == 200 and html.text.startswith("<p>Hi</p>")
            assert "sandbox" in html.headers["content-security-policy"]
            assert "script-src" not in html.headers["content-security-policy"]
            assert (await client.get("/backoffice/outbox/8/html")).status_code == 404
            # Searching by recipient.
            assert "Hello" not in (await client.get("/backoffice/outbox?recipient=zz")).text
            assert "Hello" in (await client.get("/backoffice/outbox?recipient=a%40b")).text


class LinkPlugin:
    @hookimpl
    def gcx_web_backoffice_links(self) -> list[tuple[str, str, str]]:
        return [("Exports", "/backoffice/exports", "review"), ("Keys", "/backoffice/keys", "admin")]


async def test_plugins_add_navigation_links_by_permission(gcx: Gcx, gcx_staff: Any) -> None:
    from gcx_core.entities import Role

    gcx.plugins.register(LinkPlugin())
    app = create_app(gcx=gcx, config=WebConfig(rate_limits=parse_rate_limits("off")))
    seen: dict[str, str] = {}
    async with running_app(app):
        for role in (Role.VIEWER, Role.REVIEWER, Role.ADMIN):
            user, _ = await gcx_staff(role)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                page = await client.get("/login")
                await client.post(
                    "/login",
                    data={
                        "_csrf_token": csrf_of(page.text),
                        "email": user.email,
                        "password": "correct horse battery staple",
                    },
                )
                seen[role] = (await client.get("/backoffice/")).text
    assert "/backoffice/exports" not in seen[Role.VIEWER]
    assert '<a href="/backoffice/exports">Exports</a>' in seen[Role.REVIEWER]
    assert "/backoffice/keys" not in seen[Role.REVIEWER]
    assert '<a href="/backoffice/keys">Keys</a>' in seen[Role.ADMIN]
