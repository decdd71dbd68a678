"""Read-only queries: applications by id or code, lists with filters, timelines, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from gcx_core.entities import (
    Application,
    AuditEntry,
    DocumentRequest,
    DocumentVersion,
    Notification,
    StatusChange,
)
from gcx_core.exceptions import NotFoundError, ValidationError
from gcx_core.services.applications import resolve
from gcx_core.services.renewals import EXPIRED
from gcx_core.storage import applications as app_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage import documents as doc_rows
from gcx_core.storage.tables import applications, audit_log, deadlines, documents, notifications
from gcx_core.system import Gcx
from gcx_core.tracking import normalise_tracking_code

T = TypeVar("T")
MAX_PER_PAGE = 200

SORTS: dict[str, Any] = {
    "created_at": applications.c.created_at,
    "updated_at": applications.c.updated_at,
    "status_changed_at": applications.c.status_changed_at,
    "business_name": applications.c.search_name,
    "status": applications.c.status,
    "region": applications.c.region,
}


@attrs.frozen
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@attrs.frozen
class ApplicationFilter:
    search: str = ""
    statuses: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    commodities: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    assigned_reviewer_id: int | None = None
    unassigned: bool = False
    ids: tuple[int, ...] = ()
    # Only applications whose deadline in their status fell due at or before this time.
    overdue_at: datetime | None = None
    # Only suppliers with a required document past its validity (services.renewals).
    expired_documents: bool = False
    sort: str = "-created_at"
    page: int = 1
    per_page: int = 25

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.search.strip():
            where.append(app_rows.search_condition(self.search))
        if self.statuses:
            where.append(applications.c.status.in_(self.statuses))
        if self.regions:
            where.append(applications.c.region.in_(self.regions))
        if self.commodities:
            where.append(app_rows.commodity_condition(self.commodities))
        if self.created_from is not None:
            where.append(applications.c.created_at >= self.created_from)
        if self.created_to is not None:
            where.append(applications.c.created_at < self.created_to)
        if self.assigned_reviewer_id is not None:
            where.append(applications.c.assigned_reviewer_id == self.assigned_reviewer_id)
        if self.unassigned:
            where.append(applications.c.assigned_reviewer_id.is_(None))
        if self.ids:
            where.append(applications.c.id.in_(self.ids))
        if self.expired_documents:
            expired = sa.select(documents.c.application_id).where(
                documents.c.renewal_step == EXPIRED
            )
            where.append(applications.c.id.in_(expired))
        if self.overdue_at is not None:
            due = sa.select(deadlines.c.application_id).where(deadlines.c.due_at <= self.overdue_at)
            where.append(applications.c.id.in_(due))
        return where


def _order(sort: str) -> list[Any]:
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise ValidationError({"sort": "must be one of " + ", ".join(f"{s}, -{s}" for s in SORTS)})
    if sort.startswith("-"):
        return [column.desc(), applications.c.id.desc()]
    return [column.asc(), applications.c.id.asc()]


async def get_application(gcx: Gcx, ref: int | str) -> Application:
    async with gcx.database.read() as conn:
        return await resolve(conn, ref)


async def find_by_tracking_code(gcx: Gcx, code: str) -> Application:
    normal = normalise_tracking_code(code)
    if normal is None:
        raise NotFoundError("application", code)
    async with gcx.database.read() as conn:
        app = await app_rows.get_by_tracking_code(conn, normal)
    if app is None:
        raise NotFoundError("application", code)
    return app


async def list_applications(gcx: Gcx, flt: ApplicationFilter) -> Page[Application]:
    if flt.page < 1 or not 1 <= flt.per_page <= MAX_PER_PAGE:
        raise ValidationError({"page": f"page must be >= 1 and per_page 1 to {MAX_PER_PAGE}"})
    order = _order(flt.sort)
    where = flt.conditions()
    query = sa.select(applications).where(*where).order_by(*order)
    query = query.limit(flt.per_page).offset((flt.page - 1) * flt.per_page)
    async with gcx.database.read() as conn:
        rows = (await conn.execute(query)).all()
        if where:
            total = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(applications).where(*where)
                )
            ).scalar_one()
        else:  # the counters already know the total; a full count is O(n)
            total = sum((await bookkeeping.read_counters(conn, bookkeeping.STATUS_PREFIX)).values())
        page = flt.page
        last = max(1, -(-int(total) // flt.per_page))
        if not rows and page > last:  # past the end: the last page, not an empty "page 999"
            page = last
            rows = (await conn.execute(query.offset((page - 1) * flt.per_page))).all()
    return Page([app_rows.to_application(r) for r in rows], int(total), page, flt.per_page)


@attrs.frozen
class TimelineItem:
    at: datetime
    kind: str  # status_change, document, document_request, notification
    data: dict[str, Any]


async def timeline(gcx: Gcx, ref: int | str, *, for_applicant: bool = False) -> list[TimelineItem]:
    """Everything that happened to an application, oldest first.

    The applicant's view holds status changes (without internal comments), their uploads and
    document requests; staff also see document reviews (who, when, the verdict) and
    notifications with their channel and delivery status.
    """
    async with gcx.database.read() as conn:
        app = await resolve(conn, ref)
        changes = await app_rows.status_changes_of(conn, app.id)
        versions = await doc_rows.versions_of(conn, app.id)
        requests = await doc_rows.requests_of(conn, app.id)
        notes = (
            []
            if for_applicant
            else [
                bookkeeping.to_notification(r)
                for r in await conn.execute(
                    sa.select(notifications)
                    .where(notifications.c.application_id == app.id)
                    .order_by(notifications.c.id)
                )
            ]
        )
    return build_timeline(changes, versions, requests, notes, for_applicant=for_applicant)


def build_timeline(
    changes: list[StatusChange],
    versions: list[DocumentVersion],
    requests: list[DocumentRequest],
    notes: list[Notification],
    *,
    for_applicant: bool,
) -> list[TimelineItem]:
    items = []
    for c in changes:
        data: dict[str, Any] = {"action": c.action, "from": c.from_status, "to": c.to_status}
        if not for_applicant:
            data.update(actor=c.actor, reason_code=c.reason_code, comment=c.comment)
        elif c.action == "reject":
            data["reason_code"] = c.reason_code
        items.append(TimelineItem(c.at, "status_change", data))
    for r in requests:
        items.append(
            TimelineItem(
                r.requested_at,
                "document_request",
                {
                    "requirements": list(r.requirement_codes),
                    "message": r.message,
                    "fulfilled_at": r.fulfilled_at,
                },
            )
        )
    for v in versions:
        items.append(TimelineItem(v.uploaded_at, "document", _document_data(v, for_applicant)))
        if not for_applicant and v.reviewed_at is not None:
            items.append(
                TimelineItem(
                    v.reviewed_at,
                    "document_review",
                    {
                        "id": v.id,
                        "requirement": v.requirement_code,
                        "version": v.version,
                        "review_status": str(v.review_status),
                        "review_note": v.review_note,
                        "reviewed_by": v.reviewed_by,
                    },
                )
            )
    for n in notes:
        items.append(TimelineItem(n.created_at, "notification", _notification_data(n)))
    items.sort(key=lambda i: i.at)
    return items


def _document_data(v: DocumentVersion, for_applicant: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": v.id,
        "requirement": v.requirement_code,
        "version": v.version,
        "name": v.original_name,
        "review_status": str(v.review_status),
    }
    if not for_applicant:
        data.update(
            size=v.size,
            content_type=v.content_type,
            sha256=v.sha256,
            review_note=v.review_note,
            reviewed_at=v.reviewed_at,
        )
    elif v.review_status == "rejected":
        data["review_note"] = v.review_note
    return data


def _notification_data(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "type": n.type,
        "channel": n.channel,
        "recipient": n.recipient,
        "status": str(n.status),
        "attempts": n.attempts,
        "sent_at": n.sent_at,
    }


async def documents_of(gcx: Gcx, ref: int | str) -> list[DocumentVersion]:
    async with gcx.database.read() as conn:
        app = await resolve(conn, ref)
        return await doc_rows.versions_of(conn, app.id)


@attrs.frozen
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    per_page: int = 50


async def audit_choices(gcx: Gcx) -> tuple[list[str], list[str]]:
    """The actions and object types the audit log holds: what its filters can offer."""
    async with gcx.database.read() as conn:
        actions = (
            await conn.execute(
                sa.select(audit_log.c.action).distinct().order_by(audit_log.c.action)
            )
        ).scalars()
        kinds = (
            await conn.execute(
                sa.select(audit_log.c.object_type).distinct().order_by(audit_log.c.object_type)
            )
        ).scalars()
        return list(actions), list(kinds)


async def audit_entries(gcx: Gcx, flt: AuditFilter) -> Page[AuditEntry]:
    if flt.page < 1 or not 1 <= flt.per_page <= MAX_PER_PAGE:
        raise ValidationError({"page": f"page must be >= 1 and per_page 1 to {MAX_PER_PAGE}"})
    where = []
    for column, value in (
        (audit_log.c.actor, flt.actor),
        (audit_log.c.action, flt.action),
        (audit_log.c.object_type, flt.object_type),
        (audit_log.c.object_id, flt.object_id),
    ):
        if value:
            where.append(column == value)
    if flt.since is not None:
        where.append(audit_log.c.at >= flt.since)
    if flt.until is not None:
        where.append(audit_log.c.at < flt.until)
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(audit_log)
            .where(*where)
            .order_by(audit_log.c.id.desc())
            .limit(flt.per_page)
            .offset((flt.page - 1) * flt.per_page)
        )
        items = [bookkeeping.to_audit_entry(r) for r in rows]
        total = (
            await conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*where))
        ).scalar_one()
    return Page(items, int(total), flt.page, flt.per_page)
