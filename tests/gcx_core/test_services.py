"""Services against real SQLite and PostgreSQL: whole paths, transactions, conflicts, races."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import (
    ConflictError,
    DuplicateApplicationError,
    GuardFailedError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    TokenError,
    ValidationError,
)
from gcx_core.services import accounts, applications, dashboard, documents, queries
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import audit_log, notifications, status_changes, users
from gcx_core.testing import make_submission

from .pdfs import PDF

APPLICANT = Actor.applicant("198.51.100.7")


async def rows(gcx, table, *where):
    async with gcx.database.read() as conn:
        return (
            await conn.execute(
                sa.select(table)
                .where(*where)
                .order_by(table.c["id" if "id" in table.c else table.primary_key.columns.keys()[0]])
            )
        ).all()


async def counters_match_recount(gcx):
    async with gcx.database.read() as conn:
        truth = await dashboard.recount(conn, gcx)
        stored = {k: v for k, v in (await bookkeeping.read_counters(conn)).items() if v}
    return stored == truth


async def verify_all(gcx, app, reviewer):
    for requirement in gcx.requirements_for(app):
        if requirement.required:
            doc = await documents.upload_document(
                gcx, app.tracking_code, requirement.code, PDF, f"{requirement.code}.pdf", APPLICANT
            )
            await documents.review_document(gcx, doc.id, True, reviewer)


async def test_whole_path_submit_to_activation(gcx, gcx_staff):
    reviewer_user, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    assert app.status == "pending_review" and app.version == 1
    assert app.tracking_code.startswith("GCX-")

    app = await applications.act(gcx, app.id, "start_review", reviewer, expected_version=1)
    app = await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        expected_version=2,
        params={
            "requirement_codes": ["tax_clearance"],
            "message": "Your tax clearance has expired",
        },
    )
    assert app.status == "documents_requested"
    with pytest.raises(GuardFailedError, match="tax_clearance"):
        await applications.act(gcx, app.tracking_code, "resubmit_documents", APPLICANT)
    await documents.upload_document(
        gcx, app.tracking_code, "tax_clearance", PDF, "tax.pdf", APPLICANT
    )
    app = await applications.act(gcx, app.tracking_code.lower(), "resubmit_documents", APPLICANT)
    assert app.status == "under_review"

    with pytest.raises(GuardFailedError, match="missing"):
        await applications.act(gcx, app.id, "approve", reviewer)
    await verify_all(gcx, app, reviewer)
    app = await applications.act(gcx, app.id, "approve", reviewer, expected_version=app.version)
    assert app.status == "approved"

    changes = await rows(gcx, status_changes, status_changes.c.application_id == app.id)
    assert [c.action for c in changes] == [
        "submit",
        "start_review",
        "request_documents",
        "resubmit_documents",
        "approve",
    ]
    sent = await rows(gcx, notifications, notifications.c.application_id == app.id)
    kinds = [(n.type, n.recipient) for n in sent]
    assert ("application_received", app.contact.email) in kinds
    assert ("new_application", reviewer_user.email) in kinds
    assert ("documents_requested", app.contact.email) in kinds
    assert ("documents_resubmitted", reviewer_user.email) in kinds
    approved = next(n for n in sent if n.type == "approved")
    assert len({n.dedupe_key for n in sent}) == len(sent)
    assert all(n.status == "pending" for n in sent)

    # The outbox holds a selector, never the token; the link is derived from the secret key.
    selector = approved.context["activation_selector"]
    link = accounts.activation_link(gcx, selector)
    token = link.rsplit("/", 1)[1]
    assert token not in str(approved.context)
    supplier = (await rows(gcx, users, users.c.email == app.contact.email))[0]
    assert supplier.role == "supplier" and not supplier.is_active and supplier.password_hash is None
    with pytest.raises(ValidationError):
        await accounts.activate_account(gcx, token, "short")
    user = await accounts.activate_account(gcx, token, "a long enough passphrase")
    assert user.is_active and user.role is Role.SUPPLIER
    with pytest.raises(TokenError):
        await accounts.activate_account(gcx, token, "a long enough passphrase")
    assert (
        await accounts.authenticate(gcx, app.contact.email, "a long enough passphrase")
    ).id == user.id

    audit = await rows(
        gcx,
        audit_log,
        audit_log.c.object_type == "application",
        audit_log.c.object_id == str(app.id),
    )
    assert [a.action for a in audit][:2] == ["submit", "start_review"]
    assert audit[0].client_address == "198.51.100.7"
    everything = str([tuple(a) for a in await rows(gcx, audit_log)])
    assert "passphrase" not in everything and "argon2" not in everything
    assert await counters_match_recount(gcx)


async def test_reject_withdraw_reopen_paths(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    with pytest.raises(GuardFailedError):
        await applications.act(gcx, app.id, "reject", reviewer, params={"reason_code": "other"})
    app = await applications.act(
        gcx,
        app.id,
        "reject",
        reviewer,
        params={"reason_code": "ineligible", "message": "Outside area"},
    )
    assert app.status == "rejected"
    with pytest.raises(PermissionDeniedError):
        await applications.act(gcx, app.id, "reopen", reviewer, params={"comment": "x"})
    app = await applications.act(gcx, app.id, "reopen", admin, params={"comment": "Appeal"})
    assert app.status == "under_review"
    app = await applications.act(gcx, app.tracking_code, "withdraw", APPLICANT)
    assert app.status == "withdrawn"
    with pytest.raises(InvalidTransitionError, match="withdrawn"):
        await applications.act(gcx, app.id, "approve", reviewer)
    app = await applications.act(gcx, app.id, "reopen", admin, params={"comment": "Back"})
    sent = await rows(gcx, notifications, notifications.c.application_id == app.id)
    kinds = [n.type for n in sent]
    assert kinds.count("reopened") == 2, "re-entry notifies like first entry"
    rejected = next(n for n in sent if n.type == "rejected")
    assert rejected.context["reason_code"] == "ineligible"
    assert rejected.context["message"] == "Outside area"
    assert "withdrawn" in kinds
    assert await counters_match_recount(gcx)


async def test_bad_input_changes_nothing(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    with pytest.raises(ValidationError):
        await applications.submit(gcx, make_submission(**{"contact.email": "nope"}), APPLICANT)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    before = await rows(gcx, audit_log)
    for call in (
        applications.act(gcx, app.id, "start_review", reviewer, params={"bogus": 1}),
        applications.act(gcx, app.id, "start_review", reviewer, params={"message": 5}),
        applications.act(gcx, app.id, "approve", reviewer),
        applications.act(gcx, app.id, "start_review", APPLICANT),
        applications.act(gcx, app.id, "start_review", reviewer, expected_version=9),
        applications.act(gcx, 999_999, "start_review", reviewer),
        applications.act(gcx, "GCX-0000-0000-0000", "withdraw", APPLICANT),
        applications.act(gcx, "not a code", "withdraw", APPLICANT),
    ):
        with pytest.raises(
            (
                ValidationError,
                InvalidTransitionError,
                PermissionDeniedError,
                ConflictError,
                NotFoundError,
            )
        ):
            await call
    assert await rows(gcx, audit_log) == before
    assert (await queries.get_application(gcx, app.id)) == app
    assert await counters_match_recount(gcx)


async def test_duplicate_guard(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    first = make_submission()
    app = await applications.submit(gcx, first, APPLICANT)
    same_email = make_submission(**{"contact.email": first["contact"]["email"].upper()})
    with pytest.raises(DuplicateApplicationError) as info:
        await applications.submit(gcx, same_email, APPLICANT)
    assert info.value.fields == ["email"]
    same_both = make_submission(
        **{"contact.email": first["contact"]["email"], "business.tin": first["business"]["tin"]}
    )
    with pytest.raises(DuplicateApplicationError) as info:
        await applications.submit(gcx, same_both, APPLICANT)
    assert info.value.fields == ["email", "TIN"]
    # Once withdrawn, the email and TIN are free again; reopening the old one then conflicts.
    await applications.act(gcx, app.id, "withdraw", APPLICANT)
    second = await applications.submit(gcx, same_both, APPLICANT)
    with pytest.raises(DuplicateApplicationError):
        await applications.act(gcx, app.id, "reopen", admin, params={"comment": "x"})
    assert (await queries.get_application(gcx, app.id)).status == "withdrawn"
    assert second.status == "pending_review"
    del reviewer


async def test_concurrent_approve_and_reject_exactly_one_wins(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, other = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    app = await applications.act(gcx, app.id, "start_review", reviewer)
    await verify_all(gcx, app, reviewer)
    results = await asyncio.gather(
        applications.act(gcx, app.id, "approve", reviewer, expected_version=app.version),
        applications.act(
            gcx,
            app.id,
            "reject",
            other,
            expected_version=app.version,
            params={"reason_code": "other", "message": "no"},
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and len(losses) == 1
    assert isinstance(losses[0], ConflictError), losses
    final = await queries.get_application(gcx, app.id)
    assert final.status == wins[0].status and final.version == app.version + 1
    assert len(await rows(gcx, status_changes, status_changes.c.application_id == app.id)) == 3
    assert await counters_match_recount(gcx)


async def test_concurrent_duplicate_submissions_exactly_one_succeeds(gcx):
    data = make_submission()
    results = await asyncio.gather(
        *(applications.submit(gcx, data, APPLICANT) for _ in range(8)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1
    assert all(isinstance(r, DuplicateApplicationError) for r in results if r not in ok), results
    page = await queries.list_applications(gcx, queries.ApplicationFilter())
    assert page.total == 1
    assert await counters_match_recount(gcx)


async def test_a_transition_writes_only_the_columns_it_changes(gcx, gcx_staff):
    """An application's update names only what changed (each index of the table is rewritten
    only when the statement sets one of its columns), and the row reads back as the entity."""
    from gcx_core.storage import applications as app_rows

    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE applications"):
            statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        _, reviewer = await gcx_staff(Role.REVIEWER)
        app = await applications.submit(gcx, make_submission(), APPLICANT)
        started = await applications.act(gcx, app.id, "start_review", reviewer)
        withdrawn = await applications.act(gcx, app.tracking_code, "withdraw", APPLICANT)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    start, withdraw = statements
    assert "status=" in start.replace(" ", "") and "details" not in start
    assert "active_email" not in start and "email=" not in start.replace(" ", "")
    assert "active_email" in withdraw and "active_tin" in withdraw  # it leaves the guard
    assert "details" not in withdraw and "search_name" not in withdraw
    async with gcx.database.read() as conn:
        assert await app_rows.get(conn, app.id) == withdrawn
        row = (
            await conn.execute(
                sa.text("SELECT active_email, active_tin, status FROM applications WHERE id = :i"),
                {"i": app.id},
            )
        ).one()
    assert tuple(row) == (None, None, "withdrawn")
    assert started.version + 1 == withdrawn.version
