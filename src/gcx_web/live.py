"""Live updates: domain events become channel messages; websockets subscribe to channels.

Messages are ``{type, seq, at, data}`` (DESIGN §5). Channels: ``dashboard``,
``application:{id}`` and ``notifications``. Embedded, the channels live in the process; in
scale-out they go through Redis pub/sub, so every web process hears every other's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection

from gcx_core.events import (
    CountersChanged,
    DocumentReviewed,
    DocumentUploaded,
    NotificationDelivery,
)
from gcx_core.plugins import hookimpl
from gcx_core.services.dashboard import snapshot
from gcx_core.workflow import TransitionEvent
from gcx_web.wire import dashboard_out

log = logging.getLogger(__name__)
BACKLOG = 256  # per subscriber; the oldest messages go first when a client is slow


class LiveMessage(msgspec.Struct):
    type: str
    seq: int
    at: datetime
    data: dict[str, Any] = {}


def make_channels(redis: Any | None) -> ChannelsPlugin:
    if redis is None:
        backend: Any = MemoryChannelsBackend(history=0)
    else:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend

        backend = RedisChannelsPubSubBackend(redis=redis)
    return ChannelsPlugin(
        backend,
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=BACKLOG,
        subscriber_backlog_strategy="dropleft",
    )


def describe_event(event: Any) -> tuple[str, dict[str, Any], list[str]] | None:
    """The message type, data and channels for a committed event; None to stay silent."""
    if isinstance(event, TransitionEvent):
        data = {
            "application_id": event.application_id,
            "action": event.action,
            "from": event.from_status,
            "to": event.to_status,
            "at": event.at,
        }
        return "transition", data, [f"application:{event.application_id}", "dashboard"]
    if isinstance(event, DocumentUploaded | DocumentReviewed):
        name = "document_uploaded" if isinstance(event, DocumentUploaded) else "document_reviewed"
        data = {
            "application_id": event.application_id,
            "requirement": event.requirement_code,
            "document_id": event.document_id,
        }
        return name, data, [f"application:{event.application_id}"]
    if isinstance(event, CountersChanged):
        return "counters", {}, ["dashboard"]
    if isinstance(event, NotificationDelivery):
        data = {
            "notification_id": event.notification_id,
            "status": event.status,
            "application_id": event.application_id,
        }
        targets = ["notifications", "dashboard"]
        if event.application_id is not None:
            targets.append(f"application:{event.application_id}")
        return "notification", data, targets
    return None


async def dashboard_data(gcx: Any, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """A dashboard message's data: the snapshot, and the transitions it follows."""
    data: dict[str, Any] = msgspec.to_builtins(dashboard_out(await snapshot(gcx)))
    data["changes"] = changes
    return data


class Listeners:
    """How many websockets of this process follow each channel (`follow` counts them)."""

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


class Publisher:
    """A plugin: publishes every committed event to the channels that care about it.

    The `dashboard` channel gets snapshots only. The first event after a quiet spell is
    published at once (in a task of its own, so the request that committed it is not held
    up); events that come while a snapshot is being made or within `THROTTLE` seconds after
    one share the next. So a lone action reaches the dashboards without waiting, and a burst
    costs one snapshot per `THROTTLE`, computed once for every subscriber. Each snapshot's
    `changes` list the transitions since the previous one, for pages that follow single rows.

    With `listeners` (embedded: every listener is in this process) a message for a channel
    nobody follows is not built at all; through Redis, other processes may be listening.
    """

    THROTTLE = 0.01

    def __init__(
        self, channels: ChannelsPlugin, gcx: Any = None, listeners: Listeners | None = None
    ) -> None:
        self.channels = channels
        self.gcx = gcx
        self.listeners = listeners
        self._seq = itertools.count(1)
        self._refresh: asyncio.Task[None] | None = None
        self._changes: list[dict[str, Any]] = []
        self._dirty = False

    @hookimpl
    def gcx_handle_event(self, event: Any) -> None:
        described = describe_event(event)
        if described is None:
            return
        kind, data, targets = described
        targets = self.audience(targets)
        others = [t for t in targets if t != "dashboard"]
        if others:
            self.publish(kind, data, others)
        if "dashboard" in targets and self.gcx is not None:
            if kind == "transition":
                self._changes.append(data)
            self.schedule_snapshot()

    def audience(self, targets: list[str]) -> list[str]:
        """The targets somebody may hear."""
        if self.listeners is None:
            return targets
        return [t for t in targets if self.listeners.counts.get(t)]

    def schedule_snapshot(self) -> None:
        self._dirty = True
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._snapshots())

    async def _snapshots(self) -> None:
        await asyncio.sleep(0)  # the rest of the transaction's events join in
        while self._dirty:
            self._dirty = False
            changes, self._changes = self._changes, []
            try:
                data = await dashboard_data(self.gcx, changes)
            except Exception:
                log.exception("could not compute the dashboard snapshot")
            else:
                self.publish("dashboard", data, ["dashboard"])
            await self.wait_between()

    async def wait_between(self) -> None:
        """The pause after each snapshot, in which further changes gather for the next."""
        await asyncio.sleep(self.THROTTLE)

    async def idle(self) -> None:
        """Return once no snapshot is scheduled or being made."""
        while self._refresh is not None and not self._refresh.done():
            await asyncio.wait([self._refresh])

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    def publish(self, kind: str, data: dict[str, Any], targets: list[str]) -> None:
        message = LiveMessage(kind, next(self._seq), datetime.now(UTC), data)
        try:
            self.channels.publish(msgspec.json.encode(message), targets)
        except RuntimeError:
            # The channels stopped first at shutdown; late events (deliveries finishing) have
            # nobody left to reach.
            log.debug("channels stopped; %s not published", kind)
        except Exception:  # a dead backend must not fail the request that committed
            log.exception("could not publish %s", kind)


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

    `render` may return None to send nothing. A reader task watches for the client's
    disconnect, so a closed socket never keeps its subscription alive.
    """
    state = socket.app.state
    with state.listeners.following(names):
        await _forward(socket, state.channels, names, render)


async def _forward(socket: Any, channels: ChannelsPlugin, names: list[str], render: Any) -> None:
    from litestar.exceptions import WebSocketDisconnect

    async with channels.start_subscription(names) as subscriber:
        sender = asyncio.current_task()

        async def watch() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    await socket.receive_data(mode="text")
            if sender is not None:
                sender.cancel()

        watcher = asyncio.create_task(watch())
        try:
            first = await render(None)
            if first is not None:
                await socket.send_data(first)
            async for event in subscriber.iter_events():
                payload = await render(event)
                if payload is not None:
                    await socket.send_data(payload)
        except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


class RedisPublish:
    """The one method of ChannelsPlugin the Publisher needs, straight to Redis pub/sub.

    RedisChannelsPubSubBackend subscribes to channel names verbatim, so web processes receive
    these exactly as their own publishes.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._pending: set[asyncio.Task[Any]] = set()

    def publish(self, data: bytes, channels: list[str]) -> None:
        for channel in channels:
            task = asyncio.get_running_loop().create_task(self.redis.publish(channel, data))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def redis_publishing(gcx: Any) -> Any:
    from redis.asyncio import Redis

    redis = Redis.from_url(gcx.settings.redis_url)
    sink = RedisPublish(redis)
    publisher = Publisher(sink, gcx)  # type: ignore[arg-type]
    gcx.plugins.register(publisher, name=f"gcx_web.redis_publisher.{id(publisher)}")
    try:
        yield publisher
    finally:
        gcx.plugins.unregister(publisher)
        await publisher.close()
        await sink.drain()
        await redis.aclose()
