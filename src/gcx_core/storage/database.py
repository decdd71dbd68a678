"""Engines and transactions: SQLite (WAL, busy timeout, immediate writes) or PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gcx_core.exceptions import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")


class Database:
    """One engine and the two kinds of transaction GCX uses: read and write.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so it takes the write lock before
    reading what it will change, and writers of this process queue on an asyncio lock rather
    than in SQLite's busy handler. Writers of other processes wait through busy_timeout, in
    aiosqlite's thread, never on the event loop.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 8, echo: bool = False) -> Database:
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
        elif parsed.get_backend_name() == "postgresql":
            if parsed.get_driver_name() != "asyncpg":
                raise ConfigurationError("use the postgresql+asyncpg:// driver for PostgreSQL")
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        else:
            raise ConfigurationError(f"unsupported database {parsed.get_backend_name()!r}")
        engine = create_async_engine(parsed, **kwargs)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        return cls(engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        if self._write_lock is None:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            conn = await conn.execution_options(gcx_write=True)
            async with conn.begin():
                yield conn

    async def snapshot(self, work: Callable[[sa.Connection], T]) -> T:
        """`work(connection)` in one read transaction; for long reads such as recounts.

        Both drivers wait for the database without blocking the event loop, so the loop
        stays free while `work`'s statements run.
        """
        async with self.read() as conn:
            return await conn.run_sync(work)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder; a fresh data directory needs both."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
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
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("gcx_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
