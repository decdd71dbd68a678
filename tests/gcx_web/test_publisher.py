"""When the publisher broadcasts dashboard snapshots: a lone change at once; changes that come
during the pause after a snapshot share the next one; counts that move without a transition
(deliveries) wait a little and share one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from gcx_core.entities import Actor
from gcx_core.events import CountersChanged, NotificationDelivery
from gcx_core.system import Gcx
from gcx_core.workflow import TransitionEvent
from gcx_web.live.publisher import Publisher
from gcx_web.live.sockets import Listeners


class Sink:
    """What the publisher writes to (the channels plugin, or Redis in scale-out): recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any], list[str]]] = []

    def publish(self, data: bytes, channels: list[str]) -> None:
        self.sent.append((time.monotonic(), msgspec.json.decode(data), channels))

    def dashboards(self) -> list[tuple[float, dict[str, Any], list[str]]]:
        return [s for s in self.sent if s[2] == ["dashboard"]]


def transition(gcx: Gcx, app_id: int) -> TransitionEvent:
    return TransitionEvent(
        action="start_review",
        application_id=app_id,
        tracking_code=f"GCX-TEST-{app_id}",
        from_status="pending_review",
        to_status="under_review",
        actor=Actor.system("test"),
        at=gcx.now(),
    )


class GatedPublisher(Publisher):
    """A publisher whose pause between snapshots lasts until the test opens `gate`."""

    def __init__(self, channels: Any, gcx: Gcx) -> None:
        super().__init__(channels, gcx)
        self.gate = asyncio.Event()
        self.pausing = asyncio.Event()

    async def wait_between(self) -> None:
        self.pausing.set()
        await self.gate.wait()
        self.gate.clear()
        self.pausing.clear()


async def test_a_lone_change_is_published_without_waiting_for_the_pause(gcx: Gcx) -> None:
    sink = Sink()
    publisher = GatedPublisher(sink, gcx)
    publisher.gcx_handle_event(transition(gcx, 1))
    await asyncio.wait_for(publisher.pausing.wait(), 10)  # published, then pausing
    assert len(sink.dashboards()) == 1
    (_, message, _) = sink.dashboards()[0]
    assert [c["application_id"] for c in message["data"]["changes"]] == [1]
    # The application's own channel heard the transition too, raw.
    assert any(s[2] == ["application:1"] for s in sink.sent)
    publisher.gate.set()
    await asyncio.wait_for(publisher.idle(), 10)
    assert len(sink.dashboards()) == 1  # nothing changed since: no second snapshot
    await publisher.close()


async def test_a_burst_shares_snapshots_and_loses_no_change(gcx: Gcx) -> None:
    sink = Sink()
    publisher = GatedPublisher(sink, gcx)
    publisher.gcx_handle_event(transition(gcx, 1))
    await asyncio.wait_for(publisher.pausing.wait(), 10)
    for app_id in range(2, 101):  # a burst while the publisher pauses after the first
        publisher.gcx_handle_event(transition(gcx, app_id))
        if app_id % 10 == 0:
            await asyncio.sleep(0)
    assert len(sink.dashboards()) == 1
    publisher.gate.set()  # the burst goes out together
    await asyncio.wait_for(publisher.pausing.wait(), 10)
    publisher.gate.set()
    await asyncio.wait_for(publisher.idle(), 10)
    dashboards = sink.dashboards()
    assert len(dashboards) == 2
    changes = [[c["application_id"] for c in m["data"]["changes"]] for _, m, _ in dashboards]
    assert changes == [[1], list(range(2, 101))]  # every transition, once, in order
    seqs = [m["seq"] for _, m, _ in sink.sent]
    assert seqs == sorted(seqs)
    await publisher.close()


async def test_embedded_messages_nobody_follows_are_not_built(gcx: Gcx) -> None:
    """In one process every listener is local: no listener, no snapshot, no message."""
    sink = Sink()
    listeners = Listeners()
    publisher = Publisher(sink, gcx, listeners)  # type: ignore[arg-type]
    assert publisher.audience(["dashboard", "application:1"]) == []
    publisher.gcx_handle_event(transition(gcx, 1))
    await asyncio.wait_for(publisher.idle(), 10)
    assert sink.sent == []

    with listeners.following(["dashboard"]):  # as `follow` counts a websocket
        assert publisher.audience(["dashboard", "application:1"]) == ["dashboard"]
        publisher.gcx_handle_event(transition(gcx, 2))
        await asyncio.wait_for(publisher.idle(), 10)
    assert [c["application_id"] for c in sink.dashboards()[0][1]["data"]["changes"]] == [2]
    assert [s[2] for s in sink.sent] == [["dashboard"]]
    assert publisher.audience(["dashboard"]) == []  # the websocket left
    await publisher.close()


def delivered(gcx: Gcx, notification_id: int) -> list[Any]:
    """What a worker fires when a notification is sent: the outcome and the counters moved."""
    at = gcx.now()
    return [
        NotificationDelivery(notification_id, "sent", 1, at, "", 1, "submission_received"),
        CountersChanged(at),
    ]


class QuickPublisher(Publisher):
    DELAY = 0.3


class CoveredPublisher(QuickPublisher):
    COVERED_AFTER = 0.05


