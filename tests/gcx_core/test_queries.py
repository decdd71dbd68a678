"""Lists, search, filters, sorting, pagination; the dashboard snapshot and its counters."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import (
    ConflictError,
    GuardFailedError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.services import applications, dashboard, queries
from gcx_core.services.dashboard import largest_remainder
from gcx_core.storage import tables
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant()


@pytest.fixture(name="population")
async def _population(gcx, gcx_staff, gcx_clock):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    apps = []
    for i, (region, commodities, name) in enumerate(
        [
            ("AA", ["maize"], "Golden Grains Ltd"),
            ("AH", ["rice", "gari"], "Kumasi Foods"),
            ("NP", ["sorghum"], "Savanna Harvest"),
            ("AA", ["soybean"], "Accra 100% Agro_Co"),
        ]
    ):
        gcx_clock.advance(days=1)
        apps.append(
            await applications.submit(
                gcx,
                make_submission(
                    **{
                        "business.region": region,
                        "commodities": commodities,
                        "business.name": name,
                        "bank_accounts.primary.account_name": name,
                    }
                ),
                APPLICANT,
            )
        )
        del i
    apps[1] = await applications.act(gcx, apps[1].id, "start_review", reviewer)
    return apps, reviewer


async def codes(page):
    return [a.tracking_code for a in page.items]


async def test_search_filters_sort_and_pages(gcx, population):
    apps, reviewer = population
    flt = queries.ApplicationFilter
    assert (await queries.list_applications(gcx, flt())).total == 4
    by_name = await queries.list_applications(gcx, flt(search="harvest"))
    assert [a.id for a in by_name.items] == [apps[2].id]
    by_code = await queries.list_applications(gcx, flt(search=apps[3].tracking_code.lower()))
    assert [a.id for a in by_code.items] == [apps[3].id]
    by_email = await queries.list_applications(gcx, flt(search=apps[0].contact.email.upper()))
    assert [a.id for a in by_email.items] == [apps[0].id]
    by_tin = await queries.list_applications(gcx, flt(search=apps[1].business.tin))
    assert [a.id for a in by_tin.items] == [apps[1].id]
    literal = await queries.list_applications(gcx, flt(search="100%"))
    assert [a.id for a in literal.items] == [apps[3].id]
    assert (await queries.list_applications(gcx, flt(search="o_c"))).total == 1
    assert (await queries.list_applications(gcx, flt(statuses=("under_review",)))).total == 1
    assert (await queries.list_applications(gcx, flt(regions=("AA",)))).total == 2
    assert (await queries.list_applications(gcx, flt(commodities=("gari", "sorghum")))).total == 2
    assert (
        await queries.list_applications(gcx, flt(assigned_reviewer_id=reviewer.user_id))
    ).total == 1
    since = apps[2].created_at
    recent = await queries.list_applications(gcx, flt(created_from=since))
    assert {a.id for a in recent.items} == {apps[2].id, apps[3].id}
    upto = await queries.list_applications(
        gcx, flt(created_to=since + timedelta(seconds=1), created_from=since)
    )
    assert [a.id for a in upto.items] == [apps[2].id]
    newest = await queries.list_applications(gcx, flt(sort="-created_at", per_page=3))
    assert [a.id for a in newest.items] == [apps[3].id, apps[2].id, apps[1].id]
    assert newest.pages == 2
    second = await queries.list_applications(gcx, flt(sort="-created_at", per_page=3, page=2))
    assert [a.id for a in second.items] == [apps[0].id]
    by_name_sort = await queries.list_applications(gcx, flt(sort="business_name"))
    assert [a.business.name for a in by_name_sort.items] == sorted(
        (a.business.name for a in apps), key=str.casefold
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"sort": "password"},
        {"page": 0},
        {"per_page": 0},
        {"per_page": 10_000},
    ],
)
async def test_bad_list_queries(gcx, bad):
    with pytest.raises(ValidationError):
        await queries.list_applications(gcx, queries.ApplicationFilter(**bad))


async def test_lookup_by_tracking_code(gcx, population):
    apps, _ = population
    code = apps[0].tracking_code
    assert (await queries.find_by_tracking_code(gcx, code.replace("-", " ").lower())).id == apps[
        0
    ].id
    for wrong in ("GCX-0000-0000-0000", "", "'; drop table applications; --", code[:-1]):
        with pytest.raises(NotFoundError):
            await queries.find_by_tracking_code(gcx, wrong)


async def test_audit_queries(gcx, population):
    apps, reviewer = population
    page = await queries.audit_entries(gcx, queries.AuditFilter(action="start_review"))
    assert page.total == 1 and page.items[0].object_id == str(apps[1].id)
    assert page.items[0].before == {
        "status": "pending_review",
        "version": 1,
        "assigned_reviewer_id": None,
    }
    assert page.items[0].after["assigned_reviewer_id"] == reviewer.user_id
    mine = await queries.audit_entries(gcx, queries.AuditFilter(actor=reviewer.label))
    assert mine.total == 1


async def test_dashboard_snapshot(gcx, population):
    snap = await dashboard.snapshot(gcx)
    assert snap.total == 4
    figures = {s.status: s for s in snap.statuses}
    assert figures["pending_review"].count == 3 and figures["pending_review"].percent == 75.0
    assert figures["under_review"].percent == 25.0
    assert sum(round(s.percent * 10) for s in snap.statuses) == 1000  # exactly 100.0 in tenths
    assert round(sum(s.percent for s in snap.statuses), 1) == 100.0
    assert [r.business_name for r in snap.recent][:1] == ["Accra 100% Agro_Co"]
    assert snap.notifications["pending"] > 0
    assert sum(n for _, n in snap.per_day) == 4
    # Each waiting status: when its longest-waiting application got there (an aware time);
    # none waiting, None; statuses that wait on nobody are left out.
    async with gcx.database.read() as conn:
        since = (
            await conn.execute(
                sa.select(tables.applications.c.status_changed_at).where(
                    tables.applications.c.status == "pending_review"
                )
            )
        ).scalars()
        first = min(since)
    assert snap.oldest_waiting["pending_review"] == first
    assert first.tzinfo is not None
    assert snap.oldest_waiting["documents_requested"] is None
    assert "rejected" not in snap.oldest_waiting


async def test_reconcile_repairs_drift(gcx, population):
    from gcx_core.storage import bookkeeping

    assert not await dashboard.reconcile_counters(gcx)
    async with gcx.database.write() as conn:
        await bookkeeping.bump_counters(conn, {"status:approved": 5, "status:pending_review": -1})
    assert await dashboard.reconcile_counters(gcx)
    assert not await dashboard.reconcile_counters(gcx)
    assert (await dashboard.snapshot(gcx)).total == 4


async def test_a_snapshot_counts_what_a_read_counts(gcx, population):
    """`Database.snapshot` (a thread of its own on inline SQLite) sees the same rows."""
    async with gcx.database.read() as conn:
        expected = await dashboard.recount(conn)
    assert expected and await gcx.database.snapshot(dashboard.count_rows) == expected


def test_largest_remainder_examples():
    assert largest_remainder([1, 1, 1]) == [33.4, 33.3, 33.3]
    assert largest_remainder([0, 0]) == [0.0, 0.0]
    assert largest_remainder([2, 1]) == [66.7, 33.3]
    assert largest_remainder([]) == []


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=12))
def test_percentages_always_sum_to_exactly_100(counts):
    percents = largest_remainder(counts)
    if sum(counts) == 0:
        assert percents == [0.0] * len(counts)
        return
    assert round(sum(percents) * 10) == 1000
    assert f"{sum(round(p * 10) for p in percents) / 10:.1f}" == "100.0"
    for c, p in zip(counts, percents, strict=True):
        assert abs(p - 100 * c / sum(counts)) < 0.1 + 1e-9


_STAFF: dict[int, dict[str, Actor]] = {}
ACTIONS = [
    "start_review",
    "request_documents",
    "resubmit_documents",
    "approve",
    "reject",
    "withdraw",
    "reopen",
]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(ACTIONS)), max_size=25))
async def test_counters_always_equal_a_recount(gcx, gcx_staff, steps):
    """Random actions on a few applications, through the real services and database."""
    from gcx_core.storage import bookkeeping

    staff = _STAFF.get(id(gcx))
    if staff is None:  # hypothesis reuses the function's fixtures across examples
        staff = _STAFF[id(gcx)] = {
            "review": (await gcx_staff(Role.REVIEWER))[1],
            "admin": (await gcx_staff(Role.ADMIN))[1],
        }
    apps = [await applications.submit(gcx, make_submission(), APPLICANT) for _ in range(4)]
    params = {
        "requirement_codes": ["tax_clearance"],
        "message": "m",
        "reason_code": "other",
        "comment": "c",
    }
    for index, action in steps:
        actor = {
            "resubmit_documents": APPLICANT,
            "withdraw": APPLICANT,
            "reopen": staff["admin"],
        }.get(action, staff["review"])
        used = {
            k: v
            for k, v in params.items()
            if action
            in {
                "request_documents": ("request_documents",),
                "message": ("request_documents", "reject"),
                "reason_code": ("reject",),
                "comment": ("reopen",),
                "requirement_codes": ("request_documents",),
            }[k]
        }
        try:
            await applications.act(gcx, apps[index].id, action, actor, params=used)
        except (InvalidTransitionError, GuardFailedError, PermissionDeniedError, ConflictError):
            pass
        except Exception as exc:  # a duplicate on reopen is the only other allowed refusal
            assert type(exc).__name__ == "DuplicateApplicationError", exc
    async with gcx.database.read() as conn:
        truth = await dashboard.recount(conn, gcx)
        stored = {k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v}
    assert stored == truth
