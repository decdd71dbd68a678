"""Back office: notifications (and the captured-mail outbox), audit log, users, plugins,
and each member of staff's declared conflicts of interest."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from gcx_core.entities import STAFF_ROLES, NotificationStatus
from gcx_core.exceptions import GcxError, NotFoundError, ValidationError
from gcx_core.plugins import describe_plugins, first_async
from gcx_core.services import assignment, staff
from gcx_core.services import notifications as outbox
from gcx_core.services.accounts import create_user
from gcx_core.services.queries import AuditFilter, audit_choices, audit_entries
from gcx_web.backoffice.pages import query_with
from gcx_web.errors import describe
from gcx_web.schemas import RowId
from gcx_web.security.auth import current_actor, flash, page_context, requires

VIEW = [requires("view")]
ADMIN = [requires("admin")]
REVIEW = [requires("review")]


def _int(value: Any, name: str, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    if not str(value).isdigit():
        raise ValidationError({name: "must be a whole number"})
    return int(value)


@get("/backoffice/notifications", guards=VIEW, include_in_schema=False)
async def notifications_page(request: Request[Any, Any, Any]) -> Template:
    q = request.query_params
    page = _int(q.get("page"), "page", 1) or 1
    items, total = await outbox.list_notifications(
        request.app.state.gcx,
        status=q.get("status", ""),
        type=q.get("type", ""),
        channel=q.get("channel", ""),
        application_id=_int(q.get("application"), "application"),
        page=page,
    )
    types, channels = await outbox.notification_choices(request.app.state.gcx)
    return Template(
        "backoffice/notifications.html",
        context=await page_context(
            request,
            items=items,
            total=total,
            page=page,
            params=q,
            per_page=50,
            types=types,
            channels=channels,
            statuses=[str(s) for s in NotificationStatus],
        ),
    )


@get("/backoffice/notifications/{notification_id:int}", guards=VIEW, include_in_schema=False)
async def notification_page(request: Request[Any, Any, Any], notification_id: RowId) -> Template:
    gcx = request.app.state.gcx
    item = await outbox.get_notification(gcx, notification_id)
    preview = await first_async(
        gcx.plugins.hook.gcx_web_notification_preview, gcx=gcx, notification=item
    )
    return Template(
        "backoffice/notification.html",
        context=await page_context(request, item=item, preview=preview),
    )


@post("/backoffice/notifications/retry", guards=ADMIN, include_in_schema=False)
async def notifications_retry(request: Request[Any, Any, Any]) -> Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    ids = [int(v) for v in form.getall("id", []) if str(v).isdigit()]
    retried = await outbox.retry_notifications(gcx, actor, ids or None)
    if retried:
        flash(
            request, f"{len(retried)} notification{'s' if len(retried) != 1 else ''} queued again."
        )
    else:
        flash(request, "No dead notification was there to retry.", ok=False)
    return Redirect(
        str(form.get("back") or "/backoffice/notifications")
        if str(form.get("back") or "").startswith("/backoffice/")
        else "/backoffice/notifications",
        status_code=303,
    )


@get("/backoffice/outbox", guards=ADMIN, include_in_schema=False)
async def captured_outbox(request: Request[Any, Any, Any]) -> Template:
    gcx = request.app.state.gcx
    recipient = (request.query_params.get("recipient") or "").strip()[:254]
    messages = await first_async(
        gcx.plugins.hook.gcx_web_captured_mail, gcx=gcx, limit=100, recipient=recipient
    )
    return Template(
        "backoffice/outbox.html",
        context=await page_context(request, messages=messages, recipient=recipient),
    )


@get("/backoffice/outbox/{message_id:int}/html", guards=ADMIN, include_in_schema=False)
async def captured_html(request: Request[Any, Any, Any], message_id: RowId) -> Response[str]:
    """A captured message's HTML part as the recipient's mail program would show it: in a
    sandbox, with no script and nothing fetched from elsewhere."""
    gcx = request.app.state.gcx
    message = await first_async(
        gcx.plugins.hook.gcx_web_captured_message, gcx=gcx, message_id=message_id
    )
    if message is None:
        raise NotFoundError("captured message", message_id)
    return Response(
        message["html"],
        media_type="text/html",
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:",
            "Cache-Control": "private, no-store",
        },
    )


@get("/backoffice/audit", guards=[requires("admin")], include_in_schema=False)
async def audit_page(request: Request[Any, Any, Any]) -> Template:
    q = request.query_params

    def day(name: str, shift: int = 0) -> datetime | None:
        value = q.get(name, "")
        if not value:
            return None
        try:
            return datetime.combine(
                datetime.strptime(value, "%Y-%m-%d").date(), time(), tzinfo=UTC
            ) + timedelta(days=shift)
        except ValueError:
            raise ValidationError({name: "must be a date like 2026-11-28"}) from None

    flt = AuditFilter(
        actor=q.get("actor", ""),
        action=q.get("action", ""),
        object_type=q.get("object_type", ""),
        object_id=q.get("object_id", ""),
        since=day("from"),
        until=day("to", 1),
        page=_int(q.get("page"), "page", 1) or 1,
    )
    gcx = request.app.state.gcx
    page = await audit_entries(gcx, flt)
    actions, kinds = await audit_choices(gcx)
    return Template(
        "backoffice/audit.html",
        context=await page_context(
            request,
            page=page,
            params=q,
            actions=actions,
            kinds=kinds,
            changes=audit_changes,
            link=audit_link,
            next_page=query_with(q, page=page.page + 1),
        ),
    )


def audit_changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """What an entry changed, field by field: (field, before, after); unchanged ones left out."""
    keys = list(dict.fromkeys([*before, *after]))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def audit_link(object_type: str, object_id: str) -> str | None:
    """Where the object an audit entry names is shown, if it has a page."""
    if not object_id.isdigit():
        return None
    return {
        "application": f"/backoffice/applications/{object_id}",
        "document": f"/backoffice/documents/{object_id}",
        "notification": f"/backoffice/notifications/{object_id}",
        "user": f"/backoffice/users#user-{object_id}",
    }.get(object_type)


@get("/backoffice/users", guards=ADMIN, include_in_schema=False)
async def users_page(request: Request[Any, Any, Any]) -> Template:
    return await _users(request)


async def _users(
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, list[str]] | None = None,
    notice: str = "",
    secret: str = "",
    status_code: int = 200,
) -> Template:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    users = await staff.list_users(gcx, actor)
    tokens = await staff.list_api_tokens(gcx, actor)
    return Template(
        "backoffice/users.html",
        context=await page_context(
            request,
            users=users,
            tokens=tokens,
            roles=sorted(str(r) for r in STAFF_ROLES),
            errors=errors or {},
            notice=notice,
            secret=secret,
        ),
        status_code=status_code,
    )


@post("/backoffice/users", guards=ADMIN, include_in_schema=False)
async def user_create(request: Request[Any, Any, Any]) -> Template:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    try:
        user, password = await create_user(
            gcx,
            str(form.get("email") or ""),
            str(form.get("role") or ""),
            actor,
            name=str(form.get("name") or ""),
        )
    except GcxError as exc:
        body, _ = describe(exc)
        return await _users(
            request, errors=body.fields or {"email": [body.message]}, status_code=body.status
        )
    return await _users(
        request,
        notice=f"Created {user.email}. Their password is shown once:",
        secret=password or "",
        status_code=201,
    )


@post("/backoffice/users/{user_id:int}", guards=ADMIN, include_in_schema=False)
async def user_update(request: Request[Any, Any, Any], user_id: RowId) -> Template | Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    active = {"yes": True, "no": False}.get(str(form.get("active") or ""))
    role = str(form.get("role") or "") or None
    try:
        changed = await staff.update_user(gcx, user_id, actor, role=role, active=active)
    except ValidationError as exc:
        return await _users(request, errors=exc.errors, status_code=422)
    state = "active" if changed.is_active else "deactivated"
    flash(request, f"{changed.email} saved: {changed.role}, {state}.")
    return Redirect("/backoffice/users", status_code=303)


@post("/backoffice/users/{user_id:int}/tokens", guards=ADMIN, include_in_schema=False)
async def token_create(request: Request[Any, Any, Any], user_id: RowId) -> Template:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    try:
        token, secret = await staff.create_api_token(
            gcx, user_id, str(form.get("name") or ""), actor
        )
    except ValidationError as exc:
        return await _users(request, errors=exc.errors, status_code=422)
    return await _users(
        request,
        notice=f"API token {token.name!r} created. It is shown once:",
        secret=secret,
        status_code=201,
    )


@post("/backoffice/tokens/{token_id:int}/revoke", guards=ADMIN, include_in_schema=False)
async def token_revoke(request: Request[Any, Any, Any], token_id: RowId) -> Redirect:
    _, actor = await current_actor(request)
    await staff.revoke_api_token(request.app.state.gcx, token_id, actor)
    flash(request, "The API token was revoked: it no longer works.")
    return Redirect("/backoffice/users", status_code=303)


@get("/backoffice/plugins", guards=ADMIN, include_in_schema=False)
async def plugins_page(request: Request[Any, Any, Any]) -> Template:
    infos = describe_plugins(request.app.state.gcx.plugins)
    return Template("backoffice/plugins.html", context=await page_context(request, plugins=infos))


@get("/backoffice/interests", guards=REVIEW, include_in_schema=False)
async def interests_page(request: Request[Any, Any, Any]) -> Template:
    user, _ = await current_actor(request)
    declared = await assignment.interests_of(request.app.state.gcx, user.id)
    return await _interests(request, declared.domains, declared.tins)


async def _interests(
    request: Request[Any, Any, Any],
    domains: Any,
    tins: Any,
    errors: dict[str, list[str]] | None = None,
) -> Template:
    return Template(
        "backoffice/interests.html",
        context=await page_context(
            request, domains="\n".join(domains), tins="\n".join(tins), errors=errors or {}
        ),
        status_code=422 if errors else 200,
    )


@post("/backoffice/interests", guards=REVIEW, include_in_schema=False)
async def interests_save(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Replace the signed-in member of staff's declared conflicts of interest."""
    user, actor = await current_actor(request)
    form = await request.form()
    domains = str(form.get("domains") or "").replace(",", "\n").splitlines()
    tins = str(form.get("tins") or "").replace(",", "\n").splitlines()
    try:
        await assignment.set_interests(request.app.state.gcx, actor, user.id, domains, tins)
    except GcxError as exc:
        body, _ = describe(exc)
        return await _interests(request, domains, tins, body.fields or {"": [body.message]})
    flash(request, "Saved: you will not be given applications from these applicants.")
    return Redirect("/backoffice/interests", status_code=303)


HANDLERS = [
    notifications_page,
    notification_page,
    notifications_retry,
    captured_outbox,
    captured_html,
    audit_page,
    users_page,
    user_create,
    user_update,
    token_create,
    token_revoke,
    plugins_page,
    interests_page,
    interests_save,
]
