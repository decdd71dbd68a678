"""GCX_AUTO_ASSIGN and `gcx_choose_reviewer`: who gets a new application as it arrives."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import ConfigurationError
from gcx_core.plugins import hookimpl
from gcx_core.services import applications, assignment
from gcx_core.services.dashboard import reconcile_counters, snapshot
from gcx_core.settings import Settings
from gcx_core.storage.tables import notifications
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant("192.0.2.1")


class Chooser:
    """A plugin that gives every application to `choice` (None: no opinion)."""

    def __init__(self) -> None:
        self.choice: Any = None
        self.asked: list[tuple[list[int], dict[int, int]]] = []

    @hookimpl
    def gcx_choose_reviewer(self, application, candidates, workload):
        assert application.id  # stored ids are known when it is asked
        self.asked.append(([u.id for u in candidates], workload))
        return self.choice


@pytest.fixture(name="mode")
def _mode() -> str:
    return "off"


@pytest.fixture(name="chooser")
def _chooser() -> Chooser:
    return Chooser()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(chooser: Chooser) -> list[object]:
    return [chooser]


@pytest.fixture(name="gcx_settings")
def _settings(gcx_database_url: str, tmp_path: Path, mode: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=gcx_database_url,
        secret_key="test-secret-key-not-for-production",
        auto_assign=mode,
    )


async def told_of_new(gcx: Any) -> list[str]:
    """Who was emailed about new applications."""
    async with gcx.database.read() as conn:
        found = await conn.execute(
            sa.select(notifications.c.recipient).where(notifications.c.type == "new_application")
        )
        return sorted(found.scalars())


async def submit(gcx: Any, **overrides: Any) -> Any:
    return await applications.submit(gcx, make_submission(**overrides), APPLICANT)


@pytest.mark.parametrize("mode", ["round_robin"])
async def test_round_robin_gives_each_reviewer_a_turn(gcx, gcx_staff, chooser, mode):
    ids = sorted([(await gcx_staff(Role.REVIEWER))[0].id for _ in range(3)])
    await gcx_staff(Role.ADMIN)  # admins are not given new work
    got = [(await submit(gcx)).assigned_reviewer_id for _ in range(4)]
    assert got == [ids[0], ids[1], ids[2], ids[0]]
    # Several at once (one grouped write) keep taking turns.
    batch = await asyncio.gather(*(submit(gcx) for _ in range(3)))
    assert sorted(a.assigned_reviewer_id for a in batch) == ids
    assert chooser.asked and chooser.asked[0][0] == ids
    assert not await reconcile_counters(gcx)
    assert (await snapshot(gcx)).workload == {ids[0]: 3, ids[1]: 2, ids[2]: 2}


@pytest.mark.parametrize("mode", ["least_loaded"])
async def test_least_loaded_evens_the_queues(gcx, gcx_staff, mode):
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    apps = [await submit(gcx) for _ in range(4)]
    assert [a.assigned_reviewer_id for a in apps] == [first.id, second.id, first.id, second.id]
    # The first gives one back: the next goes to them again.
    await assignment.assign(gcx, apps[0].id, None, first_actor)
    assert (await submit(gcx)).assigned_reviewer_id == first.id


@pytest.mark.parametrize("mode", ["least_loaded"])
async def test_conflicts_are_skipped_and_only_the_assignee_is_emailed(gcx, gcx_staff, mode):
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    await assignment.set_interests(gcx, first_actor, first.id, ["kin.example"], [])
    app = await submit(gcx, **{"contact.email": "ama@kin.example"})
    assert app.assigned_reviewer_id == second.id
    assert await told_of_new(gcx) == [second.email]


async def test_off_leaves_new_work_unassigned_and_tells_every_reviewer(gcx, gcx_staff):
    first, _ = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    app = await submit(gcx)
    assert app.assigned_reviewer_id is None
    assert await told_of_new(gcx) == sorted([first.email, second.email])


async def test_a_plugin_chooses_first(gcx, gcx_staff, chooser, caplog):
    _, _ = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    chooser.choice = second.id
    assert (await submit(gcx)).assigned_reviewer_id == second.id
    assert chooser.asked[-1][1] == {}  # nobody held anything before
    chooser.choice = 999_999  # not a candidate: ignored, and said so
    with caplog.at_level(logging.WARNING):
        assert (await submit(gcx)).assigned_reviewer_id is None  # the setting is off
    assert "not one of the candidates" in caplog.text


def test_the_setting_is_checked():
    assert Settings.from_env({"GCX_AUTO_ASSIGN": "Round_Robin"}).auto_assign == "round_robin"
    with pytest.raises(ConfigurationError, match="GCX_AUTO_ASSIGN"):
        Settings.from_env({"GCX_AUTO_ASSIGN": "random"})
