"""The Alembic migrations build exactly the tables the code declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gcx_core.plugins import make_plugin_manager
from gcx_core.storage.tables import metadata
from gcx_core.system import Gcx


async def test_migrated_schema_matches_the_tables(gcx: Gcx) -> None:
    # The test database has every installed plugin's migrations (gcx_notify's, and any plugin
    # distribution in the environment): their tables join the MetaData as a process's would.
    make_plugin_manager().hook.gcx_register_tables(metadata=metadata)

    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    async with gcx.database.read() as conn:
        differences = await conn.run_sync(compare)
    assert differences == []
