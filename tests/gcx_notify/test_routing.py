"""`gcx_route_notification`, channels that see the notification's type and context, a channel's
own short text, and a provider's Retry-After."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Application, NotificationDraft
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.storage.tables import notifications
from gcx_notify import plugin as notify_plugin
from gcx_notify.channels import RenderedMessage, TemporaryFailure


class Recorder:
    """A channel plugin: routes the applicant's messages to `recorder` and keeps what it gets."""

    def __init__(self, tmp_path: Any) -> None:
        self.got: list[RenderedMessage] = []
        self.failures: list[Exception] = []
        self.templates = tmp_path / "templates"
        (self.templates / "application_received").mkdir(parents=True)
        (self.templates / "application_received" / "recorder.txt").write_text(
            "Got {{ tracking_code }}.\n\n  Thanks.\n"
        )

    @hookimpl
    def gcx_route_notification(
        self, draft: NotificationDraft, application: Application
    ) -> list[NotificationDraft] | None:
        if draft.recipient != application.contact.email:
            return None
        return [attrs.evolve(draft, channel="recorder", recipient="desk-7")]

    @hookimpl
    def gcx_notify_register_channels(self, register: Any) -> None:
        recorder = self

        class Channel:
            async def send(self, message: RenderedMessage) -> str:
                if recorder.failures:
                    raise recorder.failures.pop(0)
                recorder.got.append(message)
                return f"r{len(recorder.got)}"

            async def close(self) -> None:
                pass

        register("recorder", lambda notifier: Channel())

    @hookimpl
    def gcx_notify_template_dirs(self) -> list[str]:
        return [str(self.templates)]


@pytest.fixture(name="recorder")
def _recorder(tmp_path: Any) -> Recorder:
    return Recorder(tmp_path)


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(recorder: Recorder) -> list[object]:
    return [notify_plugin, recorder]


async def rows(gcx: Any, channel: str) -> list[Any]:
    async with gcx.database.read() as conn:
        found = await conn.execute(
            sa.select(notifications)
            .where(notifications.c.channel == channel)
            .order_by(notifications.c.id)
        )
        return found.all()


async def test_a_routed_message_is_its_own_outbox_row_with_type_and_context(
    gcx, notifier, recorder
):
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    (row,) = await rows(gcx, "recorder")
    assert row.type == "application_received" and row.recipient == "desk-7"
    assert row.status == "sent" and row.provider_message_id == "r1"
    assert row.application_id == app.id
    (email,) = [r for r in await rows(gcx, "email") if r.recipient == app.contact.email]
    assert email.status == "sent"  # the email still goes
    (message,) = recorder.got
    assert message.type == "application_received"
    assert message.context["tracking_code"] == app.tracking_code
    # The channel's own text, spacing folded; no subject or html.
    assert message.text == f"Got {app.tracking_code}. Thanks."
    assert message.subject == "" and message.html == ""


async def test_without_its_own_text_a_channel_gets_the_email_parts(gcx, notifier, recorder):
    (recorder.templates / "application_received" / "recorder.txt").unlink()
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    (message,) = recorder.got
    assert app.tracking_code in message.subject and message.html.startswith("<")


async def test_retry_after_holds_the_next_attempt_back(gcx, gcx_clock, notifier, recorder):
    recorder.failures.append(TemporaryFailure("busy", retry_after=3600))
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    (row,) = await rows(gcx, "recorder")
    assert row.status == "retrying" and row.last_error == "busy"
    assert row.next_attempt_at >= gcx_clock.now + timedelta(seconds=3600)
    gcx_clock.advance(seconds=1800)  # past the policy's own first delay, not the provider's
    assert await notifier.sweep() == 0
    gcx_clock.advance(seconds=1801)
    assert await notifier.sweep() == 1
    await notifier.idle()
    (row,) = await rows(gcx, "recorder")
    assert row.status == "sent"


async def test_an_absurd_retry_after_waits_a_day_at_most(gcx, gcx_clock, notifier, recorder):
    recorder.failures.append(TemporaryFailure("busy", retry_after=10**9))
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    (row,) = await rows(gcx, "recorder")
    assert row.next_attempt_at <= gcx_clock.now + timedelta(days=1, minutes=1)
