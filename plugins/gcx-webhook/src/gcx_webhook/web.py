"""Back-office pages for admins: subscribers, their delivery logs, and "send again"."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from gcx_core.exceptions import GcxError, ValidationError
from gcx_web.errors import describe
from gcx_web.schemas import RowId
from gcx_web.security.auth import current_actor, flash, page_context, requires
from gcx_webhook import store
from gcx_webhook.events import catalogue

ADMIN = [requires("admin")]
BASE = "/backoffice/webhooks"


async def _list_page(
    request: Request[Any, Any, Any], *, errors: Any = None, form: Any = None, status: int = 200
) -> Template:
    gcx = request.app.state.gcx
    return Template(
        "webhooks/list.html",
        context=await page_context(
            request,
            subscribers=await store.all_subscribers(gcx),
            events=catalogue(gcx.workflow),
            errors=errors,
            form=form or {},
            suggested_secret=secrets.token_urlsafe(32),
        ),
        status_code=status,
    )


async def _detail_page(
    request: Request[Any, Any, Any],
    subscriber_id: int,
    *,
    errors: Any = None,
    status: int = 200,
) -> Template:
    gcx = request.app.state.gcx
    subscriber = await store.get(gcx, subscriber_id)
    return Template(
        "webhooks/subscriber.html",
        context=await page_context(
            request,
            subscriber=subscriber,
            deliveries=await store.deliveries(gcx, subscriber_id),
            events=catalogue(gcx.workflow),
            errors=errors,
        ),
        status_code=status,
    )


def _fields(exc: GcxError) -> tuple[dict[str, list[str]], int]:
    body, _ = describe(exc)
    return body.fields or {"subscriber": [body.message]}, body.status


def _form(form: Any) -> dict[str, str]:
    return {k: str(form.get(k) or "") for k in ("name", "url", "secret", "events", "active")}


@get(BASE, guards=ADMIN, include_in_schema=False)
async def webhooks_page(request: Request[Any, Any, Any]) -> Template:
    return await _list_page(request)


@post(BASE, guards=ADMIN, include_in_schema=False)
async def webhook_create(request: Request[Any, Any, Any]) -> Template | Redirect:
    _, actor = await current_actor(request)
    form = _form(await request.form())
    try:
        created = await store.create(request.app.state.gcx, actor, form)
    except GcxError as exc:
        errors, status = _fields(exc)
        form.pop("secret")  # never sent back to the browser
        return await _list_page(request, errors=errors, form=form, status=status)
    flash(request, f"Subscriber {created.name} added.")
    return Redirect(f"{BASE}/{created.id}", status_code=303)


@get(f"{BASE}/{{subscriber_id:int}}", guards=ADMIN, include_in_schema=False)
async def webhook_page(request: Request[Any, Any, Any], subscriber_id: RowId) -> Template:
    return await _detail_page(request, subscriber_id)


@post(f"{BASE}/{{subscriber_id:int}}", guards=ADMIN, include_in_schema=False)
async def webhook_update(
    request: Request[Any, Any, Any], subscriber_id: RowId
) -> Template | Redirect:
    _, actor = await current_actor(request)
    try:
        await store.update(request.app.state.gcx, actor, subscriber_id, _form(await request.form()))
    except GcxError as exc:
        errors, status = _fields(exc)
        if status == 404:
            raise
        return await _detail_page(request, subscriber_id, errors=errors, status=status)
    flash(request, "Subscriber saved.")
    return Redirect(f"{BASE}/{subscriber_id}", status_code=303)


@post(f"{BASE}/{{subscriber_id:int}}/delete", guards=ADMIN, include_in_schema=False)
async def webhook_delete(
    request: Request[Any, Any, Any], subscriber_id: RowId
) -> Template | Redirect:
    _, actor = await current_actor(request)
    form = await request.form()
    try:
        if form.get("confirm") != "yes":
            raise ValidationError({"confirm": "tick the box to say you mean it"})
        await store.delete(request.app.state.gcx, actor, subscriber_id)
    except GcxError as exc:
        errors, status = _fields(exc)
        if status == 404:
            raise
        return await _detail_page(request, subscriber_id, errors=errors, status=status)
    flash(request, "Subscriber deleted.")
    return Redirect(BASE, status_code=303)


@post(f"{BASE}/deliveries/{{notification_id:int}}/again", guards=ADMIN, include_in_schema=False)
async def webhook_send_again(request: Request[Any, Any, Any], notification_id: RowId) -> Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    back = str(form.get("back") or BASE)
    try:
        new_id = await store.send_again(gcx, actor, notification_id)
    except GcxError as exc:
        errors, status = _fields(exc)
        if status == 404:
            raise
        flash(request, "; ".join(m for msgs in errors.values() for m in msgs), ok=False)
    else:
        flash(request, f"Queued again as delivery {new_id}.")
    return Redirect(back if back.startswith(BASE) else BASE, status_code=303)


ROUTES = [
    webhooks_page,
    webhook_create,
    webhook_page,
    webhook_update,
    webhook_delete,
    webhook_send_again,
]
