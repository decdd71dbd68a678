"""Supplier accounts: activation by single-use link, then the supplier's own portal."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from gcx_core.entities import Actor, Role
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.services.accounts import ACTIVATION, RESET, derive_token, request_password_reset
from gcx_core.services.queries import documents_of as doc_service_documents
from gcx_core.storage.tables import audit_log, notifications
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import PDF
from tests.gcx_web.conftest import csrf_of


async def approved_token(gcx: Gcx, reviewer: Actor) -> tuple[Any, str]:
    app = await app_service.submit(gcx, make_submission(), Actor.applicant())
    for requirement in gcx.requirements_for(app):
        if requirement.expiry_date and not requirement.required:  # a dated extra: not needed
            continue
        doc = await doc_service.upload_document(
            gcx, app.id, requirement.code, PDF, "f.pdf", Actor.applicant()
        )
        await doc_service.review_document(gcx, doc.id, True, reviewer)
    await app_service.act(gcx, app.id, "start_review", reviewer)
    await app_service.act(gcx, app.id, "approve", reviewer)
    async with gcx.database.read() as conn:
        context = (
            await conn.execute(
                sa.select(notifications.c.context).where(notifications.c.type == "approved")
            )
        ).scalar_one()
    return app, derive_token(gcx.settings.secret_key, ACTIVATION, context["activation_selector"])


async def test_activation_then_the_supplier_portal(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app, token = await approved_token(gcx, reviewer)
    form = await client.get(f"/activate/{token}")
    assert form.status_code == 200
    differ = await client.post(
        f"/activate/{token}",
        data={
            "_csrf_token": csrf_of(form.text),
            "password": "a long enough password",
            "password_again": "something else",
        },
    )
    assert differ.status_code == 422
    short = await client.post(
        f"/activate/{token}",
        data={"_csrf_token": csrf_of(form.text), "password": "short", "password_again": "short"},
    )
    assert short.status_code == 422
    done = await client.post(
        f"/activate/{token}",
        data={
            "_csrf_token": csrf_of(form.text),
            "password": "a long enough password",
            "password_again": "a long enough password",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/account"
    home = await client.get("/account")
    assert app.tracking_code in home.text and "Approved" in home.text
    # Suppliers never reach the back office.
    assert (await client.get("/backoffice/")).status_code == 403
    # The link works once.
    await client.post("/logout", data={"_csrf_token": csrf_of(home.text)})
    again = await client.post(
        f"/activate/{token}",
        data={
            "_csrf_token": csrf_of(form.text),
            "password": "another long password",
            "password_again": "another long password",
        },
    )
    assert again.status_code == 400
    # A used or unknown link says so at once, and how to get a new one: no password form.
    for dead in (token, "not-a-token"):
        page = await client.get(f"/activate/{dead}")
        assert page.status_code == 410
        assert "used already or has expired" in page.text and 'href="/password-reset"' in page.text
        assert 'name="password"' not in page.text
    # Signing in again with the chosen password leads to the portal.
    page = await client.get("/login")
    signed = await client.post(
        "/login",
        data={
            "_csrf_token": csrf_of(page.text),
            "email": app.contact.email,
            "password": "a long enough password",
        },
    )
    assert signed.headers["location"] == "/account"


async def test_password_reset_by_single_use_link(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    from gcx_core.services.accounts import RESET
    from gcx_notify.render import Renderer

    user, _ = await gcx_staff(Role.REVIEWER)
    form = await client.get("/password-reset")
    unknown = await client.post(
        "/password-reset", data={"_csrf_token": csrf_of(form.text), "email": "nobody@example.com"}
    )
    known = await client.post(
        "/password-reset", data={"_csrf_token": csrf_of(form.text), "email": user.email.upper()}
    )
    assert unknown.status_code == known.status_code == 200
    assert (
        "If an account uses that address" in unknown.text
        and "If an account uses that address" in known.text
    )
    async with gcx.database.read() as conn:
        rows = (
            await conn.execute(
                sa.select(notifications).where(notifications.c.type == "password_reset")
            )
        ).all()
    assert len(rows) == 1 and rows[0].recipient == user.email
    token = derive_token(gcx.settings.secret_key, RESET, rows[0].context["reset_selector"])
    assert token not in str(rows[0].context)  # only the selector is stored
    from gcx_core.storage.bookkeeping import to_notification

    message = Renderer(gcx, []).render(to_notification(rows[0]))
    assert f"/reset/{token}" in message.text
    page = await client.get(f"/reset/{token}")
    done = await client.post(
        f"/reset/{token}",
        data={
            "_csrf_token": csrf_of(page.text),
            "password": "a brand new password",
            "password_again": "a brand new password",
        },
    )
    assert done.status_code == 303
    again = await client.post(
        f"/reset/{token}",
        data={
            "_csrf_token": csrf_of(page.text),
            "password": "yet another password",
            "password_again": "yet another password",
        },
    )
    assert again.status_code == 400
    login = await client.get("/login")
    signed = await client.post(
        "/login",
        data={
            "_csrf_token": csrf_of(login.text),
            "email": user.email,
            "password": "a brand new password",
        },
    )
    assert signed.headers["location"] == "/backoffice/"


async def test_an_expired_activation_link_can_be_replaced_by_a_reset_link(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any, gcx_clock: Any
) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app, token = await approved_token(gcx, reviewer)
    gcx_clock.advance(hours=gcx.settings.activation_ttl_hours + 1)
    expired = await client.get(f"/activate/{token}")
    assert expired.status_code == 410 and 'name="password"' not in expired.text
    # The supplier never activated: asking for a reset link sends one, which activates.
    await request_password_reset(gcx, app.contact.email)
    async with gcx.database.read() as conn:
        context = (
            await conn.execute(
                sa.select(notifications.c.context).where(notifications.c.type == "password_reset")
            )
        ).scalar_one()
    reset = derive_token(gcx.settings.secret_key, RESET, context["reset_selector"])
    form = await client.get(f"/reset/{reset}")
    assert form.status_code == 200 and 'name="password"' in form.text
    done = await client.post(
        f"/reset/{reset}",
        data={
            "_csrf_token": csrf_of(form.text),
            "password": "a long enough password",
            "password_again": "a long enough password",
        },
    )
    assert done.status_code == 303
    assert (await client.get(f"/reset/{reset}")).status_code == 410


async def signed_in_supplier(client: httpx.AsyncClient, gcx: Gcx, reviewer: Actor) -> Any:
    app, token = await approved_token(gcx, reviewer)
    form = await client.get(f"/activate/{token}")
    done = await client.post(
        f"/activate/{token}",
        data={
            "_csrf_token": csrf_of(form.text),
            "password": "a long enough password",
            "password_again": "a long enough password",
        },
    )
    assert done.headers["location"] == "/account"
    return app


async def test_the_supplier_portal_profile_contact_and_documents(
    client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any
) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    other = await app_service.submit(gcx, make_submission(), Actor.applicant())
    others_doc = await doc_service.upload_document(
        gcx, other.id, "tax_clearance", PDF + b"%other", "other.pdf", Actor.applicant()
    )
    app = await signed_in_supplier(client, gcx, reviewer)
    home = await client.get("/account")
    assert app.business.tin in home.text and "Contact details" in home.text
    token = csrf_of(home.text)
    # Contact telephone: a bad number changes nothing; a good one is saved and said so.
    bad = await client.post("/account/contact", data={"_csrf_token": token, "telephone": "12"})
    assert bad.status_code == 422 and "must be a valid" in bad.text
    saved = await client.post(
        "/account/contact", data={"_csrf_token": token, "telephone": "024 555 0101"}
    )
    assert saved.status_code == 303
    home = await client.get("/account")
    assert "telephone was saved" in home.text and "+233245550101" in home.text
    # Their own documents download; another application's are not found.
    (own,) = [
        d for d in await doc_service_documents(gcx, app.id) if d.requirement_code == "tax_clearance"
    ]
    file = await client.get(f"/account/documents/{own.id}/file")
    assert file.status_code == 200 and file.content == PDF
    assert file.headers["content-disposition"].startswith("attachment")
    assert (await client.get(f"/account/documents/{others_doc.id}/file")).status_code == 404
    # A renewed certificate is a new version, waiting for review.
    renewed = await client.post(
        "/account/documents/tax_clearance",
        data={"_csrf_token": token},
        files={"file": ("renewed.pdf", PDF + b"%renewed", "application/pdf")},
    )
    assert renewed.status_code == 303
    home = await client.get("/account")
    assert "version 2 received" in home.text and "renewed.pdf" in home.text
    wrong = await client.post(
        "/account/documents/tax_clearance",
        data={"_csrf_token": token},
        files={"file": ("x.pdf", b"not a pdf", "application/pdf")},
    )
    assert wrong.status_code == 415
    # Staff pages and other applications stay out of reach.
    assert (await client.get("/backoffice/")).status_code == 403
    async with gcx.database.read() as conn:
        changed = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "supplier.contact_update")
            )
        ).scalar_one()
    assert changed == 1


async def test_changing_a_password(client: httpx.AsyncClient, gcx: Gcx, gcx_staff: Any) -> None:
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await signed_in_supplier(client, gcx, reviewer)
    page = await client.get("/account/password")
    token = csrf_of(page.text)
    wrong = await client.post(
        "/account/password",
        data={"_csrf_token": token, "current_password": "nope", "new_password": "x" * 20},
    )
    assert wrong.status_code == 422 and "is not your current password" in wrong.text
    weak = await client.post(
        "/account/password",
        data={
            "_csrf_token": token,
            "current_password": "a long enough password",
            "new_password": "short",
        },
    )
    assert weak.status_code == 422 and "New password" in weak.text
    done = await client.post(
        "/account/password",
        data={
            "_csrf_token": token,
            "current_password": "a long enough password",
            "new_password": "a brand new passphrase",
        },
    )
    assert done.status_code == 303
    assert "password was changed" in (await client.get("/account")).text
    await client.post("/logout", data={"_csrf_token": token})
    page = await client.get("/login")
    old = await client.post(
        "/login",
        data={
            "_csrf_token": csrf_of(page.text),
            "email": app.contact.email,
            "password": "a long enough password",
        },
    )
    assert old.status_code == 401 and "Wrong email or password" in old.text
    new = await client.post(
        "/login",
        data={
            "_csrf_token": csrf_of(page.text),
            "email": app.contact.email,
            "password": "a brand new passphrase",
        },
    )
    assert new.headers["location"] == "/account"
    # Signed out, the page asks to sign in.
    client.cookies.clear()
    assert (await client.get("/account/password")).status_code == 303
