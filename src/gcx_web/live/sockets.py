"""Websockets that follow topics: who listens in this process, and forwarding until they leave."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.connection import ASGIConnection


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

    `render` may return None to send nothing. A reader task watches for the client's
    disconnect, so a closed socket never keeps its subscription alive.
    """
    state = socket.app.state
    gauge = state.gcx.metrics.websockets.labels(names[0].partition(":")[0] if names else "none")
    gauge.inc()
    try:
        with state.listeners.following(names):
            await _forward(socket, state.channels, names, render)
    finally:
        gauge.dec()


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
