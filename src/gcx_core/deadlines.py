"""Deadlines: how long an application may stay in a status, and what happens as time runs out.

A `DeadlinePolicy` belongs to a status. When an application enters that status a deadline
row is written in the same transaction (services.deadlines); its steps are the policy's
reminders, then, when it falls due, the policy's alert and its action (a workflow transition
taken by the system, such as `expire`). Leaving the status deletes the row, so re-entering it
(a reopen, a second request for documents) starts a new deadline from that moment.

Nothing here does I/O: the calendar arithmetic and the plan of steps are pure, so they are
tested on their own and a plugin can compute the same dates.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from gcx_core.exceptions import ConfigurationError

# Who a reminder or an alert goes to.
APPLICANT = "applicant"
ASSIGNEE = "assignee"  # the reviewer holding the application; every reviewer when nobody does
ADMINS = "admins"
AUDIENCES = frozenset({APPLICANT, ASSIGNEE, ADMINS})

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@attrs.frozen
class Reminder:
    """A notification `before` days (working days when the policy counts them) ahead of the
    due time, of type `template`, to each audience in `to`."""

    before: int
    to: tuple[str, ...]
    template: str


@attrs.frozen
class DeadlinePolicy:
    """How long an application may stay in `status`.

    :param status: the status the deadline runs in; leaving it cancels the deadline.
    :param kind: a short name for it (``documents_due``, ``review_target``), shown to staff
        and kept on the row; one policy per status.
    :param days: how long, counted from entering the status; 0 turns the policy off.
    :param working_days: count only working days (the calendar's weekdays, not holidays).
    :param reminders: notifications ahead of the due time.
    :param alert_to: who hears when the deadline passes (``alert_template``).
    :param action: a workflow action the system takes when the deadline passes, such as
        ``expire``; None leaves the application where it is, marked overdue.
    :param params: the action's parameters (``{"reason_code": "expired"}``).
    """

    status: str
    kind: str
    days: int
    working_days: bool = False
    reminders: tuple[Reminder, ...] = ()
    alert_to: tuple[str, ...] = ()
    alert_template: str = "deadline_passed"
    action: str | None = None
    params: Mapping[str, Any] = attrs.field(
        factory=dict, converter=lambda p: MappingProxyType(dict(p))
    )

    @property
    def tells_applicant(self) -> bool:
        """Whether the applicant hears of this deadline (and so sees its date)."""
        return any(APPLICANT in r.to for r in self.reminders) or APPLICANT in self.alert_to

    def __attrs_post_init__(self) -> None:
        if self.days < 0:
            raise ConfigurationError(f"deadline for {self.status!r}: days must not be negative")
        for reminder in self.reminders:
            if reminder.before <= 0:
                raise ConfigurationError(
                    f"deadline for {self.status!r}: a reminder comes at least a day before"
                )
        unknown = {a for r in self.reminders for a in r.to} | set(self.alert_to)
        unknown -= AUDIENCES
        if unknown:
            raise ConfigurationError(
                f"deadline for {self.status!r}: unknown audience {sorted(unknown)}; "
                f"use {', '.join(sorted(AUDIENCES))}"
            )


@attrs.frozen
class Calendar:
    """Working days in the deployment's time zone: the weekdays worked, less the holidays."""

    time_zone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))  # Monday is 0
    holidays: frozenset[date] = frozenset()

    def local_date(self, at: datetime) -> date:
        """The day `at` falls on in the deployment's time zone."""
        return at.astimezone(zoneinfo.ZoneInfo(self.time_zone)).date()

    def is_working(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def shift(self, start: datetime, days: int, *, working: bool) -> datetime:
        """`start` moved by `days` (negative: back); with `working`, only working days count,
        and the result keeps `start`'s local time of day on a working day."""
        if not working or days == 0:
            return start + timedelta(days=days)
        if not self.weekdays:
            raise ConfigurationError("the working calendar has no working weekday")
        zone = zoneinfo.ZoneInfo(self.time_zone)
        local = start.astimezone(zone)
        day, step, left = local.date(), 1 if days > 0 else -1, abs(days)
        while left:
            day += timedelta(days=step)
            if self.is_working(day):
                left -= 1
        moved = datetime.combine(day, time(local.hour, local.minute, local.second), zone)
        return moved.astimezone(start.tzinfo)


@attrs.frozen
class Step:
    """One thing a deadline does at `at`: a reminder, or (the last step) the due time's alert
    and action."""

    at: datetime
    reminder: Reminder | None = None

    @property
    def final(self) -> bool:
        return self.reminder is None


def due_at(policy: DeadlinePolicy, entered: datetime, calendar: Calendar) -> datetime:
    return calendar.shift(entered, policy.days, working=policy.working_days)


def steps(
    policy: DeadlinePolicy, entered: datetime, due: datetime, calendar: Calendar
) -> list[Step]:
    """The deadline's steps in order: reminders still ahead when the status was entered (a
    reminder that would come before that is dropped), then the due time."""
    found = []
    for reminder in policy.reminders:
        at = calendar.shift(due, -reminder.before, working=policy.working_days)
        if entered < at < due:
            found.append(Step(at, reminder))
    found.sort(key=lambda s: s.at)
    found.append(Step(due))
    return found


@attrs.frozen
class Deadlines:
    """The policies in force, by status, and the calendar they count on."""

    policies: Mapping[str, DeadlinePolicy] = attrs.field(
        factory=dict, converter=lambda p: MappingProxyType(dict(p))
    )
    calendar: Calendar = Calendar()

    def policy(self, status: str) -> DeadlinePolicy | None:
        return self.policies.get(status)


def merge(found: Iterable[Iterable[DeadlinePolicy] | None]) -> dict[str, DeadlinePolicy]:
    """One policy per status from the hook's answers in call order: a later answer for the
    same status replaces an earlier one, and one with `days=0` removes it."""
    merged: dict[str, DeadlinePolicy] = {}
    for answer in found:
        for policy in answer or ():
            if not isinstance(policy, DeadlinePolicy):
                raise ConfigurationError(
                    f"gcx_deadline_policies must return DeadlinePolicy objects, not {policy!r}"
                )
            if policy.days:
                merged[policy.status] = policy
            else:
                merged.pop(policy.status, None)
    return merged


def parse_weekdays(value: str) -> frozenset[int]:
    names = [part.strip().lower()[:3] for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in WEEKDAYS]
    if unknown or not names:
        raise ConfigurationError(
            f"GCX_WORKING_DAYS must list weekdays such as mon,tue,wed,thu,fri, not {value!r}"
        )
    return frozenset(WEEKDAYS.index(n) for n in names)


def parse_holidays(value: str) -> frozenset[date]:
    days = set()
    for part in value.replace("\n", ",").split(","):
        if not part.strip():
            continue
        try:
            days.add(date.fromisoformat(part.strip()))
        except ValueError:
            raise ConfigurationError(
                f"GCX_HOLIDAYS lists dates as YYYY-MM-DD separated by commas; {part.strip()!r} "
                "is not one"
            ) from None
    return frozenset(days)
