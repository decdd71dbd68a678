"""Document versions and document requests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx_core.entities import DocumentRequest, DocumentVersion, ReviewStatus
from gcx_core.storage import rows
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import document_requests, documents


def _mapping(row: Any) -> dict[str, Any]:
    return dict(row._mapping) if hasattr(row, "_mapping") else dict(row)


def to_document(row: Any) -> DocumentVersion:
    data = _mapping(row)
    data["review_status"] = ReviewStatus(data["review_status"])
    return DocumentVersion(**data)


def to_request(row: Any) -> DocumentRequest:
    data = _mapping(row)
    data["requirement_codes"] = tuple(data["requirement_codes"])
    return DocumentRequest(**data)


_VERSIONS_OF = (
    sa.select(documents)
    .where(documents.c.application_id == sa.bindparam("app_id"))
    .order_by(documents.c.requirement_code, documents.c.version)
)
_REQUESTS_OF = (
    sa.select(document_requests)
    .where(document_requests.c.application_id == sa.bindparam("app_id"))
    .order_by(document_requests.c.id)
)


async def versions_of(conn: Connection, app_id: int) -> list[DocumentVersion]:
    return [to_document(r) for r in await rows.dicts(conn, _VERSIONS_OF, app_id=app_id)]


def latest_versions(versions: list[DocumentVersion]) -> dict[str, DocumentVersion]:
    latest: dict[str, DocumentVersion] = {}
    for v in versions:
        if v.requirement_code not in latest or v.version > latest[v.requirement_code].version:
            latest[v.requirement_code] = v
    return latest


async def get(conn: Connection, document_id: int) -> DocumentVersion | None:
    row = (await conn.execute(sa.select(documents).where(documents.c.id == document_id))).first()
    return to_document(row) if row else None


async def next_version(conn: Connection, app_id: int, code: str) -> int:
    current = (
        await conn.execute(
            sa.select(sa.func.max(documents.c.version)).where(
                documents.c.application_id == app_id, documents.c.requirement_code == code
            )
        )
    ).scalar_one_or_none()
    return (current or 0) + 1


async def insert(conn: Connection, values: dict[str, Any]) -> int:
    result = await conn.execute(documents.insert().returning(documents.c.id), values)
    return int(result.scalar_one())


async def open_request(conn: Connection, app_id: int) -> DocumentRequest | None:
    row = (
        await conn.execute(
            sa.select(document_requests)
            .where(
                document_requests.c.application_id == app_id,
                document_requests.c.fulfilled_at.is_(None),
            )
            .order_by(document_requests.c.id.desc())
            .limit(1)
        )
    ).first()
    return to_request(row) if row else None


async def requests_of(conn: Connection, app_id: int) -> list[DocumentRequest]:
    return [to_request(r) for r in await rows.dicts(conn, _REQUESTS_OF, app_id=app_id)]
