"""The back office: dashboard, applications (list, CSV, detail, actions), documents."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import attrs
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from gcx_core.exceptions import ConflictError, GcxError
from gcx_core.reference import COMMODITIES, REGIONS, REJECTION_REASONS
from gcx_core.services import applications as app_service
from gcx_core.services import dashboard
from gcx_core.services import documents as doc_service
from gcx_core.services.queries import documents_of, get_application, list_applications, timeline
from gcx_core.storage.documents import latest_versions
from gcx_web.backoffice.filters import parse_filter
from gcx_web.errors import describe
from gcx_web.schemas import RowId, dashboard_out
from gcx_web.security.auth import current_actor, page_context, requires
from gcx_web.security.headers import content_disposition

STALE = (
    "Someone changed this application after you opened it. Nothing was saved: check the page "
    "as it is now and try again."
)
VIEW = [requires("view")]
REVIEW = [requires("review")]
# Whitelisted CSV columns: (header, how to read it). Nothing else ever leaves by export.
CSV_COLUMNS: list[tuple[str, Any]] = [
    ("tracking_code", lambda a: a.tracking_code),
    ("business_name", lambda a: a.business.name),
    ("business_type", lambda a: a.business.business_type),
    ("tin", lambda a: a.business.tin),
    ("region", lambda a: a.business.region),
    ("city", lambda a: a.business.city),
    ("email", lambda a: a.contact.email),
    ("telephone", lambda a: a.contact.telephone),
    ("commodities", lambda a: ";".join(a.commodities)),
    ("status", lambda a: a.status),
    ("assigned_reviewer_id", lambda a: a.assigned_reviewer_id or ""),
    ("created_at", lambda a: a.created_at.isoformat()),
    ("updated_at", lambda a: a.updated_at.isoformat()),
]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


@get("/backoffice/", guards=VIEW, include_in_schema=False)
async def dashboard_page(request: Request[Any, Any, Any]) -> Template:
    snap = await dashboard.snapshot(request.app.state.gcx)
    data = dashboard_out(snap)
    return Template("backoffice/dashboard.html", context=await page_context(request, snap=data))


@get("/backoffice/dashboard.json", guards=VIEW, include_in_schema=False)
async def dashboard_json(request: Request[Any, Any, Any]) -> Any:
    return dashboard_out(await dashboard.snapshot(request.app.state.gcx))


@get("/backoffice/applications", guards=VIEW, include_in_schema=False)
async def applications_page(request: Request[Any, Any, Any]) -> Template:
    gcx = request.app.state.gcx
    flt = parse_filter(request.query_params, request.app.state.gcx)
    page = await list_applications(gcx, flt)
    query = request.url.query or ""
    return Template(
        "backoffice/applications.html",
        context=await page_context(
            request,
            page=page,
            flt=flt,
            query=query,
            params=request.query_params,
            states=list(gcx.workflow.states.values()),
            regions=REGIONS,
            commodities=COMMODITIES,
        ),
    )


@get("/backoffice/applications/export.csv", guards=VIEW, include_in_schema=False)
async def export_csv(request: Request[Any, Any, Any]) -> Stream:
    """Exactly the filtered set, every page of it, in whitelisted columns."""
    gcx = request.app.state.gcx
    flt = parse_filter(request.query_params, request.app.state.gcx, per_page=200)

    async def rows() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([name for name, _ in CSV_COLUMNS])
        number = 1
        while True:
            page = await list_applications(gcx, attrs.evolve(flt, page=number, per_page=200))
            for app in page.items:
                writer.writerow([csv_cell(read(app)) for _, read in CSV_COLUMNS])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if number * 200 >= page.total or not page.items:
                return
            number += 1

    return Stream(
        rows(),
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types
        headers={"Content-Disposition": 'attachment; filename="applications.csv"'},
    )


def _actions(request: Request[Any, Any, Any], app: Any, actor: Any) -> list[str]:
    return list(request.app.state.gcx.workflow.allowed_actions(app, actor))


async def _detail(
    request: Request[Any, Any, Any],
    app_id: int,
    *,
    error: str = "",
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> Template:
    gcx = request.app.state.gcx
    app = await get_application(gcx, app_id)
    versions = await documents_of(gcx, app.id)
    items = await timeline(gcx, app.id)
    context = await page_context(
        request,
        app=app,
        state=gcx.workflow.state(app.status),
        versions=versions,
        latest=latest_versions(versions),
        requirements=gcx.requirements_for(app),
        timeline=items,
        reasons=REJECTION_REASONS,
        labels=request.app.state.status_labels,
        titles=request.app.state.requirement_titles,
        error=error,
        errors=errors or {},
    )
    context["actions"] = _actions(request, app, context["actor"])
    return Template("backoffice/application.html", context=context, status_code=status_code)


@get("/backoffice/applications/{app_id:int}", guards=VIEW, include_in_schema=False)
async def application_page(request: Request[Any, Any, Any], app_id: RowId) -> Template:
    return await _detail(request, app_id)


@post(
    "/backoffice/applications/{app_id:int}/actions/{action:str}",
    guards=REVIEW,
    include_in_schema=False,
)
async def application_action(
    request: Request[Any, Any, Any], app_id: RowId, action: FromPath[str]
) -> Template | Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    version = form.get("version")
    params: dict[str, Any] = {}
    for key in ("message", "comment", "reason_code"):
        value = form.get(key)
        if isinstance(value, str) and value.strip():
            params[key] = value
    if action == "request_documents":
        params["requirement_codes"] = [str(v) for v in form.getall("requirement_codes", [])]
    if action not in gcx.workflow.transitions:
        return await _detail(
            request, app_id, error=f"There is no action {action!r}.", status_code=404
        )
    try:
        await app_service.act(
            gcx,
            app_id,
            action,
            actor,
            expected_version=int(version)
            if isinstance(version, str) and version.isdigit()
            else None,
            params=params,
        )
    except ConflictError:
        return await _detail(
            request,
            app_id,
            error=STALE,
            status_code=409,
        )
    except GcxError as exc:
        body, _ = describe(exc)
        if body.status in (403, 404):
            raise
        return await _detail(
            request, app_id, error=body.message, errors=body.fields, status_code=body.status
        )
    return Redirect(f"/backoffice/applications/{app_id}", status_code=303)


@get("/backoffice/documents/{document_id:int}/file", guards=VIEW, include_in_schema=False)
async def document_file(request: Request[Any, Any, Any], document_id: RowId) -> Response[bytes]:
    """The bytes of one version, for staff only, always as a download that cannot run."""
    _, actor = await current_actor(request)
    document, content = await doc_service.read_document(request.app.state.gcx, document_id, actor)
    disposition = "inline" if request.query_params.get("view") == "1" else "attachment"
    return Response(
        content,
        media_type=document.content_type,
        headers={
            "Content-Disposition": content_disposition(disposition, document.original_name),
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


@post("/backoffice/documents/{document_id:int}/review", guards=REVIEW, include_in_schema=False)
async def document_review(
    request: Request[Any, Any, Any], document_id: RowId
) -> Template | Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    verified = form.get("decision") == "verify"
    try:
        doc = await doc_service.review_document(
            gcx, document_id, verified, actor, note=str(form.get("note") or "")
        )
    except GcxError as exc:
        body, _ = describe(exc)
        app_id = form.get("application_id")
        if body.status in (403, 404) or not (isinstance(app_id, str) and app_id.isdigit()):
            raise
        return await _detail(
            request, int(app_id), error=body.message, errors=body.fields, status_code=body.status
        )
    return Redirect(f"/backoffice/applications/{doc.application_id}#documents", status_code=303)


@get("/backoffice/applications/{app_id:int}/notifications", guards=VIEW, include_in_schema=False)
async def application_notifications(request: Request[Any, Any, Any], app_id: RowId) -> Redirect:
    return Redirect(f"/backoffice/notifications?application={app_id}", status_code=303)


HANDLERS = [
    dashboard_page,
    dashboard_json,
    applications_page,
    export_csv,
    application_page,
    application_action,
    document_file,
    document_review,
    application_notifications,
]
