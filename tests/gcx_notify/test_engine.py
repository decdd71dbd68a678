"""The outbox engine: concurrent claimers, capture, templates, retry operations, cleanup."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import attrs
import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Notification, NotificationStatus, Role
from gcx_core.exceptions import InvalidTransitionError, NotFoundError, PermissionDeniedError
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications, dashboard, deadlines
from gcx_core.services import notifications as outbox
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import notifications
from gcx_core.system import Gcx
from gcx_notify.channels import captured
from gcx_notify.engine import RetryPolicy
from gcx_notify.runtime import Notifier

from .conftest import make_pm

APPLICANT = Actor.applicant()


async def rows(gcx):
    async with gcx.database.read() as conn:
        return (await conn.execute(sa.select(notifications).order_by(notifications.c.id))).all()


async def test_a_row_kicked_twice_at_once_is_sent_once(gcx, smtp_sink):
    """A sweep's kick and the commit's own name the same row in one claim: one task sends."""
    await applications.submit(gcx, make_submission(), APPLICANT)
    notifier = Notifier(gcx)
    first, second = await asyncio.gather(
        notifier.deliverer.deliver_many([1]), notifier.deliverer.deliver_many([1])
    )
    sent = [NotificationStatus.SENT]
    assert [first, second] in ([sent, [None]], [[None], sent])
    assert len(smtp_sink.messages) == 1
    assert [r.status for r in await rows(gcx)] == ["sent"]
    for channel in notifier.channels.values():
        await channel.close()


async def test_two_workers_deliver_every_notification_exactly_once(gcx, gcx_settings, smtp_sink):
    """Two engines (as two worker processes) claim the same backlog at the same time."""
    for _ in range(60):
        await applications.submit(gcx, make_submission(), APPLICANT)
    async with await Gcx.open(gcx_settings, plugin_manager=make_pm()) as other:
        first, second = Notifier(gcx), Notifier(other)

        async def drain(notifier):
            for _ in range(100):
                if not await notifier.deliverer.deliver_due(limit=7):
                    return
                await asyncio.sleep(0)

        await asyncio.gather(drain(first), drain(second), drain(first), drain(second))
        for n in (first, second):
            for channel in n.channels.values():
                await channel.close()
    ids = Counter(m["Message-ID"] for m in smtp_sink.messages)
    assert len(ids) == 60 and set(ids.values()) == {1}
    assert {r.status for r in await rows(gcx)} == {"sent"}
    async with gcx.database.read() as conn:
        assert await dashboard.recount(conn, gcx) == {
            k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v
        }


async def test_an_expired_lease_is_claimed_again(gcx, gcx_clock, smtp_sink):
    await applications.submit(gcx, make_submission(), APPLICANT)
    notifier = Notifier(gcx)
    (claimed,) = await notifier.deliverer.claim()
    assert claimed.status is NotificationStatus.SENDING
    assert await notifier.deliverer.claim() == []  # leased: nobody else takes it
    gcx_clock.advance(seconds=gcx.settings.notification_lease_seconds + 1)
    (again,) = await notifier.deliverer.claim()
    assert again.id == claimed.id and again.attempts == 2
    # The first worker wakes up late: its outcome no longer applies.
    assert await notifier.deliverer.send_claimed(claimed) is NotificationStatus.SENT
    assert await notifier.deliverer.send_claimed(again) is NotificationStatus.SENT
    (row,) = await rows(gcx)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_sink.messages) == 2  # the late duplicate carries the same Message-ID
    assert len({m["Message-ID"] for m in smtp_sink.messages}) == 1
    await notifier.stop()


async def test_claims_take_the_oldest_due_rows_across_statuses(gcx, gcx_clock):
    """Pending, retrying and lease-expired rows are claimed oldest first, whatever their
    status; rows not yet due stay."""
    for _ in range(8):
        await applications.submit(gcx, make_submission(), APPLICANT)
    ids = [r.id for r in await rows(gcx)]
    assert len(ids) == 8
    now = gcx.now()

    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    plan = {
        ids[0]: ("pending", ago(1), None),
        ids[1]: ("retrying", ago(30), None),
        ids[2]: ("sending", ago(20), ago(5)),  # its worker's lease ran out
        ids[3]: ("retrying", now + timedelta(minutes=10), None),  # not due yet
        ids[4]: ("sending", ago(40), now + timedelta(minutes=1)),  # still leased
        ids[5]: ("pending", ago(25), None),
    }
    async with gcx.database.write() as conn:
        for row_id, (status, due_at, locked_until) in plan.items():
            await conn.execute(
                notifications.update()
                .where(notifications.c.id == row_id)
                .values(status=status, next_attempt_at=due_at, locked_until=locked_until)
            )
        await conn.execute(
            notifications.update()
            .where(notifications.c.id.not_in(list(plan)))
            .values(next_attempt_at=ago(2))
        )
    deliverer = Notifier(gcx).deliverer
    first = await deliverer.claim(limit=3)
    assert sorted(n.id for n in first) == sorted([ids[1], ids[5], ids[2]])
    rest = await deliverer.claim(limit=100)
    others = [i for i in ids if i not in plan]
    assert sorted(n.id for n in rest) == sorted([*others, ids[0]])
    assert await deliverer.claim(limit=100) == []
    assert all(n.status is NotificationStatus.SENDING for n in first + rest)


async def test_without_smtp_mail_is_captured(gcx_settings, gcx_clock):
    settings = attrs.evolve(gcx_settings, smtp=None)
    async with await Gcx.open(settings, plugin_manager=make_pm(), clock=gcx_clock) as gcx:
        notifier = Notifier(gcx)
        await notifier.start(run_scheduler=False)
        app = await applications.submit(gcx, make_submission(), APPLICANT)
        await notifier.idle()
        await notifier.stop()
        (message,) = await captured(gcx, app.contact.email)
        assert app.tracking_code in message["subject"] and app.tracking_code in message["text"]
        (row,) = await rows(gcx)
        assert row.status == "sent" and row.provider_message_id.startswith("captured:")


def sample_context(kind: str) -> dict:
    base = {
        "business_name": "Adom <Farms> & Co",
        "tracking_code": "GCX-AAAA-BBBB-CCCC",
        "application_id": 7,
        "status": "under_review",
        "previous_status": "pending_review",
    }
    extra = {
        "documents_requested": {
            "requirements": [{"code": "tax_clearance", "title": "Tax clearance"}],
            "message": "Please send <it>",
        },
        "rejected": {"reason_code": "other", "reason": "Other", "message": "Sorry"},
        "approved": {"activation_selector": "abc123"},
        "withdrawal_requested": {"withdrawal_selector": "sel123", "link_hours": 24},
        **{
            kind: {
                "due_date": "Monday 4 January 2027",
                "days_left": 2,
                "days_over": 0,
                "audience": "staff",
            }
            for kind in ("documents_reminder", "review_due", "review_overdue", "deadline_passed")
        },
        **{
            kind: {
                "requirement": "tax_clearance",
                "requirement_title": "Tax clearance certificate",
                "valid_until": "2027-01-04",
                "days_left": 7,
            }
            for kind in ("document_renewal", "document_expired")
        },
        "notification_dead": {
            "failed_id": 3,
            "failed_type": "approved",
            "failed_channel": "email",
            "failed_recipient": "x@example.com",
            "attempts": 4,
            "last_error": "SMTP 550",
        },
    }
    return {**base, **extra.get(kind, {})}


def sample_notification(kind: str, now) -> Notification:
    return Notification(
        id=9,
        type=kind,
        channel="email",
        recipient="to@example.com",
        template=kind,
        context=sample_context(kind),
        dedupe_key="k",
        status=NotificationStatus.SENDING,
        attempts=1,
        max_attempts=4,
        created_at=now,
        updated_at=now,
    )


KINDS = [
    "application_received",
    "new_application",
    "documents_requested",
    "documents_resubmitted",
    "approved",
    "rejected",
    "status_changed",
    "withdrawn",
    "withdrawal_confirmed",
    "withdrawal_requested",
    "reopened",
    "notification_dead",
    "documents_reminder",
    "application_expired",
    "review_due",
    "review_overdue",
    "deadline_passed",
    "document_renewal",
    "document_expired",
]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_type_renders_with_its_context(gcx, kind):
    notifier = Notifier(gcx)
    message = notifier.renderer.render(sample_notification(kind, gcx.now()))
    assert message.subject and "\n" not in message.subject
    assert message.text.strip() and message.html.strip()
    assert "Adom &lt;Farms&gt; &amp; Co" in message.html or kind == "notification_dead"
    assert "<Farms>" not in message.html
    if kind == "approved":
        assert "/activate/abc123." in message.text and "password" in message.text
    await notifier.stop()


async def test_a_subject_never_carries_control_characters(gcx):
    """A second line of defence behind validation: headers are built from user text."""
    notifier = Notifier(gcx)
    n = sample_notification("new_application", gcx.now())
    n = attrs.evolve(n, context={**n.context, "business_name": "Adom\x00\x1b[2J\rFarms"})
    message = notifier.renderer.render(n)
    assert message.subject.isprintable() and "Adom" in message.subject
    await notifier.stop()


async def test_a_missing_variable_is_a_permanent_failure(gcx, smtp_sink):
    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    now = gcx.now()
    async with gcx.database.write() as conn:
        await conn.execute(
            notifications.insert().values(
                type="approved",
                channel="email",
                recipient="x@example.com",
                template="approved",
                context={"business_name": "B"},
                dedupe_key="manual-1",
                status="pending",
                attempts=0,
                max_attempts=4,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    await notifier.sweep()
    await notifier.idle()
    await notifier.stop()
    (row,) = await rows(gcx)
    assert row.status == "dead" and "undefined" in row.last_error
    assert smtp_sink.messages == []


class Branding:
    def __init__(self, folder):
        self.folder = folder

    @hookimpl
    def gcx_notify_template_dirs(self):
        return [str(self.folder)]


async def test_templates_are_overridden_by_plugins_and_the_deployment(gcx_settings, tmp_path):
    plugin_dir, deploy_dir = tmp_path / "plugin", tmp_path / "deploy"
    for d, word in ((plugin_dir, "Plugin"), (deploy_dir, "Deployment")):
        (d / "application_received").mkdir(parents=True)
        (d / "application_received" / "subject.txt").write_text(word + " {{ tracking_code }}")
    (plugin_dir / "withdrawn").mkdir()
    (plugin_dir / "withdrawn" / "subject.txt").write_text("Plugin withdrawn")

    def render(settings, kind):
        async def go():
            async with await Gcx.open(settings, plugin_manager=make_pm(Branding(plugin_dir))) as g:
                notifier = Notifier(g)
                subject = notifier.renderer.render(sample_notification(kind, g.now())).subject
                await notifier.stop()
                return subject

        return go()

    assert await render(gcx_settings, "application_received") == "Plugin GCX-AAAA-BBBB-CCCC"
    deployed = attrs.evolve(gcx_settings, templates_dir=deploy_dir)
    assert await render(deployed, "application_received") == "Deployment GCX-AAAA-BBBB-CCCC"
    assert await render(deployed, "withdrawn") == "Plugin withdrawn"


async def test_templates_see_jinjas_globals_and_render_the_same_each_time(gcx_settings, tmp_path):
    """The renderer keeps each loaded template and flattens the environment's globals once."""
    (tmp_path / "application_received").mkdir()
    (tmp_path / "application_received" / "subject.txt").write_text(
        "{% for i in range(2) %}{{ i }}{% endfor %}"
        "{% set ns = namespace(n=1) %}{% set ns.n = ns.n + 1 %} {{ ns.n }} {{ tracking_code }}"
    )
    settings = attrs.evolve(gcx_settings, templates_dir=tmp_path)
    async with await Gcx.open(settings) as g:
        notifier = Notifier(g)
        first = notifier.renderer.render(sample_notification("application_received", g.now()))
        again = notifier.renderer.render(sample_notification("application_received", g.now()))
        await notifier.stop()
    assert first.subject == again.subject == "01 2 GCX-AAAA-BBBB-CCCC"
    assert first.text == again.text and first.html == again.html


