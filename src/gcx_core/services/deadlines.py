"""Deadlines in the database, and the scheduler's pass over the due ones.

A transition into a status with a policy writes the application's deadline row in its own
transaction; a transition out of it deletes the row (services.transition_writes calls
`enter_statuses`). The scheduler's `run_due` takes due rows in batches, oldest first: each
row's step is claimed with a conditional update (`step` moves on only from the value read),
so a row's step runs once however many schedulers or workers run the pass at once, and the
step's notifications or transition commit with the claim or not at all.

Overdue applications (a deadline past with nothing left to do: a review target missed, an
action refused) are counted in `overdue:<status>` counters, and how long applications have
waited in each open status in `ageing:<status>:<bucket>`; both move with every change and are
recounted by `refresh_figures` each minute, as time moves applications from one bucket to the
next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gcx_core.deadlines import ADMINS, APPLICANT, ASSIGNEE, DeadlinePolicy, steps
from gcx_core.entities import Actor, Application, NotificationDraft, User
from gcx_core.events import CountersChanged, NotificationsQueued
from gcx_core.logs import throttled
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping, rows
from gcx_core.storage.applications import to_application
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import applications, deadlines
from gcx_core.system import Gcx

if TYPE_CHECKING:
    from gcx_core.services.transition_writes import Recorded

log = logging.getLogger(__name__)
failure_log = throttled(__name__ + ".failed", interval=60.0)

# Due rows read per transaction, and the time a transaction may spend on them: on SQLite a
# transaction's statements run on the event loop (its commit does not: Database.batch), so a
# pass takes turns with the web's requests. The rows read but not reached stay due for the
# next transaction.
BATCH = 24
BUDGET = 0.006  # seconds
PAUSE = 0.001  # seconds between two transactions
# Transitions (expiries) made together, between two looks at the time budget.
ACTION_GROUP = 5
# A row whose step failed on its own is tried again this much later.
RETRY_AFTER = timedelta(minutes=10)
# Ageing buckets by whole days in the status: (name, first day past the bucket).
AGEING = (("0-2", 3), ("3-7", 8), ("8-30", 31), ("30+", None))


def ageing_bucket(days: int) -> str:
    for name, past in AGEING:
        if past is None or days < past:
            return name
    raise AssertionError("unreachable")


@attrs.frozen
class DeadlineView:
    """An application's pending deadline, as pages show it."""

    status: str
    kind: str
    entered_at: datetime
    due_at: datetime
    overdue: bool
    next_at: datetime | None

    @property
    def label(self) -> str:
        """What the deadline is, in words: "Documents due", "Review target"."""
        return KIND_LABELS.get(self.kind) or self.kind.replace("_", " ").capitalize()


KIND_LABELS = {"documents_due": "Documents due", "review_target": "Review target"}


# -- in a transition's transaction --------------------------------------------------------


async def enter_statuses(gcx: Gcx, conn: Connection, items: Sequence[Recorded]) -> Counter[str]:
    """Delete the deadlines of applications leaving their status and write those of the
    status they enter; returns the counter changes (overdue and ageing) to make with them."""
    deltas: Counter[str] = Counter()
    moved = [i for i in items if i.before is None or i.before.status != i.after.status]
    if not moved:
        return deltas
    leaving = [i.after.id for i in moved if i.before is not None]
    if leaving:
        gone = await conn.execute(
            deadlines.delete()
            .where(deadlines.c.application_id.in_(leaving))
            .returning(deadlines.c.status, deadlines.c.next_at)
        )
        for status, next_at in gone:
            if next_at is None:
                deltas[bookkeeping.OVERDUE_PREFIX + status] -= 1
    new = []
    for i in moved:
        if i.before is not None and i.before.status and gcx.workflow.waits(i.before.status):
            days = max((i.event.at - i.before.status_changed_at).days, 0)
            deltas[bookkeeping.ageing_key(i.before.status, ageing_bucket(days))] -= 1
        if gcx.workflow.waits(i.after.status):
            deltas[bookkeeping.ageing_key(i.after.status, AGEING[0][0])] += 1
        policy = gcx.deadlines.policy(i.after.status)
        if policy is not None:
            new.append(_new_row(gcx, policy, i.after.id, i.event.at))
    if new:
        await conn.execute(deadlines.insert(), new)
    return deltas


def _new_row(gcx: Gcx, policy: DeadlinePolicy, app_id: int, entered: datetime) -> dict[str, Any]:
    calendar = gcx.deadlines.calendar
    due = calendar.shift(entered, policy.days, working=policy.working_days)
    first = steps(policy, entered, due, calendar)[0]
    return {
        "application_id": app_id,
        "status": policy.status,
        "kind": policy.kind,
        "entered_at": entered,
        "due_at": due,
        "step": 0,
        "next_at": first.at,
    }


