"""`gcx demo --simulate`: synthetic activity keeps flowing while the demo runs."""

from __future__ import annotations

import asyncio
import contextlib

import sqlalchemy as sa

from gcx_core.entities import Actor
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.storage.tables import applications
from gcx_core.system import Gcx
from gcx_web.cli import simulate


async def test_simulation_submits_and_reviews(gcx: Gcx) -> None:
    for _ in range(5):
        await app_service.submit(gcx, make_submission(), Actor.applicant())
    task = asyncio.create_task(simulate(gcx, pause=0.01))
    await asyncio.sleep(1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with gcx.database.read() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(applications.c.status, sa.func.count()).group_by(
                        applications.c.status
                    )
                )
            ).all()
        )
    assert sum(statuses.values()) > 5
    assert set(statuses) - {"pending_review"}, statuses
