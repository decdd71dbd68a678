"""Uploads are judged by content and size; versions and reviews are kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, ReviewStatus, Role
from gcx_core.exceptions import (
    FileTooLargeError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedFileTypeError,
    ValidationError,
)
from gcx_core.files import LocalFileStore, sanitise_filename, sniff_content_type
from gcx_core.services import applications, documents, queries
from gcx_core.storage.tables import documents as document_rows
from gcx_core.testing import make_submission

from .pdfs import HTML, JPEG, PDF, PNG

APPLICANT = Actor.applicant()


@pytest.fixture(name="app")
async def _app(gcx):
    return await applications.submit(gcx, make_submission(), APPLICANT)


async def count_documents(gcx):
    async with gcx.database.read() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(document_rows))).scalar()


async def test_versions_and_content_types(gcx, app):
    first = await documents.upload_document(
        gcx, app.tracking_code, "tax_clearance", PDF, "../../etc/tax.pdf", APPLICANT
    )
    second = await documents.upload_document(
        gcx, app.tracking_code, "tax_clearance", PNG, "scan.pdf", APPLICANT
    )  # a PNG named .pdf is a PNG
    third = await documents.upload_document(
        gcx, app.tracking_code, "tax_clearance", JPEG, "photo", APPLICANT
    )
    assert (first.version, second.version, third.version) == (1, 2, 3)
    assert first.original_name == "tax.pdf"
    assert (first.content_type, second.content_type, third.content_type) == (
        "application/pdf",
        "image/png",
        "image/jpeg",
    )
    assert first.sha256 == __import__("hashlib").sha256(PDF).hexdigest()
    assert await gcx.files.get(first.sha256) == PDF


@pytest.mark.parametrize(
    ("content", "name", "error"),
    [
        (HTML, "evil.pdf", UnsupportedFileTypeError),
        (b"PK\x03\x04 zip", "doc.png", UnsupportedFileTypeError),
        (b"", "empty.pdf", ValidationError),
    ],
)
async def test_bad_files_change_nothing(gcx, app, content, name, error):
    with pytest.raises(error):
        await documents.upload_document(gcx, app.id, "tax_clearance", content, name, APPLICANT)
    assert await count_documents(gcx) == 0


async def test_size_limit(gcx, app):
    limit = gcx.requirements["tax_clearance"].max_bytes
    with pytest.raises(FileTooLargeError) as info:
        await documents.upload_document(
            gcx, app.id, "tax_clearance", PDF + b"0" * limit, "big.pdf", APPLICANT
        )
    assert info.value.limit == limit
    assert await count_documents(gcx) == 0


async def test_unknown_requirement_and_fda_only_for_processed_food(gcx, app):
    with pytest.raises(ValidationError, match="unknown document requirement"):
        await documents.upload_document(gcx, app.id, "passport_photo", PDF, "a.pdf", APPLICANT)
    with pytest.raises(ValidationError):
        await documents.upload_document(gcx, app.id, "fda_certificate", PDF, "a.pdf", APPLICANT)
    processed = await applications.submit(gcx, make_submission(commodities=["gari"]), APPLICANT)
    assert "fda_certificate" in {r.code for r in gcx.requirements_for(processed)}
    assert "fda_certificate" not in {r.code for r in gcx.requirements_for(app)}
    doc = await documents.upload_document(
        gcx, processed.id, "fda_certificate", PDF, "f.pdf", APPLICANT
    )
    assert doc.requirement_code == "fda_certificate"


async def test_approval_enforces_the_fda_certificate(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(commodities=["palm_oil"]), APPLICANT)
    app = await applications.act(gcx, app.id, "start_review", reviewer)
    for r in gcx.requirements_for(app):
        if r.code != "fda_certificate":
            doc = await documents.upload_document(gcx, app.id, r.code, PDF, "x.pdf", APPLICANT)
            await documents.review_document(gcx, doc.id, True, reviewer)
    from gcx_core.exceptions import GuardFailedError

    with pytest.raises(GuardFailedError, match="fda_certificate"):
        await applications.act(gcx, app.id, "approve", reviewer)


async def test_review_rules(gcx, gcx_staff, app):
    _, viewer = await gcx_staff(Role.VIEWER)
    _, reviewer = await gcx_staff(Role.REVIEWER)
    doc = await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)
    with pytest.raises(PermissionDeniedError):
        await documents.review_document(gcx, doc.id, True, viewer)
    with pytest.raises(PermissionDeniedError):
        await documents.review_document(gcx, doc.id, True, APPLICANT)
    with pytest.raises(ValidationError, match="note"):
        await documents.review_document(gcx, doc.id, False, reviewer)
    with pytest.raises(NotFoundError):
        await documents.review_document(gcx, 424242, True, reviewer)
    rejected = await documents.review_document(gcx, doc.id, False, reviewer, note="Blurred scan")
    assert (
        rejected.review_status is ReviewStatus.REJECTED and rejected.review_note == "Blurred scan"
    )
    verified = await documents.review_document(gcx, doc.id, True, reviewer)
    assert verified.review_status is ReviewStatus.VERIFIED and verified.reviewed_by is not None
    got, content = await documents.read_document(gcx, doc.id, viewer)
    assert content == PDF and got.id == doc.id
    with pytest.raises(PermissionDeniedError):
        await documents.read_document(gcx, doc.id, APPLICANT)


async def test_no_uploads_once_closed(gcx, app):
    await applications.act(gcx, app.id, "withdraw", APPLICANT)
    with pytest.raises(InvalidTransitionError):
        await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", APPLICANT)


async def test_viewers_may_not_upload(gcx, gcx_staff, app):
    _, viewer = await gcx_staff(Role.VIEWER)
    with pytest.raises(PermissionDeniedError):
        await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "t.pdf", viewer)


async def test_timeline_for_applicant_hides_internal_notes(gcx, gcx_staff, app):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    _, admin = await gcx_staff(Role.ADMIN)
    await applications.act(
        gcx, app.id, "reject", reviewer, params={"reason_code": "other", "message": "Sorry"}
    )
    await applications.act(gcx, app.id, "reopen", admin, params={"comment": "INTERNAL appeal"})
    staff_view = await queries.timeline(gcx, app.id)
    public = await queries.timeline(gcx, app.tracking_code, for_applicant=True)
    assert "INTERNAL" in str(staff_view)
    assert "INTERNAL" not in str(public)
    assert any(i.kind == "notification" for i in staff_view)
    assert not any(i.kind == "notification" for i in public)
    assert [i.data["action"] for i in public if i.kind == "status_change"] == [
        "submit",
        "reject",
        "reopen",
    ]


def test_sniffing_and_names():
    assert sniff_content_type(PDF) == "application/pdf"
    assert sniff_content_type(HTML) is None
    assert sanitise_filename("..\\..\\boot.ini") == "boot.ini"
    assert sanitise_filename("/etc/passwd") == "passwd"
    assert sanitise_filename("a\x00b<c>.pdf") == "abc.pdf"
    assert sanitise_filename("....") == "document"
    assert len(sanitise_filename("x" * 500 + ".pdf")) <= 120
    assert sanitise_filename("x" * 500 + ".pdf").endswith(".pdf")


async def test_file_store_refuses_paths(tmp_path):
    store = LocalFileStore(tmp_path)
    key = await store.put(b"hello")
    assert await store.get(key) == b"hello"
    assert await store.put(b"hello") == key
    for bad in ("../../etc/passwd", "A" * 64, key[:-1], key + "/x"):
        with pytest.raises(ValueError):
            store.path_for(bad)
    await store.delete(key)
    assert not await store.exists(key)
