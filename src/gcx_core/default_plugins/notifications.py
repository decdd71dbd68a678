"""Who hears about each default transition, registered through `gcx_collect_notifications`.

Contexts carry only what the message needs: never internal notes, never secrets. Links are
built at render time from the deployment's base URL.
"""

from __future__ import annotations

from typing import Any

from gcx_core.entities import Application, NotificationDraft, User
from gcx_core.events import ApplicationAssigned
from gcx_core.plugins import hookimpl
from gcx_core.reference import REJECTION_REASONS
from gcx_core.storage import accounts as user_rows
from gcx_core.workflow import APPROVAL_PENDING, TransitionEvent

APPLICANT_MESSAGES = {
    "submit": "application_received",
    "start_review": "status_changed",
    "request_documents": "documents_requested",
    "approve": "approved",
    "confirm_approval": "approved",
    "reject": "rejected",
    "withdraw": "withdrawal_confirmed",
    "expire": "application_expired",
    "reopen": "reopened",
}
STAFF_MESSAGES = {
    "submit": "new_application",
    "resubmit_documents": "documents_resubmitted",
    "withdraw": "withdrawn",
    "return_to_review": "approval_returned",
}


def _reviewers(application: Application, staff: list[User], assigned_only: bool) -> list[User]:
    if assigned_only and application.assigned_reviewer_id is not None:
        assigned = [u for u in staff if u.id == application.assigned_reviewer_id]
        if assigned:
            return assigned
    return [u for u in staff if u.can("review")]


@hookimpl(tryfirst=True)
def gcx_collect_notifications(
    event: TransitionEvent, application: Application, staff: list[User]
) -> list[NotificationDraft]:
    base: dict[str, Any] = {
        "business_name": application.business.name,
        "tracking_code": application.tracking_code,
        "application_id": application.id,
        "status": event.to_status,
        "previous_status": event.from_status,
    }
    drafts: list[NotificationDraft] = []
    kind = APPLICANT_MESSAGES.get(event.action)
    if event.to_status == APPROVAL_PENDING:
        # A first approval: the applicant hears once it is confirmed; approvers hear now.
        kind = None
        drafts.extend(
            NotificationDraft("approval_requested", u.email, dict(base))
            for u in staff
            if u.can("approve") and u.email != event.actor.label
        )
    if kind is not None:
        context = dict(base)
        if event.action == "request_documents":
            context["requirements"] = list(event.params.get("requirements", ()))
            context["message"] = event.params.get("message", "")
        elif event.action == "reject":
            code = event.params.get("reason_code", "other")
            context["reason_code"] = code
            context["reason"] = REJECTION_REASONS.get(code, code)
            context["message"] = event.params.get("message", "")
        elif event.action in ("approve", "confirm_approval"):
            context["activation_selector"] = event.params.get("activation_selector")
        drafts.append(NotificationDraft(kind, application.contact.email, context))
    kind = STAFF_MESSAGES.get(event.action)
    if kind is not None:
        # A new application goes to every reviewer, or only to the one it was given to.
        assigned_only = event.action != "submit" or application.assigned_reviewer_id is not None
        for user in _reviewers(application, staff, assigned_only=assigned_only):
            drafts.append(NotificationDraft(kind, user.email, dict(base)))
    return drafts


@hookimpl(tryfirst=True)
async def gcx_queue_for_event(
    event: Any, application: Application | None, conn: Any
) -> list[NotificationDraft] | None:
    """A reviewer given an application by someone else hears about it."""
    if not isinstance(event, ApplicationAssigned) or application is None:
        return None
    if event.reviewer_id is None or event.reviewer_id == event.actor_id:
        return None  # unassigned, or taken by the reviewer themself
    reviewer = await user_rows.get(conn, event.reviewer_id)
    if reviewer is None or not reviewer.is_active:
        return None
    context = {
        "business_name": application.business.name,
        "tracking_code": application.tracking_code,
        "application_id": application.id,
        "status": application.status,
    }
    return [NotificationDraft("application_assigned", reviewer.email, context)]
