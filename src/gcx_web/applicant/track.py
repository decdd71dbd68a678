"""`/track`: the applicant's status page, uploads and withdrawal, and its live socket."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, WebSocket, get, post, websocket
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gcx_core.exceptions import (
    GcxError,
    GuardFailedError,
    InvalidTransitionError,
    NotFoundError,
    TokenError,
    ValidationError,
)
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.services import messages as message_service
from gcx_core.services.applicant import applicant_view
from gcx_core.services.queries import find_by_tracking_code
from gcx_core.services.withdrawals import (
    check_withdrawal_link,
    confirm_withdrawal,
    request_withdrawal,
)
from gcx_core.tracking import normalise_tracking_code
from gcx_web.applicant.api import applicant, form_date, status_of
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY
from gcx_web.errors import describe, error_messages
from gcx_web.live.sockets import follow, origin_allowed
from gcx_web.security.ratelimit import rate_limited


@get("/track", include_in_schema=False)
async def track_form() -> Template:
    return Template("track/find.html", context={"code": "", "error": ""})


@post("/track", include_in_schema=False, before_request=rate_limited("lookup"))
async def track_find(request: Request[Any, Any, Any]) -> Template | Redirect:
    form = await request.form()
    raw = form.get("code")
    code = normalise_tracking_code(raw) if isinstance(raw, str) else None
    if code is not None:
        try:
            await find_by_tracking_code(request.app.state.gcx, code)
        except NotFoundError:
            code = None
    if code is None:
        return Template(
            "track/find.html",
            context={
                "code": raw if isinstance(raw, str) else "",
                "error": "No application has this tracking code. Check it and try again.",
            },
            status_code=404,
        )
    return Redirect(f"/track/{code}", status_code=303)


async def _status_page(
    request: Request[Any, Any, Any],
    code: str,
    *,
    errors: dict[str, list[str]] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Template:
    gcx = request.app.state.gcx
    view = await applicant_view(gcx, code)
    app_id = view.application.id
    thread = await message_service.thread(gcx, app_id)
    await message_service.mark_read(gcx, app_id, message_service.APPLICANT)
    return Template(
        "track/status.html",
        context={
            "view": view,
            "status": status_of(request, view),
            "errors": errors or {},
            "notice": notice,
            "thread": thread,
        },
        status_code=status_code,
    )


@get("/track/{code:str}", include_in_schema=False, before_request=rate_limited("lookup"))
async def track_status(request: Request[Any, Any, Any], code: FromPath[str]) -> Template:
    notice = {
        "uploaded": "Thank you: the document was received."
        if request.query_params.get("n", "1") == "1"
        else f"Thank you: {_count(request)} documents were received.",
        "withdrawn": "Your application was withdrawn.",
        "withdraw_link": (
            "We sent a link to the email address on this application. Follow it within 24"
            " hours to withdraw the application; until then nothing changes."
        ),
        "resubmitted": "Your documents were sent to the reviewer.",
        "message": "Your message was sent to the programme's staff.",
    }.get(request.query_params.get("done", ""), "")
    return await _status_page(request, code, notice=notice)


@post(
    "/track/{code:str}/documents",
    include_in_schema=False,
    before_request=rate_limited("upload"),
    # Several documents at once: each is bounded by its own limit when it is checked.
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY * 5,
)
async def track_upload_many(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    """The outstanding documents in one upload: a file part `documents.<requirement>` each.
    Each file is checked and stored on its own; the ones refused say why, next to their field."""
    gcx = request.app.state.gcx
    found = await find_by_tracking_code(gcx, code)
    form = await request.form()
    files = [
        (name.removeprefix("documents."), value)
        for name, value in form.multi_items()
        if name.startswith("documents.") and isinstance(value, UploadFile) and value.filename
    ]
    if not files:
        return await _status_page(
            request, code, errors={"documents": ["Choose at least one file."]}, status_code=422
        )
    errors: dict[str, list[str]] = {}
    received = 0
    for requirement, upload in files:
        try:
            await doc_service.upload_document(
                gcx,
                found.id,
                requirement,
                await upload.read(),
                upload.filename,
                applicant(request),
                valid_until=form_date(form.get(f"valid_until.{requirement}"), "valid_until"),
            )
        except GcxError as exc:
            errors[f"documents.{requirement}"], _ = error_messages(exc)
        else:
            received += 1
    if errors:
        notice = f"{received} of {len(files)} documents were received." if received else ""
        return await _status_page(request, code, errors=errors, notice=notice, status_code=422)
    return Redirect(f"/track/{found.tracking_code}?done=uploaded&n={received}", status_code=303)


@post(
    "/track/{code:str}/documents/{requirement:str}",
    include_in_schema=False,
    before_request=rate_limited("upload"),
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
)
async def track_upload(
    request: Request[Any, Any, Any], code: FromPath[str], requirement: FromPath[str]
) -> Template | Redirect:
    gcx = request.app.state.gcx
    found = await find_by_tracking_code(gcx, code)  # unknown codes: 404 before anything else
    form = await request.form()
    upload = form.get("file")
    field = f"documents.{requirement}"
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _status_page(
            request, code, errors={field: ["Choose a file to upload."]}, status_code=422
        )
    try:
        await doc_service.upload_document(
            gcx,
            found.id,
            requirement,
            await upload.read(),
            upload.filename,
            applicant(request),
            valid_until=form_date(form.get("valid_until"), "valid_until"),
        )
    except GcxError as exc:
        messages, status = error_messages(exc)
        return await _status_page(request, code, errors={field: messages}, status_code=status)
    return Redirect(f"/track/{found.tracking_code}?done=uploaded", status_code=303)


@post(
    "/track/{code:str}/messages",
    include_in_schema=False,
    before_request=rate_limited("upload"),
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
)
async def track_message(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    """The applicant writes to staff, with one file at most."""
    gcx = request.app.state.gcx
    found = await find_by_tracking_code(gcx, code)  # unknown codes: 404 before anything else
    form = await request.form()
    upload = form.get("file")
    content, filename = b"", ""
    if isinstance(upload, UploadFile) and upload.filename:
        content, filename = await upload.read(), upload.filename
    try:
        await message_service.write_to_staff(
            gcx,
            found.id,
            applicant(request),
            str(form.get("body") or ""),
            content=content or None,
            filename=filename,
        )
    except GcxError as exc:
        body, _ = describe(exc)
        fields = body.fields or {"body": [body.message]}
        return await _status_page(request, code, errors=fields, status_code=body.status)
    return Redirect(f"/track/{found.tracking_code}?done=message#messages", status_code=303)


@get("/track/{code:str}/withdraw", include_in_schema=False, before_request=rate_limited("lookup"))
async def track_withdraw_confirm(request: Request[Any, Any, Any], code: FromPath[str]) -> Template:
    view = await applicant_view(request.app.state.gcx, code)
    return Template("track/withdraw.html", context={"view": view})


@post("/track/{code:str}/withdraw", include_in_schema=False, before_request=rate_limited("lookup"))
async def track_withdraw(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    """Step 1: email a link that withdraws the application; nothing changes until it is used."""
    gcx = request.app.state.gcx
    view = await applicant_view(gcx, code)
    form = await request.form()
    if form.get("confirm") != "yes":
        return Template(
            "track/withdraw.html",
            context={"view": view, "error": "Tick the box to confirm."},
            status_code=422,
        )
    comment = form.get("comment")
    try:
        await request_withdrawal(
            gcx,
            view.application.id,
            applicant(request),
            comment=comment if isinstance(comment, str) else None,
        )
    except ValidationError as exc:
        messages, _ = error_messages(exc)
        return Template(
            "track/withdraw.html",
            context={"view": view, "error": "Reason: " + "; ".join(messages)},
            status_code=422,
        )
    return Redirect(f"/track/{view.application.tracking_code}?done=withdraw_link", status_code=303)


def _link_gone(request: Request[Any, Any, Any], code: str) -> Template:
    return Template(
        "track/withdraw_link.html",
        context={"code": normalise_tracking_code(code) or "", "dead": True},
        status_code=410,
    )


@get(
    "/track/{code:str}/withdraw/{token:str}",
    include_in_schema=False,
    before_request=rate_limited("lookup"),
)
async def track_withdraw_link(
    request: Request[Any, Any, Any], code: FromPath[str], token: FromPath[str]
) -> Template:
    """Step 2, the emailed link: asks once more (opening a link must change nothing, since
    mail scanners open links too)."""
    try:
        app = await check_withdrawal_link(request.app.state.gcx, code, token)
    except TokenError:
        return _link_gone(request, code)
    return Template(
        "track/withdraw_link.html",
        context={"code": app.tracking_code, "name": app.business.name, "token": token},
    )


@post(
    "/track/{code:str}/withdraw/{token:str}",
    include_in_schema=False,
    before_request=rate_limited("lookup"),
)
async def track_withdraw_confirmed(
    request: Request[Any, Any, Any], code: FromPath[str], token: FromPath[str]
) -> Template | Redirect:
    gcx = request.app.state.gcx
    try:
        app = await confirm_withdrawal(gcx, code, token, applicant(request))
    except TokenError:
        return _link_gone(request, code)
    except (InvalidTransitionError, GuardFailedError) as exc:
        body, _ = describe(exc)
        return await _status_page(
            request,
            code,
            notice="This application can no longer be withdrawn: " + body.message,
            status_code=409,
        )
    return Redirect(f"/track/{app.tracking_code}?done=withdrawn", status_code=303)


def _count(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("n", "1")
    return min(int(raw), 99) if raw.isdigit() else 1


def _version(form: Any) -> int | None:
    raw = form.get("version")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


@post("/track/{code:str}/resubmit", include_in_schema=False, before_request=rate_limited("lookup"))
async def track_resubmit(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    gcx = request.app.state.gcx
    found = await find_by_tracking_code(gcx, code)
    form = await request.form()
    try:
        await app_service.act(
            gcx,
            found.id,
            "resubmit_documents",
            applicant(request),
            expected_version=_version(form),
        )
    except GcxError as exc:
        body, _ = describe(exc)
        if body.status == 404:
            raise
        return await _status_page(request, code, notice=body.message, status_code=body.status)
    return Redirect(f"/track/{found.tracking_code}?done=resubmitted", status_code=303)


@websocket("/ws/track/{code:str}")
async def track_socket(socket: WebSocket[Any, Any, Any], code: FromPath[str]) -> None:
    """The applicant's live status: the status view now, then again after every change."""
    app_state = socket.app.state
    if not origin_allowed(socket, app_state.config.allowed_origins):
        await socket.close(code=4403, reason="origin not allowed")
        return
    try:
        await app_state.rate_limiter.check("lookup", socket)
    except Exception:
        await socket.close(code=4429, reason="too many requests")
        return
    gcx = app_state.gcx
    try:
        view = await applicant_view(gcx, code)
    except NotFoundError:
        await socket.close(code=4404, reason="not found")
        return
    await socket.accept()
    encoder = msgspec.json.Encoder()

    async def render(_: Any) -> bytes:
        # The event itself may carry staff-only detail: send the applicant's view instead,
        # with the thread (staff's messages to them and theirs; nothing else staff wrote).
        current = await applicant_view(gcx, code)
        app_id = current.application.id
        data: dict[str, Any] = msgspec.to_builtins(status_of(socket, current))  # a copy
        data["messages"] = [
            {
                "from": m.sender,
                "body": m.body,
                "at": m.created_at,
                "file": m.file_name if m.file_key else "",
            }
            for m in await message_service.thread(gcx, app_id)
        ]
        await message_service.mark_read(gcx, app_id, message_service.APPLICANT)  # on screen
        return encoder.encode({"type": "status", "data": data})

    await follow(socket, [f"application:{view.application.id}"], render)


HANDLERS = [
    track_form,
    track_find,
    track_status,
    track_upload_many,
    track_upload,
    track_message,
    track_withdraw_confirm,
    track_withdraw,
    track_withdraw_link,
    track_withdraw_confirmed,
    track_resubmit,
    track_socket,
]
