from __future__ import annotations

from gcx_core.entities import Actor, Role
from gcx_core.services import applications, dashboard
from gcx_core.testing import make_submission


async def test_submit_and_review(gcx, gcx_staff):
    reviewer, actor = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), Actor.applicant("10.0.0.1"))
    assert app.status == "pending_review"
    app = await applications.act(gcx, app.id, "start_review", actor, expected_version=app.version)
    assert app.status == "under_review"
    assert app.assigned_reviewer_id == reviewer.id
    snap = await dashboard.snapshot(gcx)
    assert snap.total == 1
