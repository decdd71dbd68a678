"""Rows of applications, their commodities and status changes, mapped to entities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from gcx_core.entities import Application, ApplicationDraft, StatusChange
from gcx_core.storage.database import Connection
from gcx_core.storage.rows import dicts
from gcx_core.storage.tables import application_commodities, applications, status_changes
from gcx_core.tracking import normalise_tracking_code
from gcx_core.validation import normalise_email, normalise_tin

_DETAIL_FIELDS = (
    "business",
    "contact",
    "commodities",
    "warehouse_location",
    "team_members",
    "next_of_kin",
    "primary_account",
    "secondary_account",
    "declaration",
)


def details_of(obj: Application | ApplicationDraft) -> dict[str, Any]:
    return {name: msgspec.to_builtins(getattr(obj, name)) for name in _DETAIL_FIELDS}


def row_values(app: Application, *, active: bool) -> dict[str, Any]:
    """Column values for an application; `active` fills the duplicate-guard columns."""
    return {
        "tracking_code": app.tracking_code,
        "created_at": app.created_at,
        "details": details_of(app),
        **_columns(app, active=active),
    }


# The `details` column holds a draft's fields: JSON text goes straight into the entities in
# one pass (no dicts in between).
_DETAILS = msgspec.json.Decoder(ApplicationDraft, strict=False)


def to_application(row: sa.Row[Any] | Mapping[str, Any]) -> Application:
    """The entity of a row; `details` may be decoded already (a dict) or JSON text."""
    m = row._mapping if isinstance(row, sa.Row) else row
    raw = m["details"]
    d = (
        _DETAILS.decode(raw)
        if isinstance(raw, str | bytes)
        else msgspec.convert(raw, ApplicationDraft, strict=False)
    )
    return Application(
        id=m["id"],
        tracking_code=m["tracking_code"],
        status=m["status"],
        version=m["version"],
        business=d.business,
        contact=d.contact,
        commodities=d.commodities,
        warehouse_location=d.warehouse_location,
        team_members=d.team_members,
        next_of_kin=d.next_of_kin,
        primary_account=d.primary_account,
        declaration=d.declaration,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        status_changed_at=m["status_changed_at"],
        secondary_account=d.secondary_account,
        assigned_reviewer_id=m["assigned_reviewer_id"],
    )


async def insert(conn: Connection, app: Application) -> int:
    result = await conn.execute(
        applications.insert().returning(applications.c.id), row_values(app, active=True)
    )
    app_id = int(result.scalar_one())
    await conn.execute(
        application_commodities.insert(),
        [{"application_id": app_id, "commodity": c} for c in app.commodities],
    )
    return app_id


async def update(
    conn: Connection,
    app: Application,
    *,
    before: Application,
    active: bool,
    was_active: bool,
) -> bool:
    """Write the columns of `app` that differ from `before` (its row at `before.version`), if
    nobody else wrote the application since; `active` and `was_active` fill the
    duplicate-guard columns after and before.

    Only what changed is named: SQLite and PostgreSQL rewrite an index only when the
    statement sets one of its columns, and a transition changes few.
    """
    new = _columns(app, active=active)
    old = _columns(before, active=was_active)
    values = {name: value for name, value in new.items() if value != old[name]}
    if any(getattr(app, name) != getattr(before, name) for name in _DETAIL_FIELDS):
        values["details"] = details_of(app)
    names = tuple(values)
    statement = _UPDATES.get(names)
    if statement is None:
        statement = _UPDATES[names] = _update_of(names)
    values["b_id"], values["b_version"] = app.id, before.version
    result = await conn.execute(statement, values)
    return result.rowcount == 1


def _columns(app: Application, *, active: bool) -> dict[str, Any]:
    """The columns an update may change, but `details`."""
    return {
        "status": app.status,
        "version": app.version,
        "business_name": app.business.name,
        "search_name": app.business.name.casefold(),
        "business_type": app.business.business_type,
        "registration_number": app.business.registration_number,
        "tin": app.business.tin,
        "email": app.contact.email,
        "telephone": app.contact.telephone,
        "region": app.business.region,
        "active_email": app.contact.email if active else None,
        "active_tin": app.business.tin if active else None,
        "assigned_reviewer_id": app.assigned_reviewer_id,
        "updated_at": app.updated_at,
        "status_changed_at": app.status_changed_at,
    }


def _update_of(names: tuple[str, ...]) -> sa.Update:
    return (
        applications.update()
        .where(
            applications.c.id == sa.bindparam("b_id"),
            applications.c.version == sa.bindparam("b_version"),
        )
        .values(
            {
                **{name: sa.bindparam(name, type_=applications.c[name].type) for name in names},
                "revision": applications.c.revision + 1,
            }
        )
    )


# Update statements by the columns they set, built once each: SQLAlchemy then compiles each
# once. A workflow's transitions change a handful of different sets.
_UPDATES: dict[tuple[str, ...], sa.Update] = {}


async def get(conn: Connection, app_id: int, *, for_update: bool = False) -> Application | None:
    query = sa.select(applications).where(applications.c.id == app_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return to_application(row) if row else None


# An application's row as `to_application` reads it fastest: its entity's columns only, and
# `details` as JSON text where the driver hands over text (SQLite).
# (The other columns repeat parts of `details` for searching and for the duplicate guard.)
_ENTITY_ROW = sa.select(
    *(
        applications.c[name]
        for name in (
            "id",
            "tracking_code",
            "status",
            "version",
            "revision",
            "assigned_reviewer_id",
            "created_at",
            "updated_at",
            "status_changed_at",
        )
    ),
    sa.type_coerce(applications.c.details, sa.Text).label("details"),
)
_BY_CODE = _ENTITY_ROW.where(applications.c.tracking_code == sa.bindparam("code"))


async def get_by_tracking_code(conn: Connection, code: str) -> Application | None:
    found = await dicts(conn, _BY_CODE, code=code)
    return to_application(found[0]) if found else None


async def row_by_tracking_code(conn: Connection, code: str) -> sa.Row[Any] | None:
    """The application's row as `to_application` reads it, with its `revision`."""
    row: sa.Row[Any] | None = (await conn.execute(_BY_CODE, {"code": code})).first()
    return row


