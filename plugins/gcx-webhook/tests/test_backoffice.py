"""The back office's Webhooks pages: admins only, CSRF, forms that refuse bad input, the
delivery log and "send again"."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from gcx_webhook import store

from gcx_core.entities import Actor, Role
from gcx_core.services import applications
from gcx_core.testing import make_submission

PASSWORD = "correct horse battery staple"
SECRET = "s3cret-for-the-receiver-only"


def csrf_of(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: Any, gcx_staff: Any, role: Role) -> Any:
    user, actor = await gcx_staff(role)
    page = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"_csrf_token": csrf_of(page.text), "email": user.email, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return actor


async def settled(gcx: Any, subscriber_id: int, count: int) -> list[Any]:
    """The subscriber's deliveries once `count` of them have an outcome: the app's own
    notifier (its lifespan runs one, as `gcx serve` does) may still be writing one."""
    for _ in range(100):
        found = await store.deliveries(gcx, subscriber_id)
        if len(found) == count and all(d.status not in ("sending", "pending") for d in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries did not settle: {found}")


async def post_form(client: Any, page: str, path: str, **fields: str) -> Any:
    html = (await client.get(page)).text
    return await client.post(path, data={"_csrf_token": csrf_of(html), **fields})


async def test_an_admin_adds_a_subscriber_and_reads_its_log(
    gcx, gcx_client, gcx_staff, gcx_deliver, receiver
):
    await sign_in(gcx_client, gcx_staff, Role.ADMIN)
    home = (await gcx_client.get("/backoffice/")).text
    assert '<a href="/backoffice/webhooks">Webhooks</a>' in home
    page = await gcx_client.get("/backoffice/webhooks")
    assert page.status_code == 200 and "No subscriber yet" in page.text
    assert "application.approved" in page.text  # the catalogue of events
    added = await post_form(
        gcx_client,
        "/backoffice/webhooks",
        "/backoffice/webhooks",
        name="erp",
        url=receiver.url,
        secret=SECRET,
        events="application.*",
        active="on",
    )
    assert added.status_code == 303
    (sub,) = await store.all_subscribers(gcx)
    assert added.headers["location"] == f"/backoffice/webhooks/{sub.id}"
    detail = await gcx_client.get(added.headers["location"])
    assert "Subscriber erp added." in detail.text and SECRET not in detail.text
    assert "No delivery yet" in detail.text

    receiver.answer(500)
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await gcx_deliver()
    (delivery,) = await settled(gcx, sub.id, 1)
    detail = await gcx_client.get(f"/backoffice/webhooks/{sub.id}")
    row = re.search(rf'<tr id="delivery-{delivery.notification_id}">(.*?)</tr>', detail.text, re.S)
    assert row and "application.submitted" in row.group(1) and "Retrying" in row.group(1)
    assert "500" in row.group(1) and " ms" in row.group(1)

    again = await post_form(
        gcx_client,
        f"/backoffice/webhooks/{sub.id}",
        f"/backoffice/webhooks/deliveries/{delivery.notification_id}/again",
        back=f"/backoffice/webhooks/{sub.id}",
    )
    assert (
        again.status_code == 303 and again.headers["location"] == f"/backoffice/webhooks/{sub.id}"
    )
    await gcx_deliver()
    detail = await gcx_client.get(f"/backoffice/webhooks/{sub.id}")
    assert "Queued again as delivery" in detail.text
    newest, _ = await settled(gcx, sub.id, 2)
    assert newest.status == "sent" and newest.event_id == delivery.event_id


async def test_changes_are_saved_and_bad_ones_refused(gcx, gcx_client, gcx_staff, receiver):
    actor = await sign_in(gcx_client, gcx_staff, Role.ADMIN)
    sub = await store.create(
        gcx, actor, {"name": "erp", "url": receiver.url, "secret": SECRET, "active": "on"}
    )
    page = f"/backoffice/webhooks/{sub.id}"
    bad = await post_form(
        gcx_client, page, page, url="http://example.com/in", events="documents.*", secret=""
    )
    assert bad.status_code == 422
    assert "https" in bad.text and "matches no event" in bad.text
    assert await store.get(gcx, sub.id) == sub  # nothing changed
    bad = await post_form(
        gcx_client, "/backoffice/webhooks", "/backoffice/webhooks", name="x", url=receiver.url,
        secret="short",
    )  # fmt: skip
    assert bad.status_code == 422 and "16 to 200" in bad.text and 'value="x"' in bad.text
    assert len(await store.all_subscribers(gcx)) == 1
    saved = await post_form(gcx_client, page, page, url=receiver.url, events="document.*")
    assert saved.status_code == 303
    now = await store.get(gcx, sub.id)
    assert now.events == ("document.*",) and not now.active and now.secret == SECRET
    unconfirmed = await post_form(gcx_client, page, f"{page}/delete")
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    deleted = await post_form(gcx_client, page, f"{page}/delete", confirm="yes")
    assert deleted.status_code == 303 and await store.all_subscribers(gcx) == []
    assert (await gcx_client.get(page)).status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
async def test_other_staff_may_not_see_or_change_webhooks(
    gcx, gcx_client, gcx_staff, receiver, role
):
    admin = (await gcx_staff(Role.ADMIN))[1]
    sub = await store.create(gcx, admin, {"name": "erp", "url": receiver.url, "secret": SECRET})
    await sign_in(gcx_client, gcx_staff, role)
    assert "/backoffice/webhooks" not in (await gcx_client.get("/backoffice/")).text
    for path in ("/backoffice/webhooks", f"/backoffice/webhooks/{sub.id}"):
        assert (await gcx_client.get(path)).status_code == 403
    token = csrf_of((await gcx_client.get("/backoffice/")).text)
    for path in (
        "/backoffice/webhooks",
        f"/backoffice/webhooks/{sub.id}",
        f"/backoffice/webhooks/{sub.id}/delete",
        "/backoffice/webhooks/deliveries/1/again",
    ):
        answer = await gcx_client.post(
            path, data={"_csrf_token": token, "name": "x", "url": receiver.url, "confirm": "yes"}
        )
        assert answer.status_code == 403, path
    assert await store.all_subscribers(gcx) == [sub]


async def test_signed_out_visitors_and_forged_posts_are_refused(gcx, gcx_client, gcx_staff):
    answer = await gcx_client.get("/backoffice/webhooks")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fbackoffice%2Fwebhooks"
    await sign_in(gcx_client, gcx_staff, Role.ADMIN)
    forged = await gcx_client.post(
        "/backoffice/webhooks", data={"name": "x", "url": "https://a.example", "secret": SECRET}
    )
    assert forged.status_code == 403 and await store.all_subscribers(gcx) == []
