"""Two small helpers over SQLAlchemy Core that the repositories share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def dicts(conn: AsyncConnection, stmt: sa.Executable, **params: Any) -> list[dict[str, Any]]:
    """Run a SELECT; its rows as plain dicts."""
    return [dict(row) for row in (await conn.execute(stmt, params)).mappings()]


async def insert_many(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany; nothing for no rows."""
    if rows:
        await conn.execute(table.insert(), rows)
