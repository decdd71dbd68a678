"""The back office: dashboard, applications (list, CSV, detail, actions), documents."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import attrs
from litestar import Request, Response, get, post
from litestar.datastructures import MultiDict, UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from gcx_core.entities import Application, Notification, NotificationStatus
from gcx_core.exceptions import (
    ConflictError,
    GcxError,
    GuardFailedError,
    InvalidTransitionError,
    UnknownStateError,
    ValidationError,
)
from gcx_core.plugins import first_async
from gcx_core.reference import (
    COMMODITIES,
    DOCUMENTS_MESSAGE,
    REGIONS,
    REJECTION_MESSAGES,
    REJECTION_REASONS,
)
from gcx_core.services import applications as app_service
from gcx_core.services import assignment, bulk, dashboard, staff
from gcx_core.services import documents as doc_service
from gcx_core.services import messages as message_service
from gcx_core.services import notes as notes_service
from gcx_core.services import views as saved
from gcx_core.services.deadlines import AGEING, deadline_for
from gcx_core.services.queries import (
    ApplicationFilter,
    Page,
    documents_of,
    get_application,
    list_applications,
    timeline,
)
from gcx_core.storage.documents import latest_versions
from gcx_core.workflow import APPROVAL_PENDING
from gcx_web.backoffice.filters import parse_filter
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY
from gcx_web.display import Labels
from gcx_web.errors import describe
from gcx_web.schemas import RowId, dashboard_out
from gcx_web.security.auth import current_actor, flash, page_context, requires
from gcx_web.security.headers import document_response

STALE = (
    "Someone changed this application after you opened it. Nothing was saved: check the page "
    "as it is now and try again."
)
VIEW = [requires("view")]
REVIEW = [requires("review")]
ADMIN = [requires("admin")]
# Whitelisted CSV columns: (header, how to read it from the application and the labels).
# Codes come with their labels, so a spreadsheet can filter on either. Nothing else ever
# leaves by export.
CSV_COLUMNS: list[tuple[str, Any]] = [
    ("tracking_code", lambda a, k: a.tracking_code),
    ("business_name", lambda a, k: a.business.name),
    ("business_type", lambda a, k: a.business.business_type),
    ("business_type_label", lambda a, k: k.labels.business_type(a.business.business_type)),
    ("tin", lambda a, k: a.business.tin),
    ("region", lambda a, k: a.business.region),
    ("region_name", lambda a, k: k.labels.region(a.business.region)),
    ("city", lambda a, k: a.business.city),
    ("email", lambda a, k: a.contact.email),
    ("telephone", lambda a, k: a.contact.telephone),
    ("commodities", lambda a, k: ";".join(a.commodities)),
    ("commodity_names", lambda a, k: "; ".join(k.labels.commodity(c) for c in a.commodities)),
    ("status", lambda a, k: a.status),
    ("status_label", lambda a, k: k.labels.status(a.status)),
    ("assigned_reviewer_id", lambda a, k: a.assigned_reviewer_id or ""),
    ("assigned_reviewer", lambda a, k: k.names.get(a.assigned_reviewer_id, "")),
    ("created_at", lambda a, k: a.created_at.isoformat()),
    ("updated_at", lambda a, k: a.updated_at.isoformat()),
]


@attrs.frozen
class CsvLabels:
    labels: Labels
    names: dict[int, str]


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


@get("/backoffice/", guards=VIEW, include_in_schema=False)
async def dashboard_page(request: Request[Any, Any, Any]) -> Template:
    gcx = request.app.state.gcx
    snap = await dashboard.snapshot(gcx)
    data = dashboard_out(snap)
    people = await staff.staff_users(gcx)
    return Template(
        "backoffice/dashboard.html",
        context=await page_context(
            request,
            snap=data,
            reviewers=staff.reviewers_of(people),
            buckets=[name for name, _ in AGEING],
        ),
    )


@get("/backoffice/dashboard.json", guards=VIEW, include_in_schema=False)
async def dashboard_json(request: Request[Any, Any, Any]) -> Any:
    return dashboard_out(await dashboard.snapshot(request.app.state.gcx))


SORTABLE = {
    "tracking_code": None,
    "business_name": "business_name",
    "region": "region",
    "status": "status",
    "status_changed_at": "status_changed_at",
    "created_at": "created_at",
}
PAGE_SIZES = (25, 50, 100, 200)


def query_with(params: Any, **changes: Any) -> str:
    """The list's query string with some parameters replaced (None drops one)."""
    pairs = [(k, v) for k, v in params.multi_items() if k not in changes and v not in ("", None)]
    for key, value in changes.items():
        if value not in (None, ""):
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


