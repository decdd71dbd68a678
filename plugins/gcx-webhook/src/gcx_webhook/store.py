"""Subscribers, their delivery log, and sending a delivery again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gcx_core.entities import Actor, NotificationDraft
from gcx_core.events import CountersChanged, NotificationsQueued
from gcx_core.exceptions import (
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.services.event_outbox import write_drafts
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import notifications
from gcx_core.system import Gcx
from gcx_webhook.config import MIN_SECRET, Subscriber, events_problem, parse_events, url_problem
from gcx_webhook.events import catalogue
from gcx_webhook.tables import attempts, subscribers

CHANNEL = "webhook"
SOURCES = ("backoffice", "config")
GONE = "the receiver answered 410 Gone"
GONE_FROM_CONFIG = "no longer in the configuration"


@attrs.frozen
class StoredSubscriber:
    id: int
    name: str
    url: str
    secret: str = attrs.field(repr=False)
    events: tuple[str, ...]
    active: bool
    source: str
    disabled_reason: str
    created_at: datetime
    updated_at: datetime

    @property
    def recipient(self) -> str:
        return recipient_of(self.id)


def recipient_of(subscriber_id: int) -> str:
    return f"subscriber/{subscriber_id}"


def subscriber_of(recipient: str) -> int | None:
    prefix, _, number = recipient.partition("/")
    return int(number) if prefix == "subscriber" and number.isdigit() else None


def _row(row: Any) -> StoredSubscriber:
    m = row._mapping
    return StoredSubscriber(
        id=m["id"],
        name=m["name"],
        url=m["url"],
        secret=m["secret"],
        events=tuple(m["events"] or ()),
        active=m["active"],
        source=m["source"],
        disabled_reason=m["disabled_reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


async def active_subscribers(conn: Connection) -> list[StoredSubscriber]:
    rows = await conn.execute(
        sa.select(subscribers).where(subscribers.c.active).order_by(subscribers.c.id)
    )
    return [_row(r) for r in rows]


async def all_subscribers(gcx: Gcx) -> list[StoredSubscriber]:
    async with gcx.database.read() as conn:
        rows = await conn.execute(sa.select(subscribers).order_by(subscribers.c.name))
        return [_row(r) for r in rows]


async def get(gcx: Gcx, subscriber_id: int) -> StoredSubscriber:
    async with gcx.database.read() as conn:
        row = (
            await conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id))
        ).first()
    if row is None:
        raise NotFoundError("webhook subscriber", subscriber_id)
    return _row(row)


def _public(values: dict[str, Any]) -> dict[str, Any]:
    """What an audit entry may say about a subscriber: never its secret."""
    shown = {k: v for k, v in values.items() if k in ("name", "url", "events", "active")}
    if "events" in shown:
        shown["events"] = list(shown["events"])
    if "secret" in values:
        shown["secret_changed"] = True
    return shown


def check(gcx: Gcx, form: dict[str, Any], *, new: bool) -> dict[str, Any]:
    """Validate a subscriber form; ValidationError names every wrong field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if new:
        name = str(form.get("name", "")).strip()
        if not 1 <= len(name) <= 100:
            errors["name"] = "must be 1 to 100 characters"
        values["name"] = name
    url = str(form.get("url", "")).strip()
    problem = url_problem(url)
    if problem:
        errors["url"] = problem
    values["url"] = url
    secret = str(form.get("secret", ""))
    if secret or new:
        if len(secret) < MIN_SECRET or len(secret) > 200:
            errors["secret"] = f"must be {MIN_SECRET} to 200 characters"
        values["secret"] = secret
    events = parse_events(str(form.get("events", "")))
    problem = events_problem(events, catalogue(gcx.workflow))
    if problem:
        errors["events"] = problem
    values["events"] = list(events)
    values["active"] = str(form.get("active", "")) in ("on", "true", "1")
    if errors:
        raise ValidationError(errors)
    return values


async def create(gcx: Gcx, actor: Actor, form: dict[str, Any]) -> StoredSubscriber:
    _admin(actor)
    values = check(gcx, form, new=True)
    now = gcx.now()
    try:
        async with gcx.database.write() as conn:
            result = await conn.execute(
                subscribers.insert().values(
                    **values,
                    source="backoffice",
                    disabled_reason="",
                    created_at=now,
                    updated_at=now,
                )
            )
            new_id = int(result.inserted_primary_key[0])
            await _audit(conn, actor, "webhook.subscriber_create", new_id, now, after=values)
    except IntegrityError:
        raise ValidationError({"name": "another subscriber has this name"}) from None
    return await get(gcx, new_id)