# -- the scheduler's pass ------------------------------------------------------------------


@attrs.frozen
class PassReport:
    """What one pass did: reminders sent, deadlines passed (alerts), actions taken, rows
    that failed (tried again later), and rows another pass had already claimed."""

    reminded: int = 0
    passed: int = 0
    acted: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: PassReport) -> PassReport:
        pairs = zip(attrs.astuple(self), attrs.astuple(other), strict=True)
        return PassReport(*(a + b for a, b in pairs))

    @property
    def total(self) -> int:
        """Rows handled: reminded, passed (`acted` counts some of those), failed, skipped."""
        return self.reminded + self.passed + self.failed + self.skipped


# Oldest due first, along the `next_at` index: a handled row's `next_at` moves past `now`
# (or to NULL), so each batch starts where the last one ended without sorting what is due.
# Read in the batch's own write transaction: on SQLite nobody else writes meanwhile, and on
# PostgreSQL rows another pass has locked are skipped (that pass is handling them).
def _due(now: datetime, limit: int, only: int | None = None) -> sa.Select[Any]:
    query = sa.select(deadlines).where(deadlines.c.next_at <= now)
    if only is not None:
        query = query.where(deadlines.c.id == only)
    return query.order_by(deadlines.c.next_at).limit(limit).with_for_update(skip_locked=True)


async def run_due(gcx: Gcx, *, batch: int = BATCH) -> PassReport:
    """Carry out every deadline step due now, up to `batch` rows per transaction.

    A batch that fails is rolled back and its rows are taken one by one, each in its own
    transaction; a row that fails alone is logged and tried again RETRY_AFTER later. Yields
    to the event loop between batches.
    """
    now = gcx.now()
    report = PassReport()
    seen: set[int] = set()
    while True:
        try:
            done, fired, ids = await _run_batch(gcx, now, batch, seen)
        except Exception:
            async with gcx.database.read() as conn:
                found = await conn.execute(
                    sa.select(deadlines.c.id)
                    .where(deadlines.c.next_at <= now)
                    .order_by(deadlines.c.next_at)
                    .limit(batch)
                )
                ids = [i for i in found.scalars() if i not in seen]
            done, fired = PassReport(), []
            for row_id in ids:
                one, more = await _run_one(gcx, now, row_id)
                done, fired = done + one, fired + more
        # Nothing due, or the first due rows are ones this pass handled already (a row that
        # could not be moved on): the next pass takes up from there.
        if not ids:
            return report
        seen.update(ids)
        report += done
        await gcx.fire(fired)
        # A pause, not just a turn of the loop: a task woken meanwhile (a request, a timer) is
        # stepped a turn or two later, and must get its go before the next batch.
        await asyncio.sleep(PAUSE)


async def _run_one(gcx: Gcx, now: datetime, row_id: int) -> tuple[PassReport, list[Any]]:
    try:
        done, fired, _ = await _run_batch(gcx, now, 1, set(), only=row_id)
        return done, fired
    except Exception as exc:
        async with gcx.database.read() as conn:
            row = (await conn.execute(sa.select(deadlines).where(deadlines.c.id == row_id))).first()
        app_id = row.application_id if row is not None else None
        failure_log.error(
            "deadline %s of application %s failed; tried again in %s",
            row_id,
            app_id,
            RETRY_AFTER,
            exc_info=exc,
            extra={"event": "deadline.failed", "application_id": app_id},
        )
        if row is not None:
            async with gcx.database.write() as conn:
                await conn.execute(
                    deadlines.update()
                    .where(deadlines.c.id == row_id, deadlines.c.step == row.step)
                    .values(next_at=now + RETRY_AFTER)
                )
        return PassReport(failed=1), []


