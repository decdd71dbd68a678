"""Two small helpers over SQLAlchemy Core that the repositories share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx_core.storage.database import Connection


async def dicts(conn: Connection, stmt: sa.Executable, **params: Any) -> list[dict[str, Any]]:
    """Run a SELECT; its rows as plain dicts."""
    return [row._asdict() for row in await conn.execute(stmt, params)]


async def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany; nothing for no rows."""
    if rows:
        await conn.execute(table.insert(), rows)
