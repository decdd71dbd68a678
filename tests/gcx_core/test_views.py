"""Saved views: own ones, shared ones (admins), names, queries, who deletes what."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx_core.entities import Role
from gcx_core.exceptions import NotFoundError, PermissionDeniedError, ValidationError
from gcx_core.services import views
from gcx_core.storage.tables import audit_log


async def test_own_and_shared_views(gcx, gcx_staff):
    reviewer, reviewer_actor = await gcx_staff(Role.REVIEWER)
    other, other_actor = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    mine = await views.save_view(
        gcx, reviewer_actor, "  My   late ones ", "?queue=mine&sort=status_changed_at&page=3"
    )
    assert mine.name == "My late ones" and mine.query == "queue=mine&sort=status_changed_at"
    team = await views.save_view(
        gcx, admin, "Ashanti, waiting", "status=pending_review&status=under_review&region=AH",
        shared=True,
    )  # fmt: skip
    assert [v.name for v in await views.views_for(gcx, reviewer.id)] == [
        "My late ones",
        "Ashanti, waiting",
    ]
    assert [v.id for v in await views.views_for(gcx, other.id)] == [team.id]
    with pytest.raises(NotFoundError):
        await views.delete_view(gcx, other_actor, mine.id)  # not theirs, not shared
    with pytest.raises(PermissionDeniedError):
        await views.delete_view(gcx, other_actor, team.id)
    await views.delete_view(gcx, admin, team.id)
    await views.delete_view(gcx, reviewer_actor, mine.id)
    assert await views.views_for(gcx, reviewer.id) == []
    async with gcx.database.read() as conn:
        actions = list(
            (
                await conn.execute(
                    sa.select(audit_log.c.action)
                    .where(audit_log.c.object_type == "saved_view")
                    .order_by(audit_log.c.id)
                )
            ).scalars()
        )
    assert actions == ["view.save", "view.save", "view.delete", "view.delete"]


async def test_bad_views_are_refused(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    with pytest.raises(PermissionDeniedError):
        await views.save_view(gcx, reviewer, "Everyone's", "queue=unassigned", shared=True)
    for name, query, field in (
        ("", "queue=mine", "name"),
        ("x" * 101, "queue=mine", "name"),
        ("Odd", "queue=mine&password=1", "query"),
        ("Long", "q=" + "x" * 2100, "query"),
    ):
        with pytest.raises(ValidationError) as refused:
            await views.save_view(gcx, reviewer, name, query)
        assert field in refused.value.errors  # type: ignore[attr-defined]
    await views.save_view(gcx, reviewer, "Mine", "queue=mine")
    with pytest.raises(ValidationError, match="name"):
        await views.save_view(gcx, reviewer, "Mine", "queue=unassigned")
