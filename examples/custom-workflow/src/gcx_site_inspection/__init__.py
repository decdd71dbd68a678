"""gcx-site-inspection: a site visit between review and approval.

Adds the `site_inspection` state, the `send_to_inspection` action (a back-office button),
an inspection report requirement, a guard that approval waits for that report to be
verified, and an email telling the applicant a visit is being arranged. Approval no longer
applies from `under_review`: only after the inspection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcx_core.entities import (
    Application,
    DocumentRequirement,
    NotificationDraft,
    ReviewStatus,
    User,
)
from gcx_core.plugins import hookimpl
from gcx_core.workflow import GuardContext, State, Transition, TransitionEvent, WorkflowBuilder

INSPECTION = "site_inspection"
SEND = "send_to_inspection"
REPORT = "inspection_report"


def report_verified(ctx: GuardContext) -> str | None:
    """Approval waits for the inspector's report, uploaded and verified."""
    if ctx.facts.latest_reviews.get(REPORT) != ReviewStatus.VERIFIED:
        return "the site inspection report must be uploaded and verified first"
    return None


@hookimpl
def gcx_register_workflow(builder: WorkflowBuilder) -> None:
    builder.add_state(
        State(INSPECTION, "Site inspection", public_label="A visit to your site is being arranged")
    )
    builder.add_transition(
        Transition(
            SEND, frozenset({"under_review"}), INSPECTION, "review", label="Send to inspection"
        )
    )
    builder.remove_sources("approve", ["under_review"])
    for action in ("approve", "reject", "withdraw"):
        builder.add_sources(action, [INSPECTION])
    builder.add_guard("approve", REPORT, report_verified, precondition=True)


@hookimpl
def gcx_register_document_requirements(register: Any) -> None:
    # Not asked of applicants when they apply: the inspector's report comes later, uploaded
    # by a reviewer from the back office (or by the applicant from the track page, once
    # staff ask for it with "Request documents").
    register(
        DocumentRequirement(
            REPORT, "Site inspection report", "The inspector's signed report", required=False
        )
    )


@hookimpl
def gcx_collect_notifications(
    event: TransitionEvent, application: Application, staff: list[User]
) -> list[NotificationDraft] | None:
    if event.action != SEND:
        return None
    context = {
        "business_name": application.business.name,
        "tracking_code": application.tracking_code,
        "application_id": application.id,
        "status": event.to_status,
        "previous_status": event.from_status,
        "warehouse_location": application.warehouse_location,
    }
    return [NotificationDraft(INSPECTION, application.contact.email, context)]


@hookimpl(optionalhook=True)  # gcx_notify's hook: absent when gcx_notify is disabled
def gcx_notify_template_dirs() -> list[str]:
    return [str(Path(__file__).parent / "templates")]
