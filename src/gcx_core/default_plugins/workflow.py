"""The default workflow of DESIGN §4, registered through `gcx_register_workflow`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs

from gcx_core.deadlines import ADMINS, ASSIGNEE, DeadlinePolicy, Reminder
from gcx_core.deadlines import APPLICANT as TO_APPLICANT
from gcx_core.entities import ReviewStatus
from gcx_core.plugins import hookimpl
from gcx_core.reference import REJECTION_REASONS
from gcx_core.workflow import (
    APPLICANT,
    APPROVAL_PENDING,
    EFFECT_ASSIGN_REVIEWER,
    EFFECT_CLOSE_DOCUMENT_REQUEST,
    EFFECT_CREATE_SUPPLIER_ACCOUNT,
    EFFECT_OPEN_DOCUMENT_REQUEST,
    SYSTEM,
    GuardContext,
    State,
    Transition,
    WorkflowBuilder,
)

log = logging.getLogger("gcx_core.workflow")

PENDING_REVIEW = "pending_review"
UNDER_REVIEW = "under_review"
DOCUMENTS_REQUESTED = "documents_requested"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"

STATES = (
    State(PENDING_REVIEW, "Pending review", "Received, waiting for a reviewer"),
    State(UNDER_REVIEW, "Under review", "A reviewer is looking at your application"),
    State(DOCUMENTS_REQUESTED, "Documents requested", "We need more documents from you"),
    State(
        APPROVED,
        "Approved",
        "Approved: check your email to activate your supplier account",
        accepts_documents=False,
    ),
    State(REJECTED, "Rejected", "Not approved", active=False, terminal=True),
    State(WITHDRAWN, "Withdrawn", "Withdrawn at your request", active=False, terminal=True),
)
OPEN = frozenset({PENDING_REVIEW, UNDER_REVIEW, DOCUMENTS_REQUESTED})


def _text(ctx: GuardContext, key: str) -> str:
    value = ctx.params.get(key)
    return value.strip() if isinstance(value, str) else ""


def needs_requirements(ctx: GuardContext) -> str | None:
    codes = ctx.params.get("requirement_codes") or ()
    if not codes:
        return "name at least one document to request"
    unknown = sorted(set(codes) - ctx.facts.known_requirements)
    if unknown:
        return "unknown document requirements: " + ", ".join(unknown)
    return None


def needs_message(ctx: GuardContext) -> str | None:
    return None if _text(ctx, "message") else "write a message for the applicant"


def needs_requested_uploads(ctx: GuardContext) -> str | None:
    missing = sorted(ctx.facts.requested_documents - ctx.facts.uploaded_since_request)
    return (
        ("upload every requested document first; missing: " + ", ".join(missing))
        if missing
        else None
    )


def needs_verified_documents(ctx: GuardContext) -> str | None:
    reviews = ctx.facts.latest_reviews
    missing = sorted(c for c in ctx.facts.required_documents if c not in reviews)
    unverified = sorted(
        c
        for c in ctx.facts.required_documents
        if c in reviews and reviews[c] is not ReviewStatus.VERIFIED
    )
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if unverified:
        problems.append("not verified: " + ", ".join(unverified))
    return (
        "every required document must be present and verified; " + "; ".join(problems)
        if problems
        else None
    )


def needs_reason_code(ctx: GuardContext) -> str | None:
    code = _text(ctx, "reason_code")
    if code in REJECTION_REASONS:
        return None
    return "choose a reason: " + ", ".join(REJECTION_REASONS)


def no_conflict_of_interest(ctx: GuardContext) -> str | None:
    if ctx.actor.user_id is not None and ctx.actor.user_id in ctx.facts.conflicted_staff:
        return "you declared a conflict of interest with this applicant"
    return None


def second_approver(ctx: GuardContext) -> str | None:
    if ctx.facts.first_approver and ctx.actor.label == ctx.facts.first_approver:
        return "you gave the first approval; another approver must confirm it"
    return None


def not_the_reviewer(ctx: GuardContext) -> str | None:
    reviewed = ctx.actor.label in ctx.facts.review_actors or (
        ctx.actor.user_id is not None and ctx.actor.user_id == ctx.application.assigned_reviewer_id
    )
    return "you reviewed this application; someone else must approve it" if reviewed else None


def require_two_approvers(builder: WorkflowBuilder, *, approver_not_reviewer: bool = False) -> None:
    """Make approval take two people: `approve` becomes the first sign-off (to
    `approval_pending`) and `confirm_approval`, by someone else, approves; `return_to_review`
    sends it back with a comment. With `approver_not_reviewer`, neither sign-off may come from
    the application's reviewer or anyone who started its review or requested documents.

    The default workflow calls this when GCX_FOUR_EYES is on; a programme's plugin may call it
    from its own `gcx_register_workflow` (after the default's) to require it regardless.
    """
    builder.add_state(
        State(
            APPROVAL_PENDING,
            "Awaiting second approval",
            "A reviewer is looking at your application",
            accepts_documents=False,
        )
    )
    first = builder.transition("approve")
    effects = tuple(e for e in first.effects if e != EFFECT_CREATE_SUPPLIER_ACCOUNT)
    builder.replace_transition(
        attrs.evolve(first, target=APPROVAL_PENDING, effects=effects, label="Approve (first)")
    )
    builder.add_transition(
        Transition(
            "confirm_approval",
            frozenset({APPROVAL_PENDING}),
            APPROVED,
            "approve",
            effects=(EFFECT_CREATE_SUPPLIER_ACCOUNT,),
            label="Confirm approval",
        )
    )
    builder.add_transition(
        Transition(
            "return_to_review",
            frozenset({APPROVAL_PENDING}),
            UNDER_REVIEW,
            "approve",
            label="Send back to review",
        )
    )
    builder.add_sources("reject", [APPROVAL_PENDING])
    builder.add_sources("withdraw", [APPROVAL_PENDING])
    builder.add_guard("confirm_approval", "documents", needs_verified_documents, precondition=True)
    builder.add_guard("confirm_approval", "four_eyes", second_approver, precondition=True)
    builder.add_guard("return_to_review", "comment", needs_return_comment)
    for action in ("confirm_approval", "return_to_review"):
        builder.add_guard(
            action, "conflict_of_interest", no_conflict_of_interest, precondition=True
        )
    if approver_not_reviewer:
        for action in ("approve", "confirm_approval"):
            builder.add_guard(action, "not_the_reviewer", not_the_reviewer, precondition=True)


def needs_return_comment(ctx: GuardContext) -> str | None:
    return None if _text(ctx, "comment") else "say why it goes back to review"


def needs_comment(ctx: GuardContext) -> str | None:
    return None if _text(ctx, "comment") else "say why the application is reopened"


@hookimpl(tryfirst=True)
def gcx_register_workflow(builder: WorkflowBuilder) -> None:
    for state in STATES:
        builder.add_state(state)
    for transition in (
        Transition("submit", frozenset({None}), PENDING_REVIEW, APPLICANT, label="Submit"),
        Transition(
            "start_review",
            frozenset({PENDING_REVIEW}),
            UNDER_REVIEW,
            "review",
            effects=(EFFECT_ASSIGN_REVIEWER,),
            label="Start review",
        ),
        Transition(
            "request_documents",
            frozenset({UNDER_REVIEW}),
            DOCUMENTS_REQUESTED,
            "review",
            effects=(EFFECT_OPEN_DOCUMENT_REQUEST,),
            label="Request documents",
        ),
        Transition(
            "resubmit_documents",
            frozenset({DOCUMENTS_REQUESTED}),
            UNDER_REVIEW,
            APPLICANT,
            effects=(EFFECT_CLOSE_DOCUMENT_REQUEST,),
            label="Resubmit documents",
        ),
        Transition(
            "approve",
            frozenset({UNDER_REVIEW}),
            APPROVED,
            "approve",
            effects=(EFFECT_CREATE_SUPPLIER_ACCOUNT,),
            label="Approve",
        ),
        Transition("reject", OPEN, REJECTED, "review", label="Reject"),
        Transition("withdraw", OPEN, WITHDRAWN, APPLICANT, label="Withdraw"),
        # Taken by the system when the deadline for documents passes; no role holds "system".
        Transition(
            "expire",
            frozenset({DOCUMENTS_REQUESTED}),
            WITHDRAWN,
            SYSTEM,
            label="Withdraw as expired",
        ),
        Transition(
            "reopen", frozenset({REJECTED, WITHDRAWN}), UNDER_REVIEW, "admin", label="Reopen"
        ),
    ):
        builder.add_transition(transition)
    builder.add_guard("request_documents", "requirement_codes", needs_requirements)
    builder.add_guard("request_documents", "message", needs_message)
    builder.add_guard("resubmit_documents", "documents", needs_requested_uploads, precondition=True)
    builder.add_guard("approve", "documents", needs_verified_documents, precondition=True)
    builder.add_guard("reject", "reason_code", needs_reason_code)
    builder.add_guard("reject", "message", needs_message)
    builder.add_guard("reopen", "comment", needs_comment)
    for action in ("start_review", "request_documents", "approve", "reject"):
        builder.add_guard(
            action, "conflict_of_interest", no_conflict_of_interest, precondition=True
        )
    settings = builder.settings
    if settings is not None and settings.four_eyes:
        require_two_approvers(builder, approver_not_reviewer=settings.approver_not_reviewer)
    elif settings is not None and settings.approver_not_reviewer:
        builder.add_guard("approve", "not_the_reviewer", not_the_reviewer, precondition=True)


@hookimpl(tryfirst=True)
def gcx_deadline_policies(settings: Any) -> list[DeadlinePolicy]:
    """The defaults: documents due within GCX_DOCUMENTS_DEADLINE_DAYS of being asked for
    (reminders to the applicant, then withdrawal as expired), and a review target of
    GCX_REVIEW_TARGET_DAYS working days for a new application (a reminder to its reviewer,
    then an alert to the reviewer and the admins)."""
    return [
        DeadlinePolicy(
            DOCUMENTS_REQUESTED,
            "documents_due",
            settings.documents_deadline_days,
            reminders=tuple(
                Reminder(days, (TO_APPLICANT,), "documents_reminder")
                for days in settings.documents_reminder_days
            ),
            action="expire",
            params={"reason_code": "expired"},
        ),
        DeadlinePolicy(
            PENDING_REVIEW,
            "review_target",
            settings.review_target_days,
            working_days=True,
            reminders=tuple(
                Reminder(days, (ASSIGNEE,), "review_due") for days in settings.review_reminder_days
            ),
            alert_to=(ASSIGNEE, ADMINS),
            alert_template="review_overdue",
        ),
    ]


@hookimpl
def gcx_process_services(gcx: Any, role: str) -> Any:
    """As each process starts: name the statuses that hold applications but that no loaded
    plugin defines (a plugin disabled or uninstalled while applications sat in its state)."""
    return _warn_about_unknown_statuses(gcx)


@contextlib.asynccontextmanager
async def _warn_about_unknown_statuses(gcx: Any) -> AsyncIterator[None]:
    from gcx_core.services.dashboard import unknown_statuses
    from gcx_core.storage.database import database_unavailable

    try:
        found = await unknown_statuses(gcx)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        found = {}  # the database's own outage is reported where requests meet it
    for status, count in found.items():
        log.warning(
            "%d application(s) in status %r, which no installed plugin defines: they are "
            "shown as unknown and no action applies to them until that plugin is loaded again",
            count,
            status,
        )
    yield
