"""Signing in and out, account activation by link, and the supplier's own small portal."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gcx_core.entities import STAFF_ROLES, Role, User
from gcx_core.exceptions import AuthenticationError, TokenError, ValidationError
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
from gcx_web.security.auth import session_user, sign_in, sign_out
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


@get("/account", include_in_schema=False)
async def supplier_home(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await session_user(request)
    if user is None:
        return Redirect("/login?next=/account", status_code=303)
    if user.role is not Role.SUPPLIER:
        return Redirect("/backoffice/", status_code=303)
    gcx = request.app.state.gcx
    application = await get_application(gcx, user.application_id) if user.application_id else None
    documents = await documents_of(gcx, application.id) if application else []
    state = gcx.workflow.state(application.status) if application else None
    return Template(
        "account/home.html",
        context={
            "user": user,
            "application": application,
            "state": state,
            "documents": documents,
            "titles": request.app.state.requirement_titles,
        },
    )


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
    reset_request_form,
    reset_request,
    reset_form,
    reset,
]
