"""The request counter that background work yields to."""

from __future__ import annotations

import asyncio
import time

from gcx_core.foreground import Foreground


async def test_settled_returns_when_the_requests_in_progress_answer() -> None:
    foreground = Foreground()
    started = time.monotonic()
    await foreground.settled(5)  # nothing in progress: at once
    assert time.monotonic() - started < 1

    foreground.started()
    foreground.started()
    waiting = asyncio.create_task(foreground.settled(5))
    await asyncio.sleep(0.05)
    foreground.finished()
    await asyncio.sleep(0.05)
    assert not waiting.done()  # one request still in progress
    foreground.finished()
    await asyncio.wait_for(waiting, 1)


async def test_settled_gives_up_after_its_limit() -> None:
    foreground = Foreground()
    foreground.started()
    started = time.monotonic()
    await foreground.settled(0.2)
    assert 0.19 <= time.monotonic() - started < 2
    assert foreground.in_progress == 1


async def test_quiet_wants_a_gap_with_no_request() -> None:
    foreground = Foreground()
    assert await foreground.quiet(idle=0.05, limit=1)  # never busy: quiet

    foreground.started()
    foreground.finished()  # a request just ended: not quiet until 50 ms have passed
    started = time.monotonic()
    assert await foreground.quiet(idle=0.05, limit=1)
    assert time.monotonic() - started >= 0.045

    async def steady_requests() -> None:
        while True:  # a request every 10 ms: never a 100 ms gap
            foreground.started()
            await asyncio.sleep(0.005)
            foreground.finished()
            await asyncio.sleep(0.005)

    load = asyncio.create_task(steady_requests())
    await asyncio.sleep(0.02)  # the requests have begun
    try:
        started = time.monotonic()
        assert not await foreground.quiet(idle=0.1, limit=0.3)
        assert 0.29 <= time.monotonic() - started < 2
    finally:
        load.cancel()
