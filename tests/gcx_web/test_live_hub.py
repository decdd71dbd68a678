"""The process's live hub: one subscription per topic, each message handed to every socket
that follows it by one task; a socket that cannot take a message now holds nobody else up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gcx_web.live.publisher import live_backend, make_channels
from gcx_web.live.sockets import BACKLOG, Follower, LiveHub


class Socket:
    """What a follower uses of a websocket; `stalled` holds each send until it is set."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.stalled = asyncio.Event()
        if not stalled:
            self.stalled.set()

    async def send_data(self, payload: bytes) -> None:
        await self.stalled.wait()
        self.sent.append(payload)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def as_is(event: Any) -> bytes | None:
    return event


@pytest.fixture(name="hub")
async def _hub() -> AsyncIterator[LiveHub]:
    channels = make_channels(live_backend(None))
    async with channels:
        hub = LiveHub(channels)
        yield hub
        await hub.close()


async def test_a_stalled_socket_holds_nobody_up_and_gets_its_messages_in_order(hub):
    quick, stalled = Socket(), Socket(stalled=True)
    one, two = Follower(quick, as_is), Follower(stalled, as_is)
    async with hub.following(["dashboard"], one), hub.following(["dashboard"], two):
        one.start()
        two.start()
        for n in range(3):
            hub.channels.publish(b"m%d" % n, ["dashboard"])
            await asyncio.sleep(0.01)
        assert quick.sent == [b"m0", b"m1", b"m2"]
        assert stalled.sent == []  # its first send waits; the rest wait behind it
        stalled.stalled.set()
        await asyncio.sleep(0.01)
        assert stalled.sent == [b"m0", b"m1", b"m2"]


async def test_a_slow_socket_keeps_only_the_newest_messages(hub):
    stalled = Socket(stalled=True)
    follower = Follower(stalled, as_is)
    async with hub.following(["dashboard"], follower):
        follower.start()
        for n in range(BACKLOG + 10):
            hub.channels.publish(b"m%d" % n, ["dashboard"])
            if n % 50 == 0:
                await asyncio.sleep(0.005)  # the hub hands them out as they come
        await asyncio.sleep(0.05)
        assert len(follower.backlog) == BACKLOG  # bounded: the server's memory is safe
        stalled.stalled.set()
        await asyncio.sleep(0.05)
    # The one in flight, then the newest BACKLOG; the oldest waiting ones were dropped.
    assert stalled.sent == [b"m0"] + [b"m%d" % n for n in range(10, BACKLOG + 10)]


async def test_messages_before_the_first_one_is_sent_wait_for_it(hub):
    socket = Socket()
    follower = Follower(socket, as_is)
    async with hub.following(["dashboard"], follower):
        hub.channels.publish(b"early", ["dashboard"])
        await asyncio.sleep(0.01)
        assert socket.sent == []  # the first message (a snapshot) is still being made
        socket.sent.append(b"first")
        follower.start()
        assert socket.sent == [b"first", b"early"]


async def test_a_failing_render_closes_its_socket_only(hub):
    good, bad = Socket(), Socket()

    async def broken(event: Any) -> bytes:
        raise LookupError("the view is gone")

    one, two = Follower(good, as_is), Follower(bad, broken)
    async with hub.following(["dashboard"], one), hub.following(["dashboard"], two):
        one.start()
        two.start()
        hub.channels.publish(b"m", ["dashboard"])
        await asyncio.sleep(0.01)
        hub.channels.publish(b"n", ["dashboard"])
        await asyncio.sleep(0.01)
    assert good.sent == [b"m", b"n"]
    assert bad.closed == (1011, "live updates failed") and two.gone


async def test_one_subscription_per_topic_while_anyone_follows_it(hub):
    sockets = [Socket() for _ in range(3)]
    followers = [Follower(socket, as_is) for socket in sockets]
    async with hub.following(["application:1"], followers[0]):
        async with hub.following(["application:1", "dashboard"], followers[1]):
            assert hub.reading == {"application:1", "dashboard"}
        assert hub.reading == {"application:1"}
    assert hub.reading == set() and hub.followers == {}
    async with hub.following(["application:1"], followers[2]):  # subscribed again
        followers[2].start()
        hub.channels.publish(b"again", ["application:1"])
        await asyncio.sleep(0.01)
    assert sockets[2].sent == [b"again"]


async def test_a_socket_that_leaves_mid_send_is_let_go(hub):
    stalled = Socket(stalled=True)
    follower = Follower(stalled, as_is)
    async with hub.following(["dashboard"], follower):
        follower.start()
        hub.channels.publish(b"m", ["dashboard"])
        await asyncio.sleep(0.01)
    stalled.stalled.set()  # too late: the send was cancelled as the socket left
    await asyncio.sleep(0.01)
    assert stalled.sent == [] and follower.gone
    assert hub.reading == set()
