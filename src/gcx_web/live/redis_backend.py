"""Live updates through Redis pub/sub that survive a Redis restart.

Litestar's Redis channel backends stop for good when their connection drops (the reading task
ends, later publishes wait forever and shutdown can hang). This backend, a `ChannelsBackend`
like them, keeps going instead:

- reading: a lost connection is retried with a capped backoff; once Redis answers again the
  backend subscribes to every topic it had and hands each of them a `RESYNC` message, so every
  open socket sends its client a fresh snapshot (whatever was published meanwhile is lost with
  the old connection; the snapshot makes up for it);
- publishing: a publish that fails is logged (throttled) and dropped, never raised, so the
  plugin's publishing task lives on;
- `connected` says whether the backend is subscribed right now, for readiness and metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from litestar.channels.backends.base import ChannelsBackend
from redis.exceptions import RedisError

from gcx_core.logs import throttled

log = logging.getLogger(__name__)
outage_log = throttled(__name__ + ".outage", interval=10.0)

# Handed to every subscriber after a reconnection: "what you were sent may have gaps; start over".
RESYNC = b'{"type":"resync"}'


class ResilientRedisPubSub(ChannelsBackend):
    """Redis pub/sub with reconnection (see the module's docstring)."""

    def __init__(self, redis: Any, *, max_backoff: float = 5.0) -> None:
        self.redis = redis
        self.max_backoff = max_backoff
        self._topics: set[str] = set()
        self._pubsub: Any = None
        self._wanted = asyncio.Event()
        self.connected = True
        self.reconnections = 0

    async def on_startup(self) -> None:
        pass

    async def on_shutdown(self) -> None:
        await self._drop_connection()

    async def subscribe(self, channels: Iterable[str]) -> None:
        new = set(channels) - self._topics
        self._topics |= new
        self._wanted.set()
        if new and self.connected:
            try:
                await self._connection().subscribe(*new)
            except (RedisError, OSError) as exc:
                # The reader notices too, and subscribes to every topic once Redis is back.
                self._lost(exc)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = set(channels) & self._topics
        self._topics -= gone
        if gone and self._pubsub is not None and self.connected:
            try:
                await self._pubsub.unsubscribe(*gone)
            except (RedisError, OSError) as exc:
                self._lost(exc)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for topic in set(channels):
                    pipe.publish(topic, data)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            outage_log.warning(
                "live update not published: Redis is unavailable (%s)",
                exc,
                extra={"event": "outage.redis"},
            )

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        backoff = 0.1
        while True:
            if not self._topics:
                self._wanted.clear()
                await self._wanted.wait()
            if self._pubsub is None or not self.connected:
                was_lost = not self.connected
                try:
                    await self._connection().subscribe(*self._topics)
                except (RedisError, OSError) as exc:
                    self._lost(exc)
                    outage_log.warning(
                        "live updates: Redis is still unavailable (%s)",
                        exc,
                        extra={"event": "outage.redis"},
                    )
                    await self._drop_connection()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                self.connected = True
                backoff = 0.1
                if was_lost:
                    self.reconnections += 1
                    log.warning("live updates: Redis is back; clients are sent fresh snapshots")
                    for topic in list(self._topics):
                        yield topic, RESYNC
            try:
                message = await self._connection().get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except (RedisError, OSError, RuntimeError) as exc:
                self._lost(exc)
                await self._drop_connection()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            topic = channel.decode() if isinstance(channel, bytes) else str(channel)
            if topic in self._topics:
                yield topic, message["data"]

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("Redis pub/sub keeps no history")

    def _connection(self) -> Any:
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub()
        return self._pubsub

    def _lost(self, exc: BaseException) -> None:
        if self.connected:
            log.warning("live updates: lost Redis (%s); reconnecting", exc)
        self.connected = False

    async def _drop_connection(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # a dead connection may fail to close; it is gone either way
                log.debug("closing a dead pub/sub connection failed", exc_info=True)
