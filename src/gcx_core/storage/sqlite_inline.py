"""SQLite for SQLAlchemy's asyncio engine, run inline on the event loop instead of in a thread.

aiosqlite sends every call (cursor, execute, fetch, commit) to a worker thread and back; here
each hop cost about 100 us, several per statement, so a lookup by tracking code cost 2 ms. An
indexed SQLite statement takes tens of microseconds, less than the hop, so it is cheaper to run
it where we are. This module offers the small part of aiosqlite's interface that SQLAlchemy's
aiosqlite dialect uses, backed by the standard sqlite3 module, with no threads.

What makes that safe: the embedded mode is one process; its writers queue on an asyncio lock
(Database.write) and readers never block in WAL mode. Waiting for another process's write lock
would stall the loop, so busy_timeout stays short and BEGIN IMMEDIATE is retried with an
asyncio sleep between attempts instead (see database._configure_sqlite).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

# The writer's own automatic checkpoint, in WAL pages, kept as a backstop for a checkpointer
# that cannot keep up (SQLite's default is 1,000 pages).
BACKSTOP_CHECKPOINT_PAGES = 20_000


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set isolation_level."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def creator(path: str) -> Callable[[], Any]:
    """An `async_creator` for create_async_engine that opens `path` with the inline adapter."""

    async def connect() -> InlineConnection:
        # The pool may finalise a connection from the garbage collector in another thread.
        return InlineConnection(sqlite3.connect(path, check_same_thread=False))

    return connect


class Checkpointer:
    """Copies the WAL of an inline SQLite database back into the database file, in a thread.

    SQLite checkpoints inside the commit that takes the WAL past `wal_autocheckpoint` pages:
    that commit copies the pages into the database file and fsyncs both files before it
    returns. Inline, the committing thread is the event loop, so each checkpoint held every
    request in the process, for 5 ms to over 100 ms per fdatasync on a shared VM, several
    times a second under a burst of submissions. Here a thread of its own runs a PASSIVE
    checkpoint every `interval` seconds instead (passive checkpoints never wait for readers or
    writers, and sqlite3 lets go of the GIL while they copy and sync); the writers keep an
    automatic checkpoint only as a backstop, at BACKSTOP_CHECKPOINT_PAGES.
    """

    def __init__(self, path: str, interval: float = 0.2) -> None:
        self.path = path
        self.interval = interval
        # The last pass: frames in the WAL and how many of them are in the database file.
        self.last = (0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"gcx-sqlite-checkpoint:{path}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if conn is None:
                        # Not before the database exists: opening must not create the file.
                        conn = sqlite3.connect(
                            f"file:{self.path}?mode=rw", uri=True, isolation_level=None
                        )
                        conn.execute("PRAGMA synchronous=NORMAL")
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last = (frames, copied)
                except sqlite3.Error as exc:
                    if conn is not None:  # a missing file is expected until migrations ran
                        log.warning("checkpoint of %s failed: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()
