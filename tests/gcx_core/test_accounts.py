"""Staff and supplier accounts: hashing, lockout, single-use expiring tokens."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import AuthenticationError, TokenError, ValidationError
from gcx_core.services import accounts, applications, documents
from gcx_core.storage.tables import audit_log, users
from gcx_core.testing import make_submission

from .pdfs import PDF

SYSTEM = Actor.system("test")
PASSWORD = "correct horse battery staple"


async def test_create_user_hashes_and_never_leaks(gcx, caplog):
    caplog.set_level(logging.DEBUG)
    user, generated = await accounts.create_user(
        gcx, " Ama@Example.com ", "reviewer", SYSTEM, password=PASSWORD
    )
    assert generated is None and user.email == "ama@example.com" and user.role is Role.REVIEWER
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(user) and user.password_hash not in repr(user)
    other, generated = await accounts.create_user(gcx, "kofi@example.com", Role.ADMIN, SYSTEM)
    assert generated and len(generated) >= 20
    assert (await accounts.authenticate(gcx, "kofi@example.com", generated)).id == other.id
    async with gcx.database.read() as conn:
        audit = str((await conn.execute(sa.select(audit_log))).all())
    assert PASSWORD not in audit and generated not in audit and "argon2" not in audit
    assert PASSWORD not in caplog.text and generated not in caplog.text


@pytest.mark.parametrize(
    ("email", "role", "password", "field"),
    [
        ("not-an-email", "viewer", PASSWORD, "email"),
        ("a@example.com", "emperor", PASSWORD, "role"),
        ("a@example.com", "supplier", PASSWORD, "role"),
        ("a@example.com", "viewer", "short", "password"),
        ("a@example.com", "viewer", "aaaaaaaaaaaaaaaa", "password"),
    ],
)
async def test_create_user_refuses_bad_input(gcx, email, role, password, field):
    with pytest.raises(ValidationError) as info:
        await accounts.create_user(gcx, email, role, SYSTEM, password=password)
    assert field in info.value.errors
    async with gcx.database.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar() == 0


async def test_duplicate_email(gcx):
    await accounts.create_user(gcx, "a@example.com", "viewer", SYSTEM, password=PASSWORD)
    with pytest.raises(ValidationError, match="already exists"):
        await accounts.create_user(gcx, "A@example.com", "admin", SYSTEM, password=PASSWORD)


async def test_authentication_and_lockout(gcx, gcx_clock):
    await accounts.create_user(gcx, "a@example.com", "viewer", SYSTEM, password=PASSWORD)
    for wrong in ("nope", "", PASSWORD.upper()):
        with pytest.raises(AuthenticationError):
            await accounts.authenticate(gcx, "a@example.com", wrong)
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(gcx, "nobody@example.com", PASSWORD)
    assert (await accounts.authenticate(gcx, "A@EXAMPLE.com", PASSWORD)).email == "a@example.com"
    for _ in range(accounts.MAX_FAILED_LOGINS):
        with pytest.raises(AuthenticationError):
            await accounts.authenticate(gcx, "a@example.com", "wrong")
    with pytest.raises(AuthenticationError):  # locked: even the right password fails
        await accounts.authenticate(gcx, "a@example.com", PASSWORD)
    gcx_clock.advance(minutes=16)
    assert await accounts.authenticate(gcx, "a@example.com", PASSWORD)


async def test_inactive_users_cannot_sign_in(gcx):
    await accounts.create_user(gcx, "a@example.com", "viewer", SYSTEM, password=PASSWORD)
    async with gcx.database.write() as conn:
        await conn.execute(users.update().values(is_active=False))
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(gcx, "a@example.com", PASSWORD)


async def approved_application(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    app = await applications.act(gcx, app.id, "start_review", reviewer)
    for r in gcx.requirements_for(app):
        if r.required:
            doc = await documents.upload_document(
                gcx, app.id, r.code, PDF, "d.pdf", Actor.applicant()
            )
            await documents.review_document(gcx, doc.id, True, reviewer)
    return await applications.act(gcx, app.id, "approve", reviewer), reviewer


async def latest_activation_token(gcx, app):
    from gcx_core.storage.tables import notifications

    async with gcx.database.read() as conn:
        row = (
            await conn.execute(
                sa.select(notifications)
                .where(notifications.c.type == "approved", notifications.c.application_id == app.id)
                .order_by(notifications.c.id.desc())
            )
        ).first()
    return accounts.activation_link(gcx, row.context["activation_selector"]).rsplit("/", 1)[1]


async def test_activation_tokens_expire(gcx, gcx_staff, gcx_clock):
    app, _ = await approved_application(gcx, gcx_staff)
    token = await latest_activation_token(gcx, app)
    gcx_clock.advance(hours=gcx.settings.activation_ttl_hours, seconds=1)
    with pytest.raises(TokenError):
        await accounts.activate_account(gcx, token, PASSWORD)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t + "x",
        lambda t: t.split(".")[0] + ".AAAA",
        lambda t: "",
        lambda t: "no-dot",
    ],
)
async def test_forged_tokens_fail(gcx, gcx_staff, tamper):
    app, _ = await approved_application(gcx, gcx_staff)
    token = await latest_activation_token(gcx, app)
    with pytest.raises(TokenError):
        await accounts.activate_account(gcx, tamper(token), PASSWORD)
    assert (await accounts.activate_account(gcx, token, PASSWORD)).is_active


async def test_supplier_email_of_a_staff_user_blocks_approval(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    data = make_submission()
    await accounts.create_user(gcx, data["contact"]["email"], "viewer", SYSTEM, password=PASSWORD)
    app = await applications.submit(gcx, data, Actor.applicant())
    app = await applications.act(gcx, app.id, "start_review", reviewer)
    for r in gcx.requirements_for(app):
        if r.required:
            doc = await documents.upload_document(
                gcx, app.id, r.code, PDF, "d.pdf", Actor.applicant()
            )
            await documents.review_document(gcx, doc.id, True, reviewer)
    with pytest.raises(ValidationError, match="staff account"):
        await applications.act(gcx, app.id, "approve", reviewer)
    from gcx_core.services import queries

    assert (await queries.get_application(gcx, app.id)).status == "under_review"
