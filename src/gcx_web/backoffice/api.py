"""The staff JSON API for integrations: session or `Authorization: Bearer <API token>`.

Role checks are the pages' own. A session-authenticated call must also send the CSRF cookie's
value in `X-CSRFToken` (double submit); token calls carry no cookies and need none.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from gcx_core.exceptions import NotFoundError, ValidationError
from gcx_core.services import applications as app_service
from gcx_core.services import assignment
from gcx_core.services import documents as doc_service
from gcx_core.services import notifications as outbox
from gcx_core.services.deadlines import deadline_for
from gcx_core.services.queries import (
    MAX_PER_PAGE,
    SORTS,
    documents_of,
    get_application,
    list_applications,
)
from gcx_core.services.renewals import EXPIRED
from gcx_web.applicant.api import _responses as public_responses
from gcx_web.backoffice.filters import MAX_PAGE, parse_filter
from gcx_web.errors import ErrorResponse
from gcx_web.schemas import MAX_ROW_ID, Input
from gcx_web.security.auth import LoginRequired, current_actor, requires, session_user, token_user
from gcx_web.strict import strict_json

AppId = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID, description="The application's id")]
DocId = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID, description="A document version's id")]


async def csrf_for_sessions(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Calls authenticated by the session cookie send its CSRF token; only a call that carries
    a valid API token goes without (any other Authorization header counts for nothing here)."""
    if connection.scope.get("method") in ("GET", "HEAD", "OPTIONS"):
        return
    if await token_user(connection) is not None:  # an invalid token is a 401 already
        return
    if await session_user(connection) is None:
        raise LoginRequired("sign in first, or send an API token")
    cookie = connection.cookies.get("gcx_csrf", "")
    header = connection.headers.get("x-csrftoken", "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise PermissionDeniedException("send the CSRF token in X-CSRFToken")


class Summary(msgspec.Struct):
    id: int
    tracking_code: str
    business_name: str
    status: str
    version: int
    created_at: Any
    assigned_reviewer_id: int | None


class Page(msgspec.Struct):
    items: list[Summary]
    total: int
    page: int
    per_page: int


class DocumentVersionOut(msgspec.Struct):
    id: int
    requirement: str
    version: int
    name: str
    content_type: str
    size: int
    review_status: str
    review_note: str
    valid_until: Annotated[
        datetime | None,
        msgspec.Meta(description="When this version stops being valid (documents that expire)"),
    ] = None
    expired: Annotated[
        bool, msgspec.Meta(description="A required document of a supplier, past its validity")
    ] = False


class Detail(msgspec.Struct):
    id: int
    tracking_code: str
    status: str
    version: int
    application: dict[str, Any]
    documents: list[DocumentVersionOut]
    actions: list[str]
    blocked: Annotated[
        dict[str, dict[str, str]],
        msgspec.Meta(
            description="Of `actions`, those a precondition refuses now (documents not yet "
            "verified, say), with each guard's reason: taking them now would be a 409"
        ),
    ] = {}
    deadline: Annotated[
        DeadlineOut | None,
        msgspec.Meta(description="The deadline of its current status, if that status has one"),
    ] = None


class DeadlineOut(msgspec.Struct):
    kind: str
    status: str
    entered_at: datetime
    due_at: datetime
    overdue: bool


class ActionIn(Input):
    version: Annotated[int, msgspec.Meta(description="The version you saw; a stale one is 409")]
    message: str | None = None
    comment: str | None = None
    reason_code: str | None = None
    requirement_codes: list[str] | None = None


class ReviewIn(Input):
    note: str = ""


class AssignIn(Input):
    reviewer_id: Annotated[
        int | None,
        msgspec.Meta(
            description="Who reviews it: your own id to take unassigned work, null to give "
            "it back or unassign; only admins assign others",
        ),
    ]
    version: Annotated[
        int | None, msgspec.Meta(description="The version you saw; a stale one is 409")
    ] = None


RowIdIn = Annotated[int, msgspec.Meta(ge=1, le=MAX_ROW_ID)]


class RetryIn(Input):
    ids: Annotated[list[RowIdIn], msgspec.Meta(max_length=1000)] = []
    all_dead: bool = False


class Retried(msgspec.Struct):
    retried: list[int]


def _summary(a: Any) -> Summary:
    return Summary(
        a.id,
        a.tracking_code,
        a.business.name,
        a.status,
        a.version,
        a.created_at,
        a.assigned_reviewer_id,
    )


def _responses() -> dict[int, Any]:
    return {
        **public_responses(),
        401: ResponseSpec(ErrorResponse, description="no valid session or API token"),
        403: ResponseSpec(
            ErrorResponse, description="your role may not do this, or a CSRF token is missing"
        ),
    }


SORT_VALUES = tuple(f"{prefix}{name}" for name in SORTS for prefix in ("", "-"))
Sort = Literal[SORT_VALUES]  # type: ignore[valid-type]


VIEW = [requires("view", tokens=True)]
REVIEW = [requires("review", tokens=True)]
ADMIN = [requires("admin", tokens=True)]


@get("/applications", guards=VIEW, responses=_responses(), summary="Search and filter applications")
async def staff_list(
    request: Request[Any, Any, Any],
    q: Annotated[
        str | None,
        QueryParameter(max_length=200, description="Business name, tracking code or TIN"),
    ] = None,
    status: Annotated[list[str] | None, QueryParameter(description="Statuses (repeatable)")] = None,
    region: Annotated[
        list[str] | None, QueryParameter(description="Region codes (repeatable)")
    ] = None,
    commodity: Annotated[
        list[str] | None, QueryParameter(description="Commodity codes (repeatable)")
    ] = None,
    created_from: Annotated[
        date | None, QueryParameter(name="from", description="Submitted on or after")
    ] = None,
    created_to: Annotated[
        date | None, QueryParameter(name="to", description="Submitted on or before")
    ] = None,
    reviewer: Annotated[
        int | None, QueryParameter(ge=1, le=MAX_ROW_ID, description="Assigned reviewer's user id")
    ] = None,
    queue: Annotated[
        Literal["all", "mine", "unassigned"] | None,
        QueryParameter(
            description="mine: open applications assigned to you; unassigned: open ones "
            "nobody has (open: in a status that waits on someone, unless `status` says)"
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        QueryParameter(description="true: only applications past the deadline of their status"),
    ] = None,
    expired_documents: Annotated[
        bool | None,
        QueryParameter(description="true: only suppliers with a required document expired"),
    ] = None,
    sort: Annotated[
        Sort | None, QueryParameter(description="A column, descending with a leading '-'")
    ] = None,
    page: Annotated[int | None, QueryParameter(ge=1, le=MAX_PAGE, description="From 1")] = None,
    per_page: Annotated[int | None, QueryParameter(ge=1, le=MAX_PER_PAGE)] = None,
) -> Page:
    """Filters combine with AND; a page past the last one answers the last page. Unknown
    statuses, regions or commodities are field errors (422)."""
    gcx = request.app.state.gcx
    user, _ = await current_actor(request, tokens=True)
    page_of = await list_applications(gcx, parse_filter(request.query_params, gcx, me=user.id))
    return Page([_summary(a) for a in page_of.items], page_of.total, page_of.page, page_of.per_page)


async def _detail(request: Request[Any, Any, Any], app_id: int) -> Detail:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request, tokens=True)
    app = await get_application(gcx, app_id)
    versions = await documents_of(gcx, app.id)
    data = msgspec.to_builtins(app)
    actions = gcx.workflow.allowed_actions(app, actor)
    return Detail(
        app.id,
        app.tracking_code,
        app.status,
        app.version,
        data,
        [
            DocumentVersionOut(
                v.id,
                v.requirement_code,
                v.version,
                v.original_name,
                v.content_type,
                v.size,
                str(v.review_status),
                v.review_note,
                v.valid_until,
                v.renewal_step == EXPIRED,
            )
            for v in versions
        ],
        actions,
        await app_service.blocked_actions(gcx, app, actor, actions),
        _deadline_out(await deadline_for(gcx, app.id)),
    )


def _deadline_out(found: Any) -> DeadlineOut | None:
    if found is None:
        return None
    return DeadlineOut(found.kind, found.status, found.entered_at, found.due_at, found.overdue)


@get(
    "/applications/{app_id:int}",
    guards=VIEW,
    responses=_responses(),
    summary="One application, its documents and the actions open to you",
)
async def staff_detail(request: Request[Any, Any, Any], app_id: AppId) -> Detail:
    return await _detail(request, app_id)


@post(
    "/applications/{app_id:int}/actions/{action:str}",
    before_request=strict_json(ActionIn),
    guards=REVIEW,
    status_code=200,
    responses=_responses(),
    summary="Apply a workflow action",
)
async def staff_action(
    request: Request[Any, Any, Any],
    app_id: AppId,
    action: Annotated[
        str, PathParameter(description="start_review, request_documents, approve, reject, reopen")
    ],
    data: JSONBody[ActionIn],
) -> Detail:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request, tokens=True)
    params = {
        k: v for k, v in msgspec.to_builtins(data).items() if k != "version" and v is not None
    }
    if action not in gcx.workflow.transitions:
        raise NotFoundError("action", action)
    await app_service.act(gcx, app_id, action, actor, expected_version=data.version, params=params)
    return await _detail(request, app_id)