async def _run_batch(
    gcx: Gcx, now: datetime, limit: int, seen: set[int], *, only: int | None = None
) -> tuple[PassReport, list[Any], list[int]]:
    """One transaction: claim up to `limit` due rows (not in `seen`) and carry out their
    steps; returns what was done, what to fire, and the rows' ids."""
    # Imported here: transition services import this module for `enter_statuses`.
    from gcx_core.services.applications import act_many_within, clean_params
    from gcx_core.services.event_outbox import write_outbox

    actor = Actor.system("deadline")

    async def claim_and_carry_out(conn: Connection) -> tuple[PassReport, list[Any], list[int]]:
        reminded = passed = acted = skipped = 0
        fired: list[Any] = []
        started = time.perf_counter()
        due = [r for r in await rows.dicts(conn, _due(now, limit, only)) if r["id"] not in seen]
        if not due:
            return PassReport(), [], []
        apps = await _applications(conn, [r["application_id"] for r in due])
        staff = await user_rows.active_staff(conn)
        entries: list[tuple[NotificationDraft, int, str]] = []
        actions: dict[tuple[str, tuple[Any, ...]], list[Application]] = {}
        deltas: Counter[str] = Counter()
        claims: list[dict[str, Any]] = []
        handled: list[int] = []

        async def take_actions() -> None:
            nonlocal acted
            for (action, params), group in actions.items():
                # The transitions delete their rows (the applications leave the status).
                _, more = await act_many_within(
                    gcx, conn, group, action, actor, clean_params(dict(params))
                )
                fired.extend(e for events in more for e in events)
                acted += len(group)
            actions.clear()

        for row in due:
            # The loop waits while this transaction runs (SQLite runs on it): past the time
            # budget, the rows left stay due for the next transaction.
            if handled and time.perf_counter() - started > BUDGET:
                break
            handled.append(row["id"])
            app = apps.get(row["application_id"])
            policy = gcx.deadlines.policy(row["status"])
            if app is None or app.status != row["status"] or policy is None:
                # A policy removed, or a row left behind: nothing to do any more.
                await conn.execute(deadlines.delete().where(deadlines.c.id == row["id"]))
                if row["next_at"] is None:
                    deltas[bookkeeping.OVERDUE_PREFIX + row["status"]] -= 1
                skipped += 1
                continue
            plan = steps(policy, row["entered_at"], row["due_at"], gcx.deadlines.calendar)
            index = min(row["step"], len(plan) - 1)
            # Steps missed while no scheduler ran: only the latest due one is taken.
            while index + 1 < len(plan) and plan[index + 1].at <= now:
                index += 1
            step = plan[index]
            following = plan[index + 1].at if index + 1 < len(plan) else None
            claims.append({"row_id": row["id"], "step": index + 1, "next_at": following})
            key = f"dl{row['id']}.{index}"
            if step.reminder is not None:
                found = _drafts(gcx, app, step.reminder.to, step.reminder.template, staff, row, now)
                entries += [(d, app.id, f"{key}:{d.channel}:{d.recipient}") for d in found]
                reminded += 1
                continue
            passed += 1
            if policy.alert_to:
                found = _drafts(gcx, app, policy.alert_to, policy.alert_template, staff, row, now)
                entries += [(d, app.id, f"{key}:{d.channel}:{d.recipient}") for d in found]
            if policy.action is not None:
                group_key = (policy.action, tuple(sorted(policy.params.items())))
                actions.setdefault(group_key, []).append(app)
                if sum(map(len, actions.values())) >= ACTION_GROUP:
                    await take_actions()
            else:
                deltas[bookkeeping.OVERDUE_PREFIX + row["status"]] += 1
        await take_actions()
        if claims:
            # The rows were read under this transaction's lock: the claims cannot miss.
            await conn.execute(
                deadlines.update()
                .where(deadlines.c.id == sa.bindparam("row_id"))
                .values(step=sa.bindparam("step"), next_at=sa.bindparam("next_at")),
                claims,
            )
        if entries:
            entries = _routed(gcx, entries, apps)
            queued = await write_outbox(gcx, conn, entries, at=now)
            fired.append((NotificationsQueued(tuple(queued), now), None))
        if deltas:
            await bookkeeping.bump_counters(conn, deltas)
            fired.append((CountersChanged(now), None))
        return PassReport(reminded, passed, acted, 0, skipped), fired, handled

    # On SQLite its commit, which the file system may stall, runs off the event loop.
    return await gcx.database.batch(claim_and_carry_out)


def _routed(
    gcx: Gcx, entries: list[tuple[NotificationDraft, int, str]], apps: dict[int, Application]
) -> list[tuple[NotificationDraft, int, str]]:
    """The entries and the copies plugins route to other channels or recipients."""
    route = gcx.plugins.hook.gcx_route_notification
    if not route.get_hookimpls():
        return entries
    more = [
        (copy, app_id, f"{key}:{copy.channel}:{copy.recipient}")
        for draft, app_id, key in entries
        for routed in route(draft=draft, application=apps[app_id])
        for copy in routed or ()
    ]
    return entries + more


async def _applications(conn: Connection, ids: Iterable[int]) -> dict[int, Application]:
    found = await rows.dicts(conn, sa.select(applications).where(applications.c.id.in_(ids)))
    return {r["id"]: to_application(r) for r in found}


