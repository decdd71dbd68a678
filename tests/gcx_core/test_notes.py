"""Internal notes: @mentions tell colleagues (by email, without the text); the applicant
never sees a note: not on the track page, not in the public API, not in any email."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import PermissionDeniedError, ValidationError
from gcx_core.services import applications, notes
from gcx_core.services.queries import timeline
from gcx_core.storage.tables import audit_log, notifications
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant("192.0.2.1")
SECRET_NOTE = "Director is the reviewer's cousin"


async def test_mentions_tell_colleagues_without_the_text(gcx: Any, gcx_staff: Any) -> None:
    author, author_actor = await gcx_staff(Role.REVIEWER, email="kofi@staff.example.com")
    ama, _ = await gcx_staff(Role.REVIEWER, email="ama@staff.example.com")
    boss, _ = await gcx_staff(Role.ADMIN, email="esi.boss@staff.example.com")
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    note = await notes.add_note(
        gcx,
        app.id,
        author_actor,
        f"@ama @esi.boss@staff.example.com @kofi @nobody: {SECRET_NOTE}. mail@example.com",
    )
    assert set(note.mentions) == {ama.id, boss.id}  # not the author, not unknown names
    assert [n.body for n in await notes.notes_of(gcx, app.id, author_actor)] == [note.body]
    async with gcx.database.read() as conn:
        rows = (
            await conn.execute(
                sa.select(notifications).where(notifications.c.type == "note_mention")
            )
        ).all()
        audited = (
            await conn.execute(sa.select(audit_log).where(audit_log.c.action == "note.add"))
        ).all()
    assert sorted(r.recipient for r in rows) == sorted([ama.email, boss.email])
    assert all(SECRET_NOTE not in str(r.context) for r in rows)
    assert rows[0].context["author"] == author.email
    assert len(audited) == 1 and SECRET_NOTE not in str(audited[0].after)


async def test_notes_are_for_reviewers_to_write_and_staff_to_read(gcx, gcx_staff):
    _, viewer = await gcx_staff(Role.VIEWER)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    with pytest.raises(PermissionDeniedError):
        await notes.add_note(gcx, app.id, viewer, "hello")
    for body, says in (("   ", "write the note"), ("x" * 4001, "at most")):
        with pytest.raises(ValidationError, match=says):
            await notes.add_note(gcx, app.id, reviewer, body)
    assert await notes.notes_of(gcx, app.id, viewer) == []
    with pytest.raises(PermissionDeniedError):
        await notes.notes_of(gcx, app.id, APPLICANT)


async def test_the_applicant_never_sees_a_note(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await notes.add_note(gcx, app.id, reviewer, SECRET_NOTE)
    await applications.act(gcx, app.id, "start_review", reviewer)
    seen = await timeline(gcx, app.id, for_applicant=True)
    assert SECRET_NOTE not in str(seen)
    async with gcx.database.read() as conn:
        contexts = (
            await conn.execute(
                sa.select(notifications.c.context).where(
                    notifications.c.recipient == app.contact.email
                )
            )
        ).scalars()
        assert all(SECRET_NOTE not in str(c) for c in contexts)
