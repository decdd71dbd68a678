"""Signing in and out, account activation by link, and the supplier's own small portal."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gcx_core.entities import STAFF_ROLES, Role, User
from gcx_core.exceptions import AuthenticationError, GcxError, TokenError, ValidationError
from gcx_core.services import supplier
from gcx_core.services.accounts import (
    ACTIVATION,
    RESET,
    activate_account,
    authenticate,
    check_token,
    request_password_reset,
    reset_password,
)
from gcx_core.services.queries import documents_of, get_application
from gcx_core.storage.documents import latest_versions
from gcx_web.applicant.api import form_date
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY
from gcx_web.errors import error_messages
from gcx_web.schemas import RowId
from gcx_web.security.auth import actor_of, flash, session_user, sign_in, sign_out, take_flash
from gcx_web.security.headers import document_response
from gcx_web.security.ratelimit import client_address, rate_limited


def _safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target


@get("/login", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Template:
    return Template(
        "account/login.html",
        context={"next": request.query_params.get("next", ""), "error": "", "email": ""},
    )


@post("/login", include_in_schema=False, before_request=rate_limited("login"))
async def login(request: Request[Any, Any, Any]) -> Template | Redirect:
    form = await request.form()
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    gcx = request.app.state.gcx
    try:
        user = await authenticate(
            gcx,
            email,
            password,
            client_address=client_address(request, request.app.state.trusted_proxies),
        )
    except AuthenticationError:
        return Template(
            "account/login.html",
            context={
                "next": form.get("next") or "",
                "error": "Wrong email or password, or the account is locked for a while.",
                "email": email,
            },
            status_code=401,
        )
    sign_in(request, user)
    default = "/backoffice/" if user.role in STAFF_ROLES else "/account"
    return Redirect(_safe_next(str(form.get("next") or ""), default), status_code=303)


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    sign_out(request)
    return Redirect("/login", status_code=303)


async def _link_page(
    request: Request[Any, Any, Any], token: str, purpose: str, reset: bool = False
) -> Template:
    """The password form of a link, or at once, for a used or expired link, how to get a new one."""
    context: dict[str, Any] = {"token": token, "errors": {}, "reset": reset}
    try:
        await check_token(request.app.state.gcx, token, purpose)
    except TokenError:
        return Template(
            "account/activate.html", context={**context, "token": "", "dead": True}, status_code=410
        )
    return Template("account/activate.html", context=context)


@get("/activate/{token:str}", include_in_schema=False)
async def activate_form(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    return await _link_page(request, token, ACTIVATION)


async def _set_password(
    request: Request[Any, Any, Any], token: str, use: Any, context: dict[str, Any]
) -> User | Template:
    """The password form of an activation or reset link: the user, or the form with errors."""
    form = await request.form()
    password = str(form.get("password") or "")
    page = "account/activate.html"
    if password != str(form.get("password_again") or ""):
        errors = {"password_again": ["the passwords differ"]}
        return Template(page, context={**context, "errors": errors}, status_code=422)
    try:
        return cast(
            User,
            await use(
                request.app.state.gcx,
                token,
                password,
                client_address=client_address(request, request.app.state.trusted_proxies),
            ),
        )
    except ValidationError as exc:
        return Template(page, context={**context, "errors": exc.errors}, status_code=422)
    except TokenError as exc:
        errors = {"token": [str(exc)]}
        return Template(page, context={**context, "token": "", "errors": errors}, status_code=400)


@post("/activate/{token:str}", include_in_schema=False, before_request=rate_limited("login"))
async def activate(request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
    user = await _set_password(request, token, activate_account, {"token": token})
    if isinstance(user, Template):
        return user
    sign_in(request, user)
    return Redirect("/account" if user.role is Role.SUPPLIER else "/backoffice/", status_code=303)


async def _supplier(request: Request[Any, Any, Any]) -> User | Redirect:
    user = await session_user(request)
    if user is None:
        return Redirect("/login?next=/account", status_code=303)
    if user.role is not Role.SUPPLIER:
        return Redirect("/backoffice/", status_code=303)
    return user


async def _portal(
    request: Request[Any, Any, Any],
    user: User,
    *,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> Template:
    gcx = request.app.state.gcx
    application = await get_application(gcx, user.application_id) if user.application_id else None
    documents = await documents_of(gcx, application.id) if application else []
    state = gcx.workflow.states.get(application.status) if application is not None else None
    return Template(
        "account/home.html",
        context={
            "user": user,
            "application": application,
            "state": state,
            "documents": documents,
            "latest": latest_versions(documents),
            "requirements": gcx.requirements_for(application) if application else [],
            "titles": request.app.state.requirement_titles,
            "renewable": application is not None
            and state is not None
            and state.active
            and not state.terminal,
            "errors": errors or {},
            "flash": take_flash(request),
        },
        status_code=status_code,
    )


@get("/account", include_in_schema=False)
async def supplier_home(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await _supplier(request)
    if isinstance(user, Redirect):
        return user
    return await _portal(request, user)


@post("/account/contact", include_in_schema=False)
async def supplier_contact(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await _supplier(request)
    if isinstance(user, Redirect):
        return user
    form = await request.form()
    try:
        await supplier.update_contact(
            request.app.state.gcx,
            actor_of(request, user),
            telephone=str(form.get("telephone") or ""),
        )
    except ValidationError as exc:
        return await _portal(request, user, errors=exc.errors, status_code=422)
    flash(request, "Your contact telephone was saved.")
    return Redirect("/account", status_code=303)


@get("/account/documents/{document_id:int}/file", include_in_schema=False)
async def supplier_document(
    request: Request[Any, Any, Any], document_id: RowId
) -> Response[bytes] | Redirect:
    """One of the supplier's own documents, as a download that cannot run."""
    user = await _supplier(request)
    if isinstance(user, Redirect):
        return user
    document, content = await supplier.own_document(
        request.app.state.gcx, actor_of(request, user), document_id
    )
    return document_response(document, content)


