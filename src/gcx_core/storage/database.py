"""Engines and transactions: SQLite (WAL, immediate writes) run inline, or PostgreSQL.

SQLite runs on SQLAlchemy's synchronous engine (the standard sqlite3 driver), called from the
event loop: an indexed SQLite statement takes microseconds, less than handing it to a thread
and back, and the handing costs far more under load, when the loop thread and the driver's
threads queue for the GIL. PostgreSQL runs on SQLAlchemy's asyncio engine with asyncpg.
Services see one `Connection` either way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gcx_core.exceptions import ConfigurationError
from gcx_core.logs import throttled

# SQLite waits this long for another process's lock inside the driver, which on the event
# loop holds every request of the process; a writer then retries with asyncio sleeps between
# attempts, up to SQLITE_LOCK_WAIT_S.
SQLITE_BUSY_TIMEOUT_MS = 20
SQLITE_LOCK_WAIT_S = 10.0
CHECKPOINT_EVERY = 1.0  # seconds

T = TypeVar("T")
checkpoint_log = throttled(__name__ + ".checkpoint", interval=60.0)


class Connection(Protocol):
    """A connection inside a transaction, as services and repositories use it."""

    @property
    def dialect(self) -> sa.Dialect: ...

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a Core statement; the result is buffered or readable until the block ends."""
        ...

    async def run_sync(self, work: Callable[..., T], *args: Any) -> T:
        """`work(sync_connection, *args)` in this transaction."""
        ...


class InlineConnection:
    """A synchronous SQLAlchemy connection (SQLite), used from the event loop."""

    __slots__ = ("dialect", "sync")

    def __init__(self, conn: sa.Connection) -> None:
        self.sync = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.execute(statement, parameters)

    async def run_sync(self, work: Callable[..., T], *args: Any) -> T:
        return work(self.sync, *args)


class AsyncAdapter:
    """An asyncio SQLAlchemy connection (PostgreSQL) behind the same two methods."""

    __slots__ = ("conn", "dialect")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self.conn.execute(statement, parameters)

    async def run_sync(self, work: Callable[..., T], *args: Any) -> T:
        return await self.conn.run_sync(work, *args)


CONNECT_TIMEOUT = 5  # seconds


# Driver errors (by class name, so no driver is imported here) that mean "cannot connect now":
# the server is starting, shutting down, refusing or dropping connections.
_CONNECTION_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ClientCannotConnectError",
        "ConnectionRejectionError",
        "TooManyConnectionsError",
        # asyncpg 0.29 reports a connection cut mid-operation (the server went away) this way.
        "InternalClientError",
        # Redis's (sessions, rate limits): a store GCX cannot reach is the same kind of outage.
        "ConnectionError",
        "BusyLoadingError",
    }
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error says the database cannot be reached (down, restarting, refusing or
    timing out connections), rather than that a statement is wrong: the error, or what it
    wraps, says so."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, sa_exc.DBAPIError) and (
            error.connection_invalidated
            or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
        ):
            return True
        if isinstance(
            error,
            sa_exc.DisconnectionError | sa_exc.TimeoutError | ConnectionError | TimeoutError,
        ):
            return True
        if type(error).__name__ in _CONNECTION_ERRORS:
            return True
        for inner in (getattr(error, "orig", None), error.__cause__, error.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)
    return False


