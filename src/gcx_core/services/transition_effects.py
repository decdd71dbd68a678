"""What guards need to know, and the named side effects transitions ask for."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import attrs

from gcx_core.entities import Application
from gcx_core.services import accounts
from gcx_core.storage import accounts as user_rows
from gcx_core.storage import applications as app_rows
from gcx_core.storage import documents as doc_rows
from gcx_core.storage.database import Connection
from gcx_core.storage.tables import document_requests
from gcx_core.system import Gcx
from gcx_core.workflow import (
    APPROVAL_PENDING,
    EFFECT_CLOSE_DOCUMENT_REQUEST,
    EFFECT_CREATE_SUPPLIER_ACCOUNT,
    EFFECT_OPEN_DOCUMENT_REQUEST,
    HISTORY_GUARDS,
    Facts,
    Transition,
    TransitionEvent,
)


async def gather_facts(gcx: Gcx, conn: Connection, app: Application, action: str) -> Facts:
    applicable = gcx.requirements_for(app)
    versions = await doc_rows.versions_of(conn, app.id)
    latest = doc_rows.latest_versions(versions)
    request = await doc_rows.open_request(conn, app.id)
    requested: frozenset[str] = frozenset()
    uploaded_since: frozenset[str] = frozenset()
    if request is not None:
        requested = frozenset(request.requirement_codes)
        uploaded_since = frozenset(
            v.requirement_code for v in versions if v.uploaded_at >= request.requested_at
        )
    return Facts(
        required_documents=frozenset(r.code for r in applicable if r.required),
        known_requirements=frozenset(r.code for r in applicable),
        latest_reviews=MappingProxyType({c: v.review_status for c, v in latest.items()}),
        requested_documents=requested,
        uploaded_since_request=uploaded_since,
        conflicted_staff=await user_rows.conflicted_staff(conn, app),
        **(await _deciders(conn, app) if _needs_history(gcx) else {}),
    )


REVIEW_ACTIONS = frozenset({"start_review", "request_documents"})


def _needs_history(gcx: Gcx) -> bool:
    return any(
        g.name in HISTORY_GUARDS for t in gcx.workflow.transitions.values() for g in t.guards
    )


async def _deciders(conn: Connection, app: Application) -> dict[str, Any]:
    """Who gave the standing first approval, and who took review actions."""
    changes = await app_rows.status_changes_of(conn, app.id)
    first = ""
    for change in changes:
        if change.to_status == APPROVAL_PENDING:
            first = change.actor
        elif change.from_status == APPROVAL_PENDING:
            first = ""  # sent back, or decided: a new round needs a new first approval
    return {
        "first_approver": first,
        "review_actors": frozenset(c.actor for c in changes if c.action in REVIEW_ACTIONS),
    }


async def carry_out(
    gcx: Gcx,
    conn: Connection,
    transition: Transition,
    app: Application,
    event: TransitionEvent,
) -> TransitionEvent:
    """Run the transition's effects; returns the event with what messages need to mention."""
    extra: dict[str, Any] = {}
    if EFFECT_OPEN_DOCUMENT_REQUEST in transition.effects:
        codes = list(event.params.get("requirement_codes", ()))
        await conn.execute(
            document_requests.insert().values(
                application_id=app.id,
                requirement_codes=codes,
                message=event.params.get("message", ""),
                requested_by=event.actor.user_id,
                requested_at=event.at,
            )
        )
        extra["requirements"] = [{"code": c, "title": gcx.requirements[c].title} for c in codes]
    if EFFECT_CLOSE_DOCUMENT_REQUEST in transition.effects:
        await conn.execute(
            document_requests.update()
            .where(
                document_requests.c.application_id == app.id,
                document_requests.c.fulfilled_at.is_(None),
            )
            .values(fulfilled_at=event.at)
        )
    if EFFECT_CREATE_SUPPLIER_ACCOUNT in transition.effects:
        extra["activation_selector"] = await accounts.open_supplier_account(
            gcx, conn, app, event.actor, event.at
        )
    if not extra:
        return event
    return attrs.evolve(event, params=MappingProxyType({**event.params, **extra}))


__all__ = ["carry_out", "gather_facts"]