async def test_delivery_outcomes_wait_and_share_one_snapshot(gcx: Gcx) -> None:
    """Counts that moved without a transition reach dashboards within DELAY, together."""
    sink = Sink()
    publisher = QuickPublisher(sink, gcx)
    began = time.monotonic()
    for n in range(1, 5):  # sending/sent pairs from a worker
        for event in delivered(gcx, n):
            publisher.gcx_handle_event(event)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert sink.dashboards() == []  # still gathering
    await asyncio.wait_for(publisher.idle(), 10)
    dashboards = sink.dashboards()
    assert len(dashboards) == 1
    assert dashboards[0][0] - began >= QuickPublisher.DELAY
    assert dashboards[0][1]["data"]["changes"] == []
    # The notifications stream heard each outcome at once, not delayed.
    assert sum(s[2][0] == "notifications" for s in sink.sent) == 4
    await publisher.close()


async def test_a_transition_sends_the_waiting_snapshot_at_once(gcx: Gcx) -> None:
    sink = Sink()
    publisher = CoveredPublisher(sink, gcx)
    for event in delivered(gcx, 1):
        publisher.gcx_handle_event(event)
    await asyncio.sleep(0.1)
    began = time.monotonic()
    publisher.gcx_handle_event(transition(gcx, 7))
    publisher.heard_snapshot()  # shows the delivery, not the transition: that goes out
    await asyncio.wait_for(publisher.idle(), 10)
    dashboards = sink.dashboards()
    assert len(dashboards) == 1  # one snapshot for the outcome and the transition
    assert dashboards[0][0] - began < CoveredPublisher.DELAY / 2
    assert [c["application_id"] for c in dashboards[0][1]["data"]["changes"]] == [7]
    await publisher.close()


async def test_a_snapshot_heard_from_elsewhere_replaces_the_waiting_one(gcx: Gcx) -> None:
    """In scale-out every process counts the whole database: a snapshot another process
    published after this one's change showed it, and this one sends none of its own."""
    sink = Sink()
    publisher = CoveredPublisher(sink, gcx)
    for event in delivered(gcx, 1):
        publisher.gcx_handle_event(event)
    await asyncio.sleep(0.1)  # past COVERED_AFTER
    began = time.monotonic()
    publisher.heard_snapshot()
    await asyncio.wait_for(publisher.idle(), 10)
    assert time.monotonic() - began < CoveredPublisher.DELAY / 2  # no longer waiting
    assert sink.dashboards() == []
    # The next change waits its DELAY again, and goes out when nothing covers it.
    began = time.monotonic()
    for event in delivered(gcx, 2):
        publisher.gcx_handle_event(event)
    await asyncio.wait_for(publisher.idle(), 10)
    assert len(sink.dashboards()) == 1
    assert sink.dashboards()[0][0] - began >= CoveredPublisher.DELAY
    await publisher.close()


async def test_a_snapshot_heard_too_soon_after_a_change_covers_nothing(gcx: Gcx) -> None:
    """One heard within COVERED_AFTER of a change may have been read before it: that change
    waits on, its DELAY counted from when it was made."""
    sink = Sink()
    publisher = CoveredPublisher(sink, gcx)
    for event in delivered(gcx, 1):
        publisher.gcx_handle_event(event)
    publisher.heard_snapshot()  # at once: it may predate the change
    await asyncio.sleep(0.1)
    second = time.monotonic()
    for event in delivered(gcx, 2):
        publisher.gcx_handle_event(event)
    publisher.heard_snapshot()  # shows the first change, not the second
    await asyncio.wait_for(publisher.idle(), 10)
    assert len(sink.dashboards()) == 1
    assert sink.dashboards()[0][0] - second >= CoveredPublisher.DELAY


async def test_a_worker_hears_the_snapshots_of_other_processes_through_redis(
    gcx_settings: Any, gcx_redis_url: str
) -> None:
    """A worker's publisher (`redis_publishing`) hears the dashboard topic on Redis: its
    delivery counts ride on a web process's snapshot instead of a broadcast of their own."""
    import attrs
    from redis.asyncio import Redis

    from gcx_core.plugins import make_plugin_manager
    from gcx_web.live.publisher import redis_publishing

    settings = attrs.evolve(gcx_settings, redis_url=gcx_redis_url)
    redis = Redis.from_url(gcx_redis_url)
    watch = redis.pubsub()
    await watch.subscribe("dashboard")
    try:
        pm = make_plugin_manager(load_entry_points=False)
        async with (
            await Gcx.open(settings, plugin_manager=pm) as gcx,
            redis_publishing(gcx) as publisher,
        ):
            publisher.DELAY, publisher.COVERED_AFTER = 3.0, 0.05
            await asyncio.sleep(0.3)  # its subscription reaches Redis
            for event in delivered(gcx, 1):
                publisher.gcx_handle_event(event)
            await asyncio.sleep(0.1)
            began = time.monotonic()
            await redis.publish("dashboard", b'{"type":"dashboard","seq":1}')  # a web's
            await asyncio.wait_for(publisher.idle(), 10)
            assert time.monotonic() - began < 2  # it stopped waiting once it heard
        seen = []
        until = time.monotonic() + 1  # (a subscription's confirmation also reads as None)
        while time.monotonic() < until:
            message = await watch.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                seen.append(message["data"])
        assert seen == [b'{"type":"dashboard","seq":1}']  # nothing of the worker's own
    finally:
        await watch.aclose()
        await redis.aclose()