@post(
    "/account/documents/{requirement:str}",
    include_in_schema=False,
    before_request=rate_limited("upload"),
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
)
async def supplier_renew(
    request: Request[Any, Any, Any], requirement: FromPath[str]
) -> Template | Redirect:
    """A new version of a document (a renewed certificate): staff review it as usual."""
    user = await _supplier(request)
    if isinstance(user, Redirect):
        return user
    form = await request.form()
    upload = form.get("file")
    field = f"documents.{requirement}"
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _portal(
            request, user, errors={field: ["Choose a file to upload."]}, status_code=422
        )
    gcx = request.app.state.gcx
    try:
        document = await supplier.renew_document(
            gcx,
            actor_of(request, user),
            requirement,
            await upload.read(),
            upload.filename,
            valid_until=form_date(form.get("valid_until"), "valid_until"),
        )
    except GcxError as exc:
        messages, status = error_messages(exc)
        if status in (403, 404):
            raise
        return await _portal(request, user, errors={field: messages}, status_code=status)
    title = request.app.state.requirement_titles.get(requirement, requirement)
    flash(request, f"{title}: version {document.version} received; staff will review it.")
    return Redirect("/account#documents", status_code=303)


@get("/account/password", include_in_schema=False)
async def password_form(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await session_user(request)
    if user is None:
        return Redirect("/login?next=/account/password", status_code=303)
    return Template("account/password.html", context={"user": user, "errors": {}})


@post("/account/password", include_in_schema=False, before_request=rate_limited("login"))
async def password_change(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Any signed-in user (supplier or staff) changes their own password."""
    user = await session_user(request)
    if user is None:
        return Redirect("/login?next=/account/password", status_code=303)
    form = await request.form()
    try:
        await supplier.change_password(
            request.app.state.gcx,
            actor_of(request, user),
            str(form.get("current_password") or ""),
            str(form.get("new_password") or ""),
        )
    except ValidationError as exc:
        return Template(
            "account/password.html",
            context={"user": user, "errors": exc.errors},
            status_code=422,
        )
    flash(request, "Your password was changed.")
    return Redirect("/account" if user.role is Role.SUPPLIER else "/backoffice/", status_code=303)


@get("/password-reset", include_in_schema=False)
async def reset_request_form() -> Template:
    return Template("account/reset_request.html", context={"sent": False})


@post("/password-reset", include_in_schema=False, before_request=rate_limited("login"))
async def reset_request(request: Request[Any, Any, Any]) -> Template:
    form = await request.form()
    await request_password_reset(
        request.app.state.gcx,
        str(form.get("email") or ""),
        client_address=client_address(request, request.app.state.trusted_proxies),
    )
    # The same answer whether or not the account exists.
    return Template("account/reset_request.html", context={"sent": True})


@get("/reset/{token:str}", include_in_schema=False)
async def reset_form(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    return await _link_page(request, token, RESET, reset=True)


@post("/reset/{token:str}", include_in_schema=False, before_request=rate_limited("login"))
async def reset(request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
    user = await _set_password(request, token, reset_password, {"token": token, "reset": True})
    if isinstance(user, Template):
        return user
    return Redirect("/login?reset=1", status_code=303)


HANDLERS = [
    login_form,
    login,
    logout,
    activate_form,
    activate,
    supplier_home,
    supplier_contact,
    supplier_document,
    supplier_renew,
    password_form,
    password_change,
    reset_request_form,
    reset_request,
    reset_form,
    reset,
]
