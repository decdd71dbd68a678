"""Webhooks end to end: queued with the change, signed, delivered, every kind of answer."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from gcx_webhook import store
from gcx_webhook.events import catalogue
from gcx_webhook.tables import attempts, subscribers

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import (
    GuardFailedError,
    InvalidTransitionError,
    PermissionDeniedError,
    ValidationError,
)
from gcx_core.services import applications, documents
from gcx_core.storage.tables import audit_log, notifications
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant()
SECRET = "s3cret-for-the-receiver-only"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
README = Path(__file__).parents[1] / "README.md"


def readme_verify():
    """The README's receiver snippet, run as a reader would paste it."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["verify"]


async def admin(gcx, gcx_staff):
    return (await gcx_staff(Role.ADMIN))[1]


async def subscribe(gcx, actor, url, events="", name="erp", secret=SECRET):
    return await store.create(
        gcx, actor, {"name": name, "url": url, "secret": secret, "events": events, "active": "on"}
    )


async def webhook_rows(gcx):
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(notifications)
            .where(notifications.c.channel == "webhook")
            .order_by(notifications.c.id)
        )
        return rows.all()


def bodies(receiver):
    return [json.loads(r["body"]) for r in receiver.requests]


async def test_a_submission_reaches_the_subscriber_signed(gcx, gcx_staff, gcx_deliver, receiver):
    sub = await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    payload = json.loads(body)
    (row,) = await webhook_rows(gcx)
    assert row.status == "sent" and row.recipient == sub.recipient
    assert payload["type"] == headers["X-GCX-Event"] == "application.submitted"
    assert payload["id"] == headers["X-GCX-Event-Id"]
    assert payload["delivery_id"] == headers["X-GCX-Delivery"] == str(row.id)
    assert payload["data"] == {
        "application_id": app.id,
        "business_name": app.business.name,
        "status": "pending_review",
        "previous_status": None,
        "action": "submit",
    }
    verify = readme_verify()
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body.replace(b"pending", b"approved"))
    assert not verify("another-secret-of-16+", headers, body)
    old = {**headers, "X-GCX-Timestamp": str(int(headers["X-GCX-Timestamp"]) - 3600)}
    assert not verify(SECRET, old, body)  # a replay an hour later


async def test_each_event_is_named_and_filtered(gcx, gcx_staff, gcx_deliver, receiver):
    actor = await admin(gcx, gcx_staff)
    await subscribe(gcx, actor, receiver.url, name="all")
    docs = await subscribe(gcx, actor, receiver.url + "?docs", events="document.*", name="docs")
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    app = await applications.act(gcx, app.id, "start_review", actor)
    code = next(r.code for r in gcx.requirements_for(app) if r.required)
    await applications.act(
        gcx,
        app.id,
        "request_documents",
        actor,
        params={"requirement_codes": [code], "message": "Internal remark: call them Friday"},
    )
    doc = await documents.upload_document(gcx, app.id, code, PDF, "tax.pdf", APPLICANT)
    await documents.review_document(gcx, doc.id, False, actor, note="Blurred scan, private")
    await documents.review_document(gcx, doc.id, True, actor)
    await documents.undo_review(gcx, doc.id, actor)
    await gcx_deliver()
    rows = await webhook_rows(gcx)
    assert [(r.status, r.last_error) for r in rows] == [("sent", "")] * 11
    # Deliveries go out side by side: receivers order events by `occurred_at`, not arrival.
    arrived = [(r["path"], json.loads(r["body"])) for r in receiver.requests]
    seen = sorted(arrived, key=lambda found: int(found[1]["delivery_id"]))
    everything = [p["type"] for path, p in seen if path == "/hooks"]
    assert everything == [
        "application.submitted",
        "application.under_review",
        "application.documents_requested",
        "document.uploaded",
        "document.rejected",
        "document.verified",
        "document.review_undone",
    ]
    assert [p["type"] for path, p in seen if path == "/hooks?docs"] == everything[3:]
    ids = {p["type"]: p["id"] for _, p in seen}
    assert len(set(ids.values())) == 7  # one id per event, shared by the subscribers
    assert [p["id"] for path, p in seen if path == "/hooks?docs"] == [
        ids[t] for t in everything[3:]
    ]
    raw = b"".join(r["body"] for r in receiver.requests)
    for private in (app.tracking_code, "Internal remark", "Blurred", app.contact.email, SECRET):
        assert private.encode() not in raw
    requested = next(p for _, p in seen if p["type"] == "application.documents_requested")
    assert requested["data"]["previous_status"] == "under_review"
    assert requested["data"]["action"] == "request_documents"
    uploaded = next(p for _, p in seen if p["type"] == "document.uploaded")
    assert uploaded["data"] == {
        "application_id": app.id,
        "document_id": doc.id,
        "requirement": code,
        "version": 1,
    }
    assert docs.events == ("document.*",)


