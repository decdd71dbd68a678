"""`gcx_queue_for_event`: messages a plugin queues for domain events, in the event's own
transaction (how gcx-webhook announces changes)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, NotificationDraft, Role
from gcx_core.events import DocumentReviewed, DocumentUploaded, NotificationDelivery
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications, documents
from gcx_core.storage.tables import applications as application_rows
from gcx_core.storage.tables import notifications
from gcx_core.workflow import TransitionEvent
from gcx_notify import plugin as notify_plugin
from gcx_notify.channels import PermanentFailure, RenderedMessage

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class Announcer:
    """Queues an `announce` message for every event it is asked about, counting the
    applications through the transaction's own connection; can be told to fail."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.fail = False
        self.sent: list[RenderedMessage] = []
        self.refuse = False

    @hookimpl
    async def gcx_queue_for_event(self, event, application, conn):
        if self.fail:
            raise RuntimeError("the announcer broke")
        self.seen.append((event, application))
        if isinstance(event, NotificationDelivery) and event.channel == "announce":
            return None  # its own dead letters: announcing them would loop
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(application_rows))
        ).scalar()
        name = type(event).__name__
        return [
            NotificationDraft(
                "announce", "desk", {"event": name, "applications": count}, channel="announce"
            )
        ]

    @hookimpl
    def gcx_notify_register_channels(self, register: Any) -> None:
        announcer = self

        class Channel:
            async def send(self, message: RenderedMessage) -> str:
                if announcer.refuse:
                    raise PermanentFailure("refused")
                announcer.sent.append(message)
                return ""

            async def close(self) -> None:
                pass

        register("announce", lambda notifier: Channel())


@pytest.fixture(name="announcer")
def _announcer() -> Announcer:
    return Announcer()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(announcer: Announcer, tmp_path: Any) -> list[object]:
    folder = tmp_path / "templates" / "announce"
    folder.mkdir(parents=True)
    (folder / "announce.txt").write_text("{{ event }}")

    class Templates:
        @hookimpl
        def gcx_notify_template_dirs(self) -> list[str]:
            return [str(tmp_path / "templates")]

    return [notify_plugin, announcer, Templates()]


async def announced(gcx: Any) -> list[Any]:
    async with gcx.database.read() as conn:
        found = await conn.execute(
            sa.select(notifications)
            .where(notifications.c.channel == "announce")
            .order_by(notifications.c.id)
        )
        return found.all()


async def test_transitions_uploads_and_reviews_queue_in_their_transaction(
    gcx, gcx_staff, notifier, announcer
):
    _, reviewer = await gcx_staff(Role.ADMIN)
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await applications.act(gcx, app.id, "start_review", reviewer)
    code = next(r.code for r in gcx.requirements_for(app) if r.required)
    doc = await documents.upload_document(gcx, app.id, code, PDF, "a.pdf", Actor.applicant())
    await documents.review_document(gcx, doc.id, True, reviewer)
    await documents.undo_review(gcx, doc.id, reviewer)
    await documents.review_document(gcx, doc.id, True, reviewer)  # again: its own message
    await notifier.idle()
    kinds = [type(e).__name__ for e, _ in announcer.seen]
    assert kinds == [
        "TransitionEvent",
        "TransitionEvent",
        "DocumentUploaded",
        "DocumentReviewed",
        "DocumentReviewed",
        "DocumentReviewed",
    ]
    transition, after = announcer.seen[0]
    assert isinstance(transition, TransitionEvent) and after.id == app.id
    assert transition.status_change_id is not None  # written before the hook is asked
    assert all(a is None for e, a in announcer.seen if not isinstance(e, TransitionEvent))
    assert isinstance(announcer.seen[2][0], DocumentUploaded)
    reviews = [e.review_status for e, _ in announcer.seen if isinstance(e, DocumentReviewed)]
    assert reviews == ["verified", "pending", "verified"]
    rows = await announced(gcx)
    assert [r.context["event"] for r in rows] == kinds
    assert rows[0].context["applications"] == 1  # read through the transaction's connection
    assert {r.status for r in rows} == {"sent"} and {r.application_id for r in rows} == {app.id}
    assert len(announcer.sent) == 6


async def test_a_failing_plugin_aborts_the_change(gcx, gcx_staff, notifier, announcer):
    _, reviewer = await gcx_staff(Role.ADMIN)
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    code = next(r.code for r in gcx.requirements_for(app) if r.required)
    announcer.fail = True
    with pytest.raises(RuntimeError, match="announcer broke"):
        await applications.act(gcx, app.id, "start_review", reviewer)
    with pytest.raises(RuntimeError, match="announcer broke"):
        await documents.upload_document(gcx, app.id, code, PDF, "a.pdf", Actor.applicant())
    async with gcx.database.read() as conn:
        status = (
            await conn.execute(
                sa.select(application_rows.c.status).where(application_rows.c.id == app.id)
            )
        ).scalar()
    assert status == "pending_review"
    assert len(await announced(gcx)) == 1  # only the submission's


async def test_a_dead_notification_is_an_event_with_its_channel(gcx, notifier, announcer):
    announcer.refuse = True
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    dead = [e for e, _ in announcer.seen if isinstance(e, NotificationDelivery)]
    assert [(e.status, e.channel, e.type) for e in dead] == [("dead", "announce", "announce")]
    (row,) = await announced(gcx)  # the one that died; it is not announced in turn
    assert row.context["event"] == "TransitionEvent" and row.status == "dead"
