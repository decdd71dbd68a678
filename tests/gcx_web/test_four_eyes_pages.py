"""Two-person approval in the back office: the first approver is told to wait for another;
the second confirms or sends it back with a comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import csrf_of

PASSWORD = "correct horse battery staple"


@pytest.fixture(name="gcx_settings")
def _settings(gcx_database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=gcx_database_url,
        secret_key="test-secret-key-not-for-production",
        four_eyes=True,
    )


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    await client.post("/logout", data={"_csrf_token": client.cookies.get("gcx_csrf", "")})
    client.cookies.clear()
    page = await client.get("/login")
    answer = await client.post(
        "/login", data={"_csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 303


async def act(client: httpx.AsyncClient, app_id: int, action: str, **fields: str) -> str:
    page = f"/backoffice/applications/{app_id}"
    html = (await client.get(page)).text
    answer = await client.post(
        f"{page}/actions/{action}", data={"_csrf_token": csrf_of(html), **fields}
    )
    assert answer.status_code == 303
    return (await client.get(page)).text


async def test_two_people_approve_from_the_page(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    first, first_actor = await gcx_staff(Role.REVIEWER)
    second, _ = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    for r in gcx.requirements_for(app):
        doc = await doc_service.upload_document(
            gcx, app.id, r.code, PDF, "d.pdf", Actor.applicant()
        )
        await doc_service.review_document(gcx, doc.id, True, first_actor)
    await app_service.act(gcx, app.id, "start_review", first_actor)

    await sign_in(client, first.email)
    html = await act(client, app.id, "approve")
    assert "First approval given" in html and "Awaiting second approval" in html
    assert "Not yet: you gave the first approval" in html  # confirm shown, disabled

    await sign_in(client, second.email)
    html = await act(client, app.id, "return_to_review")
    assert "say why it goes back to review" in html
    html = await act(client, app.id, "return_to_review", comment="Bank name differs.")
    assert "Sent back to review" in html and "Bank name differs." in html  # in the timeline
    html = await act(client, app.id, "approve")
    await sign_in(client, first.email)
    html = await act(client, app.id, "confirm_approval")
    assert "Approved: the supplier account is open" in html
