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


async def test_a_batch_apart_runs_beside_the_loop_and_writers_wait_for_it(tmp_path: Path):
    """`Database.apart` runs a background batch's transaction in a thread of its own: the
    event loop keeps turning while it runs, and the loop's writers queue behind it."""
    import threading
    import time

    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda c: TABLE.create(c))
        loop_thread = threading.get_ident()
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def batch(conn) -> int:
            loop.call_soon_threadsafe(started.set)
            await conn.execute(TABLE.insert(), [{"body": "batch"}])
            await conn.run_sync(lambda _: time.sleep(0.3))  # a long statement, or a stall
            return threading.get_ident()

        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(tick())
        running = asyncio.create_task(db.apart(batch))
        await started.wait()
        async with db.write() as conn:  # waits for the batch to commit, then sees its row
            seen = (await conn.execute(sa.select(TABLE.c.body))).scalars().all()
            await conn.execute(TABLE.insert(), [{"body": "loop"}])
        assert seen == ["batch"]
        assert await running != loop_thread
        ticking.cancel()
        assert ticks >= 10, "the loop turned while the batch ran"
    finally:
        await db.dispose()


async def test_a_batch_apart_that_fails_writes_nothing(tmp_path: Path):
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda c: TABLE.create(c))

        async def batch(conn) -> None:
            await conn.execute(TABLE.insert(), [{"body": "lost"}])
            raise LookupError("refused")

        try:
            await db.apart(batch)
        except LookupError as exc:
            assert str(exc) == "refused"
        else:
            raise AssertionError("the batch's error reaches the caller")

        async def count(conn) -> int:
            return (await conn.execute(sa.select(sa.func.count()).select_from(TABLE))).scalar()

        assert await db.apart(count) == 0  # the thread's connection serves the next batch
    finally:
        await db.dispose()


async def test_a_cancelled_caller_keeps_the_lock_until_the_batch_has_ended(tmp_path: Path):
    import time

    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}")
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda c: TABLE.create(c))
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def batch(conn) -> None:
            loop.call_soon_threadsafe(started.set)
            await conn.execute(TABLE.insert(), [{"body": "batch"}])
            await conn.run_sync(lambda _: time.sleep(0.2))

        running = asyncio.create_task(db.apart(batch))
        await started.wait()
        running.cancel()
        async with db.write() as conn:  # taken only once the batch's transaction has ended
            found = (await conn.execute(sa.select(TABLE.c.body))).scalars().all()
        assert running.cancelled()
        assert found == ["batch"]  # it had begun: it ran to its commit
    finally:
        await db.dispose()
