"""The public JSON API: submit, follow, upload, withdraw (OpenAPI at /schema)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, JSONBody, PathParameter

from gcx_core.entities import Actor
from gcx_core.exceptions import ValidationError
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.services.applicant import ApplicantView, applicant_view
from gcx_core.services.queries import find_by_tracking_code
from gcx_core.services.submit import new_application
from gcx_core.services.withdrawals import confirm_withdrawal, request_withdrawal
from gcx_core.validation import validate_submission
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY
from gcx_web.errors import ErrorResponse
from gcx_web.schemas import (
    ApplicationIn,
    DocumentOut,
    OutstandingList,
    StatusOut,
    SubmittedOut,
    WithdrawalRequestedOut,
    WithdrawConfirmIn,
    WithdrawIn,
    as_submission,
    outstanding_out,
    submitted_out,
)
from gcx_web.security.ratelimit import client_address, rate_limited
from gcx_web.strict import in_turn, strict_json

CODE = Annotated[str, PathParameter(description="The tracking code, e.g. GCX-7K3Q-M9TD-X2HB")]
REQUIREMENT = Annotated[str, PathParameter(description="A requirement code, e.g. tax_clearance")]
ERRORS = {
    400: "malformed request",
    404: "unknown tracking code",
    409: "not allowed in the current state",
    413: "too large",
    415: "unsupported file type",
    422: "invalid fields",
    429: "rate limited",
}


def _responses() -> dict[int, Any]:
    return {code: ResponseSpec(ErrorResponse, description=text) for code, text in ERRORS.items()}


def applicant(request: Request[Any, Any, Any]) -> Actor:
    return Actor.applicant(client_address(request, request.app.state.trusted_proxies))


def status_of(request: ASGIConnection[Any, Any, Any, Any], view: ApplicantView) -> StatusOut:
    return cast(StatusOut, request.app.state.status_views(view))


@post(
    "/",
    status_code=201,
    before_request=in_turn(rate_limited("submit"), strict_json(ApplicationIn)),
    responses=_responses(),
    summary="Submit an application",
)
async def submit_application(
    request: Request[Any, Any, Any], data: JSONBody[ApplicationIn]
) -> SubmittedOut:
    """Submit a new application as JSON; the answer holds its tracking code."""
    gcx = request.app.state.gcx
    app = await app_service.submit(gcx, as_submission(data), applicant(request))
    return submitted_out(app, [])


@post(
    "/with-documents",
    status_code=201,
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY * 5,
    before_request=rate_limited("submit"),
    responses=_responses(),
    summary="Submit an application and its documents in one multipart request",
)
async def submit_with_documents(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> SubmittedOut:
    """Part `application` holds the JSON body; every file part is named by its requirement code.

    The files are checked (type by content, size) before anything is stored, so a bad file
    refuses the whole submission.
    """
    gcx = request.app.state.gcx
    raw = data.get("application")
    if isinstance(raw, UploadFile):
        raw = await raw.read()
    if not isinstance(raw, str | bytes) or not raw:
        raise ValidationError({"application": "send the application as a JSON part"})
    try:
        body = msgspec.json.decode(raw, type=ApplicationIn)
    except msgspec.ValidationError as exc:
        raise ValidationError({"application": str(exc)}) from None
    except msgspec.DecodeError:
        raise ValidationError({"application": "is not valid JSON"}) from None
    submission = as_submission(body)
    files = {k: v for k, v in (await read_files_from(data)).items()}
    draft = validate_submission(submission, phone_format=gcx.phone_format, now=gcx.now())
    provisional = new_application(gcx, draft)
    for code, (content, name) in files.items():
        requirement = gcx.requirements.get(code)
        if requirement is not None and requirement.expiry_date:
            raise ValidationError({code: DATED_LATER.format(title=requirement.title)})
        try:
            await doc_service.check_upload(gcx, provisional, code, content, name)
        except ValidationError as exc:
            raise ValidationError(
                {f"{code}.{k}" if k != code else k: v for k, v in exc.errors.items()}
            ) from None
    actor = applicant(request)
    app = await app_service.submit(gcx, submission, actor)
    docs = [
        await doc_service.upload_document(gcx, app.id, code, content, name, actor)
        for code, (content, name) in files.items()
    ]
    return submitted_out(app, docs)


async def read_files_from(data: dict[str, Any]) -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for key, value in data.items():
        if key == "application":
            continue
        if not isinstance(value, UploadFile):
            raise ValidationError({key: "expected a file named after its requirement code"})
        files[key] = (await value.read(), value.filename or "document")
    return files


@get(
    "/{tracking_code:str}",
    before_request=rate_limited("lookup"),
    responses=_responses(),
    summary="Status of an application",
)
async def application_status(request: Request[Any, Any, Any], tracking_code: CODE) -> StatusOut:
    """Status in plain words, the applicant's timeline and what is outstanding."""
    view = await applicant_view(request.app.state.gcx, tracking_code)
    return status_of(request, view)


@get(
    "/{tracking_code:str}/outstanding",
    before_request=rate_limited("lookup"),
    responses=_responses(),
    summary="Documents still needed",
)
async def outstanding(request: Request[Any, Any, Any], tracking_code: CODE) -> OutstandingList:
    view = await applicant_view(request.app.state.gcx, tracking_code)
    return OutstandingList(
        tracking_code=view.application.tracking_code,
        status=view.application.status,
        message=view.request_message,
        items=[outstanding_out(o) for o in view.outstanding],
    )


