"""Choosing a reviewer for each new application as it is submitted (GCX_AUTO_ASSIGN and the
`gcx_choose_reviewer` hook), inside the submission's transaction."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from gcx_core.entities import Application, Role, User
from gcx_core.services.dashboard import queue_counts
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import bookkeeping
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import counters, staff_interests
from gcx_core.system import Gcx
from gcx_core.validation import email_domain, normalise_tin

log = logging.getLogger(__name__)

LAST_KEY = "autoassign:last"  # the reviewer round robin chose last


async def choose(gcx: Gcx, conn: Connection, apps: list[Application]) -> list[int | None]:
    """A reviewer id (or None) for each application; nothing is asked when nothing would
    choose (the setting is off and no plugin implements the hook)."""
    hook = gcx.plugins.hook.gcx_choose_reviewer
    mode = gcx.settings.auto_assign
    if mode == "off" and not hook.get_hookimpls():
        return [None] * len(apps)
    reviewers = [u for u in await user_rows.active_staff(conn) if u.role is Role.REVIEWER]
    if not reviewers:
        return [None] * len(apps)
    figures = await bookkeeping.read_counters(conn, bookkeeping.ASSIGNED_PREFIX)
    _, workload = queue_counts(gcx, figures)
    conflicts = await _conflicts(conn, apps)
    last = await _last(conn)
    chosen: list[int | None] = []
    for app in apps:
        shut_out = conflicts.get(("domain", email_domain(app.contact.email)), set()) | (
            conflicts.get(("tin", normalise_tin(app.business.tin)), set())
        )
        candidates = [u for u in reviewers if u.id not in shut_out]
        pick = _pick(gcx, app, candidates, workload, mode, last)
        if pick is not None:
            workload[pick] = workload.get(pick, 0) + 1
            last = pick
        chosen.append(pick)
    if mode == "round_robin" and last is not None:
        await bookkeeping.set_counters(conn, {LAST_KEY: last}, LAST_KEY)
    return chosen


def _pick(
    gcx: Gcx,
    app: Application,
    candidates: list[User],
    workload: dict[int, int],
    mode: str,
    last: int | None,
) -> int | None:
    if not candidates:
        return None
    answer = gcx.plugins.hook.gcx_choose_reviewer(
        application=app, candidates=list(candidates), workload=dict(workload)
    )
    if answer is not None:
        if any(u.id == answer for u in candidates):
            return int(answer)
        log.warning("gcx_choose_reviewer chose %r, not one of the candidates; ignored", answer)
    ids = sorted(u.id for u in candidates)
    if mode == "least_loaded":
        return min(ids, key=lambda i: (workload.get(i, 0), i))
    if mode == "round_robin":
        after = [i for i in ids if last is None or i > last]
        return after[0] if after else ids[0]
    return None


async def _conflicts(conn: Connection, apps: list[Application]) -> dict[tuple[str, str], set[int]]:
    """Who declared each of these applicants' domains and TINs (one query for the batch)."""
    domains = sorted({email_domain(a.contact.email) for a in apps})
    tins = sorted({normalise_tin(a.business.tin) for a in apps})
    rows = await conn.execute(
        sa.select(staff_interests.c.kind, staff_interests.c.value, staff_interests.c.user_id).where(
            sa.or_(
                sa.and_(staff_interests.c.kind == "domain", staff_interests.c.value.in_(domains)),
                sa.and_(staff_interests.c.kind == "tin", staff_interests.c.value.in_(tins)),
            )
        )
    )
    found: dict[tuple[str, str], set[int]] = {}
    for kind, value, user_id in rows:
        found.setdefault((kind, value), set()).add(user_id)
    return found


async def _last(conn: Connection) -> int | None:
    value = (
        await conn.execute(sa.select(counters.c.value).where(counters.c.name == LAST_KEY))
    ).scalar()
    return int(value) if value is not None else None