async def update(
    gcx: Gcx, actor: Actor, subscriber_id: int, form: dict[str, Any]
) -> StoredSubscriber:
    _admin(actor)
    current = await get(gcx, subscriber_id)
    if current.source == "config":
        raise ValidationError(
            {"subscriber": "comes from the configuration file or environment; change it there"}
        )
    values = check(gcx, form, new=False)
    if values["active"]:
        values["disabled_reason"] = ""
    now = gcx.now()
    async with gcx.database.write() as conn:
        await conn.execute(
            subscribers.update()
            .where(subscribers.c.id == subscriber_id)
            .values(**values, updated_at=now)
        )
        before = {k: getattr(current, k) for k in ("url", "events", "active")}
        await _audit(
            conn,
            actor,
            "webhook.subscriber_update",
            subscriber_id,
            now,
            before=before,
            after=values,
        )
    return await get(gcx, subscriber_id)


async def delete(gcx: Gcx, actor: Actor, subscriber_id: int) -> None:
    _admin(actor)
    current = await get(gcx, subscriber_id)
    if current.source == "config":
        raise ValidationError(
            {"subscriber": "comes from the configuration file or environment; remove it there"}
        )
    now = gcx.now()
    async with gcx.database.write() as conn:
        await conn.execute(attempts.delete().where(attempts.c.subscriber_id == subscriber_id))
        await conn.execute(subscribers.delete().where(subscribers.c.id == subscriber_id))
        await _audit(
            conn,
            actor,
            "webhook.subscriber_delete",
            subscriber_id,
            now,
            before={"name": current.name, "url": current.url},
        )


async def disable(gcx: Gcx, subscriber_id: int, reason: str) -> None:
    """Stop sending to a subscriber (its receiver answered 410 Gone)."""
    now = gcx.now()
    async with gcx.database.write() as conn:
        await conn.execute(
            subscribers.update()
            .where(subscribers.c.id == subscriber_id, subscribers.c.active)
            .values(active=False, disabled_reason=reason[:500], updated_at=now)
        )
        await _audit(
            conn,
            Actor.system("gcx-webhook"),
            "webhook.subscriber_disabled",
            subscriber_id,
            now,
            after={"active": False, "reason": reason[:500]},
        )


async def sync_configured(gcx: Gcx, configured: list[Subscriber]) -> None:
    """Make the stored `config` subscribers match the configuration: add, update, and
    deactivate the ones no longer named (their delivery logs stay)."""
    known = catalogue(gcx.workflow)
    for s in configured:
        problem = events_problem(s.events, known)
        if problem:
            raise ConfigurationError(f"webhook subscriber {s.name!r}: {problem}")
    now = gcx.now()
    names = {s.name for s in configured}
    try:
        async with gcx.database.write() as conn:
            rows = await conn.execute(sa.select(subscribers))
            stored = {r.name: _row(r) for r in rows}
            for s in configured:
                values = {
                    "url": s.url,
                    "secret": s.secret,
                    "events": list(s.events),
                    "active": s.active,
                }
                old = stored.get(s.name)
                if old is None:
                    await conn.execute(
                        subscribers.insert().values(
                            name=s.name,
                            source="config",
                            disabled_reason="",
                            created_at=now,
                            updated_at=now,
                            **values,
                        )
                    )
                    continue
                if old.source != "config":
                    raise ConfigurationError(
                        f"webhook subscriber {s.name!r} exists already, added in the back office"
                    )
                if old.disabled_reason.startswith(GONE) and old.url == s.url:
                    values["active"] = False  # its receiver said 410 Gone; a new URL revives it
                else:
                    values["disabled_reason"] = ""
                await conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id == old.id)
                    .values(**values, updated_at=now)
                )
            for name, old in stored.items():
                if (
                    old.source == "config"
                    and name not in names
                    and old.disabled_reason != GONE_FROM_CONFIG
                ):
                    await conn.execute(
                        subscribers.update()
                        .where(subscribers.c.id == old.id)
                        .values(
                            active=False,
                            disabled_reason=GONE_FROM_CONFIG,
                            updated_at=now,
                        )
                    )
    except IntegrityError:
        pass  # another process starting at the same time wrote the same subscribers