class NoRetries:
    @hookimpl
    def gcx_notify_retry_policy(self, notification):
        return RetryPolicy(max_attempts=1) if notification.type == "new_application" else None


@pytest.fixture(name="gcx_extra_plugins")
def _plugins():
    from gcx_notify import plugin

    return [plugin, NoRetries()]


async def test_retry_policy_per_type_and_retry_operations(gcx, gcx_staff, smtp_sink):
    reviewer, _ = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    _, viewer = await gcx_staff(Role.VIEWER)
    data = make_submission()
    # One refusal per recipient, whatever order the parallel connections deliver in. Not the
    # admin's: the alert about the reviewer's dead message could take the admin's refusal
    # before the admin's own copy arrives.
    for address in (reviewer.email, data["contact"]["email"]):
        smtp_sink.refuse(address, "451 later")
    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    await applications.submit(gcx, data, APPLICANT)
    await notifier.idle()
    by_kind = {}
    for r in await rows(gcx):
        by_kind.setdefault(r.type, []).append(r)
    mine = [r for r in by_kind["new_application"] if r.recipient == reviewer.email]
    assert [r.status for r in mine] == ["dead"]  # one attempt only
    assert {r.status for r in by_kind["application_received"]} == {"retrying"}
    dead = [r.id for r in mine]

    with pytest.raises(PermissionDeniedError):
        await outbox.retry_notifications(gcx, viewer, dead)
    with pytest.raises(NotFoundError):
        await outbox.retry_notifications(gcx, admin, [*dead, 999_999])
    received = by_kind["application_received"][0].id
    with pytest.raises(InvalidTransitionError):
        await outbox.retry_notifications(gcx, admin, [received])
    assert await outbox.retry_notifications(gcx, admin, dead) == dead
    await notifier.idle()
    for r in await rows(gcx):
        if r.id in dead:
            assert r.status == "sent" and r.attempts == 1
    assert any(m["To"] == reviewer.email for m in smtp_sink.messages)
    await notifier.stop()
    status = await outbox.outbox_status(gcx, ["gcx.sweep"])
    assert status.counts["retrying"] == 1 and status.counts["sent"] >= 1
    assert status.last_runs == {"gcx.sweep": None}


