"""Deadlines: the calendar, the policies, the rows kept with transitions, and the scheduler's
pass (reminders, automatic withdrawal, review targets), across restarts and two passes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.deadlines import (
    ADMINS,
    ASSIGNEE,
    Calendar,
    DeadlinePolicy,
    Reminder,
    merge,
    steps,
)
from gcx_core.entities import Actor, Role
from gcx_core.exceptions import ConfigurationError
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.services import applications, dashboard, deadlines
from gcx_core.settings import Settings
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import audit_log, notifications, status_changes
from gcx_core.storage.tables import deadlines as deadline_rows
from gcx_core.system import Gcx
from gcx_core.testing import FakeClock, make_submission

APPLICANT = Actor.applicant("192.0.2.1")
MONDAY = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)


@pytest.fixture(name="gcx_clock")
def _monday() -> FakeClock:
    return FakeClock(MONDAY)


async def submitted(gcx: Any, **overrides: Any) -> Any:
    return await applications.submit(gcx, make_submission(**overrides), APPLICANT)


async def documents_requested(gcx: Any, reviewer: Actor) -> Any:
    app = await submitted(gcx)
    await applications.act(gcx, app.id, "start_review", reviewer)
    return await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Please send it"},
    )


async def deadline(gcx: Any, app_id: int) -> Any:
    async with gcx.database.read() as conn:
        return await deadlines.deadline_of(gcx, conn, app_id)


async def sent(gcx: Any, app_id: int | None = None) -> list[tuple[str, str]]:
    query = sa.select(notifications.c.type, notifications.c.recipient).order_by(notifications.c.id)
    if app_id is not None:
        query = query.where(notifications.c.application_id == app_id)
    async with gcx.database.read() as conn:
        return [tuple(r) for r in await conn.execute(query)]


async def counters(gcx: Any, prefix: str) -> dict[str, int]:
    async with gcx.database.read() as conn:
        return {k: v for k, v in (await bookkeeping.read_counters(conn, prefix)).items() if v}


# -- the calendar and the plan, pure -------------------------------------------------------


def test_working_days_skip_weekends_and_holidays():
    calendar = Calendar(holidays=frozenset({date(2027, 1, 6)}))
    friday = datetime(2027, 1, 8, 9, 30, tzinfo=UTC)
    assert calendar.shift(MONDAY, 5, working=True) == datetime(2027, 1, 12, 9, 30, tzinfo=UTC)
    assert calendar.shift(friday, 1, working=True) == datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
    assert calendar.shift(friday, -3, working=True) == datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
    assert calendar.shift(friday, 3, working=False) == datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
    # Entered on a Saturday: the count starts on Monday.
    saturday = datetime(2027, 1, 9, 22, 0, tzinfo=UTC)
    assert calendar.shift(saturday, 1, working=True).date() == date(2027, 1, 11)


def test_working_days_are_counted_in_the_deployment_time_zone():
    # 23:30 UTC on Friday is already Saturday in Auckland: the next working day is Monday
    # there, and one working day later is Tuesday (local), 23:30 UTC Monday.
    calendar = Calendar("Pacific/Auckland")
    friday_night = datetime(2027, 1, 8, 23, 30, tzinfo=UTC)
    assert calendar.local_date(friday_night) == date(2027, 1, 9)
    assert calendar.shift(friday_night, 1, working=True) == datetime(
        2027, 1, 10, 23, 30, tzinfo=UTC
    )


def test_steps_drop_reminders_before_entry_and_end_at_the_due_time():
    policy = DeadlinePolicy(
        "documents_requested",
        "documents_due",
        5,
        reminders=(Reminder(7, ("applicant",), "r"), Reminder(2, ("applicant",), "r")),
        action="expire",
    )
    calendar = Calendar()
    due = calendar.shift(MONDAY, 5, working=False)
    plan = steps(policy, MONDAY, due, calendar)
    assert [(s.at - MONDAY).days for s in plan] == [3, 5]
    assert [s.final for s in plan] == [False, True]


def test_policies_merge_by_status_later_answers_win():
    first = DeadlinePolicy("pending_review", "review_target", 5, working_days=True)
    second = DeadlinePolicy("pending_review", "review_target", 2)
    other = DeadlinePolicy("under_review", "decision", 10)
    assert merge([[first, other], [second]]) == {"pending_review": second, "under_review": other}
    off = DeadlinePolicy("under_review", "decision", 0)
    assert merge([[first, other], None, [off]]) == {"pending_review": first}
    with pytest.raises(ConfigurationError, match="DeadlinePolicy"):
        merge([["pending_review"]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": -1}, "negative"),
        ({"reminders": (Reminder(0, ("applicant",), "r"),)}, "at least a day"),
        ({"alert_to": ("everyone",)}, "unknown audience"),
    ],
)
def test_a_malformed_policy_is_refused(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        DeadlinePolicy(**{"status": "pending_review", "kind": "k", "days": 5, **kwargs})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GCX_WORKING_DAYS": "mon,funday"}, "GCX_WORKING_DAYS"),
        ({"GCX_HOLIDAYS": "2027-01-01,25/12/2027"}, "GCX_HOLIDAYS"),
        ({"GCX_DOCUMENTS_REMINDER_DAYS": "7,-2"}, "GCX_DOCUMENTS_REMINDER_DAYS"),
        ({"GCX_HOLIDAYS_FILE": "/nonexistent/holidays"}, "GCX_HOLIDAYS_FILE"),
    ],
)
def test_bad_calendar_settings_are_named(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_calendar_settings(tmp_path):
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("# public holidays\n2027-03-06  # Independence Day\n\n2027-05-01\n")
    settings = Settings.from_env(
        {
            "GCX_WORKING_DAYS": "Sun,Mon,Tue,Wed,Thu",
            "GCX_HOLIDAYS": "2027-01-01",
            "GCX_HOLIDAYS_FILE": str(holidays),
            "GCX_REVIEW_REMINDER_DAYS": "1,2",
        }
    )
    assert settings.working_days == frozenset({6, 0, 1, 2, 3})
    assert settings.holidays == {date(2027, 1, 1), date(2027, 3, 6), date(2027, 5, 1)}
    assert settings.review_reminder_days == (2, 1)


class BadPolicies:
    def __init__(self, policy: DeadlinePolicy) -> None:
        self.policy = policy

    @hookimpl
    def gcx_deadline_policies(self, settings: Any) -> list[DeadlinePolicy]:
        return [self.policy]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (DeadlinePolicy("on_hold", "k", 3), "unknown status 'on_hold'"),
        (DeadlinePolicy("approved", "k", 3, action="expire"), "does not allow"),
    ],
)
async def test_a_policy_the_workflow_cannot_run_stops_the_process(gcx_settings, policy, message):
    pm = make_plugin_manager(plugins=[BadPolicies(policy)], load_entry_points=False)
    with pytest.raises(ConfigurationError, match=message):
        await Gcx.open(gcx_settings, plugin_manager=pm)


# -- rows kept with transitions ------------------------------------------------------------


async def test_entering_and_leaving_a_status_writes_and_deletes_its_deadline(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await submitted(gcx)
    found = await deadline(gcx, app.id)
    assert (found.status, found.kind) == ("pending_review", "review_target")
    assert found.due_at == datetime(2027, 1, 11, 9, 30, tzinfo=UTC)  # 5 working days
    assert not found.overdue
    await applications.act(gcx, app.id, "start_review", reviewer)
    assert await deadline(gcx, app.id) is None  # under_review has no policy
    after = await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Please send it"},
    )
    found = await deadline(gcx, after.id)
    assert (found.kind, found.due_at) == ("documents_due", MONDAY + timedelta(days=30))


async def test_documents_due_remind_then_withdraw_as_expired(gcx, gcx_clock, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await documents_requested(gcx, reviewer)
    before = len(await sent(gcx, app.id))

    assert (await deadlines.run_due(gcx)).total == 0
    gcx_clock.advance(days=23)  # 7 days before
    assert (await deadlines.run_due(gcx)).reminded == 1
    assert (await deadlines.run_due(gcx)).total == 0, "a step runs once"
    gcx_clock.advance(days=5)  # 2 days before
    assert (await deadlines.run_due(gcx)).reminded == 1
    new = (await sent(gcx, app.id))[before:]
    assert new == [("documents_reminder", app.contact.email)] * 2
    async with gcx.database.read() as conn:
        contexts = (
            await conn.execute(
                sa.select(notifications.c.context).where(
                    notifications.c.type == "documents_reminder"
                )
            )
        ).scalars()
        assert [c["days_left"] for c in contexts] == [7, 2]

    gcx_clock.advance(days=2)
    report = await deadlines.run_due(gcx)
    assert (report.passed, report.acted) == (1, 1)
    async with gcx.database.read() as conn:
        current = await applications.resolve(conn, app.id)
        change = (
            await conn.execute(
                sa.select(status_changes)
                .where(status_changes.c.application_id == app.id)
                .order_by(status_changes.c.id.desc())
            )
        ).first()
        audit = (
            await conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.action).where(
                    audit_log.c.action == "expire"
                )
            )
        ).all()
    assert current.status == "withdrawn"
    assert (change.action, change.reason_code, change.actor) == ("expire", "expired", "deadline")
    assert audit == [("deadline", "expire")]
    assert (await sent(gcx, app.id))[-1] == ("application_expired", app.contact.email)
    assert await deadline(gcx, app.id) is None
    assert (await deadlines.run_due(gcx)).total == 0


async def test_uploading_in_time_cancels_the_deadline(gcx, gcx_clock, gcx_staff):
    from gcx_core.services import documents

    from .test_services import PDF

    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await documents_requested(gcx, reviewer)
    gcx_clock.advance(days=10)
    await documents.upload_document(
        gcx, app.tracking_code, "tax_clearance", PDF, "tax.pdf", APPLICANT
    )
    await applications.act(gcx, app.tracking_code, "resubmit_documents", APPLICANT)
    assert await deadline(gcx, app.id) is None
    gcx_clock.advance(days=40)
    assert (await deadlines.run_due(gcx)).total == 0
    assert (await applications_status(gcx, app.id)) == "under_review"


async def applications_status(gcx: Any, app_id: int) -> str:
    async with gcx.database.read() as conn:
        return (await applications.resolve(conn, app_id)).status


async def test_steps_missed_while_no_scheduler_ran_are_not_sent_late(gcx, gcx_clock, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await documents_requested(gcx, reviewer)
    gcx_clock.advance(days=45)
    report = await deadlines.run_due(gcx)
    assert (report.reminded, report.acted) == (0, 1)
    assert "documents_reminder" not in [t for t, _ in await sent(gcx, app.id)]


async def test_reopening_starts_a_new_deadline(gcx, gcx_clock, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    app = await documents_requested(gcx, reviewer)
    gcx_clock.advance(days=31)
    await deadlines.run_due(gcx)
    await applications.act(gcx, app.id, "reopen", admin, params={"comment": "Asked by phone"})
    later = gcx_clock.advance(days=1)
    await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Once more"},
    )
    found = await deadline(gcx, app.id)
    assert (found.entered_at, found.due_at) == (later, later + timedelta(days=30))
    gcx_clock.advance(days=23)
    assert (await deadlines.run_due(gcx)).reminded == 1


async def test_the_review_target_reminds_then_alerts_and_stays_overdue(gcx, gcx_clock, gcx_staff):
    reviewer_user, reviewer = await gcx_staff(Role.REVIEWER)
    other_user, _ = await gcx_staff(Role.REVIEWER)
    admin_user, _ = await gcx_staff(Role.ADMIN)
    app = await submitted(gcx)
    before = len(await sent(gcx, app.id))
    gcx_clock.advance(days=4)  # Friday: one working day before the target (Monday)
    assert (await deadlines.run_due(gcx)).reminded == 1
    reminded = sorted(r for t, r in (await sent(gcx, app.id))[before:] if t == "review_due")
    # Nobody holds it yet: every reviewer (admins review too) hears.
    assert reminded == sorted([reviewer_user.email, other_user.email, admin_user.email])

    from gcx_core.services import assignment

    await assignment.assign(gcx, app.id, reviewer_user.id, reviewer)
    gcx_clock.advance(days=3)  # Monday, the target
    report = await deadlines.run_due(gcx)
    assert (report.passed, report.acted) == (1, 0)
    alerted = [r for t, r in await sent(gcx, app.id) if t == "review_overdue"]
    assert sorted(alerted) == sorted([reviewer_user.email, admin_user.email])
    assert (await deadline(gcx, app.id)).overdue
    assert await applications_status(gcx, app.id) == "pending_review"
    assert await counters(gcx, "overdue:") == {"overdue:pending_review": 1}
    snap = await dashboard.snapshot(gcx)
    assert snap.overdue == {"pending_review": 1}

    await applications.act(gcx, app.id, "start_review", reviewer)
    assert await counters(gcx, "overdue:") == {}
    assert (await dashboard.snapshot(gcx)).overdue == {}


async def test_two_passes_at_once_run_each_step_once(
    gcx, gcx_settings, gcx_clock, gcx_staff, gcx_parts
):
    """Two schedulers (two processes) run the pass at the same moment: each step once."""
    _, reviewer = await gcx_staff(Role.REVIEWER)
    apps = [await documents_requested(gcx, reviewer) for _ in range(3)]
    pm = make_plugin_manager(plugins=gcx_parts, load_entry_points=False)
    second = await Gcx.open(gcx_settings, plugin_manager=pm, clock=gcx_clock)
    try:
        gcx_clock.advance(days=23)
        first_report, second_report = await asyncio.gather(
            deadlines.run_due(gcx, batch=1), deadlines.run_due(second, batch=1)
        )
        assert first_report.reminded + second_report.reminded == 3
        gcx_clock.advance(days=7)
        first_report, second_report = await asyncio.gather(
            deadlines.run_due(gcx, batch=2), deadlines.run_due(second, batch=2)
        )
        assert first_report.acted + second_report.acted == 3
    finally:
        await second.close()
    for app in apps:
        types = [t for t, _ in await sent(gcx, app.id)]
        assert types.count("documents_reminder") == 1
        assert types.count("application_expired") == 1


async def test_deadlines_survive_a_restart(gcx, gcx_settings, gcx_clock, gcx_staff, gcx_parts):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await documents_requested(gcx, reviewer)
    await gcx.close()
    gcx_clock.advance(days=30)
    pm = make_plugin_manager(plugins=gcx_parts, load_entry_points=False)
    again = await Gcx.open(gcx_settings, plugin_manager=pm, clock=gcx_clock)
    try:
        assert (await deadlines.run_due(again)).acted == 1
        assert await applications_status(again, app.id) == "withdrawn"
    finally:
        await again.close()


class RefusesExpiry:
    """A plugin that refuses to let one application expire (say, an appeal is pending)."""

    def __init__(self) -> None:
        self.protected: set[int] = set()

    @hookimpl
    def gcx_before_transition(self, application: Any, action: str, actor: Any, params: Any):
        if action == "expire" and application.id in self.protected:
            raise RuntimeError("an appeal is pending")


async def test_a_failing_step_is_retried_later_and_does_not_stop_the_others(
    gcx_settings, gcx_clock, gcx_parts, caplog, monkeypatch
):
    # Failures are logged through a throttled logger; this test wants every line.
    monkeypatch.setattr(deadlines, "failure_log", logging.getLogger("gcx_core.deadlines.test"))
    refuses = RefusesExpiry()
    pm = make_plugin_manager(plugins=[*gcx_parts, refuses], load_entry_points=False)
    gcx = await Gcx.open(gcx_settings, plugin_manager=pm, clock=gcx_clock)
    try:
        from gcx_core.services.accounts import create_user

        user, _ = await create_user(
            gcx,
            "r@staff.example.com",
            Role.REVIEWER,
            Actor.system("t"),
            password="correct horse battery staple",
        )
        reviewer = Actor.for_user(user)
        stuck = await documents_requested(gcx, reviewer)
        fine = await documents_requested(gcx, reviewer)
        refuses.protected.add(stuck.id)
        gcx_clock.advance(days=31)
        report = await deadlines.run_due(gcx)
        assert (report.acted, report.failed) == (1, 1)
        assert "an appeal is pending" in caplog.text
        assert await applications_status(gcx, fine.id) == "withdrawn"
        assert await applications_status(gcx, stuck.id) == "documents_requested"
        assert (await deadlines.run_due(gcx)).total == 0, "postponed, not retried at once"
        refuses.protected.clear()
        gcx_clock.advance(minutes=11)
        assert (await deadlines.run_due(gcx)).acted == 1
        assert await applications_status(gcx, stuck.id) == "withdrawn"
    finally:
        await gcx.close()


class ReviewInTenDays:
    @hookimpl
    def gcx_deadline_policies(self, settings: Any) -> list[DeadlinePolicy]:
        return [
            DeadlinePolicy("pending_review", "review_target", 0),  # the default's, removed
            DeadlinePolicy(
                "under_review",
                "decision_due",
                10,
                alert_to=(ADMINS, ASSIGNEE),
                action="reject",
                params={"reason_code": "other", "message": "No decision in time"},
            ),
        ]


async def test_a_plugin_replaces_and_adds_policies(gcx_settings, gcx_clock, gcx_parts):
    pm = make_plugin_manager(plugins=[*gcx_parts, ReviewInTenDays()], load_entry_points=False)
    gcx = await Gcx.open(gcx_settings, plugin_manager=pm, clock=gcx_clock)
    try:
        assert sorted(gcx.deadlines.policies) == ["documents_requested", "under_review"]
        app = await submitted(gcx)
        assert await deadline(gcx, app.id) is None
        await applications.act(gcx, app.id, "start_review", Actor.system("t"))
        gcx_clock.advance(days=10)
        assert (await deadlines.run_due(gcx)).acted == 1
        assert await applications_status(gcx, app.id) == "rejected"
    finally:
        await gcx.close()


async def test_backfill_writes_missing_deadlines_and_the_pass_drops_stale_ones(
    gcx, gcx_clock, gcx_staff
):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    waiting = await submitted(gcx)
    asked = await documents_requested(gcx, reviewer)
    async with gcx.database.write() as conn:
        await conn.execute(deadline_rows.delete())
    assert await deadlines.backfill(gcx) == 2
    assert await deadlines.backfill(gcx) == 0
    assert (await deadline(gcx, waiting.id)).due_at == datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
    assert (await deadline(gcx, asked.id)).entered_at == asked.status_changed_at
    # A row left for a status the application is no longer in is dropped, not acted on.
    async with gcx.database.write() as conn:
        await conn.execute(
            deadline_rows.update()
            .where(deadline_rows.c.application_id == asked.id)
            .values(status="pending_review", next_at=MONDAY)
        )
    report = await deadlines.run_due(gcx)
    assert (report.skipped, report.acted, report.reminded) == (1, 0, 0)
    assert await deadline(gcx, asked.id) is None


async def test_ageing_buckets_move_with_changes_and_with_time(gcx, gcx_clock, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    old = await submitted(gcx)
    gcx_clock.advance(days=5)
    await submitted(gcx)
    assert await counters(gcx, "ageing:") == {"ageing:pending_review:0-2": 2}
    assert await deadlines.refresh_figures(gcx)
    assert await counters(gcx, "ageing:") == {
        "ageing:pending_review:0-2": 1,
        "ageing:pending_review:3-7": 1,
    }
    assert not await deadlines.refresh_figures(gcx), "nothing moved"
    await applications.act(gcx, old.id, "start_review", reviewer)
    assert await counters(gcx, "ageing:") == {
        "ageing:pending_review:0-2": 1,
        "ageing:under_review:0-2": 1,
    }
    gcx_clock.advance(days=40)
    await deadlines.refresh_figures(gcx)
    snap = await dashboard.snapshot(gcx)
    assert snap.ageing["pending_review"] == {"0-2": 0, "3-7": 0, "8-30": 0, "30+": 1}
    assert snap.ageing["under_review"] == {"0-2": 0, "3-7": 0, "8-30": 0, "30+": 1}
    async with gcx.database.read() as conn:
        truth = await dashboard.recount(conn, gcx)
        stored = {k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v}
    assert stored == truth