@post(
    "/applications/{app_id:int}/assignment",
    before_request=strict_json(AssignIn),
    guards=REVIEW,
    status_code=200,
    responses=_responses(),
    summary="Take, assign, give back or unassign an application",
)
async def staff_assign(
    request: Request[Any, Any, Any], app_id: AppId, data: JSONBody[AssignIn]
) -> Detail:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request, tokens=True)
    if data.reviewer_id is not None and not 1 <= data.reviewer_id <= MAX_ROW_ID:
        raise ValidationError({"reviewer_id": "must be a user id, or null"})
    await assignment.assign(gcx, app_id, data.reviewer_id, actor, expected_version=data.version)
    return await _detail(request, app_id)


@post(
    "/documents/{document_id:int}/verify",
    before_request=strict_json(ReviewIn),
    guards=REVIEW,
    status_code=200,
    responses=_responses(),
    summary="Mark a document version verified",
)
async def staff_verify(
    request: Request[Any, Any, Any], document_id: DocId, data: JSONBody[ReviewIn]
) -> DocumentVersionOut:
    return await _review(request, document_id, True, data.note)


@post(
    "/documents/{document_id:int}/reject",
    before_request=strict_json(ReviewIn),
    guards=REVIEW,
    status_code=200,
    responses=_responses(),
    summary="Reject a document version with a note",
)
async def staff_reject(
    request: Request[Any, Any, Any], document_id: DocId, data: JSONBody[ReviewIn]
) -> DocumentVersionOut:
    return await _review(request, document_id, False, data.note)