async def test_a_refused_change_queues_nothing(gcx, gcx_staff, receiver):
    actor = await admin(gcx, gcx_staff)
    await subscribe(gcx, actor, receiver.url)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    before = len(await webhook_rows(gcx))
    with pytest.raises(InvalidTransitionError):
        await applications.act(gcx, app.id, "approve", actor)  # not under review yet
    with pytest.raises(GuardFailedError):
        await applications.act(gcx, app.id, "reject", actor, params={"reason_code": "nonsense"})
    assert len(await webhook_rows(gcx)) == before == 1


async def test_inactive_and_unsubscribed_receive_nothing(gcx, gcx_staff, gcx_deliver, receiver):
    actor = await admin(gcx, gcx_staff)
    await store.create(
        gcx, actor, {"name": "off", "url": receiver.url, "secret": SECRET, "events": ""}
    )
    await subscribe(gcx, actor, receiver.url, events="application.approved", name="approvals")
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    assert await webhook_rows(gcx) == [] and receiver.requests == []


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, "retrying"),
        (503, "retrying"),
        (408, "retrying"),
        (400, "dead"),
        (401, "dead"),
        (404, "dead"),
        (301, "dead"),
    ],
)
async def test_answers_decide_retry_or_dead(gcx, gcx_staff, gcx_deliver, receiver, status, outcome):
    sub = await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    receiver.answer(status, **({"Location": "https://elsewhere.example"} if status == 301 else {}))
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    assert row.status == outcome and str(status) in row.last_error
    (logged,) = await store.deliveries(gcx, sub.id)
    assert logged.response_code == status and logged.status == outcome
    assert logged.latency_ms >= 0 and logged.attempts == 1


async def test_a_retried_delivery_keeps_its_ids(gcx, gcx_clock, gcx_staff, gcx_deliver, receiver):
    sub = await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    receiver.answer(503)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    gcx_clock.advance(hours=1)
    await gcx_deliver()
    first, second = receiver.requests
    for header in ("X-GCX-Delivery", "X-GCX-Event-Id"):
        assert first["headers"][header] == second["headers"][header]
    assert first["body"] == second["body"]
    (row,) = await webhook_rows(gcx)
    assert row.status == "sent" and row.attempts == 2
    (logged,) = await store.deliveries(gcx, sub.id)  # the latest attempt
    assert logged.response_code == 204 and logged.status == "sent"


async def test_429_waits_as_long_as_retry_after_says(
    gcx, gcx_clock, gcx_staff, gcx_deliver, receiver
):
    await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    receiver.answer(429, **{"Retry-After": "900"})
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    assert row.status == "retrying" and row.next_attempt_at >= gcx_clock.now + timedelta(
        seconds=900
    )


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    gcx, gcx_staff, gcx_deliver, receiver
):
    await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    receiver.answer(204, wait=2.5)  # GCX_WEBHOOK_TIMEOUT is 1 s here
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    assert row.status == "retrying" and "in time" in row.last_error


