"""Per-client rate limits in fixed windows, and the client's address as seen through proxies.

Embedded: counters live in the process. Scale-out: in Redis (INCR + EXPIRE), shared by every web
process, so the limit holds across instances.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException

from gcx_core.logs import throttled
from gcx_web.config import Rate

outage_log = throttled(__name__ + ".outage", interval=10.0)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def client_address(
    connection: ASGIConnection[Any, Any, Any, Any], trusted: tuple[Network, ...]
) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
    in X-Forwarded-For that is not itself a trusted proxy."""
    scope = connection.scope
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    found = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
    forwarded = found[0].decode("latin-1") if found else ""
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class MemoryCounter:
    """Fixed-window counters in this process; a period's old windows go when a new one starts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (key, period) -> requests in the period's current window.
        self._counts: dict[tuple[str, int], int] = {}
        self._current: dict[int, int] = {}

    async def hit(self, key: str, seconds: int) -> tuple[int, float]:
        now = self._clock()
        window = int(now // seconds)
        if self._current.get(seconds) != window:
            self._current[seconds] = window
            self._counts = {k: v for k, v in self._counts.items() if k[1] != seconds}
        count = self._counts.get((key, seconds), 0) + 1
        self._counts[(key, seconds)] = count
        return count, (window + 1) * seconds - now


class RedisCounter:
    """Counters shared by every web process through Redis. While Redis cannot be reached, this
    process counts on its own (a MemoryCounter): limits still hold, per process, and a Redis
    restart is never a 500."""

    def __init__(self, redis: Any) -> None:
        from redis.exceptions import RedisError

        self._redis = redis
        self._fallback = MemoryCounter()
        self._unavailable: tuple[type[BaseException], ...] = (RedisError, OSError)

    async def hit(self, key: str, seconds: int) -> tuple[int, float]:
        try:
            return await self._shared(key, seconds)
        except self._unavailable as exc:
            outage_log.warning(
                "rate limits counted in this process: Redis is unavailable (%s)",
                exc,
                extra={"event": "outage.redis"},
            )
            return await self._fallback.hit(key, seconds)

    async def _shared(self, key: str, seconds: int) -> tuple[int, float]:
        now = time.time()
        window = int(now // seconds)
        name = f"gcx:rl:{key}:{seconds}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, seconds + 1)
            count, _ = await pipe.execute()
        return int(count), (window + 1) * seconds - now


class RateLimiter:
    def __init__(
        self, limits: dict[str, Rate | None], counter: Any, trusted: tuple[Network, ...]
    ) -> None:
        self.limits = limits
        self.counter = counter
        self.trusted = trusted

    async def check(self, bucket: str, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Count one request; raise 429 with Retry-After once the client's budget is spent."""
        reset = await self.spend(bucket, client_address(connection, self.trusted))
        if reset is not None:
            raise TooManyRequestsException(
                detail=f"too many requests; try again in {math.ceil(reset)} seconds",
                headers={"Retry-After": str(max(1, math.ceil(reset)))},
            )

    async def spend(self, bucket: str, who: str) -> float | None:
        """Count one request of `who`; None while within the budget, else the seconds until
        the window ends."""
        rate = self.limits.get(bucket)
        if rate is None:
            return None
        count, reset = await self.counter.hit(f"{bucket}:{who}", rate.seconds)
        return reset if count > rate.requests else None


def rate_limited(bucket: str) -> Callable[..., Any]:
    """A `before_request` hook that spends one request of `bucket` for the calling client.

    It runs before the body is read or any parameter parsed. (Not a guard: Litestar copies
    the route handler for every guard call, a cost the hottest lookups need not pay.)
    """

    async def spend(request: Request[Any, Any, Any]) -> None:
        await request.app.state.rate_limiter.check(bucket, request)

    spend.__name__ = f"rate_limited_{bucket}"
    return spend
