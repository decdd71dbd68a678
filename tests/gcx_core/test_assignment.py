"""Assignment: who may take, assign and give back work; conflicts of interest; races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.events import ApplicationAssigned
from gcx_core.exceptions import (
    ConflictError,
    GuardFailedError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.plugins import hookimpl
from gcx_core.services import applications, assignment
from gcx_core.services.applications import blocked_actions
from gcx_core.services.dashboard import snapshot
from gcx_core.storage.tables import audit_log, notifications
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant("192.0.2.1")


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def gcx_handle_event(self, event: Any) -> None:
        if isinstance(event, ApplicationAssigned):
            self.seen.append(event)


@pytest.fixture(name="events")
def _events() -> Events:
    return Events()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(events: Events) -> list[object]:
    return [events]


async def submitted(gcx: Any, **overrides: Any) -> Any:
    return await applications.submit(gcx, make_submission(**overrides), APPLICANT)


async def emails_to(gcx: Any, address: str) -> list[str]:
    async with gcx.database.read() as conn:
        found = await conn.execute(
            sa.select(notifications.c.type).where(notifications.c.recipient == address)
        )
        return list(found.scalars())


async def test_a_reviewer_takes_unassigned_work_and_gives_it_back(gcx, gcx_staff, events):
    user, reviewer = await gcx_staff(Role.REVIEWER)
    app = await submitted(gcx)
    taken = await assignment.assign(gcx, app.id, user.id, reviewer, expected_version=app.version)
    assert taken.assigned_reviewer_id == user.id and taken.version == app.version + 1
    assert await emails_to(gcx, user.email) == ["new_application"]  # no mail for taking it
    back = await assignment.assign(gcx, app.id, None, reviewer)
    assert back.assigned_reviewer_id is None
    assert [(e.reviewer_id, e.previous_reviewer_id) for e in events.seen] == [
        (user.id, None),
        (None, user.id),
    ]
    async with gcx.database.read() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log.c.action, audit_log.c.after)
                .where(audit_log.c.action.like("application.%"))
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [r.action for r in rows] == ["application.take", "application.unassign"]
    assert rows[0].after["assigned_reviewer_id"] == user.id


async def test_only_admins_assign_others_or_take_over(gcx, gcx_staff):
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, second_actor = await gcx_staff(Role.REVIEWER)
    _, viewer = await gcx_staff(Role.VIEWER)
    admin_user, admin = await gcx_staff(Role.ADMIN)
    app = await submitted(gcx)
    with pytest.raises(PermissionDeniedError):
        await assignment.assign(gcx, app.id, viewer.user_id, viewer)
    with pytest.raises(PermissionDeniedError, match="only admins"):
        await assignment.assign(gcx, app.id, second.id, first_actor)
    await assignment.assign(gcx, app.id, first.id, first_actor)
    with pytest.raises(PermissionDeniedError, match="assigned to someone else"):
        await assignment.assign(gcx, app.id, second.id, second_actor)
    with pytest.raises(PermissionDeniedError):
        await assignment.assign(gcx, app.id, None, second_actor)
    moved = await assignment.assign(gcx, app.id, second.id, admin)
    assert moved.assigned_reviewer_id == second.id
    assert await emails_to(gcx, second.email) == ["new_application", "application_assigned"]
    assert await assignment.assign(gcx, app.id, admin_user.id, admin)  # admins review too
    assert (await assignment.assign(gcx, app.id, None, admin)).assigned_reviewer_id is None


async def test_bad_assignments_change_nothing(gcx, gcx_staff):
    viewer, _ = await gcx_staff(Role.VIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    reviewer, reviewer_actor = await gcx_staff(Role.REVIEWER)
    app = await submitted(gcx)
    for target in (viewer.id, 999_999):
        with pytest.raises(ValidationError, match="may review"):
            await assignment.assign(gcx, app.id, target, admin)
    with pytest.raises(ConflictError):
        await assignment.assign(gcx, app.id, reviewer.id, admin, expected_version=app.version + 5)
    await applications.act(
        gcx,
        app.id,
        "reject",
        reviewer_actor,
        params={"reason_code": "ineligible", "message": "Not a supplier of grain."},
    )
    with pytest.raises(ValidationError, match="waits on nobody"):
        await assignment.assign(gcx, app.id, reviewer.id, admin)
    async with gcx.database.read() as conn:
        assert (await applications.resolve(conn, app.id)).assigned_reviewer_id is None


async def test_two_reviewers_taking_the_same_application_one_wins(gcx, gcx_staff):
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, second_actor = await gcx_staff(Role.REVIEWER)
    app = await submitted(gcx)
    results = await asyncio.gather(
        assignment.assign(gcx, app.id, first.id, first_actor, expected_version=app.version),
        assignment.assign(gcx, app.id, second.id, second_actor, expected_version=app.version),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], ConflictError | PermissionDeniedError)
    async with gcx.database.read() as conn:
        current = await applications.resolve(conn, app.id)
    assert current.assigned_reviewer_id == won[0].assigned_reviewer_id


async def test_a_declared_conflict_keeps_a_reviewer_off_the_application(gcx, gcx_staff):
    user, reviewer = await gcx_staff(Role.REVIEWER)
    _, other_actor = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    declared = await assignment.set_interests(
        gcx, reviewer, user.id, ["@Family-Farms.example ", ""], ["c00 1234567"]
    )
    assert declared == assignment.Interests(("family-farms.example",), ("C001234567",))
    assert await assignment.interests_of(gcx, user.id) == declared
    by_domain = await submitted(gcx, **{"contact.email": "ama@family-farms.example"})
    by_tin = await submitted(gcx, **{"business.tin": "C001234567"})
    unrelated = await submitted(gcx)
    for app in (by_domain, by_tin):
        with pytest.raises(ValidationError, match="conflict of interest"):
            await assignment.assign(gcx, app.id, user.id, admin)
        with pytest.raises(GuardFailedError, match="conflict of interest"):
            await applications.act(gcx, app.id, "start_review", reviewer)
        blocked = await blocked_actions(gcx, app, reviewer, ["start_review"])
        assert "conflict of interest" in blocked["start_review"]["conflict_of_interest"]
        await applications.act(gcx, app.id, "start_review", other_actor)  # others may
    await applications.act(gcx, unrelated.id, "start_review", reviewer)
    # Declared after the review began: deciding it is refused too; the assignee hears why.
    await assignment.set_interests(gcx, admin, user.id, [], [unrelated.business.tin])
    with pytest.raises(GuardFailedError, match="conflict of interest"):
        await applications.act(
            gcx,
            unrelated.id,
            "reject",
            reviewer,
            params={"reason_code": "ineligible", "message": "Not a supplier of grain."},
        )


async def test_interests_are_checked_and_private(gcx, gcx_staff):
    user, reviewer = await gcx_staff(Role.REVIEWER)
    other, _ = await gcx_staff(Role.REVIEWER)
    with pytest.raises(ValidationError) as refused:
        await assignment.set_interests(gcx, reviewer, user.id, ["not a domain"], ["12"])
    assert set(refused.value.errors) == {"domains", "tins"}  # type: ignore[attr-defined]
    with pytest.raises(PermissionDeniedError):
        await assignment.set_interests(gcx, reviewer, other.id, ["a.example"], [])
    assert await assignment.interests_of(gcx, user.id) == assignment.Interests()


async def test_the_workload_says_how_long_each_reviewer_has_held_work(
    gcx, gcx_staff, gcx_clock
) -> None:
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, second_actor = await gcx_staff(Role.REVIEWER)
    early = await applications.submit(gcx, make_submission(), APPLICANT)
    await applications.act(gcx, early.id, "start_review", first_actor)
    started = gcx_clock.now
    gcx_clock.advance(days=3)
    later = await applications.submit(gcx, make_submission(), APPLICANT)
    await assignment.assign(gcx, later.id, first.id, first_actor)
    held = await applications.submit(gcx, make_submission(), APPLICANT)
    await assignment.assign(gcx, held.id, second.id, second_actor)
    snap = await snapshot(gcx)
    assert snap.workload == {first.id: 2, second.id: 1}
    assert snap.workload_oldest[first.id] == started
    assert snap.workload_oldest[second.id] == gcx_clock.now
