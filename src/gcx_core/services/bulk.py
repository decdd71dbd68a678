"""One operation over many applications: each still goes through its own service call (its
own transaction, guards, audit entry, notifications), and each gets its own outcome."""

from __future__ import annotations

from typing import Any

import attrs

from gcx_core.entities import Actor
from gcx_core.exceptions import GcxError, PermissionDeniedError, ValidationError
from gcx_core.reference import REJECTION_REASONS
from gcx_core.services import applications, assignment
from gcx_core.system import Gcx

OPERATIONS = {"assign": "Assign", "start_review": "Start review", "reject": "Reject"}
MAX_ITEMS = 500


@attrs.frozen
class Outcome:
    application_id: int
    error: GcxError | None = None  # None: done

    @property
    def done(self) -> bool:
        return self.error is None


def check(operation: str, ids: list[int], params: dict[str, Any]) -> dict[str, Any]:
    """The operation's parameters, checked once for the whole set (ValidationError names the
    field): a bad reason or reviewer is refused before anything changes."""
    if operation not in OPERATIONS:
        raise ValidationError({"operation": "must be one of " + ", ".join(OPERATIONS)})
    if not ids:
        raise ValidationError({"id": "choose at least one application"})
    if len(ids) > MAX_ITEMS:
        raise ValidationError({"id": f"at most {MAX_ITEMS} applications at once"})
    if operation == "reject":
        message = str(params.get("message") or "").strip()
        code = str(params.get("reason_code") or "")
        errors = {}
        if code not in REJECTION_REASONS:
            errors["reason_code"] = "choose a reason: " + ", ".join(REJECTION_REASONS)
        if not message:
            errors["message"] = "write a message for the applicants"
        if errors:
            raise ValidationError(errors)
        return {"reason_code": code, "message": message}
    if operation == "assign":
        raw = params.get("reviewer_id")
        if raw in (None, ""):
            return {"reviewer_id": None}
        if not str(raw).isdigit():
            raise ValidationError({"reviewer_id": "choose a reviewer"})
        return {"reviewer_id": int(str(raw))}
    return {}


async def run(
    gcx: Gcx, actor: Actor, operation: str, ids: list[int], params: dict[str, Any]
) -> list[Outcome]:
    """Apply `operation` to each application in turn; a refusal stops only that one."""
    if not actor.can("review"):
        raise PermissionDeniedError("bulk actions need the review permission")
    checked = check(operation, ids, params)
    outcomes = []
    for app_id in dict.fromkeys(ids):
        try:
            if operation == "assign":
                await assignment.assign(gcx, app_id, checked["reviewer_id"], actor)
            else:
                await applications.act(gcx, app_id, operation, actor, params=checked)
        except GcxError as exc:
            outcomes.append(Outcome(app_id, exc))
        else:
            outcomes.append(Outcome(app_id))
    return outcomes
