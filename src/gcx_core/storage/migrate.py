"""Alembic, configured in code: `gcx migrate` and `gcx serve` call `upgrade`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config

from gcx_core.storage.database import ensure_sqlite_directory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, extra_locations: Iterable[str] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions"), *extra_locations]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["database_url"] = database_url
    return config


def upgrade_sync(
    database_url: str, extra_locations: Iterable[str] = (), revision: str = "heads"
) -> None:
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url, extra_locations), revision)


async def upgrade(
    database_url: str, extra_locations: Iterable[str] = (), revision: str = "heads"
) -> None:
    """Bring the schema up to date. Alembic's env runs its own event loop, hence the thread."""
    locations = list(extra_locations)
    await anyio.to_thread.run_sync(upgrade_sync, database_url, locations, revision)


async def pending_migrations(database_url: str, extra_locations: Iterable[str] = ()) -> list[str]:
    """The heads the migration scripts have that the database has not reached ([] when it is
    up to date)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from gcx_core.storage.database import Database

    script = ScriptDirectory.from_config(alembic_config(database_url, list(extra_locations)))
    heads = set(script.get_heads())
    db = Database.from_url(database_url)
    try:
        async with db.read() as conn:
            current = await conn.run_sync(
                lambda sync: set(MigrationContext.configure(sync).get_current_heads())
            )
    finally:
        await db.dispose()
    # A head the database is at, or has gone past, is reached.
    reached = set()
    for head in heads:
        if head in current or any(
            head in {r.revision for r in script.iterate_revisions(c, "base")} for c in current
        ):
            reached.add(head)
    return sorted(heads - reached)
