"""Delivery through a real aiosmtpd server: content, headers, retries, dead letters."""

from __future__ import annotations

import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.services import notifications as outbox_service
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import notifications

APPLICANT = Actor.applicant()


async def outbox(gcx):
    async with gcx.database.read() as conn:
        return (await conn.execute(sa.select(notifications).order_by(notifications.c.id))).all()


async def test_submission_mail_arrives_once_with_both_parts(gcx, gcx_staff, notifier, smtp_sink):
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.idle()
    rows = await outbox(gcx)
    assert {r.status for r in rows} == {"sent"}
    mine = smtp_sink.by_recipient(app.contact.email)
    assert len(mine) == 1
    mail = mine[0]
    row = next(r for r in rows if r.recipient == app.contact.email)
    assert mail["Message-ID"] == f"<gcx.notification.{row.id}@gcx.example>"
    assert row.provider_message_id == mail["Message-ID"]
    assert mail["From"] == "GCX <noreply@gcx.example>"
    assert app.tracking_code in mail["Subject"]
    assert mail.is_multipart()
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert app.tracking_code in text and f"/track/{app.tracking_code}" in text
    assert app.business.name in html and "<strong>" in html
    staff_mail = smtp_sink.by_recipient(reviewer.email)
    assert len(staff_mail) == 1 and "New application" in staff_mail[0]["Subject"]
    async with gcx.database.read() as conn:
        counts = await bookkeeping.read_counters(conn, bookkeeping.NOTIFICATION_PREFIX)
    assert counts.get("notifications:sent") == 2 and not counts.get("notifications:pending")


async def test_temporary_failures_then_success_with_growing_backoff(
    gcx, gcx_clock, notifier, smtp_sink
):
    data = make_submission()
    smtp_sink.refuse(data["contact"]["email"], "451 try again later", "452 mailbox busy")
    app = await applications.submit(gcx, data, APPLICANT)
    await notifier.idle()
    (row,) = await outbox(gcx)
    assert (row.status, row.attempts) == ("retrying", 1)
    assert "451" in row.last_error
    first_wait = (row.next_attempt_at - gcx_clock()).total_seconds()
    assert 48 <= first_wait <= 72  # one minute, +-20% jitter

    assert await notifier.sweep() == 0  # not due yet: nothing kicked
    gcx_clock.advance(seconds=first_wait + 1)
    assert await notifier.sweep() == 1
    await notifier.idle()
    (row,) = await outbox(gcx)
    assert (row.status, row.attempts) == ("retrying", 2)
    second_wait = (row.next_attempt_at - gcx_clock()).total_seconds()
    assert 240 <= second_wait <= 360  # five minutes, +-20%

    gcx_clock.advance(seconds=second_wait + 1)
    await notifier.sweep()
    await notifier.idle()
    (row,) = await outbox(gcx)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(smtp_sink.by_recipient(app.contact.email)) == 1


async def test_permanent_failure_goes_dead_at_once_and_alerts_admins(
    gcx, gcx_staff, notifier, smtp_sink
):
    admin, _ = await gcx_staff(Role.ADMIN)
    data = make_submission()
    smtp_sink.refuse(data["contact"]["email"], "550 no such mailbox")
    app = await applications.submit(gcx, data, APPLICANT)
    await notifier.idle()
    rows = await outbox(gcx)
    applicant_row = next(r for r in rows if r.recipient == app.contact.email)
    assert (applicant_row.status, applicant_row.attempts) == ("dead", 1)
    assert "550" in applicant_row.last_error
    alert = next(r for r in rows if r.type == "notification_dead")
    assert alert.recipient == admin.email and alert.status == "sent"
    (mail,) = [m for m in smtp_sink.by_recipient(admin.email) if "[GCX alert]" in m["Subject"]]
    assert app.contact.email in mail.get_body(("plain",)).get_content()


