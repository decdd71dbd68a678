"""Group commit: concurrent callers' small writes share one transaction, each keeps its result.

A write transaction's commit costs more than the few statements in it, and on SQLite writers
queue anyway. `GroupCommit(database, work)` lets each caller `await group(item)`: the first
caller to find nobody writing leads, lets the group fill while each turn of the event loop
brings another caller (up to `max_batch`), and runs `work(conn, items)` in one transaction;
`work` returns one result (or exception) per item. If the shared transaction fails, each item
is retried alone so one item's problem stays its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from gcx_core.storage.database import Connection, Database

T = TypeVar("T")
R = TypeVar("R")
_LEAD = object()

Work = Callable[[Connection, list[T]], Awaitable[Sequence[R | BaseException]]]


class _Request(Generic[T, R]):
    __slots__ = ("done", "item", "outcome", "signal")

    def __init__(self, item: T) -> None:
        self.item = item
        self.signal: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.done = False
        self.outcome: Any = None

    def settle(self, outcome: Any) -> None:
        self.done, self.outcome = True, outcome

    def result(self) -> R:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class GroupCommit(Generic[T, R]):
    def __init__(self, database: Database, work: Work[T, R], max_batch: int = 64) -> None:
        self.database = database
        self.work = work
        self.max_batch = max_batch
        self._pending: list[_Request[T, R]] = []
        self._leading = False

    async def __call__(self, item: T) -> R:
        request: _Request[T, R] = _Request(item)
        self._pending.append(request)
        if self._leading:
            try:
                await request.signal
            except asyncio.CancelledError:
                self._abandon(request)
                raise
            if request.done:
                return request.result()
        else:
            self._leading = True
        batch: list[_Request[T, R]] = []
        try:
            # Let callers that are ready join this batch, and keep the door open while more
            # keep coming: under load every commit saved is a millisecond of disk writes.
            await asyncio.sleep(0)
            while len(self._pending) < self.max_batch:
                waiting = len(self._pending)
                await asyncio.sleep(0)
                if len(self._pending) == waiting:
                    break
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            await self._run(batch)
        finally:
            if not request.done and request in self._pending:
                self._pending.remove(request)
            self._pending[0:0] = [r for r in batch if not r.done and r is not request]
            self._pass_lead()
        return request.result()

    def _pass_lead(self) -> None:
        if self._pending:
            self._pending[0].signal.set_result(_LEAD)
        else:
            self._leading = False

    def _abandon(self, request: _Request[T, R]) -> None:
        if request in self._pending:
            self._pending.remove(request)
        signal = request.signal
        if signal.done() and not signal.cancelled() and signal.result() is _LEAD:
            self._pass_lead()

    async def _run(self, batch: list[_Request[T, R]]) -> None:
        try:
            await self._together(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(exc)
            else:
                for request in batch:
                    try:
                        await self._together([request])
                    except Exception as single:
                        request.settle(single)
        for request in batch:
            if not request.signal.done():
                request.signal.set_result(None)

    async def _together(self, batch: list[_Request[T, R]]) -> None:
        async with self.database.write() as conn:
            outcomes = await self.work(conn, [r.item for r in batch])
        for request, outcome in zip(batch, outcomes, strict=True):
            request.settle(outcome)