@get("/backoffice/applications", guards=VIEW, include_in_schema=False)
async def applications_page(request: Request[Any, Any, Any]) -> Template:
    gcx = request.app.state.gcx
    params = request.query_params
    errors: dict[str, list[str]] = {}
    user, actor = await current_actor(request)
    try:
        flt = parse_filter(params, gcx, me=user.id)
    except ValidationError as exc:  # shown by the filter it concerns; nothing is listed
        errors = exc.errors
        flt = ApplicationFilter()
        page: Page[Application] = Page([], 0, 1, flt.per_page)
    else:
        page = await list_applications(gcx, flt)
    people = await staff.staff_users(gcx)  # one query for the reviewer choices and names
    return Template(
        "backoffice/applications.html",
        context=await page_context(
            request,
            page=page,
            flt=flt,
            query=request.url.query or "",
            params=params,
            errors=errors,
            states=list(gcx.workflow.states.values()),
            regions=REGIONS,
            commodities=COMMODITIES,
            reviewers=staff.reviewers_of(people),
            names=staff.names_of(people),
            sortable=SORTABLE,
            page_sizes=PAGE_SIZES,
            queue=params.get("queue") or "all",
            views=await saved.views_for(gcx, user.id),
            bulk_ok=actor.can("review"),
            reasons=REJECTION_REASONS,
            chosen_statuses=params.getall("status", []),
            query_with=lambda **changes: query_with(params, **changes),
        ),
        status_code=422 if errors else 200,
    )


@get("/backoffice/applications/export.csv", guards=VIEW, include_in_schema=False)
async def export_csv(request: Request[Any, Any, Any]) -> Stream:
    """Exactly the filtered set, every page of it, in whitelisted columns."""
    gcx = request.app.state.gcx
    user, _ = await current_actor(request)
    flt = parse_filter(request.query_params, request.app.state.gcx, per_page=200, me=user.id)
    known = CsvLabels(
        Labels(request.app.state.status_labels, request.app.state.requirement_titles),
        await staff.staff_names(gcx),
    )

    async def rows() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([name for name, _ in CSV_COLUMNS])
        number = 1
        while True:
            page = await list_applications(gcx, attrs.evolve(flt, page=number, per_page=200))
            for app in page.items:
                writer.writerow([csv_cell(read(app, known)) for _, read in CSV_COLUMNS])
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


# Field names of action and review forms, as the forms label them.
FIELD_LABELS = {
    "message": "Message to the applicant",
    "comment": "Note",
    "reason_code": "Reason",
    "requirement_codes": "Documents to request",
    "note": "Note",
    "document": "Document",
}
# What the built-in actions did, said to the member of staff who did it.
DONE = {
    "start_review": "Review started: the application is yours to review.",
    "request_documents": "Documents requested: the applicant has been emailed what to send.",
    "approve": "Approved: the supplier account is open and the applicant has been emailed how "
    "to sign in.",
    "reject": "Rejected: the applicant has been emailed the reason.",
    "reopen": "Reopened: the application is under review again.",
    "confirm_approval": "Approved: the supplier account is open and the applicant has been "
    "emailed how to sign in.",
    "return_to_review": "Sent back to review: the reviewer has been emailed.",
}
FIRST_APPROVAL = "First approval given: another approver must confirm it; they have been emailed."


