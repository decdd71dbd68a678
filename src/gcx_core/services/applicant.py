"""What an applicant sees of their application: status, timeline, what is still outstanding."""

from __future__ import annotations

import functools
from datetime import datetime

import attrs
import sqlalchemy as sa

from gcx_core.entities import (
    Application,
    DocumentRequest,
    DocumentRequirement,
    DocumentVersion,
    ReviewStatus,
    StatusChange,
)
from gcx_core.exceptions import NotFoundError
from gcx_core.services.queries import TimelineItem, build_timeline
from gcx_core.storage import applications as app_rows
from gcx_core.storage import documents as doc_rows
from gcx_core.storage.tables import deadlines
from gcx_core.system import Gcx
from gcx_core.tracking import normalise_tracking_code
from gcx_core.workflow import State


@attrs.frozen
class OutstandingItem:
    """A document the application still needs, and why."""

    requirement: DocumentRequirement
    # "requested": a reviewer asked for it; "rejected": the latest version was refused;
    # "missing": required before approval and never uploaded.
    reason: str
    note: str = ""


@functools.lru_cache(maxsize=64)
def _missing(requirements: tuple[DocumentRequirement, ...]) -> dict[str, OutstandingItem]:
    """The "missing" item of each required requirement, by code. These depend on the
    requirements alone, so each set is made once (most of a new application's status view is
    its list of documents still to send)."""
    return {r.code: OutstandingItem(r, "missing") for r in requirements if r.required}


@attrs.frozen
class ApplicantView:
    application: Application
    state: State
    timeline: list[TimelineItem]
    outstanding: list[OutstandingItem]
    request_message: str
    can_withdraw: bool
    can_resubmit: bool
    accepts_uploads: bool
    # When the applicant must have acted by: the deadline of the status, if they hear of it.
    due_at: datetime | None = None


# Views kept per Gcx, by (application id, revision); a few KB each.
VIEW_CACHE_SIZE = 1024


async def applicant_view(gcx: Gcx, code: str) -> ApplicantView:
    """The applicant's status page; raises NotFoundError for an unknown or malformed code.

    A view depends on the application and its documents alone (and on the workflow and the
    requirements, fixed for a Gcx), and every change to those moves the application's
    revision; so views are kept by (id, revision), and a lookup of an unchanged application
    reads one row.
    """
    normal = normalise_tracking_code(code)
    if normal is None:
        raise NotFoundError("application", code)
    kept = gcx.applicant_views
    # One transaction, so the parts of the page agree with each other.
    async with gcx.database.read() as conn:
        row = await app_rows.row_by_tracking_code(conn, normal)
        if row is None:
            raise NotFoundError("application", code)
        key = (row.id, row.revision)
        view = kept.get(key)
        if view is not None:
            kept.move_to_end(key)
            return view
        app = app_rows.to_application(row)
        changes = await app_rows.status_changes_of(conn, app.id)
        versions = await doc_rows.versions_of(conn, app.id)
        requests = await doc_rows.requests_of(conn, app.id)
        policy = gcx.deadlines.policy(app.status)
        due_at = None
        if policy is not None and policy.tells_applicant:
            due_at = (
                await conn.execute(
                    sa.select(deadlines.c.due_at).where(
                        deadlines.c.application_id == app.id, deadlines.c.status == app.status
                    )
                )
            ).scalar_one_or_none()
    view = attrs.evolve(_make_view(gcx, app, changes, versions, requests), due_at=due_at)
    kept[key] = view
    if len(kept) > VIEW_CACHE_SIZE:
        kept.popitem(last=False)
    return view


def _make_view(
    gcx: Gcx,
    app: Application,
    changes: list[StatusChange],
    versions: list[DocumentVersion],
    requests: list[DocumentRequest],
) -> ApplicantView:
    items = build_timeline(changes, versions, requests, [], for_applicant=True)
    request = next((r for r in reversed(requests) if r.fulfilled_at is None), None)
    state = gcx.workflow.state(app.status)
    accepts = state.open_for_documents
    outstanding: list[OutstandingItem] = []
    if accepts:
        requirements = tuple(gcx.requirements_for(app))
        missing = _missing(requirements)
        if not versions and request is None:  # nothing sent, nothing asked: all still missing
            outstanding = list(missing.values())
        else:
            outstanding = _outstanding(requirements, missing, versions, request)
    allowed = gcx.workflow.applicant_actions(app.status)
    return ApplicantView(
        application=app,
        state=state,
        timeline=items,
        outstanding=outstanding,
        request_message=request.message if request else "",
        can_withdraw="withdraw" in allowed,
        can_resubmit="resubmit_documents" in allowed
        and not any(o.reason == "requested" for o in outstanding),
        accepts_uploads=accepts,
    )


def _outstanding(
    requirements: tuple[DocumentRequirement, ...],
    missing: dict[str, OutstandingItem],
    versions: list[DocumentVersion],
    request: DocumentRequest | None,
) -> list[OutstandingItem]:
    latest = doc_rows.latest_versions(versions)
    requested = set(request.requirement_codes) if request else set()
    since = (
        {v.requirement_code for v in versions if v.uploaded_at >= request.requested_at}
        if request
        else set()
    )
    outstanding: list[OutstandingItem] = []
    for requirement in requirements:
        version = latest.get(requirement.code)
        if requirement.code in requested and requirement.code not in since:
            outstanding.append(OutstandingItem(requirement, "requested"))
        elif version is not None and version.review_status is ReviewStatus.REJECTED:
            outstanding.append(OutstandingItem(requirement, "rejected", version.review_note))
        elif version is None and requirement.code in missing:
            outstanding.append(missing[requirement.code])
    return outstanding
