"""The public JSON API through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from gcx_core.entities import Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.storage.tables import (
    applications,
    audit_log,
    documents,
    notifications,
    status_changes,
)
from gcx_core.system import Gcx
from gcx_core.testing import FakeClock
from tests.gcx_core.pdfs import HTML, PDF, PNG
from tests.gcx_web.conftest import (
    UNKNOWN,
    count,
    error_of,
    submit_json,
    withdraw_by_api,
    withdrawal_tokens,
)


@pytest.fixture(name="gcx_database_url", params=["sqlite", "postgresql"])
def _every_database(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("gcx_sqlite_database_url")
    return request.getfixturevalue("gcx_postgres_database_url")


async def test_submit_then_status(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/applications", json=make_submission())
    assert response.status_code == 201
    body = response.json()
    code = body["tracking_code"]
    assert body["status"] == "pending_review"
    assert body["status_url"] == f"/api/v1/applications/{code}"

    status = (await client.get(f"/api/v1/applications/{code}")).json()
    assert status["status"] == "pending_review"
    assert status["status_text"] == "Received, waiting for a reviewer"
    assert status["timeline"][0]["title"] == "Application submitted"
    assert status["can_withdraw"] is True
    # Every required document is outstanding until uploaded; FDA only for processed food.
    outstanding = {o["requirement"]: o["reason"] for o in status["outstanding"]}
    assert outstanding and set(outstanding.values()) == {"missing"}
    assert "fda_certificate" not in outstanding
    # Lower case and without dashes is the same code.
    again = await client.get(f"/api/v1/applications/{code.lower().replace('-', '')}")
    assert again.status_code == 200


async def test_a_status_looked_up_again_follows_every_change(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    """Status answers are kept per unchanged application (see applicant_view): the same bytes
    while nothing changes, the new state at once after a change."""
    code = await submit_json(client, make_submission())
    url = f"/api/v1/applications/{code}"
    first = await client.get(url)
    assert (await client.get(url)).content == first.content
    uploaded = await client.post(
        f"{url}/documents/tax_clearance", files={"file": ("tax.pdf", PDF, "application/pdf")}
    )
    assert uploaded.status_code == 201
    after = (await client.get(url)).json()
    assert "tax_clearance" not in [o["requirement"] for o in after["outstanding"]]
    assert [e["kind"] for e in after["timeline"]] == ["status_change", "document"]
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await app_service.act(gcx, code, "start_review", reviewer)  # staff, not this API
    assert (await client.get(url)).json()["status"] == "under_review"
    outstanding = (await client.get(f"{url}/outstanding")).json()
    assert outstanding["status"] == "under_review"


async def test_the_api_sets_no_cookies_and_needs_no_csrf_token(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    """The public API is cookieless: no session, no CSRF cookie, and none asked for."""
    client.cookies.clear()
    submitted = await client.post("/api/v1/applications", json=make_submission())
    assert submitted.status_code == 201 and "set-cookie" not in submitted.headers
    code = submitted.json()["tracking_code"]
    for response in (
        await client.get(f"/api/v1/applications/{code}"),
        await client.get(f"/api/v1/applications/{code}/outstanding"),
        await withdraw_by_api(client, gcx, code),
    ):
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
    assert not client.cookies


async def test_outstanding_lists_requested_documents(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    code = await submit_json(client, make_submission())
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await app_service.act(gcx, code, "start_review", reviewer)
    await app_service.act(
        gcx,
        code,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Send the 2026 one"},
    )
    body = (await client.get(f"/api/v1/applications/{code}/outstanding")).json()
    assert body["status"] == "documents_requested"
    assert body["message"] == "Send the 2026 one"
    requested = [i for i in body["items"] if i["reason"] == "requested"]
    assert [i["requirement"] for i in requested] == ["tax_clearance"]

    refused = await client.post(f"/api/v1/applications/{code}/resubmit")
    assert error_of(refused, 409)["code"] == "refused"
    uploaded = await client.post(
        f"/api/v1/applications/{code}/documents/tax_clearance",
        files={"file": ("tax.pdf", PDF, "application/pdf")},
    )
    assert uploaded.status_code == 201
    resubmitted = await client.post(f"/api/v1/applications/{code}/resubmit")
    assert resubmitted.status_code == 200
    assert resubmitted.json()["status"] == "under_review"


async def test_internal_comments_never_reach_the_applicant(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    code = await submit_json(client, make_submission())
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await app_service.act(
        gcx, code, "start_review", reviewer, params={"comment": "INTERNAL: looks dodgy"}
    )
    text = (await client.get(f"/api/v1/applications/{code}")).text
    assert "INTERNAL" not in text
    assert reviewer.label not in text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/applications/{code}",
        "/api/v1/applications/{code}/outstanding",
    ],
)
@pytest.mark.parametrize("code", [UNKNOWN, "not-a-code", "GCX-0000"])
async def test_unknown_codes_are_404_on_reads(
    client: httpx.AsyncClient, path: str, code: str
) -> None:
    body = error_of(await client.get(path.format(code=code)), 404)
    assert body["code"] == "not_found"


async def test_unknown_codes_are_404_on_writes(client: httpx.AsyncClient, gcx: Gcx) -> None:
    before = await count(gcx, audit_log)
    base = f"/api/v1/applications/{UNKNOWN}"
    upload = await client.post(
        f"{base}/documents/tax_clearance", files={"file": ("a.pdf", PDF, "application/pdf")}
    )
    error_of(upload, 404)
    # Even a request that is wrong in other ways says only "not found" for an unknown code.
    error_of(await client.post(f"{base}/documents/nonsense", content=b"x"), 404)
    error_of(await client.post(f"{base}/withdraw", json={"confirm": True}), 404)
    error_of(await client.post(f"{base}/resubmit"), 404)
    error_of(await client.get(f"{base}/nothing-here"), 404)
    assert await count(gcx, audit_log) == before
    assert await count(gcx, documents) == 0


async def test_malformed_json_is_400(client: httpx.AsyncClient, gcx: Gcx) -> None:
    response = await client.post(
        "/api/v1/applications", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert error_of(response, 400)["code"] == "bad_request"
    assert await count(gcx, applications) == 0


async def test_unknown_fields_are_400_with_their_path(client: httpx.AsyncClient, gcx: Gcx) -> None:
    body = make_submission()
    body["business"]["favourite_colour"] = "green"
    error = error_of(await client.post("/api/v1/applications", json=body), 400)
    assert "business" in error["fields"]
    assert "favourite_colour" in error["fields"]["business"][0]
    body = make_submission()
    body["extra"] = 1
    error = error_of(await client.post("/api/v1/applications", json=body), 400)
    assert any("extra" in m for msgs in error["fields"].values() for m in msgs)
    assert await count(gcx, applications) == 0


async def test_wrong_types_are_400(client: httpx.AsyncClient) -> None:
    body = make_submission()
    body["commodities"] = "maize"
    error = error_of(await client.post("/api/v1/applications", json=body), 400)
    assert "commodities" in error["fields"]


async def test_every_invalid_field_is_reported_at_once(client: httpx.AsyncClient, gcx: Gcx) -> None:
    body = make_submission(
        **{"contact.email": "not-an-email", "business.tin": "", "declaration.agreed": False}
    )
    body["bank_accounts"]["primary"]["account_name"] = "Someone Else"
    error = error_of(await client.post("/api/v1/applications", json=body), 422)
    assert error["code"] == "invalid"
    assert set(error["fields"]) >= {
        "contact.email",
        "business.tin",
        "declaration.agreed",
        "bank_accounts.primary.account_name",
    }
    empty = error_of(await client.post("/api/v1/applications", json={}), 422)
    assert "business.name" in empty["fields"] and "warehouse_location" in empty["fields"]
    assert await count(gcx, applications) == 0


async def test_duplicate_submission_is_409_naming_the_fields(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    first = make_submission()
    await submit_json(client, first)
    again = make_submission(**{"contact.email": first["contact"]["email"].upper()})
    error = error_of(await client.post("/api/v1/applications", json=again), 409)
    assert error["code"] == "duplicate"
    assert "contact.email" in error["fields"]
    same_tin = make_submission(**{"business.tin": first["business"]["tin"]})
    assert (
        "business.tin"
        in error_of(await client.post("/api/v1/applications", json=same_tin), 409)["fields"]
    )
    assert await count(gcx, applications) == 1


async def test_upload_is_typed_by_content(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    url = f"/api/v1/applications/{code}/documents/tax_clearance"
    # A PDF named .png is a PDF: accepted, and stored as what it is.
    renamed = await client.post(url, files={"file": ("scan.png", PDF, "image/png")})
    assert renamed.status_code == 201, renamed.text
    body = renamed.json()
    # A tax clearance is valid for a year from its upload.
    valid_until = body.pop("valid_until")
    assert valid_until.startswith((gcx.now() + timedelta(days=365)).strftime("%Y-%m-%d"))
    assert body == {
        "requirement": "tax_clearance",
        "version": 1,
        "name": "scan.png",
        "review_status": "pending",
    }
    async with gcx.database.read() as conn:
        stored = (await conn.execute(sa.select(documents.c.content_type))).scalar_one()
    assert stored == "application/pdf"
    # An HTML file named .pdf is refused: 415, nothing stored.
    html = await client.post(url, files={"file": ("cert.pdf", HTML, "application/pdf")})
    error = error_of(html, 415)
    assert error["code"] == "unsupported_type"
    png = await client.post(url, files={"file": ("photo.png", PNG, "image/png")})
    assert png.json()["version"] == 2
    assert await count(gcx, documents) == 2


async def test_upload_errors(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    base = f"/api/v1/applications/{code}/documents"
    unknown = await client.post(
        f"{base}/nonsense", files={"file": ("a.pdf", PDF, "application/pdf")}
    )
    assert "requirement" in error_of(unknown, 422)["fields"]
    # FDA is not required without processed food, and so not accepted either.
    error_of(await client.post(f"{base}/fda_certificate", files={"file": ("a.pdf", PDF)}), 422)
    not_multipart = await client.post(f"{base}/tax_clearance", content=PDF)
    error_of(not_multipart, 415)
    no_file = await client.post(f"{base}/tax_clearance", files={"other": ("a.pdf", PDF)})
    assert "file" in error_of(no_file, 422)["fields"]
    empty = await client.post(f"{base}/tax_clearance", files={"file": ("a.pdf", b"")})
    assert "file" in error_of(empty, 422)["fields"]
    assert await count(gcx, documents) == 0


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    body = make_submission(warehouse_location="x" * 2_000_000)
    error_of(await client.post("/api/v1/applications", json=body), 413)


async def test_submit_with_documents_in_one_request(client: httpx.AsyncClient, gcx: Gcx) -> None:
    body = make_submission()
    response = await client.post(
        "/api/v1/applications/with-documents",
        data={"application": json.dumps(body)},
        files={"tax_clearance": ("tax.pdf", PDF), "proof_of_office": ("office.png", PNG)},
    )
    assert response.status_code == 201, response.text
    docs = {d["requirement"]: d["version"] for d in response.json()["documents"]}
    assert docs == {"tax_clearance": 1, "proof_of_office": 1}


async def test_a_bad_file_refuses_the_whole_submission(client: httpx.AsyncClient, gcx: Gcx) -> None:
    response = await client.post(
        "/api/v1/applications/with-documents",
        data={"application": json.dumps(make_submission())},
        files={"tax_clearance": ("tax.pdf", PDF), "proof_of_office": ("x.pdf", HTML)},
    )
    error_of(response, 415)
    bad_json = await client.post(
        "/api/v1/applications/with-documents",
        data={"application": "{nope"},
        files={"tax_clearance": ("tax.pdf", PDF)},
    )
    assert "application" in error_of(bad_json, 422)["fields"]
    missing = await client.post(
        "/api/v1/applications/with-documents", files={"tax_clearance": ("tax.pdf", PDF)}
    )
    error_of(missing, 422)
    assert await count(gcx, applications) == 0
    assert await count(gcx, documents) == 0


async def test_withdraw_takes_the_emailed_link(client: httpx.AsyncClient, gcx: Gcx) -> None:
    code = await submit_json(client, make_submission())
    url = f"/api/v1/applications/{code}/withdraw"
    assert "confirm" in error_of(await client.post(url, json={}), 422)["fields"]
    error_of(await client.post(url, json={"confirm": True, "surprise": 1}), 400)
    asked = await client.post(url, json={"confirm": True, "comment": "found another buyer"})
    assert asked.status_code == 202
    assert asked.json()["tracking_code"] == code and "link" in asked.json()["message"]
    # Holding the code is not enough: nothing changed yet.
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"
    (token,) = await withdrawal_tokens(gcx, code)
    confirm = f"{url}/confirm"
    assert error_of(await client.post(confirm, json={"token": "x" + token}), 410)
    error_of(await client.post(confirm, json={"token": token, "extra": 1}), 400)
    error_of(await client.post(confirm, json={}), 400)
    other = await submit_json(client, make_submission())
    # A token withdraws only the application it was sent for.
    error_of(
        await client.post(f"/api/v1/applications/{other}/withdraw/confirm", json={"token": token}),
        410,
    )
    done = await client.post(confirm, json={"token": token})
    assert done.status_code == 200
    assert done.json()["status"] == "withdrawn"
    assert done.json()["can_withdraw"] is False
    async with gcx.database.read() as conn:  # the reason given in step 1 is recorded
        reasons = await conn.execute(
            sa.select(status_changes.c.comment).where(status_changes.c.to_status == "withdrawn")
        )
        assert list(reasons.scalars()) == ["found another buyer"]
    assert error_of(await client.post(confirm, json={"token": token}), 410)["code"] == (
        "link_expired"
    )
    assert error_of(await client.post(url, json={"confirm": True}), 409)["code"] == (
        "invalid_transition"
    )
    # A withdrawn application takes no more documents.
    upload = await client.post(
        f"/api/v1/applications/{code}/documents/tax_clearance", files={"file": ("a.pdf", PDF)}
    )
    error_of(upload, 409)


async def test_asking_again_soon_sends_no_second_link(
    client: httpx.AsyncClient, gcx: Gcx, gcx_clock: FakeClock
) -> None:
    code = await submit_json(client, make_submission())
    url = f"/api/v1/applications/{code}/withdraw"
    for _ in range(3):
        assert (await client.post(url, json={"confirm": True})).status_code == 202
    assert len(await withdrawal_tokens(gcx, code)) == 1
    gcx_clock.advance(minutes=11)
    assert (await client.post(url, json={"confirm": True})).status_code == 202
    first, second = await withdrawal_tokens(gcx, code)
    # Only the newest link works; an old one is spent, and a day later the new one too.
    error_of(await client.post(f"{url}/confirm", json={"token": first}), 410)
    gcx_clock.advance(hours=25)
    error_of(await client.post(f"{url}/confirm", json={"token": second}), 410)
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/applications/" + UNKNOWN)
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


async def test_openapi_is_served_offline(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert "/api/v1/applications" in paths
    assert "/api/v1/applications/{tracking_code}/documents/{requirement}" in paths
    assert "ApplicationIn" in json.dumps(schema["components"])
    assert "ErrorResponse" in json.dumps(schema["components"])
    # Status answers are written pre-encoded; the schema still documents their shape.
    ok = paths["/api/v1/applications/{tracking_code}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/StatusOut")
    assert "unpkg" not in response.text and "jsdelivr" not in response.text


async def test_openapi_says_what_the_handlers_check(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    components, paths = schema["components"]["schemas"], schema["paths"]
    for name in ("ApplicationIn", "BusinessIn", "TeamMemberIn", "WithdrawIn", "ActionIn"):
        assert components[name]["additionalProperties"] is False, name
    for path, operations in paths.items():
        if path.startswith("/api/v1/staff/"):
            for operation in operations.values():
                assert {"401", "403"} <= set(operation["responses"]), path
    upload = paths["/api/v1/applications/{tracking_code}/documents/{requirement}"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    combined = paths["/api/v1/applications/with-documents"]["post"]["requestBody"]
    parts = combined["content"]["multipart/form-data"]["schema"]["properties"]
    assert "application" in parts and parts["tax_clearance"]["format"] == "binary"
    listing = paths["/api/v1/staff/applications"]["get"]["parameters"]
    by_name = {p["name"]: p for p in listing}
    assert {"q", "status", "region", "commodity", "from", "to", "reviewer", "sort", "page"} <= set(
        by_name
    )
    assert "under_review" in json.dumps(by_name["status"]["schema"])
    assert "-created_at" in json.dumps(by_name["sort"]["schema"])
    ids = components["RetryIn"]["properties"]["ids"]
    assert ids["items"]["minimum"] == 1 and ids["items"]["maximum"] == 2**53


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


def test_outstanding_items_on_the_wire():
    """A plain "missing" item is converted once per requirement; others carry their own note."""
    from gcx_core.entities import DocumentRequirement
    from gcx_core.services.applicant import OutstandingItem
    from gcx_web.schemas import outstanding_out

    requirement = DocumentRequirement("tax", "Tax", "A description", max_bytes=5)
    missing = outstanding_out(OutstandingItem(requirement, "missing"))
    assert missing is outstanding_out(OutstandingItem(requirement, "missing"))
    assert (missing.requirement, missing.title, missing.reason, missing.note) == (
        "tax",
        "Tax",
        "missing",
        "",
    )
    assert missing.description == "A description" and missing.max_bytes == 5
    assert missing.content_types == list(requirement.content_types)
    rejected = outstanding_out(OutstandingItem(requirement, "rejected", "blurred"))
    assert (rejected.reason, rejected.note) == ("rejected", "blurred")


async def test_a_status_answer_is_made_once_per_view(gcx: Gcx) -> None:
    """The StatusOut kept for a view is found by the view object itself, never by an equal one."""
    import attrs

    from gcx_core.entities import Actor
    from gcx_core.services.applicant import applicant_view
    from gcx_web.schemas import StatusViews

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    view = await applicant_view(gcx, app.tracking_code)
    made = StatusViews({}, {"pending_review": "Pending review"}, size=2)
    out = made(view)
    assert made(view) is out and out.tracking_code == app.tracking_code
    equal = attrs.evolve(view)
    assert equal == view and made(equal) is not out
    made(attrs.evolve(view))  # a third view: the first one's answer is let go
    assert made(view) is not out


async def test_control_characters_are_a_field_error_and_store_nothing(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    body = make_submission()
    body["business"]["name"] = "Adom\x00Farms Ltd"
    response = await client.post("/api/v1/applications", json=body)
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert any("control characters" in m for m in fields["business.name"])
    async with gcx.database.read() as conn:
        stored = await conn.execute(sa.select(sa.func.count()).select_from(applications))
        assert stored.scalar_one() == 0


@pytest.mark.parametrize("depth", [500, 1000, 5000])
async def test_deeply_nested_json_is_a_400_on_every_json_route(
    client: httpx.AsyncClient, depth: int
) -> None:
    body = b'{"a":' * depth + b"1" + b"}" * depth
    code = await submit_json(client, make_submission())
    for url in (
        "/api/v1/applications",
        f"/api/v1/applications/{code}/withdraw",
        "/api/v1/applications/GCX-AAAA-BBBB-CCCC/withdraw",
    ):
        response = await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 404), (url, response.text)
        assert response.json()["error"]["status"] == response.status_code
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"


async def test_multipart_text_that_is_not_utf8_is_a_400(client: httpx.AsyncClient) -> None:
    code = await submit_json(client, make_submission())
    for url, files in (
        ("/api/v1/applications/with-documents", {"application": ("", b"\xff", "text/plain")}),
        (
            f"/api/v1/applications/{code}/documents/tax_clearance",
            {"file": ("", b"\xff\xfe", "application/pdf")},
        ),
    ):
        response = await client.post(url, files=files)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"]["code"] == "bad_request"


async def test_types_are_strict_and_the_body_is_json(client: httpx.AsyncClient, gcx: Gcx) -> None:
    for value in ("true", 1):
        body = make_submission()
        body["declaration"]["agreed"] = value
        response = await client.post("/api/v1/applications", json=body)
        assert response.status_code == 400, response.text
        assert "declaration.agreed" in response.json()["error"]["fields"]
    as_text = await client.post(
        "/api/v1/applications",
        content=msgspec.json.encode(make_submission()),
        headers={"content-type": "text/plain"},
    )
    assert as_text.status_code == 415
    async with gcx.database.read() as conn:
        stored = await conn.execute(sa.select(sa.func.count()).select_from(applications))
        assert stored.scalar_one() == 0


async def test_withdrawing_an_unknown_code_is_a_404_whatever_the_body(
    client: httpx.AsyncClient,
) -> None:
    for body in (b"{", b'{"confirm": "yes"}', b'{"confirm": true}'):
        response = await client.post(
            "/api/v1/applications/GCX-AAAA-BBBB-CCCC/withdraw",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 404, (body, response.text)


async def test_the_applicant_is_told_of_their_withdrawal(
    client: httpx.AsyncClient, gcx: Gcx
) -> None:
    body = make_submission()
    code = await submit_json(client, body)
    response = await withdraw_by_api(client, gcx, code)
    assert response.status_code == 200
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(notifications.c.type).where(
                notifications.c.recipient == body["contact"]["email"]
            )
        )
        kinds = sorted(rows.scalars())
    assert kinds == ["application_received", "withdrawal_confirmed", "withdrawal_requested"]
