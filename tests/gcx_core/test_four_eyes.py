"""Two-person approval (GCX_FOUR_EYES) and keeping the reviewer from approving
(GCX_APPROVER_NOT_REVIEWER): sign-offs, refusals, messages, timeline and audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import GuardFailedError
from gcx_core.services import applications, documents
from gcx_core.services.applications import blocked_actions
from gcx_core.settings import Settings
from gcx_core.storage.tables import audit_log, notifications, status_changes, users
from gcx_core.testing import make_submission
from tests.gcx_core.pdfs import PDF

APPLICANT = Actor.applicant("192.0.2.1")


@pytest.fixture(name="rules")
def _rules() -> dict[str, bool]:
    return {"four_eyes": True}


@pytest.fixture(name="gcx_settings")
def _settings(gcx_database_url: str, tmp_path: Path, rules: dict[str, bool]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=gcx_database_url,
        secret_key="test-secret-key-not-for-production",
        **rules,
    )


async def ready(gcx: Any, reviewer: Actor) -> Any:
    """An application under review (started by `reviewer`), every required document verified."""
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    for r in gcx.requirements_for(app):
        doc = await documents.upload_document(gcx, app.id, r.code, PDF, "d.pdf", APPLICANT)
        await documents.review_document(gcx, doc.id, True, reviewer)
    return await applications.act(gcx, app.id, "start_review", reviewer)


async def sent(gcx: Any, kind: str) -> list[str]:
    async with gcx.database.read() as conn:
        found = await conn.execute(
            sa.select(notifications.c.recipient).where(notifications.c.type == kind)
        )
        return sorted(found.scalars())


async def test_a_second_approver_confirms(gcx, gcx_staff):
    first_user, first = await gcx_staff(Role.REVIEWER)
    second_user, second = await gcx_staff(Role.REVIEWER)
    app = await ready(gcx, first)
    pending = await applications.act(gcx, app.id, "approve", first)
    assert pending.status == "approval_pending"
    assert await sent(gcx, "approved") == []  # the applicant hears once it is confirmed
    assert await sent(gcx, "approval_requested") == [second_user.email]
    with pytest.raises(GuardFailedError, match="another approver must confirm"):
        await applications.act(gcx, app.id, "confirm_approval", first)
    blocked = await blocked_actions(gcx, pending, first, ["confirm_approval"])
    assert "first approval" in blocked["confirm_approval"]["four_eyes"]
    assert await blocked_actions(gcx, pending, second, ["confirm_approval"]) == {}
    approved = await applications.act(gcx, app.id, "confirm_approval", second)
    assert approved.status == "approved"
    assert await sent(gcx, "approved") == [app.contact.email]
    async with gcx.database.read() as conn:
        supplier = (
            await conn.execute(sa.select(users.c.id).where(users.c.role == "supplier"))
        ).all()
        changes = (
            await conn.execute(
                sa.select(status_changes.c.action, status_changes.c.actor)
                .where(status_changes.c.application_id == app.id)
                .order_by(status_changes.c.id)
            )
        ).all()
        audited = (
            await conn.execute(
                sa.select(audit_log.c.action, audit_log.c.actor).where(
                    audit_log.c.action.in_(["approve", "confirm_approval"])
                )
            )
        ).all()
    assert len(supplier) == 1  # the account opens on the second sign-off only
    assert [tuple(c) for c in changes[-2:]] == [
        ("approve", first_user.email),
        ("confirm_approval", second_user.email),
    ]
    assert sorted(tuple(a) for a in audited) == sorted(
        [("approve", first_user.email), ("confirm_approval", second_user.email)]
    )


async def test_sent_back_a_new_round_starts(gcx, gcx_staff):
    first_user, first = await gcx_staff(Role.REVIEWER)
    _, second = await gcx_staff(Role.REVIEWER)
    app = await ready(gcx, first)
    await applications.act(gcx, app.id, "approve", first)
    with pytest.raises(GuardFailedError, match="why"):
        await applications.act(gcx, app.id, "return_to_review", second)
    back = await applications.act(
        gcx, app.id, "return_to_review", second, params={"comment": "Check the bank details."}
    )
    assert back.status == "under_review"
    assert await sent(gcx, "approval_returned") == [first_user.email]  # the reviewer
    await applications.act(gcx, app.id, "approve", second)  # this round's first approval
    with pytest.raises(GuardFailedError):
        await applications.act(gcx, app.id, "confirm_approval", second)
    assert (await applications.act(gcx, app.id, "confirm_approval", first)).status == "approved"


@pytest.mark.parametrize("rules", [{"four_eyes": True, "approver_not_reviewer": True}])
async def test_the_reviewer_signs_off_neither_time(gcx, gcx_staff, rules):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, second = await gcx_staff(Role.REVIEWER)
    _, third = await gcx_staff(Role.ADMIN)
    app = await ready(gcx, reviewer)
    with pytest.raises(GuardFailedError, match="you reviewed this application"):
        await applications.act(gcx, app.id, "approve", reviewer)
    await applications.act(gcx, app.id, "approve", second)
    with pytest.raises(GuardFailedError, match="you reviewed this application"):
        await applications.act(gcx, app.id, "confirm_approval", reviewer)
    assert (await applications.act(gcx, app.id, "confirm_approval", third)).status == "approved"


@pytest.mark.parametrize("rules", [{"approver_not_reviewer": True}])
async def test_one_approver_who_is_not_the_reviewer(gcx, gcx_staff, rules):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, other = await gcx_staff(Role.REVIEWER)
    app = await ready(gcx, reviewer)
    assert "confirm_approval" not in gcx.workflow.transitions
    with pytest.raises(GuardFailedError, match="someone else must approve"):
        await applications.act(gcx, app.id, "approve", reviewer)
    assert (await applications.act(gcx, app.id, "approve", other)).status == "approved"


@pytest.mark.parametrize("rules", [{}])
async def test_by_default_one_approval_is_enough(gcx, gcx_staff, rules):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await ready(gcx, reviewer)
    assert "approval_pending" not in gcx.workflow.states
    assert (await applications.act(gcx, app.id, "approve", reviewer)).status == "approved"


def test_the_settings_are_read():
    settings = Settings.from_env({"GCX_FOUR_EYES": "true", "GCX_APPROVER_NOT_REVIEWER": "yes"})
    assert settings.four_eyes and settings.approver_not_reviewer
