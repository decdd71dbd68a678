"""Submitting applications. Concurrent submissions are grouped into one transaction.

A submission is validated and decided by its caller; its write goes through a GroupCommit
(gcx_core.storage.batching), so submissions that arrive together are written in one
transaction, one statement per table. Each stays atomic: all its rows commit together or not at
all. A submission refused on its own (a duplicate, a plugin's veto) is refused alone; if the
shared transaction fails, each submission is retried by itself.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gcx_core.entities import Actor, Application, ApplicationDraft
from gcx_core.exceptions import DuplicateApplicationError
from gcx_core.services import auto_assign
from gcx_core.services.transition_writes import Fired, Recorded, duplicate_from, record_many
from gcx_core.storage import applications as app_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.batching import GroupCommit
from gcx_core.storage.rows import insert_many
from gcx_core.storage.tables import application_commodities, applications
from gcx_core.system import Gcx
from gcx_core.tracking import new_tracking_code
from gcx_core.validation import validate_submission
from gcx_core.workflow import TransitionEvent, apply

Outcome = tuple[Application, Fired] | BaseException


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
    if gcx.submissions is None:
        gcx.submissions = GroupCommit(gcx.database, lambda conn, items: _write(gcx, conn, items))
    stored, fired = await gcx.submissions(_Pending(provisional, submitted, event, actor))
    await gcx.fire(fired)
    return stored


@attrs.frozen
class _Pending:
    provisional: Application
    app: Application
    event: TransitionEvent
    actor: Actor


async def _write(gcx: Gcx, conn: Any, batch: list[_Pending]) -> list[Outcome]:
    """Group-commit work: write the accepted submissions; refuse the others one by one."""
    outcomes: dict[int, Outcome] = {}
    emails: set[str] = set()
    tins: set[str] = set()
    accepted: list[tuple[int, _Pending]] = []
    taken = await _taken(conn, [p.app for p in batch])
    for index, item in enumerate(batch):
        app = item.app
        try:
            gcx.plugins.hook.gcx_before_transition(
                application=item.provisional, action="submit", actor=item.actor, params={}
            )
        except Exception as exc:
            outcomes[index] = exc
            continue
        fields = [
            name
            for name, value, seen in (
                ("email", app.contact.email, emails),
                ("TIN", app.business.tin, tins),
            )
            if value in seen or (name, value) in taken
        ]
        if fields:
            outcomes[index] = DuplicateApplicationError(fields)
            continue
        emails.add(app.contact.email)
        tins.add(app.business.tin)
        accepted.append((index, item))
    if accepted:
        ids = await bookkeeping.allocate_ids(conn, applications, len(accepted))
        stored = [
            attrs.evolve(item.app, id=app_id)
            for (_, item), app_id in zip(accepted, ids, strict=True)
        ]
        reviewers = await auto_assign.choose(gcx, conn, stored)
        stored = [
            attrs.evolve(app, assigned_reviewer_id=reviewer) if reviewer is not None else app
            for app, reviewer in zip(stored, reviewers, strict=True)
        ]
        try:
            await insert_many(
                conn,
                applications,
                [{"id": app.id, **app_rows.row_values(app, active=True)} for app in stored],
            )
        except IntegrityError as exc:
            raise duplicate_from(exc) from None
        await insert_many(
            conn,
            application_commodities,
            [{"application_id": a.id, "commodity": c} for a in stored for c in a.commodities],
        )
        fired = await record_many(
            gcx,
            conn,
            [
                Recorded(None, app, attrs.evolve(item.event, application_id=app.id), item.actor)
                for (_, item), app in zip(accepted, stored, strict=True)
            ],
        )
        for (index, _), app, events in zip(accepted, stored, fired, strict=True):
            outcomes[index] = (app, events)
    return [outcomes[i] for i in range(len(batch))]


async def _taken(conn: Any, apps: list[Application]) -> set[tuple[str, str]]:
    """Which of these emails and TINs an active application already holds."""
    if not apps:
        return set()
    emails = [a.contact.email for a in apps]
    tins = [a.business.tin for a in apps]
    rows = (
        await conn.execute(
            sa.select(applications.c.active_email, applications.c.active_tin).where(
                sa.or_(applications.c.active_email.in_(emails), applications.c.active_tin.in_(tins))
            )
        )
    ).all()
    taken = {("email", r.active_email) for r in rows} | {("TIN", r.active_tin) for r in rows}
    return taken
