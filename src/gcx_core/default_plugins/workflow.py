"""The default workflow of DESIGN §4, registered through `gcx_register_workflow`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from gcx_core.entities import ReviewStatus
from gcx_core.plugins import hookimpl
from gcx_core.reference import REJECTION_REASONS
from gcx_core.workflow import (
    APPLICANT,
    EFFECT_ASSIGN_REVIEWER,
    EFFECT_CLOSE_DOCUMENT_REQUEST,
    EFFECT_CREATE_SUPPLIER_ACCOUNT,
    EFFECT_OPEN_DOCUMENT_REQUEST,
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
