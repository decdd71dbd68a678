"""Writing what transitions did: status changes, audit entries, outbox rows, deadlines and
counters.

`record_many` takes several transitions at once so that grouped submissions (see
services.submit) cost one statement per table rather than one per application.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
from sqlalchemy.exc import IntegrityError

from gcx_core.entities import Actor, Application, User
from gcx_core.events import CountersChanged, NotificationsQueued
from gcx_core.exceptions import DuplicateApplicationError
from gcx_core.services import deadlines
from gcx_core.services.event_outbox import drafts_for
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.rows import insert_many
from gcx_core.storage.tables import notifications, status_changes
from gcx_core.system import Gcx
from gcx_core.workflow import TransitionEvent

Fired = list[tuple[Any, Application | None]]


@attrs.frozen
class Recorded:
    """One transition to write: the application before (None when new) and after it."""

    before: Application | None
    after: Application
    event: TransitionEvent
    actor: Actor


def duplicate_from(exc: IntegrityError) -> Exception:
    """Name the duplicate-guard column a unique violation hit, or hand the error back."""
    message = str(exc.orig)
    fields = [
        name for key, name in (("active_email", "email"), ("active_tin", "TIN")) if key in message
    ]
    return DuplicateApplicationError(fields) if fields else exc


def _audit_values(item: Recorded) -> tuple[dict[str, Any], dict[str, Any]]:
    before, after = item.before, item.after
    old: dict[str, Any] = {}
    if before is not None:
        old = {
            "status": before.status or None,
            "version": before.version,
            "assigned_reviewer_id": before.assigned_reviewer_id,
        }
    new: dict[str, Any] = {
        "status": after.status,
        "version": after.version,
        "assigned_reviewer_id": after.assigned_reviewer_id,
    }
    if before is None:
        new["tracking_code"] = after.tracking_code
    if "reason_code" in item.event.params:
        new["reason_code"] = item.event.params["reason_code"]
    changed = [k for k in new if old.get(k) != new.get(k)]
    return {k: old.get(k) for k in changed if k in old}, {k: new[k] for k in changed}


async def record_many(gcx: Gcx, conn: Connection, items: list[Recorded]) -> list[Fired]:
    """Write the status change, audit entry, outbox rows and counters of each transition.

    Returns, per transition, the events to fire once the transaction has committed.
    """
    change_ids = await bookkeeping.allocate_ids(conn, status_changes, len(items))
    await insert_many(
        conn,
        status_changes,
        [
            {
                "id": change_id,
                "application_id": i.after.id,
                "from_status": i.event.from_status,
                "to_status": i.event.to_status,
                "action": i.event.action,
                "actor": i.actor.label or str(i.actor.kind),
                "reason_code": i.event.params.get("reason_code", ""),
                "comment": i.event.params.get("comment", "") or i.event.params.get("message", ""),
                "at": i.event.at,
            }
            for i, change_id in zip(items, change_ids, strict=True)
        ],
    )
    items = [
        attrs.evolve(i, event=attrs.evolve(i.event, status_change_id=cid))
        for i, cid in zip(items, change_ids, strict=True)
    ]
    audit = []
    for i in items:
        old, new = _audit_values(i)
        audit.append(
            bookkeeping.audit_row(
                i.actor,
                i.event.action,
                "application",
                i.after.id,
                at=i.event.at,
                before=old,
                after=new,
            )
        )
    await bookkeeping.add_audit(conn, audit)

    staff: list[User] = await user_rows.active_staff(conn)
    route = gcx.plugins.hook.gcx_route_notification
    rows: list[dict[str, Any]] = []
    per_item: list[int] = []  # how many outbox rows each transition added
    for i in items:
        drafts = [
            d
            for found in gcx.plugins.hook.gcx_collect_notifications(
                event=i.event, application=i.after, staff=staff
            )
            for d in (found or [])
        ]
        if route.get_hookimpls():
            drafts += [
                more
                for d in drafts
                for routed in route(draft=d, application=i.after)
                for more in (routed or [])
            ]
        drafts += await drafts_for(gcx, conn, i.event, i.after)
        per_item.append(len(drafts))
        rows.extend(
            {
                "type": d.type,
                "channel": d.channel,
                "recipient": d.recipient,
                "template": d.template_name,
                "context": d.context,
                "dedupe_key": f"sc{i.event.status_change_id}:{d.type}:{d.channel}:{d.recipient}",
                "status": "pending",
                "attempts": 0,
                "max_attempts": gcx.settings.notification_max_attempts,
                "next_attempt_at": i.event.at,
                "application_id": i.after.id,
                "created_at": i.event.at,
                "updated_at": i.event.at,
            }
            for d in drafts
        )
    notification_ids = await bookkeeping.allocate_ids(conn, notifications, len(rows))
    if rows:
        for row, notification_id in zip(rows, notification_ids, strict=True):
            row["id"] = notification_id
        await insert_many(conn, notifications, rows)

    deltas: Counter[str] = Counter()
    if rows:
        deltas[bookkeeping.NOTIFICATION_PREFIX + "pending"] += len(rows)
    for i in items:
        deltas[bookkeeping.STATUS_PREFIX + i.after.status] += 1
        deltas[bookkeeping.assigned_key(i.after.status, i.after.assigned_reviewer_id)] += 1
        if i.before is not None and i.before.status:
            deltas[bookkeeping.STATUS_PREFIX + i.before.status] -= 1
            before = i.before
            deltas[bookkeeping.assigned_key(before.status, before.assigned_reviewer_id)] -= 1
        else:
            deltas[bookkeeping.day_key(i.after.created_at)] += 1
    deltas.update(await deadlines.enter_statuses(gcx, conn, items))
    await bookkeeping.bump_counters(conn, deltas)

    fired: list[Fired] = []
    start = 0
    for i, count in zip(items, per_item, strict=True):
        mine: Fired = [(i.event, i.after)]
        if count:
            ids = tuple(notification_ids[start : start + count])
            mine.append((NotificationsQueued(ids, i.event.at), None))
        mine.append((CountersChanged(i.event.at), None))
        fired.append(mine)
        start += count
    return fired
