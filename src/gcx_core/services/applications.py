"""Move applications through the workflow, one transaction per change.

Each change writes, in one transaction: the application (version + 1), a status change, an
audit entry, the outbox rows of its notifications and the dashboard counters. Hooks hear about
it only after the commit. Submissions live in services.submit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError

from gcx_core.entities import Actor, Application
from gcx_core.exceptions import ConflictError, NotFoundError, ValidationError
from gcx_core.services import transition_effects
from gcx_core.services.transition_writes import Recorded, duplicate_from, record_many
from gcx_core.storage import applications as app_rows
from gcx_core.storage.database import Connection
from gcx_core.system import Gcx
from gcx_core.tracking import normalise_tracking_code
from gcx_core.workflow import Facts, apply, unmet_preconditions

_PARAM_LIMITS = {"message": 5000, "comment": 5000, "reason_code": 40}


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Trim and bound an action's parameters; unknown or malformed ones are field errors."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in (params or {}).items():
        if key in _PARAM_LIMITS:
            if not isinstance(value, str):
                errors[key] = "must be text"
            elif len(value.strip()) > _PARAM_LIMITS[key]:
                errors[key] = f"must be at most {_PARAM_LIMITS[key]} characters"
            else:
                cleaned[key] = value.strip()
        elif key == "requirement_codes":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                errors[key] = "must be a list of requirement codes"
            else:
                cleaned[key] = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        else:
            errors[key] = "unknown parameter"
    if errors:
        raise ValidationError(errors)
    return cleaned


async def resolve(conn: Connection, ref: int | str) -> Application:
    """Load by id (staff) or tracking code (applicant); unknown or malformed refs are NotFound."""
    if isinstance(ref, int):
        app = await app_rows.get(conn, ref)
    else:
        code = normalise_tracking_code(ref)
        app = await app_rows.get_by_tracking_code(conn, code) if code else None
    if app is None:
        raise NotFoundError("application", ref)
    return app


async def act(
    gcx: Gcx,
    ref: int | str,
    action: str,
    actor: Actor,
    *,
    expected_version: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> Application:
    """Apply a workflow action; a stale `expected_version` is a ConflictError, not an overwrite."""
    async with gcx.database.write() as conn:
        after, fired = await act_within(
            gcx, conn, ref, action, actor, expected_version=expected_version, params=params
        )
    await gcx.fire(fired)
    return after


async def act_within(
    gcx: Gcx,
    conn: Connection,
    ref: int | str,
    action: str,
    actor: Actor,
    *,
    expected_version: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[Application, Any]:
    """`act` inside a transaction the caller holds (with more writes of its own); returns the
    application after the change and what to fire once the transaction has committed."""
    cleaned = clean_params(params)
    before = await resolve(conn, ref)
    if expected_version is not None and expected_version != before.version:
        raise ConflictError("application", before.id, expected_version, before.version)
    (after,), (fired,) = await act_many_within(gcx, conn, [before], action, actor, cleaned)
    return after, fired


async def act_many_within(
    gcx: Gcx,
    conn: Connection,
    applications: list[Application],
    action: str,
    actor: Actor,
    params: Mapping[str, Any],
) -> tuple[list[Application], list[Any]]:
    """The same action on each of `applications` (as read in this transaction), with
    `params` already cleaned; every one passes its own guards, or nothing is written.

    Several at once (the deadline pass's expiries) write their status changes, audit entries,
    outbox rows and counters together. Returns the applications after the change and, per
    application, what to fire once the transaction has committed.
    """
    transition = gcx.workflow.transitions.get(action)
    recorded = []
    for before in applications:
        # Facts are for guards: a transition without any needs none.
        facts = (
            await transition_effects.gather_facts(gcx, conn, before, action)
            if transition is None or transition.guards
            else Facts()
        )
        gcx.plugins.hook.gcx_before_transition(
            application=before, action=action, actor=actor, params=dict(params)
        )
        after, event = apply(
            gcx.workflow, before, action, actor, now=gcx.now(), params=params, facts=facts
        )
        # Claim the version first: a concurrent writer fails here, before any side effect.
        try:
            updated = await app_rows.update(
                conn,
                after,
                before=before,
                active=gcx.workflow.state(after.status).active,
                was_active=gcx.workflow.state(before.status).active,
            )
        except IntegrityError as exc:
            raise duplicate_from(exc) from None
        if not updated:
            raise ConflictError(
                "application",
                before.id,
                before.version,
                await app_rows.current_version(conn, before.id),
            )
        event = await transition_effects.carry_out(
            gcx, conn, gcx.workflow.transitions[action], after, event
        )
        recorded.append(Recorded(before, after, event, actor))
    fired = await record_many(gcx, conn, recorded)
    return [r.after for r in recorded], fired


# Submitting lives in its own module; keep `applications.submit` as the obvious entry point.
from gcx_core.services.submit import submit  # noqa: E402

__all__ = ["act", "act_within", "clean_params", "resolve", "submit"]


async def blocked_actions(
    gcx: Gcx, app: Application, actor: Actor, actions: list[str]
) -> dict[str, dict[str, str]]:
    """Of `actions` (those the actor may take in this status), the ones a precondition guard
    refuses now, with its reasons: pages explain them instead of offering a button."""
    checked = [
        a for a in actions if any(g.precondition for g in gcx.workflow.transitions[a].guards)
    ]
    if not checked:
        return {}
    async with gcx.database.read() as conn:
        # The facts are the application's, whichever action asks: gathered once.
        facts = await transition_effects.gather_facts(gcx, conn, app, checked[0])
    blocked: dict[str, dict[str, str]] = {}
    for action in checked:
        reasons = unmet_preconditions(gcx.workflow, app, action, actor, facts)
        if reasons:
            blocked[action] = reasons
    return blocked
