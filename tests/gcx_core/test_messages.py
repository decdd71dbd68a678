"""The thread between staff and the applicant: who writes, who is told, what is unread,
and files checked like uploads."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import NotFoundError, PermissionDeniedError, ValidationError
from gcx_core.services import applications, assignment, messages
from gcx_core.services.dashboard import snapshot
from gcx_core.storage.tables import notifications
from gcx_core.testing import make_submission
from tests.gcx_core.pdfs import PDF

APPLICANT = Actor.applicant("192.0.2.1")


async def emails(gcx, kind):
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(notifications.c.recipient, notifications.c.context).where(
                notifications.c.type == kind
            )
        )
        return rows.all()


async def test_staff_write_and_the_applicant_replies(gcx, gcx_staff):
    user, reviewer = await gcx_staff(Role.REVIEWER)
    other, _ = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await assignment.assign(gcx, app.id, user.id, reviewer)
    asked = await messages.write_to_applicant(gcx, app.id, reviewer, "Is the warehouse yours?")
    ((to, context),) = await emails(gcx, "message_to_applicant")
    assert to == app.contact.email and context["message"] == "Is the warehouse yours?"
    answer = await messages.write_to_staff(
        gcx, app.id, APPLICANT, "Yes, here is the deed.", content=PDF, filename="../deed.pdf"
    )
    assert answer.file_type == "application/pdf" and answer.file_name == "deed.pdf"
    ((told, context),) = await emails(gcx, "message_from_applicant")
    assert told == user.email and "message" not in context  # the reviewer gets a link
    assert other.email != told
    assert (await snapshot(gcx)).unread_messages == 1
    assert await messages.mark_read(gcx, app.id, messages.APPLICANT) == 1  # staff's message
    assert await messages.mark_read(gcx, app.id, messages.STAFF) == 1
    assert await messages.mark_read(gcx, app.id, messages.STAFF) == 0
    assert (await snapshot(gcx)).unread_messages == 0
    thread = await messages.thread(gcx, app.id)
    assert [(m.sender, m.read_at is not None) for m in thread] == [
        ("staff", True),
        ("applicant", True),
    ]
    found, content = await messages.attachment(gcx, answer.id, reviewer)
    assert content == PDF and found.id == answer.id
    with pytest.raises(PermissionDeniedError):
        await messages.attachment(gcx, answer.id, APPLICANT)
    with pytest.raises(NotFoundError):
        await messages.attachment(gcx, asked.id, reviewer)  # no file on it


async def test_unassigned_applications_tell_every_reviewer(gcx, gcx_staff):
    first, _ = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await messages.write_to_staff(gcx, app.id, APPLICANT, "Any news?")
    assert sorted(r.recipient for r in await emails(gcx, "message_from_applicant")) == sorted(
        [first.email, second.email]
    )


async def test_bad_messages_change_nothing(gcx, gcx_staff):
    _, viewer = await gcx_staff(Role.VIEWER)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    with pytest.raises(PermissionDeniedError):
        await messages.write_to_applicant(gcx, app.id, viewer, "hello")
    with pytest.raises(PermissionDeniedError):
        await messages.write_to_staff(gcx, app.id, reviewer, "pretending")
    for body, content, field in (
        ("  ", None, "body"),
        ("x" * 4001, None, "body"),
        ("see file", b"MZ\x90\x00 not a pdf", "file"),
        ("see file", b"%PDF" + b"0" * (10 * 1024 * 1024), "file"),
    ):
        with pytest.raises(ValidationError) as refused:
            await messages.write_to_staff(gcx, app.id, APPLICANT, body, content=content)
        assert field in refused.value.errors  # type: ignore[attr-defined]
    assert await messages.thread(gcx, app.id) == []
    assert await emails(gcx, "message_from_applicant") == []
