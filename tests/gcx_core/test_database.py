"""The SQLite layer's own behaviour: commits on the event loop never checkpoint the log (a
thread of the Database does), and background batches commit off it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
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


@pytest.fixture(name="notes_db")
async def _notes_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda c: TABLE.create(c))
        yield db
    finally:
        await db.dispose()


@pytest.fixture(name="stalled_commits")
def _stalled_commits() -> Iterator[list[int]]:
    """Every commit takes 0.2 s, as when the file system stalls a write; yields the threads
    the commits ran on."""
    threads: list[int] = []

    def stall(conn: Any) -> None:
        threads.append(threading.get_ident())
        time.sleep(0.2)

    sa.event.listen(sa.engine.Engine, "commit", stall)
    yield threads
    sa.event.remove(sa.engine.Engine, "commit", stall)


async def insert_batch(conn: Any) -> str:
    await conn.execute(TABLE.insert(), [{"body": "batch"}])
    return "done"


async def test_a_batch_commits_off_the_loop_and_writers_wait_for_it(
    notes_db: Database, stalled_commits: list[int]
):
    """`Database.batch` runs its statements on the loop but its commit in a worker thread:
    a stalled commit holds the other writers (they wait on the lock) but not the loop."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(tick())
    running = asyncio.create_task(notes_db.batch(insert_batch))
    await asyncio.sleep(0.05)  # it is committing
    async with notes_db.write() as conn:  # waits for the batch to commit, then sees its row
        seen = (await conn.execute(sa.select(TABLE.c.body))).scalars().all()
    assert seen == ["batch"]
    assert await running == "done"
    ticking.cancel()
    assert ticks >= 10, "the loop turned while the commit ran"
    assert stalled_commits[0] != threading.get_ident()  # the batch's: in a worker thread
    assert stalled_commits[1] == threading.get_ident()  # a request's: on the loop, as ever


async def test_a_batch_that_fails_writes_nothing(notes_db: Database):
    async def batch(conn: Any) -> None:
        await conn.execute(TABLE.insert(), [{"body": "lost"}])
        raise LookupError("refused")

    with pytest.raises(LookupError, match="refused"):
        await notes_db.batch(batch)

    async def count(conn: Any) -> int:
        return (await conn.execute(sa.select(sa.func.count()).select_from(TABLE))).scalar()

    assert await notes_db.batch(count) == 0


async def test_a_cancelled_caller_keeps_the_lock_until_the_batch_has_committed(
    notes_db: Database, stalled_commits: list[int]
):
    running = asyncio.create_task(notes_db.batch(insert_batch))
    await asyncio.sleep(0.05)  # it is committing
    running.cancel()
    async with notes_db.write() as conn:  # taken only once the commit has ended
        found = (await conn.execute(sa.select(TABLE.c.body))).scalars().all()
    assert running.cancelled()
    assert found == ["batch"]  # it had begun: it ran to its end
