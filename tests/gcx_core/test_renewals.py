"""Documents over time: validity on upload, renewal reminders to suppliers, expired documents
flagging the supplier until a renewal is verified."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, ActorKind, DocumentRequirement, Role
from gcx_core.events import DocumentExpired
from gcx_core.exceptions import ValidationError
from gcx_core.plugins import hookimpl
from gcx_core.services import applications, dashboard, documents, queries, renewals, supplier
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import documents as document_rows
from gcx_core.storage.tables import notifications, users
from gcx_core.testing import FakeClock, make_submission

from .pdfs import PDF
from .test_services import verify_all

APPLICANT = Actor.applicant("198.51.100.7")
START = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)


class Insurance:
    """A programme's requirement whose uploader gives the expiry date, and what expired."""

    def __init__(self) -> None:
        self.expired: list[DocumentExpired] = []

    @hookimpl
    def gcx_register_document_requirements(self, register: Any) -> None:
        register(
            DocumentRequirement(
                "insurance", "Insurance certificate", required=False, expiry_date=True
            )
        )

    @hookimpl
    def gcx_handle_event(self, event: Any) -> None:
        if isinstance(event, DocumentExpired):
            self.expired.append(event)


@pytest.fixture(name="insurance")
def _insurance() -> Insurance:
    return Insurance()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(insurance: Insurance) -> list[object]:
    return [insurance]


@pytest.fixture(name="gcx_clock")
def _clock() -> FakeClock:
    return FakeClock(START)


async def approved_supplier(gcx: Any, gcx_staff: Any) -> tuple[Any, Any, Actor]:
    """An approved application, its supplier account activated; returns it, the reviewer and
    the supplier's actor."""
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    app = await applications.act(gcx, app.id, "start_review", reviewer)
    await verify_all(gcx, app, reviewer)
    app = await applications.act(gcx, app.id, "approve", reviewer)
    async with gcx.database.read() as conn:
        account = (
            await conn.execute(sa.select(users).where(users.c.application_id == app.id))
        ).one()
    supplier_actor = Actor(
        kind=ActorKind.SUPPLIER,
        user_id=account.id,
        role=Role.SUPPLIER,
        label=account.email,
    )
    return app, reviewer, supplier_actor


async def sent(gcx: Any, kind: str) -> list[Any]:
    async with gcx.database.read() as conn:
        return (
            await conn.execute(
                sa.select(notifications.c.recipient, notifications.c.context).where(
                    notifications.c.type == kind
                )
            )
        ).all()


async def tax_versions(gcx: Any, app_id: int) -> list[Any]:
    async with gcx.database.read() as conn:
        return (
            await conn.execute(
                sa.select(document_rows)
                .where(
                    document_rows.c.application_id == app_id,
                    document_rows.c.requirement_code == "tax_clearance",
                )
                .order_by(document_rows.c.version)
            )
        ).all()


async def test_validity_is_set_on_upload_and_dates_are_checked(gcx):
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    tax = await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    assert tax.valid_until == START + timedelta(days=365)
    plain = await documents.upload_document(
        gcx, app.id, "business_registration", PDF, "b.pdf", APPLICANT
    )
    assert plain.valid_until is None

    async def count() -> int:
        async with gcx.database.read() as conn:
            query = sa.select(sa.func.count()).select_from(document_rows)
            return int((await conn.execute(query)).scalar_one())

    before = await count()
    for code, given, message in (
        ("tax_clearance", date(2027, 6, 1), "has no expiry date"),
        ("insurance", None, "give the date"),
        ("insurance", date(2027, 1, 4), "must be after today"),
        ("insurance", date(2050, 1, 1), "within 20 years"),
    ):
        with pytest.raises(ValidationError, match=message):
            await documents.upload_document(
                gcx, app.id, code, PDF, "x.pdf", APPLICANT, valid_until=given
            )
    assert await count() == before, "a refused upload stores nothing"
    insured = await documents.upload_document(
        gcx, app.id, "insurance", PDF, "i.pdf", APPLICANT, valid_until=date(2027, 3, 31)
    )
    assert insured.valid_until == datetime(2027, 4, 1, tzinfo=UTC)  # through the whole day


async def test_a_supplier_is_reminded_then_flagged_until_the_renewal_is_verified(
    gcx, gcx_staff, gcx_clock, insurance
):
    app, reviewer, supplier_actor = await approved_supplier(gcx, gcx_staff)
    (first,) = await tax_versions(gcx, app.id)
    expires = first.valid_until

    gcx_clock.now = expires - timedelta(days=31)
    assert (await renewals.run_due(gcx)).total == 0
    gcx_clock.now = expires - timedelta(days=30)
    assert (await renewals.run_due(gcx)).reminded == 1
    assert (await renewals.run_due(gcx)).total == 0, "each reminder once"
    gcx_clock.now = expires - timedelta(days=7)
    assert (await renewals.run_due(gcx)).reminded == 1
    reminders = await sent(gcx, "document_renewal")
    assert [r.recipient for r in reminders] == [app.contact.email] * 2
    assert [r.context["days_left"] for r in reminders] == [30, 7]
    assert reminders[0].context["requirement_title"] == "Tax clearance certificate"

    gcx_clock.now = expires
    assert (await renewals.run_due(gcx)).expired == 1
    assert (await renewals.run_due(gcx)).total == 0
    assert [e.requirement_code for e in insurance.expired] == ["tax_clearance"]
    assert [r.recipient for r in await sent(gcx, "document_expired")] == [app.contact.email]
    assert (await dashboard.snapshot(gcx)).expired_documents == 1
    flagged = await queries.list_applications(
        gcx, queries.ApplicationFilter(expired_documents=True)
    )
    assert [a.id for a in flagged.items] == [app.id]

    renewed = await supplier.renew_document(gcx, supplier_actor, "tax_clearance", PDF, "new.pdf")
    assert renewed.valid_until == expires + timedelta(days=365)
    assert (await dashboard.snapshot(gcx)).expired_documents == 1, "flagged until verified"
    await documents.review_document(gcx, renewed.id, True, reviewer)
    assert (await dashboard.snapshot(gcx)).expired_documents == 0
    flagged = await queries.list_applications(
        gcx, queries.ApplicationFilter(expired_documents=True)
    )
    assert flagged.items == []
    old, new = await tax_versions(gcx, app.id)
    assert (old.renewal_step, new.renewal_step) == (renewals.SUPERSEDED, 0)
    async with gcx.database.read() as conn:
        truth = await dashboard.recount(conn, gcx)
        stored = {k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v}
    assert {k: v for k, v in stored.items() if not k.startswith("ageing:")} == {
        k: v for k, v in truth.items() if not k.startswith("ageing:")
    }


async def test_only_suppliers_are_reminded_and_a_verified_renewal_stops_it(
    gcx, gcx_staff, gcx_clock
):
    _, reviewer, supplier_actor = await approved_supplier(gcx, gcx_staff)
    waiting = await applications.submit(gcx, make_submission(), APPLICANT)
    tax = await documents.upload_document(gcx, waiting.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    await documents.review_document(gcx, tax.id, True, reviewer)  # verified, no supplier yet
    gcx_clock.advance(days=300)
    renewed = await supplier.renew_document(gcx, supplier_actor, "tax_clearance", PDF, "new.pdf")
    await documents.review_document(gcx, renewed.id, True, reviewer)
    gcx_clock.advance(days=100)  # the first version has expired; the renewal stands
    report = await renewals.run_due(gcx)
    assert (report.reminded, report.expired) == (0, 0)
    assert await sent(gcx, "document_renewal") == []
    assert await sent(gcx, "document_expired") == []
