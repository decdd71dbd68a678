"""The scheduler's deadline pass over 1M applications with 100k steps due, through the service
the minute's `gcx.deadlines` job calls (`gcx_core.services.deadlines.run_due`).

    python bench/bench_deadlines.py [--size 1000000] [--due 100000]

A fresh embedded database gets `--size` applications over every status (as bench_queues.py
writes them) and 20 reviewers and 2 admins; the ones waiting for documents or for review get
their deadline rows, of which `--due` are due now: 40% documents reminders (an email to the
applicant), 30% documents deadlines passed (the application is withdrawn as expired: a whole
transition with its status change, audit entry, email and counters), 30% review targets
missed (alerts to the reviewer and the admins). The rest are due later.

Timed: the pass, start to end, and how long the event loop was held at a time while it ran
(a 1 ms ticker records the gap between its wake-ups). Goals: the pass within 60 s, the loop
never held more than 20 ms. Also printed: a baseline in the same run, the same number of outbox
rows written directly in batches of the same size, so the pass reads as a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_queues import INSERT  # noqa: E402
from common import emit  # noqa: E402

from gcx_core.entities import Actor, NotificationDraft  # noqa: E402
from gcx_core.samples import make_submission  # noqa: E402
from gcx_core.services import applications, deadlines  # noqa: E402
from gcx_core.services.event_outbox import write_drafts  # noqa: E402
from gcx_core.settings import Settings  # noqa: E402
from gcx_core.system import Gcx, settle_heap  # noqa: E402

STAMP = "%Y-%m-%d %H:%M:%S.%f"


def _at(value: datetime) -> str:
    return value.astimezone(UTC).strftime(STAMP)


def seed(path: Path, size: int, due: int, details: str, gcx: Gcx) -> int:
    """Applications, staff and deadline rows; returns how many deadline rows were written."""
    now = datetime.now(UTC)
    calendar = gcx.deadlines.calendar
    documents = gcx.deadlines.policy("documents_requested")
    review = gcx.deadlines.policy("pending_review")
    assert documents is not None and review is not None
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM applications")
        db.execute("DELETE FROM deadlines")
        db.execute(INSERT, {"count": size, "details": details})
        staff = [(f"reviewer{i}@staff.example.com", "reviewer", _at(now)) for i in range(1, 21)] + [
            (f"admin{i}@staff.example.com", "admin", _at(now)) for i in (1, 2)
        ]
        db.execute("DELETE FROM users")
        db.executemany(
            "INSERT INTO users (email, name, role, is_active, created_at) VALUES (?, '', ?, 1, ?)",
            staff,
        )
        waiting = db.execute(
            "SELECT id, status FROM applications WHERE status IN "
            "('documents_requested', 'pending_review') ORDER BY id"
        ).fetchall()
        docs = [i for i, s in waiting if s == "documents_requested"]
        pending = [i for i, s in waiting if s == "pending_review"]
        reminders, expiries = docs[: due * 4 // 10], docs[due * 4 // 10 : due * 7 // 10]
        breaches = pending[: due - len(reminders) - len(expiries)]
        rows = []

        def row(app_id: int, status: str, kind: str, entered: datetime, step: int) -> None:
            policy = documents if status == "documents_requested" else review
            due_at = calendar.shift(entered, policy.days, working=policy.working_days)
            plan = deadlines.steps(policy, entered, due_at, calendar)
            next_at = plan[step].at if step < len(plan) else None
            rows.append(
                (
                    app_id,
                    status,
                    kind,
                    _at(entered),
                    _at(due_at),
                    step,
                    _at(next_at) if next_at else None,
                )
            )

        for app_id in reminders:  # 7 days before, a day ago: the first reminder is due
            row(app_id, "documents_requested", "documents_due", now - timedelta(days=24), 0)
        for app_id in expiries:  # due a day ago, both reminders sent
            row(app_id, "documents_requested", "documents_due", now - timedelta(days=31), 2)
        for app_id in breaches:  # the target passed, its reminder sent
            row(app_id, "pending_review", "review_target", now - timedelta(days=12), 1)
        for app_id in docs[len(reminders) + len(expiries) :]:  # due later
            row(app_id, "documents_requested", "documents_due", now, 0)
        for app_id in pending[len(breaches) :]:
            row(app_id, "pending_review", "review_target", now, 0)
        db.executemany(
            "INSERT INTO deadlines (application_id, status, kind, entered_at, due_at, step, "
            "next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("DELETE FROM counters")
        db.execute("ANALYZE")
    return len(rows)


class Ticker:
    """Wakes every millisecond and keeps the gaps: a gap well past 1 ms is the loop held."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.running = True

    async def run(self) -> None:
        last = time.perf_counter()
        while self.running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append((now - last) * 1000)
            last = now


