"""Who owns an application: taking, assigning, giving back; and conflicts of interest.

Reviewers take unassigned work for themselves and give back what they hold; admins assign
anyone who may review, or nobody. Nobody is given an application whose applicant's email
domain or TIN they declared as a conflict of interest (`set_interests`); the same
declarations keep them from reviewing or deciding it (the workflow's `conflict_of_interest`
guard, through `Facts.conflicted_staff`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs
import sqlalchemy as sa

from gcx_core.entities import Actor, Application, Role
from gcx_core.events import ApplicationAssigned, CountersChanged, NotificationsQueued
from gcx_core.exceptions import ConflictError, PermissionDeniedError, ValidationError
from gcx_core.services.applications import resolve
from gcx_core.services.event_outbox import queue_for_event
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import applications, staff_interests
from gcx_core.system import Gcx
from gcx_core.validation import normalise_tin

MAX_INTERESTS = 50
_DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9-]+(\.[a-z0-9-]+)+$")
_TIN = re.compile(r"^[A-Z0-9][A-Z0-9-]{6,18}[A-Z0-9]$")


@attrs.frozen
class Interests:
    domains: tuple[str, ...] = ()
    tins: tuple[str, ...] = ()


async def assign(
    gcx: Gcx,
    ref: int | str,
    reviewer_id: int | None,
    actor: Actor,
    *,
    expected_version: int | None = None,
) -> Application:
    """Give the application to `reviewer_id`, or to nobody; returns it as it is now."""
    if not actor.can("review"):
        raise PermissionDeniedError("assigning applications needs the review permission")
    now = gcx.now()
    async with gcx.database.write() as conn:
        before = await resolve(conn, ref)
        if expected_version is not None and expected_version != before.version:
            raise ConflictError("application", before.id, expected_version, before.version)
        current = before.assigned_reviewer_id
        if reviewer_id == current:
            return before
        _may_assign(actor, current, reviewer_id)
        if not gcx.workflow.waits(before.status):
            raise ValidationError(
                {"application": "waits on nobody now (it is decided or closed); it is not assigned"}
            )
        if reviewer_id is not None:
            reviewer = await user_rows.get(conn, reviewer_id)
            if reviewer is None or not reviewer.can("review"):
                raise ValidationError({"reviewer": "is not a staff member who may review"})
            if reviewer_id in await user_rows.conflicted_staff(conn, before):
                raise ValidationError(
                    {"reviewer": "has declared a conflict of interest with this applicant"}
                )
        after = attrs.evolve(before, assigned_reviewer_id=reviewer_id, version=before.version + 1)
        result = await conn.execute(
            applications.update()
            .where(applications.c.id == before.id, applications.c.version == before.version)
            .values(
                assigned_reviewer_id=reviewer_id,
                version=after.version,
                revision=applications.c.revision + 1,
            )
        )
        if result.rowcount != 1:
            raise ConflictError("application", before.id, before.version, None)
        await bookkeeping.bump_counters(
            conn,
            {
                bookkeeping.assigned_key(before.status, current): -1,
                bookkeeping.assigned_key(before.status, reviewer_id): 1,
            },
        )
        action = "application.take" if reviewer_id == actor.user_id else "application.assign"
        if reviewer_id is None:
            action = "application.unassign"
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    action,
                    "application",
                    before.id,
                    at=now,
                    before={"assigned_reviewer_id": current, "version": before.version},
                    after={"assigned_reviewer_id": reviewer_id, "version": after.version},
                )
            ],
        )
        event = ApplicationAssigned(before.id, reviewer_id, current, actor.user_id, now)
        queued = await queue_for_event(gcx, conn, event, before.id, after)
    fired: list[tuple[object, None]] = [(event, None)]
    if queued:
        fired.append((NotificationsQueued(tuple(queued), now), None))
    fired.append((CountersChanged(now), None))
    await gcx.fire(fired)
    return after


def _may_assign(actor: Actor, current: int | None, reviewer_id: int | None) -> None:
    if actor.can("admin"):
        return
    me = actor.user_id
    if reviewer_id == me and current is None:
        return  # taking unassigned work
    if reviewer_id is None and current == me:
        return  # giving it back
    if reviewer_id == me:
        raise PermissionDeniedError(
            "this application is assigned to someone else; an admin can reassign it"
        )
    raise PermissionDeniedError("only admins assign applications to others")


async def conflicted_with(gcx: Gcx, app: Application) -> frozenset[int]:
    """The staff who declared a conflict of interest with this application's applicant."""
    async with gcx.database.read() as conn:
        return await user_rows.conflicted_staff(conn, app)


async def interests_of(gcx: Gcx, user_id: int) -> Interests:
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(staff_interests.c.kind, staff_interests.c.value)
            .where(staff_interests.c.user_id == user_id)
            .order_by(staff_interests.c.kind, staff_interests.c.value)
        )
        found = rows.all()
    return Interests(
        tuple(v for k, v in found if k == "domain"), tuple(v for k, v in found if k == "tin")
    )


async def set_interests(
    gcx: Gcx, actor: Actor, user_id: int, domains: Iterable[str], tins: Iterable[str]
) -> Interests:
    """Replace a staff member's declared conflicts (their own, or anyone's for an admin)."""
    if actor.user_id != user_id and not actor.can("admin"):
        raise PermissionDeniedError("staff declare their own conflicts of interest")
    errors: dict[str, str] = {}
    wanted_domains = sorted({d.strip().lower().lstrip("@") for d in domains if d.strip()})
    wanted_tins = sorted({normalise_tin(t) for t in tins if t.strip()})
    bad = [d for d in wanted_domains if not _DOMAIN.match(d)]
    if bad:
        errors["domains"] = f"not email domains: {', '.join(bad)}"
    bad = [t for t in wanted_tins if not _TIN.match(t)]
    if bad:
        errors["tins"] = f"not TINs: {', '.join(bad)}"
    if len(wanted_domains) + len(wanted_tins) > MAX_INTERESTS:
        errors["domains"] = f"at most {MAX_INTERESTS} domains and TINs in all"
    if errors:
        raise ValidationError(errors)
    now = gcx.now()
    async with gcx.database.write() as conn:
        user = await user_rows.get(conn, user_id)
        if user is None or user.role is Role.SUPPLIER:
            raise ValidationError({"user": "is not a staff member"})
        old = await conn.execute(
            sa.select(staff_interests.c.kind, staff_interests.c.value).where(
                staff_interests.c.user_id == user_id
            )
        )
        before = sorted(f"{k}:{v}" for k, v in old.all())
        await conn.execute(staff_interests.delete().where(staff_interests.c.user_id == user_id))
        rows = [
            {"user_id": user_id, "kind": kind, "value": value, "created_at": now}
            for kind, values in (("domain", wanted_domains), ("tin", wanted_tins))
            for value in values
        ]
        if rows:
            await conn.execute(staff_interests.insert(), rows)
        after = sorted(f"{r['kind']}:{r['value']}" for r in rows)
        if before != after:
            await bookkeeping.add_audit(
                conn,
                [
                    bookkeeping.audit_row(
                        actor,
                        "user.interests",
                        "user",
                        user_id,
                        at=now,
                        before={"interests": before},
                        after={"interests": after},
                    )
                ],
            )
    return Interests(tuple(wanted_domains), tuple(wanted_tins))
