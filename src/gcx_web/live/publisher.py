"""Live updates: committed events become messages on topics that websockets follow.

Messages are ``{type, seq, at, data}``. Topics: ``dashboard``,
``application:{id}`` and ``notifications``. Embedded, the topics live in the process; in
scale-out they go through Redis pub/sub, so every web process hears every other's events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from gcx_core.events import (
    ApplicationAssigned,
    CountersChanged,
    DocumentReviewed,
    DocumentUploaded,
    MessageSent,
    NoteAdded,
    NotificationDelivery,
)
from gcx_core.logs import throttled
from gcx_core.plugins import hookimpl, register_named
from gcx_core.services.dashboard import snapshot
from gcx_core.storage.database import database_unavailable
from gcx_core.workflow import TransitionEvent
from gcx_web.live.sockets import BACKLOG, Listeners
from gcx_web.schemas import dashboard_out

log = logging.getLogger(__name__)
outage_log = throttled(__name__ + ".outage", interval=10.0)


class LiveMessage(msgspec.Struct):
    type: str
    seq: int
    at: datetime
    data: dict[str, Any] = {}


def live_backend(redis: Any | None) -> Any:
    """Where live updates travel: this process's memory, or Redis pub/sub in scale-out (a
    backend that reconnects by itself, gcx_web.live.redis_backend)."""
    if redis is None:
        return MemoryChannelsBackend(history=0)
    from gcx_web.live.redis_backend import ResilientRedisPubSub

    return ResilientRedisPubSub(redis)


def make_channels(backend: Any) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend,
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=BACKLOG,
        subscriber_backlog_strategy="dropleft",
    )


def describe_event(event: Any) -> tuple[str, dict[str, Any], list[str]] | None:
    """The message type, data and topics for a committed event; None to stay silent."""
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
    if isinstance(event, ApplicationAssigned):
        data = {
            "application_id": event.application_id,
            "reviewer_id": event.reviewer_id,
            "previous_reviewer_id": event.previous_reviewer_id,
        }
        return "assignment", data, [f"application:{event.application_id}"]
    if isinstance(event, MessageSent):
        data = {"application_id": event.application_id, "sender": event.sender}
        return "message", data, [f"application:{event.application_id}"]
    if isinstance(event, NoteAdded):
        data = {"application_id": event.application_id, "note_id": event.note_id}
        return "note", data, [f"application:{event.application_id}"]
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


class Publisher:
    """A plugin: publishes every committed event to the topics that care about it.

    The `dashboard` topic gets snapshots only. The first event after a quiet spell is
    published at once (in a task of its own, so the request that committed it is not held
    up); events that come while a snapshot is being made or within `THROTTLE` seconds after
    one share the next. So a lone action reaches the dashboards without waiting, and a burst
    costs one snapshot per `THROTTLE`, computed once for every subscriber. Each snapshot's
    `changes` list the transitions since the previous one, for pages that follow single rows.

    Other changes (notifications claimed, sent or failed: the counts beside the statuses) are
    less pressing and come in pairs from several processes: a snapshot only they ask for
    waits up to `DELAY`, so they share one, and a transition in the meantime sends it at
    once. Every dashboard then gets about two messages per action instead of three.

    In scale-out several processes publish snapshots, and each counts the whole database: a
    snapshot any of them publishes shows every change committed before it was read. So a
    publisher that hears one (`heard_snapshot`) drops from its wait the changes made at least
    `COVERED_AFTER` before, and sends nothing if none is left; the others wait their DELAY
    from when they were made. A worker's delivery counts thus ride on the next actions'
    snapshots instead of costing every dashboard messages of their own.

    With `listeners` (embedded: every listener is in this process) a message for a topic
    nobody follows is not built at all; through Redis, other processes may be listening.
    """

    THROTTLE = 0.01
    DELAY = 1.0
    # Longer than a snapshot takes from its read to its arrival in another process: one heard
    # this long after a change was read after it (timed on this process's clock only).
    COVERED_AFTER = 0.5

    def __init__(
        self, channels: ChannelsPlugin, gcx: Any = None, listeners: Listeners | None = None
    ) -> None:
        self.channels = channels
        self.gcx = gcx
        self.listeners = listeners
        self._seq = itertools.count(1)
        self._refresh: asyncio.Task[None] | None = None
        self._changes: list[dict[str, Any]] = []
        self._urgent = False  # a transition not in any snapshot yet: the snapshot goes at once
        # When the other changes were made (time.monotonic()), oldest first.
        self._waiting: collections.deque[float] = collections.deque()
        self._wake = asyncio.Event()

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
            self.schedule_snapshot(urgent=kind == "transition")

    def audience(self, targets: list[str]) -> list[str]:
        """The targets somebody may hear."""
        if self.listeners is None:
            return targets
        return [t for t in targets if self.listeners.counts.get(t)]

    def schedule_snapshot(self, *, urgent: bool = True) -> None:
        if urgent:
            self._urgent = True
            self._wake.set()
        else:
            self._waiting.append(time.monotonic())
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._snapshots())

    async def _snapshots(self) -> None:
        await asyncio.sleep(0)  # the rest of the transaction's events join in
        while self._dirty:
            # Changes other than transitions wait DELAY from the oldest, or until a snapshot
            # heard from elsewhere has shown them all.
            while not self._urgent and self._waiting:
                left = self._waiting[0] + self.DELAY - time.monotonic()
                if left <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
            if not self._dirty:
                break
            self._urgent = False
            self._waiting.clear()
            changes, self._changes = self._changes, []
            try:
                data = await dashboard_data(self.gcx, changes)
            except Exception as exc:
                if database_unavailable(exc):
                    outage_log.warning("dashboard snapshot skipped: the database is unavailable")
                else:
                    log.exception("could not compute the dashboard snapshot")
            else:
                self.publish("dashboard", data, ["dashboard"])
            await self.wait_between()

    @property
    def _dirty(self) -> bool:
        """A change not in any snapshot yet."""
        return self._urgent or bool(self._waiting)

    def heard_snapshot(self) -> None:
        """A dashboard snapshot arrived from any process (this one included): it showed the
        changes made at least COVERED_AFTER before, which wait no longer; with none left, no
        snapshot is sent. Transitions never wait: theirs goes at once."""
        if self._urgent or not self._waiting:
            return
        shown = time.monotonic() - self.COVERED_AFTER
        while self._waiting and self._waiting[0] <= shown:
            self._waiting.popleft()
        self._wake.set()  # the waiting task looks again

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


class RedisPublish:
    """The one method of ChannelsPlugin the Publisher needs, straight to Redis pub/sub.

    RedisChannelsPubSubBackend subscribes to topic names verbatim, so web processes receive
    these exactly as their own publishes.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._pending: set[asyncio.Task[Any]] = set()

    def publish(self, data: bytes, channels: list[str]) -> None:
        for topic in channels:
            task = asyncio.get_running_loop().create_task(self.redis.publish(topic, data))
            self._pending.add(task)
            task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Redis is away: this update is lost; dashboards get a fresh snapshot once the
            # web processes' subscriptions are back.
            outage_log.warning("live update not published: %s", task.exception())

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


