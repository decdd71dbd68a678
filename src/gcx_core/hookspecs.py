"""The hooks of gcx_core. Built-in behaviour implements these exactly as third parties do.

Hooks take keyword arguments. The hooks in ASYNC_HOOKS may be implemented by coroutine
functions: they are called through `gcx_core.plugins.call_async` / `first_async`, which await
their results. The others are called synchronously (several inside a database transaction,
where they must not do I/O), and the plugin manager refuses async implementations of them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import sqlalchemy as sa

    from gcx_core.deadlines import DeadlinePolicy
    from gcx_core.entities import (
        Actor,
        Application,
        DocumentRequirement,
        NotificationDraft,
        User,
    )
    from gcx_core.events import Event
    from gcx_core.phones import PhoneFormat
    from gcx_core.settings import Settings
    from gcx_core.storage.database import Connection
    from gcx_core.system import Gcx
    from gcx_core.workflow import TransitionEvent, WorkflowBuilder

hookspec = pluggy.HookspecMarker("gcx")

ASYNC_HOOKS = frozenset(
    {"gcx_validate_upload", "gcx_after_transition", "gcx_handle_event", "gcx_queue_for_event"}
)


@hookspec
def gcx_register_workflow(builder: WorkflowBuilder) -> None:
    """Add states, transitions and guards to the workflow.

    :param builder: call ``add_state``, ``add_transition``, ``add_guard`` and ``add_sources``.
        The default workflow is registered ``tryfirst``, so other plugins can extend it.
    """


@hookspec
def gcx_register_document_requirements(register: Callable[[DocumentRequirement], None]) -> None:
    """Declare the documents an application needs.

    :param register: call with a ``DocumentRequirement``; a later registration with the same
        code replaces an earlier one, so a deployment can tighten a default's limits.
    """


@hookspec
def gcx_register_phone_formats(register: Callable[[PhoneFormat], None]) -> None:
    """Add national telephone formats selectable with ``GCX_PHONE_COUNTRY``.

    :param register: call with a ``PhoneFormat``.
    """


@hookspec
def gcx_before_transition(
    application: Application, action: str, actor: Actor, params: dict[str, Any]
) -> None:
    """Veto or check a transition inside its transaction; raising aborts it and changes nothing.

    :param application: the application as it is before the transition.
    :param action: the workflow action about to be applied.
    :param actor: who is acting.
    :param params: the action's parameters (message, reason code, requirements...).
    """


@hookspec
def gcx_collect_notifications(
    event: TransitionEvent, application: Application, staff: list[User]
) -> list[NotificationDraft] | None:
    """Return the messages a transition should send; they join its transaction's outbox.

    :param event: the transition being committed.
    :param application: the application after the transition.
    :param staff: active staff users, for alerts to reviewers and admins.
    """


@hookspec
def gcx_route_notification(
    draft: NotificationDraft, application: Application
) -> list[NotificationDraft] | None:
    """Return more messages to send beside one a transition queues: the same news over another
    channel or to another recipient (an SMS to the applicant's mobile, a webhook per subscriber).

    Runs in the transition's transaction, once for every draft `gcx_collect_notifications`
    returned (not for the drafts this hook returns). Each returned draft becomes an outbox row
    of its own, with its channel's retries. Account and withdrawal emails, which carry
    single-use links, are not routed.

    :param draft: a message the transition will send (type, recipient, channel, context).
    :param application: the application after the transition.
    """


@hookspec
def gcx_queue_for_event(
    event: Event, application: Application | None, conn: Connection
) -> list[NotificationDraft] | None:
    """Return messages to queue because of a domain event, in the event's own transaction.

    May be async. Called for transitions (``TransitionEvent``, after `gcx_collect_notifications`
    and `gcx_route_notification`), assignments (``ApplicationAssigned``), uploads
    (``DocumentUploaded``), document reviews (``DocumentReviewed``) and notifications gone
    dead (``NotificationDelivery`` with status ``dead``). The drafts become outbox rows that
    commit, or roll back, with the change; an error aborts the change. ``conn`` is the
    transaction's connection: read your own tables through it (a list of webhook subscribers,
    say) and write them if you must, but do no other I/O here. Deliver from a channel instead.

    :param event: one of the classes in ``gcx_core.events``.
    :param application: the application after a transition or an assignment, None for the
        other events.
    :param conn: the transaction's ``sqlalchemy.ext.asyncio.AsyncConnection``.
    """


@hookspec(firstresult=True)
def gcx_choose_reviewer(
    application: Application, candidates: list[User], workload: dict[int, int]
) -> int | None:
    """Choose who reviews a new application, as it is submitted; the first answer wins.

    Runs in the submission's transaction: no I/O. Without an answer, ``GCX_AUTO_ASSIGN``
    decides (``off`` leaves it for reviewers to take).

    :param application: the application being submitted (its ``id`` is set).
    :param candidates: active reviewers without a declared conflict with this applicant.
    :param workload: open applications each reviewer holds now, by user id.
    :return: the chosen candidate's user id, or None to leave it to the setting.
    """


@hookspec
def gcx_deadline_policies(settings: Settings) -> list[DeadlinePolicy] | None:
    """Name how long applications may stay in a status, and what happens as time runs out.

    Called once as each process starts. Answers are merged in call order: a policy for a
    status replaces any earlier one for it (the default's, built from ``GCX_DOCUMENTS_*`` and
    ``GCX_REVIEW_*``), and one with ``days=0`` removes it.

    :param settings: the deployment's settings.
    :return: `gcx_core.deadlines.DeadlinePolicy` objects, or None.
    """


@hookspec
def gcx_validate_upload(
    requirement: DocumentRequirement, content: bytes, content_type: str, filename: str
) -> str | None:
    """Check an upload before it is stored (a virus scan, a page count...); may be async.

    :param requirement: the requirement the file is uploaded for.
    :param content: the file's bytes.
    :param content_type: the type sniffed from the content.
    :param filename: the sanitised original name.
    :return: None to accept, or a sentence telling the uploader why the file was refused.
    """


@hookspec
def gcx_after_transition(event: TransitionEvent, application: Application) -> None:
    """React to a committed transition; may be async. Errors are logged, never undo it.

    :param event: what happened, with the id of its status change.
    :param application: the application after the transition.
    """


@hookspec
def gcx_handle_event(event: Event) -> None:
    """React to any committed domain event (transitions, uploads, reviews, notifications queued).

    May be async. Errors are logged and never undo the committed change.

    :param event: one of the classes in ``gcx_core.events``.
    """


@hookspec
def gcx_register_tables(metadata: sa.MetaData) -> None:
    """Add a plugin's tables to GCX's SQLAlchemy ``MetaData``.

    :param metadata: the ``sqlalchemy.MetaData`` shared by all tables; ship an Alembic migration
        for the tables too and return its folder from ``gcx_migration_locations``.
    """


@hookspec
def gcx_migration_locations() -> list[str] | None:
    """Return folders of Alembic revision scripts that ``gcx migrate`` should also apply."""


@hookspec(historic=True)
def gcx_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add a package's own hookspecs (gcx_notify's, gcx_web's, a plugin's) to the manager.

    :param plugin_manager: call ``plugin_manager.add_hookspecs(module)``.
    """


@hookspec
def gcx_register_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add sub-commands to the `gcx` command line.

    :param subparsers: argparse sub-parsers: ``p = subparsers.add_parser(name, help=...)``, then
        ``p.set_defaults(func=handler)`` where ``handler(args)`` returns the exit status.
    """


@hookspec
def gcx_process_services(gcx: Gcx, role: str) -> AbstractAsyncContextManager[object] | None:
    """Return an async context manager to run for the life of a GCX process, or None.

    gcx_notify uses it to run delivery inside ``gcx serve``; a plugin may run its own
    background work the same way. Entered after the database opens, left before it closes.

    :param gcx: the process's ``gcx_core.system.Gcx``.
    :param role: ``"serve"`` (the embedded all-in-one process), ``"web"`` (a scale-out web
        process; workers and the scheduler run elsewhere), ``"worker"`` or ``"scheduler"``.
    """
