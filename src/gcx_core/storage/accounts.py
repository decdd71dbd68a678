"""Users and their single-use tokens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx_core.entities import Application, Role, User
from gcx_core.storage import rows
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import staff_interests, user_tokens, users
from gcx_core.validation import email_domain, normalise_tin


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


async def conflicted_staff(conn: Connection, app: Application) -> frozenset[int]:
    """The staff who declared this applicant's email domain or TIN a conflict of interest."""
    domain, tin = email_domain(app.contact.email), normalise_tin(app.business.tin)
    found = await conn.execute(
        sa.select(staff_interests.c.user_id).where(
            sa.or_(
                sa.and_(staff_interests.c.kind == "domain", staff_interests.c.value == domain),
                sa.and_(staff_interests.c.kind == "tin", staff_interests.c.value == tin),
            )
        )
    )
    return frozenset(found.scalars())
