"""Deadlines where people see them: the application page, the list's overdue filter, the
dashboard's time in status, the staff API, and the applicant's status page and API."""

from __future__ import annotations

from typing import Any

import httpx

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import deadlines
from gcx_core.system import Gcx
from tests.gcx_web.test_review_operations import sign_in


async def test_staff_see_the_deadline_and_find_what_is_overdue(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any, gcx_clock: Any
) -> None:
    user, reviewer = await gcx_staff(Role.REVIEWER)
    late = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, user.email)
    page = f"/backoffice/applications/{late.id}"
    html = (await client.get(page)).text
    assert 'id="deadline"' in html and "Review target:" in html and "overdue" not in html
    detail = (await client.get(f"/api/v1/staff/applications/{late.id}")).json()
    assert detail["deadline"]["kind"] == "review_target"
    assert detail["deadline"]["overdue"] is False

    gcx_clock.advance(days=10)  # past five working days, whatever the weekday
    in_time = await app_service.submit(gcx, make_submission(), Actor.applicant())
    report = await deadlines.run_due(gcx)
    assert report.passed == 1
    await deadlines.refresh_figures(gcx)
    await sign_in(client, user.email)  # ten days on, the session has ended
    html = (await client.get(page)).text
    assert "<strong>overdue</strong>" in html
    assert (await client.get(f"/api/v1/staff/applications/{late.id}")).json()["deadline"]["overdue"]

    listed = (await client.get("/backoffice/applications?overdue=true")).text
    assert late.tracking_code in listed and in_time.tracking_code not in listed
    assert 'name="overdue" value="true" checked' in listed
    api = (await client.get("/api/v1/staff/applications?overdue=true")).json()
    assert [a["id"] for a in api["items"]] == [late.id]
    everything = (await client.get("/api/v1/staff/applications")).json()
    assert {a["id"] for a in everything["items"]} == {late.id, in_time.id}
    bad = await client.get("/backoffice/applications?overdue=maybe")
    assert bad.status_code == 422 and "must be true or false" in bad.text
    assert (await client.get("/api/v1/staff/applications?overdue=maybe")).status_code == 400

    dashboard = (await client.get("/backoffice/")).text
    assert 'id="time-in-status"' in dashboard
    assert 'data-overdue="pending_review">1<' in dashboard
    assert 'data-ageing="pending_review:8-30">1<' in dashboard
    assert 'data-ageing="pending_review:0-2">1<' in dashboard
    figures = (await client.get("/backoffice/dashboard.json")).json()
    assert figures["overdue"] == {"pending_review": 1}
    assert figures["ageing"]["pending_review"] == {"0-2": 1, "3-7": 0, "8-30": 1, "30+": 0}

    await app_service.act(gcx, late.id, "start_review", reviewer)
    figures = (await client.get("/backoffice/dashboard.json")).json()
    assert figures["overdue"] == {}
    assert figures["ageing"]["under_review"]["0-2"] == 1
    assert "Review target" not in (await client.get(page)).text


async def test_the_applicant_sees_when_documents_are_due(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    track = f"/track/{app.tracking_code}"
    assert 'id="due"' not in (await client.get(track)).text, "a review target is staff's"
    assert (await client.get(f"/api/v1/applications/{app.tracking_code}")).json()["due_at"] is None
    await app_service.act(gcx, app.id, "start_review", reviewer)
    await app_service.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Please send it"},
    )
    html = (await client.get(track)).text
    assert 'id="due"' in html and "Please send what is asked by" in html
    status = (await client.get(f"/api/v1/applications/{app.tracking_code}")).json()
    found = await deadlines.deadline_for(gcx, app.id)
    assert found is not None and status["due_at"].startswith(found.due_at.strftime("%Y-%m-%dT"))
