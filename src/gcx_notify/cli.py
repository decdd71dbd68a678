"""`gcx worker`, `gcx scheduler`, `gcx status` and `gcx retry-notifications`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from gcx_core.cli import configure_logging, settings_from_args
from gcx_core.entities import Actor
from gcx_core.exceptions import ConfigurationError
from gcx_core.services import notifications as outbox
from gcx_core.settings import Settings
from gcx_core.system import Gcx, settle_heap

log = logging.getLogger("gcx_notify")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("worker", help="deliver notifications (scale-out: needs Redis)")
    p.add_argument("--concurrency", type=int, default=20, help="tasks at once (default 20)")
    p.set_defaults(func=worker)
    p = subparsers.add_parser("scheduler", help="send the scheduled tasks (scale-out: run one)")
    p.set_defaults(func=scheduler)
    p = subparsers.add_parser("status", help="notification queue: counts, due, oldest, schedules")
    p.set_defaults(func=status)
    p = subparsers.add_parser("retry-notifications", help="send dead notifications again")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("ids", nargs="*", type=int, default=[], help="notification ids")
    group.add_argument("--all-dead", action="store_true", help="every dead notification")
    p.set_defaults(func=retry)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _scale_out_only(settings: Settings, what: str) -> None:
    if not settings.broker_url:
        raise ConfigurationError(
            f"gcx {what} is for the scale-out mode and needs GCX_REDIS_URL; the embedded mode "
            "delivers notifications inside `gcx serve`"
        )


def worker(args: argparse.Namespace) -> int:
    return _serve(args, "worker", run_scheduler=False, concurrency=args.concurrency)


def scheduler(args: argparse.Namespace) -> int:
    return _serve(args, "scheduler", run_scheduler=True, concurrency=None)


def _serve(
    args: argparse.Namespace, what: str, *, run_scheduler: bool, concurrency: int | None
) -> int:
    """Run a scale-out process until SIGINT/SIGTERM: a worker receives tasks, a scheduler sends.

    On SIGTERM a worker stops taking tasks, lets the deliveries in hand finish for up to
    GCX_STOP_TIMEOUT seconds, then cancels the rest and hands their rows back to the outbox
    (due at once, the attempt not counted), closes its connections and exits.
    """
    from concurrent.futures import ThreadPoolExecutor

    from taskiq.acks import AcknowledgeType
    from taskiq.receiver import Receiver

    from gcx_notify.runtime import Notifier

    settings = settings_from_args(args)
    _scale_out_only(settings, what)
    configure_logging(settings)
    grace = settings.stop_timeout

    async def run() -> None:
        async with await Gcx.open(settings) as gcx:
            notifier = Notifier(gcx)
            notifier.broker.is_worker_process = concurrency is not None
            await notifier.start(run_scheduler=run_scheduler, kick=False)
            settle_heap()
            finish = asyncio.Event()
            listening: asyncio.Task[None] | None = None
            executor = ThreadPoolExecutor(1)
            if concurrency is not None:
                receiver = Receiver(
                    notifier.broker,
                    executor=executor,
                    run_startup=False,
                    max_async_tasks=concurrency,
                    ack_type=AcknowledgeType.WHEN_EXECUTED,
                )
                listening = asyncio.create_task(receiver.listen(finish))
            exporter = _serve_metrics(gcx, settings)
            log.info("%s ready", what)
            try:
                async with contextlib.AsyncExitStack() as services:
                    # Other packages' process services (gcx_web publishes live updates from here).
                    for service in gcx.plugins.hook.gcx_process_services(gcx=gcx, role=what):
                        if service is not None:
                            await services.enter_async_context(service)
                    await _until_stopped()
                    log.info(
                        "%s stopping: finishing the work in hand (%s s at most)",
                        what,
                        grace,
                        extra={"event": f"{what}.stopping"},
                    )
                    finish.set()
                    if listening is not None:
                        await notifier.wait_running(grace)
                    released = await notifier.abandon_running()
                    if listening is not None:
                        await _bounded(listening, 5)
                    if released:
                        log.warning(
                            "%d unfinished notifications went back to the outbox",
                            released,
                            extra={"event": f"{what}.stopping"},
                        )
            finally:
                if listening is not None and not listening.done():
                    listening.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await listening
                await _bounded(asyncio.ensure_future(notifier.stop()), 10)
                executor.shutdown(wait=False)
                if exporter is not None:
                    exporter.close()
            log.info("%s stopped", what, extra={"event": f"{what}.stopped"})

    asyncio.run(run())
    return 0


class _Exporter:
    """The metrics of a worker or scheduler on their own port, refreshed every 15 s."""

    def __init__(self, gcx: Gcx, server: Any, refresher: asyncio.Task[None]) -> None:
        self.gcx, self.server, self.refresher = gcx, server, refresher

    def close(self) -> None:
        self.refresher.cancel()
        self.server.shutdown()
        self.server.server_close()


def _serve_metrics(gcx: Gcx, settings: Settings) -> _Exporter | None:
    if not settings.metrics_port:
        return None
    from prometheus_client import start_http_server

    server, _ = start_http_server(
        settings.metrics_port, addr=settings.metrics_bind, registry=gcx.metrics.registry
    )

    async def refresh() -> None:
        while True:
            try:
                await gcx.metrics.refresh(gcx)
            except Exception as exc:  # the database may be away for a while; keep serving
                log.warning("could not refresh the metrics: %s", exc)
            await asyncio.sleep(15)

    log.info("metrics on http://%s:%s/metrics", settings.metrics_bind, settings.metrics_port)
    return _Exporter(gcx, server, asyncio.create_task(refresh()))


async def _bounded(task: asyncio.Future[Any], seconds: float) -> None:
    """Wait for `task` at most `seconds`, then cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    except Exception:
        log.exception("stopping did not go cleanly")


