"""What an approved supplier does for themselves: contact details, password, document renewals.

A supplier account belongs to one application (`users.application_id`); every function here
checks that the application is the signed-in supplier's own.
"""

from __future__ import annotations

from datetime import date

import attrs

from gcx_core.entities import Actor, ActorKind, Application, DocumentVersion, User
from gcx_core.events import UserChanged
from gcx_core.exceptions import (
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.services import accounts
from gcx_core.services import documents as doc_service
from gcx_core.services.applications import resolve
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import applications as app_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage import documents as doc_rows
from gcx_core.storage.tables import users
from gcx_core.system import Gcx


async def own_application(gcx: Gcx, actor: Actor) -> Application:
    """The application of the signed-in supplier; PermissionDeniedError for anyone else."""
    if actor.kind is not ActorKind.SUPPLIER or actor.user_id is None:
        raise PermissionDeniedError("this is for the supplier's own account")
    async with gcx.database.read() as conn:
        user = await user_rows.get(conn, actor.user_id)
        if user is None or user.application_id is None:
            raise NotFoundError("application", "of this account")
        return await resolve(conn, user.application_id)


async def own_document(gcx: Gcx, actor: Actor, document_id: int) -> tuple[DocumentVersion, bytes]:
    """A version of one of the supplier's own documents, with its bytes; another application's
    document is not found (its existence is not told)."""
    app = await own_application(gcx, actor)
    async with gcx.database.read() as conn:
        document = await doc_rows.get(conn, document_id)
    if document is None or document.application_id != app.id:
        raise NotFoundError("document", document_id)
    return document, await gcx.files.get(document.sha256)


async def update_contact(gcx: Gcx, actor: Actor, *, telephone: str) -> Application:
    """Change the supplier's contact telephone (the email is the account's sign-in: staff
    change it)."""
    app = await own_application(gcx, actor)
    normal = gcx.phone_format.normalise(telephone or "")
    if normal is None:
        raise ValidationError(
            {
                "contact.telephone": f"must be a valid {gcx.phone_format.country} number, "
                f"e.g. {gcx.phone_format.example}"
            }
        )
    now = gcx.now()
    async with gcx.database.write() as conn:
        before = await resolve(conn, app.id)
        if before.contact.telephone == normal:
            return before
        after = attrs.evolve(
            before,
            contact=attrs.evolve(before.contact, telephone=normal),
            version=before.version + 1,
            updated_at=now,
        )
        active = gcx.workflow.state(before.status).active
        await app_rows.update(conn, after, before=before, active=active, was_active=active)
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "supplier.contact_update",
                    "application",
                    app.id,
                    at=now,
                    before={"telephone": before.contact.telephone},
                    after={"telephone": normal},
                )
            ],
        )
    return after


async def change_password(
    gcx: Gcx, actor: Actor, current: str, new: str, *, client_address: str | None = None
) -> User:
    """Any signed-in user changes their own password, proving the current one first."""
    if actor.user_id is None:
        raise PermissionDeniedError("sign in first")
    async with gcx.database.read() as conn:
        user = await user_rows.get(conn, actor.user_id)
    if user is None or user.password_hash is None:
        raise NotFoundError("user", actor.user_id)
    if not await accounts.verify_password(user.password_hash, current or ""):
        raise ValidationError({"current_password": "is not your current password"})
    if new == current:
        raise ValidationError({"new_password": "must differ from the current one"})
    try:
        accounts.check_password_rules(new)
    except ValidationError as exc:
        raise ValidationError(
            {"new_password": exc.errors.get("password", ["is too weak"])}
        ) from None
    password_hash = await accounts.hash_password(new)
    now = gcx.now()
    async with gcx.database.write() as conn:
        await conn.execute(
            users.update().where(users.c.id == user.id).values(password_hash=password_hash)
        )
        await bookkeeping.add_audit(
            conn,
            [bookkeeping.audit_row(actor, "user.password_change", "user", user.id, at=now)],
        )
    await gcx.fire([(UserChanged(user.id, "password_change", now), None)])
    return user


async def renew_document(
    gcx: Gcx,
    actor: Actor,
    requirement_code: str,
    content: bytes,
    filename: str,
    *,
    valid_until: date | None = None,
) -> DocumentVersion:
    """A new version of one of the supplier's documents (a certificate renewed, say): staff
    review it like any other. `valid_until` as for `documents.upload_document`."""
    app = await own_application(gcx, actor)
    return await doc_service.upload_document(
        gcx, app.id, requirement_code, content, filename, actor, valid_until=valid_until
    )
