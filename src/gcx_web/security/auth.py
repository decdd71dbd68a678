"""Who is asking: staff and suppliers by server-side session, integrations by API token.

The session holds only the user id and when it expires (by the Gcx clock); the user is read
again on every request, so a role change or deactivation counts at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from gcx_core.entities import STAFF_ROLES, Actor, User
from gcx_core.exceptions import AuthenticationError, NotFoundError
from gcx_core.services.staff import get_user, user_for_token
from gcx_web.security.ratelimit import client_address
from gcx_web.security.sessions import ROTATE

SESSION_USER = "user_id"
SESSION_EXPIRES = "expires_at"


class LoginRequired(NotAuthorizedException):
    """No valid session (pages redirect to the sign-in page) or token (the API answers 401)."""


def sign_in(connection: Any, user: User) -> None:
    gcx = connection.app.state.gcx
    minutes = connection.app.state.config.session_minutes
    expires = gcx.now() + timedelta(minutes=minutes)
    # A fresh session under a fresh id: whatever was planted before sign-in is gone.
    connection.set_session(
        {SESSION_USER: user.id, SESSION_EXPIRES: expires.isoformat(), ROTATE: True}
    )


def sign_out(connection: Any) -> None:
    connection.clear_session()


async def session_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The signed-in user, or None (no session, expired, or the account was deactivated)."""
    cached = connection.scope.get("gcx_user", False)
    if cached is not False:
        return cast("User | None", cached)
    user = None
    raw = connection.scope.get("session")
    session: dict[str, Any] = raw if isinstance(raw, dict) else {}
    user_id = session.get(SESSION_USER)
    if isinstance(user_id, int):
        gcx = connection.app.state.gcx
        try:
            expires = datetime.fromisoformat(str(session.get(SESSION_EXPIRES)))
        except ValueError:
            expires = None
        if expires is not None and gcx.now() < expires:
            try:
                found = await get_user(gcx, user_id)
            except NotFoundError:
                found = None
            if found is not None and found.is_active:
                user = found
    connection.scope["gcx_user"] = user  # type: ignore[typeddict-unknown-key]
    return user


async def token_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The user of a Bearer API token, or None without one; read once per request (the CSRF
    check, the guard and the handler all ask)."""
    cached = connection.scope.get("gcx_token_user", False)
    if cached is not False:
        return cast("User | None", cached)
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and token.strip():
        try:
            user = await user_for_token(connection.app.state.gcx, token.strip())
        except AuthenticationError:
            raise LoginRequired("invalid API token") from None
    connection.scope["gcx_token_user"] = user  # type: ignore[typeddict-unknown-key]
    return user


async def staff_user(
    connection: ASGIConnection[Any, Any, Any, Any], *, tokens: bool = False
) -> User:
    """The staff member making this request; raises LoginRequired or 403 otherwise."""
    user = await token_user(connection) if tokens else None
    if user is None:
        user = await session_user(connection)
    if user is None:
        raise LoginRequired("sign in first")
    if user.role not in STAFF_ROLES:
        raise PermissionDeniedException("this is for staff")
    return user


def actor_of(connection: ASGIConnection[Any, Any, Any, Any], user: User) -> Actor:
    return Actor.for_user(user, client_address(connection, connection.app.state.trusted_proxies))


def requires(permission: str, *, tokens: bool = False) -> Any:
    """A guard: the caller is staff with `permission` (view, review, approve, admin)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
        user = await staff_user(connection, tokens=tokens)
        if not user.can(permission):
            raise PermissionDeniedException(f"this needs the {permission} permission")

    guard.__name__ = f"requires_{permission}"
    return guard


async def current_actor(
    connection: ASGIConnection[Any, Any, Any, Any], *, tokens: bool = False
) -> tuple[User, Actor]:
    user = await staff_user(connection, tokens=tokens)
    return user, actor_of(connection, user)


FLASH = "flash"


def flash(
    request: Any, text: str, *, ok: bool = True, fields: dict[str, list[str]] | None = None
) -> None:
    """A message for the next page this browser session shows: what an action did, or why it
    was refused (with field errors by label). Shown once."""
    session = dict(request.session or {})
    session[FLASH] = {"ok": ok, "text": text, "fields": fields or {}}
    request.set_session(session)


def take_flash(request: Any) -> dict[str, Any] | None:
    session = request.session or {}
    if FLASH not in session:
        return None
    session = dict(session)
    found = session.pop(FLASH)
    request.set_session(session)
    return found if isinstance(found, dict) else None


async def page_context(request: Any, **extra: Any) -> dict[str, Any]:
    """What every back-office template needs: the user, their actor, where they are, and the
    message an action left for this page."""
    user, actor = await current_actor(request)
    return {
        "user": user,
        "actor": actor,
        "nav": request.url.path,
        "flash": take_flash(request),
        **extra,
    }
