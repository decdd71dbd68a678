"""Hot paths on inline SQLite: the same Core statements, compiled once, run on the raw driver.

SQLAlchemy's per-statement work (cache keys, parameter processing, result setup, a greenlet
switch per driver call) costs more than SQLite's own work for the small statements of a
submission or a lookup. Here a Core statement is compiled once per dialect; its bind and
result processors (the same functions SQLAlchemy would apply) are looked up once; and it runs
on the connection's sqlite3 handle, inside the same transaction. On PostgreSQL, or SQLite
through aiosqlite, the statements run through SQLAlchemy unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gcx_core.storage.database import Database
from gcx_core.storage.sqlite_inline import InlineConnection

Processor = Callable[[Any], Any] | None


async def _inline_handle(conn: AsyncConnection) -> Any:
    """The sqlite3 connection under an inline SQLAlchemy connection, or None."""
    if conn.dialect.name != "sqlite":
        return None
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    return driver._conn if isinstance(driver, InlineConnection) else None


class _Plan:
    __slots__ = ("names", "processors", "sql")

    def __init__(self, sql: str, names: Sequence[str], processors: Sequence[Processor]) -> None:
        self.sql = sql
        self.names = tuple(names)
        self.processors = tuple(processors)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            [
                p(values[n]) if p is not None else values[n]
                for n, p in zip(self.names, self.processors, strict=True)
            ]
        )


class _StatementPlan(_Plan):
    """A plan whose statement also binds values of its own (a literal in SET, a LIMIT)."""

    __slots__ = ("defaults",)

    def __init__(self, stmt: Any, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        names = list(compiled.positiontup or [])
        super().__init__(
            compiled.string,
            names,
            [compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names],
        )
        self.defaults = dict(compiled.params)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return super().row({**self.defaults, **values})


_insert_plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}


def _insert_plan(table: sa.Table, keys: tuple[str, ...], dialect: sa.Dialect) -> _Plan:
    plan = _insert_plans.get((table.name, keys))
    if plan is None:
        stmt = table.insert().values({k: sa.bindparam(k) for k in keys})
        compiled = stmt.compile(dialect=dialect)
        names = compiled.positiontup or []
        processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
        plan = _insert_plans[(table.name, keys)] = _Plan(compiled.string, names, processors)
    return plan


async def insert_many(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany."""
    if not rows:
        return
    handle = await _inline_handle(conn)
    if handle is None:
        await conn.execute(table.insert(), rows)
        return
    plan = _insert_plan(table, tuple(sorted(rows[0])), conn.dialect)
    handle.executemany(plan.sql, [plan.row(r) for r in rows])


class _SelectPlan(_StatementPlan):
    __slots__ = ("convert", "keys")

    def __init__(self, stmt: sa.Select[Any], dialect: sa.Dialect) -> None:
        super().__init__(stmt, dialect)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("FastSelect cannot run an expanding IN; use SQLAlchemy for it")
        columns = list(stmt.selected_columns)
        self.keys = tuple(str(c.key) for c in columns)
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        # Only the columns whose values need converting (datetimes, JSON, booleans).
        self.convert = tuple((k, p) for k, p in zip(self.keys, processors, strict=True) if p)

    def run(self, handle: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows = handle.execute(self.sql, self.row(params)).fetchall()
        keys, convert = self.keys, self.convert
        found = []
        for row in rows:
            values = dict(zip(keys, row, strict=True))
            for k, p in convert:
                values[k] = p(values[k])
            found.append(values)
        return found


class FastSelect:
    """A SELECT with named bind parameters, compiled once; rows come back as dicts."""

    def __init__(self, stmt: sa.Select[Any]) -> None:
        self.stmt = stmt
        self._plans: dict[str, _SelectPlan] = {}

    def _plan(self, dialect: sa.Dialect) -> _SelectPlan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _SelectPlan(self.stmt, dialect)
        return plan

    async def all(self, source: AsyncConnection | Database, **params: Any) -> list[dict[str, Any]]:
        """Run on a connection (inside its transaction) or on the database (one statement)."""
        if isinstance(source, Database):
            handle = source.inline_reader()
            if handle is None:
                async with source.read() as conn:
                    return [dict(r._mapping) for r in await conn.execute(self.stmt, params)]
            return self._plan(source.engine.dialect).run(handle, params)
        handle = await _inline_handle(source)
        if handle is None:
            return [dict(r._mapping) for r in await source.execute(self.stmt, params)]
        return self._plan(source.dialect).run(handle, params)

    async def first(
        self, source: AsyncConnection | Database, **params: Any
    ) -> dict[str, Any] | None:
        rows = await self.all(source, **params)
        return rows[0] if rows else None


async def select_together(
    database: Database, selects: Sequence[FastSelect], **params: Any
) -> list[list[dict[str, Any]]]:
    """Several SELECTs that must agree, in one snapshot; each takes what it needs of `params`.

    On inline SQLite they run back to back on the read-only handle inside BEGIN/COMMIT, with
    no await in between, so no other task can use the handle meanwhile; elsewhere they share
    one read transaction.
    """
    handle = database.inline_reader()
    if handle is None:
        async with database.read() as conn:
            return [await s.all(conn, **params) for s in selects]
    dialect = database.engine.dialect
    handle.execute("BEGIN")
    try:
        return [s._plan(dialect).run(handle, params) for s in selects]
    finally:
        handle.execute("COMMIT")


class FastStatement:
    """A write statement with named binds, built and compiled once per dialect, run for many rows.

    `build(dialect_name)` returns the statement, so dialect-specific forms (an upsert) fit.
    """

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._statements: dict[str, Any] = {}
        self._plans: dict[str, _Plan] = {}

    def statement(self, dialect: sa.Dialect) -> Any:
        stmt = self._statements.get(dialect.name)
        if stmt is None:
            stmt = self._statements[dialect.name] = self._build(dialect.name)
        return stmt

    def _plan(self, dialect: sa.Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _StatementPlan(self.statement(dialect), dialect)
        return plan

    async def run_many(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """One executemany for all rows."""
        if not rows:
            return
        handle = await _inline_handle(conn)
        if handle is None:
            await conn.execute(self.statement(conn.dialect), rows)
            return
        plan = self._plan(conn.dialect)
        handle.executemany(plan.sql, [plan.row(r) for r in rows])

    async def run_each(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
        """Run once per row and return each row's rowcount (for conditional updates)."""
        if not rows:
            return []
        handle = await _inline_handle(conn)
        if handle is None:
            stmt = self.statement(conn.dialect)
            return [(await conn.execute(stmt, row)).rowcount for row in rows]
        plan = self._plan(conn.dialect)
        return [handle.execute(plan.sql, plan.row(row)).rowcount for row in rows]
