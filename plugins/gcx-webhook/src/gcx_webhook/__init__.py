"""gcx-webhook: signed JSON webhooks for workflow, document and delivery events.

Every event a subscriber's filter takes becomes an outbox row of the `webhook` channel in the
transaction of the change itself, delivered with GCX's retries and dead letters. Admins manage
subscribers at /backoffice/webhooks; deployments may also name them in a file or the
environment (see README.md).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from gcx_core.entities import Application, NotificationDraft
from gcx_core.plugins import hookimpl
from gcx_core.storage.database import Connection
from gcx_webhook import config
from gcx_webhook.events import describe

HERE = Path(__file__).parent


@hookimpl
def gcx_register_tables(metadata: Any) -> None:
    import gcx_webhook.tables  # noqa: F401  (defines them on GCX's MetaData)


@hookimpl
def gcx_migration_locations() -> list[str]:
    return [str(HERE / "migrations" / "versions")]


@hookimpl
async def gcx_queue_for_event(
    event: Any, application: Application | None, conn: Connection
) -> list[NotificationDraft] | None:
    """One delivery per active subscriber whose filter takes the event."""
    described = describe(event, application)
    if described is None:
        return None
    from gcx_webhook import store

    event_type, data = described
    wanting = [
        s for s in await store.active_subscribers(conn) if config.wants(s.events, event_type)
    ]
    if not wanting:
        return None
    context = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": event.at.isoformat(),
        "data": data,
    }
    return [
        NotificationDraft(
            event_type, s.recipient, context, channel=store.CHANNEL, template="webhook"
        )
        for s in wanting
    ]


@hookimpl
def gcx_process_services(gcx: Any, role: str) -> Any:
    """Check the configuration and store its subscribers as a process starts."""
    configured = config.configured()
    config.timeout()

    @contextlib.asynccontextmanager
    async def synced() -> AsyncIterator[None]:
        from gcx_webhook import store

        await store.sync_configured(gcx, configured)
        yield

    return synced()


@hookimpl(optionalhook=True)  # gcx_notify's hook: absent when gcx_notify is disabled
def gcx_notify_register_channels(register: Callable[[str, Any], None]) -> None:
    from gcx_webhook.channel import factory

    register("webhook", factory(config.timeout))


@hookimpl(optionalhook=True)
def gcx_notify_template_dirs() -> list[str]:
    return [str(HERE / "templates")]


@hookimpl(optionalhook=True)  # gcx_web's hooks: absent when gcx_web is not installed
def gcx_web_register_routes(register: Callable[[Any], None]) -> None:
    from gcx_webhook.web import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl(optionalhook=True)
def gcx_web_register_templates(register: Callable[[Any], None]) -> None:
    register(HERE / "pages")


@hookimpl(optionalhook=True)
def gcx_web_backoffice_links() -> list[tuple[str, str, str]]:
    return [("Webhooks", "/backoffice/webhooks", "admin")]