async def test_a_receiver_that_is_down_is_retried(gcx, gcx_staff, gcx_deliver, receiver):
    await subscribe(gcx, await admin(gcx, gcx_staff), receiver.url)
    receiver.close()
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    assert row.status == "retrying" and "cannot be reached" in row.last_error


async def test_410_turns_the_subscriber_off(gcx, gcx_staff, gcx_deliver, receiver):
    actor = await admin(gcx, gcx_staff)
    sub = await subscribe(gcx, actor, receiver.url)
    receiver.answer(410)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    assert row.status == "dead" and "410" in row.last_error
    now = await store.get(gcx, sub.id)
    assert not now.active and now.disabled_reason.startswith(store.GONE)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    assert len(await webhook_rows(gcx)) == 1 and len(receiver.requests) == 1
    await store.update(
        gcx, actor, sub.id, {"url": receiver.url, "events": "", "active": "on", "secret": ""}
    )
    again = await store.get(gcx, sub.id)
    assert again.active and again.disabled_reason == "" and again.secret == SECRET


async def test_a_dead_notification_is_an_event(gcx, gcx_staff, gcx_deliver, receiver):
    """Another channel's dead letter is announced; a dead webhook is not (no loop)."""
    actor = await admin(gcx, gcx_staff)
    await subscribe(gcx, actor, receiver.url, events="notification.dead")
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    async with gcx.database.write() as conn:
        await conn.execute(
            notifications.update()
            .where(
                notifications.c.channel == "email", notifications.c.recipient == app.contact.email
            )
            .values(template="no_such_template", status="pending", next_attempt_at=gcx.now())
        )
    await gcx_deliver()
    (payload,) = bodies(receiver)
    assert payload["type"] == "notification.dead"
    data = payload["data"]
    assert data["notification_type"] == "application_received" and data["channel"] == "email"
    assert data["application_id"] == app.id and "recipient" not in data
    receiver.answer(400)
    dead = await subscribe(gcx, actor, receiver.url, name="strict")  # takes every event
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    types = [p["type"] for p in bodies(receiver)]
    assert types.count("notification.dead") == 1  # the dead webhook to "strict" was not sent on
    assert dead.recipient in {r.recipient for r in await webhook_rows(gcx) if r.status == "dead"}


async def test_send_again_is_a_new_delivery_of_the_same_event(
    gcx, gcx_staff, gcx_deliver, receiver
):
    actor = await admin(gcx, gcx_staff)
    sub = await subscribe(gcx, actor, receiver.url)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await gcx_deliver()
    (row,) = await webhook_rows(gcx)
    new_id = await store.send_again(gcx, actor, row.id)
    await gcx_deliver()
    first, second = receiver.requests
    assert second["headers"]["X-GCX-Event-Id"] == first["headers"]["X-GCX-Event-Id"]
    assert second["headers"]["X-GCX-Delivery"] == str(new_id) != str(row.id)
    assert [d.notification_id for d in await store.deliveries(gcx, sub.id)] == [new_id, row.id]
    _, reviewer = await gcx_staff(Role.REVIEWER)
    with pytest.raises(PermissionDeniedError):
        await store.send_again(gcx, reviewer, row.id)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("url", "http://example.com/hooks", "https"),
        ("url", "ftp://example.com/hooks", "https"),
        ("url", "https://user:pw@example.com/hooks", "user name"),
        ("url", "", "https"),
        ("secret", "short", "16"),
        ("events", "application.aproved", "matches no event"),
        ("name", "", "1 to 100"),
    ],
)
async def test_bad_subscribers_are_refused_and_change_nothing(gcx, gcx_staff, field, value, says):
    form = {"name": "erp", "url": "https://erp.example.com/h", "secret": SECRET, "events": ""}
    form[field] = value
    with pytest.raises(ValidationError) as refused:
        await store.create(gcx, await admin(gcx, gcx_staff), form)
    assert says in str(refused.value.errors[field])  # type: ignore[attr-defined]
    assert await store.all_subscribers(gcx) == []


