"""The sms channel against a gateway on loopback: routing, the request, every kind of answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from gcx_sms.settings import SmsSettings

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import ConfigurationError
from gcx_core.services import applications
from gcx_core.storage.tables import notifications
from gcx_core.testing import make_submission

APPLICANT = Actor.applicant()


async def sms_rows(gcx):
    async with gcx.database.read() as conn:
        rows = await conn.execute(
            sa.select(notifications)
            .where(notifications.c.channel == "sms")
            .order_by(notifications.c.id)
        )
        return rows.all()


async def submit(gcx, telephone="024 123 4567"):
    data = make_submission()
    data["contact"]["telephone"] = telephone
    return await applications.submit(gcx, data, APPLICANT)


async def test_the_applicant_gets_a_text_beside_the_email(gcx, gcx_staff, gcx_notifier, gateway):
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    app = await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)  # the applicant's message only, not the reviewer's
    assert row.type == "application_received" and row.recipient == "+233241234567"
    assert row.status == "sent" and row.provider_message_id == "sms-1"
    (request,) = gateway.requests
    assert request["headers"]["Authorization"] == "Bearer gateway-key"
    assert request["body"]["to"] == "+233241234567"
    text = request["body"]["text"]
    assert app.tracking_code in text and f"/track/{app.tracking_code}" in text
    assert len(text) <= 459 and "\n" not in text
    async with gcx.database.read() as conn:
        emails = (
            await conn.execute(
                sa.select(notifications.c.recipient).where(notifications.c.channel == "email")
            )
        ).scalars()
        assert set(emails) == {app.contact.email, reviewer.email}


async def test_the_email_still_goes(gcx, gcx_deliver, gcx_captured_mail, gateway):
    app = await submit(gcx)
    await gcx_deliver()
    (mail,) = await gcx_captured_mail(recipient=app.contact.email)
    assert app.tracking_code in mail["subject"]
    assert len(gateway.requests) == 1


async def test_the_approval_text_carries_no_activation_link(gcx, gcx_notifier, gateway):
    """The approval email's context holds the activation link's selector: the text's does not,
    and its template says to look at the email."""
    from pathlib import Path

    import jinja2
    from gcx_sms import gcx_route_notification

    from gcx_core.entities import NotificationDraft

    app = await submit(gcx)
    context = {"tracking_code": app.tracking_code, "activation_selector": "sel", "status": "x"}
    draft = NotificationDraft("approved", app.contact.email, context)
    (routed,) = gcx_route_notification(draft=draft, application=app)
    assert routed.context == {"tracking_code": app.tracking_code, "status": "x"}
    templates = Path(__import__("gcx_sms").__file__).parent / "templates"
    env = jinja2.Environment(  # plain text, as the notifier renders .txt templates
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    text = env.get_template("approved/sms.txt").render(
        programme="GCX", business_name="Agro", tracking_code=app.tracking_code
    )
    assert "approved" in text and "email" in text and "http" not in text


async def test_staff_messages_and_other_channels_are_not_routed(gcx, gateway):
    from gcx_sms import gcx_route_notification

    from gcx_core.entities import NotificationDraft

    app = await submit(gcx)
    staff = NotificationDraft("application_received", "reviewer@example.com", {})
    other = NotificationDraft("application_received", app.contact.email, {}, channel="webhook")
    unknown = NotificationDraft("newsletter", app.contact.email, {})
    for draft in (staff, other, unknown):
        assert gcx_route_notification(draft=draft, application=app) is None


async def test_429_waits_as_long_as_retry_after_says(gcx, gcx_clock, gcx_notifier, gateway):
    gateway.answer(429, **{"Retry-After": "600"})
    await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "retrying" and "429" in row.last_error
    assert row.next_attempt_at >= gcx_clock.now + timedelta(seconds=600)
    gcx_clock.advance(seconds=601)
    await gcx_notifier.sweep()
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "sent" and row.attempts == 2


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(500, "retrying"), (503, "retrying"), (408, "retrying"), (400, "dead"), (401, "dead")],
)
async def test_answers_decide_retry_or_dead(gcx, gcx_notifier, gateway, status, outcome):
    gateway.answer(status, b'{"error": "no"}')
    await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == outcome and str(status) in row.last_error


async def test_a_gateway_that_does_not_answer_in_time_is_retried(gcx, gcx_notifier, gateway):
    gateway.answer(200, wait=2.5)  # GCX_SMS_TIMEOUT is 1 s here
    await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "retrying" and "in time" in row.last_error


async def test_a_gateway_that_is_down_is_retried(gcx, gcx_notifier, gateway, monkeypatch):
    gateway.server.shutdown()
    gateway.server.server_close()
    await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "retrying" and "cannot be reached" in row.last_error


async def test_a_200_that_says_rejected_is_dead(gcx, gcx_notifier, gateway, monkeypatch):
    monkeypatch.setenv("GCX_SMS_SUCCESS_FIELD", "status")
    monkeypatch.setenv("GCX_SMS_SUCCESS_VALUE", "queued")
    gateway.answer(200, b'{"status": "rejected", "id": "x"}')
    await submit(gcx)
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "dead" and "'rejected'" in row.last_error


async def test_a_malformed_number_is_dead_without_a_request(gcx, gcx_notifier, gateway):
    """Stored numbers are normalised at submission; one that is not (an older row, a
    plugin's draft) never reaches the gateway."""
    from gcx_sms import gcx_route_notification

    from gcx_core.entities import NotificationDraft

    app = await submit(gcx)
    await gcx_notifier.idle()
    gateway.requests.clear()
    draft = NotificationDraft("status_changed", app.contact.email, {"tracking_code": "X"})
    (routed,) = gcx_route_notification(draft=draft, application=app)
    assert routed.channel == "sms" and routed.recipient == app.contact.telephone
    async with gcx.database.write() as conn:
        await conn.execute(
            notifications.update()
            .where(notifications.c.channel == "sms")
            .values(recipient="12345", status="pending", next_attempt_at=gcx.now())
        )
    await gcx_notifier.sweep()
    await gcx_notifier.idle()
    (row,) = await sms_rows(gcx)
    assert row.status == "dead" and "not a GH telephone number" in row.last_error
    assert gateway.requests == []


async def test_turned_off_no_text_is_queued(gcx, gcx_notifier, gateway, monkeypatch):
    monkeypatch.setenv("GCX_SMS_ENABLED", "false")
    await submit(gcx)
    await gcx_notifier.idle()
    assert await sms_rows(gcx) == [] and gateway.requests == []


async def test_without_a_gateway_no_text_is_queued(gcx, gcx_notifier, monkeypatch):
    monkeypatch.delenv("GCX_SMS_URL", raising=False)
    await submit(gcx)
    await gcx_notifier.idle()
    assert await sms_rows(gcx) == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("GCX_SMS_URL", "ftp://gateway", "http:// or https://"),
        ("GCX_SMS_TIMEOUT", "soon", "number of seconds"),
        ("GCX_SMS_TIMEOUT", "0", "between 0 and 120"),
        ("GCX_SMS_ENABLED", "perhaps", "true or false"),
        ("GCX_SMS_AUTH_HEADER", "Bearer x", "Name: value"),
        ("GCX_SMS_PAYLOAD", '{"to": {to}}', "must be JSON"),
    ],
)
def test_bad_configuration_is_named(name, value, says):
    with pytest.raises(ConfigurationError, match=says):
        SmsSettings.from_environment({name: value})


def test_quotes_in_a_text_cannot_break_the_payload():
    from gcx_sms.settings import fill

    body = fill('{"to": "{to}", "text": "{text}"}', to="+233241234567", text='say "hi"\n')
    import json

    assert json.loads(body)["text"] == 'say "hi"\n'
