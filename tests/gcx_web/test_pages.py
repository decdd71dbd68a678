"""The applicant's pages without JavaScript: the multi-step form, tracking, upload, withdraw."""

from __future__ import annotations

import re
from typing import Any

import httpx
import sqlalchemy as sa

from gcx_core.entities import Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.storage.tables import applications, documents, notifications
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import HTML, PDF
from tests.gcx_web.conftest import (
    count,
    csrf_of,
    field_errors,
    post_step,
    step_form,
    submit_json,
    withdrawal_tokens,
)


async def test_the_whole_form(client: httpx.AsyncClient, gcx: Gcx) -> None:
    data = make_submission()
    start = await client.get("/apply")
    assert start.status_code == 303 and start.headers["location"] == "/apply/business"
    # A later step is not reachable before the earlier ones are done.
    early = await client.get("/apply/bank")
    assert early.headers["location"] == "/apply/business"

    # A mistake: the errors are next to the fields, and what was typed is kept.
    wrong = step_form(data, "business") | {"business.tin": "??", "business.region": ""}
    response = await post_step(client, "business", wrong)
    assert response.status_code == 422
    assert 'id="business.tin-error"' in response.text
    assert 'id="business.region-error"' in response.text
    assert f'value="{data["business"]["name"]}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "contact" not in " ".join(field_errors(response.text))  # later steps: no errors yet

    response = await post_step(client, "business", step_form(data, "business"))
    assert response.headers["location"] == "/apply/contact"
    for step, following in [
        ("contact", "commodities"),
        ("commodities", "team"),
        ("team", "next_of_kin"),
        ("next_of_kin", "bank"),
        ("bank", "documents"),
    ]:
        response = await post_step(client, step, step_form(data, step))
        assert response.status_code == 303, field_errors(response.text)
        assert response.headers["location"] == f"/apply/{following}"

    # Documents: checked by content when chosen.
    bad = await post_step(
        client,
        "documents",
        {},
        files={"documents.tax_clearance": ("tax.pdf", HTML, "application/pdf")},
    )
    assert bad.status_code == 422
    assert any("send a PDF" in e for e in field_errors(bad.text))
    good = await post_step(
        client,
        "documents",
        {},
        files={"documents.tax_clearance": ("tax.pdf", PDF, "application/pdf")},
    )
    assert good.headers["location"] == "/apply/declaration"
    unticked = step_form(data, "declaration")
    del unticked["declaration.agreed"]
    response = await post_step(client, "declaration", unticked)
    assert response.status_code == 422
    response = await post_step(client, "declaration", step_form(data, "declaration"))
    assert response.headers["location"] == "/apply/review"

    review = await client.get("/apply/review")
    assert data["business"]["name"] in review.text
    assert "Dried mango" in review.text
    assert "tax.pdf" in review.text
    assert await count(gcx, applications) == 0  # nothing is stored before the final submit

    submitted = await client.post("/apply/submit", data={"_csrf_token": csrf_of(review.text)})
    assert submitted.status_code == 303 and submitted.headers["location"] == "/apply/done"
    done = await client.get("/apply/done")
    assert done.status_code == 200
    code = re.search(r'id="tracking-code">([^<]+)<', done.text).group(1)  # type: ignore[union-attr]
    assert data["contact"]["email"] in done.text
    assert "Documents received: 1." in done.text
    # Reloading the confirmation (or the submit address) shows the code again; nothing is
    # submitted twice.
    assert code in (await client.get("/apply/done")).text
    again = await client.get("/apply/submit")
    assert again.status_code == 303 and again.headers["location"] == "/apply/done"
    async with gcx.database.read() as conn:
        row = (await conn.execute(sa.select(applications))).one()
        types = set((await conn.execute(sa.select(notifications.c.type))).scalars())
    assert row.tracking_code == code
    assert "application_received" in types  # the confirmation email is queued
    assert await count(gcx, documents) == 1
    # The draft is gone: a new application starts afresh.
    assert (await client.get("/apply")).headers["location"] == "/apply/business"
    status = await client.get(f"/track/{code}")
    assert status.status_code == 200
    assert "Pending review" in status.text


