"""The applicant's status view is made once per application revision, and follows every change."""

from __future__ import annotations

import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.services import applications, documents
from gcx_core.services.applicant import applicant_view
from gcx_core.storage.tables import applications as application_rows
from gcx_core.system import Gcx
from gcx_core.testing import make_submission

from .pdfs import PDF

APPLICANT = Actor.applicant()


async def revision(gcx: Gcx, app_id: int) -> int:
    async with gcx.database.read() as conn:
        query = sa.select(application_rows.c.revision).where(application_rows.c.id == app_id)
        return int((await conn.execute(query)).scalar_one())


async def test_an_unchanged_application_gets_the_same_view(gcx: Gcx) -> None:
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    first = await applicant_view(gcx, app.tracking_code)
    assert await applicant_view(gcx, app.tracking_code) is first
    assert await applicant_view(gcx, app.tracking_code.lower()) is first


async def test_every_change_moves_the_revision_and_makes_a_new_view(gcx: Gcx, gcx_staff) -> None:
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    seen = [await applicant_view(gcx, app.tracking_code)]
    revisions = [await revision(gcx, app.id)]

    doc = await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    seen.append(await applicant_view(gcx, app.tracking_code))
    revisions.append(await revision(gcx, app.id))
    assert [o.requirement.code for o in seen[-1].outstanding].count("tax_clearance") == 0

    await documents.review_document(gcx, doc.id, False, reviewer, note="blurred")
    seen.append(await applicant_view(gcx, app.tracking_code))
    revisions.append(await revision(gcx, app.id))
    rejected = [o for o in seen[-1].outstanding if o.requirement.code == "tax_clearance"]
    assert [(o.reason, o.note) for o in rejected] == [("rejected", "blurred")]

    await applications.act(gcx, app.id, "start_review", reviewer)
    seen.append(await applicant_view(gcx, app.tracking_code))
    revisions.append(await revision(gcx, app.id))
    assert seen[-1].application.status == "under_review"

    assert revisions == sorted(set(revisions)) and len(revisions) == 4
    assert len({id(view) for view in seen}) == 4


async def test_a_change_made_by_another_process_is_seen_at_once(gcx: Gcx) -> None:
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    before = await applicant_view(gcx, app.tracking_code)
    async with await Gcx.open(gcx.settings, plugin_manager=gcx.plugins) as other:
        await documents.upload_document(other, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    after = await applicant_view(gcx, app.tracking_code)
    assert after is not before
    assert "tax_clearance" not in [o.requirement.code for o in after.outstanding]
