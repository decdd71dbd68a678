"""Uploading document versions and reviewing them."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gcx_core.entities import (
    Actor,
    ActorKind,
    Application,
    DocumentRequirement,
    DocumentVersion,
    ReviewStatus,
)
from gcx_core.events import (
    CountersChanged,
    DocumentReviewed,
    DocumentUploaded,
    NotificationsQueued,
)
from gcx_core.exceptions import (
    FileTooLargeError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedFileTypeError,
    ValidationError,
)
from gcx_core.files import sanitise_filename, sniff_content_type
from gcx_core.plugins import first_async
from gcx_core.services import renewals
from gcx_core.services.applications import resolve
from gcx_core.services.event_outbox import queue_for_event
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import applications as app_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage import documents as doc_rows
from gcx_core.storage.tables import documents, draft_files
from gcx_core.system import Gcx

MAX_NOTE = 2000


def _may_upload(actor: Actor) -> bool:
    return actor.kind in (
        ActorKind.APPLICANT,
        ActorKind.SUPPLIER,
        ActorKind.SYSTEM,
    ) or actor.can("review")


@attrs.frozen
class CheckedUpload:
    """A file that passed every check for one requirement, ready to store."""

    requirement: DocumentRequirement
    content: bytes
    content_type: str
    filename: str


def _may_receive(gcx: Gcx, app: Application, actor: Actor | None = None) -> bool:
    state = gcx.workflow.state(app.status)
    if actor is not None and actor.kind is ActorKind.SUPPLIER:
        # A supplier renews documents for as long as the account's application is live.
        return state.active and not state.terminal
    return state.open_for_documents


async def check_upload(
    gcx: Gcx,
    app: Application,
    requirement_code: str,
    content: bytes,
    filename: str,
    actor: Actor | None = None,
) -> CheckedUpload:
    """Everything that can refuse a file before it is stored: requirement, state, size, type."""
    applicable = {r.code: r for r in gcx.requirements_for(app)}
    requirement = applicable.get(requirement_code)
    if requirement is None:
        raise ValidationError({"requirement": f"unknown document requirement {requirement_code!r}"})
    if app.id and not _may_receive(gcx, app, actor):
        raise InvalidTransitionError(app.status, "upload_document")
    limit = min(requirement.max_bytes, gcx.settings.max_upload_bytes)
    if len(content) > limit:
        raise FileTooLargeError(len(content), limit)
    if not content:
        raise ValidationError({"file": "the file is empty"})
    content_type = sniff_content_type(content)
    if content_type not in requirement.content_types:
        raise UnsupportedFileTypeError(content_type, requirement.content_types)
    name = sanitise_filename(filename)
    refusal = await first_async(
        gcx.plugins.hook.gcx_validate_upload,
        requirement=requirement,
        content=content,
        content_type=content_type,
        filename=name,
    )
    if refusal:
        raise ValidationError({"file": str(refusal)})
    return CheckedUpload(requirement, content, content_type, name)


async def upload_document(
    gcx: Gcx,
    ref: int | str,
    requirement_code: str,
    content: bytes,
    filename: str,
    actor: Actor,
    *,
    valid_until: date | None = None,
) -> DocumentVersion:
    """Store a new version of a document; checks size and type by content, never by name.

    A requirement with `expiry_date` needs `valid_until`, the last day the document is valid
    (after today); one with `validity_days` is valid that long from now; others take none.
    """
    if not _may_upload(actor):
        raise PermissionDeniedError("only the applicant or a reviewer may upload documents")
    async with gcx.database.read() as conn:
        app = await resolve(conn, ref)
        if actor.kind is ActorKind.SUPPLIER:
            owner = await user_rows.get(conn, actor.user_id) if actor.user_id else None
            if owner is None or owner.application_id != app.id:
                raise PermissionDeniedError("a supplier uploads to their own application only")
    checked = await check_upload(gcx, app, requirement_code, content, filename, actor)
    until = valid_until_of(gcx, gcx.requirements[requirement_code], valid_until)
    content_type, name = checked.content_type, checked.filename
    key = await gcx.files.put(content)
    now = gcx.now()
    async with gcx.database.write() as conn:
        app = await resolve(conn, app.id)  # re-read under the write lock: it may have moved on
        if not _may_receive(gcx, app, actor):
            raise InvalidTransitionError(app.status, "upload_document")
        version = await doc_rows.next_version(conn, app.id, requirement_code)
        values = {
            "application_id": app.id,
            "requirement_code": requirement_code,
            "version": version,
            "sha256": key,
            "size": len(content),
            "content_type": content_type,
            "original_name": name,
            "uploaded_at": now,
            "uploaded_by": actor.label or str(actor.kind),
            "review_status": ReviewStatus.PENDING,
            "valid_until": until,
        }
        doc_id = await doc_rows.insert(conn, values)
        await app_rows.touch(conn, app.id)
        after = {
            "requirement": requirement_code,
            "version": version,
            "sha256": key,
            "size": len(content),
            "content_type": content_type,
        }
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor, "document.upload", "application", app.id, at=now, after=after
                )
            ],
        )
        document = await doc_rows.get(conn, doc_id)
        uploaded = DocumentUploaded(app.id, requirement_code, doc_id, version, now)
        queued = await queue_for_event(gcx, conn, uploaded, app.id)
    assert document is not None
    await gcx.fire(_with_queued(uploaded, queued))
    return document


MAX_VALIDITY_YEARS = 20


def valid_until_of(
    gcx: Gcx, requirement: DocumentRequirement, given: date | None
) -> datetime | None:
    """When an upload for `requirement` stops being valid (None: it does not expire); a date
    given where none is asked, or a missing or past one where it is, is a field error."""
    if not requirement.expiry_date:
        if given is not None:
            raise ValidationError({"valid_until": f"{requirement.title} has no expiry date"})
        if requirement.validity_days:
            return gcx.now() + timedelta(days=requirement.validity_days)
        return None
    if given is None:
        raise ValidationError({"valid_until": f"give the date {requirement.title} expires"})
    zone = zoneinfo.ZoneInfo(gcx.settings.time_zone)
    today = gcx.now().astimezone(zone).date()
    if given <= today:
        raise ValidationError({"valid_until": "must be after today: this document has expired"})
    if given.year > today.year + MAX_VALIDITY_YEARS:
        raise ValidationError(
            {"valid_until": f"must be within {MAX_VALIDITY_YEARS} years from today"}
        )
    # Valid through the whole of that day, in the deployment's time zone.
    return datetime.combine(given + timedelta(days=1), time(), zone).astimezone(UTC)


def _with_queued(event: object, queued: list[int]) -> list[tuple[object, None]]:
    fired: list[tuple[object, None]] = [(event, None)]
    if queued:
        fired.append((NotificationsQueued(tuple(queued), event.at), None))  # type: ignore[attr-defined]
    return fired


async def undo_review(gcx: Gcx, document_id: int, actor: Actor) -> DocumentVersion:
    """Put a reviewed version back to pending (a verification made by mistake); admins only."""
    if not actor.can("admin"):
        raise PermissionDeniedError("undoing a review needs the admin role")
    now = gcx.now()
    async with gcx.database.write() as conn:
        document = await doc_rows.get(conn, document_id)
        if document is None:
            raise NotFoundError("document", document_id)
        if document.review_status == ReviewStatus.PENDING:
            raise ValidationError({"document": "has not been reviewed; there is nothing to undo"})
        await app_rows.touch(conn, document.application_id)
        await conn.execute(
            documents.update()
            .where(documents.c.id == document_id)
            .values(
                review_status=ReviewStatus.PENDING,
                review_note="",
                reviewed_by=None,
                reviewed_at=None,
            )
        )
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "document.review_undone",
                    "document",
                    document_id,
                    at=now,
                    before={
                        "review_status": str(document.review_status),
                        "note": document.review_note,
                    },
                    after={"review_status": str(ReviewStatus.PENDING)},
                )
            ],
        )
        undone = await doc_rows.get(conn, document_id)
        event = DocumentReviewed(
            document.application_id,
            document.requirement_code,
            document_id,
            str(ReviewStatus.PENDING),
            actor.user_id,
            now,
        )
        queued = await queue_for_event(gcx, conn, event, document.application_id)
    assert undone is not None
    await gcx.fire(_with_queued(event, queued))
    return undone


async def keep_draft_file(gcx: Gcx, content: bytes) -> str:
    """Store a file uploaded to a draft not yet submitted; returns its key. It is deleted once
    older than `draft_file_hours` unless a document holds it by then (`expire_draft_files`)."""
    key = await gcx.files.put(content)
    now = gcx.now()
    insert = (
        postgresql.insert(draft_files)
        if gcx.database.dialect == "postgresql"
        else sqlite.insert(draft_files)
    )
    stmt = insert.values(file_key=key, stored_at=now).on_conflict_do_update(
        index_elements=["file_key"], set_={"stored_at": now}
    )
    async with gcx.database.write() as conn:
        await conn.execute(stmt)
    return key


async def discard_files(gcx: Gcx, keys: set[str]) -> None:
    """Delete these stored files unless a document version holds them (drafts let go of the
    files of documents never submitted; the same bytes may belong to a stored document)."""
    if not keys:
        return
    async with gcx.database.write() as conn:
        query = sa.select(documents.c.sha256).where(documents.c.sha256.in_(sorted(keys)))
        held = set((await conn.execute(query)).scalars())
        await conn.execute(draft_files.delete().where(draft_files.c.file_key.in_(sorted(keys))))
    for key in sorted(keys - held):
        await gcx.files.delete(key)


async def expire_draft_files(gcx: Gcx) -> int:
    """Let go of draft uploads older than `draft_file_hours` (drafts abandoned, or submitted:
    a submitted document holds its file, which stays). Returns how many keys were let go."""
    cutoff = gcx.now() - timedelta(hours=gcx.settings.draft_file_hours)
    expired = 0
    while True:
        async with gcx.database.read() as conn:
            query = (
                sa.select(draft_files.c.file_key)
                .where(draft_files.c.stored_at < cutoff)
                .order_by(draft_files.c.stored_at)
                .limit(500)
            )
            keys = set((await conn.execute(query)).scalars())
        if not keys:
            return expired
        await discard_files(gcx, keys)
        expired += len(keys)


async def review_document(
    gcx: Gcx,
    document_id: int,
    verified: bool,
    actor: Actor,
    *,
    note: str = "",
) -> DocumentVersion:
    """Mark one version verified, or rejected with a note the applicant can act on."""
    if not actor.can("review"):
        raise PermissionDeniedError("reviewing documents needs the review permission")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": f"must be at most {MAX_NOTE} characters"})
    if not verified and not note:
        raise ValidationError({"note": "say why the document is rejected"})
    status = ReviewStatus.VERIFIED if verified else ReviewStatus.REJECTED
    now = gcx.now()
    async with gcx.database.write() as conn:
        document = await doc_rows.get(conn, document_id)
        if document is None:
            raise NotFoundError("document", document_id)
        if document.review_status == ReviewStatus.VERIFIED and not actor.can("admin"):
            raise ValidationError(
                {"document": "is verified already; an admin can undo the verification"}
            )
        await app_rows.touch(conn, document.application_id)
        await conn.execute(
            documents.update()
            .where(documents.c.id == document_id)
            .values(
                review_status=status, review_note=note, reviewed_by=actor.user_id, reviewed_at=now
            )
        )
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "document.review",
                    "document",
                    document_id,
                    at=now,
                    before={"review_status": str(document.review_status)},
                    after={"review_status": str(status), "note": note},
                )
            ],
        )
        lifted = verified and await renewals.supersede_older(gcx, conn, document)
        reviewed = await doc_rows.get(conn, document_id)
        event = DocumentReviewed(
            document.application_id,
            document.requirement_code,
            document_id,
            str(status),
            actor.user_id,
            now,
        )
        queued = await queue_for_event(gcx, conn, event, document.application_id)
    assert reviewed is not None
    fired = _with_queued(event, queued)
    if lifted:  # an expired document renewed: the supplier is no longer flagged
        fired.append((CountersChanged(now), None))
    await gcx.fire(fired)
    return reviewed


async def get_document(gcx: Gcx, document_id: int) -> DocumentVersion:
    """One stored version (its record, not its bytes)."""
    async with gcx.database.read() as conn:
        document = await doc_rows.get(conn, document_id)
    if document is None:
        raise NotFoundError("document", document_id)
    return document


async def read_document(gcx: Gcx, document_id: int, actor: Actor) -> tuple[DocumentVersion, bytes]:
    """The bytes of a version, for staff who may view; applicants never download files back."""
    if not actor.can("view"):
        raise PermissionDeniedError("viewing documents needs the view permission")
    document = await get_document(gcx, document_id)
    return document, await gcx.files.get(document.sha256)
