"""The Alembic migrations build exactly the tables the code declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gcx_notify.storage  # noqa: F401 - its table joins the shared MetaData
from gcx_core.storage.tables import metadata
from gcx_core.system import Gcx


async def test_migrated_schema_matches_the_tables(gcx: Gcx) -> None:
    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    async with gcx.database.read() as conn:
        differences = await conn.run_sync(compare)
    assert differences == []
