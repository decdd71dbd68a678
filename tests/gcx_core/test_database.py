"""The SQLite layer's own behaviour: commits on the event loop never checkpoint the log; a
thread of the Database does."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from gcx_core.storage.database import Database

TABLE = sa.Table(
    "notes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text),
)


def size_of(path: Path) -> int:
    return path.stat().st_size


async def test_the_log_is_copied_into_the_database_off_the_loop(tmp_path: Path, monkeypatch):
    from gcx_core.storage import database

    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 0.2)
    path = tmp_path / "gcx.db"
    db = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda c: TABLE.create(c))
        # The checkpoint thread waits CHECKPOINT_EVERY as it was when it started; what
        # matters here is what the loop's own commits do.
        async with db.read() as conn:
            found = await conn.execute(sa.text("PRAGMA wal_autocheckpoint"))
            assert found.scalar_one() == 0, "commits on the event loop never checkpoint"
        before = size_of(path)
        for start in range(0, 2000, 500):
            async with db.write() as conn:
                await conn.execute(
                    TABLE.insert(), [{"body": "x" * 1000} for _ in range(start, start + 500)]
                )
        for _ in range(50):  # the thread copies the log within a few seconds
            await asyncio.sleep(0.1)
            if size_of(path) > before + 1_000_000:
                break
        assert size_of(path) > before + 1_000_000
        with sqlite3.connect(path) as check:
            assert check.execute("SELECT count(*) FROM notes").fetchone() == (2000,)
    finally:
        await db.dispose()
    assert db._checkpointer is not None and not db._checkpointer.is_alive()
    assert db._checkpointer.failures == 0
