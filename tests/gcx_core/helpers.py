"""Shared builders for gcx_core tests."""

from __future__ import annotations

from datetime import UTC, datetime

from gcx_core.entities import Actor, ActorKind, Application, Role
from gcx_core.testing import make_submission
from gcx_core.validation import validate_submission

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
APPLICANT = Actor.applicant("192.0.2.1")
VIEWER = Actor(ActorKind.STAFF, 1, Role.VIEWER, "viewer@x.test")
REVIEWER = Actor(ActorKind.STAFF, 2, Role.REVIEWER, "reviewer@x.test")
ADMIN = Actor(ActorKind.STAFF, 3, Role.ADMIN, "admin@x.test")
SUPPLIER = Actor(ActorKind.SUPPLIER, 4, Role.SUPPLIER, "supplier@x.test")


def application(
    status: str = "", version: int = 0, commodities: tuple[str, ...] = ("maize",)
) -> Application:
    draft = validate_submission(make_submission(commodities=list(commodities)), now=NOW)
    return Application(
        id=7,
        tracking_code="GCX-AAAA-BBBB-CCCC",
        status=status,
        version=version,
        business=draft.business,
        contact=draft.contact,
        commodities=draft.commodities,
        warehouse_location=draft.warehouse_location,
        team_members=draft.team_members,
        next_of_kin=draft.next_of_kin,
        primary_account=draft.primary_account,
        declaration=draft.declaration,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )
