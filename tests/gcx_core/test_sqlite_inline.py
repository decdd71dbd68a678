"""Inline SQLite: the WAL is checkpointed by a thread of its own, never by the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from gcx_core.storage import sqlite_inline
from gcx_core.storage.database import Database

ROWS = sa.Table("rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_wal_is_copied_back_by_the_checkpointer_thread(tmp_path):
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    checkpointer = database._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    try:
        async with database.write() as conn:
            await conn.run_sync(ROWS.metadata.create_all)
            # The writers keep SQLite's own checkpoint only as a distant backstop.
            (pages,) = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).one()
            assert pages == sqlite_inline.BACKSTOP_CHECKPOINT_PAGES
        for start in range(0, 2000, 100):
            async with database.write() as conn:
                await conn.execute(ROWS.insert(), [{"id": i} for i in range(start, start + 100)])
        # Every frame the commits wrote reaches the database file, far below the backstop:
        # the thread's passive checkpoints copied them, not a commit.
        await wait_for(lambda: 0 < checkpointer.last[0] == checkpointer.last[1])
        async with database.read() as conn:
            assert (
                await conn.execute(sa.select(sa.func.count()).select_from(ROWS))
            ).scalar() == 2000
    finally:
        await database.dispose()
    assert not checkpointer._thread.is_alive()
    assert database._checkpointer is None


async def test_the_checkpointer_waits_for_the_database_file(tmp_path):
    path = tmp_path / "later.db"
    checkpointer = sqlite_inline.Checkpointer(str(path), interval=0.01)
    checkpointer.start()
    await asyncio.sleep(0.1)
    assert not path.exists()  # it never creates the file itself
    checkpointer.stop()
    assert not checkpointer._thread.is_alive()


async def test_databases_not_run_inline_have_no_checkpointer(tmp_path):
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}", inline=False)
    try:
        assert database._checkpointer is None
        async with database.write() as conn:
            (pages,) = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).one()
            assert pages == 1000  # SQLite's own checkpoint, in aiosqlite's thread
    finally:
        await database.dispose()


async def test_a_snapshot_reads_off_the_event_loop(tmp_path):
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    try:
        async with database.write() as conn:
            await conn.run_sync(ROWS.metadata.create_all)
            await conn.execute(ROWS.insert(), [{"id": i} for i in range(500)])
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        def slow_count(conn):
            time.sleep(0.3)  # a long recount: the loop must go on meanwhile
            return conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar()

        task = asyncio.create_task(ticker())
        try:
            assert await database.snapshot(slow_count) == 500
        finally:
            task.cancel()
        assert ticks >= 10

        def write(conn):
            conn.execute(ROWS.insert(), [{"id": 1000}])

        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            await database.snapshot(write)  # snapshots only read
    finally:
        await database.dispose()
