"""Websockets that follow topics: who listens in this process, and handing each message to
every socket that follows its topic until they leave."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.connection import ASGIConnection

log = logging.getLogger(__name__)
BACKLOG = 256  # per socket; the oldest messages go first when a client is slow


class Listeners:
    """How many websockets of this process follow each topic (`follow` counts them)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextlib.contextmanager
    def following(self, names: list[str]) -> Iterator[None]:
        self.counts.update(names)
        try:
            yield
        finally:
            self.counts.subtract(names)
            for name in names:
                if self.counts[name] <= 0:
                    del self.counts[name]


def origin_allowed(
    connection: ASGIConnection[Any, Any, Any, Any], allowed: tuple[str, ...]
) -> bool:
    """Refuse cross-site websocket upgrades: the Origin must be this site or an allowed one.

    Browsers always send Origin on websocket upgrades; clients without one are not browsers
    and cannot carry a victim's cookies.
    """
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    origin = origin.lower()
    host = connection.headers.get("host", "").lower()
    if host and origin in (f"http://{host}", f"https://{host}"):
        return True
    return origin in allowed


async def follow(socket: Any, names: list[str], render: Any) -> None:
    """Send `render(None)` now and `render(message)` for every message on `names`, until the
    client goes away.

    `render` may return None to send nothing. The socket joins the process's `LiveHub` before
    its first message is made, so nothing published meanwhile is missed; this task then only
    reads from the client, to notice when it leaves.
    """
    from litestar.exceptions import WebSocketDisconnect

    state = socket.app.state
    gauge = state.gcx.metrics.websockets.labels(names[0].partition(":")[0] if names else "none")
    gauge.inc()
    follower = Follower(socket, render)
    try:
        with state.listeners.following(names):
            async with state.live_hub.following(names, follower):
                first = await render(None)
                if first is not None:
                    await socket.send_data(first)
                follower.start()
                while not follower.gone:
                    await socket.receive_data(mode="text")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        gauge.dec()


class Follower:
    """One websocket following topics: what the hub hands it is rendered and sent at once,
    in the hub's own task, unless the socket is still busy with an earlier message (its
    client reads slowly, or `render` waits for the database): then it waits in a bounded
    backlog (the oldest dropped first) and a task of the socket's own sends it in turn."""

    def __init__(self, socket: Any, render: Any) -> None:
        self.socket = socket
        self.render = render
        self.gone = False
        self.backlog: collections.deque[Any] = collections.deque(maxlen=BACKLOG)
        self._busy = True  # until `start`: the first message goes out before any other
        self._finishing: asyncio.Future[None] | None = None

    def start(self) -> None:
        """The first message is sent: the ones that came meanwhile follow it."""
        self._busy = False
        self._drain()

    def offer(self, event: Any) -> None:
        if self.gone:
            return
        if self._busy:
            self.backlog.append(event)
            return
        self._send(event)

    def _send(self, event: Any) -> None:
        # Run the delivery by hand, to its end if nothing makes it wait (the usual case: the
        # server buffers what a socket is sent), with no task and no queue per socket.
        delivery = self._deliver(event)
        try:
            waiting = delivery.send(None)
        except StopIteration:
            return
        self._busy = True
        self._finishing = asyncio.ensure_future(_Finish(delivery, waiting))
        self._finishing.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.gone = True  # _deliver keeps its errors; anything else ends the socket too
        self._busy = False
        self._drain()

    def _drain(self) -> None:
        while self.backlog and not self._busy and not self.gone:
            self._send(self.backlog.popleft())

    async def _deliver(self, event: Any) -> None:
        from litestar.exceptions import WebSocketDisconnect

        try:
            payload = await self.render(event)
            if payload is not None:
                await self.socket.send_data(payload)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.gone = True  # the client left; the socket's own task ends with it
        except Exception:
            self.gone = True
            log.exception("live update not sent; closing the websocket")
            with contextlib.suppress(Exception):
                await self.socket.close(code=1011, reason="live updates failed")

    def cancel(self) -> None:
        self.gone = True
        if self._finishing is not None:
            self._finishing.cancel()


class _Finish:
    """Awaitable: runs a coroutine started by hand (`coroutine.send(None)` returned
    `waiting`, what it waits for) to its end, as if a task had started it."""

    __slots__ = ("coroutine", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        waiting = self.waiting
        while True:
            try:
                given = yield waiting
            except BaseException as exc:  # a cancellation: the coroutine sees it where it waits
                try:
                    waiting = self.coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting = self.coroutine.send(given)
                except StopIteration:
                    return


class LiveHub:
    """The live websockets of this process by topic, and one channels subscription per topic
    followed here: each message it brings is handed to every follower in turn by one task,
    instead of waking a task per socket."""

    def __init__(self, channels: ChannelsPlugin) -> None:
        self.channels = channels
        self.followers: dict[str, dict[Follower, None]] = {}
        self._readers: dict[str, tuple[Any, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()

    @property
    def reading(self) -> set[str]:
        """The topics this process is subscribed to for its sockets."""
        return set(self._readers)

    @contextlib.asynccontextmanager
    async def following(self, names: list[str], follower: Follower) -> AsyncIterator[None]:
        async with self._lock:
            for name in names:
                self.followers.setdefault(name, {})[follower] = None
                if name not in self._readers:
                    subscriber = await self.channels.subscribe([name])
                    reader = asyncio.create_task(self._hand_out(name, subscriber))
                    self._readers[name] = (subscriber, reader)
        try:
            yield
        finally:
            follower.cancel()
            async with self._lock:
                for name in names:
                    followers = self.followers.get(name, {})
                    followers.pop(follower, None)
                    if not followers and name in self._readers:
                        del self.followers[name]
                        await self._stop_reading(name)

    async def _hand_out(self, name: str, subscriber: Any) -> None:
        async for event in subscriber.iter_events():
            for follower in tuple(self.followers.get(name, ())):
                follower.offer(event)

    async def _stop_reading(self, name: str) -> None:
        subscriber, reader = self._readers.pop(name)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        with contextlib.suppress(Exception):  # the channels may have stopped first
            await self.channels.unsubscribe(subscriber)

    async def close(self) -> None:
        async with self._lock:
            for name in list(self._readers):
                await self._stop_reading(name)
