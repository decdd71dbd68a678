"""The pure workflow: every transition, guard and refusal, and random walks through it."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcx_core.entities import Actor, ReviewStatus
from gcx_core.exceptions import (
    GuardFailedError,
    InvalidTransitionError,
    PermissionDeniedError,
    PluginError,
)
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.system import build_workflow
from gcx_core.workflow import Facts, State, Transition, WorkflowBuilder, apply

from .helpers import ADMIN, APPLICANT, NOW, REVIEWER, SUPPLIER, VIEWER, application

SYSTEM = Actor.system("deadline")
WORKFLOW = build_workflow(make_plugin_manager(load_entry_points=False))
REQUIRED = frozenset({"business_registration", "tax_clearance"})
ALL_VERIFIED = Facts(
    required_documents=REQUIRED,
    known_requirements=REQUIRED | {"vat_certificate"},
    latest_reviews={c: ReviewStatus.VERIFIED for c in REQUIRED},
)

# (action, from, to, actor, params, facts)
VALID = [
    ("submit", "", "pending_review", APPLICANT, {}, Facts()),
    ("start_review", "pending_review", "under_review", REVIEWER, {}, Facts()),
    (
        "request_documents",
        "under_review",
        "documents_requested",
        REVIEWER,
        {"requirement_codes": ["tax_clearance"], "message": "Please send it"},
        ALL_VERIFIED,
    ),
    (
        "resubmit_documents",
        "documents_requested",
        "under_review",
        APPLICANT,
        {},
        Facts(
            requested_documents=frozenset({"tax_clearance"}),
            uploaded_since_request=frozenset({"tax_clearance"}),
        ),
    ),
    ("approve", "under_review", "approved", REVIEWER, {}, ALL_VERIFIED),
    (
        "reject",
        "pending_review",
        "rejected",
        REVIEWER,
        {"reason_code": "ineligible", "message": "Not eligible"},
        Facts(),
    ),
    (
        "reject",
        "under_review",
        "rejected",
        ADMIN,
        {"reason_code": "other", "message": "No"},
        Facts(),
    ),
    (
        "reject",
        "documents_requested",
        "rejected",
        REVIEWER,
        {"reason_code": "incomplete_documents", "message": "Missing"},
        Facts(),
    ),
    ("withdraw", "pending_review", "withdrawn", APPLICANT, {}, Facts()),
    ("withdraw", "under_review", "withdrawn", APPLICANT, {}, Facts()),
    ("withdraw", "documents_requested", "withdrawn", APPLICANT, {}, Facts()),
    ("reopen", "rejected", "under_review", ADMIN, {"comment": "Appeal upheld"}, Facts()),
    ("reopen", "withdrawn", "under_review", ADMIN, {"comment": "Applicant asked"}, Facts()),
    ("expire", "documents_requested", "withdrawn", SYSTEM, {"reason_code": "expired"}, Facts()),
]


@pytest.mark.parametrize(("action", "source", "target", "actor", "params", "facts"), VALID)
def test_every_transition(action, source, target, actor, params, facts):
    before = application(source, version=3)
    after, event = apply(WORKFLOW, before, action, actor, now=NOW, params=params, facts=facts)
    assert after.status == target
    assert after.version == 4
    assert after.status_changed_at == NOW
    assert (event.action, event.from_status, event.to_status) == (action, source or None, target)
    assert event.actor is actor
    assert before.status == source, "apply must not change its input"


def test_start_review_assigns_the_reviewer():
    after, _ = apply(WORKFLOW, application("pending_review"), "start_review", REVIEWER, now=NOW)
    assert after.assigned_reviewer_id == REVIEWER.user_id


INVALID = [
    (status, action)
    for status in [*WORKFLOW.states, ""]
    for action in WORKFLOW.transitions
    if (status or None) not in WORKFLOW.transitions[action].sources
]


def test_valid_and_invalid_cover_the_whole_table():
    valid = {(source, action) for action, source, *_ in VALID}
    assert len(valid) + len(INVALID) == (len(WORKFLOW.states) + 1) * len(WORKFLOW.transitions)


@pytest.mark.parametrize(("status", "action"), INVALID)
def test_every_invalid_transition_names_state_and_action(status, action):
    with pytest.raises(InvalidTransitionError) as info:
        apply(WORKFLOW, application(status), action, ADMIN, now=NOW)
    assert info.value.action == action
    assert info.value.state == (status or None)
    assert action in str(info.value)


def test_unknown_action_is_invalid():
    with pytest.raises(InvalidTransitionError):
        apply(WORKFLOW, application("pending_review"), "teleport", ADMIN, now=NOW)


@pytest.mark.parametrize(
    ("action", "source", "actor"),
    [
        ("submit", "", REVIEWER),
        ("start_review", "pending_review", VIEWER),
        ("start_review", "pending_review", APPLICANT),
        ("start_review", "pending_review", SUPPLIER),
        ("approve", "under_review", VIEWER),
        ("reject", "under_review", APPLICANT),
        ("withdraw", "under_review", REVIEWER),
        ("resubmit_documents", "documents_requested", REVIEWER),
        ("reopen", "rejected", REVIEWER),
        ("reopen", "withdrawn", APPLICANT),
        # Only the system withdraws an application as expired (its deadline passed).
        ("expire", "documents_requested", ADMIN),
        ("expire", "documents_requested", APPLICANT),
    ],
)
def test_who_may_act(action, source, actor):
    with pytest.raises(PermissionDeniedError):
        apply(
            WORKFLOW,
            application(source),
            action,
            actor,
            now=NOW,
            facts=ALL_VERIFIED,
            params={
                "reason_code": "other",
                "message": "m",
                "comment": "c",
                "requirement_codes": ["tax_clearance"],
            },
        )


@pytest.mark.parametrize(
    ("action", "source", "params", "facts", "failing"),
    [
        (
            "request_documents",
            "under_review",
            {"message": "x"},
            ALL_VERIFIED,
            {"requirement_codes"},
        ),
        (
            "request_documents",
            "under_review",
            {"requirement_codes": ["nope"], "message": "x"},
            ALL_VERIFIED,
            {"requirement_codes"},
        ),
        (
            "request_documents",
            "under_review",
            {"requirement_codes": ["tax_clearance"]},
            ALL_VERIFIED,
            {"message"},
        ),
        (
            "request_documents",
            "under_review",
            {"requirement_codes": ["tax_clearance"], "message": "   "},
            ALL_VERIFIED,
            {"message"},
        ),
        (
            "resubmit_documents",
            "documents_requested",
            {},
            Facts(
                requested_documents=frozenset({"a", "b"}), uploaded_since_request=frozenset({"a"})
            ),
            {"documents"},
        ),
        ("approve", "under_review", {}, Facts(required_documents=REQUIRED), {"documents"}),
        (
            "approve",
            "under_review",
            {},
            Facts(
                required_documents=REQUIRED,
                latest_reviews={
                    "business_registration": ReviewStatus.VERIFIED,
                    "tax_clearance": ReviewStatus.REJECTED,
                },
            ),
            {"documents"},
        ),
        (
            "approve",
            "under_review",
            {},
            Facts(
                required_documents=REQUIRED,
                latest_reviews={
                    "business_registration": ReviewStatus.VERIFIED,
                    "tax_clearance": ReviewStatus.PENDING,
                },
            ),
            {"documents"},
        ),
        ("reject", "under_review", {"message": "x"}, Facts(), {"reason_code"}),
        (
            "reject",
            "under_review",
            {"reason_code": "made_up", "message": "x"},
            Facts(),
            {"reason_code"},
        ),
        ("reject", "under_review", {"reason_code": "other"}, Facts(), {"message"}),
        ("reject", "under_review", {}, Facts(), {"reason_code", "message"}),
        ("reopen", "rejected", {}, Facts(), {"comment"}),
    ],
)
def test_every_guard(action, source, params, facts, failing):
    actor = APPLICANT if action == "resubmit_documents" else ADMIN
    with pytest.raises(GuardFailedError) as info:
        apply(WORKFLOW, application(source), action, actor, now=NOW, params=params, facts=facts)
    assert set(info.value.reasons) == failing


def test_approve_names_missing_and_unverified_documents():
    facts = Facts(
        required_documents=REQUIRED, latest_reviews={"tax_clearance": ReviewStatus.PENDING}
    )
    with pytest.raises(GuardFailedError) as info:
        apply(WORKFLOW, application("under_review"), "approve", REVIEWER, now=NOW, facts=facts)
    message = info.value.reasons["documents"]
    assert "missing: business_registration" in message
    assert "not verified: tax_clearance" in message


def test_builder_refuses_inconsistent_tables():
    b = WorkflowBuilder()
    b.add_state(State("a", "A"))
    with pytest.raises(PluginError):
        b.add_state(State("a", "A again"))
    b.add_transition(Transition("go", frozenset({None}), "b", "review"))
    with pytest.raises(PluginError, match="unknown state 'b'"):
        b.build()
    with pytest.raises(PluginError):
        b.add_transition(Transition("go", frozenset({"a"}), "a", "review"))
    with pytest.raises(PluginError, match="unknown effects"):
        b.add_transition(Transition("x", frozenset({"a"}), "a", "review", effects=("explode",)))
    with pytest.raises(PluginError):
        b.add_guard("missing", "g", lambda ctx: None)


class Inspection:
    """A plugin that puts a site inspection between review and approval."""

    @hookimpl
    def gcx_register_workflow(self, builder: WorkflowBuilder) -> None:
        builder.add_state(State("site_inspection", "Site inspection"))
        builder.add_transition(
            Transition("inspect", frozenset({"under_review"}), "site_inspection", "review")
        )
        builder.remove_sources("approve", ["under_review"])
        builder.add_sources("approve", ["site_inspection"])
        approve = builder.transition("approve")
        builder.replace_transition(attrs.evolve(approve, label="Approve after inspection"))
        builder.remove_guard("approve", "documents")
        builder.remove_transition("reopen")


def test_a_plugin_removes_and_replaces_built_in_transitions():
    workflow = build_workflow(make_plugin_manager(plugins=[Inspection()]))
    approve = workflow.transitions["approve"]
    assert approve.sources == frozenset({"site_inspection"})
    assert approve.label == "Approve after inspection"
    assert [g.name for g in approve.guards] == ["conflict_of_interest"]  # "documents" removed
    assert "reopen" not in workflow.transitions
    with pytest.raises(InvalidTransitionError):
        apply(workflow, application("under_review"), "approve", REVIEWER, now=NOW)
    after, _ = apply(workflow, application("site_inspection"), "approve", REVIEWER, now=NOW)
    assert after.status == "approved"


def test_removing_what_is_not_there_is_named():
    b = WorkflowBuilder()
    b.add_state(State("a", "A"))
    b.add_transition(Transition("go", frozenset({None}), "a", "review"))
    with pytest.raises(PluginError, match="does not apply from"):
        b.remove_sources("go", ["b"])
    with pytest.raises(PluginError, match="no guard 'g'"):
        b.remove_guard("go", "g")
    for change in (
        lambda: b.remove_transition("missing"),
        lambda: b.replace_transition(Transition("missing", frozenset({"a"}), "a", "review")),
        lambda: b.transition("missing"),
    ):
        with pytest.raises(PluginError, match="no workflow action 'missing'"):
            change()
    with pytest.raises(PluginError, match="unknown effects"):
        b.replace_transition(Transition("go", frozenset({None}), "a", "review", effects=("x",)))
    assert b.transition("go").effects == ()  # a refused replacement leaves the old one


def test_builder_needs_a_creating_action():
    b = WorkflowBuilder()
    b.add_state(State("a", "A"))
    b.add_transition(Transition("loop", frozenset({"a"}), "a", "review"))
    with pytest.raises(PluginError, match="creates"):
        b.build()


def test_allowed_actions_follow_role_and_state():
    app = application("under_review")
    assert set(WORKFLOW.allowed_actions(app, REVIEWER)) == {
        "request_documents",
        "approve",
        "reject",
    }
    assert WORKFLOW.allowed_actions(app, VIEWER) == []
    assert WORKFLOW.allowed_actions(app, APPLICANT) == ["withdraw"]
    assert WORKFLOW.allowed_actions(application("rejected"), ADMIN) == ["reopen"]


ACTORS = [APPLICANT, VIEWER, REVIEWER, ADMIN, SUPPLIER]
PARAMS = {
    "reason_code": "other",
    "message": "m",
    "comment": "c",
    "requirement_codes": ["tax_clearance"],
}
EDGES = {(s, t.target) for t in WORKFLOW.transitions.values() for s in t.sources}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(WORKFLOW.transitions)),
            st.sampled_from(range(len(ACTORS))),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_random_action_sequences_stay_inside_the_table(steps):
    app = application("")
    for action, actor_index, verified in steps:
        facts = ALL_VERIFIED if verified else Facts(required_documents=REQUIRED)
        before = app
        try:
            app, event = apply(
                WORKFLOW, app, action, ACTORS[actor_index], now=NOW, params=PARAMS, facts=facts
            )
        except (InvalidTransitionError, PermissionDeniedError, GuardFailedError):
            assert app is before
            continue
        assert (before.status or None, app.status) in EDGES
        assert app.status in WORKFLOW.states
        assert app.version == before.version + 1
        assert event.to_status == app.status


@pytest.mark.parametrize("status", ["", *WORKFLOW.states])
def test_applicant_actions_are_allowed_actions_for_an_applicant(status):
    expected = set(WORKFLOW.allowed_actions(application(status), APPLICANT))
    assert WORKFLOW.applicant_actions(status) == expected
    assert WORKFLOW.applicant_actions(status) is WORKFLOW.applicant_actions(status)  # kept