async def hear_snapshots(publisher: Publisher, events: AsyncIterator[Any]) -> None:
    """Tell `publisher` of each dashboard snapshot in `events` (messages on the `dashboard`
    topic, through Redis), whichever process published it."""
    from gcx_web.live.redis_backend import RESYNC

    async for event in events:
        if event != RESYNC:
            publisher.heard_snapshot()


@contextlib.asynccontextmanager
async def redis_publishing(gcx: Any) -> Any:
    """A publisher for a worker or scheduler: straight to Redis, and hearing the dashboard
    snapshots the other processes publish (a subscription that survives Redis restarts;
    while it is down, nothing is heard and every snapshot due is sent)."""
    from redis.asyncio import Redis

    from gcx_web.live.redis_backend import ResilientRedisPubSub

    redis = Redis.from_url(gcx.settings.redis_url)
    sink = RedisPublish(redis)
    publisher = Publisher(sink, gcx)  # type: ignore[arg-type]
    register_named(gcx.plugins, publisher, "gcx_web.redis_publisher")
    subscription = ResilientRedisPubSub(redis)
    await subscription.subscribe(["dashboard"])

    async def snapshots() -> AsyncIterator[Any]:
        async for _, data in subscription.stream_events():
            yield data

    hearing = asyncio.create_task(hear_snapshots(publisher, snapshots()))
    try:
        yield publisher
    finally:
        gcx.plugins.unregister(publisher)
        hearing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hearing
        await subscription.on_shutdown()
        await publisher.close()
        await sink.drain()
        await redis.aclose()