def _action_label(gcx: Any, action: str) -> str:
    transition = gcx.workflow.transitions.get(action)
    label = getattr(transition, "label", "") if transition is not None else ""
    return label or action.replace("_", " ").capitalize()


def staff_error(exc: GcxError, gcx: Any, action: str, status: str) -> tuple[str, dict[str, Any]]:
    """Why an action or review was refused, in words staff read, and its field errors by label."""
    what = _action_label(gcx, action)
    if isinstance(exc, ConflictError):
        return STALE, {}
    if isinstance(exc, GuardFailedError):
        return f"{what} was refused: " + "; ".join(exc.reasons.values()) + ".", {}
    if isinstance(exc, UnknownStateError):
        return f"{what} was refused: {exc}.", {}
    if isinstance(exc, InvalidTransitionError):
        label = gcx.workflow.state(status).label
        return f"{what} is not possible while the application is “{label}”.", {}
    body, _ = describe(exc)
    fields = {
        FIELD_LABELS.get(path, path.replace("_", " ").capitalize()): msgs
        for path, msgs in body.fields.items()
    }
    if fields:
        return f"{what}: nothing was saved. Check the fields below.", fields
    return f"{what}: {body.message}.", {}


async def _detail(
    request: Request[Any, Any, Any], app_id: int, *, status_code: int = 200
) -> Template:
    gcx = request.app.state.gcx
    app = await get_application(gcx, app_id)
    versions = await documents_of(gcx, app.id)
    items = await timeline(gcx, app.id)
    people = await staff.staff_users(gcx)
    _, actor = await current_actor(request)
    context = await page_context(
        request,
        app=app,
        state=gcx.workflow.states.get(app.status),  # None: a status no plugin defines
        versions=versions,
        latest=latest_versions(versions),
        requirements=gcx.requirements_for(app),
        timeline=items,
        reasons=REJECTION_REASONS,
        names=staff.names_of(people),
        reviewers=staff.reviewers_of(people),
        conflicted=await assignment.conflicted_with(gcx, app),
        open_for_work=gcx.workflow.waits(app.status),
        notes=await notes_service.notes_of(gcx, app.id, actor),
        thread=await message_service.thread(gcx, app.id),
        unread=await message_service.mark_read(gcx, app.id, message_service.STAFF),
        deadline=await deadline_for(gcx, app.id),
    )
    context["actions"] = _actions(request, app, context["actor"])
    context["blocked"] = await app_service.blocked_actions(
        gcx, app, context["actor"], context["actions"]
    )
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
) -> Redirect | Template:
    """Apply an action, then back to the application (post/redirect/get) with a message
    saying what happened, or why nothing did."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    app = await get_application(gcx, app_id)  # an unknown application: 404
    page = f"/backoffice/applications/{app.id}"
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
        flash(request, f"There is no action “{action}”.", ok=False)
        return Redirect(page, status_code=303)
    if form.get("preview") and action in PREVIEWED:
        return await _decision_preview(request, app, action, params)
    try:
        after = await app_service.act(
            gcx,
            app_id,
            action,
            actor,
            expected_version=int(version)
            if isinstance(version, str) and version.isdigit()
            else None,
            params=params,
        )
    except GcxError as exc:
        body, _ = describe(exc)
        if body.status == 403:
            raise
        text, fields = staff_error(exc, gcx, action, app.status)
        flash(request, text, ok=False, fields=fields)
        return Redirect(page, status_code=303)
    status = gcx.workflow.state(after.status).label
    what = _action_label(gcx, action)
    if after.status == APPROVAL_PENDING:
        flash(request, FIRST_APPROVAL)
    else:
        flash(request, DONE.get(action, f"{what}: done. The application is now “{status}”."))
    return Redirect(page, status_code=303)


# Decisions whose email staff may read, and edit, before it is sent: its template's name.
PREVIEWED = {"reject": "rejected", "request_documents": "documents_requested"}


async def _decision_preview(
    request: Request[Any, Any, Any], app: Application, action: str, params: dict[str, Any]
) -> Template:
    """The applicant's email as it would go, from the form's choices; an empty message
    starts from the reason's (or the request's) usual wording."""
    gcx = request.app.state.gcx
    message = str(params.get("message") or "")
    context: dict[str, Any] = {
        "business_name": app.business.name,
        "tracking_code": app.tracking_code,
        "application_id": app.id,
        "status": gcx.workflow.transitions[action].target,
        "previous_status": app.status,
    }
    problems: list[str] = []
    if action == "reject":
        code = str(params.get("reason_code") or "")
        if code not in REJECTION_REASONS:
            problems.append("choose a reason")
        message = message or REJECTION_MESSAGES.get(code, "")
        context.update(reason_code=code, reason=REJECTION_REASONS.get(code, ""))
    else:
        codes = [c for c in params.get("requirement_codes", []) if c in gcx.requirements]
        if not codes:
            problems.append("tick the documents to request")
        message = message or DOCUMENTS_MESSAGE
        context["requirements"] = [{"code": c, "title": gcx.requirements[c].title} for c in codes]
    context["message"] = message
    now = gcx.now()
    draft = Notification(
        id=0,
        type=PREVIEWED[action],
        channel="email",
        recipient=app.contact.email,
        template=PREVIEWED[action],
        context=context,
        dedupe_key="",
        status=NotificationStatus.PENDING,
        attempts=0,
        max_attempts=1,
        created_at=now,
        updated_at=now,
        application_id=app.id,
    )
    shown = await first_async(
        gcx.plugins.hook.gcx_web_notification_preview, gcx=gcx, notification=draft
    )
    return Template(
        "backoffice/decision_preview.html",
        context=await page_context(
            request,
            app=app,
            action=action,
            what=_action_label(gcx, action),
            preview=shown,
            message=message,
            params=params,
            problems=problems,
            reasons=REJECTION_REASONS,
            requirements=gcx.requirements_for(app),
        ),
    )


@post("/backoffice/applications/{app_id:int}/assignment", guards=REVIEW, include_in_schema=False)
async def application_assignment(request: Request[Any, Any, Any], app_id: RowId) -> Redirect:
    """Take, give back or (admins) assign; back to the application with what happened."""
    gcx = request.app.state.gcx
    user, actor = await current_actor(request)
    app = await get_application(gcx, app_id)
    page = f"/backoffice/applications/{app.id}"
    form = await request.form()
    version, chosen = str(form.get("version") or ""), str(form.get("reviewer_id") or "")
    if chosen and not chosen.isdigit():
        flash(request, "Choose a reviewer from the list.", ok=False)
        return Redirect(page, status_code=303)
    reviewer_id = int(chosen) if chosen else None
    try:
        after = await assignment.assign(
            gcx,
            app.id,
            reviewer_id,
            actor,
            expected_version=int(version) if version.isdigit() else None,
        )
    except GcxError as exc:
        text, fields = staff_error(exc, gcx, "assign", app.status)
        flash(request, text, ok=False, fields=fields)
        return Redirect(page, status_code=303)
    if after.assigned_reviewer_id is None:
        flash(request, "Nobody is assigned now: the application waits in the unassigned queue.")
    elif after.assigned_reviewer_id == user.id:
        flash(request, "It is yours: the application is in your queue.")
    else:
        name = staff.names_of(await staff.staff_users(gcx)).get(after.assigned_reviewer_id, "")
        flash(request, f"Assigned to {name}; they have been emailed.")
    return Redirect(page, status_code=303)


def _list_url(query: str) -> str:
    """The list with a query string a form sent back, re-encoded (nothing but parameters)."""
    pairs = parse_qsl(query[:2000])
    return "/backoffice/applications" + (f"?{urlencode(pairs)}" if pairs else "")


def _refused(request: Request[Any, Any, Any], exc: GcxError, what: str, back: str) -> Redirect:
    """Back to the list with why nothing happened (a 403 stays a 403)."""
    body, _ = describe(exc)
    if body.status == 403:
        raise exc
    reasons = "; ".join(f"{k}: {'; '.join(v)}" for k, v in body.fields.items()) or body.message
    flash(request, f"{what}: {reasons}.", ok=False)
    return Redirect(back, status_code=303)


async def _all_matching(gcx: Any, flt: ApplicationFilter) -> list[Application]:
    """Every application a filter lists (up to bulk.MAX_ITEMS), page by page."""
    found: list[Application] = []
    page = 1
    while True:
        listed = await list_applications(gcx, attrs.evolve(flt, page=page, per_page=200))
        if listed.total > bulk.MAX_ITEMS:
            raise ValidationError(
                {"scope": f"{listed.total} applications match; at most {bulk.MAX_ITEMS} at once"}
            )
        if listed.page != page:  # past the last page
            return found
        found.extend(listed.items)
        if len(found) >= listed.total:
            return found
        page += 1


def _bulk_params(form: Any) -> dict[str, Any]:
    return {k: form.get(k) for k in ("reviewer_id", "reason_code", "message")}


@post("/backoffice/bulk", guards=REVIEW, include_in_schema=False)
async def bulk_confirm(request: Request[Any, Any, Any]) -> Template | Redirect:
    """The confirmation step: what will be done to which applications."""
    gcx = request.app.state.gcx
    user, _ = await current_actor(request)
    form = await request.form()
    operation, query = str(form.get("operation") or ""), str(form.get("query") or "")
    back = _list_url(query)
    try:
        if form.get("scope") == "all":
            flt = parse_filter(MultiDict(parse_qsl(query)), gcx, me=user.id)
        else:
            ids = [str(v) for v in form.getall("id", [])]
            if not ids:
                raise ValidationError({"id": "tick the applications first"})
            flt = parse_filter(MultiDict([("id", i) for i in ids]), gcx, me=user.id)
        apps = await _all_matching(gcx, flt)
        if operation == "export":
            pairs = [("id", str(a.id)) for a in apps]
            return Redirect(
                f"/backoffice/applications/export.csv?{urlencode(pairs)}", status_code=303
            )
        params = bulk.check(operation, [a.id for a in apps], _bulk_params(form))
    except GcxError as exc:
        return _refused(request, exc, "Nothing was done", back)
    people = await staff.staff_users(gcx)
    return Template(
        "backoffice/bulk_confirm.html",
        context=await page_context(
            request,
            apps=apps,
            operation=operation,
            what=bulk.OPERATIONS[operation],
            params=params,
            names=staff.names_of(people),
            reasons=REJECTION_REASONS,
            back=back,
        ),
    )


@post("/backoffice/bulk/run", guards=REVIEW, include_in_schema=False)
async def bulk_run(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Do it, each application on its own, and show what became of each."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    form = await request.form()
    operation = str(form.get("operation") or "")
    ids = [int(v) for v in form.getall("id", []) if str(v).isdigit()]
    try:
        outcomes = await bulk.run(gcx, actor, operation, ids, _bulk_params(form))
    except GcxError as exc:
        return _refused(request, exc, "Nothing was done", "/backoffice/applications")
    apps = {
        a.id: a
        for a in await _all_matching(
            gcx, ApplicationFilter(ids=tuple(o.application_id for o in outcomes))
        )
    }
    what = bulk.OPERATIONS[operation]
    rows = []
    for o in outcomes:
        app = apps.get(o.application_id)
        reason = ""
        if o.error is not None:
            reason, _ = staff_error(o.error, gcx, operation, app.status if app else "")
        rows.append((o.application_id, app, o.done, reason))
    done = sum(1 for o in outcomes if o.done)
    return Template(
        "backoffice/bulk_results.html",
        context=await page_context(
            request, rows=rows, what=what, done=done, refused=len(outcomes) - done
        ),
    )


@post("/backoffice/applications/{app_id:int}/notes", guards=REVIEW, include_in_schema=False)
async def note_add(request: Request[Any, Any, Any], app_id: RowId) -> Redirect:
    """Write an internal note; back to the application with who was told."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    app = await get_application(gcx, app_id)
    page = f"/backoffice/applications/{app.id}#notes"
    form = await request.form()
    try:
        note = await notes_service.add_note(gcx, app.id, actor, str(form.get("body") or ""))
    except GcxError as exc:
        return _refused(request, exc, "The note was not saved", page)
    names = staff.names_of(await staff.staff_users(gcx))
    told = ", ".join(names.get(i, "") for i in note.mentions)
    flash(request, f"Note saved{'; emailed ' + told if told else ''}.")
    return Redirect(page, status_code=303)


