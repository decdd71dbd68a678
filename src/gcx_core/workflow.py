"""The application workflow: states, a frozen transition table and a pure `apply`.

Nothing here does I/O or calls hooks. Services gather the facts guards need (documents,
requests), call `apply`, and persist what it returns. Plugins extend the table through a
`WorkflowBuilder` handed to the `gcx_register_workflow` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from gcx_core.entities import Actor, ActorKind, Application, ReviewStatus
from gcx_core.exceptions import (
    GuardFailedError,
    InvalidTransitionError,
    PermissionDeniedError,
    PluginError,
    UnknownStateError,
)

# The permission an applicant's own actions need; staff permissions come from their role.
APPLICANT = "applicant"
# The permission of actions only the system takes (a deadline's outcome): no role holds it.
SYSTEM = "system"

# Named side effects services know how to carry out; a transition lists the ones it wants.
EFFECT_ASSIGN_REVIEWER = "assign_reviewer"
EFFECT_OPEN_DOCUMENT_REQUEST = "open_document_request"
EFFECT_CLOSE_DOCUMENT_REQUEST = "close_document_request"
EFFECT_CREATE_SUPPLIER_ACCOUNT = "create_supplier_account"
KNOWN_EFFECTS = frozenset(
    {
        EFFECT_ASSIGN_REVIEWER,
        EFFECT_OPEN_DOCUMENT_REQUEST,
        EFFECT_CLOSE_DOCUMENT_REQUEST,
        EFFECT_CREATE_SUPPLIER_ACCOUNT,
    }
)


@attrs.frozen
class State:
    name: str
    label: str
    public_label: str = ""
    # An active application holds its email and TIN: nobody may submit another with them.
    active: bool = True
    terminal: bool = False
    # Whether applicants may still send documents in this state (not once approved, say).
    accepts_documents: bool = True

    @property
    def open_for_documents(self) -> bool:
        """An application in this state takes uploads from its applicant."""
        return self.active and not self.terminal and self.accepts_documents


@attrs.frozen
class Facts:
    """What guards may know beyond the application itself, gathered by the service."""

    required_documents: frozenset[str] = frozenset()
    known_requirements: frozenset[str] = frozenset()
    latest_reviews: Mapping[str, ReviewStatus] = attrs.field(factory=dict)
    requested_documents: frozenset[str] = frozenset()
    uploaded_since_request: frozenset[str] = frozenset()
    conflicted_staff: frozenset[int] = frozenset()
    # Who decided so far (staff labels from the status changes), for two-person rules: the
    # one who gave the standing first approval, and those who took review actions on it.
    first_approver: str = ""
    review_actors: frozenset[str] = frozenset()


@attrs.frozen
class GuardContext:
    application: Application
    action: str
    actor: Actor
    params: Mapping[str, Any]
    facts: Facts


# A guard returns None when the transition may go ahead, or a sentence saying why not.
Guard = Callable[[GuardContext], str | None]


@attrs.frozen
class NamedGuard:
    """A guard under its name. A `precondition` looks only at the application and its facts
    (documents verified, say), never at the form's parameters: pages ask it before offering
    the action, and show its refusal instead of a button that would only be refused."""

    name: str
    check: Guard
    precondition: bool = False


@attrs.frozen
class Transition:
    action: str
    sources: frozenset[str | None]
    target: str
    permission: str
    guards: tuple[NamedGuard, ...] = ()
    effects: tuple[str, ...] = ()
    label: str = ""


@attrs.frozen
class TransitionEvent:
    """What a transition did; fired through hooks after its transaction commits."""

    action: str
    application_id: int
    tracking_code: str
    from_status: str | None
    to_status: str
    actor: Actor
    at: datetime
    params: Mapping[str, Any] = attrs.field(factory=dict)
    status_change_id: int | None = None


@attrs.frozen
class Workflow:
    states: Mapping[str, State]
    transitions: Mapping[str, Transition]
    # status -> what an applicant may try there; filled as statuses are asked about.
    _for_applicant: dict[str | None, frozenset[str]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def state(self, name: str) -> State:
        """The state called `name`; a status no loaded plugin defines (its plugin disabled or
        uninstalled while applications sat in it) is "<name> (unknown status)", holds its
        email and TIN, and takes no documents and no action."""
        found = self.states.get(name)
        if found is None:
            return State(
                name,
                f"{name} (unknown status)",
                public_label="Being processed",
                accepts_documents=False,
            )
        return found

    def actions_from(self, status: str | None) -> list[Transition]:
        return [t for t in self.transitions.values() if status in t.sources]

    def waits(self, status: str) -> bool:
        """Whether an application in this status waits on someone: not a terminal status, and
        one some action leads out of (approved, say, waits on nobody)."""
        state = self.states.get(status)
        return state is not None and not state.terminal and bool(self.actions_from(status))

    @property
    def waiting(self) -> list[str]:
        """The statuses that wait on someone (`waits`), in registration order."""
        return [name for name in self.states if self.waits(name)]

    def allowed_actions(self, application: Application, actor: Actor) -> list[str]:
        """Actions the actor may try now; guards are not run (they may need parameters)."""
        return [
            t.action
            for t in self.actions_from(application.status or None)
            if _permitted(actor, t.permission)
        ]

    def applicant_actions(self, status: str | None) -> frozenset[str]:
        """`allowed_actions` for an applicant, which depends on the status alone; remembered
        per status (the public status page asks on every lookup)."""
        found = self._for_applicant.get(status)
        if found is None:
            applicant = Actor.applicant()
            found = frozenset(
                t.action
                for t in self.actions_from(status or None)
                if _permitted(applicant, t.permission)
            )
            self._for_applicant[status] = found
        return found


def unmet_preconditions(
    workflow: Workflow, application: Application, action: str, actor: Actor, facts: Facts
) -> dict[str, str]:
    """What the action's precondition guards say against it now, by guard name (empty when
    nothing stands in the way before the form is filled in)."""
    transition = workflow.transitions[action]
    ctx = GuardContext(application, action, actor, {}, facts)
    return {
        g.name: msg
        for g in transition.guards
        if g.precondition and (msg := g.check(ctx)) is not None
    }


def _permitted(actor: Actor, permission: str) -> bool:
    if actor.kind is ActorKind.SYSTEM:
        return True
    if permission == APPLICANT:
        return actor.kind is ActorKind.APPLICANT
    return actor.kind is ActorKind.STAFF and actor.can(permission)


def apply(
    workflow: Workflow,
    application: Application,
    action: str,
    actor: Actor,
    *,
    now: datetime,
    params: Mapping[str, Any] | None = None,
    facts: Facts | None = None,
) -> tuple[Application, TransitionEvent]:
    """Decide a transition and return the changed application and the event describing it.

    An application not yet submitted has the empty status. Raises InvalidTransitionError,
    PermissionDeniedError or GuardFailedError; never returns a half-applied result.
    """
    params = params or {}
    current = application.status or None
    if current is not None and current not in workflow.states:
        raise UnknownStateError(current, action)
    transition = workflow.transitions.get(action)
    if transition is None or current not in transition.sources:
        raise InvalidTransitionError(current, action)
    if not _permitted(actor, transition.permission):
        raise PermissionDeniedError(f"{actor.label or actor.kind} may not {action}")
    ctx = GuardContext(application, action, actor, params, facts or Facts())
    reasons = {g.name: msg for g in transition.guards if (msg := g.check(ctx)) is not None}
    if reasons:
        raise GuardFailedError(action, reasons)
    changes: dict[str, Any] = {
        "status": transition.target,
        "version": application.version + 1,
        "updated_at": now,
        "status_changed_at": now,
    }
    if EFFECT_ASSIGN_REVIEWER in transition.effects and actor.user_id is not None:
        changes["assigned_reviewer_id"] = actor.user_id
    event = TransitionEvent(
        action=action,
        application_id=application.id,
        tracking_code=application.tracking_code,
        from_status=current,
        to_status=transition.target,
        actor=actor,
        at=now,
        params=MappingProxyType(dict(params)),
    )
    return attrs.evolve(application, **changes), event


# The state a two-approver workflow puts an application in between its two sign-offs.
APPROVAL_PENDING = "approval_pending"

# Guards that read `Facts.first_approver` or `Facts.review_actors`: the service gathers the
# application's status changes only for a workflow that has one of them.
HISTORY_GUARDS = frozenset({"four_eyes", "not_the_reviewer"})


class WorkflowBuilder:
    """Collects states, transitions and guards from plugins, then freezes them.

    `settings` is the deployment's `gcx_core.settings.Settings` (None when a workflow is
    built without one, as tests may): a plugin may shape the workflow by it.
    """

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self._states: dict[str, State] = {}
        self._transitions: dict[str, Transition] = {}

    def add_state(self, state: State) -> None:
        if state.name in self._states:
            raise PluginError(f"workflow state {state.name!r} is registered twice")
        self._states[state.name] = state

    def add_transition(self, transition: Transition) -> None:
        if transition.action in self._transitions:
            raise PluginError(f"workflow action {transition.action!r} is registered twice")
        unknown = set(transition.effects) - KNOWN_EFFECTS
        if unknown:
            raise PluginError(
                f"action {transition.action!r} names unknown effects {sorted(unknown)}"
            )
        self._transitions[transition.action] = transition

    def add_guard(
        self, action: str, name: str, check: Guard, *, precondition: bool = False
    ) -> None:
        """Add a check `action` must pass. With `precondition`, the check reads only the
        application and its facts, not the action's parameters (see NamedGuard)."""
        transition = self._require(action)
        self._transitions[action] = attrs.evolve(
            transition, guards=(*transition.guards, NamedGuard(name, check, precondition))
        )

    def add_sources(self, action: str, sources: Iterable[str]) -> None:
        transition = self._require(action)
        self._transitions[action] = attrs.evolve(
            transition, sources=transition.sources | frozenset(sources)
        )

    def remove_sources(self, action: str, sources: Iterable[str]) -> None:
        """Stop `action` from applying in these states (approve only after an inspection,
        say: remove `under_review` and add the inspection's state)."""
        transition = self._require(action)
        missing = set(sources) - transition.sources
        if missing:
            raise PluginError(f"action {action!r} does not apply from {sorted(missing)}")
        self._transitions[action] = attrs.evolve(
            transition, sources=transition.sources - frozenset(sources)
        )

    def remove_guard(self, action: str, name: str) -> None:
        transition = self._require(action)
        kept = tuple(g for g in transition.guards if g.name != name)
        if len(kept) == len(transition.guards):
            raise PluginError(f"action {action!r} has no guard {name!r}")
        self._transitions[action] = attrs.evolve(transition, guards=kept)

    def replace_transition(self, transition: Transition) -> None:
        """Put `transition` in place of the action of the same name (its guards included:
        copy the old ones with `attrs.evolve` to keep them)."""
        old = self._transitions.pop(self._require(transition.action).action)
        try:
            self.add_transition(transition)
        except PluginError:
            self._transitions[old.action] = old
            raise

    def remove_transition(self, action: str) -> None:
        self._require(action)
        del self._transitions[action]

    def transition(self, action: str) -> Transition:
        """The transition registered so far under `action` (to read before changing it)."""
        return self._require(action)

    def _require(self, action: str) -> Transition:
        try:
            return self._transitions[action]
        except KeyError:
            raise PluginError(f"no workflow action {action!r} to extend") from None

    def build(self) -> Workflow:
        for t in self._transitions.values():
            for name in (*t.sources, t.target):
                if name is not None and name not in self._states:
                    raise PluginError(f"action {t.action!r} refers to unknown state {name!r}")
        if not any(None in t.sources for t in self._transitions.values()):
            raise PluginError("the workflow has no action that creates an application")
        return Workflow(
            MappingProxyType(dict(self._states)), MappingProxyType(dict(self._transitions))
        )