async def test_names_are_unique_and_only_admins_manage(gcx, gcx_staff, receiver):
    actor = await admin(gcx, gcx_staff)
    await subscribe(gcx, actor, receiver.url)
    with pytest.raises(ValidationError, match="name"):
        await subscribe(gcx, actor, receiver.url)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    with pytest.raises(PermissionDeniedError):
        await subscribe(gcx, reviewer, receiver.url, name="mine")
    assert len(await store.all_subscribers(gcx)) == 1


async def test_the_audit_log_never_holds_the_secret(gcx, gcx_staff, receiver):
    actor = await admin(gcx, gcx_staff)
    sub = await subscribe(gcx, actor, receiver.url)
    await store.update(
        gcx,
        actor,
        sub.id,
        {"url": receiver.url, "secret": "a-new-secret-0123456789", "events": "", "active": "on"},
    )
    await store.delete(gcx, actor, sub.id)
    async with gcx.database.read() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log).where(audit_log.c.object_type == "webhook_subscriber")
            )
        ).all()
    assert [r.action for r in rows] == [
        "webhook.subscriber_create",
        "webhook.subscriber_update",
        "webhook.subscriber_delete",
    ]
    text = json.dumps([dict(r._mapping) for r in rows], default=str)
    assert SECRET not in text and "a-new-secret" not in text and "secret_changed" in text
    async with gcx.database.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(subscribers))
        ).scalar() == 0
        assert (await conn.execute(sa.select(sa.func.count()).select_from(attempts))).scalar() == 0


async def test_the_catalogue_follows_the_workflow(gcx):
    names = catalogue(gcx.workflow)
    assert {"application.submitted", "application.approved", "document.verified"} <= set(names)
    assert "application.pending_review" not in names  # no transition leads back there


async def test_assignments_are_events(gcx, gcx_staff, gcx_deliver, receiver):
    from gcx_core.services import assignment

    boss = await admin(gcx, gcx_staff)
    await subscribe(gcx, boss, receiver.url, events="application.assigned")
    reviewer, reviewer_actor = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await assignment.assign(gcx, app.id, reviewer.id, reviewer_actor)
    await assignment.assign(gcx, app.id, None, boss)
    await gcx_deliver()
    found = sorted(bodies(receiver), key=lambda p: int(p["delivery_id"]))
    assert [p["data"] for p in found] == [
        {"application_id": app.id, "reviewer_id": reviewer.id, "previous_reviewer_id": None},
        {"application_id": app.id, "reviewer_id": None, "previous_reviewer_id": reviewer.id},
    ]


async def test_an_expired_supplier_document_is_an_event(
    gcx, gcx_clock, gcx_staff, gcx_deliver, receiver
):
    """`document.expired`: the standing version of a supplier's document has passed its
    validity (GCX's minute job finds it)."""
    from gcx_core.services import renewals

    actor = await admin(gcx, gcx_staff)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    app = await applications.act(gcx, app.id, "start_review", actor)
    tax = None
    for requirement in gcx.requirements_for(app):
        doc = await documents.upload_document(gcx, app.id, requirement.code, PDF, "f.pdf", actor)
        await documents.review_document(gcx, doc.id, True, actor)
        if requirement.code == "tax_clearance":
            tax = doc
    await applications.act(gcx, app.id, "approve", actor)
    await subscribe(gcx, actor, receiver.url, events="document.expired")
    assert "document.expired" in catalogue(gcx.workflow)
    gcx_clock.advance(days=366)
    assert (await renewals.run_due(gcx)).expired == 1
    await gcx_deliver()
    (payload,) = bodies(receiver)
    assert payload["type"] == "document.expired"
    assert payload["data"] == {
        "application_id": app.id,
        "document_id": tax.id,
        "requirement": "tax_clearance",
        "valid_until": tax.valid_until.isoformat(),
    }
