"""Staff administration: users (list, role, deactivation) and per-user API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import attrs
import sqlalchemy as sa

from gcx_core.entities import STAFF_ROLES, Actor, Role, User
from gcx_core.events import UserChanged
from gcx_core.exceptions import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import api_tokens, users
from gcx_core.system import Gcx

TOKEN_PREFIX = "gcx_"  # noqa: S105 - a marker, not a secret


def _require_admin(actor: Actor) -> None:
    if not actor.can("admin"):
        raise PermissionDeniedError("managing users needs the admin role")


async def list_users(gcx: Gcx, actor: Actor, *, staff_only: bool = True) -> list[User]:
    _require_admin(actor)
    query = sa.select(users).order_by(users.c.email)
    if staff_only:
        query = query.where(users.c.role.in_([str(r) for r in STAFF_ROLES]))
    async with gcx.database.read() as conn:
        return [user_rows.to_user(r) for r in await conn.execute(query)]


async def staff_users(gcx: Gcx) -> list[User]:
    """Every staff user, by name then email: what pages show for reviewers and verifiers (any
    staff member may see colleagues' names)."""
    query = (
        sa.select(users)
        .where(users.c.role.in_([str(r) for r in STAFF_ROLES]))
        .order_by(users.c.name, users.c.email)
    )
    async with gcx.database.read() as conn:
        return [user_rows.to_user(r) for r in await conn.execute(query)]


def names_of(people: list[User]) -> dict[int, str]:
    """Display names (the name, else the email) by user id."""
    return {u.id: u.name or u.email for u in people}


def reviewers_of(people: list[User]) -> list[User]:
    """Those who may review now: the choices of a reviewer filter or an assignment."""
    return [u for u in people if u.can("review")]


async def staff_names(gcx: Gcx) -> dict[int, str]:
    """Every staff user's display name by id."""
    return names_of(await staff_users(gcx))


async def get_user(gcx: Gcx, user_id: int) -> User:
    async with gcx.database.read() as conn:
        user = await user_rows.get(conn, user_id)
    if user is None:
        raise NotFoundError("user", user_id)
    return user


async def update_user(
    gcx: Gcx, user_id: int, actor: Actor, *, role: str | None = None, active: bool | None = None
) -> User:
    """Change a staff user's role or (de)activate them; admins cannot lock themselves out."""
    _require_admin(actor)
    values: dict[str, object] = {}
    if role is not None:
        try:
            new_role = Role(role)
        except ValueError:
            raise ValidationError({"role": "must be viewer, reviewer or admin"}) from None
        if new_role not in STAFF_ROLES:
            raise ValidationError({"role": "must be viewer, reviewer or admin"})
        values["role"] = str(new_role)
    if active is not None:
        values["is_active"] = active
    if user_id == actor.user_id and (
        values.get("is_active") is False or values.get("role", "admin") != "admin"
    ):
        raise ValidationError({"user": "you cannot demote or deactivate yourself"})
    now = gcx.now()
    async with gcx.database.write() as conn:
        before = await user_rows.get(conn, user_id)
        if before is None or before.role not in STAFF_ROLES:
            raise NotFoundError("user", user_id)
        if values:
            await conn.execute(users.update().where(users.c.id == user_id).values(values))
            await bookkeeping.add_audit(
                conn,
                [
                    bookkeeping.audit_row(
                        actor,
                        "user.update",
                        "user",
                        user_id,
                        at=now,
                        before={"role": str(before.role), "is_active": before.is_active},
                        after={k: str(v) if k == "role" else v for k, v in values.items()},
                    )
                ],
            )
        after = await user_rows.get(conn, user_id)
    assert after is not None
    await gcx.fire([(UserChanged(user_id, "updated", now), None)])
    return after


@attrs.frozen
class ApiToken:
    id: int
    user_id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(gcx: Gcx, user_id: int, name: str, actor: Actor) -> tuple[ApiToken, str]:
    """A new token for a staff user; the token itself is returned once and never stored."""
    _require_admin(actor)
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        raise ValidationError({"name": "name the token (at most 100 characters)"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = gcx.now()
    async with gcx.database.write() as conn:
        user = await user_rows.get(conn, user_id)
        if user is None or user.role not in STAFF_ROLES:
            raise NotFoundError("user", user_id)
        result = await conn.execute(
            api_tokens.insert().returning(api_tokens.c.id),
            {"user_id": user_id, "name": name, "token_hash": _hash(token), "created_at": now},
        )
        token_id = int(result.scalar_one())
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "api_token.create",
                    "user",
                    user_id,
                    at=now,
                    after={"token_id": token_id, "name": name},
                )
            ],
        )
    return ApiToken(token_id, user_id, name, now), token


async def list_api_tokens(gcx: Gcx, actor: Actor, user_id: int | None = None) -> list[ApiToken]:
    _require_admin(actor)
    query = sa.select(api_tokens).order_by(api_tokens.c.id)
    if user_id is not None:
        query = query.where(api_tokens.c.user_id == user_id)
    async with gcx.database.read() as conn:
        return [
            ApiToken(r.id, r.user_id, r.name, r.created_at, r.revoked_at)
            for r in await conn.execute(query)
        ]


async def revoke_api_token(gcx: Gcx, token_id: int, actor: Actor) -> None:
    _require_admin(actor)
    now = gcx.now()
    async with gcx.database.write() as conn:
        row = (await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id))).first()
        if row is None:
            raise NotFoundError("api token", token_id)
        if row.revoked_at is None:
            await conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now)
            )
            await bookkeeping.add_audit(
                conn,
                [
                    bookkeeping.audit_row(
                        actor,
                        "api_token.revoke",
                        "user",
                        row.user_id,
                        at=now,
                        after={"token_id": token_id},
                    )
                ],
            )


async def user_for_token(gcx: Gcx, token: str) -> User:
    """The active staff user a token belongs to; AuthenticationError for anything else."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthenticationError()
    async with gcx.database.read() as conn:
        row = (
            await conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.revoked_at).where(
                    api_tokens.c.token_hash == _hash(token)
                )
            )
        ).first()
        user = await user_rows.get(conn, row.user_id) if row is not None else None
    if (
        row is None
        or row.revoked_at is not None
        or user is None
        or not user.is_active
        or user.role not in STAFF_ROLES
    ):
        raise AuthenticationError()
    return user
