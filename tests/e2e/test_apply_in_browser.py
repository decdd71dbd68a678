"""An applicant in a real browser: the multi-step form, a mistake, tracking, an upload."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services.accounts import create_user
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from tests.e2e.conftest import Server
from tests.gcx_core.pdfs import PDF


def request_documents(server: Server, code: str) -> None:
    """A reviewer's part, done on the same database as the server (the back office is issue 5)."""

    async def act() -> None:
        settings = Settings(
            data_dir=server.data_dir, secret_key="e2e-secret-key-not-for-production"
        )
        async with await Gcx.open(settings) as gcx:
            user, _ = await create_user(
                gcx, "reviewer@e2e.example", Role.REVIEWER, Actor.system("e2e")
            )
            reviewer = Actor.for_user(user)
            await app_service.act(gcx, code, "start_review", reviewer)
            await app_service.act(
                gcx,
                code,
                "request_documents",
                reviewer,
                params={
                    "requirement_codes": ["tax_clearance"],
                    "message": "Please send the 2026 certificate.",
                },
            )

    # Playwright's sync API keeps an event loop on this thread: run ours on another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, act()).result()


def fill(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f'[name="{name}"]', value)


def test_apply_track_and_upload(
    browser: Any, server: Server, artifacts: Path, tmp_path: Path
) -> None:
    data = make_submission()
    b = data["business"]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.click("text=Start an application")
    page.wait_for_url("**/apply/business")

    # Step 1 with a mistake: a bad TIN and no region.
    fill(page, {f"business.{k}": b[k] for k in ("name", "registration_number", "address", "city")})
    page.select_option('[name="business.business_type"]', "limited_company")
    page.fill('[name="business.tin"]', "??")
    page.click("text=Save and continue")
    page.wait_for_selector("#error-summary")
    assert page.locator('[id="business.tin-error"]').is_visible()
    assert page.locator('[id="business.region-error"]').is_visible()
    assert page.input_value('[name="business.name"]') == b["name"]  # kept
    page.screenshot(path=str(artifacts / "01-validation-error.png"), full_page=True)

    page.fill('[name="business.tin"]', b["tin"])
    page.select_option('[name="business.region"]', "AA")
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/contact")
    fill(
        page,
        {
            "contact.telephone": "024 123 4567",
            "contact.email": data["contact"]["email"],
            "warehouse_location": "Tema",
        },
    )
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/commodities")
    page.check('input[name="commodities"][value="maize"]')
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/team")
    fill(page, {f"team_members[0].{k}": v for k, v in data["team_members"][0].items()})
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/next_of_kin")
    fill(page, {f"next_of_kin.{k}": v for k, v in data["next_of_kin"].items()})
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/bank")
    fill(
        page, {f"bank_accounts.primary.{k}": v for k, v in data["bank_accounts"]["primary"].items()}
    )
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/documents")
    page.click("text=Save and continue")  # documents can come later
    page.wait_for_url("**/apply/declaration")
    page.check('[name="declaration.agreed"]')
    page.check('[name="declaration.data_consent"]')
    fill(
        page,
        {"declaration.signer_name": "Ama Mensah", "declaration.signer_designation": "Director"},
    )
    page.click("text=Save and continue")
    page.wait_for_url("**/apply/review")
    assert b["name"] in page.inner_text("main")
    assert "Tax clearance certificate" in page.inner_text("#still-needed")
    page.screenshot(path=str(artifacts / "02-review.png"), full_page=True)
    # "Discard and start again" asks first; keeping the draft changes nothing.
    page.click("#discard")
    page.wait_for_url("**/apply/restart")
    assert "Yes, discard it" in page.inner_text("main")
    page.click("text=No, keep it")
    page.wait_for_url("**/apply/review")
    assert b["name"] in page.inner_text("main")
    page.click("text=Submit application")
    code = page.inner_text("#tracking-code").strip()
    assert code.startswith("GCX-")
    page.screenshot(path=str(artifacts / "03-submitted.png"), full_page=True)

    page.click("text=Go to your tracking page")
    page.wait_for_url(f"**/track/{code}")
    assert page.inner_text("#status-label") == "Pending review"
    page.wait_for_selector(".live-state.on")  # the live socket connected

    request_documents(server, code)
    page.reload()
    page.wait_for_selector("text=Documents requested")
    assert "Please send the 2026 certificate." in page.inner_text("main")
    page.screenshot(path=str(artifacts / "04-documents-requested.png"), full_page=True)
    certificate = tmp_path / "tax-clearance.pdf"
    certificate.write_bytes(PDF)
    page.set_input_files('[id="documents.tax_clearance"]', str(certificate))
    page.click("#upload-documents button[type=submit]")
    page.wait_for_selector("text=the document was received")
    page.wait_for_selector("text=Send documents to the reviewer")
    page.screenshot(path=str(artifacts / "05-uploaded.png"), full_page=True)

    # The page follows changes made elsewhere (here: the API) without a reload by the user.
    import httpx

    httpx.post(f"{server.url}/api/v1/applications/{code}/resubmit").raise_for_status()
    from playwright.sync_api import expect

    expect(page.locator("#status-label")).to_have_text("Under review", timeout=10_000)
    page.screenshot(path=str(artifacts / "06-live-update.png"), full_page=True)
    assert errors == []
    context.close()