async def timed(coro: object) -> tuple[object, float, list[float]]:
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    started = time.perf_counter()
    result = await coro  # type: ignore[misc]
    took = time.perf_counter() - started
    ticker.running = False
    await ticking
    return result, took, ticker.gaps


async def baseline(gcx: Gcx, count: int) -> float:
    """The same number of outbox rows, written directly in batches of the pass's size."""
    drafts = [NotificationDraft("documents_reminder", f"b{i}@example.com", {}) for i in range(100)]
    started = time.perf_counter()
    for _ in range(0, count, 100):
        async with gcx.database.write() as conn:
            await write_drafts(gcx, conn, drafts, application_id=None, at=gcx.now())
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="100k applications, 10k due")
    args = parser.parse_args()
    if args.quick:
        args.size, args.due = 100_000, 10_000
    data_dir = Path(tempfile.mkdtemp(prefix="gcx-bench-deadlines-"))
    # GCX as installed: plugin distributions that happen to be installed beside it (the
    # development environment has gcx-webhook and gcx-sms) stay out of the figures.
    settings = Settings(
        data_dir=data_dir, secret_key="bench-secret", disabled_plugins=("gcx_webhook", "gcx_sms")
    )
    async with await Gcx.open(settings, migrate=True) as gcx:
        await applications.submit(gcx, make_submission(), Actor.applicant())
        with sqlite3.connect(data_dir / "gcx.db") as db:
            (details,) = db.execute("SELECT details FROM applications").fetchone()
            db.execute("DELETE FROM notifications")
            db.execute("DELETE FROM status_changes")
            db.execute("DELETE FROM audit_log")
        started = time.perf_counter()
        written = seed(data_dir / "gcx.db", args.size, args.due, details, gcx)
        print(
            f"seeded {args.size:,} applications and {written:,} deadlines "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    async with await Gcx.open(settings) as gcx:
        settle_heap()  # as every GCX process does once started
        report, took, gaps = await timed(deadlines.run_due(gcx))
        assert report.total == args.due, report
        base = await baseline(gcx, args.due)
    gaps.sort()
    held = max(gaps)
    p99 = gaps[int(len(gaps) * 0.99) - 1]
    print(
        f"pass: {report.total:,} steps ({report.reminded:,} reminders, {report.passed:,} "
        f"deadlines passed, {report.acted:,} withdrawn as expired) in {took:.1f} s "
        f"({report.total / took:,.0f} steps/s; goal <= 60 s)"
    )
    over = sum(1 for g in gaps if g > 20)
    print(
        f"event loop while it ran: longest hold {held:.1f} ms (goal <= 20 ms), "
        f"p99 gap {p99:.1f} ms, median {statistics.median(gaps):.1f} ms, "
        f"{over} of {len(gaps):,} gaps over 20 ms"
    )
    print(
        f"baseline: {args.due:,} outbox rows written directly in {base:.1f} s; "
        f"pass / baseline: {took / base:.1f}"
    )
    emit(
        {
            "deadlines": {
                "seconds": took,
                "steps": report.total,
                "held_ms": held,
                "p99_gap_ms": p99,
                "gaps_over_20ms": over,
                "baseline_seconds": base,
                "size": args.size,
            }
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
