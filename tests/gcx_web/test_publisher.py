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
    publisher = QuickPublisher(sink, gcx)
    for event in delivered(gcx, 1):
        publisher.gcx_handle_event(event)
    await asyncio.sleep(0.05)
    began = time.monotonic()
    publisher.gcx_handle_event(transition(gcx, 7))
    await asyncio.wait_for(publisher.idle(), 10)
    dashboards = sink.dashboards()
    assert len(dashboards) == 1  # one snapshot for the outcome and the transition
    assert dashboards[0][0] - began < QuickPublisher.DELAY / 2
    assert [c["application_id"] for c in dashboards[0][1]["data"]["changes"]] == [7]
    await publisher.close()
