"""Delivery through a real aiosmtpd server: content, headers, retries, dead letters."""

from __future__ import annotations

import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.services import applications
from gcx_core.samples import make_submission
from gcx_core.storage import records
from gcx_core.storage.tables import notifications

APPLICANT = Actor.applicant()


async def outbox(gcx):
    async with gcx.database.read() as conn:
        return (await conn.execute(sa.select(notifications).order_by(notifications.c.id))).all()


async def test_submission_mail_arrives_once_with_both_parts(gcx, gcx_staff, notifier, smtp_sink):
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.broker.wait_all()
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
        counts = await records.read_counters(conn, records.NOTIFICATION_PREFIX)
    assert counts.get("notifications:sent") == 2 and not counts.get("notifications:pending")
