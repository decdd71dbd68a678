"""Submitting applications. Concurrent submissions are grouped into one transaction.

A submission is validated and decided by its caller; the write is queued. The first caller to
find nobody writing leads: it writes everything queued so far (up to MAX_BATCH) in one
transaction, one statement per table, then hands the lead to the oldest waiter. Each submission
stays atomic: all its rows commit together or not at all. If a grouped transaction fails, every
submission in it is retried alone, so one submission's problem never becomes another's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gcx_core.context import Gcx
from gcx_core.entities import Actor, Application, ApplicationDraft
from gcx_core.exceptions import DuplicateApplicationError
from gcx_core.services.recording import Fired, Recorded, duplicate_from, record_many
from gcx_core.storage import applications as app_rows
from gcx_core.storage import fast, records
from gcx_core.storage.tables import application_commodities, applications
from gcx_core.tracking import new_tracking_code
from gcx_core.validation import validate_submission
from gcx_core.workflow import TransitionEvent, apply

MAX_BATCH = 64
_LEAD = object()


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
    queue = gcx.submissions
    if queue is None:
        queue = gcx.submissions = SubmitQueue(gcx)
    return await queue.submit(
        _Pending(provisional, submitted, event, actor, asyncio.get_running_loop().create_future())
    )


@attrs.define(eq=False)
class _Pending:
    provisional: Application
    app: Application
    event: TransitionEvent
    actor: Actor
    signal: asyncio.Future[object]
    outcome: Application | None = None
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None or self.error is not None

    def result(self) -> Application:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


class SubmitQueue:
    """Groups concurrent submissions of one process; see the module docstring."""

    def __init__(self, gcx: Gcx) -> None:
        self.gcx = gcx
        self._pending: list[_Pending] = []
        self._leading = False

    async def submit(self, item: _Pending) -> Application:
        self._pending.append(item)
        if self._leading:
            try:
                await item.signal
            except asyncio.CancelledError:
                self._abandon(item)
                raise
            if item.finished:
                return item.result()
        else:
            self._leading = True
        batch: list[_Pending] = []
        try:
            # One turn of the loop lets callers that are ready (their last write just finished)
            # queue their next submission, so batches fill up under load at no cost when idle.
            await asyncio.sleep(0)
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            await self._write(batch)
        finally:
            if not item.finished and item in self._pending:
                self._pending.remove(item)  # cancelled before its batch was taken
            unfinished = [i for i in batch if not i.finished and i is not item]
            self._pending[0:0] = unfinished  # a cancelled leader leaves its batch to the next
            self._pass_lead()
        return item.result()

    def _pass_lead(self) -> None:
        if self._pending:
            self._pending[0].signal.set_result(_LEAD)
        else:
            self._leading = False

    def _abandon(self, item: _Pending) -> None:
        if item in self._pending:
            self._pending.remove(item)
        if item.signal.done() and not item.signal.cancelled() and item.signal.result() is _LEAD:
            self._pass_lead()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            fired = await self._write_together(batch)
        except Exception:
            if len(batch) == 1:
                raise
            fired = []
            for item in batch:
                if item.finished:
                    continue
                try:
                    fired.extend(await self._write_together([item]))
                except Exception as exc:
                    item.error = exc
        await self.gcx.fire(fired)
        for item in batch:
            if not item.signal.done():
                item.signal.set_result(None)

    async def _write_together(self, batch: list[_Pending]) -> Fired:
        """One transaction for the batch; items refused on their own are marked and skipped."""
        gcx = self.gcx
        emails: set[str] = set()
        tins: set[str] = set()
        accepted = []
        async with gcx.database.write() as conn:
            taken = await _taken(conn, [i.app for i in batch if not i.finished])
            for item in batch:
                if item.finished:
                    continue
                app = item.app
                try:
                    gcx.plugins.hook.gcx_before_transition(
                        application=item.provisional, action="submit", actor=item.actor, params={}
                    )
                except Exception as exc:
                    item.error = exc
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
                    item.error = DuplicateApplicationError(fields)
                    continue
                emails.add(app.contact.email)
                tins.add(app.business.tin)
                accepted.append(item)
            if not accepted:
                return []
            ids = await records.allocate_ids(conn, applications, len(accepted))
            try:
                await fast.insert_many(
                    conn,
                    applications,
                    [
                        {"id": app_id, **app_rows.row_values(i.app, active=True)}
                        for i, app_id in zip(accepted, ids, strict=True)
                    ],
                )
            except IntegrityError as exc:
                raise duplicate_from(exc) from None
            stored = [
                attrs.evolve(i.app, id=app_id) for i, app_id in zip(accepted, ids, strict=True)
            ]
            await fast.insert_many(
                conn,
                application_commodities,
                [{"application_id": a.id, "commodity": c} for a in stored for c in a.commodities],
            )
            fired = await record_many(
                gcx,
                conn,
                [
                    Recorded(None, app, attrs.evolve(i.event, application_id=app.id), i.actor)
                    for i, app in zip(accepted, stored, strict=True)
                ],
            )
        for item, app in zip(accepted, stored, strict=True):
            item.outcome = app
        return fired


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
