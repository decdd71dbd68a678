"""The notifier's life cycle, its events, and the status / retry commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa
from taskiq import TaskiqMessage, TaskiqMiddleware

from gcx_core.entities import Actor
from gcx_core.events import NotificationDelivery, NotificationsQueued
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.storage.tables import notifications
from gcx_notify import plugin as notify_plugin
from gcx_notify import runtime
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
    assert notifier.embedded and notifier.scheduling
    await asyncio.sleep(0.2)
    assert notifier.scheduling  # still running
    await notifier.stop()
    assert not notifier.scheduling


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


class TaskLog(TaskiqMiddleware):
    """Records the name and arguments of every task the broker runs."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[tuple[str, list[Any]]] = []

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.ran.append((message.task_name, list(message.args)))
        return message


def hold_deliveries(notifier: Notifier) -> asyncio.Event:
    """Deliveries wait for the returned event before sending."""
    gate = asyncio.Event()
    send = notifier.deliverer.send_claimed

    async def held(n: Any) -> Any:
        await gate.wait()
        return await send(n)

    notifier.deliverer.send_claimed = held  # type: ignore[method-assign]
    return gate


async def statuses(gcx) -> list[str]:
    async with gcx.database.read() as conn:
        query = sa.select(notifications.c.status).order_by(notifications.c.id)
        return list((await conn.execute(query)).scalars())


async def test_embedded_delivery_runs_deliver_tasks_on_the_broker(gcx, smtp_sink):
    notifier = Notifier(gcx)
    log = TaskLog()
    notifier.broker.add_middlewares(log)
    await notifier.start(run_scheduler=False, kick=False)
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await asyncio.wait_for(notifier.idle(), 10)
    assert log.ran == [("gcx.deliver", [[1]])]  # the committed row, by its id
    assert len(smtp_sink.messages) == 1 and await statuses(gcx) == ["sent"]
    assert notifier.in_flight == 0
    await notifier.stop()


async def test_embedded_tasks_in_flight_are_bounded_and_the_rest_is_swept_after(
    gcx, smtp_sink, monkeypatch
):
    monkeypatch.setattr(runtime, "EMBEDDED_IN_FLIGHT", 2)
    notifier = Notifier(gcx)
    log = TaskLog()
    notifier.broker.add_middlewares(log)
    gate = hold_deliveries(notifier)
    await notifier.start(run_scheduler=False, kick=False)
    for _ in range(5):
        await applications.submit(gcx, make_submission(), Actor.applicant())
    assert notifier.in_flight == 2  # three rows wait in the outbox
    assert await statuses(gcx) == ["sending", "sending", "pending", "pending", "pending"]
    gate.set()
    await asyncio.wait_for(notifier.idle(), 10)
    assert await statuses(gcx) == ["sent"] * 5 and len(smtp_sink.messages) == 5
    # Two tasks for the first two rows; the sweep after them kicked the other three together.
    assert log.ran == [("gcx.deliver", [[1]]), ("gcx.deliver", [[2]]), ("gcx.deliver", [[3, 4, 5]])]
    await notifier.stop()


async def test_a_backlog_does_not_hold_the_shutdown_up(gcx, smtp_sink, monkeypatch):
    monkeypatch.setattr(runtime, "EMBEDDED_IN_FLIGHT", 1)
    monkeypatch.setattr(runtime, "SWEEP_BATCH", 2)
    for _ in range(10):  # queued before the notifier runs: a backlog of ten rows
        await applications.submit(gcx, make_submission(), Actor.applicant())
    notifier = Notifier(gcx)
    gate = hold_deliveries(notifier)
    await notifier.start(run_scheduler=False)  # its sweep kicks one task of two rows
    stopping = asyncio.create_task(notifier.stop())
    gate.set()
    await asyncio.wait_for(stopping, 10)  # the task in flight finishes; nothing else starts
    assert await statuses(gcx) == ["sent"] * 2 + ["pending"] * 8
    assert len(smtp_sink.messages) == 2
    # The next start takes the rest.
    again = Notifier(gcx)
    await again.start(run_scheduler=False)
    await asyncio.wait_for(again.idle(), 10)
    assert len(smtp_sink.messages) == 10
    await again.stop()


