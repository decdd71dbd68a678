"""The site inspection from submission to approval, through the HTTP API and the back office."""

from __future__ import annotations

import re
from typing import Any

from gcx_core.entities import Actor, Role
from gcx_core.services import documents, queries
from gcx_core.testing import make_submission

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PASSWORD = "correct horse battery staple"


def csrf_of(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: Any, email: str) -> None:
    page = await client.get("/login")
    answer = await client.post(
        "/login", data={"_csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text


async def act(client: Any, app_id: int, action: str, **body: Any) -> Any:
    detail = (await client.get(f"/api/v1/staff/applications/{app_id}")).json()
    return await client.post(
        f"/api/v1/staff/applications/{app_id}/actions/{action}",
        json={"version": detail["version"], **body},
        headers={"x-csrftoken": client.cookies["gcx_csrf"]},
    )


async def verify_required_documents(gcx: Any, app_id: int, reviewer: Actor) -> None:
    app = await queries.get_application(gcx, app_id)
    for r in gcx.requirements_for(app):
        if r.required:
            doc = await documents.upload_document(
                gcx, app_id, r.code, PDF, f"{r.code}.pdf", Actor.applicant()
            )
            await documents.review_document(gcx, doc.id, True, reviewer)


async def test_from_submission_to_approval_after_inspection(
    gcx, gcx_client, gcx_staff, gcx_deliver, gcx_captured_mail
):
    reviewer, reviewer_actor = await gcx_staff(Role.REVIEWER)
    created = await gcx_client.post("/api/v1/applications", json=make_submission())
    assert created.status_code == 201, created.text
    code = created.json()["tracking_code"]
    app = await queries.find_by_tracking_code(gcx, code)
    await verify_required_documents(gcx, app.id, reviewer_actor)
    await sign_in(gcx_client, reviewer.email)

    assert (await act(gcx_client, app.id, "start_review")).status_code == 200
    detail = (await gcx_client.get(f"/api/v1/staff/applications/{app.id}")).json()
    assert "send_to_inspection" in detail["actions"] and "approve" not in detail["actions"]
    refused = await act(gcx_client, app.id, "approve")
    assert refused.status_code == 409  # not from under_review any more

    page = await gcx_client.get(f"/backoffice/applications/{app.id}")
    assert 'data-action="send_to_inspection"' in page.text and "Send to inspection" in page.text
    sent = await gcx_client.post(
        f"/backoffice/applications/{app.id}/actions/send_to_inspection",
        data={"_csrf_token": csrf_of(page.text), "version": str(detail["version"])},
    )
    assert sent.status_code == 303
    public = (await gcx_client.get(f"/api/v1/applications/{code}")).json()
    assert public["status"] == "site_inspection"
    assert public["status_text"] == "A visit to your site is being arranged"
    await gcx_deliver()
    mails = await gcx_captured_mail(recipient=app.contact.email)
    visit = [m for m in mails if "site visit" in m["subject"]]
    assert len(visit) == 1 and app.warehouse_location in visit[0]["text"]

    # The dashboard counts the new state.
    board = (await gcx_client.get("/backoffice/dashboard.json")).json()
    counts = {s["status"]: s["count"] for s in board["statuses"]}
    assert counts["site_inspection"] == 1

    # Approval waits for the report: explained on the page, refused by the API.
    page = await gcx_client.get(f"/backoffice/applications/{app.id}")
    assert "Not yet: the site inspection report must be uploaded and verified" in page.text
    refused = await act(gcx_client, app.id, "approve")
    assert refused.status_code == 409 and "inspection_report" in refused.json()["error"]["fields"]

    # The reviewer uploads the inspector's report and verifies it, from the back office.
    uploaded = await gcx_client.post(
        f"/backoffice/applications/{app.id}/documents",
        data={"_csrf_token": csrf_of(page.text), "requirement_code": "inspection_report"},
        files={"document": ("report.pdf", PDF, "application/pdf")},
    )
    assert uploaded.status_code == 303
    (report,) = [
        v
        for v in await queries.documents_of(gcx, app.id)
        if v.requirement_code == "inspection_report"
    ]
    reviewed = await gcx_client.post(
        f"/backoffice/documents/{report.id}/review",
        data={"_csrf_token": csrf_of(page.text), "decision": "verify"},
    )
    assert reviewed.status_code == 303

    page = await gcx_client.get(f"/backoffice/applications/{app.id}")
    assert 'data-action="approve"' in page.text
    version = (await gcx_client.get(f"/api/v1/staff/applications/{app.id}")).json()["version"]
    approved = await gcx_client.post(
        f"/backoffice/applications/{app.id}/actions/approve",
        data={"_csrf_token": csrf_of(page.text), "version": str(version)},
    )
    assert approved.status_code == 303
    assert (await gcx_client.get(f"/api/v1/applications/{code}")).json()["status"] == "approved"


async def test_a_rejection_works_from_the_inspection(gcx, gcx_client, gcx_staff):
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    await sign_in(gcx_client, reviewer.email)
    created = await gcx_client.post("/api/v1/applications", json=make_submission())
    app = await queries.find_by_tracking_code(gcx, created.json()["tracking_code"])
    assert (await act(gcx_client, app.id, "start_review")).status_code == 200
    assert (await act(gcx_client, app.id, "send_to_inspection")).status_code == 200
    done = await act(gcx_client, app.id, "reject", reason_code="other", message="No site found")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected"


async def test_the_plugin_is_listed(gcx):
    names = {name for name, _ in gcx.plugins.list_name_plugin()}
    assert any("site_inspection" in str(n) for n in names)
    assert "site_inspection" in gcx.workflow.states
    assert gcx.workflow.transitions["approve"].sources >= {"site_inspection"}
    assert "under_review" not in gcx.workflow.transitions["approve"].sources