async def test_retries_exhausted_go_dead(gcx, gcx_clock, gcx_staff, notifier, smtp_sink):
    admin, _ = await gcx_staff(Role.ADMIN)
    data = make_submission()
    smtp_sink.refuse(data["contact"]["email"], *["421 closing"] * 50)
    app = await applications.submit(gcx, data, APPLICANT)
    for _ in range(gcx.settings.notification_max_attempts + 1):
        await notifier.idle()
        gcx_clock.advance(hours=7)
        await notifier.sweep()
    await notifier.idle()
    rows = await outbox(gcx)
    row = next(r for r in rows if r.recipient == app.contact.email)
    assert (row.status, row.attempts) == ("dead", gcx.settings.notification_max_attempts)
    alerts = [r for r in rows if r.type == "notification_dead" and r.context["failed_id"] == row.id]
    assert len(alerts) == 1 and alerts[0].recipient == admin.email
    assert alerts[0].status == "sent"


async def test_an_address_that_is_not_one_is_permanent(gcx, notifier, smtp_sink):
    from gcx_notify.channels import PermanentFailure, RenderedMessage

    channel = notifier.channels["email"]
    bad = RenderedMessage(1, "email", "not an address", "s", "t", "<p>h</p>", "<x@y>", "a@b.c")
    import pytest

    with pytest.raises(PermanentFailure):
        await channel.send(bad)
    assert smtp_sink.messages == []


def test_built_messages_parse_back_and_refuse_header_injection():
    from email import message_from_bytes, policy

    import pytest

    from gcx_notify.channels import PermanentFailure, RenderedMessage, build_email

    message = RenderedMessage(
        5,
        "email",
        "owner@example.com",
        "Dɔ́ɔ́ — approuvé ✓",
        "Texte été\n",
        "<p>été &amp; ✓</p>",
        "<gcx.notification.5@x.test>",
        "Programme Ghana ✓ <noreply@x.test>",
    )
    parsed = message_from_bytes(build_email(message), policy=policy.default)
    assert parsed["Subject"] == "Dɔ́ɔ́ — approuvé ✓"
    assert parsed["From"].addresses[0].display_name == "Programme Ghana ✓"
    assert parsed["From"].addresses[0].addr_spec == "noreply@x.test"
    assert parsed["Message-ID"] == "<gcx.notification.5@x.test>"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content() == "Texte été\n"
    assert parsed.get_body(("html",)).get_content() == "<p>été &amp; ✓</p>"
    evil = RenderedMessage(
        6, "email", "a@b.c", "Hi\r\nBcc: everyone@example.com", "t", "h", "<x@y>", "noreply@x.test"
    )
    with pytest.raises(PermanentFailure):
        build_email(evil)


async def test_a_retried_notification_that_dies_again_alerts_again_and_blocks_nothing(
    gcx, gcx_staff, notifier, smtp_sink
):
    _, admin_actor = await gcx_staff(Role.ADMIN)
    data = make_submission()
    smtp_sink.refuse(data["contact"]["email"], "550 no such mailbox", "550 no such mailbox")
    app = await applications.submit(gcx, data, APPLICANT)
    await notifier.idle()
    dead = next(r for r in await outbox(gcx) if r.recipient == app.contact.email)
    assert dead.status == "dead"
    # Sent again together with other mail: it dies again, at the same attempt number.
    await outbox_service.retry_notifications(gcx, admin_actor, [dead.id])
    other = await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.sweep()
    await notifier.idle()
    rows = await outbox(gcx)
    again = next(r for r in rows if r.id == dead.id)
    assert (again.status, again.attempts) == ("dead", 1)
    alerts = [
        r for r in rows if r.type == "notification_dead" and r.context["failed_id"] == dead.id
    ]
    assert len(alerts) == 2 and {a.status for a in alerts} == {"sent"}
    assert next(r for r in rows if r.recipient == other.contact.email).status == "sent"
    assert not [r for r in rows if r.status in ("sending", "pending", "retrying")]
