"""Documents over time on the web: expiry dates on the upload paths, valid-until dates in the
portal and the back office, the expired flag on the dashboard and in the list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from gcx_core.entities import Actor, DocumentRequirement, Role
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import renewals
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import csrf_of
from tests.gcx_web.test_account import signed_in_supplier
from tests.gcx_web.test_review_operations import sign_in


class Insurance:
    @hookimpl
    def gcx_register_document_requirements(self, register: Any) -> None:
        register(
            DocumentRequirement(
                "insurance", "Insurance certificate", required=False, expiry_date=True
            )
        )


@pytest.fixture(name="gcx_extra_plugins")
def _plugins() -> list[object]:
    return [Insurance()]


async def test_the_api_takes_an_expiry_date_where_one_is_asked(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    url = f"/api/v1/applications/{app.tracking_code}/documents/insurance"
    pdf = {"file": ("insurance.pdf", PDF, "application/pdf")}
    missing = await client.post(url, files=pdf)
    assert missing.status_code == 422 and "give the date" in missing.text
    for given, said in (("31/03/2027", "must be a date like"), ("2001-01-01", "after today")):
        bad = await client.post(url, files=pdf, data={"valid_until": given})
        assert bad.status_code == 422 and said in bad.text, given
    later = (gcx.now() + timedelta(days=200)).date()
    sent = await client.post(url, files=pdf, data={"valid_until": later.isoformat()})
    assert sent.status_code == 201, sent.text
    assert sent.json()["valid_until"].startswith((later + timedelta(days=1)).isoformat())
    tax = await client.post(
        f"/api/v1/applications/{app.tracking_code}/documents/tax_clearance",
        files=pdf,
        data={"valid_until": later.isoformat()},
    )
    assert tax.status_code == 422 and "has no expiry date" in tax.text
    odd = await client.post(url, files=pdf, data={"valid_until": later.isoformat(), "x": "1"})
    assert odd.status_code == 422 and "unknown part" in odd.text
    # The status page's own upload takes the date as a form field too.
    page = await client.get(f"/track/{app.tracking_code}")
    refused = await client.post(
        f"/track/{app.tracking_code}/documents/insurance",
        data={"_csrf_token": csrf_of(page.text), "valid_until": "not a date"},
        files=pdf,
    )
    assert refused.status_code == 422 and "must be a date like" in refused.text
    taken = await client.post(
        f"/track/{app.tracking_code}/documents/insurance",
        data={"_csrf_token": csrf_of(page.text), "valid_until": later.isoformat()},
        files=pdf,
    )
    assert taken.status_code == 303
    # A submission cannot carry it: it needs its date, sent once submitted.
    import json

    submission = await client.post(
        "/api/v1/applications/with-documents",
        files={
            "application": (None, json.dumps(make_submission()), "application/json"),
            "insurance": ("insurance.pdf", PDF, "application/pdf"),
        },
    )
    assert submission.status_code == 422 and "needs its expiry date" in submission.text


async def test_expired_documents_in_the_portal_the_back_office_and_the_dashboard(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any, gcx_clock: Any
) -> None:
    staff_user, reviewer = await gcx_staff(Role.REVIEWER)
    app = await signed_in_supplier(client, gcx, reviewer)
    home = (await client.get("/account")).text
    expires = (gcx.now() + timedelta(days=365) - timedelta(microseconds=1)).date()
    assert f"valid until {expires.day} {expires:%b %Y}" in home
    assert 'id="valid_until.insurance"' in home  # the portal asks insurance for its date

    gcx_clock.advance(days=366)
    report = await renewals.run_due(gcx)
    assert report.expired == 1
    client.cookies.clear()
    await sign_in(client, staff_user.email)
    dashboard = (await client.get("/backoffice/")).text
    assert 'id="expired-documents">1<' in dashboard
    assert (await client.get("/backoffice/dashboard.json")).json()["expired_documents"] == 1
    listed = (await client.get("/backoffice/applications?expired_documents=true")).text
    assert app.tracking_code in listed
    api = (await client.get("/api/v1/staff/applications?expired_documents=true")).json()
    assert [a["id"] for a in api["items"]] == [app.id]
    bad = await client.get("/backoffice/applications?expired_documents=perhaps")
    assert bad.status_code == 422 and "must be true or false" in bad.text
    page = (await client.get(f"/backoffice/applications/{app.id}")).text
    assert "data-expired=" in page and "valid until" in page
    detail = (await client.get(f"/api/v1/staff/applications/{app.id}")).json()
    (tax,) = [d for d in detail["documents"] if d["requirement"] == "tax_clearance"]
    assert tax["expired"] is True and tax["valid_until"]


async def test_the_supplier_renews_a_dated_document(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await signed_in_supplier(client, gcx, reviewer)
    home = await client.get("/account")
    later = (gcx.now() + timedelta(days=90)).date()
    url = "/account/documents/insurance"
    pdf = {"file": ("insurance.pdf", PDF, "application/pdf")}
    refused = await client.post(url, data={"_csrf_token": csrf_of(home.text)}, files=pdf)
    assert refused.status_code == 422 and "give the date" in refused.text
    sent = await client.post(
        url,
        data={"_csrf_token": csrf_of(home.text), "valid_until": later.isoformat()},
        files=pdf,
    )
    assert sent.status_code == 303
    assert f"valid until {later.day} {later:%b %Y}" in (await client.get("/account")).text
    assert isinstance(later, date)