async def test_a_duplicate_is_explained_on_the_review_page(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    data = make_submission()
    await submit_json(client, data)
    for step in (
        "business",
        "contact",
        "commodities",
        "team",
        "next_of_kin",
        "bank",
        "documents",
        "declaration",
    ):
        response = await post_step(client, step, step_form(data, step))
        assert response.status_code == 303, (step, field_errors(response.text))
    review = await client.get("/apply/review")
    again = await client.post("/apply/submit", data={"_csrf_token": csrf_of(review.text)})
    assert again.status_code == 409
    assert "already" in again.text
    assert await count(gcx, applications) == 1


async def test_forms_need_the_csrf_token(client: httpx.AsyncClient, gcx: Gcx) -> None:
    await client.get("/apply/business")  # sets the CSRF cookie
    response = await client.post("/apply/business", data={"business.name": "X"})
    assert response.status_code == 403
    code = await submit_json(client, make_submission())
    refused = await client.post(f"/track/{code}/withdraw", data={"confirm": "yes"})
    assert refused.status_code == 403
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"


async def test_track_by_code(client: httpx.AsyncClient) -> None:
    code = await submit_json(client, make_submission())
    form = await client.get("/track")
    found = await client.post(
        "/track", data={"_csrf_token": csrf_of(form.text), "code": code.lower()}
    )
    assert found.status_code == 303 and found.headers["location"] == f"/track/{code}"
    missing = await client.post(
        "/track", data={"_csrf_token": csrf_of(form.text), "code": "GCX-0000-0000-0000"}
    )
    assert missing.status_code == 404
    assert "No application has this tracking code" in missing.text
    page = await client.get("/track/GCX-0000-0000-0000", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "Not found" in page.text


async def test_requested_documents_are_uploaded_from_the_status_page(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    code = await submit_json(client, make_submission())
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await app_service.act(gcx, code, "start_review", reviewer, params={"comment": "SECRET NOTE"})
    await app_service.act(
        gcx,
        code,
        "request_documents",
        reviewer,
        params={
            "requirement_codes": ["tax_clearance"],
            "message": "Please send the <b>current</b> one",
        },
    )
    page = await client.get(f"/track/{code}")
    assert "Documents requested" in page.text
    assert "SECRET NOTE" not in page.text
    assert "&lt;b&gt;current&lt;/b&gt;" in page.text  # escaped, never HTML
    assert f'action="/track/{code}/documents"' in page.text
    assert 'name="documents.tax_clearance"' in page.text

    wrong = await client.post(
        f"/track/{code}/documents/tax_clearance",
        data={"_csrf_token": csrf_of(page.text)},
        files={"file": ("tax.pdf", HTML, "application/pdf")},
    )
    assert wrong.status_code == 415
    # In plain words: no MIME types.
    (said,) = field_errors(wrong.text)
    assert "send a PDF, PNG image or JPEG image" in said and "application/" not in said
    uploaded = await client.post(
        f"/track/{code}/documents/tax_clearance",
        data={"_csrf_token": csrf_of(page.text)},
        files={"file": ("tax.pdf", PDF, "application/pdf")},
    )
    assert uploaded.status_code == 303
    page = await client.get(uploaded.headers["location"])
    assert "the document was received" in page.text
    assert "Send documents to the reviewer" in page.text
    sent = await client.post(
        f"/track/{code}/resubmit",
        data={
            "_csrf_token": csrf_of(page.text),
            "version": re.search(r'name="version" value="(\d+)"', page.text).group(1),
        },  # type: ignore[union-attr]
    )
    assert sent.status_code == 303
    assert "Under review" in (await client.get(f"/track/{code}")).text


async def test_the_track_page_takes_several_files_at_once(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    code = await submit_json(client, make_submission())
    page = await client.get(f"/track/{code}")
    outstanding = re.findall(r'name="documents\.(\w+)"', page.text)
    assert len(outstanding) >= 2
    first, second, *_ = outstanding
    url = f"/track/{code}/documents"
    nothing = await client.post(url, data={"_csrf_token": csrf_of(page.text)})
    assert nothing.status_code == 422 and "Choose at least one file" in nothing.text
    mixed = await client.post(
        url,
        data={"_csrf_token": csrf_of(page.text)},
        files=[
            (f"documents.{first}", ("a.pdf", PDF + b"%a", "application/pdf")),
            (f"documents.{second}", ("b.pdf", HTML, "application/pdf")),
        ],
    )
    assert mixed.status_code == 422
    assert "1 of 2 documents were received" in mixed.text
    assert any("PDF" in e for e in field_errors(mixed.text))
    both = await client.post(
        url,
        data={"_csrf_token": csrf_of(page.text)},
        files=[
            (f"documents.{second}", ("b.pdf", PDF + b"%b", "application/pdf")),
            (
                f"documents.{outstanding[2] if len(outstanding) > 2 else first}",
                ("c.pdf", PDF + b"%c", "application/pdf"),
            ),
        ],
    )
    assert both.status_code == 303
    assert "2 documents were received" in (await client.get(both.headers["location"])).text
    async with gcx.database.read() as conn:
        stored = (
            await conn.execute(sa.select(sa.func.count()).select_from(documents))
        ).scalar_one()
    assert stored == 3


async def test_error_summaries_name_fields_as_the_form_does(client: httpx.AsyncClient) -> None:
    data = make_submission()
    for step in ("business", "contact", "commodities", "team", "next_of_kin"):
        await post_step(client, step, step_form(data, step))
    bank = step_form(data, "bank")
    bank["bank_accounts.primary.account_number"] = "12"
    bank["bank_accounts.secondary.bank_name"] = "Second Bank"
    bank["bank_accounts.secondary.account_name"] = data["business"]["name"]
    bank["bank_accounts.secondary.account_number"] = "x"
    response = await post_step(client, "bank", bank)
    assert response.status_code == 422
    summary = response.text[response.text.index("error-summary") :]
    assert "Primary account: account number" in summary
    assert "Secondary account: account number" in summary
    words = re.sub(r"<[^>]+>", " ", summary.split("</div>")[0])
    assert "bank_accounts." not in words


async def test_the_review_step_lists_documents_still_needed(client: httpx.AsyncClient) -> None:
    data = make_submission()
    for step in ("business", "contact", "commodities", "team", "next_of_kin", "bank"):
        await post_step(client, step, step_form(data, step))
    await post_step(client, "documents", {})
    await post_step(client, "declaration", step_form(data, "declaration"))
    review = await client.get("/apply/review")
    needed = review.text[review.text.index('id="still-needed"') :].split("</div>")[0]
    assert "Tax clearance certificate" in needed


async def test_discarding_a_draft_asks_first(client: httpx.AsyncClient) -> None:
    data = make_submission()
    await post_step(client, "business", step_form(data, "business"))
    ask = await client.get("/apply/restart")
    assert ask.status_code == 200 and "Yes, discard it" in ask.text
    assert (await client.get("/apply/business")).text.count(data["business"]["name"]) >= 1
    done = await client.post("/apply/restart", data={"_csrf_token": csrf_of(ask.text)})
    assert done.status_code == 303
    assert data["business"]["name"] not in (await client.get("/apply/business")).text
    # With nothing to discard, there is nothing to ask.
    assert (await client.get("/apply/restart")).headers["location"] == "/apply"


async def test_the_site_has_an_icon(client: httpx.AsyncClient) -> None:
    page = await client.get("/track")
    assert 'rel="icon" href="/static/favicon.svg"' in page.text
    icon = await client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    legacy = await client.get("/favicon.ico")
    assert legacy.status_code == 301 and legacy.headers["location"] == "/static/favicon.svg"


async def test_withdraw_by_the_emailed_link(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    ask = await client.get(f"/track/{code}/withdraw")
    token = csrf_of(ask.text)
    unconfirmed = await client.post(f"/track/{code}/withdraw", data={"_csrf_token": token})
    assert unconfirmed.status_code == 422
    asked = await client.post(
        f"/track/{code}/withdraw",
        data={"_csrf_token": token, "confirm": "yes", "comment": "sold the farm"},
    )
    assert asked.status_code == 303
    told = await client.get(asked.headers["location"])
    assert "We sent a link" in told.text and "Pending review" in told.text
    (link,) = await withdrawal_tokens(gcx, code)
    # Opening the link (as a mail scanner would) changes nothing; it asks once more.
    opened = await client.get(f"/track/{code}/withdraw/{link}")
    assert opened.status_code == 200 and "Withdraw the application" in opened.text
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"
    csrf = csrf_of(opened.text)
    forged = await client.post(f"/track/{code}/withdraw/{link}x", data={"_csrf_token": csrf})
    assert forged.status_code == 410 and "no longer works" in forged.text
    done = await client.post(f"/track/{code}/withdraw/{link}", data={"_csrf_token": csrf})
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "Withdrawn" in page.text
    assert "Withdraw this application" not in page.text
    again = await client.get(f"/track/{code}/withdraw/{link}")
    assert again.status_code == 410 and f"/track/{code}" in again.text


async def test_a_link_for_an_application_closed_meanwhile_withdraws_nothing(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    code = await submit_json(client, make_submission())
    page = await client.get(f"/track/{code}/withdraw")
    await client.post(
        f"/track/{code}/withdraw", data={"_csrf_token": csrf_of(page.text), "confirm": "yes"}
    )
    (link,) = await withdrawal_tokens(gcx, code)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await app_service.act(gcx, code, "start_review", reviewer)
    await app_service.act(
        gcx, code, "reject", reviewer, params={"reason_code": "other", "message": "Not now"}
    )
    opened = await client.get(f"/track/{code}/withdraw/{link}")
    refused = await client.post(
        f"/track/{code}/withdraw/{link}", data={"_csrf_token": csrf_of(opened.text)}
    )
    assert refused.status_code == 409 and "can no longer be withdrawn" in refused.text
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "rejected"


async def test_pages_carry_no_inline_script(client: httpx.AsyncClient) -> None:
    code = await submit_json(client, make_submission())
    for path in ("/", "/apply/business", "/track", f"/track/{code}"):
        page = await client.get(path)
        assert page.status_code == 200
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None, path
        assert " on" + "click=" not in page.text


async def test_every_step_posted_empty_is_a_field_error(client: httpx.AsyncClient) -> None:
    """Nothing filled in, nothing ticked, "Save and continue": field errors, never a 500."""
    from gcx_web.applicant.forms import STEPS

    data = make_submission()
    for step in STEPS:
        if step.slug == "review":
            break
        empty = await post_step(client, step.slug, {})
        if step.slug == "documents":  # documents may follow after submitting
            assert empty.status_code == 303, field_errors(empty.text)
            continue
        assert empty.status_code == 422, (step.slug, empty.status_code)
        assert field_errors(empty.text), step.slug
        filled = await post_step(client, step.slug, step_form(data, step.slug))
        assert filled.status_code == 303, (step.slug, field_errors(filled.text))


async def test_the_confirmation_needs_a_submission_from_this_browser(
    client: httpx.AsyncClient,
) -> None:
    nothing = await client.get("/apply/done")
    assert nothing.status_code == 303 and nothing.headers["location"] == "/track"
    fresh = await client.get("/apply/submit")
    assert fresh.status_code == 303 and fresh.headers["location"] == "/apply"
