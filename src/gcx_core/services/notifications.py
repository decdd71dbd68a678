"""Outbox operations for the back office and the CLI: list, retry dead messages, report status.

Retrying only moves rows back to `pending` and fires NotificationsQueued; whatever delivery
engine is installed (gcx_notify) hears that through `gcx_handle_event` and sends them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from gcx_core.entities import Actor, Notification, NotificationStatus
from gcx_core.events import CountersChanged, NotificationsQueued
from gcx_core.exceptions import InvalidTransitionError, NotFoundError, PermissionDeniedError
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import job_runs, notifications
from gcx_core.system import Gcx

N = notifications


def _require_admin(actor: Actor) -> None:
    if not actor.can("admin"):
        raise PermissionDeniedError("retrying notifications needs the admin permission")


async def get_notification(gcx: Gcx, notification_id: int) -> Notification:
    async with gcx.database.read() as conn:
        row = (await conn.execute(sa.select(N).where(N.c.id == notification_id))).first()
    if row is None:
        raise NotFoundError("notification", notification_id)
    return bookkeeping.to_notification(row)


async def notification_choices(gcx: Gcx) -> tuple[list[str], list[str]]:
    """The notification types and channels the outbox holds: what a filter can offer."""
    async with gcx.database.read() as conn:
        types = list(
            (await conn.execute(sa.select(N.c.type).distinct().order_by(N.c.type))).scalars()
        )
        channels = list(
            (await conn.execute(sa.select(N.c.channel).distinct().order_by(N.c.channel))).scalars()
        )
    return types, channels


async def list_notifications(
    gcx: Gcx,
    *,
    status: str = "",
    type: str = "",
    channel: str = "",
    application_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Notification], int]:
    """Newest first, filtered; returns one page and the total."""
    where = []
    for column, value in ((N.c.status, status), (N.c.type, type), (N.c.channel, channel)):
        if value:
            where.append(column == value)
    if application_id is not None:
        where.append(N.c.application_id == application_id)
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(N)
            .where(*where)
            .order_by(N.c.id.desc())
            .limit(per_page)
            .offset((max(page, 1) - 1) * per_page)
        )
        items = [bookkeeping.to_notification(r) for r in rows]
        total = (
            await conn.execute(sa.select(sa.func.count()).select_from(N).where(*where))
        ).scalar_one()
    return items, int(total)


async def retry_notifications(gcx: Gcx, actor: Actor, ids: list[int] | None = None) -> list[int]:
    """Send dead notifications again with a fresh attempt budget: these ids, or all dead ones.

    Naming a notification that does not exist is NotFoundError; one that is not dead is
    InvalidTransitionError. Either way nothing changes.
    """
    _require_admin(actor)
    now = gcx.now()
    async with gcx.database.write() as conn:
        query = sa.select(N.c.id, N.c.status)
        query = (
            query.where(N.c.id.in_(ids))
            if ids is not None
            else query.where(N.c.status == NotificationStatus.DEAD)
        )
        found = {int(r.id): str(r.status) for r in await conn.execute(query)}
        if ids is not None:
            missing = sorted(set(ids) - set(found))
            if missing:
                raise NotFoundError("notification", missing[0])
            not_dead = sorted(i for i, s in found.items() if s != NotificationStatus.DEAD)
            if not_dead:
                raise InvalidTransitionError(found[not_dead[0]], "retry")
        chosen = sorted(found)
        if not chosen:
            return []
        await conn.execute(
            N.update()
            .where(N.c.id.in_(chosen))
            .values(
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                locked_until=None,
                updated_at=now,
            )
        )
        await bookkeeping.bump_counters(
            conn,
            {
                bookkeeping.NOTIFICATION_PREFIX + NotificationStatus.DEAD: -len(chosen),
                bookkeeping.NOTIFICATION_PREFIX + NotificationStatus.PENDING: len(chosen),
            },
        )
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "notification.retry",
                    "notification",
                    i,
                    at=now,
                    before={"status": "dead"},
                    after={"status": "pending"},
                )
                for i in chosen
            ],
        )
    await gcx.fire([(NotificationsQueued(tuple(chosen), now), None), (CountersChanged(now), None)])
    return chosen


@attrs.frozen
class OutboxStatus:
    counts: dict[str, int]
    due: int
    oldest_pending_at: datetime | None
    last_runs: dict[str, datetime | None]
    at: datetime

    @property
    def oldest_pending_age(self) -> float | None:
        if self.oldest_pending_at is None:
            return None
        return (self.at - self.oldest_pending_at).total_seconds()


async def outbox_status(gcx: Gcx, schedules: list[str]) -> OutboxStatus:
    """Exact counts by status, what is due now, the oldest waiting message, last schedule runs."""
    now = gcx.now()
    waiting = [str(NotificationStatus.PENDING), str(NotificationStatus.RETRYING)]
    async with gcx.database.read() as conn:
        counts: Counter[str] = Counter({str(s): 0 for s in NotificationStatus})
        for status, n in await conn.execute(
            sa.select(N.c.status, sa.func.count()).group_by(N.c.status)
        ):
            counts[str(status)] = int(n)
        due = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(N)
                .where(N.c.status.in_(waiting), N.c.next_attempt_at <= now)
            )
        ).scalar_one()
        oldest = (
            await conn.execute(
                sa.select(sa.func.min(N.c.created_at)).where(N.c.status.in_(waiting))
            )
        ).scalar()
        last_runs: dict[str, Any] = {}
        for schedule in schedules:
            last_runs[schedule] = (
                await conn.execute(
                    sa.select(sa.func.max(job_runs.c.started_at)).where(
                        job_runs.c.run_key.startswith(schedule + ":", autoescape=True)
                    )
                )
            ).scalar()
    if isinstance(oldest, str):  # an aggregate over a SQLite text column comes back raw
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    return OutboxStatus(dict(counts), int(due), oldest, last_runs, now)