@post("/backoffice/applications/{app_id:int}/messages", guards=REVIEW, include_in_schema=False)
async def message_write(request: Request[Any, Any, Any], app_id: RowId) -> Redirect:
    """Write to the applicant; back to the thread."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    app = await get_application(gcx, app_id)
    page = f"/backoffice/applications/{app.id}#messages"
    form = await request.form()
    try:
        await message_service.write_to_applicant(gcx, app.id, actor, str(form.get("body") or ""))
    except GcxError as exc:
        return _refused(request, exc, "The message was not sent", page)
    flash(request, "Sent: the applicant has been emailed the message.")
    return Redirect(page, status_code=303)


@get("/backoffice/messages/{message_id:int}/file", guards=VIEW, include_in_schema=False)
async def message_file(request: Request[Any, Any, Any], message_id: RowId) -> Response[bytes]:
    """An applicant's attachment, for staff only, as a download that cannot run."""
    _, actor = await current_actor(request)
    message, content = await message_service.attachment(request.app.state.gcx, message_id, actor)
    return document_response(
        _Download(message.file_type, message.file_name or "attachment"), content
    )


@attrs.frozen
class _Download:
    content_type: str
    original_name: str


@post("/backoffice/views", guards=VIEW, include_in_schema=False)
async def view_save(request: Request[Any, Any, Any]) -> Redirect:
    """Keep the list's current filters under a name (shared with everyone, for admins)."""
    gcx = request.app.state.gcx
    user, actor = await current_actor(request)
    form = await request.form()
    query = str(form.get("query") or "")
    back = _list_url(query)
    try:
        cleaned = saved.clean_query(query)
        parse_filter(MultiDict(parse_qsl(cleaned)), gcx, me=user.id)  # a view that lists
        view = await saved.save_view(
            gcx, actor, str(form.get("name") or ""), cleaned, shared=form.get("shared") == "on"
        )
    except GcxError as exc:
        return _refused(request, exc, "The view was not saved", back)
    flash(request, f"Saved as “{view.name}”{' for everyone' if view.shared else ''}.")
    return Redirect(f"/backoffice/applications?{view.query}", status_code=303)