def _drafts(
    gcx: Gcx,
    app: Application,
    audiences: Iterable[str],
    template: str,
    staff: list[User],
    row: dict[str, Any],
    now: datetime,
) -> list[NotificationDraft]:
    """One draft per recipient: the applicant, the reviewer holding the application (every
    reviewer while nobody does), the admins; staff named twice hear once."""
    context = {
        "business_name": app.business.name,
        "tracking_code": app.tracking_code,
        "application_id": app.id,
        "status": app.status,
        "deadline": row["kind"],
        "due_date": _day(gcx.deadlines.calendar.local_date(row["due_at"])),
        "days_left": max((row["due_at"] - now).days, 0),
        "days_over": max((now - row["due_at"]).days, 0),
    }
    recipients: dict[str, str] = {}  # address: "applicant" or "staff", first named first
    for audience in audiences:
        if audience == APPLICANT:
            recipients.setdefault(app.contact.email, APPLICANT)
        elif audience == ASSIGNEE:
            held = [u for u in staff if u.id == app.assigned_reviewer_id]
            for user in held or [u for u in staff if u.can("review")]:
                recipients.setdefault(user.email, "staff")
        elif audience == ADMINS:
            for user in staff:
                if user.can("admin"):
                    recipients.setdefault(user.email, "staff")
    return [
        NotificationDraft(template, address, {**context, "audience": audience})
        for address, audience in recipients.items()
    ]


# -- kept figures and repairs --------------------------------------------------------------


def figures(conn: sa.Connection, waiting: Iterable[str], now: datetime) -> dict[str, int]:
    """Overdue deadlines by status and open applications by status and ageing bucket, counted
    from the rows (index range counts: no table scan)."""
    found: dict[str, int] = {}
    for status, n in conn.execute(
        sa.select(deadlines.c.status, sa.func.count())
        .where(deadlines.c.next_at.is_(None))
        .group_by(deadlines.c.status)
    ):
        found[bookkeeping.OVERDUE_PREFIX + status] = int(n)
    for status in waiting:
        younger = []
        for _, past in AGEING[:-1]:
            assert past is not None
            younger.append(
                sa.select(sa.func.count())
                .select_from(applications)
                .where(
                    applications.c.status == status,
                    applications.c.status_changed_at > now - timedelta(days=past),
                )
                .scalar_subquery()
            )
        total = (
            sa.select(sa.func.count())
            .select_from(applications)
            .where(applications.c.status == status)
            .scalar_subquery()
        )
        counts = conn.execute(sa.select(*younger, total)).one()
        below = 0
        for (name, _), upto in zip(AGEING, counts, strict=True):
            found[bookkeeping.ageing_key(status, name)] = int(upto) - below
            below = int(upto)
    return {k: v for k, v in found.items() if v}


async def refresh_figures(gcx: Gcx) -> bool:
    """Recount the overdue and ageing counters (time moves applications between buckets);
    returns True, and tells the dashboards, when they changed."""
    now = gcx.now()
    changed = False
    async with gcx.database.write() as conn:
        truth = await conn.run_sync(figures, gcx.workflow.waiting, now)
        for prefix in (bookkeeping.OVERDUE_PREFIX, bookkeeping.AGEING_PREFIX):
            mine = {k: v for k, v in truth.items() if k.startswith(prefix)}
            stored = await bookkeeping.read_counters(conn, prefix)
            if {k: v for k, v in stored.items() if v} != mine:
                await bookkeeping.set_counters(conn, mine, prefix)
                changed = True
    if changed:
        await gcx.fire([(CountersChanged(now), None)])
    return changed


async def backfill(gcx: Gcx, *, batch: int = 1000) -> int:
    """Write the deadlines missing for applications already in a status with a policy (a
    policy added, or a database from before deadlines), counted from when they entered it;
    returns how many were written."""
    written = 0
    for status, policy in gcx.deadlines.policies.items():
        while True:
            async with gcx.database.write() as conn:
                missing = (
                    await conn.execute(
                        sa.select(applications.c.id, applications.c.status_changed_at)
                        .outerjoin(deadlines, deadlines.c.application_id == applications.c.id)
                        .where(applications.c.status == status, deadlines.c.id.is_(None))
                        .limit(batch)
                    )
                ).all()
                if missing:
                    # A transition may write one meanwhile: the newer one stands.
                    await conn.execute(
                        _insert_missing(gcx.database.dialect),
                        [_new_row(gcx, policy, app_id, at) for app_id, at in missing],
                    )
            written += len(missing)
            if len(missing) < batch:
                break
            await asyncio.sleep(0)
    return written


async def deadline_for(gcx: Gcx, app_id: int) -> DeadlineView | None:
    """The application's pending deadline (None when its status has none)."""
    async with gcx.database.read() as conn:
        return await deadline_of(gcx, conn, app_id)


async def deadline_of(gcx: Gcx, conn: Connection, app_id: int) -> DeadlineView | None:
    row = (
        await conn.execute(sa.select(deadlines).where(deadlines.c.application_id == app_id))
    ).first()
    if row is None:
        return None
    now = gcx.now()
    return DeadlineView(
        row.status, row.kind, row.entered_at, row.due_at, row.due_at <= now, row.next_at
    )


def _insert_missing(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(deadlines).on_conflict_do_nothing(index_elements=["application_id"])


def _day(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"
