"""Files sent with the application form: budgeted, bounded, and not kept once let go of."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gcx_core.samples import make_submission
from gcx_core.storage.tables import draft_files
from gcx_core.system import Gcx
from gcx_core.testing import FakeClock
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY, WebConfig, parse_rate_limits
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import count, csrf_of, post_step, step_form

BEFORE_DOCUMENTS = ("business", "contact", "commodities", "team", "next_of_kin", "bank")


@pytest.fixture(name="gcx_web_config")
def _upload_budget() -> WebConfig:
    return WebConfig(rate_limits=parse_rate_limits("upload=3/minute"))


def stored_files(gcx: Gcx) -> list[str]:
    root = gcx.settings.resolved_files_dir
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def fill_until_documents(client: httpx.AsyncClient) -> dict[str, Any]:
    data = make_submission()
    for step in BEFORE_DOCUMENTS:
        assert (await post_step(client, step, step_form(data, step))).status_code == 303
    return data


async def send(client: httpx.AsyncClient, content: bytes, **fields: str) -> httpx.Response:
    page = await client.get("/apply/documents")
    return await client.post(
        "/apply/documents",
        data={"_csrf_token": csrf_of(page.text), **fields},
        files={"documents.tax_clearance": ("tax.pdf", content, "application/pdf")},
    )


async def test_no_file_is_taken_before_the_earlier_steps(client: httpx.AsyncClient, gcx: Gcx):
    page = await client.get("/apply")
    response = await client.post(
        "/apply/documents",
        data={"_csrf_token": csrf_of((await client.get("/login")).text)},
        files={"documents.tax_clearance": ("tax.pdf", PDF, "application/pdf")},
    )
    assert page.status_code == 303
    assert response.status_code == 303 and response.headers["location"] == "/apply/business"
    assert stored_files(gcx) == []


async def test_draft_files_count_against_the_upload_budget(client: httpx.AsyncClient, gcx: Gcx):
    await fill_until_documents(client)
    for n in range(3):
        assert (await send(client, PDF + b"%" + bytes([n]))).status_code == 303
    limited = await send(client, PDF + b"%x")
    assert limited.status_code == 429
    assert len(stored_files(gcx)) == 1  # each replacement let the one before go


async def test_the_form_takes_no_more_than_the_upload_route(client: httpx.AsyncClient, gcx: Gcx):
    await fill_until_documents(client)
    too_big = PDF + b"0" * (DEFAULT_MAX_UPLOAD_BODY + 1)
    response = await send(client, too_big)
    assert response.status_code == 413
    assert stored_files(gcx) == []


async def test_removed_and_discarded_files_are_deleted(client: httpx.AsyncClient, gcx: Gcx):
    await fill_until_documents(client)
    assert (await send(client, PDF + b"%1")).status_code == 303
    assert len(stored_files(gcx)) == 1
    page = await client.get("/apply/documents")
    removed = await client.post(
        "/apply/documents",
        data={"_csrf_token": csrf_of(page.text), "remove.tax_clearance": "1"},
    )
    assert removed.status_code == 303
    assert stored_files(gcx) == []
    assert (await send(client, PDF + b"%2")).status_code == 303
    page = await client.get("/apply/documents")
    restart = await client.post("/apply/restart", data={"_csrf_token": csrf_of(page.text)})
    assert restart.status_code == 303
    assert stored_files(gcx) == []


async def test_a_file_another_document_holds_is_kept(client: httpx.AsyncClient, gcx: Gcx):
    from gcx_core.entities import Actor
    from gcx_core.services import applications, documents

    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", Actor.applicant())
    await fill_until_documents(client)
    assert (await send(client, PDF)).status_code == 303  # the same bytes
    page = await client.get("/apply/documents")
    await client.post("/apply/restart", data={"_csrf_token": csrf_of(page.text)})
    assert len(stored_files(gcx)) == 1  # the stored document's file stays


async def test_an_abandoned_drafts_files_expire(
    client: httpx.AsyncClient, gcx: Gcx, gcx_clock: FakeClock
):
    from gcx_core.services.documents import expire_draft_files

    data = await fill_until_documents(client)
    assert (await send(client, PDF + b"%abandoned")).status_code == 303
    gcx_clock.advance(hours=gcx.settings.draft_file_hours - 1)
    assert await expire_draft_files(gcx) == 0
    assert len(stored_files(gcx)) == 1  # a draft still being filled keeps its file
    gcx_clock.advance(hours=2)
    assert await expire_draft_files(gcx) == 1
    assert stored_files(gcx) == []
    assert await count(gcx, draft_files) == 0
    # The draft that lost its file is asked for it again instead of submitting without it.
    await post_step(client, "declaration", step_form(data, "declaration"))
    page = await client.get("/apply/review")
    submitted = await client.post("/apply/submit", data={"_csrf_token": csrf_of(page.text)})
    assert submitted.headers["location"] == "/apply/documents"


async def test_a_submitted_drafts_files_are_its_documents_and_stay(
    client: httpx.AsyncClient, gcx: Gcx, gcx_clock: FakeClock
):
    from gcx_core.services.documents import expire_draft_files

    data = await fill_until_documents(client)
    assert (await send(client, PDF + b"%kept")).status_code == 303
    await post_step(client, "declaration", step_form(data, "declaration"))
    page = await client.get("/apply/review")
    submitted = await client.post("/apply/submit", data={"_csrf_token": csrf_of(page.text)})
    assert submitted.headers["location"] == "/apply/done"
    assert await count(gcx, draft_files) == 0
    gcx_clock.advance(hours=gcx.settings.draft_file_hours + 1)
    assert await expire_draft_files(gcx) == 0
    assert len(stored_files(gcx)) == 1
