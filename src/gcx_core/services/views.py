"""Saved views: the applications list's filters kept under a name, a user's own or shared
with every member of staff by an admin."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gcx_core.entities import Actor
from gcx_core.exceptions import NotFoundError, PermissionDeniedError, ValidationError
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import saved_views
from gcx_core.system import Gcx

# The list's filter parameters a view may keep (a page number is not a view).
KEYS = frozenset(
    {"q", "status", "region", "commodity", "from", "to", "reviewer", "queue", "sort", "per_page"}
)
MAX_VIEWS = 50


@attrs.frozen
class SavedView:
    id: int
    owner_id: int
    name: str
    query: str
    shared: bool
    created_at: datetime


def clean_query(query: str) -> str:
    """The filter parameters of a list query string, in a stable form; ValidationError for
    parameters the list does not have."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=False)
    unknown = sorted({k for k, _ in pairs} - KEYS - {"page"})
    if unknown:
        raise ValidationError({"query": f"not filters of the list: {', '.join(unknown)}"})
    cleaned = urlencode([(k, v) for k, v in pairs if k in KEYS])
    if len(cleaned) > 2000:
        raise ValidationError({"query": "is too long to keep"})
    return cleaned


async def views_for(gcx: Gcx, user_id: int) -> list[SavedView]:
    """The user's own views and every shared one, by name."""
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(saved_views)
            .where(sa.or_(saved_views.c.owner_id == user_id, saved_views.c.shared))
            .order_by(saved_views.c.shared, saved_views.c.name, saved_views.c.id)
        )
        return [SavedView(**r._mapping) for r in rows]


async def save_view(
    gcx: Gcx, actor: Actor, name: str, query: str, *, shared: bool = False
) -> SavedView:
    if not actor.can("view") or actor.user_id is None:
        raise PermissionDeniedError("saved views are for staff")
    if shared and not actor.can("admin"):
        raise PermissionDeniedError("only admins share views with everyone")
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise ValidationError({"name": "must be 1 to 100 characters"})
    cleaned = clean_query(query)
    now = gcx.now()
    try:
        async with gcx.database.write() as conn:
            count = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(saved_views)
                    .where(saved_views.c.owner_id == actor.user_id)
                )
            ).scalar_one()
            if count >= MAX_VIEWS:
                raise ValidationError({"name": f"you keep {MAX_VIEWS} views already"})
            result = await conn.execute(
                saved_views.insert().values(
                    owner_id=actor.user_id,
                    name=name,
                    query=cleaned,
                    shared=shared,
                    created_at=now,
                )
            )
            view_id = int(result.inserted_primary_key[0])
            await bookkeeping.add_audit(
                conn,
                [
                    bookkeeping.audit_row(
                        actor,
                        "view.save",
                        "saved_view",
                        view_id,
                        at=now,
                        after={"name": name, "query": cleaned, "shared": shared},
                    )
                ],
            )
    except IntegrityError:
        raise ValidationError({"name": "you have a view with this name already"}) from None
    return SavedView(view_id, actor.user_id, name, cleaned, shared, now)


async def delete_view(gcx: Gcx, actor: Actor, view_id: int) -> None:
    """Delete one's own view; admins delete shared ones too."""
    now = gcx.now()
    async with gcx.database.write() as conn:
        row = (
            await conn.execute(sa.select(saved_views).where(saved_views.c.id == view_id))
        ).first()
        if row is None or (row.owner_id != actor.user_id and not row.shared):
            raise NotFoundError("saved view", view_id)
        if row.owner_id != actor.user_id and not actor.can("admin"):
            raise PermissionDeniedError("only admins delete a view someone else shared")
        await conn.execute(saved_views.delete().where(saved_views.c.id == view_id))
        await bookkeeping.add_audit(
            conn,
            [
                bookkeeping.audit_row(
                    actor,
                    "view.delete",
                    "saved_view",
                    view_id,
                    at=now,
                    before={"name": row.name, "query": row.query, "shared": row.shared},
                )
            ],
        )