async def touch(conn: Connection, app_id: int) -> None:
    """Move the application's revision: something of it changed besides its own row."""
    await conn.execute(
        applications.update()
        .where(applications.c.id == app_id)
        .values(revision=applications.c.revision + 1)
    )


async def current_version(conn: Connection, app_id: int) -> int | None:
    return (
        await conn.execute(sa.select(applications.c.version).where(applications.c.id == app_id))
    ).scalar_one_or_none()


async def insert_status_change(conn: Connection, change: dict[str, Any]) -> int:
    result = await conn.execute(status_changes.insert().returning(status_changes.c.id), change)
    return int(result.scalar_one())


_CHANGES_OF = (
    sa.select(status_changes)
    .where(status_changes.c.application_id == sa.bindparam("app_id"))
    .order_by(status_changes.c.at, status_changes.c.id)
)


async def status_changes_of(conn: Connection, app_id: int) -> list[StatusChange]:
    return [StatusChange(**r) for r in await dicts(conn, _CHANGES_OF, app_id=app_id)]


def search_condition(term: str) -> sa.ColumnElement[bool]:
    """Name (substring), tracking code, email or TIN: whichever the term can be."""
    term = term.strip()
    options: list[sa.ColumnElement[bool]] = []
    code = normalise_tracking_code(term)
    if code:
        options.append(applications.c.tracking_code == code)
    if "@" in term:
        options.append(applications.c.email == normalise_email(term))
    options.append(applications.c.tin == normalise_tin(term))
    escaped = term.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    options.append(applications.c.search_name.like(f"%{escaped}%", escape="\\"))
    return sa.or_(*options)


def commodity_condition(codes: Iterable[str]) -> sa.ColumnElement[bool]:
    return applications.c.id.in_(
        sa.select(application_commodities.c.application_id).where(
            application_commodities.c.commodity.in_(list(codes))
        )
    )


def page(rows: Sequence[Any]) -> list[Application]:
    return [to_application(r) for r in rows]
