"""Staff and supplier accounts: argon2id passwords, lockout, single-use expiring tokens.

No password or token is ever stored in clear, logged, audited or put in a notification. An
activation link is derived at render time from the token's selector and the secret key, so
the outbox row holds only the selector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

import anyio
import argon2
import sqlalchemy as sa

from gcx_core.entities import STAFF_ROLES, Actor, Application, Role, User
from gcx_core.events import UserChanged
from gcx_core.exceptions import AuthenticationError, NotFoundError, TokenError, ValidationError
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import user_tokens, users
from gcx_core.system import Gcx
from gcx_core.validation import _EMAIL, normalise_email

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
ACTIVATION = "activation"
RESET = "reset"

_hasher = argon2.PasswordHasher()
# Verified against when the email is unknown, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError({"password": f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"})
    if len(set(password)) < 4:
        raise ValidationError({"password": "must not repeat a few characters"})


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def _audit(
    actor: Actor,
    action: str,
    user_id: int,
    before: dict[str, object],
    after: dict[str, object],
    at: Any,
) -> dict[str, Any]:
    return bookkeeping.audit_row(actor, action, "user", user_id, at=at, before=before, after=after)


async def create_user(
    gcx: Gcx,
    email: str,
    role: Role | str,
    actor: Actor,
    *,
    name: str = "",
    password: str | None = None,
) -> tuple[User, str | None]:
    """Create a staff user; returns the user and the generated password, if one was generated."""
    errors: dict[str, str] = {}
    email = normalise_email(email or "")
    if not _EMAIL.match(email):
        errors["email"] = "must be an email address"
    try:
        role = Role(role)
    except ValueError:
        role = Role.VIEWER
        errors["role"] = "must be one of " + ", ".join(sorted(STAFF_ROLES))
    if role not in STAFF_ROLES:
        errors["role"] = "must be one of " + ", ".join(sorted(STAFF_ROLES))
    generated = None
    if password is None:
        password = generated = generate_password()
    else:
        try:
            check_password_rules(password)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.errors.items()})
    if errors:
        raise ValidationError(errors)
    password_hash = await hash_password(password)
    now = gcx.now()
    async with gcx.database.write() as conn:
        if await user_rows.get_by_email(conn, email) is not None:
            raise ValidationError({"email": "a user with this email already exists"})
        user_id = await user_rows.insert(
            conn,
            {
                "email": email,
                "name": name.strip(),
                "role": str(role),
                "is_active": True,
                "password_hash": password_hash,
                "created_at": now,
            },
        )
        await bookkeeping.add_audit(
            conn,
            [_audit(actor, "user.create", user_id, {}, {"email": email, "role": str(role)}, now)],
        )
        user = await user_rows.get(conn, user_id)
    assert user is not None
    await gcx.fire([(UserChanged(user_id, "created", now), None)])
    return user, generated


async def authenticate(
    gcx: Gcx, email: str, password: str, *, client_address: str | None = None
) -> User:
    """Return the user, or raise AuthenticationError without saying which part was wrong."""
    email = normalise_email(email or "")
    now = gcx.now()
    async with gcx.database.read() as conn:
        user = await user_rows.get_by_email(conn, email)
    if user is None or user.password_hash is None:
        await verify_password(_DUMMY_HASH, password or "")
        raise AuthenticationError()
    if user.locked_until is not None and user.locked_until > now:
        raise AuthenticationError()
    ok = await verify_password(user.password_hash, password or "")
    actor = Actor(
        kind=Actor.for_user(user).kind,
        user_id=user.id,
        role=user.role,
        label=user.email,
        client_address=client_address,
    )
    async with gcx.database.write() as conn:
        if not ok or not user.is_active:
            failed = (
                await conn.execute(sa.select(users.c.failed_logins).where(users.c.id == user.id))
            ).scalar_one() + 1
            values: dict[str, object] = {"failed_logins": failed}
            if failed >= MAX_FAILED_LOGINS:
                values = {"failed_logins": 0, "locked_until": now + LOCKOUT}
                await bookkeeping.add_audit(
                    conn,
                    [
                        _audit(
                            actor, "user.locked", user.id, {}, {"locked_until": now + LOCKOUT}, now
                        )
                    ],
                )
            await conn.execute(users.update().where(users.c.id == user.id).values(values))
        else:
            await conn.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(failed_logins=0, locked_until=None)
            )
            await bookkeeping.add_audit(conn, [_audit(actor, "user.login", user.id, {}, {}, now)])
    if not ok or not user.is_active:
        raise AuthenticationError()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derive_token(secret_key: str, purpose: str, selector: str) -> str:
    mac = hmac.new(secret_key.encode(), f"{purpose}:{selector}".encode(), hashlib.sha256).digest()
    return f"{selector}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def activation_link(gcx: Gcx, selector: str) -> str:
    token = derive_token(gcx.settings.secret_key, ACTIVATION, selector)
    return f"{gcx.settings.base_url}/activate/{token}"


async def issue_token(
    gcx: Gcx, conn: Connection, user_id: int, purpose: str, ttl: timedelta
) -> str:
    """Store a new token for `purpose` (older unused ones stop working); returns its selector."""
    now = gcx.now()
    await conn.execute(
        user_tokens.update()
        .where(
            user_tokens.c.user_id == user_id,
            user_tokens.c.purpose == purpose,
            user_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    selector = secrets.token_urlsafe(16)
    token = derive_token(gcx.settings.secret_key, purpose, selector)
    await user_rows.insert_token(
        conn,
        {
            "user_id": user_id,
            "purpose": purpose,
            "token_hash": _token_hash(token),
            "created_at": now,
            "expires_at": now + ttl,
        },
    )
    return selector


async def open_supplier_account(
    gcx: Gcx, conn: Connection, app: Application, actor: Actor, at: object
) -> str:
    """Create (or reuse) the applicant's supplier user, inactive, and an activation token."""
    existing = await user_rows.get_by_email(conn, app.contact.email)
    if existing is not None and existing.role is not Role.SUPPLIER:
        raise ValidationError({"contact.email": "belongs to a staff account; change it first"})
    if existing is None:
        user_id = await user_rows.insert(
            conn,
            {
                "email": app.contact.email,
                "name": app.business.name,
                "role": str(Role.SUPPLIER),
                "is_active": False,
                "created_at": at,
                "application_id": app.id,
            },
        )
        await bookkeeping.add_audit(
            conn,
            [
                _audit(
                    actor,
                    "user.create_supplier",
                    user_id,
                    {},
                    {"email": app.contact.email, "application_id": app.id},
                    at,
                )
            ],
        )
    else:
        user_id = existing.id
        await conn.execute(
            users.update().where(users.c.id == user_id).values(application_id=app.id)
        )
    return await issue_token(
        gcx, conn, user_id, ACTIVATION, timedelta(hours=gcx.settings.activation_ttl_hours)
    )


