"""The notifier's life cycle, its events, and the status / retry commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor
from gcx_core.events import NotificationsQueued
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.storage.tables import notifications
from gcx_notify import plugin as notify_plugin
from gcx_notify.events import NotificationDelivery
from gcx_notify.runtime import Notifier

SEEN: list[object] = []


class Listener:
    @hookimpl
    async def gcx_handle_event(self, event):
        if isinstance(event, NotificationsQueued | NotificationDelivery):
            SEEN.append(event)


@pytest.fixture(name="gcx_extra_plugins")
def _plugins():
    SEEN.clear()
    return [notify_plugin, Listener()]


async def test_queued_and_delivery_events_reach_plugins(gcx, notifier, smtp_sink):
    smtp_sink.refuse("*", "451 later")
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    queued = [e for e in SEEN if isinstance(e, NotificationsQueued)]
    deliveries = [e for e in SEEN if isinstance(e, NotificationDelivery)]
    assert len(queued) == 1 and len(queued[0].notification_ids) == 1
    assert [(d.status, d.attempts) for d in deliveries] == [("retrying", 1)]
    assert "451" in deliveries[0].error


async def test_the_embedded_notifier_runs_its_scheduler(gcx):
    notifier = Notifier(gcx)
    await notifier.start()
    assert notifier.embedded and notifier._scheduler_task is not None
    await asyncio.sleep(0.2)
    assert not notifier._scheduler_task.done()
    await notifier.stop()
    assert notifier._scheduler_task is None


def run_gcx(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCX_", "EMAIL_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "-m", "gcx_core.cli", "--data-dir", str(tmp_path / "cli"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_status_and_retry_commands_on_the_embedded_database(tmp_path):
    from datetime import UTC, datetime

    from gcx_core.storage.database import Database

    assert run_gcx(tmp_path, "migrate").returncode == 0
    now = datetime.now(UTC)

    async def add_dead() -> None:
        db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'cli' / 'gcx.db'}")
        async with db.write() as conn:
            await conn.execute(
                notifications.insert().values(
                    type="status_changed",
                    channel="email",
                    recipient="x@example.com",
                    template="status_changed",
                    context={
                        "business_name": "B",
                        "status": "approved",
                        "tracking_code": "GCX-AAAA-BBBB-CCCC",
                    },
                    dedupe_key="cli-1",
                    status="dead",
                    attempts=4,
                    max_attempts=4,
                    last_error="SMTP 550",
                    created_at=now,
                    updated_at=now,
                )
            )
        await db.dispose()

    asyncio.run(add_dead())
    status = run_gcx(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "dead 1" in status.stdout and "in-process" in status.stdout
    assert "last run of gcx.sweep: never" in status.stdout
    bad = run_gcx(tmp_path, "retry-notifications", "99")
    assert bad.returncode == 2 and "not found" in bad.stderr
    retried = run_gcx(tmp_path, "retry-notifications", "--all-dead")
    assert retried.returncode == 0, retried.stderr
    assert "queued again: 1 notification(s) (1)" in retried.stdout
    after = run_gcx(tmp_path, "status")
    assert "sent 1" in after.stdout and "dead 0" in after.stdout  # captured: no SMTP set
    worker = run_gcx(tmp_path, "worker")
    assert worker.returncode == 2 and "needs GCX_REDIS_URL" in worker.stderr


async def test_embedded_kicks_wake_one_drainer_and_a_sweep_adds_nothing(gcx, smtp_sink):
    notifier = Notifier(gcx)
    notifier.PACE = 30  # a request in progress holds the delivery back for the test's length
    await notifier.start(run_scheduler=False, kick=False)
    gcx.foreground.started()
    await applications.submit(gcx, make_submission(), Actor.applicant())  # kicks its row
    drainer = notifier._drainer
    assert drainer is not None and not drainer.done()
    # No broker task per row: the drainer takes what is due from the outbox.
    assert not notifier.broker._running_tasks
    # A sweep while the delivery is still waiting its turn wakes the same drainer.
    assert await notifier.sweep() == 1
    assert notifier._drainer is drainer
    gcx.foreground.finished()
    await asyncio.wait_for(notifier.idle(), 10)
    assert drainer.done()
    assert len(smtp_sink.messages) == 1
    async with gcx.database.read() as conn:
        statuses = (await conn.execute(sa.select(notifications.c.status))).scalars().all()
    assert statuses == ["sent"]
    await notifier.stop()


async def test_a_backlog_does_not_hold_the_shutdown_up(gcx, smtp_sink):
    for _ in range(10):  # queued before the notifier runs: a backlog of ten rows
        await applications.submit(gcx, make_submission(), Actor.applicant())
    notifier = Notifier(gcx)
    notifier.PACE, notifier.BUSY_BATCH = 0.3, 2
    gcx.foreground.started()  # requests keep coming: two rows per PACE
    await notifier.start(run_scheduler=False)
    while len(smtp_sink.messages) < 2:
        await asyncio.sleep(0.005)
    await notifier.stop()  # the batch in hand has finished; the rest stays in the outbox
    gcx.foreground.finished()
    async with gcx.database.read() as conn:
        statuses = (await conn.execute(sa.select(notifications.c.status))).scalars().all()
    assert "sending" not in statuses
    assert statuses.count("sent") == len(smtp_sink.messages) == 2
    assert statuses.count("pending") == 8
    # The next start takes the rest.
    again = Notifier(gcx)
    await again.start(run_scheduler=False)
    await asyncio.wait_for(again.idle(), 10)
    assert len(smtp_sink.messages) == 10
    await again.stop()


async def test_embedded_delivery_yields_to_requests_in_progress(gcx, smtp_sink):
    notifier = Notifier(gcx)
    notifier.PACE, notifier.BUSY_BATCH = 0.4, 2
    await notifier.start(run_scheduler=False, kick=False)
    foreground = gcx.foreground  # the web app counts its requests here
    foreground.started()  # a request in progress, and it goes on
    for _ in range(6):
        await applications.submit(gcx, make_submission(), Actor.applicant())
    await asyncio.sleep(0.2)
    assert len(smtp_sink.messages) == 0  # nothing during the first PACE while busy
    await asyncio.sleep(0.4)
    # Still busy: BUSY_BATCH rows per PACE.
    assert 2 <= len(smtp_sink.messages) <= 4
    foreground.finished()  # the requests stop: the rest goes at once
    await asyncio.wait_for(notifier.idle(), 5)
    assert len(smtp_sink.messages) == 6
    await notifier.stop()
