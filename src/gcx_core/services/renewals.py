"""Documents over time: renewal reminders to approved suppliers, and expired documents.

A version of a requirement that expires carries `valid_until` (services.documents sets it on
upload). The standing version of a requirement is its latest verified one; once the
application has a supplier account, the scheduler's minute job (`run_due`) reminds the
supplier GCX_RENEWAL_REMINDER_DAYS before the standing version expires (`document_renewal`),
and when it has expired tells them (`document_expired`) and, for a required document, flags
the supplier: the `documents:expired` counter, the list's `expired_documents` filter, and the
`DocumentExpired` event (through `gcx_queue_for_event`, so webhooks hear it). Verifying a newer
version supersedes the older ones and lifts the flag.

`renewal_step` on each version says how far this has gone: the number of reminders sent, then
EXPIRED (a required document: flags the supplier), EXPIRED_OPTIONAL, or SUPERSEDED.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from gcx_core.entities import DocumentVersion, NotificationDraft
from gcx_core.events import CountersChanged, DocumentExpired, NotificationsQueued
from gcx_core.storage import bookkeeping, rows
from gcx_core.storage.applications import to_application
from gcx_core.storage.database import Connection
from gcx_core.storage.documents import to_document
from gcx_core.storage.tables import applications, documents, users
from gcx_core.system import Gcx

log = logging.getLogger(__name__)

EXPIRED_OPTIONAL = 7
EXPIRED = 8
SUPERSEDED = 9
EXPIRED_KEY = "documents:expired"
BATCH = 50


@attrs.frozen
class RenewalReport:
    reminded: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.reminded + self.expired


def _due(gcx: Gcx, now: datetime, limit: int) -> sa.Select[Any]:
    """Verified versions with a step due: a reminder not yet sent whose day has come, or the
    expiry itself; only for applications with a supplier account."""
    days = gcx.settings.renewal_reminder_days  # largest first
    due = [documents.c.valid_until <= now]
    for step, before in enumerate(days):
        due.append(
            sa.and_(
                documents.c.renewal_step <= step,
                documents.c.valid_until <= now + timedelta(days=before),
            )
        )
    supplier = sa.select(users.c.id).where(users.c.application_id == documents.c.application_id)
    return (
        sa.select(documents)
        .where(
            documents.c.valid_until.is_not(None),
            documents.c.review_status == "verified",
            documents.c.renewal_step < EXPIRED_OPTIONAL,
            sa.or_(*due),
            supplier.exists(),
        )
        .order_by(documents.c.valid_until, documents.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def run_due(gcx: Gcx, *, batch: int = BATCH) -> RenewalReport:
    """Send the renewal reminders due now and mark what has expired, `batch` versions per
    transaction; each step moves `renewal_step` on in the same transaction, so it runs once."""
    report = RenewalReport()
    while True:
        done, fired = await _run_batch(gcx, batch)
        if not done.total:
            return report
        report = RenewalReport(report.reminded + done.reminded, report.expired + done.expired)
        await gcx.fire(fired)
        await asyncio.sleep(0.001)


async def _run_batch(gcx: Gcx, batch: int) -> tuple[RenewalReport, list[Any]]:
    from gcx_core.services.event_outbox import drafts_for, write_outbox

    now = gcx.now()
    days = gcx.settings.renewal_reminder_days

    async def remind_and_expire(conn: Connection) -> tuple[RenewalReport, list[Any]]:
        reminded = expired = 0
        fired: list[Any] = []
        entries: list[tuple[NotificationDraft, int, str]] = []
        deltas: Counter[str] = Counter()
        found = await rows.dicts(conn, _due(gcx, now, batch))
        if not found:
            return RenewalReport(), []
        ids = {r["application_id"] for r in found}
        apps = {
            r["id"]: to_application(r)
            for r in await rows.dicts(
                conn, sa.select(applications).where(applications.c.id.in_(ids))
            )
        }
        for row in found:
            version = to_document(row)
            app = apps[version.application_id]
            # A verified version is the standing one: verifying a newer one marks the older
            # ones SUPERSEDED (supersede_older), and the query leaves those out.
            requirement = gcx.requirements.get(version.requirement_code)
            title = requirement.title if requirement else version.requirement_code
            assert version.valid_until is not None
            context = {
                "business_name": app.business.name,
                "tracking_code": app.tracking_code,
                "application_id": app.id,
                "requirement": version.requirement_code,
                "requirement_title": title,
                "valid_until": gcx.deadlines.calendar.local_date(
                    version.valid_until - timedelta(microseconds=1)
                ).isoformat(),
                "days_left": max((version.valid_until - now).days, 0),
            }
            key = f"renew{version.id}"
            if version.valid_until <= now:
                required = requirement is not None and requirement.required
                await _set_step(conn, version.id, EXPIRED if required else EXPIRED_OPTIONAL)
                expired += 1
                draft = NotificationDraft("document_expired", app.contact.email, context)
                entries.append((draft, app.id, f"{key}.expired:{draft.recipient}"))
                if required:
                    deltas[EXPIRED_KEY] += 1
                event = DocumentExpired(
                    app.id, version.requirement_code, version.id, version.valid_until, now
                )
                more = await drafts_for(gcx, conn, event, app)
                entries += [
                    (d, app.id, f"{key}.event{n}:{d.recipient}") for n, d in enumerate(more)
                ]
                fired.append((event, None))
                continue
            passed = sum(1 for d in days if version.valid_until <= now + timedelta(days=d))
            await _set_step(conn, version.id, passed)
            draft = NotificationDraft("document_renewal", app.contact.email, context)
            entries.append((draft, app.id, f"{key}.{passed}:{draft.recipient}"))
            reminded += 1
        if entries:
            queued = await write_outbox(gcx, conn, entries, at=now)
            fired.append((NotificationsQueued(tuple(queued), now), None))
        if deltas:
            await bookkeeping.bump_counters(conn, deltas)
            fired.append((CountersChanged(now), None))
        return RenewalReport(reminded, expired), fired

    # On SQLite its commit, which the file system may stall, runs off the event loop.
    return await gcx.database.batch(remind_and_expire)


async def _set_step(conn: Connection, document_id: int, step: int) -> None:
    await conn.execute(
        documents.update().where(documents.c.id == document_id).values(renewal_step=step)
    )


async def supersede_older(gcx: Gcx, conn: Connection, verified: DocumentVersion) -> bool:
    """A version was verified: the older versions of its requirement are superseded, and an
    expired one no longer flags the supplier. In the verification's transaction; returns
    whether a flag was lifted (the dashboards' count changed)."""
    older = sa.select(documents.c.id, documents.c.renewal_step).where(
        documents.c.application_id == verified.application_id,
        documents.c.requirement_code == verified.requirement_code,
        documents.c.version < verified.version,
        documents.c.renewal_step != SUPERSEDED,
    )
    found = (await conn.execute(older)).all()
    if not found:
        return False
    await conn.execute(
        documents.update()
        .where(documents.c.id.in_([r.id for r in found]))
        .values(renewal_step=SUPERSEDED)
    )
    lifted = sum(1 for r in found if r.renewal_step == EXPIRED)
    if lifted:
        await bookkeeping.bump_counters(conn, {EXPIRED_KEY: -lifted})
    return bool(lifted)


def count_expired(conn: sa.Connection) -> dict[str, int]:
    """The `documents:expired` counter as the rows say (for reconciliation)."""
    n = conn.execute(
        sa.select(sa.func.count()).select_from(documents).where(documents.c.renewal_step == EXPIRED)
    ).scalar_one()
    return {EXPIRED_KEY: int(n)} if n else {}
