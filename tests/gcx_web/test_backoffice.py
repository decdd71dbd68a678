"""The back office through the ASGI app: sign-in, every page and action for each role."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import ValidationError
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.storage.tables import applications, audit_log
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import csrf_of, error_of, submit_json

PASSWORD = "correct horse battery staple"


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login", data={"_csrf_token": csrf_of(page.text), "email": email, "password": password}
    )


@pytest.fixture(name="staff")
async def _staff(gcx_staff: Any) -> dict[Role, Any]:
    return {role: (await gcx_staff(role))[0] for role in (Role.VIEWER, Role.REVIEWER, Role.ADMIN)}


@pytest.fixture(name="as_role")
def _as_role(client: httpx.AsyncClient, staff: dict[Role, Any]) -> Any:
    async def login(role: Role) -> httpx.AsyncClient:
        response = await sign_in(client, staff[role].email)
        assert response.status_code == 303 and response.headers["location"] == "/backoffice/"
        return client

    return login


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    for path in (
        "/backoffice/",
        "/backoffice/applications",
        "/backoffice/users",
        "/backoffice/audit",
    ):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    api = await client.get("/api/v1/staff/applications")
    assert api.status_code == 401


async def test_wrong_password_then_lockout(
    client: httpx.AsyncClient, staff: dict[Role, Any], gcx: Gcx
) -> None:
    email = staff[Role.ADMIN].email
    for _ in range(5):
        wrong = await sign_in(client, email, "not the password at all")
        assert wrong.status_code == 401
        assert "Wrong email or password" in wrong.text
    locked = await sign_in(client, email)  # the right password, but locked for a while
    assert locked.status_code == 401
    async with gcx.database.read() as conn:
        actions = set((await conn.execute(sa.select(audit_log.c.action))).scalars())
    assert "user.locked" in actions
    assert PASSWORD not in str(actions)


async def test_open_redirects_are_refused(
    client: httpx.AsyncClient, staff: dict[Role, Any]
) -> None:
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "_csrf_token": csrf_of(page.text),
            "email": staff[Role.VIEWER].email,
            "password": PASSWORD,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/backoffice/"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {"/backoffice/", "/backoffice/applications", "/backoffice/notifications"}),
        (Role.REVIEWER, {"/backoffice/", "/backoffice/applications", "/backoffice/notifications"}),
        (
            Role.ADMIN,
            {
                "/backoffice/",
                "/backoffice/applications",
                "/backoffice/notifications",
                "/backoffice/outbox",
                "/backoffice/audit",
                "/backoffice/users",
                "/backoffice/plugins",
            },
        ),
    ],
)
async def test_each_role_sees_its_pages(as_role: Any, role: Role, allowed: set[str]) -> None:
    client = await as_role(role)
    every = {
        "/backoffice/",
        "/backoffice/applications",
        "/backoffice/notifications",
        "/backoffice/outbox",
        "/backoffice/audit",
        "/backoffice/users",
        "/backoffice/plugins",
    }
    for path in sorted(every):
        response = await client.get(path)
        expected = 200 if path in allowed else 403
        assert response.status_code == expected, (role, path, response.text[:300])


async def test_detail_shows_only_the_actions_the_role_and_state_allow(
    as_role: Any, client: httpx.AsyncClient, gcx: Gcx
) -> None:
    code = await submit_json(client, make_submission())
    app_id = (
        await app_service.submit(
            gcx,
            make_submission(),
            __import__("gcx_core.entities", fromlist=["Actor"]).Actor.applicant(),
        )
    ).id
    viewer = await as_role(Role.VIEWER)
    page = await viewer.get(f"/backoffice/applications/{app_id}")
    assert page.status_code == 200
    assert "data-action=" not in page.text
    refused = await viewer.post(
        f"/backoffice/applications/{app_id}/actions/start_review",
        data={"_csrf_token": csrf_of(page.text), "version": "1"},
    )
    assert refused.status_code == 403
    await viewer.post("/logout", data={"_csrf_token": csrf_of(page.text)})
    reviewer = await as_role(Role.REVIEWER)
    page = await reviewer.get(f"/backoffice/applications/{app_id}")
    assert 'data-action="start_review"' in page.text
    assert 'data-action="reject"' in page.text
    assert 'data-action="approve"' not in page.text  # not from pending_review
    assert 'data-action="reopen"' not in page.text  # admin only, and not from here
    assert code  # the first application is untouched


def flash_of(html: str) -> str:
    """The text of the message an action left on the page, or ''."""
    found = re.search(r'<div id="flash"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", " ", found.group(1)).strip() if found else ""


async def test_review_workflow_and_stale_version(as_role: Any, gcx: Gcx) -> None:
    from gcx_core.entities import Actor

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    client = await as_role(Role.REVIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    token = csrf_of(page.text)
    url = f"/backoffice/applications/{app.id}/actions"
    started = await client.post(f"{url}/start_review", data={"_csrf_token": token, "version": "1"})
    assert started.status_code == 303
    # The same stale form again: a conflict, said plainly, and nothing changes.
    stale = await client.post(
        f"{url}/request_documents",
        data={
            "_csrf_token": token,
            "version": "1",
            "requirement_codes": "tax_clearance",
            "message": "x",
        },
    )
    # Back to the application page (not to /actions/...), with the reason, said plainly.
    assert stale.status_code == 303
    assert stale.headers["location"] == f"/backoffice/applications/{app.id}"
    shown = await client.get(stale.headers["location"])
    assert "changed this application after you opened it" in flash_of(shown.text)
    # A guard's refusal is explained in words, not in action and field names.
    missing = await client.post(
        f"{url}/request_documents", data={"_csrf_token": token, "version": "2", "message": "x"}
    )
    assert missing.status_code == 303
    said = flash_of((await client.get(missing.headers["location"])).text)
    assert said.startswith("Request documents was refused:"), said
    assert "request_documents" not in said and "requirement_codes" not in said
    # Shown once.
    assert "refused" not in flash_of((await client.get(missing.headers["location"])).text)
    asked = await client.post(
        f"{url}/request_documents",
        data={
            "_csrf_token": token,
            "version": "2",
            "requirement_codes": "tax_clearance",
            "message": "Please send it",
        },
    )
    assert asked.status_code == 303
    done = await client.get(asked.headers["location"])
    assert "Documents requested: the applicant has been emailed" in flash_of(done.text)
    assert ">Documents requested</p>" in done.text  # the status, by its label
    async with gcx.database.read() as conn:
        status = (await conn.execute(sa.select(applications.c.status))).scalar_one()
    assert status == "documents_requested"
    no_csrf = await client.post(
        f"{url}/reject", data={"version": "3", "reason_code": "other", "message": "x"}
    )
    assert no_csrf.status_code == 403


async def test_documents_download_and_review(as_role: Any, gcx: Gcx) -> None:
    from gcx_core.entities import Actor

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    doc = await doc_service.upload_document(
        gcx, app.id, "tax_clearance", PDF, "tax.pdf", Actor.applicant()
    )
    client = await as_role(Role.VIEWER)
    file = await client.get(f"/backoffice/documents/{doc.id}/file")
    assert file.status_code == 200
    assert file.content == PDF
    assert file.headers["content-type"] == "application/pdf"
    assert file.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in file.headers["content-security-policy"]
    page = await client.get(f"/backoffice/applications/{app.id}")
    refused = await client.post(
        f"/backoffice/documents/{doc.id}/review",
        data={"_csrf_token": csrf_of(page.text), "decision": "verify"},
    )
    assert refused.status_code == 403
    await client.post("/logout", data={"_csrf_token": csrf_of(page.text)})
    client = await as_role(Role.REVIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    no_note = await client.post(
        f"/backoffice/documents/{doc.id}/review",
        data={
            "_csrf_token": csrf_of(page.text),
            "decision": "reject",
            "application_id": str(app.id),
        },
    )
    assert no_note.status_code == 303
    assert "Note: say why the document is rejected" in flash_of(
        (await client.get(no_note.headers["location"])).text
    )
    ok = await client.post(
        f"/backoffice/documents/{doc.id}/review",
        data={"_csrf_token": csrf_of(page.text), "decision": "verify"},
    )
    assert ok.status_code == 303
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert "Tax clearance" in flash_of(page.text) and "verified" in flash_of(page.text)
    # A verified version has no Verify/Reject buttons; it says who verified it, and when.
    assert 'value="verify"' not in page.text
    assert re.search(r"verified</span> by reviewer\d*@staff\.example\.com, \d", page.text)
    # Nobody without a session gets the file.
    await client.post("/logout", data={"_csrf_token": csrf_of(page.text)})
    assert (await client.get(f"/backoffice/documents/{doc.id}/file")).status_code == 303


async def test_list_search_filters_and_csv(as_role: Any, gcx: Gcx) -> None:
    from gcx_core.entities import Actor

    formula = await app_service.submit(
        gcx,
        make_submission(
            **{
                "business.name": "=HYPERLINK(1) Farms",
                "bank_accounts.primary.account_name": "HYPERLINK 1 FARMS",
            }
        ),
        Actor.applicant(),
    )
    other = await app_service.submit(
        gcx, make_submission(**{"business.region": "AH"}), Actor.applicant()
    )
    client = await as_role(Role.VIEWER)
    found = await client.get("/backoffice/applications", params={"q": other.tracking_code})
    assert other.business.name in found.text and formula.tracking_code not in found.text
    by_region = await client.get("/backoffice/applications", params={"region": "AH"})
    assert other.tracking_code in by_region.text and formula.tracking_code not in by_region.text
    bad = await client.get("/backoffice/applications", params={"from": "yesterday"})
    assert bad.status_code == 422
    export = await client.get("/backoffice/applications/export.csv", params={"region": "AA"})
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("tracking_code,business_name")
    assert len(lines) == 2  # exactly the filtered set
    assert "'=HYPERLINK" in export.text  # formulas are escaped
    assert "account_number" not in lines[0]  # only whitelisted columns
    import csv

    (row,) = csv.DictReader(lines)
    assert row["region"] == "AA" and row["region_name"] == "Greater Accra"
    assert row["status"] == "pending_review" and row["status_label"] == "Pending review"
    assert row["business_type_label"] and row["commodity_names"]
    # The page shows labels too: statuses, regions, and one date format.
    listed = await client.get("/backoffice/applications", params={"region": "AH"})
    assert ">Pending review<" in listed.text and ">Ashanti<" in listed.text
    assert ">pending_review<" not in listed.text
    assert re.search(r"<td>\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d</td>", listed.text)
    assert "Submitted from" in bad.text and "must be a date" in bad.text


async def test_users_and_api_tokens(
    as_role: Any, gcx: Gcx, staff: dict[Role, Any], app: Any
) -> None:
    client = await as_role(Role.ADMIN)
    page = await client.get("/backoffice/users")
    token = csrf_of(page.text)
    created = await client.post(
        "/backoffice/users",
        data={"_csrf_token": token, "email": "new@staff.example", "role": "viewer"},
    )
    assert created.status_code == 201
    assert "shown once" in created.text
    bad = await client.post(
        "/backoffice/users", data={"_csrf_token": token, "email": "nope", "role": "viewer"}
    )
    assert bad.status_code == 422
    viewer = staff[Role.VIEWER]
    promoted = await client.post(
        f"/backoffice/users/{viewer.id}",
        data={"_csrf_token": token, "role": "reviewer", "active": "yes"},
    )
    assert promoted.status_code == 303
    made = await client.post(
        f"/backoffice/users/{staff[Role.REVIEWER].id}/tokens",
        data={"_csrf_token": token, "name": "erp"},
    )
    secret = re.search(r'id="secret">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    # The token works on the staff API, without cookies or CSRF.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as bare:
        listed = await bare.get(
            "/api/v1/staff/applications", headers={"authorization": f"Bearer {secret}"}
        )
        assert listed.status_code == 200
        assert (
            await bare.get(
                "/api/v1/staff/applications", headers={"authorization": "Bearer gcx_wrong"}
            )
        ).status_code == 401
        tokens_page = await client.get("/backoffice/users")
        token_id = re.search(r"/backoffice/tokens/(\d+)/revoke", tokens_page.text).group(1)  # type: ignore[union-attr]
        await client.post(f"/backoffice/tokens/{token_id}/revoke", data={"_csrf_token": token})
        assert (
            await bare.get(
                "/api/v1/staff/applications", headers={"authorization": f"Bearer {secret}"}
            )
        ).status_code == 401
    async with gcx.database.read() as conn:
        hashes = list((await conn.execute(sa.text("SELECT token_hash FROM api_tokens"))).scalars())
        audit = str(list((await conn.execute(sa.select(audit_log.c.after))).scalars()))
    assert secret not in hashes and secret not in audit


async def test_session_expiry(as_role: Any, gcx_clock: Any) -> None:
    client = await as_role(Role.VIEWER)
    assert (await client.get("/backoffice/")).status_code == 200
    gcx_clock.advance(hours=9)
    assert (await client.get("/backoffice/")).status_code == 303


async def test_deactivated_users_lose_their_session(
    as_role: Any, gcx: Gcx, staff: dict[Role, Any]
) -> None:
    from gcx_core.entities import Actor
    from gcx_core.services.staff import update_user

    client = await as_role(Role.VIEWER)
    admin = Actor.for_user(staff[Role.ADMIN])
    await update_user(gcx, staff[Role.VIEWER].id, admin, active=False)
    assert (await client.get("/backoffice/")).status_code == 303


async def test_notifications_pages_and_retry(as_role: Any, gcx: Gcx) -> None:
    from gcx_core.entities import Actor

    await app_service.submit(gcx, make_submission(), Actor.applicant())
    async with gcx.database.write() as conn:
        await conn.execute(
            sa.text("UPDATE notifications SET status = 'dead', last_error = '550 no such user'")
        )
    client = await as_role(Role.ADMIN)
    listing = await client.get("/backoffice/notifications", params={"status": "dead"})
    assert "550 no such user" in listing.text
    nid = re.search(r'/backoffice/notifications/(\d+)"', listing.text).group(1)  # type: ignore[union-attr]
    detail = await client.get(f"/backoffice/notifications/{nid}")
    assert detail.status_code == 200
    retried = await client.post(
        "/backoffice/notifications/retry", data={"_csrf_token": csrf_of(detail.text), "id": nid}
    )
    assert retried.status_code == 303
    async with gcx.database.read() as conn:
        status = (
            await conn.execute(sa.text(f"SELECT status FROM notifications WHERE id = {int(nid)}"))
        ).scalar_one()
    assert status == "pending"


async def test_sign_in_changes_the_session_id(
    client: httpx.AsyncClient, staff: dict[Role, Any]
) -> None:
    await client.get("/apply/business")  # an anonymous session (the application draft)
    await client.post(
        "/apply/restart", data={"_csrf_token": csrf_of((await client.get("/apply/business")).text)}
    )
    before = client.cookies.get("gcx_session")
    await sign_in(client, staff[Role.VIEWER].email)
    after = client.cookies.get("gcx_session")
    assert before and after and after != before
    assert (await client.get("/backoffice/")).status_code == 200


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
async def test_admin_actions_are_forbidden_to_others(
    as_role: Any, role: Role, gcx: Gcx, staff: dict[Role, Any]
) -> None:
    from gcx_core.entities import Actor

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await app_service.act(gcx, app.id, "withdraw", Actor.applicant())
    client = await as_role(role)
    token = csrf_of((await client.get("/backoffice/")).text)
    forbidden = [
        (f"/backoffice/applications/{app.id}/actions/reopen", {"version": "2", "comment": "again"}),
        ("/backoffice/users", {"email": "x@staff.example", "role": "admin"}),
        (f"/backoffice/users/{staff[role].id}", {"role": "admin", "active": "yes"}),
        (f"/backoffice/users/{staff[role].id}/tokens", {"name": "mine"}),
        ("/backoffice/notifications/retry", {}),
    ]
    for path, data in forbidden:
        response = await client.post(path, data={"_csrf_token": token, **data})
        assert response.status_code == 403, (role, path)
    async with gcx.database.read() as conn:
        status = (
            await conn.execute(sa.select(applications.c.status).where(applications.c.id == app.id))
        ).scalar_one()
        roles = set((await conn.execute(sa.text("SELECT role FROM users"))).scalars())
    assert status == "withdrawn"
    assert roles == {"viewer", "reviewer", "admin"}


async def test_admin_reopens(as_role: Any, gcx: Gcx) -> None:
    from gcx_core.entities import Actor

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await app_service.act(gcx, app.id, "withdraw", Actor.applicant())
    client = await as_role(Role.ADMIN)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert 'data-action="reopen"' in page.text
    no_comment = await client.post(
        f"/backoffice/applications/{app.id}/actions/reopen",
        data={"_csrf_token": csrf_of(page.text), "version": "2"},
    )
    assert no_comment.status_code == 303
    said = flash_of((await client.get(no_comment.headers["location"])).text)
    assert said.startswith("Reopen was refused:"), said
    done = await client.post(
        f"/backoffice/applications/{app.id}/actions/reopen",
        data={"_csrf_token": csrf_of(page.text), "version": "2", "comment": "withdrawn by mistake"},
    )
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "Reopened" in flash_of(page.text)
    assert 'class="badge status-under_review" id="status-label">Under review<' in page.text


async def test_the_staff_api_skips_csrf_only_for_a_valid_api_token(
    as_role: Any, gcx: Gcx, staff: dict[Role, Any], app: Any
) -> None:
    """A session-authenticated call with some other Authorization header still needs CSRF."""
    client = await as_role(Role.REVIEWER)
    code = await submit_json(client, make_submission())
    app_id = (await client.get("/api/v1/staff/applications")).json()["items"][0]["id"]
    url = f"/api/v1/staff/applications/{app_id}/actions/start_review"
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token x"):
        refused = await client.post(url, json={"version": 1}, headers={"authorization": header})
        assert refused.status_code == 403, (header, refused.text)
    assert (await client.get(f"/api/v1/applications/{code}")).json()["status"] == "pending_review"
    # With the session's CSRF token the same call goes through.
    csrf = client.cookies["gcx_csrf"]
    done = await client.post(url, json={"version": 1}, headers={"x-csrftoken": csrf})
    assert done.status_code == 200, done.text


async def test_files_with_any_name_download(as_role: Any, gcx: Gcx) -> None:
    """Names outside Latin-1 go in filename* (RFC 6266/5987), with an ASCII fallback."""
    from urllib.parse import unquote

    from gcx_core.entities import Actor

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    client = await as_role(Role.VIEWER)
    for name, fallback in (
        ("Документ №1.pdf", "No1.pdf"),
        ("Tax certificate \u2013 2026.pdf", "Tax certificate  2026.pdf"),  # an en dash
        ("plain.pdf", "plain.pdf"),
    ):
        doc = await doc_service.upload_document(
            gcx, app.id, "tax_clearance", PDF, name, Actor.applicant()
        )
        for query, kind in (("", "attachment"), ("?view=1", "inline")):
            file = await client.get(f"/backoffice/documents/{doc.id}/file{query}")
            assert file.status_code == 200, (name, file.text)
            header = file.headers["content-disposition"]
            assert header.startswith(f'{kind}; filename="{fallback}"'), header
            if name.isascii():
                assert "filename*" not in header
            else:
                assert unquote(header.split("filename*=UTF-8''", 1)[1]) == doc.original_name


async def test_a_new_staff_users_role_starts_at_the_least_privilege(as_role: Any) -> None:
    client = await as_role(Role.ADMIN)
    page = (await client.get("/backoffice/users")).text
    select = re.search(r'<select id="nu-role" name="role" required>(.*?)</select>', page)
    assert select, "the new-user form has a required role select"
    assert re.findall(r"<option selected>(\w+)</option>", select.group(1)) == ["viewer"]


async def test_the_plugins_page_names_built_in_plugins_stably(
    as_role: Any, gcx: Gcx, app: Any
) -> None:
    client = await as_role(Role.ADMIN)
    page = (await client.get("/backoffice/plugins")).text
    assert "gcx_web.publisher" in page
    assert not re.search(r"gcx_\w+\.\w+\.\d{6,}", page), "a plugin name carries an object id"


async def test_ids_past_64_bits_are_a_4xx_on_every_staff_route(as_role: Any) -> None:
    client = await as_role(Role.ADMIN)
    big = 2**63
    for url in (
        f"/api/v1/staff/applications/{big}",
        f"/backoffice/applications/{big}",
        f"/backoffice/documents/{big}/file",
        f"/backoffice/notifications/{big}",
        f"/backoffice/applications?page={big}",
        f"/backoffice/applications?reviewer={big}",
        f"/api/v1/staff/applications?page={big}",
        f"/api/v1/staff/applications?reviewer={big}",
    ):
        response = await client.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)
    csrf = {"x-csrftoken": client.cookies["gcx_csrf"]}
    for url in (
        f"/api/v1/staff/applications/{big}/actions/start_review",
        f"/api/v1/staff/documents/{big}/verify",
    ):
        response = await client.post(url, json={"version": 1}, headers=csrf)
        assert response.status_code == 400, (url, response.status_code)


async def test_the_staff_api_is_strict_and_asks_strangers_to_sign_in(
    client: httpx.AsyncClient, as_role: Any, gcx: Gcx
) -> None:
    url = "/api/v1/staff/applications/1/actions/start_review"
    anonymous = await client.post(url, json={"version": 1})
    assert anonymous.status_code == 401, anonymous.text
    signed_in = await as_role(Role.REVIEWER)
    await submit_json(signed_in, make_submission())
    csrf = {"x-csrftoken": signed_in.cookies["gcx_csrf"]}
    as_text = await signed_in.post(url, json={"version": "1"}, headers=csrf)
    assert as_text.status_code == 400, as_text.text
    assert "version" in as_text.json()["error"]["fields"]
    done = await signed_in.post(url, json={"version": 1}, headers=csrf)
    assert done.status_code == 200, done.text


async def test_list_filters_name_what_exists(as_role: Any, gcx: Gcx) -> None:
    client = await as_role(Role.ADMIN)
    for query, field in (
        ("status=approvedd", "status"),
        ("region=XX", "region"),
        ("commodity=plutonium", "commodity"),
    ):
        error = error_of(await client.get(f"/api/v1/staff/applications?{query}"), 422)
        assert field in error["fields"], query
        page = await client.get(f"/backoffice/applications?{query}")
        assert page.status_code == 422 and "unknown" in page.text


async def test_a_page_past_the_end_is_the_last_page(as_role: Any, gcx: Gcx) -> None:
    client = await as_role(Role.ADMIN)
    for _ in range(3):
        await app_service.submit(gcx, make_submission(), Actor.applicant())
    listing = await client.get("/api/v1/staff/applications?per_page=2&page=999")
    assert listing.status_code == 200
    body = listing.json()
    assert body["page"] == 2 and body["total"] == 3 and len(body["items"]) == 1
    page = await client.get("/backoffice/applications?per_page=2&page=999")
    assert "Page 999" not in page.text and "Page 2 of 2" in page.text


async def test_an_admin_undoes_a_verification(as_role: Any, gcx: Gcx, gcx_staff: Any) -> None:
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    doc = await doc_service.upload_document(
        gcx, app.id, "tax_clearance", PDF, "tax.pdf", Actor.applicant()
    )
    _, reviewer = await gcx_staff(Role.REVIEWER)
    await doc_service.review_document(gcx, doc.id, True, reviewer)
    # Once verified, a reviewer cannot turn it round; that is an admin's undo.
    with pytest.raises(ValidationError):
        await doc_service.review_document(gcx, doc.id, False, reviewer, note="oops")
    client = await as_role(Role.ADMIN)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert "Document verified</strong>: Tax clearance certificate version 1" in page.text
    undone = await client.post(
        f"/backoffice/documents/{doc.id}/undo", data={"_csrf_token": csrf_of(page.text)}
    )
    assert undone.status_code == 303
    page = await client.get(undone.headers["location"])
    assert "waiting for review again" in flash_of(page.text)
    assert 'value="verify"' in page.text  # it can be reviewed again
    async with gcx.database.read() as conn:
        entry = (
            await conn.execute(
                sa.select(audit_log.c.before).where(audit_log.c.action == "document.review_undone")
            )
        ).scalar_one()
    assert entry["review_status"] == "verified"
    again = await client.post(
        f"/backoffice/documents/{doc.id}/undo", data={"_csrf_token": csrf_of(page.text)}
    )
    assert "nothing to undo" in flash_of((await client.get(again.headers["location"])).text)


async def test_only_admins_undo_reviews(as_role: Any, gcx: Gcx) -> None:
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    doc = await doc_service.upload_document(
        gcx, app.id, "tax_clearance", PDF, "tax.pdf", Actor.applicant()
    )
    client = await as_role(Role.REVIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert "Undo this review" not in page.text
    refused = await client.post(
        f"/backoffice/documents/{doc.id}/undo", data={"_csrf_token": csrf_of(page.text)}
    )
    assert refused.status_code == 403


async def test_dashboard_links_and_waiting_states(as_role: Any, gcx: Gcx) -> None:
    await app_service.submit(gcx, make_submission(), Actor.applicant())
    client = await as_role(Role.VIEWER)
    page = (await client.get("/backoffice/")).text
    assert 'href="/backoffice/applications?status=pending_review"' in page
    assert 'id="y-max"' in page and 'class="value"' in page  # axes and values
    ageing = page[page.index('id="ageing"') : page.index("</tbody>", page.index('id="ageing"'))]
    assert "Pending review" in ageing and "Documents requested" in ageing
    for settled in ("Approved", "Rejected", "Withdrawn"):
        assert settled not in ageing


async def test_audit_and_notification_filters(as_role: Any, gcx: Gcx) -> None:
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    client = await as_role(Role.ADMIN)
    audit = await client.get("/backoffice/audit")
    assert '<select id="a-action" name="action">' in audit.text
    assert '<option value="submit"' in audit.text
    assert f'href="/backoffice/applications/{app.id}"' in audit.text  # the object, linked
    notes = await client.get("/backoffice/notifications")
    assert '<select id="f-type" name="type">' in notes.text
    assert '<option value="application_received"' in notes.text
    assert '<select id="f-channel" name="channel">' in notes.text
    assert "Application received" in notes.text
    same = await client.get("/backoffice/notifications", params={"type": "new_application"})
    assert "Application received" not in same.text.split("<tbody>")[1]


async def test_admin_actions_say_what_they_did(
    as_role: Any, gcx: Gcx, staff: dict[Role, Any]
) -> None:
    client = await as_role(Role.ADMIN)
    page = await client.get("/backoffice/users")
    token = csrf_of(page.text)
    viewer = staff[Role.VIEWER]
    saved = await client.post(
        f"/backoffice/users/{viewer.id}",
        data={"_csrf_token": token, "role": "reviewer", "active": "yes"},
    )
    assert saved.status_code == 303
    said = flash_of((await client.get(saved.headers["location"])).text)
    assert said == f"{viewer.email} saved: reviewer, active."
    retried = await client.post("/backoffice/notifications/retry", data={"_csrf_token": token})
    assert "No dead notification" in flash_of((await client.get(retried.headers["location"])).text)


async def test_retry_ids_out_of_range_are_a_400(as_role: Any) -> None:
    client = await as_role(Role.ADMIN)
    csrf = client.cookies.get("gcx_csrf", "")
    for ids in ([2**70], [-1], [0], list(range(1, 1100))):
        response = await client.post(
            "/api/v1/staff/notifications/retry",
            json={"ids": ids},
            headers={"x-csrftoken": csrf},
        )
        error_of(response, 400)


async def test_whole_numbers_written_as_floats_are_integers(as_role: Any) -> None:
    """JSON Schema (and so the OpenAPI document) counts 2.0 as the integer 2; 2.5 is not."""
    client = await as_role(Role.ADMIN)
    csrf = client.cookies.get("gcx_csrf", "")
    url = "/api/v1/staff/notifications/retry"
    fine = await client.post(url, json={"ids": [3.0, 4]}, headers={"x-csrftoken": csrf})
    assert error_of(fine, 404)["code"] == "not_found"  # read as ids 3 and 4, which do not exist
    error_of(await client.post(url, json={"ids": [2.5]}, headers={"x-csrftoken": csrf}), 400)
    error_of(await client.post(url, json={"ids": ["3"]}, headers={"x-csrftoken": csrf}), 400)


async def test_approve_is_explained_until_the_documents_are_verified(
    as_role: Any, gcx: Gcx, gcx_staff: Any
) -> None:
    """A precondition guard's refusal is shown instead of a button that would be refused."""
    from gcx_core.entities import Actor

    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    app = await app_service.act(gcx, app.id, "start_review", reviewer)
    client = await as_role(Role.REVIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert 'data-action="approve"' not in page.text  # no form to send
    assert re.search(
        r'<button type="button" class="button secondary" disabled[^>]*>Approve<', page.text
    )
    assert "Not yet: " in page.text and "missing: business_registration" in page.text
    assert 'data-action="reject"' in page.text  # its guards read the form: offered
    detail = (await client.get(f"/api/v1/staff/applications/{app.id}")).json()
    assert "approve" in detail["actions"] and list(detail["blocked"]) == ["approve"]
    assert "missing: business_registration" in detail["blocked"]["approve"]["documents"]
    for code in sorted(r.code for r in gcx.requirements_for(app) if r.required):
        doc = await doc_service.upload_document(
            gcx, app.id, code, PDF, f"{code}.pdf", Actor.applicant()
        )
        await doc_service.review_document(gcx, doc.id, "verify", reviewer)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert 'data-action="approve"' in page.text and "Not yet: " not in page.text
    assert (await client.get(f"/api/v1/staff/applications/{app.id}")).json()["blocked"] == {}


async def test_a_reviewer_uploads_for_the_applicant(as_role: Any, gcx: Gcx) -> None:
    """Optional requirements too; checked like the applicant's uploads; audited under the
    reviewer's name; viewers get no form and a 403."""
    from gcx_core.entities import Actor
    from gcx_core.services.queries import documents_of

    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    client = await as_role(Role.VIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert "Upload for the applicant" not in page.text
    refused = await client.post(
        f"/backoffice/applications/{app.id}/documents",
        data={"_csrf_token": csrf_of(page.text), "requirement_code": "tax_clearance"},
        files={"document": ("tax.pdf", PDF, "application/pdf")},
    )
    assert refused.status_code == 403
    await client.post("/logout", data={"_csrf_token": csrf_of(page.text)})

    client = await as_role(Role.REVIEWER)
    page = await client.get(f"/backoffice/applications/{app.id}")
    assert "Upload for the applicant" in page.text
    optional = [r for r in gcx.requirements_for(app) if not r.required]
    codes = [*(r.code for r in optional[:1]), "tax_clearance"]
    for code in codes:
        done = await client.post(
            f"/backoffice/applications/{app.id}/documents",
            data={"_csrf_token": csrf_of(page.text), "requirement_code": code},
            files={"document": ("scan.pdf", PDF, "application/pdf")},
        )
        assert done.status_code == 303
        assert "uploaded; it waits for review" in flash_of(
            (await client.get(done.headers["location"])).text
        )
    versions = await documents_of(gcx, app.id)
    assert sorted(v.requirement_code for v in versions) == sorted(codes)
    assert all(v.uploaded_by.startswith("reviewer") for v in versions)
    # Bad input: a file that is not a PDF/PNG/JPEG, an unknown requirement, no file.
    for data, files, says in (
        (
            {"requirement_code": "tax_clearance"},
            {"document": ("x.pdf", b"MZ not a pdf", "application/pdf")},
            "nothing was uploaded",
        ),
        (
            {"requirement_code": "no_such_thing"},
            {"document": ("x.pdf", PDF, "application/pdf")},
            "nothing was uploaded",
        ),
        ({"requirement_code": "tax_clearance"}, None, "choose a file"),
    ):
        bad = await client.post(
            f"/backoffice/applications/{app.id}/documents",
            data={"_csrf_token": csrf_of(page.text), **data},
            files=files,
        )
        assert bad.status_code == 303
        assert says in flash_of((await client.get(bad.headers["location"])).text)
    assert len(await documents_of(gcx, app.id)) == len(codes)  # nothing changed
    assert (
        await client.post(
            "/backoffice/applications/999999/documents",
            data={"_csrf_token": csrf_of(page.text), "requirement_code": "x"},
            files={"document": ("x.pdf", PDF, "application/pdf")},
        )
    ).status_code == 404
