"""Review operations in the back office and the staff API: the reviewer panel, queues, the
dashboard's queue counts and workload, declared conflicts of interest, saved views, bulk
actions and internal notes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import assignment, dashboard
from gcx_core.system import Gcx
from tests.gcx_web.conftest import csrf_of

PASSWORD = "correct horse battery staple"


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/login")
    answer = await client.post(
        "/login", data={"_csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 303


async def post_on(client: httpx.AsyncClient, page: str, path: str, **fields: str) -> Any:
    html = (await client.get(page)).text
    return await client.post(path, data={"_csrf_token": csrf_of(html), **fields})


def version_on(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found
    return found.group(1)


async def test_a_reviewer_takes_and_gives_back_from_the_page(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    user, _ = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, user.email)
    page = f"/backoffice/applications/{app.id}"
    html = (await client.get(page)).text
    assert 'id="take"' in html and "Not assigned" in html and 'id="assign-to"' not in html
    taken = await post_on(
        client, page, f"{page}/assignment", reviewer_id=str(user.id), version=version_on(html)
    )
    assert taken.status_code == 303
    html = (await client.get(page)).text
    assert "It is yours" in html and "(you)" in html and 'id="give-back"' in html
    mine = (await client.get("/backoffice/applications?queue=mine")).text
    assert app.tracking_code in mine and 'aria-current="page">My queue' in mine
    assert (
        app.tracking_code
        not in (await client.get("/backoffice/applications?queue=unassigned")).text
    )
    back = await post_on(client, page, f"{page}/assignment", reviewer_id="", version="")
    assert back.status_code == 303
    html = (await client.get(page)).text
    assert "waits in the unassigned queue" in html and 'id="take"' in html
    unassigned = (await client.get("/backoffice/applications?queue=unassigned")).text
    assert app.tracking_code in unassigned


async def test_an_admin_assigns_and_refusals_are_explained(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    admin, _ = await gcx_staff(Role.ADMIN)
    reviewer, reviewer_actor = await gcx_staff(Role.REVIEWER)
    viewer, _ = await gcx_staff(Role.VIEWER)
    await assignment.set_interests(gcx, reviewer_actor, reviewer.id, ["conflict.example"], [])
    app = await app_service.submit(
        gcx, make_submission(**{"contact.email": "a@conflict.example"}), Actor.applicant()
    )
    other = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, admin.email)
    page = f"/backoffice/applications/{app.id}"
    html = (await client.get(page)).text
    assert "(declared a conflict)" in html
    refused = await post_on(client, page, f"{page}/assignment", reviewer_id=str(reviewer.id))
    assert refused.status_code == 303
    assert "conflict of interest" in (await client.get(page)).text
    bad = await post_on(client, page, f"{page}/assignment", reviewer_id=str(viewer.id))
    assert bad.status_code == 303 and "may review" in (await client.get(page)).text
    junk = await post_on(client, page, f"{page}/assignment", reviewer_id="someone")
    assert junk.status_code == 303 and "Choose a reviewer" in (await client.get(page)).text
    other_page = f"/backoffice/applications/{other.id}"
    html = (await client.get(other_page)).text
    stale = await post_on(
        client, other_page, f"{other_page}/assignment", reviewer_id=str(reviewer.id), version="99"
    )
    assert stale.status_code == 303 and "changed" in (await client.get(other_page)).text.lower()
    done = await post_on(
        client,
        other_page,
        f"{other_page}/assignment",
        reviewer_id=str(reviewer.id),
        version=version_on(html),
    )
    assert done.status_code == 303
    assert "they have been emailed" in (await client.get(other_page)).text
    snap = await dashboard.snapshot(gcx)
    assert snap.workload == {reviewer.id: 1} and snap.unassigned == 1
    board = (await client.get("/backoffice/")).text
    assert 'id="queue-unassigned">1<' in board
    assert f'data-workload="{reviewer.id}">1<' in board


async def test_viewers_may_not_assign(client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any) -> None:
    viewer, _ = await gcx_staff(Role.VIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, viewer.email)
    page = f"/backoffice/applications/{app.id}"
    assert 'id="assignment"' not in (await client.get(page)).text
    answer = await post_on(client, page, f"{page}/assignment", reviewer_id=str(viewer.id))
    assert answer.status_code == 403
    assert (await client.get("/backoffice/interests")).status_code == 403


async def test_conflicts_are_declared_on_their_page(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    user, _ = await gcx_staff(Role.REVIEWER)
    await sign_in(client, user.email)
    assert 'href="/backoffice/interests"' in (await client.get("/backoffice/")).text
    bad = await post_on(
        client, "/backoffice/interests", "/backoffice/interests", domains="no domain", tins="1"
    )
    assert bad.status_code == 422
    assert "not email domains" in bad.text and "not TINs" in bad.text
    assert await assignment.interests_of(gcx, user.id) == assignment.Interests()
    saved = await post_on(
        client,
        "/backoffice/interests",
        "/backoffice/interests",
        domains="Family-Farms.example\n",
        tins="C001234567, C009999999",
    )
    assert saved.status_code == 303
    page = (await client.get("/backoffice/interests")).text
    assert "family-farms.example" in page and "C009999999" in page
    assert await assignment.interests_of(gcx, user.id) == assignment.Interests(
        ("family-farms.example",), ("C001234567", "C009999999")
    )


async def test_the_staff_api_assigns_and_lists_queues(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    user, _ = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, user.email)
    headers = {"x-csrftoken": client.cookies["gcx_csrf"]}
    url = f"/api/v1/staff/applications/{app.id}/assignment"
    took = await client.post(
        url, json={"reviewer_id": user.id, "version": app.version}, headers=headers
    )
    assert took.status_code == 200, took.text
    assert took.json()["application"]["assigned_reviewer_id"] == user.id
    listed = await client.get("/api/v1/staff/applications?queue=mine")
    assert [a["id"] for a in listed.json()["items"]] == [app.id]
    assert (await client.get("/api/v1/staff/applications?queue=unassigned")).json()["items"] == []
    assert (await client.get("/api/v1/staff/applications?queue=everyone")).status_code == 400
    odd = await client.get("/backoffice/applications?queue=mine&reviewer=abc")
    assert odd.status_code == 422 and "must be a user id" in odd.text
    odd = await client.get("/backoffice/applications?queue=mine&reviewer=abc")
    assert odd.status_code == 422 and "must be a user id" in odd.text
    stale = await client.post(
        url, json={"reviewer_id": None, "version": app.version}, headers=headers
    )
    assert stale.status_code == 409
    for body in (
        {"reviewer_id": "me"},
        {"reviewer_id": 0},
        {"reviewer_id": 2**62},
        {"reviewer_id": 1, "extra": 1},
        {},
    ):
        answer = await client.post(url, json=body, headers=headers)
        assert answer.status_code in (400, 422), body
    forged = await client.post(url, json={"reviewer_id": None})
    assert forged.status_code == 403  # no CSRF token
    back = await client.post(url, json={"reviewer_id": None}, headers=headers)
    assert back.status_code == 200 and back.json()["application"]["assigned_reviewer_id"] is None


@pytest.mark.parametrize("queue", ["mine", "unassigned"])
async def test_queues_list_open_applications_only(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any, queue: str
) -> None:
    user, reviewer = await gcx_staff(Role.REVIEWER)
    open_app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    closed = await app_service.submit(gcx, make_submission(), Actor.applicant())
    if queue == "mine":
        for app in (open_app, closed):
            await assignment.assign(gcx, app.id, user.id, reviewer)
    await app_service.act(
        gcx,
        closed.id,
        "reject",
        reviewer,
        params={"reason_code": "ineligible", "message": "Not a supplier of grain."},
    )
    await sign_in(client, user.email)
    html = (await client.get(f"/backoffice/applications?queue={queue}")).text
    assert open_app.tracking_code in html and closed.tracking_code not in html
    chosen = (await client.get(f"/backoffice/applications?queue={queue}&status=rejected")).text
    assert closed.tracking_code in chosen and open_app.tracking_code not in chosen


async def test_counters_agree_with_a_recount_after_assignments(gcx: Gcx, gcx_staff: Any) -> None:
    user, reviewer = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    apps = [await app_service.submit(gcx, make_submission(), Actor.applicant()) for _ in range(3)]
    await assignment.assign(gcx, apps[0].id, user.id, reviewer)
    await app_service.act(gcx, apps[1].id, "start_review", reviewer)  # assigns the actor
    await assignment.assign(gcx, apps[1].id, None, admin)
    await app_service.act(
        gcx,
        apps[0].id,
        "reject",
        reviewer,
        params={"reason_code": "ineligible", "message": "Not a supplier of grain."},
    )
    assert not await dashboard.reconcile_counters(gcx)  # nothing had drifted
    snap = await dashboard.snapshot(gcx)
    assert snap.unassigned == 2 and snap.workload == {}


async def test_saved_views_on_the_list(client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any) -> None:
    admin, _ = await gcx_staff(Role.ADMIN)
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    await sign_in(client, admin.email)
    page = "/backoffice/applications?queue=unassigned&region=AH"
    html = (await client.get(page)).text
    assert "Save these filters as" in html and "for everyone" in html
    saved = await client.post(
        "/backoffice/views",
        data={
            "_csrf_token": csrf_of(html),
            "query": "queue=unassigned&region=AH",
            "name": "Ashanti backlog",
            "shared": "on",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/backoffice/applications?queue=unassigned&region=AH"
    listed = (await client.get(saved.headers["location"])).text
    assert "Saved as “Ashanti backlog” for everyone." in listed
    assert (
        'href="/backoffice/applications?queue=unassigned&amp;region=AH">Ashanti backlog' in listed
    )
    refused = await client.post(
        "/backoffice/views",
        data={"_csrf_token": csrf_of(listed), "query": "region=ZZ", "name": "Nowhere"},
    )
    assert refused.status_code == 303
    assert (
        "The view was not saved: region: unknown region"
        in (await client.get(refused.headers["location"])).text
    )
    # Another member of staff sees the shared view and cannot delete it.
    await client.post("/logout", data={"_csrf_token": client.cookies.get("gcx_csrf", "")})
    client.cookies.clear()
    await sign_in(client, reviewer.email)
    html = (await client.get("/backoffice/applications")).text
    assert "Ashanti backlog" in html and "Delete the view Ashanti backlog" not in html
    assert "for everyone" not in (await client.get(page)).text
    (view,) = await saved_views(gcx, reviewer.id)
    answer = await client.post(
        f"/backoffice/views/{view.id}/delete", data={"_csrf_token": csrf_of(html)}
    )
    assert answer.status_code == 403


async def saved_views(gcx: Gcx, user_id: int) -> list[Any]:
    from gcx_core.services import views

    return await views.views_for(gcx, user_id)


async def test_bulk_actions_confirm_then_report_each(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    user, reviewer = await gcx_staff(Role.REVIEWER)
    apps = [await app_service.submit(gcx, make_submission(), Actor.applicant()) for _ in range(3)]
    await app_service.act(gcx, apps[0].id, "start_review", reviewer)
    await sign_in(client, user.email)
    html = (await client.get("/backoffice/applications")).text
    assert 'form="bulk"' in html and 'id="bulk-next"' in html
    token = csrf_of(html)
    confirm = await client.post(
        "/backoffice/bulk",
        data={
            "_csrf_token": token,
            "scope": "selected",
            "operation": "start_review",
            "id": [str(a.id) for a in apps[:2]],
        },
    )
    assert confirm.status_code == 200 and "Start review: 2 applications?" in confirm.text
    ran = await client.post(
        "/backoffice/bulk/run",
        data={
            "_csrf_token": csrf_of(confirm.text),
            "operation": "start_review",
            "id": [str(a.id) for a in apps[:2]],
        },
    )
    assert ran.status_code == 200 and "1 done, 1 refused" in ran.text
    assert "is not possible while the application is “Under review”" in ran.text
    # All matching the filters: the unassigned queue holds one application now.
    confirm = await client.post(
        "/backoffice/bulk",
        data={"_csrf_token": token, "scope": "all", "query": "queue=unassigned",
              "operation": "reject"},
    )  # fmt: skip
    assert confirm.status_code == 303  # a reject needs its reason and message first
    assert "Nothing was done" in (await client.get(confirm.headers["location"])).text
    confirm = await client.post(
        "/backoffice/bulk",
        data={"_csrf_token": token, "scope": "all", "query": "queue=unassigned",
              "operation": "reject", "reason_code": "duplicate", "message": "Sent twice."},
    )  # fmt: skip
    assert "Reject: 1 application?" in confirm.text and apps[2].tracking_code in confirm.text
    exported = await client.post(
        "/backoffice/bulk",
        data={"_csrf_token": token, "scope": "selected", "operation": "export",
              "id": [str(apps[0].id)]},
    )  # fmt: skip
    assert exported.status_code == 303
    csv_text = (await client.get(exported.headers["location"])).text
    assert apps[0].tracking_code in csv_text and apps[1].tracking_code not in csv_text
    nothing = await client.post(
        "/backoffice/bulk", data={"_csrf_token": token, "operation": "start_review"}
    )
    assert nothing.status_code == 303
    assert "tick the applications first" in (await client.get(nothing.headers["location"])).text


async def test_notes_on_the_page_and_nowhere_the_applicant_looks(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    from gcx_core.services import notes

    secret = "Their bank letter looks edited"
    author, _ = await gcx_staff(Role.REVIEWER, email="kofi@staff.example.com")
    await gcx_staff(Role.REVIEWER, email="ama@staff.example.com")
    viewer, _ = await gcx_staff(Role.VIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, author.email)
    page = f"/backoffice/applications/{app.id}"
    saved = await post_on(client, page, f"{page}/notes", body=f"@ama {secret}")
    assert saved.status_code == 303 and saved.headers["location"].endswith("#notes")
    html = (await client.get(page)).text
    assert secret in html and "Note saved; emailed ama@staff.example.com" in html
    assert "mentioned ama@staff.example.com" in html
    empty = await post_on(client, page, f"{page}/notes", body="  ")
    assert (
        "The note was not saved: body: write the note first"
        in (await client.get(empty.headers["location"])).text
    )
    # The applicant's page, the public API and every email stay free of it.
    client.cookies.clear()
    assert secret not in (await client.get(f"/track/{app.tracking_code}")).text
    assert secret not in (await client.get(f"/api/v1/applications/{app.tracking_code}")).text
    async with gcx.database.read() as conn:
        import sqlalchemy as sa

        from gcx_core.storage.tables import notifications

        contexts = (await conn.execute(sa.select(notifications.c.context))).scalars()
        assert all(secret not in str(c) for c in contexts)
    # Viewers read notes but do not write them.
    await sign_in(client, viewer.email)
    html = (await client.get(page)).text
    assert secret in html and 'id="note-body"' not in html
    refused = await post_on(client, page, f"{page}/notes", body="me too")
    assert refused.status_code == 403
    assert [n.body for n in await notes.notes_of(gcx, app.id, Actor.system("test"))] == [
        f"@ama {secret}"
    ]


async def test_decision_emails_are_previewed_and_edited_before_they_go(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    from gcx_core.reference import REJECTION_MESSAGES
    from gcx_core.services.queries import get_application

    user, reviewer = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    app = await app_service.act(gcx, app.id, "start_review", reviewer)
    await sign_in(client, user.email)
    page = f"/backoffice/applications/{app.id}"
    assert 'data-preview="reject"' in (await client.get(page)).text
    shown = await post_on(
        client, page, f"{page}/actions/reject", preview="1", reason_code="duplicate", message=""
    )
    assert shown.status_code == 200
    assert REJECTION_MESSAGES["duplicate"] in shown.text  # the reason's wording, to edit
    assert app.business.name in shown.text and "Duplicate of another application" in shown.text
    assert (await get_application(gcx, app.id)).status == "under_review"
    edited = "We already have your application from May; we continue with that one."
    again = await client.post(
        f"{page}/actions/reject",
        data={
            "_csrf_token": csrf_of(shown.text),
            "preview": "1",
            "reason_code": "duplicate",
            "message": edited,
            "version": version_on(shown.text),
        },
    )
    assert edited in again.text and REJECTION_MESSAGES["duplicate"] not in again.text
    sent = await client.post(
        f"{page}/actions/reject",
        data={
            "_csrf_token": csrf_of(again.text),
            "reason_code": "duplicate",
            "message": edited,
            "version": version_on(again.text),
        },
    )
    assert sent.status_code == 303
    assert (await get_application(gcx, app.id)).status == "rejected"


async def test_a_documents_request_preview_lists_the_documents(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    from gcx_core.reference import DOCUMENTS_MESSAGE

    user, reviewer = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await app_service.act(gcx, app.id, "start_review", reviewer)
    await sign_in(client, user.email)
    page = f"/backoffice/applications/{app.id}"
    requirement = next(r for r in gcx.requirements_for(app) if r.required)
    shown = await post_on(
        client,
        page,
        f"{page}/actions/request_documents",
        preview="1",
        requirement_codes=requirement.code,
    )
    assert requirement.title in shown.text and DOCUMENTS_MESSAGE in shown.text
    bare = await post_on(client, page, f"{page}/actions/request_documents", preview="1")
    assert "tick the documents to request" in bare.text


async def test_the_thread_between_staff_and_the_applicant(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    from tests.gcx_core.pdfs import PDF

    user, _ = await gcx_staff(Role.REVIEWER)
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    await sign_in(client, user.email)
    page = f"/backoffice/applications/{app.id}"
    sent = await post_on(client, page, f"{page}/messages", body="Please confirm your address.")
    assert sent.status_code == 303
    assert "Sent: the applicant has been emailed" in (await client.get(page)).text
    # The applicant, with no session, by tracking code.
    client.cookies.clear()
    track = f"/track/{app.tracking_code}"
    html = (await client.get(track)).text
    assert "Please confirm your address." in html and "The programme" in html
    token = csrf_of(html)
    bad = await client.post(
        f"{track}/messages",
        data={"_csrf_token": token, "body": "Here it is"},
        files={"file": ("a.exe", b"MZ\x90\x00not a document", "application/pdf")},
    )
    assert bad.status_code == 422 and "must be a PDF, PNG or JPEG file" in bad.text
    empty = await client.post(f"{track}/messages", data={"_csrf_token": token, "body": " "})
    assert empty.status_code == 422 and "write the message first" in empty.text
    replied = await client.post(
        f"{track}/messages",
        data={"_csrf_token": token, "body": "Here is the lease."},
        files={"file": ("lease.pdf", PDF, "application/pdf")},
    )
    assert replied.status_code == 303
    assert "Your message was sent" in (await client.get(replied.headers["location"])).text
    forged = await client.post(f"{track}/messages", data={"body": "no token"})
    assert forged.status_code == 403
    assert (
        await client.post(
            "/track/GCX-0000-0000-0000/messages", data={"_csrf_token": token, "body": "x"}
        )
    ).status_code == 404
    # Staff read it, with its file; the unread count goes back to nought.
    from gcx_core.services.dashboard import snapshot

    assert (await snapshot(gcx)).unread_messages == 1
    await sign_in(client, user.email)
    html = (await client.get(page)).text
    assert "Here is the lease." in html and "1 new" in html and "lease.pdf" in html
    assert (await snapshot(gcx)).unread_messages == 0
    link = re.search(r'href="(/backoffice/messages/\d+/file)"', html)
    assert link
    download = await client.get(link.group(1))
    assert download.content == PDF and "attachment" in download.headers["content-disposition"]
    assert "sandbox" in download.headers["content-security-policy"]
    client.cookies.clear()
    assert (await client.get(link.group(1))).status_code == 303  # to the sign-in page


async def test_a_forged_query_cannot_steer_the_way_back(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    user, _ = await gcx_staff(Role.REVIEWER)
    await sign_in(client, user.email)
    token = csrf_of((await client.get("/backoffice/applications")).text)
    for query in ("x=1\r\nSet-Cookie: evil=1", "//evil.example/", "a=b#frag"):
        answer = await client.post(
            "/backoffice/views", data={"_csrf_token": token, "query": query, "name": "n"}
        )
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith("/backoffice/applications") and "\n" not in location
        assert "evil" not in answer.headers.get("set-cookie", "")
