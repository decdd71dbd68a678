"""Messages plugins queue for domain events (`gcx_queue_for_event`), written to the outbox in
the same transaction as the change that caused them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gcx_core.entities import Application, NotificationDraft
from gcx_core.plugins import call_async
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.rows import insert_many
from gcx_core.storage.tables import notifications
from gcx_core.system import Gcx


async def drafts_for(
    gcx: Gcx, conn: Connection, event: Any, application: Application | None
) -> list[NotificationDraft]:
    """What the plugins want queued for `event` (nothing asked when no plugin implements it)."""
    hook = gcx.plugins.hook.gcx_queue_for_event
    if not hook.get_hookimpls():
        return []
    found = await call_async(hook, event=event, application=application, conn=conn)
    return [d for drafts in found for d in drafts]


async def queue_for_event(
    gcx: Gcx,
    conn: Connection,
    event: Any,
    application_id: int | None = None,
    application: Application | None = None,
) -> list[int]:
    """Ask the plugins about `event` and write what they return; returns the new rows' ids."""
    drafts = await drafts_for(gcx, conn, event, application)
    if not drafts:
        return []
    # Each event is its own: a document reviewed twice queues twice.
    return await write_drafts(gcx, conn, drafts, application_id=application_id, at=event.at)


async def write_drafts(
    gcx: Gcx,
    conn: Connection,
    drafts: list[NotificationDraft],
    *,
    application_id: int | None,
    at: datetime,
) -> list[int]:
    """Write drafts as outbox rows in `conn`'s transaction (pending, due at `at`); returns
    their ids. Fire ``NotificationsQueued(ids, at)`` once it commits, so that they are sent."""
    key = uuid.uuid4().hex
    return await write_outbox(
        gcx,
        conn,
        [
            (d, application_id, f"ev{key}.{n}:{d.type}:{d.channel}:{d.recipient}")
            for n, d in enumerate(drafts)
        ],
        at=at,
    )


async def write_outbox(
    gcx: Gcx,
    conn: Connection,
    entries: Sequence[tuple[NotificationDraft, int | None, str]],
    *,
    at: datetime,
) -> list[int]:
    """`write_drafts` for drafts about several applications: (draft, application id, dedupe
    key) each, the key naming what the row is about (the outbox refuses a second row with the
    same key). One statement for all of them."""
    if not entries:
        return []
    rows = [
        {
            "type": d.type,
            "channel": d.channel,
            "recipient": d.recipient,
            "template": d.template_name,
            "context": d.context,
            "dedupe_key": key[:255],
            "status": "pending",
            "attempts": 0,
            "max_attempts": gcx.settings.notification_max_attempts,
            "next_attempt_at": at,
            "application_id": application_id,
            "created_at": at,
            "updated_at": at,
        }
        for d, application_id, key in entries
    ]
    ids = await bookkeeping.allocate_ids(conn, notifications, len(rows))
    for row, notification_id in zip(rows, ids, strict=True):
        row["id"] = notification_id
    await insert_many(conn, notifications, rows)
    await bookkeeping.bump_counters(conn, {bookkeeping.NOTIFICATION_PREFIX + "pending": len(rows)})
    return ids