class Database:
    """One engine and the two kinds of transaction GCX uses: read and write.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so it takes the write lock before
    reading what it will change, and writers of this process queue on an asyncio lock. A
    writer of another process holding the lock is waited for with asyncio sleeps, so the
    event loop stays free meanwhile.
    """

    def __init__(
        self, *, sqlite: sa.Engine | None = None, pg: AsyncEngine | None = None, keep: int = 8
    ) -> None:
        if (sqlite is None) == (pg is None):
            raise ValueError("a Database has exactly one engine")
        self._sqlite = sqlite
        self._pg = pg
        self.dialect = (sqlite or pg).dialect.name  # type: ignore[union-attr]
        self._write_lock = asyncio.Lock() if sqlite is not None else None
        # SQLite: connections kept open between the loop's transactions (see _inline).
        self._idle: list[sa.Connection] = []
        self._keep = keep
        # SQLite: copies the write-ahead log into the database file, off the event loop.
        self._checkpointer: Checkpointer | None = None
        if sqlite is not None and sqlite.url.database:
            self._checkpointer = Checkpointer(sqlite.url.database)
            self._checkpointer.start()

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite is not None

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 8, echo: bool = False) -> Database:
        parsed = make_url(url)
        # msgspec writes and reads the JSON columns several times faster than the json module.
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_dumps,
            "json_deserializer": msgspec.json.decode,
        }
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.get_driver_name() not in ("aiosqlite", "pysqlite"):
                raise ConfigurationError("use a sqlite+aiosqlite:// URL for SQLite")
            if parsed.database in (None, "", ":memory:"):
                raise ConfigurationError("GCX keeps SQLite in a file: name one in the URL")
            ensure_sqlite_directory(url)
            engine = sa.create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                pool_size=pool_size,
                # Never wait for a connection on the event loop: past pool_size, open more.
                max_overflow=-1,
                # A connection may be used by a snapshot's worker thread (one at a time).
                connect_args={"check_same_thread": False},
                **kwargs,
            )
            _configure_sqlite(engine)
            return cls(sqlite=engine, keep=pool_size)
        if backend == "postgresql":
            if parsed.get_driver_name() != "asyncpg":
                raise ConfigurationError("use the postgresql+asyncpg:// driver for PostgreSQL")
            return cls(
                pg=create_async_engine(
                    parsed,
                    pool_size=pool_size,
                    max_overflow=pool_size,
                    pool_pre_ping=True,
                    # While PostgreSQL is down or restarting, fail in seconds (a 503 to the
                    # caller) instead of waiting out asyncpg's minute-long connect timeout.
                    pool_timeout=CONNECT_TIMEOUT * 2,
                    connect_args={"timeout": CONNECT_TIMEOUT},
                    **kwargs,
                )
            )
        raise ConfigurationError(f"unsupported database {backend!r}")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A read transaction: one consistent view of the database."""
        if self._sqlite is not None:
            with self._inline() as conn, conn.begin():
                _sqlite_begin(conn, "BEGIN")
                yield InlineConnection(conn)
            return
        assert self._pg is not None
        async with self._pg.connect() as aconn, aconn.begin():
            yield AsyncAdapter(aconn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        if self._sqlite is None:
            assert self._pg is not None
            async with self._pg.connect() as aconn, aconn.begin():
                yield AsyncAdapter(aconn)
            return
        assert self._write_lock is not None
        async with self._write_lock:
            with self._inline() as conn, conn.begin():
                await _begin_immediate(conn)
                yield InlineConnection(conn)

    async def batch(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """`await work(conn)` in one write transaction, for background batches (the
        scheduler's passes), which keep their own work short and take turns with requests.

        On SQLite the statements run on the event loop as any writer's do, but the commit runs
        in a worker thread: it writes the transaction's pages to the log, which the file
        system now and then stalls for tens of milliseconds, and the loop must not wait for
        that. This process's other writers wait on the write lock until it has committed. On
        PostgreSQL it is `write()`: asyncpg already waits without blocking the loop.
        """
        if self._sqlite is None:
            async with self.write() as conn:
                return await work(conn)
        assert self._write_lock is not None
        async with self._write_lock:
            with self._inline() as conn:
                transaction = conn.begin()
                try:
                    await _begin_immediate(conn)
                    result = await work(InlineConnection(conn))
                except BaseException:
                    transaction.rollback()
                    raise
                committing = asyncio.ensure_future(asyncio.to_thread(transaction.commit))
                try:
                    await asyncio.shield(committing)
                except asyncio.CancelledError:
                    # The commit ends in its thread whatever happens here; the connection and
                    # the write lock are kept until it has.
                    await asyncio.wait([committing])
                    raise
                return result

    @contextmanager
    def _inline(self) -> Iterator[sa.Connection]:
        """An SQLite connection for one transaction on the event loop, taken from the ones
        kept open between transactions (SQLAlchemy's own pool hands connections across
        threads, a cost the loop need not pay for each of its many short transactions)."""
        assert self._sqlite is not None
        conn = self._idle.pop() if self._idle else self._sqlite.connect()
        try:
            yield conn
        finally:
            if conn.in_transaction() or conn.invalidated or len(self._idle) >= self._keep:
                conn.close()
            else:
                self._idle.append(conn)

    async def snapshot(self, work: Callable[[sa.Connection], T]) -> T:
        """`work(connection)` in one read transaction, its SQL off the event loop.

        For long reads, such as recounts, that inline would hold every request of the process
        while they run: on SQLite `work` runs in a worker thread on a connection of its own.
        asyncpg already waits without blocking the loop.
        """
        if self._sqlite is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        engine = self._sqlite

        def run() -> T:
            with engine.connect() as conn, conn.begin():
                _sqlite_begin(conn, "BEGIN")
                return work(conn)

        return await asyncio.to_thread(run)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        while self._idle:
            self._idle.pop().close()
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._pg is not None:
            await self._pg.dispose()


def _sqlite_begin(conn: sa.Connection, statement: str) -> None:
    """Open SQLite's transaction inside SQLAlchemy's, which ends it (the driver's commit and
    rollback end a transaction begun by hand). The driver itself begins none: it runs with
    isolation_level None, so reads share one snapshot and writes take the lock up front."""
    conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]


async def _begin_immediate(conn: sa.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write lock without blocking the loop."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    delay = 0.001
    while True:
        try:
            _sqlite_begin(conn, "BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class Checkpointer(threading.Thread):
    """Copies SQLite's write-ahead log into the database file every CHECKPOINT_EVERY seconds,
    in a thread of its own: the connections the event loop uses never checkpoint (they run
    with wal_autocheckpoint=0), so no commit stalls requests while pages are copied. PASSIVE
    mode waits for nobody; what a reader still needs is copied on a later turn. Each process
    with a database open runs one, and checkpoints from several processes are safe."""

    def __init__(self, path: str) -> None:
        super().__init__(name="gcx-sqlite-checkpoint", daemon=True)
        self.path = path
        self._stopping = threading.Event()
        self.failures = 0

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(CHECKPOINT_EVERY):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    self.failures += 1
                    checkpoint_log.warning("checkpointing the SQLite log failed: %s", exc)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """Stop after one last checkpoint's worth of waiting (the thread finishes its turn)."""
        self._stopping.set()
        self.join(timeout=10)


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder; a fresh data directory needs both."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine.pool, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver begins no transaction of its own: Database does (see _sqlite_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "cache_size=-65536",
            "temp_store=MEMORY",
            # A commit never copies the log into the database itself (it would do so on the
            # event loop, now and then for tens of milliseconds): Checkpointer does it.
            "wal_autocheckpoint=0",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
