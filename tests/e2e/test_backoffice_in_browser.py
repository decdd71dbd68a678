"""Staff and applicants in real browsers: the dashboard (counts, workload) following an
approval, refused actions explained, bulk work, and the thread with the applicant."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.services.accounts import create_user
from gcx_core.services.queries import get_application
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from tests.e2e.conftest import Server
from tests.gcx_core.pdfs import PDF

PASSWORD = "correct horse battery staple"


def prepare(server: Server) -> tuple[int, str, str, int]:
    """Staff, and an application ready for approval: every required document verified."""

    async def run() -> tuple[int, str, str, int]:
        settings = Settings(
            data_dir=server.data_dir, secret_key="e2e-secret-key-not-for-production"
        )
        async with await Gcx.open(settings) as gcx:
            admin, _ = await create_user(
                gcx, "watcher@e2e.example", Role.ADMIN, Actor.system("e2e"), password=PASSWORD
            )
            reviewer, _ = await create_user(
                gcx, "approver@e2e.example", Role.REVIEWER, Actor.system("e2e"), password=PASSWORD
            )
            actor = Actor.for_user(reviewer)
            app = await app_service.submit(gcx, make_submission(), Actor.applicant())
            for requirement in gcx.requirements_for(app):
                doc = await doc_service.upload_document(
                    gcx, app.id, requirement.code, PDF, f"{requirement.code}.pdf", Actor.applicant()
                )
                await doc_service.review_document(gcx, doc.id, True, actor)
            await app_service.act(gcx, app.id, "start_review", actor)
            return app.id, admin.email, reviewer.email, reviewer.id

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(url + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/backoffice/")


def test_approval_reaches_another_browser_live(
    browser: Any, server: Server, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    app_id, watcher, approver, approver_id = prepare(server)
    first = browser.new_context(viewport={"width": 1300, "height": 900})
    second = browser.new_context(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    dashboard = first.new_page()
    dashboard.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(dashboard, server.url, watcher)
    expect(dashboard.locator("#connection")).to_have_text("Live", timeout=10_000)
    approved = dashboard.locator('[data-count="approved"]')
    before = int(approved.inner_text())
    under_review = int(dashboard.locator('[data-count="under_review"]').inner_text())
    # The approver holds the application (starting the review assigned it to them).
    workload = dashboard.locator(f'[data-workload="{approver_id}"]')
    expect(workload).to_have_text("1")
    expect(dashboard.locator(f'[data-held="{approver_id}"]')).not_to_have_text("\u2014")
    dashboard.screenshot(path=str(artifacts / "01-dashboard-before.png"), full_page=True)

    page = second.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, server.url, approver)
    page.goto(f"{server.url}/backoffice/applications/{app_id}")
    page.click("summary:has-text('Approve')")
    page.click("button[data-action='approve']")
    page.wait_for_url(f"**/backoffice/applications/{app_id}")
    # Told what happened, and the status shown by its label.
    expect(page.locator("#flash")).to_contain_text("Approved: the supplier account is open")
    expect(page.locator("#status-label")).to_have_text("Approved")
    expect(page.locator("#status-label")).to_have_class("badge status-approved")
    page.screenshot(path=str(artifacts / "02-approved-by-second-browser.png"), full_page=True)

    # The first browser never reloads: its counters and recent list follow.
    expect(approved).to_have_text(str(before + 1), timeout=5_000)
    expect(dashboard.locator('[data-count="under_review"]')).to_have_text(str(under_review - 1))
    expect(dashboard.locator("#recent tr").first.locator("td").nth(2)).to_have_text("Approved")
    expect(workload).to_have_text("0")  # approved is final: off the reviewer's queue
    expect(dashboard.locator(f'[data-held="{approver_id}"]')).to_have_text("\u2014")
    dashboard.screenshot(path=str(artifacts / "03-dashboard-after.png"), full_page=True)
    assert errors == []
    first.close()
    second.close()


def test_a_refused_action_says_why_on_the_application_page(
    browser: Any, server: Server, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    app_id, _, approver, _ = prepare(server)
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    sign_in(page, server.url, approver)
    page.goto(f"{server.url}/backoffice/applications/{app_id}")
    # The navigation fits a 1366-px screen on one line.
    nav = page.locator("header.site").bounding_box()
    assert nav is not None and nav["height"] < 80, nav
    page.click("summary:has-text('Request documents')")
    page.fill("#msg-request_documents", "Please send more")
    page.click("button[data-action='request_documents']")  # no document ticked
    page.wait_for_url(f"**/backoffice/applications/{app_id}")
    expect(page.locator("#flash")).to_contain_text("Request documents was refused")
    expect(page.locator("#status-label")).to_have_text("Under review")
    page.screenshot(path=str(artifacts / "refused.png"), full_page=True)
    # On a phone, the list's table scrolls in its own box instead of widening the page.
    phone = browser.new_context(viewport={"width": 390, "height": 800})
    small = phone.new_page()
    sign_in(small, server.url, approver)
    small.goto(f"{server.url}/backoffice/applications")
    expect(small.locator("#applications td [data-status]").first).to_have_text("Under review")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    small.screenshot(path=str(artifacts / "list-at-390.png"), full_page=True)
    context.close()
    phone.close()


def test_bulk_start_review_reports_each_application(
    browser: Any, server: Server, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    started, _, reviewer, _ = prepare(server)  # under review already: refused in the batch

    async def more() -> list[int]:
        settings = Settings(
            data_dir=server.data_dir, secret_key="e2e-secret-key-not-for-production"
        )
        async with await Gcx.open(settings) as gcx:
            return [
                (await app_service.submit(gcx, make_submission(), Actor.applicant())).id
                for _ in range(2)
            ]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fresh = pool.submit(asyncio.run, more()).result()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, server.url, reviewer)
    page.goto(f"{server.url}/backoffice/applications")
    for app_id in [*fresh, started]:
        page.check(f"tr[data-id='{app_id}'] input[type=checkbox]")
    page.select_option("#bulk-operation", "start_review")
    page.click("#bulk-next")
    expect(page.locator("h1")).to_have_text("Start review: 3 applications?")
    page.screenshot(path=str(artifacts / "bulk-confirm.png"), full_page=True)
    page.click("#bulk-confirm")
    expect(page.locator("h1")).to_have_text("Start review: 2 done, 1 refused")
    rows = page.locator("#bulk-results tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#bulk-results tr.refused")).to_contain_text(
        "is not possible while the application is “Under review”"
    )
    page.screenshot(path=str(artifacts / "bulk-results.png"), full_page=True)
    page.goto(f"{server.url}/backoffice/applications?queue=mine")
    expect(page.locator("#applications tbody tr")).to_have_count(3)  # all three are theirs
    assert errors == []
    context.close()


def test_the_thread_reaches_the_reviewer_live(
    browser: Any, server: Server, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    app_id, _, reviewer, _ = prepare(server)

    async def code() -> str:
        settings = Settings(
            data_dir=server.data_dir, secret_key="e2e-secret-key-not-for-production"
        )
        async with await Gcx.open(settings) as gcx:
            return (await get_application(gcx, app_id)).tracking_code

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tracking_code = pool.submit(asyncio.run, code()).result()
    staff = browser.new_context(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    desk = staff.new_page()
    desk.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(desk, server.url, reviewer)
    desk.goto(f"{server.url}/backoffice/applications/{app_id}#messages")
    desk.fill("#message-body", "Is the warehouse in Tema yours or rented?")
    desk.click("#send-message")
    expect(desk.locator("#flash")).to_contain_text("Sent: the applicant has been emailed")
    expect(desk.locator("#connection")).to_have_text("Live", timeout=10_000)

    applicant = browser.new_context(viewport={"width": 390, "height": 800})
    page = applicant.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/track/{tracking_code}")
    expect(page.locator("#messages")).to_contain_text("Is the warehouse in Tema yours or rented?")
    page.fill("#reply", "Rented: the lease is attached.")
    page.set_input_files(
        "#reply-file", files=[{"name": "lease.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.click("#send-reply")
    expect(page.locator("[role=status]")).to_contain_text("Your message was sent")
    page.screenshot(path=str(artifacts / "thread-applicant.png"), full_page=True)

    # The reviewer's page never reloaded by hand: the reply arrives on it, with its file.
    expect(desk.locator("#messages")).to_contain_text(
        "Rented: the lease is attached.", timeout=10_000
    )
    expect(desk.locator("#messages a:has-text('lease.pdf')")).to_be_visible()
    desk.screenshot(path=str(artifacts / "thread-reviewer.png"), full_page=True)
    # And the answer reaches the applicant's open page, which is not reloaded either.
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    desk.fill("#message-body", "Thank you: we will visit on Monday.")
    desk.click("#send-message")
    expect(page.locator("#thread")).to_contain_text(
        "Thank you: we will visit on Monday.", timeout=10_000
    )
    expect(page.locator("#thread")).to_contain_text("Attached: lease.pdf")
    assert errors == []
    staff.close()
    applicant.close()
