"""What an applicant sees of their application: status, timeline, what is still outstanding."""

from __future__ import annotations

import functools

import attrs

from gcx_core.context import Gcx
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
from gcx_core.storage.fast import Snapshot
from gcx_core.tracking import normalise_tracking_code
from gcx_core.workflow import State

_VIEW = app_rows.view_by_code()


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


# Views kept per Gcx, by the rows they were made from; a few KB each.
VIEW_CACHE_SIZE = 1024


async def applicant_view(gcx: Gcx, code: str) -> ApplicantView:
    """The applicant's status page; raises NotFoundError for an unknown or malformed code.

    The view is a function of the application's rows alone (and of the workflow and
    requirements, fixed for a Gcx), so a lookup that reads the same rows as an earlier one
    gets the view made then: the same object, to be read and not changed. A change to any of
    those rows, made by this process or another, makes the next lookup build a new one; on
    inline SQLite, a change committed by another process may take up to 1 ms to be seen
    (`Database.change_mark`), one by this process is seen at once.
    """
    normal = normalise_tracking_code(code)
    if normal is None:
        raise NotFoundError("application", code)
    views: _Views | None = gcx.caches.get(__name__)
    if views is None:
        views = gcx.caches[__name__] = _Views(gcx)
    # On inline SQLite: if nothing at all was committed since the last lookup, a view made
    # since then is still the one its rows would give, and nothing need be read.
    mark = gcx.database.change_mark()
    if mark is not None:
        if mark == views.mark:
            seen = views.by_code.get(normal)
            if seen is not None:
                return seen
        else:
            views.by_code.clear()
            views.mark = mark
    # One snapshot, so the parts of the page agree with each other.
    found = await _VIEW.snapshot(gcx.database, code=normal)
    if found is None:
        raise NotFoundError("application", code)
    view = views.by_rows(found)
    if mark is not None:
        # Read after `mark` was taken, so at least as new; a commit since changes it.
        if len(views.by_code) >= VIEW_CACHE_SIZE:
            views.by_code.clear()
        views.by_code[normal] = view
    return view


class _Views:
    """The views a Gcx keeps: by the rows they were made from, and, on inline SQLite, by code
    while the database's change mark stays the one they were read at."""

    def __init__(self, gcx: Gcx) -> None:
        self.by_rows = functools.lru_cache(VIEW_CACHE_SIZE)(functools.partial(_make_view, gcx))
        self.by_code: dict[str, ApplicantView] = {}
        self.mark: tuple[int, int] | None = None


def _make_view(gcx: Gcx, snapshot: Snapshot) -> ApplicantView:
    found, change_rows, version_rows, request_rows = snapshot.rows()
    app = app_rows.to_application(found[0])
    changes = [StatusChange(**r) for r in change_rows]
    versions = [doc_rows.to_document(r) for r in version_rows]
    requests = [doc_rows.to_request(r) for r in request_rows]
    items = build_timeline(changes, versions, requests, [], for_applicant=True)
    request = next((r for r in reversed(requests) if r.fulfilled_at is None), None)
    state = gcx.workflow.state(app.status)
    accepts = state.active and not state.terminal and app.status != "approved"
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
