"""Grouped submissions: atomic each, isolated from each other, safe across processes."""

from __future__ import annotations

import asyncio

import pytest

from gcx_core.entities import Actor
from gcx_core.exceptions import DuplicateApplicationError, ValidationError
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.services import applications, queries
from gcx_core.system import Gcx
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant()


class VetoNowhere:
    @hookimpl
    def gcx_before_transition(self, application, action, actor, params):
        if application.business.city == "Nowhere":
            raise ValidationError({"business.city": "we do not serve Nowhere"})


@pytest.fixture(name="gcx_extra_plugins")
def _plugins():
    return [VetoNowhere()]


async def test_one_refused_submission_does_not_sink_its_group(gcx):
    payloads = [make_submission() for _ in range(12)]
    payloads[5] = make_submission(**{"business.city": "Nowhere"})
    payloads[9] = dict(payloads[2])  # the same email and TIN as another in the same group
    results = await asyncio.gather(
        *(applications.submit(gcx, p, APPLICANT) for p in payloads), return_exceptions=True
    )
    assert isinstance(results[5], ValidationError)
    assert isinstance(results[9], DuplicateApplicationError)
    stored = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 10
    assert len({a.id for a in stored}) == 10
    for app in stored:
        assert (await queries.get_application(gcx, app.id)) == app
    assert (await queries.list_applications(gcx, queries.ApplicationFilter())).total == 10


async def test_a_cancelled_caller_does_not_stall_the_queue(gcx):
    tasks = [
        asyncio.create_task(applications.submit(gcx, make_submission(), APPLICANT))
        for _ in range(6)
    ]
    await asyncio.sleep(0)
    tasks[0].cancel()
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(d, asyncio.CancelledError) for d in done) <= 2
    # Whatever was cancelled, the queue still takes and writes new submissions.
    app = await asyncio.wait_for(applications.submit(gcx, make_submission(), APPLICANT), 10)
    assert app.id > 0


async def test_two_processes_racing_on_one_database(gcx, gcx_settings):
    """Two engines (as two processes would have) submit the same business at once."""
    pm = make_plugin_manager(load_entry_points=False)
    async with await Gcx.open(gcx_settings, plugin_manager=pm) as other:
        data = make_submission()
        others = [make_submission() for _ in range(6)]
        results = await asyncio.gather(
            applications.submit(gcx, data, APPLICANT),
            applications.submit(other, data, APPLICANT),
            *(
                applications.submit(g, p, APPLICANT)
                for g, p in zip([gcx, other] * 3, others, strict=True)
            ),
            return_exceptions=True,
        )
    first_two = results[:2]
    assert sum(isinstance(r, DuplicateApplicationError) for r in first_two) == 1, first_two
    assert all(not isinstance(r, BaseException) for r in results[2:]), results[2:]
    assert (await queries.list_applications(gcx, queries.ApplicationFilter())).total == 7


async def test_a_group_stays_open_while_callers_keep_coming(gcx):
    from gcx_core.storage.batching import GroupCommit

    batches: list[list[int]] = []

    async def work(conn, items):
        batches.append(list(items))
        return items

    group = GroupCommit(gcx.database, work)

    async def caller(i: int) -> int:
        for _ in range(i):  # caller i is ready i turns of the loop after the first
            await asyncio.sleep(0)
        return await group(i)

    assert await asyncio.gather(*(caller(i) for i in range(10))) == list(range(10))
    # Without a writer in the way the leader waits while each turn brings another caller.
    assert batches[0] == list(range(10))
    # Once nobody else comes, it writes at once: a lone caller is its own batch.
    assert await group(99) == 99
    assert batches[-1] == [99]
