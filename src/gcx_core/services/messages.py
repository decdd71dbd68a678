"""The thread between staff and an applicant about one application.

Staff (with the review permission) write from the back office; the applicant reads and
replies from the track page, by tracking code, and may attach one file, checked like an
upload (its type from its content: PDF, PNG or JPEG; at most 10 MB). Each message tells the
other side through the outbox: the applicant by email with the message, the application's
reviewer (or every reviewer while it has none) by email with a link. Messages are unread
until the other side's page shows them; `unread:staff` counts what staff have not read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from gcx_core.entities import Actor, ActorKind, Application, NotificationDraft, User
from gcx_core.events import CountersChanged, MessageSent, NotificationsQueued
from gcx_core.exceptions import NotFoundError, PermissionDeniedError, ValidationError
from gcx_core.files import sanitise_filename, sniff_content_type
from gcx_core.services.applications import resolve
from gcx_core.services.event_outbox import write_drafts
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import messages
from gcx_core.system import Gcx

MAX_BODY = 4000
MAX_FILE = 10 * 1024 * 1024
FILE_TYPES = ("application/pdf", "image/png", "image/jpeg")
UNREAD_BY_STAFF = "unread:staff"  # counter: applicants' messages no member of staff has read
STAFF, APPLICANT = "staff", "applicant"


@attrs.frozen
class Message:
    id: int
    application_id: int
    sender: str
    author_id: int | None
    body: str
    file_key: str | None
    file_name: str
    file_type: str
    file_size: int
    created_at: datetime
    read_at: datetime | None


def _body(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"body": "write the message first"})
    if len(text) > MAX_BODY:
        raise ValidationError({"body": f"must be at most {MAX_BODY} characters"})
    return text


async def write_to_applicant(gcx: Gcx, ref: int | str, actor: Actor, body: str) -> Message:
    """A member of staff writes to the applicant, who is emailed the message."""
    if not actor.can("review") or actor.kind is not ActorKind.STAFF:
        raise PermissionDeniedError("writing to applicants needs the review permission")
    text = _body(body)
    async with gcx.database.write() as conn:
        app = await resolve(conn, ref)
        drafts = [NotificationDraft("message_to_applicant", app.contact.email, _context(app, text))]
        message, fired = await _store(gcx, conn, app, actor, STAFF, text, None, drafts)
    await gcx.fire(fired)
    return message


async def write_to_staff(
    gcx: Gcx,
    ref: int | str,
    actor: Actor,
    body: str,
    *,
    content: bytes | None = None,
    filename: str = "",
) -> Message:
    """The applicant writes to staff, with one file at most; the reviewer is emailed a link."""
    if actor.kind is not ActorKind.APPLICANT:
        raise PermissionDeniedError("only the applicant writes here")
    text = _body(body)
    attachment = None
    if content:
        if len(content) > MAX_FILE:
            raise ValidationError({"file": "must be at most 10 MB"})
        kind = sniff_content_type(content)
        if kind not in FILE_TYPES:
            raise ValidationError({"file": "must be a PDF, PNG or JPEG file"})
        key = await gcx.files.put(content)
        attachment = (key, sanitise_filename(filename, "attachment"), kind, len(content))
    async with gcx.database.write() as conn:
        app = await resolve(conn, ref)
        staff = [u for u in await user_rows.active_staff(conn) if u.can("review")]
        told = _reviewers(app, staff)
        context = _context(app, "")
        drafts = [NotificationDraft("message_from_applicant", u.email, dict(context)) for u in told]
        message, fired = await _store(gcx, conn, app, actor, APPLICANT, text, attachment, drafts)
    await gcx.fire(fired)
    return message


def _reviewers(app: Application, staff: list[User]) -> list[User]:
    mine = [u for u in staff if u.id == app.assigned_reviewer_id]
    return mine or staff


def _context(app: Application, text: str) -> dict[str, Any]:
    context: dict[str, Any] = {
        "business_name": app.business.name,
        "tracking_code": app.tracking_code,
        "application_id": app.id,
    }
    if text:
        context["message"] = text
    return context


async def _store(
    gcx: Gcx,
    conn: Connection,
    app: Application,
    actor: Actor,
    sender: str,
    text: str,
    attachment: tuple[str, str, str, int] | None,
    drafts: list[NotificationDraft],
) -> tuple[Message, list[tuple[object, None]]]:
    """Write the message, its notifications, counter and audit entry; returns it and the
    events to fire once the transaction has committed."""
    now = gcx.now()
    key, name, kind, size = attachment or (None, "", "", 0)
    result = await conn.execute(
        messages.insert().values(
            application_id=app.id,
            sender=sender,
            author_id=actor.user_id if sender == STAFF else None,
            body=text,
            file_key=key,
            file_name=name,
            file_type=kind,
            file_size=size,
            created_at=now,
            read_at=None,
        )
    )
    message = Message(
        int(result.inserted_primary_key[0]),
        app.id,
        sender,
        actor.user_id if sender == STAFF else None,
        text,
        key,
        name,
        kind,
        size,
        now,
        None,
    )
    if sender == APPLICANT:
        await bookkeeping.bump_counters(conn, {UNREAD_BY_STAFF: 1})
    queued = await write_drafts(gcx, conn, drafts, application_id=app.id, at=now)
    await bookkeeping.add_audit(
        conn,
        [
            bookkeeping.audit_row(
                actor,
                "message.send",
                "application",
                app.id,
                at=now,
                # That a message went, not what it says (it is in the thread).
                after={"message_id": message.id, "sender": sender, "file": bool(key)},
            )
        ],
    )
    fired: list[tuple[object, None]] = [(MessageSent(app.id, message.id, sender, now), None)]
    if queued:
        fired.append((NotificationsQueued(tuple(queued), now), None))
    fired.append((CountersChanged(now), None))
    return message, fired


async def thread(gcx: Gcx, app_id: int) -> list[Message]:
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(messages).where(messages.c.application_id == app_id).order_by(messages.c.id)
        )
        return [Message(**r._mapping) for r in rows]


async def mark_read(gcx: Gcx, app_id: int, reader: str) -> int:
    """The other side's messages, shown to `reader` ("staff" or "applicant"), are read now."""
    writer = APPLICANT if reader == STAFF else STAFF
    unread = (
        messages.c.application_id == app_id,
        messages.c.sender == writer,
        messages.c.read_at.is_(None),
    )
    async with gcx.database.read() as conn:  # most page views find nothing new: no write
        if (await conn.execute(sa.select(messages.c.id).where(*unread).limit(1))).first() is None:
            return 0
    async with gcx.database.write() as conn:
        result = await conn.execute(
            messages.update()
            .where(
                messages.c.application_id == app_id,
                messages.c.sender == writer,
                messages.c.read_at.is_(None),
            )
            .values(read_at=gcx.now())
        )
        count = int(result.rowcount or 0)
        if count and reader == STAFF:
            await bookkeeping.bump_counters(conn, {UNREAD_BY_STAFF: -count})
    if count and reader == STAFF:
        await gcx.fire([(CountersChanged(gcx.now()), None)])
    return count


async def attachment(gcx: Gcx, message_id: int, actor: Actor) -> tuple[Message, bytes]:
    """A message's file, for staff who may view."""
    if not actor.can("view") or actor.kind not in (ActorKind.STAFF, ActorKind.SYSTEM):
        raise PermissionDeniedError("attachments are for staff")
    async with gcx.database.read() as conn:
        row = (await conn.execute(sa.select(messages).where(messages.c.id == message_id))).first()
    if row is None or not row.file_key:
        raise NotFoundError("attachment", message_id)
    message = Message(**row._mapping)
    assert message.file_key is not None
    return message, await gcx.files.get(message.file_key)
