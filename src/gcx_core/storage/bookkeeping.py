"""Audit entries, counters and notification outbox rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from gcx_core.entities import Actor, AuditEntry, Notification, NotificationStatus
from gcx_core.storage.database import Connection
from gcx_core.storage.rows import insert_many
from gcx_core.storage.tables import audit_log, counters

# Counter names: "status:<status>", "notifications:<status>", "submitted:<YYYY-MM-DD>",
# "assigned:<status>:<reviewer id, or - for nobody>", "overdue:<status>" (deadlines past with
# nothing left to do), "ageing:<status>:<days bucket>" (open applications by time in status).
STATUS_PREFIX = "status:"
NOTIFICATION_PREFIX = "notifications:"
SUBMITTED_PREFIX = "submitted:"
ASSIGNED_PREFIX = "assigned:"
OVERDUE_PREFIX = "overdue:"
AGEING_PREFIX = "ageing:"


def assigned_key(status: str, reviewer_id: int | None) -> str:
    """The counter of applications in `status` held by `reviewer_id` (or by nobody)."""
    return f"{ASSIGNED_PREFIX}{status}:{reviewer_id if reviewer_id is not None else '-'}"


def ageing_key(status: str, bucket: str) -> str:
    return f"{AGEING_PREFIX}{status}:{bucket}"


def audit_row(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    *,
    at: datetime,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit entry: who (and from where), did what, to which object, changing what."""
    return {
        "at": at,
        "actor": actor.label or str(actor.kind),
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "before": dict(before or {}),
        "after": dict(after or {}),
        "client_address": actor.client_address,
    }


async def add_audit(conn: Connection, entries: Iterable[Mapping[str, Any]]) -> None:
    # Dates, enums and the like become JSON-friendly values here, once for every caller.
    rows = [
        {
            **e,
            "before": msgspec.to_builtins(e.get("before", {})),
            "after": msgspec.to_builtins(e.get("after", {})),
        }
        for e in entries
    ]
    await insert_many(conn, audit_log, rows)


def to_audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(**dict(row._mapping))


def _counter_upsert(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(counters).values(name=sa.bindparam("name"), value=sa.bindparam("delta"))
    return stmt.on_conflict_do_update(
        index_elements=[counters.c.name], set_={"value": counters.c.value + stmt.excluded.value}
    )


async def bump_counters(conn: Connection, deltas: Mapping[str, int]) -> None:
    """Add deltas to named counters, creating missing ones, in one upsert for all of them.

    Names are sorted so concurrent PostgreSQL transactions lock rows in the same order.
    """
    rows = [{"name": n, "delta": d} for n, d in sorted(deltas.items()) if d]
    if rows:
        await conn.execute(_counter_upsert(conn.dialect.name), rows)


async def read_counters(conn: Connection, prefix: str = "") -> dict[str, int]:
    query = sa.select(counters.c.name, counters.c.value)
    if prefix:
        query = query.where(counters.c.name.startswith(prefix, autoescape=True))
    return {name: int(value) for name, value in await conn.execute(query)}


async def set_counters(conn: Connection, values: Mapping[str, int], prefix: str) -> None:
    """Replace every counter under `prefix` with `values` (used by reconciliation)."""
    await conn.execute(counters.delete().where(counters.c.name.startswith(prefix, autoescape=True)))
    rows = [{"name": k, "value": v} for k, v in values.items() if v]
    if rows:
        await conn.execute(counters.insert(), rows)


def to_notification(row: Any) -> Notification:
    data = dict(row._mapping)
    data["status"] = NotificationStatus(data["status"])
    return Notification(**data)


def day_key(at: datetime) -> str:
    return SUBMITTED_PREFIX + at.date().isoformat()


async def allocate_ids(conn: Connection, table: sa.Table, count: int) -> list[int]:
    """Reserve `count` primary keys, so a batch can be inserted with one executemany.

    SQLAlchemy can only map RETURNING rows to parameters row by row on SQLite; knowing the ids
    first avoids that. On SQLite this runs inside BEGIN IMMEDIATE, which excludes every other
    writer until commit, so max(id) + 1 onwards is ours; PostgreSQL hands out sequence values.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        seq = sa.func.pg_get_serial_sequence(table.name, "id")
        result = await conn.execute(
            sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, count))
        )
        return [int(i) for i in result.scalars()]
    start = (await conn.execute(sa.select(sa.func.max(table.c.id)))).scalar() or 0
    return list(range(start + 1, start + 1 + count))