@post(
    "/{tracking_code:str}/documents/{requirement:str}",
    status_code=201,
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
    before_request=rate_limited("upload"),
    responses=_responses(),
    summary="Upload a document (multipart, one part named `file`)",
)
async def upload(
    request: Request[Any, Any, Any],
    tracking_code: CODE,
    requirement: REQUIREMENT,
) -> DocumentOut:
    """Upload a new version of a document: PDF, PNG or JPEG by content, within its size limit.
    A document that carries its own expiry date (the requirement's `expiry_date`) needs the
    part `valid_until`, its last valid day as `YYYY-MM-DD`."""
    gcx = request.app.state.gcx
    app = await find_by_tracking_code(gcx, tracking_code)  # unknown codes: 404 before the body
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(status_code=415, detail="send the file as multipart/form-data")
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ValidationError({"file": "attach the document as the part named `file`"})
    unknown = sorted(set(form.keys()) - {"file", "valid_until"})
    if unknown:
        raise ValidationError(
            {name: "unknown part: send only `file` and `valid_until`" for name in unknown}
        )
    valid_until = form_date(form.get("valid_until"), "valid_until")
    content = await file.read()
    doc = await doc_service.upload_document(
        gcx,
        app.id,
        requirement,
        content,
        file.filename or "document",
        applicant(request),
        valid_until=valid_until,
    )
    return DocumentOut(
        doc.requirement_code,
        doc.version,
        doc.original_name,
        str(doc.review_status),
        doc.valid_until,
    )


DATED_LATER = (
    "{title} needs its expiry date: upload it once the application is submitted, with `valid_until`"
)


def form_date(value: Any, field: str) -> date | None:
    """A form field holding a day (`YYYY-MM-DD`), or None when empty or absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError({field: "must be a date like 2027-03-31"}) from None


async def application_exists(request: Request[Any, Any, Any]) -> None:
    await find_by_tracking_code(request.app.state.gcx, request.path_params["tracking_code"])


WITHDRAWAL_SENT = (
    "A link to confirm the withdrawal was sent to the application's email address; the "
    "application is withdrawn only when it is followed."
)


@post(
    "/{tracking_code:str}/withdraw",
    status_code=202,
    # An unknown code is a 404 whatever the body holds.
    before_request=in_turn(rate_limited("lookup"), application_exists, strict_json(WithdrawIn)),
    responses=_responses(),
    summary="Ask to withdraw an application (step 1 of 2)",
)
async def withdraw(
    request: Request[Any, Any, Any], tracking_code: CODE, data: JSONBody[WithdrawIn]
) -> WithdrawalRequestedOut:
    """Email the applicant a single-use link that withdraws the application; nothing changes
    until it is followed. The body must confirm the request (`{"confirm": true}`). The link
    ends in a token; `POST .../withdraw/confirm` with it is step 2. Asking again within ten
    minutes sends no second email."""
    if not data.confirm:
        raise ValidationError({"confirm": "confirm the withdrawal with true"})
    app = await request_withdrawal(
        request.app.state.gcx, tracking_code, applicant(request), comment=data.comment
    )
    return WithdrawalRequestedOut(app.tracking_code, WITHDRAWAL_SENT)


@post(
    "/{tracking_code:str}/withdraw/confirm",
    status_code=200,
    before_request=in_turn(
        rate_limited("lookup"), application_exists, strict_json(WithdrawConfirmIn)
    ),
    responses={
        **_responses(),
        410: ResponseSpec(ErrorResponse, description="the link is invalid, used or expired"),
    },
    summary="Confirm a withdrawal with the emailed link's token (step 2 of 2)",
)
async def confirm_withdraw(
    request: Request[Any, Any, Any], tracking_code: CODE, data: JSONBody[WithdrawConfirmIn]
) -> StatusOut:
    """Withdraw the application: the token is the last part of the link emailed in step 1.
    A token works once and for 24 hours."""
    gcx = request.app.state.gcx
    await confirm_withdrawal(gcx, tracking_code, data.token, applicant(request))
    return status_of(request, await applicant_view(gcx, tracking_code))


@post(
    "/{tracking_code:str}/resubmit",
    status_code=200,
    before_request=rate_limited("lookup"),
    responses=_responses(),
    summary="Send the requested documents back for review",
)
async def resubmit(request: Request[Any, Any, Any], tracking_code: CODE) -> StatusOut:
    """Once every requested document is uploaded, hand the application back to its reviewer."""
    gcx = request.app.state.gcx
    await app_service.act(gcx, tracking_code, "resubmit_documents", applicant(request))
    return status_of(request, await applicant_view(gcx, tracking_code))


def router() -> Router:
    return Router(
        "/api/v1/applications",
        route_handlers=[
            submit_application,
            submit_with_documents,
            application_status,
            outstanding,
            upload,
            withdraw,
            confirm_withdraw,
            resubmit,
        ],
        tags=["applicants"],
        # Cookieless (app.COOKIELESS lists the path for any route under it): saying so on the
        # router lets the session and CSRF middlewares stand aside before matching the path.
        opt={"skip_session": True, "exclude_from_csrf": True},
    )
