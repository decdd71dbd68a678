"""Submit applications and move them through the workflow, one transaction per change.

Each change writes, in one transaction: the application (version + 1), a status change, an
audit entry, the outbox rows of its notifications and the dashboard counters. Hooks hear about
it only after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gcx_core.context import Gcx
from gcx_core.entities import Actor, Application, ApplicationDraft, User
from gcx_core.events import CountersChanged, NotificationsQueued
from gcx_core.exceptions import (
    ConflictError,
    DuplicateApplicationError,
    NotFoundError,
    ValidationError,
)
from gcx_core.services import effects
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import applications as app_rows
from gcx_core.storage import records
from gcx_core.storage.tables import applications
from gcx_core.tracking import new_tracking_code, normalise_tracking_code
from gcx_core.validation import validate_submission
from gcx_core.workflow import TransitionEvent, apply

_PARAM_LIMITS = {"message": 5000, "comment": 5000, "reason_code": 40}


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Trim and bound an action's parameters; unknown or malformed ones are field errors."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in (params or {}).items():
        if key in _PARAM_LIMITS:
            if not isinstance(value, str):
                errors[key] = "must be text"
            elif len(value.strip()) > _PARAM_LIMITS[key]:
                errors[key] = f"must be at most {_PARAM_LIMITS[key]} characters"
            else:
                cleaned[key] = value.strip()
        elif key == "requirement_codes":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                errors[key] = "must be a list of requirement codes"
            else:
                cleaned[key] = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        else:
            errors[key] = "unknown parameter"
    if errors:
        raise ValidationError(errors)
    return cleaned


def new_application(gcx: Gcx, draft: ApplicationDraft) -> Application:
    now = gcx.now()
    return Application(
        id=0,
        tracking_code=new_tracking_code(),
        status="",
        version=0,
        business=draft.business,
        contact=draft.contact,
        commodities=draft.commodities,
        warehouse_location=draft.warehouse_location,
        team_members=draft.team_members,
        next_of_kin=draft.next_of_kin,
        primary_account=draft.primary_account,
        secondary_account=draft.secondary_account,
        declaration=draft.declaration,
        created_at=now,
        updated_at=now,
        status_changed_at=now,
    )


async def submit(gcx: Gcx, data: Any, actor: Actor) -> Application:
    """Validate and store a new application; raises ValidationError or DuplicateApplicationError."""
    draft = validate_submission(data, phone_format=gcx.phone_format, now=gcx.now())
    provisional = new_application(gcx, draft)
    submitted, event = apply(gcx.workflow, provisional, "submit", actor, now=provisional.created_at)
    async with gcx.database.write() as conn:
        gcx.plugins.hook.gcx_before_transition(
            application=provisional, action="submit", actor=actor, params={}
        )
        await _refuse_duplicates(conn, submitted)
        try:
            app_id = await app_rows.insert(conn, submitted)
        except IntegrityError as exc:
            raise _duplicate_from(exc) from None
        submitted = attrs.evolve(submitted, id=app_id)
        event = attrs.evolve(event, application_id=app_id)
        fired = await record(gcx, conn, None, submitted, event, actor)
    await gcx.fire(fired)
    return submitted


async def _refuse_duplicates(conn: AsyncConnection, app: Application) -> None:
    rows = (
        await conn.execute(
            sa.select(applications.c.active_email, applications.c.active_tin).where(
                sa.or_(
                    applications.c.active_email == app.contact.email,
                    applications.c.active_tin == app.business.tin,
                )
            )
        )
    ).all()
    fields = []
    if any(r.active_email == app.contact.email for r in rows):
        fields.append("email")
    if any(r.active_tin == app.business.tin for r in rows):
        fields.append("TIN")
    if fields:
        raise DuplicateApplicationError(fields)


def _duplicate_from(exc: IntegrityError) -> Exception:
    message = str(exc.orig)
    fields = [
        name for key, name in (("active_email", "email"), ("active_tin", "TIN")) if key in message
    ]
    return DuplicateApplicationError(fields) if fields else exc


async def record(
    gcx: Gcx,
    conn: AsyncConnection,
    before: Application | None,
    after: Application,
    event: TransitionEvent,
    actor: Actor,
) -> list[tuple[Any, Application | None]]:
    """Write the status change, audit entry, outbox rows and counters of one transition."""
    change_id = await app_rows.insert_status_change(
        conn,
        {
            "application_id": after.id,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "action": event.action,
            "actor": actor.label or str(actor.kind),
            "reason_code": event.params.get("reason_code", ""),
            "comment": event.params.get("comment", "") or event.params.get("message", ""),
            "at": event.at,
        },
    )
    event = attrs.evolve(event, status_change_id=change_id)
    audit_before: dict[str, Any] = {}
    if before is not None:
        audit_before = {
            "status": before.status or None,
            "version": before.version,
            "assigned_reviewer_id": before.assigned_reviewer_id,
        }
    audit_after: dict[str, Any] = {
        "status": after.status,
        "version": after.version,
        "assigned_reviewer_id": after.assigned_reviewer_id,
    }
    if before is None:
        audit_after["tracking_code"] = after.tracking_code
    if "reason_code" in event.params:
        audit_after["reason_code"] = event.params["reason_code"]
    changed_before, changed_after = _changed(audit_before, audit_after)
    await records.add_audit(
        conn,
        [
            {
                "at": event.at,
                "actor": actor.label or str(actor.kind),
                "action": event.action,
                "object_type": "application",
                "object_id": str(after.id),
                "before": changed_before,
                "after": changed_after,
                "client_address": actor.client_address,
            }
        ],
    )
    staff: list[User] = await user_rows.active_staff(conn)
    drafts = [
        d
        for ds in gcx.plugins.hook.gcx_collect_notifications(
            event=event, application=after, staff=staff
        )
        for d in (ds or [])
    ]
    rows = [
        {
            "type": d.type,
            "channel": d.channel,
            "recipient": d.recipient,
            "template": d.template_name,
            "context": d.context,
            "dedupe_key": f"sc{change_id}:{d.type}:{d.channel}:{d.recipient}",
            "status": "pending",
            "attempts": 0,
            "max_attempts": gcx.settings.notification_max_attempts,
            "next_attempt_at": event.at,
            "application_id": after.id,
            "created_at": event.at,
            "updated_at": event.at,
        }
        for d in drafts
    ]
    notification_ids = await records.insert_notifications(conn, rows)
    deltas = {records.STATUS_PREFIX + after.status: 1}
    if before is not None and before.status:
        deltas[records.STATUS_PREFIX + before.status] = (
            deltas.get(records.STATUS_PREFIX + before.status, 0) - 1
        )
    else:
        deltas[records.day_key(after.created_at)] = 1
    await records.bump_counters(conn, deltas)
    fired: list[tuple[Any, Application | None]] = [(event, after)]
    if notification_ids:
        fired.append((NotificationsQueued(tuple(notification_ids), event.at), None))
    fired.append((CountersChanged(event.at), None))
    return fired


def _changed(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys if k in before}, {k: after[k] for k in keys}


async def resolve(conn: AsyncConnection, ref: int | str) -> Application:
    """Load by id (staff) or tracking code (applicant); unknown or malformed refs are NotFound."""
    if isinstance(ref, int):
        app = await app_rows.get(conn, ref)
    else:
        code = normalise_tracking_code(ref)
        app = await app_rows.get_by_tracking_code(conn, code) if code else None
    if app is None:
        raise NotFoundError("application", ref)
    return app


async def act(
    gcx: Gcx,
    ref: int | str,
    action: str,
    actor: Actor,
    *,
    expected_version: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> Application:
    """Apply a workflow action; a stale `expected_version` is a ConflictError, not an overwrite."""
    cleaned = clean_params(params)
    async with gcx.database.write() as conn:
        before = await resolve(conn, ref)
        if expected_version is not None and expected_version != before.version:
            raise ConflictError("application", before.id, expected_version, before.version)
        facts = await effects.gather_facts(gcx, conn, before, action)
        gcx.plugins.hook.gcx_before_transition(
            application=before, action=action, actor=actor, params=dict(cleaned)
        )
        after, event = apply(
            gcx.workflow, before, action, actor, now=gcx.now(), params=cleaned, facts=facts
        )
        active = gcx.workflow.state(after.status).active
        # Claim the version first: a concurrent writer fails here, before any side effect.
        try:
            updated = await app_rows.update(
                conn, after, expected_version=before.version, active=active
            )
        except IntegrityError as exc:
            raise _duplicate_from(exc) from None
        if not updated:
            raise ConflictError(
                "application",
                before.id,
                before.version,
                await app_rows.current_version(conn, before.id),
            )
        event = await effects.carry_out(gcx, conn, gcx.workflow.transitions[action], after, event)
        fired = await record(gcx, conn, before, after, event, actor)
    await gcx.fire(fired)
    return after
