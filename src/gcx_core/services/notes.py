"""Internal notes: what staff write to each other about an application, with @mentions.

A note is for staff only: no applicant page, API answer or email carries it. Mentioned
colleagues (`@ama`, the part of their email before the @, or the whole address) are emailed
that they were mentioned, with a link, never the note's text.
"""

from __future__ import annotations

import re
from datetime import datetime

import attrs
import sqlalchemy as sa

from gcx_core.entities import Actor, ActorKind, NotificationDraft, User
from gcx_core.events import NoteAdded, NotificationsQueued
from gcx_core.exceptions import PermissionDeniedError, ValidationError
from gcx_core.services.applications import resolve
from gcx_core.services.event_outbox import write_drafts
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import internal_notes
from gcx_core.system import Gcx

MAX_BODY = 4000
_MENTION = re.compile(r"(?<![\w.])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


@attrs.frozen
class InternalNote:
    id: int
    application_id: int
    author_id: int
    body: str
    mentions: tuple[int, ...]
    created_at: datetime


def mentioned(body: str, staff: list[User], author_id: int | None) -> list[User]:
    """The active staff a note's @words name (by whole email or by its part before the @)."""
    words = {m.group(1).lower().rstrip(".") for m in _MENTION.finditer(body)}
    return [
        u
        for u in staff
        if u.id != author_id
        and (u.email.lower() in words or u.email.split("@")[0].lower() in words)
    ]


async def add_note(gcx: Gcx, ref: int | str, actor: Actor, body: str) -> InternalNote:
    if not actor.can("review") or actor.user_id is None:
        raise PermissionDeniedError("writing internal notes needs the review permission")
    body = body.strip()
    if not body:
        raise ValidationError({"body": "write the note first"})
    if len(body) > MAX_BODY:
        raise ValidationError({"body": f"must be at most {MAX_BODY} characters"})
    now = gcx.now()
    async with gcx.database.write() as conn:
        app = await resolve(conn, ref)
        staff = await user_rows.active_staff(conn)
        told = mentioned(body, staff, actor.user_id)
        result = await conn.execute(
            internal_notes.insert().values(
                application_id=app.id,
                author_id=actor.user_id,
                body=body,
                mentions=[u.id for u in told],
                created_at=now,
            )
        )
        note_id = int(result.inserted_primary_key[0])
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "note.add",
                    "application",
                    app.id,
                    at=now,
                    # The audit log says that a note was written, not what it says.
                    after={"note_id": note_id, "mentions": [u.id for u in told]},
                )
            ],
        )
        author = next((u for u in staff if u.id == actor.user_id), None)
        context = {
            "business_name": app.business.name,
            "tracking_code": app.tracking_code,
            "application_id": app.id,
            "author": (author.name or author.email) if author else actor.label,
        }
        queued = await write_drafts(
            gcx,
            conn,
            [NotificationDraft("note_mention", u.email, dict(context)) for u in told],
            application_id=app.id,
            at=now,
        )
    fired: list[tuple[object, None]] = [
        (NoteAdded(app.id, note_id, actor.user_id, tuple(u.id for u in told), now), None)
    ]
    if queued:
        fired.append((NotificationsQueued(tuple(queued), now), None))
    await gcx.fire(fired)
    return InternalNote(note_id, app.id, actor.user_id, body, tuple(u.id for u in told), now)


async def notes_of(gcx: Gcx, app_id: int, actor: Actor) -> list[InternalNote]:
    """An application's notes, oldest first: staff only."""
    if actor.kind not in (ActorKind.STAFF, ActorKind.SYSTEM) or not actor.can("view"):
        raise PermissionDeniedError("internal notes are for staff")
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(internal_notes)
            .where(internal_notes.c.application_id == app_id)
            .order_by(internal_notes.c.id)
        )
        return [
            InternalNote(
                r.id, r.application_id, r.author_id, r.body, tuple(r.mentions or ()), r.created_at
            )
            for r in rows
        ]