def status(args: argparse.Namespace) -> int:
    from gcx_notify.runtime import SCHEDULES

    settings = settings_from_args(args)

    async def run() -> tuple[outbox.OutboxStatus, str]:
        async with await Gcx.open(settings) as gcx:
            report = await outbox.outbox_status(gcx, [name for name, _ in SCHEDULES])
            return report, await _queue_depth(settings)

    report, depth = asyncio.run(run())
    print("notifications: " + ", ".join(f"{k} {v:,}" for k, v in report.counts.items()))
    print(f"due now: {report.due:,}")
    age = report.oldest_pending_age
    print("oldest waiting: " + ("none" if age is None else f"{age:,.0f} s"))
    print(f"broker queue: {depth}")
    for name, at in report.last_runs.items():
        print(f"last run of {name}: {at.isoformat(timespec='seconds') if at else 'never'}")
    return 0


async def _queue_depth(settings: Settings) -> str:
    """The workers' backlog: tasks not yet read by any worker, and read but not finished. (The
    stream's length is not a backlog: finished entries stay until the cap trims them.)"""
    if not settings.broker_url:
        return "in-process (embedded mode)"
    from redis.asyncio import Redis
    from redis.exceptions import ResponseError

    from gcx_notify.runtime import GROUP, QUEUE

    redis = Redis.from_url(settings.broker_url, decode_responses=True)
    try:
        try:
            groups = await redis.xinfo_groups(QUEUE)
        except ResponseError:  # no stream yet: nothing was ever kicked
            return "0 waiting, 0 being worked on"
        ours = next((g for g in groups if g.get("name") == GROUP), None)
        if ours is None:
            return "no worker has started on this Redis yet"
        lag = ours.get("lag")
        waiting = "unknown" if lag is None else f"{int(lag):,}"
        return f"{waiting} waiting, {int(ours.get('pending', 0)):,} being worked on"
    finally:
        await redis.aclose()


def retry(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)

    async def run() -> list[int]:
        from gcx_notify.runtime import Notifier

        async with await Gcx.open(settings) as gcx:
            # The notifier hears the retried rows queued and kicks them: onto Redis in
            # scale-out, or delivered right here in the embedded mode.
            notifier = Notifier(gcx)
            await notifier.start(run_scheduler=False, kick=False)
            try:
                chosen = await outbox.retry_notifications(
                    gcx, Actor.system("cli"), None if args.all_dead else list(args.ids)
                )
                await notifier.idle()  # embedded: delivered before the command returns
                return chosen
            finally:
                await notifier.stop()

    chosen = asyncio.run(run())
    print(
        f"queued again: {len(chosen)} notification(s)"
        + (f" ({', '.join(map(str, chosen))})" if chosen else "")
    )
    return 0