def _usable(row: Any, purpose: str, now: datetime) -> bool:
    return (
        row is not None
        and row.purpose == purpose
        and row.used_at is None
        and row.expires_at is not None
        and row.expires_at > now
    )


async def check_token(gcx: Gcx, token: str, purpose: str) -> None:
    """Raise TokenError unless `token` is an unused, unexpired link for `purpose`; reads only."""
    async with gcx.database.read() as conn:
        row = (
            await conn.execute(
                sa.select(user_tokens).where(user_tokens.c.token_hash == _token_hash(token or ""))
            )
        ).first()
    if not _usable(row, purpose, gcx.now()):
        raise TokenError("this link is invalid, already used or expired")


async def use_token(
    gcx: Gcx, token: str, purpose: str, password: str, *, client_address: str | None = None
) -> User:
    """Set a password with a single-use token (activation or reset) and activate the account."""
    check_password_rules(password)
    password_hash = await hash_password(password)
    now = gcx.now()
    async with gcx.database.write() as conn:
        row = (
            await conn.execute(
                sa.select(user_tokens).where(user_tokens.c.token_hash == _token_hash(token or ""))
            )
        ).first()
        if not _usable(row, purpose, now):
            raise TokenError("this link is invalid, already used or expired")
        await conn.execute(
            user_tokens.update().where(user_tokens.c.id == row.id).values(used_at=now)
        )
        await conn.execute(
            users.update()
            .where(users.c.id == row.user_id)
            .values(password_hash=password_hash, is_active=True, failed_logins=0, locked_until=None)
        )
        user = await user_rows.get(conn, row.user_id)
        if user is None:
            raise NotFoundError("user", row.user_id)
        actor = Actor(Actor.for_user(user).kind, user.id, user.role, user.email, client_address)
        await bookkeeping.add_audit(
            conn, [_audit(actor, f"user.{purpose}", user.id, {}, {"is_active": True}, now)]
        )
    await gcx.fire([(UserChanged(user.id, purpose, now), None)])
    return user


async def activate_account(
    gcx: Gcx, token: str, password: str, *, client_address: str | None = None
) -> User:
    return await use_token(gcx, token, ACTIVATION, password, client_address=client_address)


RESET_TTL = timedelta(hours=1)


def reset_link(gcx: Gcx, selector: str) -> str:
    return f"{gcx.settings.base_url}/reset/{derive_token(gcx.settings.secret_key, RESET, selector)}"


async def request_password_reset(
    gcx: Gcx, email: str, *, client_address: str | None = None
) -> None:
    """Email a single-use reset link to an active account with this email, or to a supplier
    account never activated (its activation link may have expired: the reset activates it);
    say nothing either way, so the answer never tells whether an account exists."""
    from gcx_core.events import NotificationsQueued
    from gcx_core.storage.tables import notifications

    email = normalise_email(email or "")
    now = gcx.now()
    async with gcx.database.write() as conn:
        user = await user_rows.get_by_email(conn, email)
        if user is None:
            return
        never_activated = user.role is Role.SUPPLIER and user.password_hash is None
        if not never_activated and (not user.is_active or user.password_hash is None):
            return
        selector = await issue_token(gcx, conn, user.id, RESET, RESET_TTL)
        result = await conn.execute(
            notifications.insert().returning(notifications.c.id),
            {
                "type": "password_reset",
                "channel": "email",
                "recipient": user.email,
                "template": "password_reset",
                # The selector only: the link is derived when the message is rendered.
                "context": {"reset_selector": selector, "name": user.name or user.email},
                "dedupe_key": f"reset:{user.id}:{selector}",
                "status": "pending",
                "attempts": 0,
                "max_attempts": gcx.settings.notification_max_attempts,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        notification_id = int(result.scalar_one())
        await bookkeeping.bump_counters(conn, {bookkeeping.NOTIFICATION_PREFIX + "pending": 1})
        actor = Actor(Actor.for_user(user).kind, user.id, user.role, user.email, client_address)
        await bookkeeping.add_audit(
            conn, [_audit(actor, "user.reset_requested", user.id, {}, {}, now)]
        )
    await gcx.fire([(NotificationsQueued((notification_id,), now), None)])


async def reset_password(
    gcx: Gcx, token: str, password: str, *, client_address: str | None = None
) -> User:
    return await use_token(gcx, token, RESET, password, client_address=client_address)
