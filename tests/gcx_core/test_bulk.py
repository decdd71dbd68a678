"""Bulk operations: each application on its own (guards, audit, messages), one outcome each."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import (
    GuardFailedError,
    InvalidTransitionError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.services import applications, assignment, bulk
from gcx_core.storage.tables import audit_log
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant("192.0.2.1")


async def test_each_application_passes_its_own_rules(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, conflicted = await gcx_staff(Role.REVIEWER)
    apps = [await applications.submit(gcx, make_submission(), APPLICANT) for _ in range(3)]
    await applications.act(gcx, apps[1].id, "start_review", reviewer)  # already under review
    outcomes = await bulk.run(gcx, reviewer, "start_review", [a.id for a in apps], {})
    assert [o.done for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, InvalidTransitionError)
    # Reject with one reason and message; a declared conflict refuses only that one.
    await assignment.set_interests(gcx, conflicted, conflicted.user_id, [], [apps[2].business.tin])
    outcomes = await bulk.run(
        gcx,
        conflicted,
        "reject",
        [a.id for a in apps] + [apps[0].id],  # a repeat counts once
        {"reason_code": "ineligible", "message": "Not a supplier of grain."},
    )
    assert [o.done for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, GuardFailedError)
    async with gcx.database.read() as conn:
        rejected = (
            await conn.execute(
                sa.select(audit_log.c.object_id).where(audit_log.c.action == "reject")
            )
        ).scalars()
        assert sorted(rejected) == sorted([str(apps[0].id), str(apps[1].id)])


async def test_bulk_assignment_and_bad_requests(gcx, gcx_staff):
    user, reviewer = await gcx_staff(Role.REVIEWER)
    _, viewer = await gcx_staff(Role.VIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    apps = [await applications.submit(gcx, make_submission(), APPLICANT) for _ in range(2)]
    outcomes = await bulk.run(gcx, admin, "assign", [a.id for a in apps], {"reviewer_id": user.id})
    assert all(o.done for o in outcomes)
    outcomes = await bulk.run(gcx, reviewer, "assign", [a.id for a in apps], {"reviewer_id": ""})
    assert all(o.done for o in outcomes)  # giving back their own
    with pytest.raises(PermissionDeniedError):
        await bulk.run(gcx, viewer, "start_review", [apps[0].id], {})
    for operation, ids, params, field in (
        ("approve_all", [apps[0].id], {}, "operation"),
        ("start_review", [], {}, "id"),
        ("start_review", list(range(1, 502)), {}, "id"),
        ("reject", [apps[0].id], {"reason_code": "whim", "message": "x"}, "reason_code"),
        ("reject", [apps[0].id], {"reason_code": "ineligible", "message": " "}, "message"),
        ("assign", [apps[0].id], {"reviewer_id": "me"}, "reviewer_id"),
    ):
        with pytest.raises(ValidationError) as refused:
            await bulk.run(gcx, admin, operation, ids, params)
        assert field in refused.value.errors  # type: ignore[attr-defined]
    async with gcx.database.read() as conn:
        statuses = (
            await conn.execute(sa.select(audit_log.c.action).where(audit_log.c.action == "reject"))
        ).all()
    assert statuses == []  # nothing was rejected by the refused requests
