from __future__ import annotations

import pytest

pytest_plugins = ["gcx_core.testing"]


@pytest.fixture(name="gcx_database_url", params=["sqlite", "postgresql"])
def _every_database(request: pytest.FixtureRequest) -> str:
    """Every test that touches the database runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("gcx_sqlite_database_url")
    return request.getfixturevalue("gcx_postgres_database_url")


@pytest.fixture(name="gcx_parts")
def _no_parts() -> list[object]:
    """GCX's own tests register the parts each needs themselves (gcx_extra_plugins)."""
    return []
