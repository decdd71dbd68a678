"""Engines and transactions: SQLite (WAL, busy timeout, immediate writes) or PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from gcx_core.exceptions import ConfigurationError
from gcx_core.storage import sqlite_inline

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Inline connections must not stall the event loop, so SQLite itself waits only briefly; a
# writer waiting for another process's lock retries BEGIN IMMEDIATE with asyncio sleeps.
SQLITE_INLINE_BUSY_MS = 20
SQLITE_LOCK_WAIT_S = 10.0
# How long a commit by another process may go unnoticed by `Database.change_mark`.
OTHER_PROCESS_LAG_S = 0.001

T = TypeVar("T")


class Database:
    """One engine and the two kinds of transaction GCX uses: read and write.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so it takes the write lock before
    reading what it will change, and writers of this process queue on an asyncio lock rather
    than spinning in SQLite's busy handler. Other processes still wait through busy_timeout.
    """

    def __init__(self, engine: AsyncEngine, *, inline_path: str | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._inline_path = inline_path
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: sqlite_inline.Checkpointer | None = None
        # Write transactions of this process, counted as they begin and as they end.
        self.writes = 0
        self.other_process_lag = OTHER_PROCESS_LAG_S
        self._data_version = 0
        self._data_version_at = -1.0e9  # time.monotonic() when it was last asked
        self._snapshots: sa.Engine | None = None  # inline SQLite: `snapshot`'s own connections
        if inline_path is not None:
            self._checkpointer = sqlite_inline.Checkpointer(inline_path)
            self._checkpointer.start()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @classmethod
    def from_url(
        cls, url: str, *, pool_size: int = 8, echo: bool = False, inline: bool = True
    ) -> Database:
        """Open a database. SQLite runs inline on the event loop unless `inline` is False."""
        parsed = make_url(url)
        # msgspec writes and reads the JSON columns several times faster than the json module.
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_dumps,
            "json_deserializer": msgspec.json.decode,
        }
        if parsed.get_backend_name() == "sqlite":
            if parsed.get_driver_name() != "aiosqlite":
                raise ConfigurationError("use the sqlite+aiosqlite:// driver for SQLite")
            ensure_sqlite_directory(url)
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 0
            kwargs["poolclass"] = sa.pool.AsyncAdaptedQueuePool
            if inline and parsed.database not in (None, "", ":memory:"):
                kwargs["async_creator"] = sqlite_inline.creator(parsed.database)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.get_driver_name() != "asyncpg":
                raise ConfigurationError("use the postgresql+asyncpg:// driver for PostgreSQL")
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        else:
            raise ConfigurationError(f"unsupported database {parsed.get_backend_name()!r}")
        engine = create_async_engine(parsed, **kwargs)
        inline_path = None
        if engine.dialect.name == "sqlite":
            on_loop = "async_creator" in kwargs
            _configure_sqlite(
                engine,
                busy_timeout_ms=SQLITE_INLINE_BUSY_MS if inline else SQLITE_BUSY_TIMEOUT_MS,
                # Inline, the Checkpointer's thread checkpoints, not the committing loop.
                autocheckpoint=sqlite_inline.BACKSTOP_CHECKPOINT_PAGES if on_loop else None,
            )
            if on_loop:
                inline_path = parsed.database
        return cls(engine, inline_path=inline_path)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        self.writes += 1
        try:
            if self._write_lock is None:
                async with self.engine.connect() as conn, conn.begin():
                    yield conn
                return
            async with self._write_lock, self.engine.connect() as conn:
                conn = await conn.execution_options(gcx_write=True)
                async with conn.begin():
                    yield conn
        finally:
            self.writes += 1

    def inline_reader(self) -> sqlite3.Connection | None:
        """A read-only sqlite3 handle for single-statement reads on inline SQLite, else None.

        Each statement sees one consistent snapshot (WAL); use `read()` for several statements
        that must agree with each other.
        """
        if self._inline_path is None:
            return None
        if self._reader is None:
            reader = sqlite3.connect(
                self._inline_path, check_same_thread=False, isolation_level=None
            )
            reader.execute(f"PRAGMA busy_timeout={SQLITE_INLINE_BUSY_MS}")
            reader.execute("PRAGMA query_only=ON")
            self._reader = reader
        return self._reader

    def change_mark(self) -> tuple[int, int] | None:
        """On inline SQLite, a value that stays the same only while nothing was committed:
        it changes as soon as a write transaction of this process begins or ends
        (`Database.write`), and within `other_process_lag` seconds (1 ms) of a commit by any
        other process. Elsewhere None: there is no such value.

        The second part is SQLite's `PRAGMA data_version` on the read-only handle (which
        itself never commits), asked at most once per `other_process_lag`: each asking starts
        a read transaction, whose file locks cost more than the rest of a cached lookup.
        """
        reader = self.inline_reader()
        if reader is None:
            return None
        now = time.monotonic()
        if now - self._data_version_at >= self.other_process_lag:
            self._data_version = reader.execute("PRAGMA data_version").fetchone()[0]
            self._data_version_at = now
        return self.writes, self._data_version

    async def snapshot(self, work: Callable[[sa.Connection], T]) -> T:
        """`work(connection)` in one read transaction, its SQL off the event loop.

        For long reads, such as recounts, that on inline SQLite would hold every request and
        socket of the process while they run: there `work` runs in a worker thread on a
        read-only connection of its own. Elsewhere the driver already waits without blocking
        the loop, and `work` runs through `read()`.
        """
        if self._inline_path is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        if self._snapshots is None:
            self._snapshots = sa.create_engine(
                f"sqlite:///{self._inline_path}",
                poolclass=sa.pool.NullPool,
                json_serializer=_json_dumps,
                json_deserializer=msgspec.json.decode,
                connect_args={"isolation_level": None},
            )
        engine = self._snapshots

        def run() -> T:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA query_only=ON")
                conn.exec_driver_sql("BEGIN")  # the driver would not begin for a read
                try:
                    return work(conn)
                finally:
                    conn.exec_driver_sql("COMMIT")

        return await asyncio.to_thread(run)

    async def dispose(self) -> None:
        if self._snapshots is not None:
            self._snapshots.dispose()
            self._snapshots = None
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self.engine.dispose()


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder; a fresh data directory needs both."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(
    engine: AsyncEngine, *, busy_timeout_ms: int, autocheckpoint: int | None = None
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={busy_timeout_ms}",
            "foreign_keys=ON",
            "cache_size=-65536",
            "temp_store=MEMORY",
            *([f"wal_autocheckpoint={autocheckpoint}"] if autocheckpoint else []),
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get("gcx_write"):
            conn.exec_driver_sql("BEGIN")
            return
        deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
        delay = 0.001
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            # Another process holds the write lock: yield to the event loop, then try again.
            await_(asyncio.sleep(delay))
            delay = min(delay * 2, 0.05)
