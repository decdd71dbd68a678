"""Foreground work in progress (web requests), so background work in the same process can yield.

One process serves requests and, embedded, also delivers notifications and broadcasts live
updates. Both of those can wait a few milliseconds; a person waiting for a page should not.
"""

from __future__ import annotations

import asyncio
import time


class Foreground:
    """The requests in progress in this process, and when one last started or ended.

    The web app counts its requests here. A broadcast waits for them to answer (`settled`);
    the embedded notification worker delivers in the gaps between them (`quiet`).
    """

    def __init__(self) -> None:
        self.in_progress = 0
        self.last_active = 0.0  # time.monotonic() when a request last started or ended
        self._waiters: list[asyncio.Future[None]] = []

    def started(self) -> None:
        self.in_progress += 1
        self.last_active = time.monotonic()

    def finished(self) -> None:
        self.in_progress -= 1
        self.last_active = time.monotonic()
        if self.in_progress == 0:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def settled(self, limit: float) -> None:
        """Return when no request is in progress, or after `limit` seconds."""
        if self.in_progress == 0:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await asyncio.wait([waiter], timeout=limit)
        waiter.cancel()

    async def quiet(self, idle: float, limit: float) -> bool:
        """Wait until no request has been in progress for `idle` seconds (True), or until
        `limit` seconds have passed without such a gap (False: the process is busy)."""
        deadline = time.monotonic() + limit
        while True:
            now = time.monotonic()
            if self.in_progress == 0 and now - self.last_active >= idle:
                return True
            if now >= deadline:
                return False
            if self.in_progress:
                await self.settled(deadline - now)
            else:
                await asyncio.sleep(min(idle - (now - self.last_active), deadline - now))
