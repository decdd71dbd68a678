"""Hot paths on inline SQLite: the same Core statements, compiled once, run on the raw driver.

SQLAlchemy's per-statement work (cache keys, parameter processing, result setup, a greenlet
switch per driver call) costs more than SQLite's own work for the small statements of a
submission or a lookup. Here a Core statement is compiled once per dialect; its bind and
result processors (the same functions SQLAlchemy would apply) are looked up once; and it runs
on the connection's sqlite3 handle, inside the same transaction. On PostgreSQL, or SQLite
through aiosqlite, the statements run through SQLAlchemy unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
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


def _readers(
    columns: Sequence[Any], dialect: sa.Dialect
) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any]], ...]]:
    """The columns' keys, and the result processors of those whose values need converting
    (datetimes, JSON, booleans): the same functions SQLAlchemy would apply."""
    keys = tuple(str(c.key) for c in columns)
    processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    return keys, tuple((k, p) for k, p in zip(keys, processors, strict=True) if p)


def _as_dicts(
    keys: tuple[str, ...],
    convert: tuple[tuple[str, Callable[[Any], Any]], ...],
    rows: Iterable[Sequence[Any]],
) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        values = dict(zip(keys, row, strict=True))
        for k, p in convert:
            values[k] = p(values[k])
        found.append(values)
    return found


class _SelectPlan(_StatementPlan):
    __slots__ = ("convert", "keys")

    def __init__(self, stmt: sa.Select[Any], dialect: sa.Dialect) -> None:
        super().__init__(stmt, dialect)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("FastSelect cannot run an expanding IN; use SQLAlchemy for it")
        self.keys, self.convert = _readers(list(stmt.selected_columns), dialect)

    def fetch(self, handle: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows as the driver gives them (tuples of SQLite's own values)."""
        return handle.execute(self.sql, self.row(params)).fetchall()

    def run(self, handle: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return _as_dicts(self.keys, self.convert, self.fetch(handle, params))


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


class Children(NamedTuple):
    """The rows of `table` whose `key` column refers to a parent row, in `order_by` order."""

    table: sa.Table
    key: sa.Column[Any]
    order_by: tuple[sa.Column[Any], ...]


# Column types whose values do not come back from SQLite's JSON functions exactly as they went
# in: BLOBs are refused by json_array and floats are written with 15 significant digits.
_NOT_IN_JSON = (sa.LargeBinary, sa.Float, sa.Numeric)


class _ChildPlan:
    __slots__ = ("convert", "keys", "sort_keys")

    def __init__(self, children: Children, dialect: sa.Dialect) -> None:
        columns = list(children.table.c)
        for column in columns:
            if isinstance(column.type, _NOT_IN_JSON):
                raise ValueError(f"{column} cannot be read through JSON exactly")
        self.keys, self.convert = _readers(columns, dialect)
        self.sort_keys = tuple(str(c.key) for c in children.order_by)

    def rows(self, encoded: str) -> list[dict[str, Any]]:
        found = _as_dicts(self.keys, self.convert, msgspec.json.decode(encoded))
        if len(found) > 1:
            found.sort(key=self._order)
        return found

    def _order(self, row: dict[str, Any]) -> tuple[Any, ...]:
        # SQLite's ascending order: NULL first.
        return tuple((0, 0) if row[k] is None else (1, row[k]) for k in self.sort_keys)


_FamilyPlan = tuple[_SelectPlan, tuple[_ChildPlan, ...]]


class Snapshot:
    """One family as `FastFamily.snapshot` read it: `rows()` gives the lists `read` returns,
    and the snapshot hashes and compares by a `key` that is equal exactly when the rows are:
    on inline SQLite the single statement's row as the driver gave it (converted only when
    `rows()` is called), elsewhere the rows' JSON. What is made from a family's rows can so be
    cached by the snapshot itself: an unchanged family finds it, a changed one cannot.
    """

    __slots__ = ("_plan", "_rows", "key")

    def __init__(
        self, key: Any, plan: _FamilyPlan | None, rows: list[list[dict[str, Any]]]
    ) -> None:
        self.key = key
        self._plan = plan
        self._rows = rows

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self.key == other.key

    def rows(self) -> list[list[dict[str, Any]]]:
        """The parent's row and each child's rows."""
        if self._plan is None:
            return self._rows
        single, children = self._plan
        row = _as_dicts(single.keys, single.convert, [self.key])[0]
        nested = [child.rows(row.pop(f"_family_{i}")) for i, child in enumerate(children)]
        return [[row], *nested]


class FastFamily:
    """One row and the rows of other tables that refer to it, read as one consistent snapshot.

    `parent` selects at most one row and must include `parent_key`; each of `children` gives
    the rows whose key column equals it. `read` returns `[parent_rows, *children_rows]`, the
    same lists (of dicts, children in their order) as one SELECT per table in one transaction.

    On inline SQLite it is a single statement: each child's rows come back as a JSON array
    (`json_group_array`) in a column of the parent's row, which is decoded and converted by
    the columns' own result processors. That halves SQLite's work for a small family and
    needs no BEGIN/COMMIT. Elsewhere, or where SQLite lacks its JSON functions, the SELECTs
    run together through `select_together`.
    """

    def __init__(
        self, parent: sa.Select[Any], parent_key: sa.Column[Any], children: Sequence[Children]
    ) -> None:
        self.parent = parent
        self.parent_key = parent_key
        self.children = tuple(children)
        key_of_parent = parent.with_only_columns(parent_key).scalar_subquery()
        # The portable form: one SELECT per table, children found by the parent's key.
        self.selects = (
            FastSelect(parent),
            *(
                FastSelect(sa.select(c.table).where(c.key == key_of_parent).order_by(*c.order_by))
                for c in self.children
            ),
        )
        self._plans: dict[str, _FamilyPlan | None] = {}

    def _single(self) -> sa.Select[Any]:
        nested = [
            sa.select(sa.func.json_group_array(sa.func.json_array(*c.table.c)))
            .where(c.key == self.parent_key)
            .scalar_subquery()
            .label(f"_family_{i}")
            for i, c in enumerate(self.children)
        ]
        return self.parent.add_columns(*nested)

    def _plan(self, handle: Any, dialect: sa.Dialect) -> _FamilyPlan | None:
        if dialect.name in self._plans:
            return self._plans[dialect.name]
        plan: _FamilyPlan | None = None
        try:
            handle.execute("SELECT json_group_array(json_array(1))").fetchall()
        except sqlite3.OperationalError:  # built without JSON functions: the portable form
            pass
        else:
            plan = (
                _SelectPlan(self._single(), dialect),
                tuple(_ChildPlan(c, dialect) for c in self.children),
            )
        self._plans[dialect.name] = plan
        return plan

    async def read(self, database: Database, **params: Any) -> list[list[dict[str, Any]]]:
        found = await self.snapshot(database, **params)
        return found.rows() if found is not None else [[] for _ in range(len(self.children) + 1)]

    async def snapshot(self, database: Database, **params: Any) -> Snapshot | None:
        """The family as one Snapshot, or None when the parent row does not exist."""
        handle = database.inline_reader()
        plan = self._plan(handle, database.engine.dialect) if handle is not None else None
        if plan is None:
            rows = await select_together(database, self.selects, **params)
            # The key is taken before anyone holds the rows, so changing them cannot change it.
            return Snapshot(msgspec.json.encode(rows), None, rows) if rows[0] else None
        found = plan[0].fetch(handle, params)
        return Snapshot(found[0], plan, []) if found else None


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