async def _review(
    request: Request[Any, Any, Any], document_id: int, verified: bool, note: str
) -> DocumentVersionOut:
    _, actor = await current_actor(request, tokens=True)
    v = await doc_service.review_document(
        request.app.state.gcx, document_id, verified, actor, note=note
    )
    return DocumentVersionOut(
        v.id,
        v.requirement_code,
        v.version,
        v.original_name,
        v.content_type,
        v.size,
        str(v.review_status),
        v.review_note,
    )


@post(
    "/notifications/retry",
    before_request=strict_json(RetryIn),
    guards=ADMIN,
    status_code=200,
    responses=_responses(),
    summary="Send dead notifications again",
)
async def staff_retry(request: Request[Any, Any, Any], data: JSONBody[RetryIn]) -> Retried:
    if not data.ids and not data.all_dead:
        raise ValidationError({"ids": "name notifications, or set all_dead"})
    _, actor = await current_actor(request, tokens=True)
    ids = await outbox.retry_notifications(
        request.app.state.gcx, actor, None if data.all_dead else data.ids
    )
    return Retried(ids)


def router() -> Router:
    return Router(
        "/api/v1/staff",
        route_handlers=[
            staff_list,
            staff_detail,
            staff_action,
            staff_assign,
            staff_verify,
            staff_reject,
            staff_retry,
        ],
        guards=[csrf_for_sessions],
        tags=["staff"],
        security=[{"apiToken": []}],
    )
