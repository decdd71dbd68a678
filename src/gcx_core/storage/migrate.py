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