async def test_abandoned_draft_files_expire_by_schedule(gcx, notifier, gcx_clock):
    from gcx_core.services.documents import keep_draft_file
    from gcx_notify.runtime import SCHEDULES

    assert dict(SCHEDULES)["gcx.expire_drafts"] == "41 * * * *"
    key = await keep_draft_file(gcx, b"%PDF-1.4 abandoned")
    assert await gcx.files.exists(key)
    gcx_clock.advance(hours=gcx.settings.draft_file_hours + 1)
    task = await notifier.expire_drafts_task.kiq()
    assert (await task.wait_result(timeout=10)).return_value == 1
    assert not await gcx.files.exists(key)


def sweep_slot() -> Any:
    from taskiq import ScheduledTask

    return ScheduledTask(
        task_name="gcx.sweep",
        labels={},
        args=[],
        kwargs={},
        schedule_id="gcx.sweep",
        cron="* * * * *",
    )


async def job_rows(gcx) -> list[Any]:
    import sqlalchemy as sa

    from gcx_core.storage.tables import job_runs

    async with gcx.database.read() as conn:
        return list(await conn.execute(sa.select(job_runs)))


async def test_a_scheduled_run_records_when_it_finished(gcx, notifier):
    scheduler = notifier.scheduler
    await scheduler.on_ready(None, sweep_slot())
    await notifier.idle()
    (row,) = await job_rows(gcx)
    assert row.run_key.startswith("gcx.sweep:") and row.finished_at is not None
    # The same slot again (another scheduler, or a restart in the same minute): skipped.
    await scheduler.on_ready(None, sweep_slot())
    await notifier.idle()
    assert len(await job_rows(gcx)) == 1


async def test_a_slot_that_could_not_be_sent_is_not_counted_as_sent(gcx, monkeypatch):
    from taskiq import InMemoryBroker

    class Unreachable(InMemoryBroker):
        async def kick(self, message):
            raise ConnectionError("the broker is away")

    notifier = Notifier(gcx, Unreachable(cast_types=False))
    monkeypatch.setattr(notifier.scheduler, "SEND_ATTEMPTS", 2)
    await notifier.start(run_scheduler=False, kick=False)
    try:
        await notifier.scheduler.on_ready(None, sweep_slot())
    finally:
        await notifier.stop()
    assert await job_rows(gcx) == []  # released: the slot may run again


async def test_the_minute_deadline_job_backfills_then_runs_and_mails(
    gcx, notifier, gcx_clock, smtp_sink
):
    """The scheduled `gcx.deadlines` task: its first run writes the deadlines a database
    from before them lacks, then the due steps go out as mail through the outbox."""
    from gcx_core.storage.tables import deadlines
    from gcx_notify.runtime import SCHEDULES

    assert dict(SCHEDULES)["gcx.deadlines"] == "* * * * *"
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await applications.act(gcx, app.id, "start_review", Actor.system("t"))
    await applications.act(
        gcx,
        app.id,
        "request_documents",
        Actor.system("t"),
        params={"requirement_codes": ["tax_clearance"], "message": "Please send it"},
    )
    async with gcx.database.write() as conn:
        await conn.execute(deadlines.delete())  # as if written before deadlines existed
    await notifier.idle()
    before = len(smtp_sink.messages)
    gcx_clock.advance(days=23, minutes=1)
    task = await notifier.deadlines_task.kiq()
    assert (await task.wait_result(timeout=10)).return_value == 1  # one reminder
    await notifier.idle()
    mails = smtp_sink.messages[before:]
    assert [m["To"] for m in mails] == [app.contact.email]
    assert "documents due by" in mails[0]["Subject"]
    async with gcx.database.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(deadlines))).scalar() == 1
