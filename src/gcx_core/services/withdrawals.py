"""Withdrawal in two steps: ask with the tracking code, confirm with a link sent by email.

Holding a tracking code shows an application's status; it is not enough to close it. Asking
sends a single-use link to the applicant's email address; the application is withdrawn only
when that link is followed (and confirmed: a mail scanner that opens links changes nothing).
Only a hash of the link's token is stored; the notification carries a selector from which the
renderer derives the link, as for password resets.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from gcx_core.entities import Actor, Application
from gcx_core.events import NotificationsQueued
from gcx_core.exceptions import InvalidTransitionError, TokenError
from gcx_core.services.accounts import derive_token
from gcx_core.services.applications import act_within, clean_params, resolve
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import application_tokens, notifications
from gcx_core.system import Gcx

WITHDRAW = "withdraw"
LINK_LIFETIME = timedelta(hours=24)
# While a link sent less than this long ago is unused, asking again sends no other email:
# a tracking code cannot be used to flood the applicant's inbox.
RESEND_AFTER = timedelta(minutes=10)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def withdrawal_link(gcx: Gcx, tracking_code: str, selector: str) -> str:
    token = derive_token(gcx.settings.secret_key, WITHDRAW, selector)
    return f"{gcx.settings.base_url}/track/{tracking_code}/withdraw/{token}"


def _clean_comment(comment: str | None) -> str:
    return str(clean_params({"comment": comment or ""}).get("comment", ""))


async def request_withdrawal(
    gcx: Gcx, ref: int | str, actor: Actor, *, comment: str | None = None
) -> Application:
    """Email the applicant a link that withdraws the application; changes nothing else.

    Raises InvalidTransitionError when the applicant cannot withdraw from the current status.
    """
    reason = _clean_comment(comment)
    now = gcx.now()
    queued: int | None = None
    async with gcx.database.write() as conn:
        app = await resolve(conn, ref)
        if WITHDRAW not in gcx.workflow.applicant_actions(app.status):
            raise InvalidTransitionError(app.status, WITHDRAW)
        recent = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(application_tokens)
                .where(
                    application_tokens.c.application_id == app.id,
                    application_tokens.c.purpose == WITHDRAW,
                    application_tokens.c.used_at.is_(None),
                    application_tokens.c.created_at > now - RESEND_AFTER,
                )
            )
        ).scalar_one()
        if recent:
            return app
        # One link works at a time: asking again retires the ones sent before.
        await conn.execute(
            application_tokens.update()
            .where(
                application_tokens.c.application_id == app.id,
                application_tokens.c.purpose == WITHDRAW,
                application_tokens.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        selector = secrets.token_urlsafe(16)
        token = derive_token(gcx.settings.secret_key, WITHDRAW, selector)
        await conn.execute(
            application_tokens.insert().values(
                application_id=app.id,
                purpose=WITHDRAW,
                token_hash=_hash(token),
                comment=reason,
                created_at=now,
                expires_at=now + LINK_LIFETIME,
            )
        )
        result = await conn.execute(
            notifications.insert().returning(notifications.c.id),
            {
                "type": "withdrawal_requested",
                "channel": "email",
                "recipient": app.contact.email,
                "template": "withdrawal_requested",
                "context": {
                    "business_name": app.business.name,
                    "tracking_code": app.tracking_code,
                    "withdrawal_selector": selector,
                    "link_hours": int(LINK_LIFETIME.total_seconds() // 3600),
                },
                "dedupe_key": f"withdraw-link:{app.id}:{selector}",
                "status": "pending",
                "attempts": 0,
                "max_attempts": gcx.settings.notification_max_attempts,
                "next_attempt_at": now,
                "application_id": app.id,
                "created_at": now,
                "updated_at": now,
            },
        )
        queued = int(result.scalar_one())
        await bookkeeping.bump_counters(conn, {bookkeeping.NOTIFICATION_PREFIX + "pending": 1})
        await bookkeeping.add_audit(
            conn,
            [bookkeeping.audit_row(actor, "withdrawal_requested", "application", app.id, at=now)],
        )
    await gcx.fire([(NotificationsQueued((queued,), now), None)])
    return app


async def check_withdrawal_link(gcx: Gcx, ref: int | str, token: str) -> Application:
    """The application an unused, unexpired link withdraws; TokenError otherwise. Reads only."""
    async with gcx.database.read() as conn:
        app = await resolve(conn, ref)
        await _usable(gcx, conn, app, token)
    return app


async def _usable(gcx: Gcx, conn: Connection, app: Application, token: str) -> Any:
    row = (
        await conn.execute(
            sa.select(application_tokens).where(application_tokens.c.token_hash == _hash(token))
        )
    ).first()
    if (
        row is None
        or row.application_id != app.id
        or row.purpose != WITHDRAW
        or row.used_at is not None
        or row.expires_at <= gcx.now()
    ):
        raise TokenError("this withdrawal link is invalid, already used or expired")
    return row


async def confirm_withdrawal(gcx: Gcx, ref: int | str, token: str, actor: Actor) -> Application:
    """Withdraw the application with the link's token, and spend the token, in one change."""
    async with gcx.database.write() as conn:
        app = await resolve(conn, ref)
        row = await _usable(gcx, conn, app, token)
        params = {"comment": row.comment} if row.comment else None
        after, fired = await act_within(gcx, conn, app.id, WITHDRAW, actor, params=params)
        await conn.execute(
            application_tokens.update()
            .where(application_tokens.c.id == row.id)
            .values(used_at=gcx.now())
        )
    await gcx.fire(fired)
    return after