@post("/backoffice/views/{view_id:int}/delete", guards=VIEW, include_in_schema=False)
async def view_delete(request: Request[Any, Any, Any], view_id: RowId) -> Redirect:
    _, actor = await current_actor(request)
    await saved.delete_view(request.app.state.gcx, actor, view_id)
    flash(request, "The view was deleted.")
    return Redirect("/backoffice/applications", status_code=303)


@get("/backoffice/documents/{document_id:int}/file", guards=VIEW, include_in_schema=False)
async def document_file(request: Request[Any, Any, Any], document_id: RowId) -> Response[bytes]:
    """The bytes of one version, for staff only, always as a download that cannot run."""
    _, actor = await current_actor(request)
    document, content = await doc_service.read_document(request.app.state.gcx, document_id, actor)
    return document_response(document, content, inline=request.query_params.get("view") == "1")


@post("/backoffice/documents/{document_id:int}/review", guards=REVIEW, include_in_schema=False)
async def document_review(request: Request[Any, Any, Any], document_id: RowId) -> Redirect:
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    document = await doc_service.get_document(gcx, document_id)  # unknown: 404
    page = f"/backoffice/applications/{document.application_id}#documents"
    form = await request.form()
    verified = form.get("decision") == "verify"
    title = request.app.state.requirement_titles.get(
        document.requirement_code, document.requirement_code
    )
    try:
        await doc_service.review_document(
            gcx, document_id, verified, actor, note=str(form.get("note") or "")
        )
    except GcxError as exc:
        body, _ = describe(exc)
        if body.status == 403:
            raise
        what = "Verify" if verified else "Reject"
        text, fields = staff_error(exc, gcx, what.lower(), "")
        flash(request, f"{title} v{document.version}: {text}", ok=False, fields=fields)
        return Redirect(page, status_code=303)
    verdict = "verified" if verified else "rejected: the applicant can send a new version"
    flash(request, f"{title} v{document.version} {verdict}.")
    return Redirect(page, status_code=303)


