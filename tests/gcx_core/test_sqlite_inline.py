"""The inline SQLite adapter's commits: small ones on the loop, large ones in a thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gcx_core.storage import sqlite_inline
from gcx_core.storage.sqlite_inline import THREADED_COMMIT_ROWS, InlineConnection


@pytest.fixture(name="conn")
async def _conn(tmp_path: Path):
    raw = sqlite3.connect(tmp_path / "t.db", check_same_thread=False, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE t (x INTEGER)")
    conn = InlineConnection(raw)
    yield conn, tmp_path / "t.db"
    await conn.close()


def rows_seen_by_another_connection(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT count(*) FROM t").fetchone()[0])


class CommitThreads:
    """Records the thread each commit of the wrapped sqlite3 connection ran on."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.threads: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

    def commit(self) -> None:
        self.threads.append(threading.get_ident())
        self.raw.commit()


async def write(conn: InlineConnection, rows: int) -> None:
    await conn.execute("BEGIN")
    cursor = conn.cursor()
    await cursor.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
    await conn.commit()


async def test_small_commits_stay_on_the_loop_and_large_ones_go_to_a_thread(conn) -> None:
    inline, path = conn
    spy = CommitThreads(inline._conn)
    inline._conn = spy  # type: ignore[assignment]
    await write(inline, 3)
    await write(inline, THREADED_COMMIT_ROWS)
    await write(inline, 3)
    loop_thread = threading.get_ident()
    assert spy.threads[0] == loop_thread
    assert spy.threads[1] != loop_thread
    assert spy.threads[2] == loop_thread  # counted from the last commit, not in total
    assert rows_seen_by_another_connection(path) == THREADED_COMMIT_ROWS + 6


async def test_a_cancelled_threaded_commit_finishes_before_the_connection_is_used(
    conn, monkeypatch
) -> None:
    inline, path = conn
    started, release = threading.Event(), threading.Event()
    raw = inline._conn

    class SlowCommit(CommitThreads):
        def commit(self) -> None:
            started.set()
            release.wait(5)
            self.raw.commit()

    inline._conn = SlowCommit(raw)  # type: ignore[assignment]
    monkeypatch.setattr(sqlite_inline, "THREADED_COMMIT_ROWS", 10)
    task = asyncio.create_task(write(inline, 50))
    while not started.is_set():
        await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the commit in its thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rows_seen_by_another_connection(path) == 50
    inline._conn = raw
    await write(inline, 5)  # the connection is fine afterwards
    assert rows_seen_by_another_connection(path) == 55
