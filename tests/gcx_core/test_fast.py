"""storage.fast: a family of rows read in one statement equals one SELECT per table."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, DocumentRequirement, Role
from gcx_core.services import applicant, applications, documents
from gcx_core.services.applicant import applicant_view
from gcx_core.storage import applications as app_rows
from gcx_core.storage import fast
from gcx_core.storage.tables import applications as applications_table
from gcx_core.testing import make_submission

from .pdfs import PDF, PNG

APPLICANT = Actor.applicant()
VIEW = app_rows.view_by_code()


async def busy_application(gcx, gcx_staff):
    """An application with several rows in each child table, names outside ASCII included."""
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await applications.act(gcx, app.id, "start_review", reviewer)
    await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance", "vat_certificate"], "message": "Bitte 😀"},
    )
    first = await documents.upload_document(
        gcx, app.id, "tax_clearance", PDF, "Überweisung «1».pdf", APPLICANT
    )
    await documents.upload_document(gcx, app.id, "tax_clearance", PNG, "scan.png", APPLICANT)
    await documents.upload_document(gcx, app.id, "vat_certificate", PDF, "vat.pdf", APPLICANT)
    await documents.review_document(gcx, first.id, False, reviewer, note='"blurred"\nrescan')
    return app


async def test_one_statement_reads_what_one_select_per_table_reads(gcx, gcx_staff):
    app = await busy_application(gcx, gcx_staff)
    await applications.submit(gcx, make_submission(), APPLICANT)  # a neighbour, not read
    family = await VIEW.read(gcx.database, code=app.tracking_code)
    portable = await fast.select_together(gcx.database, VIEW.selects, code=app.tracking_code)
    assert family == portable
    if gcx.database.inline_reader() is not None:  # SQLite: it was the single statement
        assert VIEW._plans["sqlite"] is not None
    found, changes, versions, requests = family
    assert [r["id"] for r in found] == [app.id]
    assert [c["action"] for c in changes] == ["submit", "start_review", "request_documents"]
    assert [(v["requirement_code"], v["version"]) for v in versions] == [
        ("tax_clearance", 1),
        ("tax_clearance", 2),
        ("vat_certificate", 1),
    ]
    assert versions[0]["original_name"] == "Überweisung «1».pdf"
    assert versions[0]["review_note"] == '"blurred"\nrescan' and versions[1]["reviewed_at"] is None
    assert versions[0]["uploaded_at"].tzinfo is not None
    assert requests[0]["requirement_codes"] == ["tax_clearance", "vat_certificate"]
    assert requests[0]["message"] == "Bitte 😀"


async def test_an_unknown_key_reads_nothing(gcx):
    assert await VIEW.read(gcx.database, code="GCX-0000-0000-0000") == [[], [], [], []]


async def test_the_view_is_the_same_either_way(gcx, gcx_staff, monkeypatch):
    app = await busy_application(gcx, gcx_staff)
    quick = await applicant_view(gcx, app.tracking_code)
    # One SELECT per table, as without inline SQLite, and no view kept from the first read.
    monkeypatch.setattr(gcx.database, "inline_reader", lambda: None)
    gcx.caches.clear()
    portable = await applicant_view(gcx, app.tracking_code)
    assert portable == quick and portable is not quick


async def test_a_snapshot_is_equal_to_another_exactly_when_its_rows_are(gcx, gcx_staff):
    app = await busy_application(gcx, gcx_staff)
    other = await applications.submit(gcx, make_submission(), APPLICANT)
    first = await VIEW.snapshot(gcx.database, code=app.tracking_code)
    again = await VIEW.snapshot(gcx.database, code=app.tracking_code)
    neighbour = await VIEW.snapshot(gcx.database, code=other.tracking_code)
    assert first is not None and again is not None and neighbour is not None
    assert first == again and hash(first) == hash(again) and first is not again
    assert first != neighbour
    assert first.rows() == await VIEW.read(gcx.database, code=app.tracking_code)
    assert await VIEW.snapshot(gcx.database, code="GCX-0000-0000-0000") is None
    # A change to one child row, at the same instant (the test clock stands still).
    _, reviewer = await gcx_staff(Role.REVIEWER)
    latest = await documents.upload_document(
        gcx, app.id, "vat_certificate", PDF, "v.pdf", APPLICANT
    )
    await documents.review_document(gcx, latest.id, True, reviewer)
    changed = await VIEW.snapshot(gcx.database, code=app.tracking_code)
    assert changed != first


async def test_an_unchanged_application_gets_the_view_made_before(gcx, gcx_staff):
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    code = app.tracking_code
    first = await applicant_view(gcx, code)
    assert await applicant_view(gcx, code) is first
    assert await applicant_view(gcx, code.lower().replace("-", " ")) is first
    _, reviewer = await gcx_staff(Role.REVIEWER)

    await applications.act(gcx, app.id, "start_review", reviewer)
    view = await applicant_view(gcx, code)
    assert view is not first and view.application.status == "under_review"
    await applications.act(
        gcx,
        app.id,
        "request_documents",
        reviewer,
        params={"requirement_codes": ["tax_clearance"], "message": "Please send it"},
    )
    view = await applicant_view(gcx, code)
    assert view.request_message == "Please send it"
    assert ("tax_clearance", "requested") in [
        (o.requirement.code, o.reason) for o in view.outstanding
    ]
    sent = await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    view = await applicant_view(gcx, code)
    assert "tax_clearance" not in [o.requirement.code for o in view.outstanding]
    await documents.review_document(gcx, sent.id, False, reviewer, note="unreadable")
    view = await applicant_view(gcx, code)
    assert ("tax_clearance", "rejected", "unreadable") in [
        (o.requirement.code, o.reason, o.note) for o in view.outstanding
    ]
    assert await applicant_view(gcx, code) is view


async def test_when_nothing_was_committed_a_lookup_reads_nothing(gcx, monkeypatch):
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    first = await applicant_view(gcx, app.tracking_code)
    reads = []
    original = applicant._VIEW.snapshot

    async def counted(database, **params):
        reads.append(params["code"])
        return await original(database, **params)

    monkeypatch.setattr(applicant._VIEW, "snapshot", counted)
    assert await applicant_view(gcx, app.tracking_code) is first
    inline = gcx.database.change_mark() is not None
    assert reads == ([] if inline else [app.tracking_code])  # PostgreSQL has no change mark
    await applications.submit(gcx, make_submission(), APPLICANT)  # a commit, of another row
    assert await applicant_view(gcx, app.tracking_code) is first  # read again, the same rows
    assert reads[-1] == app.tracking_code


async def test_this_process_s_writes_change_the_mark_at_once(gcx, monkeypatch):
    if gcx.database.change_mark() is None:
        assert gcx.database.engine.dialect.name == "postgresql"
        return
    gcx.database.other_process_lag = 3600.0  # only this process's own count can move it
    before = gcx.database.change_mark()
    assert gcx.database.change_mark() == before  # asking changes nothing
    seen = []
    async with gcx.database.write():
        seen.append(gcx.database.change_mark())  # a write under way
    after = gcx.database.change_mark()
    assert len({before, seen[0], after}) == 3
    with pytest.raises(RuntimeError):
        async with gcx.database.write():
            raise RuntimeError("rolled back")
    assert gcx.database.change_mark() != after
    # And what that means for lookups: an upload shows in the very next one.
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await applicant_view(gcx, app.tracking_code)
    await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    view = await applicant_view(gcx, app.tracking_code)
    assert [i.kind for i in view.timeline].count("document") == 1


async def test_another_process_s_commit_shows_within_the_lag(gcx, gcx_settings):
    """Views are kept by the rows they came from, not told of changes: a change that another
    Gcx (another process, here on the same database) commits is seen once SQLite's data
    version is asked again, at most `other_process_lag` (1 ms) after the last asking."""
    from gcx_core.context import Gcx

    inline = gcx.database.change_mark() is not None
    gcx.database.other_process_lag = 3600.0
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    before = await applicant_view(gcx, app.tracking_code)
    async with await Gcx.open(gcx_settings, clock=gcx.clock) as other:
        await documents.upload_document(other, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
        await applications.act(other, app.id, "withdraw", APPLICANT)
    if inline:  # within the lag the view stands; PostgreSQL reads the rows every time
        assert await applicant_view(gcx, app.tracking_code) is before
    gcx.database.other_process_lag = 0.0
    after = await applicant_view(gcx, app.tracking_code)
    assert before.application.status == "pending_review" and after.application.status == "withdrawn"
    assert [i.kind for i in after.timeline].count("document") == 1
    assert not after.can_withdraw


async def test_the_default_lag_is_a_millisecond(gcx, gcx_settings):
    from gcx_core.context import Gcx

    assert gcx.database.other_process_lag == 0.001
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    await applicant_view(gcx, app.tracking_code)
    async with await Gcx.open(gcx_settings, clock=gcx.clock) as other:
        await applications.act(other, app.id, "withdraw", APPLICANT)
    await asyncio.sleep(0.002)
    assert (await applicant_view(gcx, app.tracking_code)).application.status == "withdrawn"


async def test_an_application_reads_the_same_from_json_text_or_decoded_details(gcx):
    """to_application takes `details` as JSON text (the compiled reads on SQLite) or already
    decoded (SQLAlchemy's JSON type, PostgreSQL's JSONB): both give the stored entity."""
    name = "Ɔdɔ Farms «1» Ltd"
    secondary = {"bank_name": "Ɛcobank", "account_name": name, "account_number": "2233445566"}
    submission = make_submission(
        **{
            "business.name": name,
            "bank_accounts.primary.account_name": name,
            "commodities": ["gari", "maize"],
            "bank_accounts.secondary": secondary,
        }
    )
    app = await applications.submit(gcx, submission, APPLICANT)
    raw = await app_rows._BY_CODE.first(gcx.database, code=app.tracking_code)
    assert raw is not None
    if gcx.database.inline_reader() is not None:
        assert isinstance(raw["details"], str)
    async with gcx.database.read() as conn:
        row = (
            await conn.execute(
                sa.select(applications_table).where(applications_table.c.id == app.id)
            )
        ).one()
    assert isinstance(row.details, dict)
    assert app_rows.to_application(raw) == app_rows.to_application(row) == app
    assert app.secondary_account is not None and app.secondary_account.bank_name == "Ɛcobank"
    assert app.declaration.signed_at.tzinfo is not None


@pytest.mark.parametrize("commodities", [["maize"], ["gari", "maize"]])
async def test_a_new_application_still_needs_every_required_document(gcx, commodities):
    app = await applications.submit(gcx, make_submission(commodities=commodities), APPLICANT)
    view = await applicant_view(gcx, app.tracking_code)
    requirements = tuple(gcx.requirements_for(app))
    assert [(o.requirement.code, o.reason) for o in view.outstanding] == [
        (r.code, "missing") for r in requirements if r.required
    ]
    assert any(o.requirement.code == "fda_certificate" for o in view.outstanding) == (
        "gari" in commodities
    )
    # The shortcut for "nothing sent, nothing asked" agrees with the general rule.
    general = applicant._outstanding(requirements, applicant._missing(requirements), [], None)
    assert general == view.outstanding


def test_an_optional_document_is_never_missing():
    requirements = (
        DocumentRequirement("a", "A"),
        DocumentRequirement("b", "B", required=False),
    )
    missing = applicant._missing(requirements)
    assert list(missing) == ["a"]
    assert [
        o.requirement.code for o in applicant._outstanding(requirements, missing, [], None)
    ] == ["a"]


def test_children_whose_values_json_would_change_are_refused():
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("score", sa.Float))
    family = fast.FastFamily(
        sa.select(table).where(table.c.id == sa.bindparam("id")),
        table.c.id,
        [fast.Children(table, table.c.id, (table.c.id,))],
    )
    with pytest.raises(ValueError, match="through JSON"):
        fast._ChildPlan(family.children[0], sa.create_engine("sqlite://").dialect)


def test_datetimes_are_stored_as_utc_text_on_sqlite():
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from gcx_core.storage.tables import UTCDateTime

    bind = UTCDateTime().bind_processor(sqlite.dialect())
    read = UTCDateTime().result_processor(sqlite.dialect(), None)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    elsewhere = datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=timezone(timedelta(hours=2)))
    # The same object twice (the memo), another zone, then the first again.
    texts = [bind(at), bind(at), bind(elsewhere), bind(None), bind(at)]
    assert texts == [
        "2026-01-02 03:04:05.000000",
        "2026-01-02 03:04:05.000000",
        "2026-01-02 03:04:05.000007",
        None,
        "2026-01-02 03:04:05.000000",
    ]
    assert read(texts[2]) == elsewhere and read(texts[2]).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 1, 2))
