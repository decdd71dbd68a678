"""Prometheus metrics of one process, on a registry of its own (prometheus-client).

Every process has a `Metrics` (as `gcx.metrics`): web processes serve it at `/metrics`,
workers and schedulers on `GCX_METRICS_PORT`. What each records:

Requests by route, open websockets, deliveries by channel and outcome with their latency,
scheduled runs, and the outbox and applications by status (docs/operations.md lists them).

The gauges read the database: `refresh(gcx)` updates them (before each `/metrics` answer, and
every 15 s in processes that serve metrics on their own port).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from gcx_core.system import Gcx

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gcx_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "gcx_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.websockets = Gauge(
            "gcx_websocket_connections", "Open live-update websockets", ["socket"], registry=r
        )
        self.deliveries = Counter(
            "gcx_deliveries", "Delivery attempts by outcome", ["channel", "outcome"], registry=r
        )
        self.delivery_seconds = Histogram(
            "gcx_delivery_seconds",
            "Time to render and send one notification",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scheduler_runs = Counter(
            "gcx_scheduler_runs", "Scheduled runs by outcome", ["schedule", "outcome"], registry=r
        )
        self.notifications = Gauge(
            "gcx_notifications", "Notifications in the outbox by status", ["status"], registry=r
        )
        self.oldest_due = Gauge(
            "gcx_notifications_oldest_due_seconds",
            "Seconds the oldest due notification has waited",
            registry=r,
        )
        self.applications = Gauge(
            "gcx_applications", "Applications by status", ["status"], registry=r
        )

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)

    async def refresh(self, gcx: Gcx) -> None:
        """Update the gauges that come from the database."""
        from gcx_core.storage import bookkeeping
        from gcx_core.storage.tables import notifications

        now = gcx.now()
        async with gcx.database.read() as conn:
            counters = await bookkeeping.read_counters(conn)
            oldest: Any = (
                await conn.execute(
                    sa.select(sa.func.min(notifications.c.next_attempt_at)).where(
                        notifications.c.status.in_(["pending", "retrying"]),
                        notifications.c.next_attempt_at <= now,
                    )
                )
            ).scalar_one_or_none()
        for name, value in counters.items():
            if name.startswith(bookkeeping.NOTIFICATION_PREFIX):
                self.notifications.labels(name.removeprefix(bookkeeping.NOTIFICATION_PREFIX)).set(
                    value
                )
            elif name.startswith(bookkeeping.STATUS_PREFIX):
                self.applications.labels(name.removeprefix(bookkeeping.STATUS_PREFIX)).set(value)
        self.oldest_due.set(0 if oldest is None else max(0.0, (now - oldest).total_seconds()))