async def test_retry_all_dead(gcx, gcx_staff, smtp_sink):
    _, admin = await gcx_staff(Role.ADMIN)
    smtp_sink.refuse("*", "550 no", "550 no", "550 no")
    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.idle()
    dead_before = [r.id for r in await rows(gcx) if r.status == "dead"]
    assert dead_before
    assert await outbox.retry_notifications(gcx, admin) == dead_before
    await notifier.idle()
    assert all(r.status == "sent" for r in await rows(gcx) if r.id in dead_before)
    assert await outbox.retry_notifications(gcx, admin) == []
    await notifier.stop()


async def test_cleanup_keeps_dead_and_recent(gcx, gcx_clock, smtp_sink):
    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.idle()
    smtp_sink.refuse("*", "550 no")
    await applications.submit(gcx, make_submission(), APPLICANT)
    await notifier.idle()
    gcx_clock.advance(days=gcx.settings.notification_retention_days - 1)
    assert await notifier.cleanup() == 0
    gcx_clock.advance(days=2)
    assert await notifier.cleanup() == 1
    assert [r.status for r in await rows(gcx)] == ["dead"]
    await notifier.stop()
    await deadlines.refresh_figures(gcx)  # a month on, the application ages
    async with gcx.database.read() as conn:
        assert await dashboard.recount(conn, gcx) == {
            k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v
        }


async def test_a_schedule_slot_runs_once(gcx):
    notifier = Notifier(gcx)
    assert await notifier.claim_run("gcx.sweep:20260101T0000")
    assert not await notifier.claim_run("gcx.sweep:20260101T0000")
    assert await notifier.claim_run("gcx.sweep:20260101T0001")
    await notifier.stop()


def test_backoff_grows_and_is_capped():
    import random

    policy, rng = RetryPolicy(jitter=0), random.Random(1)
    waits = [policy.delay(a, rng).total_seconds() for a in range(1, 8)]
    assert waits[:3] == [60, 300, 1500]
    assert waits[-1] == 6 * 3600
    jittery = RetryPolicy()
    spread = {round(jittery.delay(1, rng).total_seconds()) for _ in range(50)}
    assert min(spread) >= 48 and max(spread) <= 72 and len(spread) > 5
