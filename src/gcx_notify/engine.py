"""Delivering outbox rows: claim atomically, render, send, then mark sent, retrying or dead.

The outbox is the truth; broker messages are only hints. A claim is one statement that takes
due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the write transaction itself is
exclusive), sets them `sending` with a lease and counts the attempt. Marking the outcome checks
the row is still the one we claimed (status and attempt number), so a worker whose lease ran
out and whose row was taken over cannot overwrite the newer attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from gcx_core.entities import Notification, NotificationStatus, Role
from gcx_core.events import CountersChanged, NotificationDelivery, NotificationsQueued
from gcx_core.logs import log_context
from gcx_core.plugins import first_async
from gcx_core.services.event_outbox import queue_for_event
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.batching import GroupCommit
from gcx_core.storage.database import Connection
from gcx_core.storage.rows import dicts
from gcx_core.storage.tables import notifications
from gcx_core.system import Gcx
from gcx_notify.channels import PermanentFailure, TemporaryFailure
from gcx_notify.render import Renderer, TemplateError

log = logging.getLogger(__name__)
# A sent message is routine (DEBUG: one per notification would swamp the log); a retry is
# worth a line, a dead letter a warning.
_OUTCOME_LEVELS = {
    NotificationStatus.SENT: logging.DEBUG,
    NotificationStatus.RETRYING: logging.INFO,
    NotificationStatus.DEAD: logging.WARNING,
}
N = notifications
SENDABLE = (NotificationStatus.PENDING, NotificationStatus.RETRYING)
ALERT_TYPE = "notification_dead"


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter: base, base*factor, base*factor^2 ... capped."""

    max_attempts: int | None = None  # None: the row's own max_attempts
    base: timedelta = timedelta(minutes=1)
    factor: float = 5.0
    cap: timedelta = timedelta(hours=6)
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        """The wait after failed attempt number `attempt` (1 for the first)."""
        raw = min(
            self.base.total_seconds() * self.factor ** (attempt - 1), self.cap.total_seconds()
        )
        spread = raw * self.jitter
        return timedelta(seconds=raw + rng.uniform(-spread, spread))


DEFAULT_POLICY = RetryPolicy()


def _mark(**values: Any) -> Any:
    """An outcome UPDATE that only touches the row if it is still the attempt we claimed."""
    return (
        N.update()
        .where(
            N.c.id == sa.bindparam("b_id"),
            N.c.status == NotificationStatus.SENDING,
            N.c.attempts == sa.bindparam("b_attempts"),
        )
        .values(locked_until=None, updated_at=sa.bindparam("b_at"), **values)
    )


_MARK_SENT = _mark(
    status=NotificationStatus.SENT,
    sent_at=sa.bindparam("b_at"),
    provider_message_id=sa.bindparam("b_provider"),
    next_attempt_at=None,
)
_MARK_FAILED = _mark(
    status=sa.bindparam("b_status"),
    last_error=sa.bindparam("b_error"),
    next_attempt_at=sa.bindparam("b_next"),
)


