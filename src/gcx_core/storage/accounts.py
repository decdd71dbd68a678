"""Users and their single-use tokens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx_core.entities import Role, User
from gcx_core.storage import rows
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import user_tokens, users


def to_user(row: Any) -> User:
    data = dict(row) if isinstance(row, dict) else dict(row._mapping)
    data["role"] = Role(data["role"])
    return User(**data)


async def get(conn: Connection, user_id: int) -> User | None:
    row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
    return to_user(row) if row else None


async def get_by_email(conn: Connection, email: str) -> User | None:
    row = (await conn.execute(sa.select(users).where(users.c.email == email))).first()
    return to_user(row) if row else None


_ACTIVE_STAFF = (
    sa.select(users)
    .where(users.c.is_active.is_(True), users.c.role != "supplier")
    .order_by(users.c.id)
)


async def active_staff(conn: Connection) -> list[User]:
    return [to_user(r) for r in await rows.dicts(conn, _ACTIVE_STAFF)]


async def insert(conn: Connection, values: dict[str, Any]) -> int:
    result = await conn.execute(users.insert().returning(users.c.id), values)
    return int(result.scalar_one())


async def insert_token(conn: Connection, values: dict[str, Any]) -> int:
    result = await conn.execute(user_tokens.insert().returning(user_tokens.c.id), values)
    return int(result.scalar_one())
