"""The notification engine of one process: channels, renderer, taskiq broker, tasks, schedules.

Both modes run the same tasks: `gcx.deliver` for the rows of each commit, and the scheduled
sweep, reconciliation and cleanup. Embedded mode: an InMemoryBroker runs them inside the web
process and the scheduler runs as a background task there. Scale-out mode (a Redis URL): a
RedisStreamBroker carries the tasks to `gcx worker` processes, and one `gcx scheduler` sends
the scheduled ones; every scheduled run is recorded per schedule and minute in `job_runs`, so
a second scheduler never doubles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from taskiq import AsyncBroker, InMemoryBroker, ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.api import run_scheduler_task
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq.schedule_sources import LabelScheduleSource

from gcx_core.events import NotificationsQueued
from gcx_core.logs import throttled
from gcx_core.plugins import hookimpl, register_named
from gcx_core.services import deadlines, renewals
from gcx_core.services.dashboard import reconcile_counters
from gcx_core.services.documents import expire_draft_files
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import job_runs, notifications
from gcx_core.system import Gcx
from gcx_notify.engine import Deliverer
from gcx_notify.render import Renderer
from gcx_notify.storage import captured_messages

log = logging.getLogger(__name__)
outage_log = throttled(__name__ + ".outage", interval=10.0)
T = TypeVar("T")
TASK_TIMEOUT = 300  # seconds; the Redis idle timeout below is longer than any task
# Rows per deliver task when a sweep kicks a backlog: a task sends its rows concurrently, and
# several tasks run at once, so SMTP connections stay busy while a lease covers every row.
SWEEP_BATCH = 100
# Embedded: deliver tasks in flight at most. An InMemoryBroker starts every task it is given at
# once, so past this many the rows wait in the outbox (where they are safe anyway) and the
# sweep kicks them as soon as the tasks in flight have finished.
EMBEDDED_IN_FLIGHT = 50
SCHEDULES = (
    ("gcx.sweep", "* * * * *"),
    ("gcx.reconcile", "*/5 * * * *"),
    ("gcx.cleanup", "17 3 * * *"),
    ("gcx.expire_drafts", "41 * * * *"),
    ("gcx.deadlines", "* * * * *"),
)


QUEUE = "gcx:notify"
GROUP = "gcx"


def make_broker(gcx: Gcx) -> AsyncBroker:
    """The broker the settings ask for: Redis streams in scale-out, in-memory otherwise."""
    url = gcx.settings.broker_url
    if not url:
        return InMemoryBroker(max_async_tasks=EMBEDDED_IN_FLIGHT, cast_types=False)
    from gcx_notify.stream import ResilientStreamBroker

    return ResilientStreamBroker(
        url,
        queue_name=QUEUE,
        consumer_group_name=GROUP,
        idle_timeout=15 * 60_000,
        maxlen=100_000,
        xread_count=10,
    )


def collect_channels(gcx: Gcx, notifier: Notifier) -> dict[str, Any]:
    factories: dict[str, Any] = {}
    gcx.plugins.hook.gcx_notify_register_channels(
        register=lambda name, factory: factories.__setitem__(name, factory)
    )
    return {name: factory(notifier) for name, factory in factories.items()}


class SlotScheduler(TaskiqScheduler):
    """Sends each schedule's slot once across every scheduler, and only counts it sent once
    it was: the slot is claimed in `job_runs` (one row per schedule and minute; a second
    scheduler's claim fails and it skips), the task is kicked, with a few retries while the
    broker is away, and a slot that could not be sent is released again. The task writes
    `finished_at` on its row when it has run."""

    SEND_ATTEMPTS = 4

    def __init__(self, broker: AsyncBroker, notifier: Notifier) -> None:
        super().__init__(broker, [LabelScheduleSource(broker)])
        self.notifier = notifier

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        slot = self.notifier.gcx.now().strftime("%Y%m%dT%H%M")
        run_key = f"{task.schedule_id}:{slot}"
        if not await self.notifier.claim_run(run_key):
            self._settled(task, slot, "skipped", "already sent by another scheduler")
            return
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task.task_name, self.broker, task.labels
        ).with_labels(schedule_id=task.schedule_id)
        for attempt in range(self.SEND_ATTEMPTS):
            try:
                await kicker.kiq(*task.args, run_key=run_key, **task.kwargs)
            except Exception as exc:
                outage_log.warning(
                    "schedule %s slot %s: sending failed (%s)", task.schedule_id, slot, exc
                )
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            self._settled(task, slot, "sent", "sent")
            return
        await self.notifier.release_run(run_key)
        self._settled(
            task, slot, "failed", "not sent; the slot is free for the next run", logging.ERROR
        )

    def _settled(
        self, task: ScheduledTask, slot: str, outcome: str, said: str, level: int = logging.INFO
    ) -> None:
        """Log a slot's outcome (event `schedule.<outcome>`) and count it."""
        log.log(
            level,
            "schedule %s slot %s: %s",
            task.schedule_id,
            slot,
            said,
            extra={"event": f"schedule.{outcome}"},
        )
        self.notifier.gcx.metrics.scheduler_runs.labels(task.schedule_id, outcome).inc()


class Notifier:
    """Owns delivery for one process. Registered as a plugin so committed events reach it."""

    def __init__(self, gcx: Gcx, broker: AsyncBroker | None = None) -> None:
        self.gcx = gcx
        self.broker = broker or make_broker(gcx)
        dirs = [d for found in gcx.plugins.hook.gcx_notify_template_dirs() for d in (found or [])]
        self.renderer = Renderer(gcx, dirs)
        self.channels = collect_channels(gcx, self)
        self.deliverer = Deliverer(gcx, self.channels, self.renderer)
        self._register_tasks()
        self.scheduler = SlotScheduler(self.broker, self)
        self._scheduler_task: asyncio.Task[None] | None = None
        # Embedded: deliver tasks kicked and not yet finished, and whether rows were left in
        # the outbox for the sweep because too many were.
        self.in_flight = 0
        self._left_for_sweep = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._follow_up: asyncio.Task[int] | None = None
        self._started = False
        # Deliver tasks running in this process (a worker's, at shutdown).
        self.running: set[asyncio.Task[Any]] = set()
        self.stopping = False
        # Whether this process's deadline passes have written the missing deadlines yet.
        self.backfilled = False

    @property
    def scheduling(self) -> bool:
        """Whether this notifier runs the scheduler in its own process."""
        return self._scheduler_task is not None and not self._scheduler_task.done()

    @property
    def embedded(self) -> bool:
        return isinstance(self.broker, InMemoryBroker)

    async def start(self, *, run_scheduler: bool | None = None, kick: bool = True) -> None:
        """Start the broker (and, embedded, the scheduler); then kick what is already due."""
        await self.broker.startup()
        register_named(self.gcx.plugins, self, "gcx_notify.notifier")
        self._started = True
        if run_scheduler if run_scheduler is not None else self.embedded:
            self._scheduler_task = asyncio.create_task(
                run_scheduler_task(self.scheduler, run_startup=False)
            )
        if kick:
            await self.sweep()

    async def stop(self) -> None:
        """Stop scheduling, let running tasks and the batch in hand finish, close the channels.

        Rows still due stay in the outbox for the next start (or another worker): a backlog
        never holds a shutdown up.
        """
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            await asyncio.gather(self._scheduler_task, return_exceptions=True)
            self._scheduler_task = None
        if self._started:
            self.gcx.plugins.unregister(self)
            self._started = False
        await self.idle()
        await self.broker.shutdown()
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.close()

    async def wait_running(self, seconds: float) -> None:
        """Wait up to `seconds` for the deliver tasks running here to finish."""
        tasks = [t for t in self.running if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    async def abandon_running(self) -> int:
        """Cancel the deliver tasks still running and hand their rows back to the outbox;
        returns how many rows went back."""
        self.stopping = True
        tasks = [t for t in self.running if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return await self.deliverer.release()

    async def idle(self) -> None:
        """Embedded mode: wait until no task runs, including tasks started while waiting (a
        delivery can queue more: a dead letter alerts admins)."""
        broker = self.broker
        if not isinstance(broker, InMemoryBroker):
            return
        while True:
            await self._idle.wait()
            await broker.wait_all()
            if self._idle.is_set():
                return

    @hookimpl
    async def gcx_handle_event(self, event: Any) -> None:
        if isinstance(event, NotificationsQueued):
            await self.kick(*event.notification_ids)

    async def kick(self, *notification_ids: int) -> bool:
        """Have these rows delivered: one deliver task for them on the broker. Embedded, with
        EMBEDDED_IN_FLIGHT tasks in flight already, they stay in the outbox for the sweep that
        follows those tasks (False). When the broker cannot take the task (Redis is away),
        they stay in the outbox too, for the next sweep (False; one log line per ten
        seconds): the kick is a hint, the outbox is the truth."""
        if not notification_ids:
            return True
        if self.embedded:
            if self.in_flight >= EMBEDDED_IN_FLIGHT:
                self._left_for_sweep = True
                return False
            self.in_flight += 1
            self._idle.clear()
        try:
            await self.deliver_task.kiq(list(notification_ids))
        except SendTaskError as exc:
            if self.embedded:
                self._finished_one()
            outage_log.warning(
                "could not hand notifications to the broker (%s); the sweep sends them later",
                exc.__cause__ or exc,
            )
            return False
        except BaseException:
            if self.embedded:
                self._finished_one()
            raise
        return True

    def _finished_one(self) -> None:
        self.in_flight -= 1
        self._settle()

    def _settle(self) -> None:
        """Once nothing is in flight: sweep what was left in the outbox, or be idle."""
        if self.in_flight or (self._follow_up is not None and not self._follow_up.done()):
            return
        if self._left_for_sweep and self._started:
            self._left_for_sweep = False
            self._follow_up = asyncio.get_running_loop().create_task(self.sweep())
            self._follow_up.add_done_callback(self._swept)
            return
        self._idle.set()

    def _swept(self, task: asyncio.Task[int]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # The rows stay due; the minute's sweep tries again.
            log.error("sweeping the outbox failed", exc_info=task.exception())
        self._settle()

    # -- tasks ----------------------------------------------------------------------------

    def _register_tasks(self) -> None:
        # taskiq wants plain functions (it renames them), so each task is a closure over self.
        async def deliver(notification_ids: list[int] | int) -> list[str | None]:
            # One task per commit's rows (a submission queues four); a bare id is one row.
            ids = [notification_ids] if isinstance(notification_ids, int) else notification_ids
            current = asyncio.current_task()
            if current is not None:
                self.running.add(current)
            try:
                statuses = await self.deliverer.deliver_many(ids)
            except asyncio.CancelledError:
                if not self.stopping:
                    raise
                # A shutdown that could not wait: the rows go back to the outbox
                # (abandon_running), and the task ends as done, not as an error.
                return [None for _ in ids]
            finally:
                self.running.discard(current)
                if self.embedded:
                    self._finished_one()
            return [str(s) if s is not None else None for s in statuses]

        async def sweep(run_key: str | None = None) -> int:
            return await self.finish_run(run_key, await self.sweep())

        async def reconcile(run_key: str | None = None) -> bool:
            return await self.finish_run(run_key, await reconcile_counters(self.gcx))

        async def cleanup(run_key: str | None = None) -> int:
            return await self.finish_run(run_key, await self.cleanup())

        async def expire_drafts(run_key: str | None = None) -> int:
            return await self.finish_run(run_key, await expire_draft_files(self.gcx))

        async def run_deadlines(run_key: str | None = None) -> int:
            return await self.finish_run(run_key, await self.run_deadlines())

        register = self.broker.register_task
        self.deliver_task = register(deliver, "gcx.deliver", timeout=TASK_TIMEOUT)
        self.sweep_task = register(
            sweep, "gcx.sweep", timeout=TASK_TIMEOUT, schedule=[_cron("gcx.sweep")]
        )
        self.reconcile_task = register(
            reconcile, "gcx.reconcile", timeout=TASK_TIMEOUT, schedule=[_cron("gcx.reconcile")]
        )
        self.cleanup_task = register(
            cleanup, "gcx.cleanup", timeout=TASK_TIMEOUT, schedule=[_cron("gcx.cleanup")]
        )
        self.deadlines_task = register(
            run_deadlines,
            "gcx.deadlines",
            timeout=TASK_TIMEOUT,
            schedule=[_cron("gcx.deadlines")],
        )
        self.expire_drafts_task = register(
            expire_drafts,
            "gcx.expire_drafts",
            timeout=TASK_TIMEOUT,
            schedule=[_cron("gcx.expire_drafts")],
        )

    async def run_deadlines(self) -> int:
        """The minute's deadline pass: the steps due now, then the overdue and ageing figures.
        A process's first pass also writes deadlines missing for applications already waiting
        (a new policy, or a database from before deadlines)."""
        if not self.backfilled:
            written = await deadlines.backfill(self.gcx)
            if written:
                log.info(
                    "wrote %d missing deadline(s)", written, extra={"event": "deadline.backfill"}
                )
            self.backfilled = True
        report = await deadlines.run_due(self.gcx)
        if report.total:
            log.info(
                "deadlines: %d reminder(s), %d passed, %d action(s), %d failed",
                report.reminded,
                report.passed,
                report.acted,
                report.failed,
                extra={"event": "deadline.pass"},
            )
        renewed = await renewals.run_due(self.gcx)
        if renewed.total:
            log.info(
                "documents: %d renewal reminder(s), %d expired",
                renewed.reminded,
                renewed.expired,
                extra={"event": "renewal.pass"},
            )
        await deadlines.refresh_figures(self.gcx)
        return report.total + renewed.total

    async def sweep(self) -> int:
        """Kick every due row: retries whose time came, expired leases, anything never kicked.

        Returns how many rows were kicked; embedded, a sweep stops at EMBEDDED_IN_FLIGHT
        tasks and the rest is kicked when those have finished.
        """
        kicked, after = 0, 0
        while ids := await self.deliverer.due_ids(limit=1000, after=after):
            for start in range(0, len(ids), SWEEP_BATCH):
                batch = ids[start : start + SWEEP_BATCH]
                if not await self.kick(*batch):
                    return kicked
                kicked += len(batch)
            after = ids[-1]
        return kicked

    async def cleanup(self) -> int:
        """Delete sent notifications older than the retention period; dead ones are kept."""
        cutoff = self.gcx.now() - timedelta(days=self.gcx.settings.notification_retention_days)
        old = sa.select(notifications.c.id).where(
            notifications.c.status == "sent", notifications.c.sent_at < cutoff
        )
        async with self.gcx.database.write() as conn:
            await conn.execute(
                captured_messages.delete().where(captured_messages.c.notification_id.in_(old))
            )
            deleted = (
                await conn.execute(notifications.delete().where(notifications.c.id.in_(old)))
            ).rowcount
            await bookkeeping.bump_counters(
                conn, {bookkeeping.NOTIFICATION_PREFIX + "sent": -deleted}
            )
            await conn.execute(job_runs.delete().where(job_runs.c.started_at < cutoff))
        return deleted

    async def finish_run(self, run_key: str | None, result: T) -> T:
        """Record that a scheduled run finished (its row's `finished_at`); returns `result`."""
        if run_key is not None:
            async with self.gcx.database.write() as conn:
                await conn.execute(
                    job_runs.update()
                    .where(job_runs.c.run_key == run_key)
                    .values(finished_at=self.gcx.now())
                )
        return result

    async def release_run(self, run_key: str) -> None:
        """Forget a claimed run that was never sent, so that slot counts as not run."""
        async with self.gcx.database.write() as conn:
            await conn.execute(
                job_runs.delete().where(
                    job_runs.c.run_key == run_key, job_runs.c.finished_at.is_(None)
                )
            )

    async def claim_run(self, run_key: str) -> bool:
        """Record a scheduled run; False when that schedule's slot already ran."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.gcx.database.dialect == "postgresql" else sqlite
        stmt = dialect.insert(job_runs).values(run_key=run_key, started_at=self.gcx.now())
        async with self.gcx.database.write() as conn:
            result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_key"]))
        return result.rowcount == 1


def _cron(schedule_id: str) -> dict[str, Any]:
    cron = dict(SCHEDULES)[schedule_id]
    return {"cron": cron, "schedule_id": schedule_id}