def _claimable(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The first `limit` rows matching `where`, in the (status, next_attempt_at) index's order;
    locked for the claim where the database locks rows (PostgreSQL skips rows others hold)."""
    return (
        sa.select(N.c.id, N.c.status, N.c.next_attempt_at)
        .where(where)
        .order_by(N.c.next_attempt_at, N.c.id)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


# Built once, so SQLAlchemy's compiled cache finds them: a claim during a burst takes a few
# rows at a time.
_DUE_IN_STATUS = _claimable(
    sa.and_(N.c.status == sa.bindparam("status"), N.c.next_attempt_at <= sa.bindparam("now"))
)
_LEASE_RAN_OUT = _claimable(
    sa.and_(N.c.status == NotificationStatus.SENDING, N.c.locked_until < sa.bindparam("now"))
)


# Built once: SQLAlchemy compiles it once too, and only the IN list is expanded per claim.
_TAKE = (
    N.update()
    .where(N.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=NotificationStatus.SENDING,
        locked_until=sa.bindparam("until", type_=N.c.locked_until.type),
        attempts=N.c.attempts + 1,
        updated_at=sa.bindparam("now", type_=N.c.updated_at.type),
    )
    .returning(*N.c)
)


async def _each(conn: Connection, stmt: Any, params: list[dict[str, Any]]) -> list[int]:
    """Run `stmt` once per set of parameters; each run's rowcount (conditional updates)."""
    return [(await conn.execute(stmt, p)).rowcount for p in params]


@attrs.frozen(eq=False)
class _Outcome:
    notification: Notification
    status: NotificationStatus
    error: str
    provider_id: str
    retry_at: datetime | None
    at: datetime


class Deliverer:
    def __init__(
        self,
        gcx: Gcx,
        channels: Mapping[str, Any],
        renderer: Renderer,
        rng: random.Random | None = None,
    ) -> None:
        self.gcx = gcx
        self.channels = channels
        self.renderer = renderer
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.lease = timedelta(seconds=gcx.settings.notification_lease_seconds)
        # Rows claimed here and being sent now; rows whose sending was cancelled (a shutdown
        # that could not wait), to hand back with `release()`.
        self.in_hand: dict[int, Notification] = {}
        self.abandoned: list[Notification] = []
        # Claims and outcomes of concurrent deliveries share transactions.
        self._claims: GroupCommit[list[int], list[Notification | None]] = GroupCommit(
            gcx.database, self._claim_each
        )
        self._outcomes: GroupCommit[_Outcome, list[Any] | None] = GroupCommit(
            gcx.database, self._record_each
        )

    # -- claiming -------------------------------------------------------------------------

    def _due(self, now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.and_(N.c.status.in_([str(s) for s in SENDABLE]), N.c.next_attempt_at <= now),
            sa.and_(N.c.status == NotificationStatus.SENDING, N.c.locked_until < now),
        )

    async def claim(self, ids: list[int] | None = None, limit: int = 100) -> list[Notification]:
        """Take due rows (these ids, or the oldest due) for this worker; others skip them."""
        async with self.gcx.database.write() as conn:
            return await self._claim_in(conn, ids, limit)

    async def _claim_in(
        self, conn: Connection, ids: list[int] | None, limit: int
    ) -> list[Notification]:
        now = self.gcx.now()
        if ids is not None:
            found = await self._first_rows(conn, sa.and_(self._due(now), N.c.id.in_(ids)), limit)
        else:
            found = await self._oldest_due(conn, now, limit)
        if not found:
            return []
        rows = (
            await conn.execute(
                _TAKE, {"ids": [r["id"] for r in found], "now": now, "until": now + self.lease}
            )
        ).all()
        moves = Counter(str(r["status"]) for r in found)
        await bookkeeping.bump_counters(
            conn,
            {
                **{bookkeeping.NOTIFICATION_PREFIX + s: -n for s, n in moves.items()},
                bookkeeping.NOTIFICATION_PREFIX + NotificationStatus.SENDING: len(found),
            },
        )
        return sorted((bookkeeping.to_notification(r) for r in rows), key=lambda n: n.id)

    async def _oldest_due(
        self, conn: Connection, now: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """The `limit` oldest due rows (id, status, next_attempt_at), locked where the database
        can lock rows.

        One query per status, each in the order of the (status, next_attempt_at) index, so a
        claim reads about `limit` rows per status however long the outbox is (a single query
        with OR between the statuses would collect every due row and sort them all).
        """
        found: list[dict[str, Any]] = []
        for status in SENDABLE:
            found += await dicts(conn, _DUE_IN_STATUS, status=str(status), now=now, limit=limit)
        # Leases that ran out: a handful at most (the rows in flight), so no index order needed.
        found += await dicts(conn, _LEASE_RAN_OUT, now=now, limit=limit)
        return sorted(found, key=lambda r: (r["next_attempt_at"], r["id"]))[:limit]

    async def _first_rows(
        self, conn: Connection, where: sa.ColumnElement[bool], limit: int
    ) -> list[dict[str, Any]]:
        return await dicts(conn, _claimable(where), limit=limit)

    async def _claim_each(
        self, conn: Connection, requests: list[list[int]]
    ) -> list[list[Notification | None]]:
        """Group-commit work: claim the ids of several requests in one statement."""
        ids = sorted({i for r in requests for i in r})
        claimed = {n.id: n for n in await self._claim_in(conn, ids, len(ids))}
        # A row named by several requests (a sweep's kick beside the commit's own) goes to the
        # first of them only: it is sent once, by the task that claimed it.
        return [[claimed.pop(i, None) for i in r] for r in requests]

    async def count_due(self) -> int:
        async with self.gcx.database.read() as conn:
            query = sa.select(sa.func.count()).select_from(N).where(self._due(self.gcx.now()))
            return int((await conn.execute(query)).scalar_one())

    async def due_ids(self, limit: int = 1000, after: int = 0) -> list[int]:
        """Rows a sweep should kick (due, retry time passed, lease expired), ids after `after`."""
        async with self.gcx.database.read() as conn:
            result = await conn.execute(
                sa.select(N.c.id)
                .where(self._due(self.gcx.now()), N.c.id > after)
                .order_by(N.c.id)
                .limit(limit)
            )
            return [int(i) for i in result.scalars()]

    # -- delivering -----------------------------------------------------------------------

    async def deliver(self, notification_id: int) -> NotificationStatus | None:
        """Deliver one row if it is due; None when another worker has it or it is done."""
        return (await self.deliver_many([notification_id]))[0]

    async def deliver_many(self, ids: list[int]) -> list[NotificationStatus | None]:
        """Deliver these rows, claimed together and sent concurrently; None for each row that
        another worker has or that is done."""
        found = [n for n in await self._claims(list(dict.fromkeys(ids))) if n is not None]
        if len(found) == 1:  # no task for a lone row
            sent = [await self.send_claimed(found[0])]
        else:
            sent = await asyncio.gather(*(self.send_claimed(n) for n in found))
        outcome = {n.id: status for n, status in zip(found, sent, strict=True)}
        return [outcome.get(i) for i in ids]

    async def deliver_due(self, limit: int = 100) -> int:
        """Claim and deliver up to `limit` due rows here; returns how many were attempted."""
        claimed = await self.claim(limit=limit)
        await asyncio.gather(*(self.send_claimed(n) for n in claimed))
        return len(claimed)

    async def send_claimed(self, n: Notification) -> NotificationStatus:
        self.in_hand[n.id] = n
        started = time.perf_counter()
        try:
            status = await self._send(n)
            metrics = self.gcx.metrics
            metrics.deliveries.labels(n.channel, str(status)).inc()
            metrics.delivery_seconds.labels(n.channel).observe(time.perf_counter() - started)
            return status
        except asyncio.CancelledError:
            self.abandoned.append(n)
            raise
        finally:
            self.in_hand.pop(n.id, None)

    async def release(self) -> int:
        """Hand back the rows whose sending was cancelled: due again at once, the attempt not
        counted, for the next worker (rather than after their lease runs out)."""
        rows, self.abandoned = self.abandoned, []
        if not rows:
            return 0
        now = self.gcx.now()
        released: Counter[str] = Counter()
        async with self.gcx.database.write() as conn:
            for n in rows:
                back = (
                    NotificationStatus.PENDING if n.attempts <= 1 else NotificationStatus.RETRYING
                )
                result = await conn.execute(
                    N.update()
                    .where(
                        N.c.id == n.id,
                        N.c.status == NotificationStatus.SENDING,
                        N.c.attempts == n.attempts,
                    )
                    .values(
                        status=back,
                        attempts=n.attempts - 1,
                        locked_until=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )
                if result.rowcount:
                    released[str(back)] += 1
            if released:
                await bookkeeping.bump_counters(
                    conn,
                    {
                        bookkeeping.NOTIFICATION_PREFIX + NotificationStatus.SENDING: -sum(
                            released.values()
                        ),
                        **{bookkeeping.NOTIFICATION_PREFIX + s: k for s, k in released.items()},
                    },
                )
        return sum(released.values())

    async def _send(self, n: Notification) -> NotificationStatus:
        channel = self.channels.get(n.channel)
        try:
            if channel is None:
                raise PermanentFailure(f"no channel named {n.channel!r}")
            message = self.renderer.render(n)
            provider_id = await channel.send(message)
        except (PermanentFailure, TemplateError) as exc:
            return await self._finish(n, NotificationStatus.DEAD, error=str(exc))
        except TemporaryFailure as exc:
            return await self._fail_temporarily(n, str(exc), exc.retry_after)
        except Exception as exc:  # a channel bug is treated like a temporary failure
            log.exception("channel %s failed on notification %s", n.channel, n.id)
            return await self._fail_temporarily(n, f"{type(exc).__name__}: {exc}"[:500])
        return await self._finish(n, NotificationStatus.SENT, provider_id=provider_id)

    async def policy(self, n: Notification) -> RetryPolicy:
        hook = getattr(self.gcx.plugins.hook, "gcx_notify_retry_policy", None)
        found = await first_async(hook, notification=n) if hook is not None else None
        return found or DEFAULT_POLICY

    async def _fail_temporarily(
        self, n: Notification, error: str, retry_after: float | None = None
    ) -> NotificationStatus:
        policy = await self.policy(n)
        limit = policy.max_attempts or n.max_attempts
        if n.attempts >= limit:
            return await self._finish(n, NotificationStatus.DEAD, error=error)
        delay = policy.delay(n.attempts, self.rng)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=min(retry_after, 86400)))  # a day at most
        retry_at = self.gcx.now() + delay
        return await self._finish(n, NotificationStatus.RETRYING, error=error, retry_at=retry_at)

    async def _finish(
        self,
        n: Notification,
        status: NotificationStatus,
        *,
        error: str = "",
        provider_id: str = "",
        retry_at: datetime | None = None,
    ) -> NotificationStatus:
        fired = await self._outcomes(
            _Outcome(n, status, error, provider_id, retry_at, self.gcx.now())
        )
        if fired is None:
            log.warning("notification %s was taken over while attempt %s ran", n.id, n.attempts)
        else:
            level = _OUTCOME_LEVELS.get(status, logging.INFO)
            if log.isEnabledFor(level):
                with log_context(notification_id=n.id, application_id=n.application_id):
                    log.log(
                        level,
                        "%s %s via %s: %s (attempt %s)%s",
                        n.type,
                        n.id,
                        n.channel,
                        status,
                        n.attempts,
                        f": {error[:200]}" if error else "",
                        extra={"event": f"delivery.{status}"},
                    )
            await self.gcx.fire(fired)
        return status

    async def _record_each(
        self, conn: Connection, outcomes: list[_Outcome]
    ) -> list[list[Any] | None]:
        """Group-commit work: write several outcomes; None for a row another worker took over."""
        results: list[list[Any] | None] = []
        deltas: Counter[str] = Counter()
        sent = [o for o in outcomes if o.status is NotificationStatus.SENT]
        failed = [o for o in outcomes if o.status is not NotificationStatus.SENT]
        counts = dict(
            zip(
                sent,
                await _each(
                    conn,
                    _MARK_SENT,
                    [
                        {
                            "b_id": o.notification.id,
                            "b_attempts": o.notification.attempts,
                            "b_at": o.at,
                            "b_provider": o.provider_id,
                        }
                        for o in sent
                    ],
                ),
                strict=True,
            )
        )
        counts.update(
            zip(
                failed,
                await _each(
                    conn,
                    _MARK_FAILED,
                    [
                        {
                            "b_id": o.notification.id,
                            "b_attempts": o.notification.attempts,
                            "b_at": o.at,
                            "b_status": str(o.status),
                            "b_error": o.error[:2000],
                            "b_next": o.retry_at,
                        }
                        for o in failed
                    ],
                ),
                strict=True,
            )
        )
        for o in outcomes:
            n = o.notification
            if counts[o] != 1:
                results.append(None)
                continue
            deltas[bookkeeping.NOTIFICATION_PREFIX + NotificationStatus.SENDING] -= 1
            deltas[bookkeeping.NOTIFICATION_PREFIX + o.status] += 1
            delivery = NotificationDelivery(
                n.id,
                str(o.status),
                n.attempts,
                o.at,
                o.error,
                n.application_id,
                n.type,
                n.channel,
            )
            fired: list[Any] = [(delivery, None)]
            if o.status is NotificationStatus.DEAD:
                queued = await queue_for_event(self.gcx, conn, delivery, n.application_id)
                if queued:
                    fired.append((NotificationsQueued(tuple(queued), o.at), None))
            if o.status is NotificationStatus.DEAD and n.type != ALERT_TYPE:
                alert_ids = await self._alert_admins(conn, n, o.error, o.at)
                if alert_ids:
                    fired.append((NotificationsQueued(tuple(alert_ids), o.at), None))
            fired.append((CountersChanged(o.at), None))
            results.append(fired)
        await bookkeeping.bump_counters(conn, deltas)
        return results

    async def _alert_admins(
        self, conn: Connection, n: Notification, error: str, now: datetime
    ) -> list[int]:
        admins = [u for u in await user_rows.active_staff(conn) if u.role is Role.ADMIN]
        if not admins:
            return []
        ids = await bookkeeping.allocate_ids(conn, N, len(admins))
        rows = [
            {
                "id": i,
                "type": ALERT_TYPE,
                "channel": "email",
                "recipient": admin.email,
                "template": ALERT_TYPE,
                # Each death is its own event (a retried row can die again at the same attempt
                # number), written once: only the attempt's own outcome write gets here.
                "dedupe_key": f"dead{n.id}.{n.attempts}.{i}:{admin.id}",
                "context": {
                    "failed_id": n.id,
                    "failed_type": n.type,
                    "failed_channel": n.channel,
                    "failed_recipient": n.recipient,
                    "attempts": n.attempts,
                    "last_error": error[:500],
                    "application_id": n.application_id,
                },
                "status": NotificationStatus.PENDING,
                "attempts": 0,
                "max_attempts": self.gcx.settings.notification_max_attempts,
                "next_attempt_at": now,
                "application_id": n.application_id,
                "created_at": now,
                "updated_at": now,
            }
            for i, admin in zip(ids, admins, strict=True)
        ]
        await conn.execute(N.insert(), rows)
        await bookkeeping.bump_counters(
            conn, {bookkeeping.NOTIFICATION_PREFIX + "pending": len(rows)}
        )
        return ids