@post(
    "/backoffice/applications/{app_id:int}/documents",
    guards=REVIEW,
    include_in_schema=False,
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
)
async def document_upload(request: Request[Any, Any, Any], app_id: RowId) -> Redirect:
    """A reviewer uploads a document on the applicant's behalf (sent by post, say): any
    requirement, optional ones included; checked like the applicant's own uploads, recorded
    under the reviewer's name, waiting for review like any other version."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    app = await get_application(gcx, app_id)  # unknown: 404
    page = f"/backoffice/applications/{app.id}#documents"
    form = await request.form()
    code = str(form.get("requirement_code") or "")
    upload = form.get("document")
    title = request.app.state.requirement_titles.get(code, code)
    if not code:
        flash(request, "Upload: choose the document it is.", ok=False)
        return Redirect(page, status_code=303)
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(request, f"{title}: choose a file to upload.", ok=False)
        return Redirect(page, status_code=303)
    try:
        version = await doc_service.upload_document(
            gcx, app.id, code, await upload.read(), upload.filename, actor
        )
    except GcxError as exc:
        body, _ = describe(exc)
        if body.status == 403:
            raise
        messages = [m for ms in body.fields.values() for m in ms] or [body.message]
        flash(request, f"{title}: nothing was uploaded. " + " ".join(messages), ok=False)
        return Redirect(page, status_code=303)
    flash(request, f"{title} v{version.version} uploaded; it waits for review.")
    return Redirect(page, status_code=303)


@post("/backoffice/documents/{document_id:int}/undo", guards=ADMIN, include_in_schema=False)
async def document_undo(request: Request[Any, Any, Any], document_id: RowId) -> Redirect:
    """An admin puts a reviewed version back to pending (a verification made by mistake)."""
    gcx = request.app.state.gcx
    _, actor = await current_actor(request)
    document = await doc_service.get_document(gcx, document_id)
    page = f"/backoffice/applications/{document.application_id}#documents"
    title = request.app.state.requirement_titles.get(
        document.requirement_code, document.requirement_code
    )
    try:
        await doc_service.undo_review(gcx, document_id, actor)
    except ValidationError as exc:
        text, fields = staff_error(exc, gcx, "undo", "")
        flash(request, f"{title} v{document.version}: {text}", ok=False, fields=fields)
        return Redirect(page, status_code=303)
    flash(request, f"{title} v{document.version} is waiting for review again.")
    return Redirect(page, status_code=303)


@get("/backoffice/documents/{document_id:int}", guards=VIEW, include_in_schema=False)
async def document_page(request: Request[Any, Any, Any], document_id: RowId) -> Redirect:
    """A document version is shown on its application's page."""
    document = await doc_service.get_document(request.app.state.gcx, document_id)
    return Redirect(
        f"/backoffice/applications/{document.application_id}#documents", status_code=303
    )


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
    application_assignment,
    view_save,
    view_delete,
    bulk_confirm,
    bulk_run,
    note_add,
    message_write,
    message_file,
    document_file,
    document_review,
    document_upload,
    document_undo,
    document_page,
    application_notifications,
]