async def record_attempt(
    gcx: Gcx,
    notification_id: int,
    subscriber_id: int,
    *,
    outcome: str,
    response_code: int | None,
    latency_ms: int,
    error: str = "",
) -> None:
    async with gcx.database.write() as conn:
        await conn.execute(
            attempts.insert().values(
                notification_id=notification_id,
                subscriber_id=subscriber_id,
                at=gcx.now(),
                outcome=outcome,
                response_code=response_code,
                latency_ms=latency_ms,
                error=error[:500],
            )
        )


@attrs.frozen
class Delivery:
    """One delivery (an outbox row) as the log shows it, with its latest attempt."""

    notification_id: int
    event_type: str
    event_id: str
    status: str
    attempts: int
    response_code: int | None
    latency_ms: int
    at: datetime
    error: str


async def deliveries(gcx: Gcx, subscriber_id: int, limit: int = 100) -> list[Delivery]:
    """The subscriber's deliveries, newest first, each with its last attempt's answer."""
    latest = (
        sa.select(sa.func.max(attempts.c.id).label("id"))
        .where(attempts.c.subscriber_id == subscriber_id)
        .group_by(attempts.c.notification_id)
        .order_by(sa.func.max(attempts.c.id).desc())
        .limit(limit)
        .subquery()
    )
    query = (
        sa.select(
            attempts.c.notification_id,
            attempts.c.response_code,
            attempts.c.latency_ms,
            attempts.c.at,
            attempts.c.error,
            notifications.c.type,
            notifications.c.status,
            notifications.c.attempts,
            notifications.c.context,
        )
        .join(latest, latest.c.id == attempts.c.id)
        .join(notifications, notifications.c.id == attempts.c.notification_id)
        .order_by(attempts.c.id.desc())
    )
    async with gcx.database.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Delivery(
            notification_id=r.notification_id,
            event_type=r.type,
            event_id=str((r.context or {}).get("event_id", "")),
            status=str(r.status),
            attempts=r.attempts,
            response_code=r.response_code,
            latency_ms=r.latency_ms,
            at=r.at,
            error=r.error,
        )
        for r in rows
    ]


async def send_again(gcx: Gcx, actor: Actor, notification_id: int) -> int:
    """Queue a delivery's event to its subscriber once more, as a new delivery (a new
    delivery id, the same event id); returns the new notification's id."""
    _admin(actor)
    now = gcx.now()
    async with gcx.database.write() as conn:
        row = (
            await conn.execute(
                sa.select(notifications).where(
                    notifications.c.id == notification_id, notifications.c.channel == CHANNEL
                )
            )
        ).first()
        if row is None:
            raise NotFoundError("webhook delivery", notification_id)
        subscriber_id = subscriber_of(row.recipient)
        active = (
            await conn.execute(
                sa.select(subscribers.c.active).where(subscribers.c.id == subscriber_id)
            )
        ).scalar()
        if not active:
            raise ValidationError({"subscriber": "is inactive; turn it on first"})
        draft = NotificationDraft(
            row.type, row.recipient, dict(row.context), channel=CHANNEL, template=row.template
        )
        (new_id,) = await write_drafts(
            gcx, conn, [draft], application_id=row.application_id, at=now
        )
        await _audit(
            conn,
            actor,
            "webhook.send_again",
            subscriber_id,
            now,
            after={"delivery": notification_id, "new_delivery": new_id, "event": row.type},
        )
    await gcx.fire([(NotificationsQueued((new_id,), now), None), (CountersChanged(now), None)])
    return new_id


def _admin(actor: Actor) -> None:
    if not actor.can("admin"):
        raise PermissionDeniedError("webhook subscribers are managed by admins")


async def _audit(
    conn: Connection,
    actor: Actor,
    action: str,
    subscriber_id: int | None,
    at: datetime,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    entry = bookkeeping.audit_row(
        actor,
        action,
        "webhook_subscriber",
        subscriber_id,
        at=at,
        before=_public(before or {}) if before else None,
        after=_public(after or {}) if action != "webhook.send_again" and after else after,
    )
    await bookkeeping.add_audit(conn, [entry])
