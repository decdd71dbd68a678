"""The Redis stream broker, kept listening through Redis restarts and lost consumer groups.

taskiq-redis's `RedisStreamBroker` creates its consumer group once, at startup. When Redis
loses its data (a restart without persistence, a failover to an empty replica) every read
answers NOGROUP, and a worker loops on that error at full speed, logging a traceback each
time, until someone restarts it; a dropped connection is the same loop with another error.
`ResilientStreamBroker.listen` recreates the group (from the start of the stream, so tasks
kicked since the loss are not skipped) and waits out a Redis that is away with a capped
backoff, logging one line per ten seconds. Kicks lost with Redis's data are not lost work:
the outbox still holds their rows, and the scheduler's sweep kicks them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from gcx_core.logs import throttled

log = logging.getLogger(__name__)
outage_log = throttled(__name__ + ".outage", interval=10.0)
MAX_BACKOFF = 5.0


def _forgiving(ack: Callable[[], Awaitable[None] | None]) -> Callable[[], Awaitable[None]]:
    """An acknowledgement that may fail without an error: a task whose ack was lost with
    Redis is delivered again later, and delivering a notification twice is harmless (a row is
    sent only by the task that claims it)."""

    async def acknowledge() -> None:
        try:
            pending = ack()
            if pending is not None:
                await pending
        except (RedisError, OSError) as exc:
            outage_log.warning(
                "could not acknowledge a task (%s); it may run again",
                exc,
                extra={"event": "outage.redis"},
            )

    return acknowledge


class ResilientStreamBroker(RedisStreamBroker):
    """A `RedisStreamBroker` whose `listen()` survives Redis restarts (module docstring)."""

    async def listen(self) -> AsyncGenerator[Any, None]:
        backoff = 0.1
        while True:
            try:
                async for message in super().listen():
                    backoff = 0.1
                    yield AckableMessage(data=message.data, ack=_forgiving(message.ack))
                return
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    outage_log.warning(
                        "reading tasks from Redis failed: %s", exc, extra={"event": "outage.redis"}
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                log.warning(
                    "the consumer group %r is gone (Redis lost its data); recreating it",
                    self.consumer_group_name,
                )
                await self.recreate_group()
            except (RedisError, OSError) as exc:
                outage_log.warning(
                    "Redis is unavailable (%s); waiting for it",
                    exc,
                    extra={"event": "outage.redis"},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def recreate_group(self) -> None:
        """Create the consumer group again, reading the stream from its start."""
        try:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xgroup_create(
                    self.queue_name, self.consumer_group_name, id="0", mkstream=True
                )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # another worker was quicker: fine
                raise
        except (RedisError, OSError) as exc:
            outage_log.warning(
                "could not recreate the consumer group yet: %s",
                exc,
                extra={"event": "outage.redis"},
            )
            await asyncio.sleep(MAX_BACKOFF / 5)
