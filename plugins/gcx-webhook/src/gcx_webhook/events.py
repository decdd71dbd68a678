"""Which domain events become webhook events, under which names, carrying what.

Payloads carry identifiers and states only: no tracking code (it opens the applicant's
page), no message or note written by staff, no contact details, no secret.
"""

from __future__ import annotations

from typing import Any

from gcx_core.entities import Application
from gcx_core.events import (
    ApplicationAssigned,
    DocumentExpired,
    DocumentReviewed,
    DocumentUploaded,
    NotificationDelivery,
)
from gcx_core.workflow import TransitionEvent, Workflow

DOCUMENT_EVENTS = {
    "verified": "document.verified",
    "rejected": "document.rejected",
    "pending": "document.review_undone",
}
FIXED_EVENTS = (
    "application.submitted",
    "application.assigned",
    "document.uploaded",
    *DOCUMENT_EVENTS.values(),
    "document.expired",
    "notification.dead",
)


def catalogue(workflow: Workflow) -> list[str]:
    """Every event type this deployment can send: one per state a transition leads to."""
    states = {t.target for t in workflow.transitions.values() if any(s for s in t.sources)}
    return sorted({*FIXED_EVENTS, *(f"application.{s}" for s in states)})


def describe(event: Any, application: Application | None) -> tuple[str, dict[str, Any]] | None:
    """The webhook event type and data for a domain event, or None for events not sent."""
    match event:
        case TransitionEvent():
            data: dict[str, Any] = {
                "application_id": event.application_id,
                "status": event.to_status,
                "previous_status": event.from_status or None,
                "action": event.action,
            }
            if application is not None:
                data["business_name"] = application.business.name
            reason = event.params.get("reason_code")
            if reason:
                data["reason_code"] = reason
            if not event.from_status:
                return "application.submitted", data
            return f"application.{event.to_status}", data
        case ApplicationAssigned():
            return "application.assigned", {
                "application_id": event.application_id,
                "reviewer_id": event.reviewer_id,
                "previous_reviewer_id": event.previous_reviewer_id,
            }
        case DocumentUploaded():
            return "document.uploaded", {
                "application_id": event.application_id,
                "document_id": event.document_id,
                "requirement": event.requirement_code,
                "version": event.version,
            }
        case DocumentReviewed():
            kind = DOCUMENT_EVENTS.get(event.review_status)
            if kind is None:
                return None
            return kind, {
                "application_id": event.application_id,
                "document_id": event.document_id,
                "requirement": event.requirement_code,
                "review_status": event.review_status,
            }
        case DocumentExpired():
            return "document.expired", {
                "application_id": event.application_id,
                "document_id": event.document_id,
                "requirement": event.requirement_code,
                "valid_until": event.valid_until.isoformat(),
            }
        case NotificationDelivery(status="dead") if event.channel != "webhook":
            # A webhook that died is in its subscriber's log; telling the same receivers
            # about it would only loop.
            return "notification.dead", {
                "notification_id": event.notification_id,
                "notification_type": event.type,
                "channel": event.channel,
                "attempts": event.attempts,
                "application_id": event.application_id,
            }
    return None
