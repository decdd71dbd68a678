"""The dashboard snapshot (from counters, O(1) in applications) and counter reconciliation."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from gcx_core.entities import NotificationStatus
from gcx_core.events import CountersChanged
from gcx_core.services.deadlines import AGEING, figures
from gcx_core.services.renewals import EXPIRED_KEY, count_expired
from gcx_core.storage import bookkeeping, rows
from gcx_core.storage.tables import applications, counters, notifications
from gcx_core.system import Gcx

RECENT = 10
DAYS = 30


def largest_remainder(counts: list[int], total_tenths: int = 1000) -> list[float]:
    """Percentages with one decimal that sum to exactly 100.0 (or all 0.0 when nothing counts)."""
    total = sum(counts)
    if total == 0:
        return [0.0] * len(counts)
    quotas = [c * total_tenths for c in counts]
    floors = [q // total for q in quotas]
    left = total_tenths - sum(floors)
    # Hand the leftover tenths to the largest remainders; ties go to the earlier entry.
    order = sorted(range(len(counts)), key=lambda i: (-(quotas[i] % total), i))
    for i in order[:left]:
        floors[i] += 1
    return [f / 10 for f in floors]


@attrs.frozen
class StatusFigure:
    status: str
    label: str
    count: int
    percent: float


@attrs.frozen
class RecentApplication:
    id: int
    tracking_code: str
    business_name: str
    status: str
    created_at: datetime


@attrs.frozen
class DashboardSnapshot:
    total: int
    statuses: list[StatusFigure]
    recent: list[RecentApplication]
    notifications: dict[str, int]
    per_day: list[tuple[date, int]]
    oldest_waiting: dict[str, datetime | None]
    at: datetime
    unassigned: int = 0  # open applications (in a status that waits on someone) nobody holds
    workload: dict[int, int] = attrs.field(factory=dict)  # reviewer id: open applications
    # reviewer id: when their longest-waiting open application entered its status
    workload_oldest: dict[int, datetime | None] = attrs.field(factory=dict)
    unread_messages: int = 0  # applicants' messages no member of staff has read yet
    expired_documents: int = 0  # suppliers' required documents past their validity
    # status: applications whose deadline in it passed with nothing left to do
    overdue: dict[str, int] = attrs.field(factory=dict)
    # open status: {days bucket: applications that have waited in it that long}
    ageing: dict[str, dict[str, int]] = attrs.field(factory=dict)


_COUNTERS = sa.select(counters.c.name, counters.c.value)
_RECENT = (
    sa.select(
        applications.c.id,
        applications.c.tracking_code,
        applications.c.business_name,
        applications.c.status,
        applications.c.created_at,
    )
    .order_by(applications.c.created_at.desc(), applications.c.id.desc())
    .limit(RECENT)
)


def _oldest(statuses: list[str]) -> sa.Select[Any]:
    """One row: for each status, when the application longest in it got there (an index seek
    each, in one statement: one round trip to the database however many statuses wait)."""
    return sa.select(
        *(
            sa.select(applications.c.status_changed_at)
            .where(applications.c.status == status)
            .order_by(applications.c.status_changed_at)
            .limit(1)
            .scalar_subquery()
            .label(f"s{i}")
            for i, status in enumerate(statuses)
        )
    )


async def snapshot(gcx: Gcx) -> DashboardSnapshot:
    """Counts and percentages per status, recent applications, ageing, notification counts.

    Every figure comes from a counter or an index seek, so the cost does not grow with the
    number of applications; all of them are read in one transaction, so they agree.
    """
    now = gcx.now()
    waiting = [name for name in gcx.workflow.states if gcx.workflow.waits(name)]
    oldest: dict[str, datetime | None] = {}
    async with gcx.database.read() as conn:
        figures = {name: int(value) for name, value in await conn.execute(_COUNTERS)}
        recent_rows = await rows.dicts(conn, _RECENT)
        if waiting:
            found = (await conn.execute(_oldest(waiting))).one()
            oldest = dict(zip(waiting, found, strict=True))
        unassigned, workload = queue_counts(gcx, figures)
        held = _held_longest(gcx, sorted(workload))
        workload_oldest = (
            dict(zip(sorted(workload), (await conn.execute(held)).one(), strict=True))
            if held is not None
            else {}
        )
    # Statuses in which work goes on first, then the final ones, each in registration order:
    # a plugin's state sits among the open ones, not after "Rejected".
    states = gcx.workflow.states
    names = [n for n in states if not states[n].terminal] + [
        n for n in states if states[n].terminal
    ]
    # Statuses no loaded plugin defines still hold applications: counted, labelled unknown.
    names += list(_unknown_in(gcx, figures))
    counts = [figures.get(bookkeeping.STATUS_PREFIX + n, 0) for n in names]
    percents = largest_remainder(counts)
    statuses = [
        StatusFigure(n, gcx.workflow.state(n).label, c, p)
        for n, c, p in zip(names, counts, percents, strict=True)
    ]
    today = now.date()
    per_day = [
        (d, figures.get(bookkeeping.SUBMITTED_PREFIX + d.isoformat(), 0))
        for d in (today - timedelta(days=i) for i in range(DAYS - 1, -1, -1))
    ]
    return DashboardSnapshot(
        overdue=_by_status(figures, bookkeeping.OVERDUE_PREFIX),
        ageing={
            status: {
                bucket: figures.get(bookkeeping.ageing_key(status, bucket), 0)
                for bucket, _ in AGEING
            }
            for status in waiting
        },
        unread_messages=figures.get("unread:staff", 0),
        expired_documents=figures.get(EXPIRED_KEY, 0),
        unassigned=unassigned,
        workload=workload,
        workload_oldest=workload_oldest,
        total=sum(counts),
        statuses=statuses,
        recent=[RecentApplication(**r) for r in recent_rows],
        notifications={
            str(s): figures.get(bookkeeping.NOTIFICATION_PREFIX + s, 0) for s in NotificationStatus
        },
        per_day=per_day,
        oldest_waiting=oldest,
        at=now,
    )


def _by_status(figures: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in sorted(figures.items()) if k.startswith(prefix) and v}


def _held_longest(gcx: Gcx, reviewers: list[int]) -> sa.Select[Any] | None:
    """One row: for each reviewer, when the open application they have held longest in its
    status got there (an index seek per reviewer and open status, in one statement)."""
    if not reviewers:
        return None
    open_states = [n for n in gcx.workflow.states if gcx.workflow.waits(n)]

    def seek(reviewer: int, status: str) -> Any:
        return (
            sa.select(applications.c.status_changed_at)
            .where(
                applications.c.assigned_reviewer_id == reviewer,
                applications.c.status == status,
            )
            .order_by(applications.c.status_changed_at)
            .limit(1)
            .scalar_subquery()
        )

    columns = []
    for i, reviewer in enumerate(reviewers):
        seeks = [seek(reviewer, status) for status in open_states]
        columns.append(_earliest(seeks).label(f"r{i}"))
    return sa.select(*columns)


def _earliest(values: list[Any]) -> Any:
    """The earliest of several timestamps, any of them NULL (no such application)."""
    if len(values) == 1:
        return values[0]
    # LEAST/MIN ignore NULLs differently per database: order them and take the first.
    union = sa.union_all(*(sa.select(v.label("at")) for v in values)).subquery()
    return sa.select(sa.func.min(union.c.at)).scalar_subquery()


def queue_counts(gcx: Gcx, figures: dict[str, int]) -> tuple[int, dict[int, int]]:
    """Open applications nobody holds, and each reviewer's open applications, from the
    `assigned:` counters in `figures` (open: in a status that waits on someone)."""
    unassigned = 0
    workload: dict[int, int] = {}
    for key, n in figures.items():
        if not key.startswith(bookkeeping.ASSIGNED_PREFIX) or n <= 0:
            continue
        status, _, who = key[len(bookkeeping.ASSIGNED_PREFIX) :].rpartition(":")
        if not gcx.workflow.waits(status):
            continue
        if who == "-":
            unassigned += n
        elif who.isdigit():
            workload[int(who)] = workload.get(int(who), 0) + n
    return unassigned, dict(sorted(workload.items()))


async def unknown_statuses(gcx: Gcx) -> dict[str, int]:
    """Statuses that hold applications but that the loaded workflow does not define, with
    how many each holds (from the counters: no table scan)."""
    async with gcx.database.read() as conn:
        figures = await bookkeeping.read_counters(conn, bookkeeping.STATUS_PREFIX)
    return _unknown_in(gcx, figures)


def _unknown_in(gcx: Gcx, figures: dict[str, int]) -> dict[str, int]:
    """Of the counters, the statuses holding applications that the workflow does not define."""
    prefix = len(bookkeeping.STATUS_PREFIX)
    return {
        key[prefix:]: int(n)
        for key, n in sorted(figures.items())
        if key.startswith(bookkeeping.STATUS_PREFIX)
        and n > 0
        and key[prefix:] not in gcx.workflow.states
    }


async def recount(conn: Any, gcx: Gcx | None = None) -> dict[str, int]:
    """What the counters should be, counted from the rows themselves; with `gcx`, the
    overdue and ageing figures too (as of its clock: they move with time)."""
    truth: dict[str, int] = await conn.run_sync(count_rows)
    if gcx is not None:
        truth.update(await conn.run_sync(figures, gcx.workflow.waiting, gcx.now()))
    return truth


def count_rows(conn: sa.Connection) -> dict[str, int]:
    """`recount` on a synchronous connection."""
    truth: dict[str, int] = {}
    for status, n in conn.execute(
        sa.select(applications.c.status, sa.func.count()).group_by(applications.c.status)
    ):
        truth[bookkeeping.STATUS_PREFIX + status] = int(n)
    reviewer = applications.c.assigned_reviewer_id
    for status, reviewer_id, n in conn.execute(
        sa.select(applications.c.status, reviewer, sa.func.count()).group_by(
            applications.c.status, reviewer
        )
    ):
        truth[bookkeeping.assigned_key(status, reviewer_id)] = int(n)
    for status, n in conn.execute(
        sa.select(notifications.c.status, sa.func.count()).group_by(notifications.c.status)
    ):
        truth[bookkeeping.NOTIFICATION_PREFIX + status] = int(n)
    truth.update(count_expired(conn))
    if conn.dialect.name == "postgresql":
        day = sa.func.date(sa.func.timezone("UTC", applications.c.created_at))
    else:  # SQLite keeps UTC text, and date() reads its first ten characters
        day = sa.func.date(applications.c.created_at)
    for value, n in conn.execute(sa.select(day, sa.func.count()).group_by(day)):
        truth[bookkeeping.SUBMITTED_PREFIX + str(value)] = int(n)
    return truth


_RECONCILED = (
    EXPIRED_KEY,
    bookkeeping.STATUS_PREFIX,
    bookkeeping.ASSIGNED_PREFIX,
    bookkeeping.NOTIFICATION_PREFIX,
    bookkeeping.SUBMITTED_PREFIX,
)


def _stored(conn: sa.Connection) -> dict[str, int]:
    found = conn.execute(_COUNTERS)
    return {name: int(v) for name, v in found if name.startswith(_RECONCILED) and v}


def _recount_and_stored(conn: sa.Connection) -> tuple[dict[str, int], dict[str, int]]:
    return count_rows(conn), _stored(conn)


async def reconcile_counters(gcx: Gcx) -> bool:
    """Make the counters equal a recount; returns True when they had drifted.

    The recount reads every application and notification, so it first runs in a read
    snapshot off the event loop (`Database.snapshot`), holding neither the loop nor the write
    lock: counters and rows change in the same transactions, so one snapshot compares them
    exactly. Only counters that drifted are recounted again and repaired under the write lock.
    """
    truth, current = await gcx.database.snapshot(_recount_and_stored)
    if current == truth:
        return False
    async with gcx.database.write() as conn:
        truth, current = await conn.run_sync(_recount_and_stored)
        drifted = current != truth
        if drifted:
            for prefix in _RECONCILED:
                await bookkeeping.set_counters(
                    conn, {k: v for k, v in truth.items() if k.startswith(prefix)}, prefix
                )
    if drifted:
        await gcx.fire([(CountersChanged(gcx.now()), None)])
    return drifted
