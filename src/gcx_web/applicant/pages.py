"""`/apply`: the application as a multi-step form that works without JavaScript.

The draft lives in the server-side session: each step is validated on its own (the domain
validator's errors for that step's fields), files are checked by content when chosen and kept
in the file store until the application is submitted.
"""

from __future__ import annotations

import types
from typing import Any, cast

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gcx_core.entities import Application
from gcx_core.exceptions import DocumentError, DuplicateApplicationError, ValidationError
from gcx_core.reference import COMMODITIES_BY_CODE, REGIONS_BY_CODE
from gcx_core.services import applications as app_service
from gcx_core.services import documents as doc_service
from gcx_core.services.queries import documents_of, find_by_tracking_code
from gcx_core.validation import validate_submission
from gcx_web.applicant.api import applicant
from gcx_web.applicant.forms import (
    STEPS,
    STEPS_BY_SLUG,
    Step,
    errors_for,
    field_label,
    first_incomplete,
    form_values,
    merge,
    read_step,
)
from gcx_web.config import DEFAULT_MAX_UPLOAD_BODY
from gcx_web.errors import describe, error_messages
from gcx_web.security.ratelimit import rate_limited

DRAFT = "apply"
# What this browser session last submitted, so that the confirmation page can be shown again.
SUBMITTED = "apply_submitted"


def _draft(request: Request[Any, Any, Any]) -> dict[str, Any]:
    draft = request.session.get(DRAFT) if request.session else None
    if not isinstance(draft, dict):
        draft = {"data": {}, "files": {}, "done": []}
    return draft


def _save(request: Request[Any, Any, Any], draft: dict[str, Any]) -> None:
    session = dict(request.session or {})
    session[DRAFT] = draft
    request.set_session(session)


def _discard(request: Request[Any, Any, Any]) -> None:
    session = dict(request.session or {})
    session.pop(DRAFT, None)
    request.set_session(session)


def _earlier_step_missing(draft: dict[str, Any], step: Step) -> Redirect | None:
    """A redirect to the first step not done yet, when it comes before `step`."""
    missing = first_incomplete(draft["done"])
    if missing is not None and STEPS.index(missing) < STEPS.index(step):
        return Redirect(f"/apply/{missing.slug}", status_code=303)
    return None


def _unsubmitted(data: dict[str, Any]) -> Application:
    """What requirement checks need of the application a draft will become."""
    commodities = tuple(c for c in data.get("commodities", []) if isinstance(c, str))
    return cast(Application, types.SimpleNamespace(id=0, commodities=commodities, status=""))


def _requirements(request: Request[Any, Any, Any], data: dict[str, Any]) -> list[Any]:
    return list(request.app.state.gcx.requirements_for(_unsubmitted(data)))


def _labels_for(request: Request[Any, Any, Any], errors: dict[str, Any]) -> dict[str, str]:
    titles = request.app.state.requirement_titles
    return {path: field_label(path, titles) for path in errors}


def _step_page(
    request: Request[Any, Any, Any],
    step: Step,
    draft: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    index = STEPS.index(step)
    return Template(
        "apply/step.html",
        context={
            "step": step,
            "steps": STEPS,
            "index": index,
            "done": set(draft["done"]),
            "values": values if values is not None else form_values(step, draft["data"]),
            "errors": errors or {},
            "field_labels": _labels_for(request, errors or {}),
            "requirements": _requirements(request, draft["data"])
            if step.slug == "documents"
            else [],
            "files": draft["files"],
        },
        status_code=status_code,
    )


@get("/", include_in_schema=False)
async def home() -> Template:
    return Template("home.html")


@get("/apply", include_in_schema=False)
async def apply_start(request: Request[Any, Any, Any]) -> Redirect:
    step = first_incomplete(_draft(request)["done"])
    return Redirect(f"/apply/{step.slug}" if step else "/apply/review", status_code=303)


def _lookup_step(slug: str) -> Step:
    step = STEPS_BY_SLUG.get(slug)
    if step is None:
        raise NotFoundException(f"no step {slug!r}")
    return step


@get("/apply/{slug:str}", include_in_schema=False)
async def apply_step(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template | Redirect:
    if slug == "review":
        return await _review(request)
    step = _lookup_step(slug)
    draft = _draft(request)
    earlier = _earlier_step_missing(draft, step)
    return earlier or _step_page(request, step, draft)


async def _limit_uploads(request: Request[Any, Any, Any]) -> None:
    """Files sent with the form count against the client's upload budget, like uploads."""
    if request.path_params.get("slug") == "documents":
        await request.app.state.rate_limiter.check("upload", request)


@post(
    "/apply/{slug:str}",
    include_in_schema=False,
    before_request=_limit_uploads,
    # The same bound as the upload route: documents go one (or a few small ones) at a time.
    request_max_body_size=DEFAULT_MAX_UPLOAD_BODY,
)
async def apply_save(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template | Redirect:
    step = _lookup_step(slug)
    draft = _draft(request)
    earlier = _earlier_step_missing(draft, step)
    if earlier is not None:  # nothing of a later step is read, let alone stored, before
        return earlier
    form = await request.form()
    if step.slug == "documents":
        errors = await _take_files(request, draft, form)
    else:
        update = read_step(step, form, form.getall)
        draft["data"] = merge(draft["data"], update)
        errors = _step_errors(request, step, draft["data"])
    if errors:
        _save(request, draft)
        values = form_values(step, draft["data"])
        return _step_page(request, step, draft, errors, values, status_code=422)
    if step.slug not in draft["done"]:
        draft["done"].append(step.slug)
    _save(request, draft)
    following = first_incomplete(draft["done"])
    return Redirect(f"/apply/{following.slug}" if following else "/apply/review", status_code=303)


def _step_errors(
    request: Request[Any, Any, Any], step: Step, data: dict[str, Any]
) -> dict[str, list[str]]:
    gcx = request.app.state.gcx
    try:
        validate_submission(_complete(data), phone_format=gcx.phone_format, now=gcx.now())
    except ValidationError as exc:
        return errors_for(step, exc.errors)
    return {}


def _complete(data: dict[str, Any]) -> dict[str, Any]:
    """Sections of later steps are empty objects, so their absence is not this step's error."""
    full: dict[str, Any] = {"business": {}, "contact": {}, "next_of_kin": {}, "declaration": {}}
    full.update(data)
    full.setdefault("bank_accounts", {"primary": {}})
    return full


async def _take_files(
    request: Request[Any, Any, Any], draft: dict[str, Any], form: Any
) -> dict[str, list[str]]:
    gcx = request.app.state.gcx
    errors: dict[str, list[str]] = {}
    holder = _unsubmitted(draft["data"])
    before = {info["key"] for info in draft["files"].values()}
    try:
        await _take_each(gcx, request, draft, form, holder, errors)
    finally:
        # Files a draft let go of (replaced or removed) are not kept.
        kept = {info["key"] for info in draft["files"].values()}
        await doc_service.discard_files(gcx, before - kept)
    return errors


async def _take_each(
    gcx: Any,
    request: Request[Any, Any, Any],
    draft: dict[str, Any],
    form: Any,
    holder: Application,
    errors: dict[str, list[str]],
) -> None:
    for requirement in _requirements(request, draft["data"]):
        field = f"documents.{requirement.code}"
        if form.get(f"remove.{requirement.code}"):
            draft["files"].pop(requirement.code, None)
        upload = form.get(field)
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        if requirement.expiry_date:
            # It needs its expiry date, asked for on the status page once submitted.
            errors[field] = [
                f"{requirement.title} needs its expiry date: send it from your application's "
                "status page once the application is submitted."
            ]
            continue
        content = await upload.read()
        if not content:
            continue
        try:
            checked = await doc_service.check_upload(
                gcx, holder, requirement.code, content, upload.filename
            )
        except (DocumentError, ValidationError) as exc:
            errors[field], _ = error_messages(exc)
            continue
        key = await doc_service.keep_draft_file(gcx, content)
        draft["files"][requirement.code] = {
            "key": key,
            "name": checked.filename,
            "size": len(content),
            "type": checked.content_type,
        }


async def _review(
    request: Request[Any, Any, Any],
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    status_code: int = 200,
) -> Template | Redirect:
    draft = _draft(request)
    missing = first_incomplete(draft["done"])
    if missing is not None:
        return Redirect(f"/apply/{missing.slug}", status_code=303)
    errors = errors or {}
    return Template(
        "apply/review.html",
        context={
            "steps": STEPS,
            "data": draft["data"],
            "files": draft["files"],
            "requirements": {r.code: r for r in _requirements(request, draft["data"])},
            "regions": REGIONS_BY_CODE,
            "commodities": COMMODITIES_BY_CODE,
            "errors": errors,
            "step_errors": {s.slug: errors_for(s, errors) for s in STEPS},
            "field_labels": _labels_for(request, errors),
            "still_needed": [
                r
                for r in _requirements(request, draft["data"])
                if r.required and r.code not in draft["files"]
            ],
            "message": message,
        },
        status_code=status_code,
    )


@post("/apply/submit", include_in_schema=False, before_request=rate_limited("submit"))
async def apply_submit(request: Request[Any, Any, Any]) -> Template | Redirect:
    gcx = request.app.state.gcx
    draft = _draft(request)
    if first_incomplete(draft["done"]) is not None:
        return Redirect("/apply", status_code=303)
    actor = applicant(request)
    contents: dict[str, bytes] = {}
    lost = False
    for code, info in list(draft["files"].items()):
        try:
            contents[code] = await gcx.files.get(info["key"])
        except FileNotFoundError:  # let go of meanwhile (by another draft that held it too)
            draft["files"].pop(code)
            lost = True
    if lost:  # back to the documents step, to send it again
        draft["done"] = [d for d in draft["done"] if d != "documents"]
        _save(request, draft)
        return Redirect("/apply/documents", status_code=303)
    try:
        app = await app_service.submit(gcx, _complete(draft["data"]), actor)
    except (ValidationError, DuplicateApplicationError) as exc:
        body, _ = describe(exc)
        return await _review(request, body.fields, body.message, status_code=body.status)
    uploaded = [
        await doc_service.upload_document(
            gcx, app.id, code, content, draft["files"][code]["name"], actor
        )
        for code, content in contents.items()
    ]
    # The documents hold the files now: they are no longer the draft's to expire.
    await doc_service.discard_files(gcx, {info["key"] for info in draft["files"].values()})
    session = dict(request.session or {})
    session.pop(DRAFT, None)
    session[SUBMITTED] = {"code": app.tracking_code, "documents": [d.id for d in uploaded]}
    request.set_session(session)
    # Post/redirect/get: reloading the confirmation shows it again instead of posting again.
    return Redirect("/apply/done", status_code=303)


@get("/apply/done", include_in_schema=False)
async def apply_done(request: Request[Any, Any, Any]) -> Template | Redirect:
    """The confirmation of what this browser session submitted last, with its tracking code."""
    submitted = (request.session or {}).get(SUBMITTED)
    if not isinstance(submitted, dict):
        return Redirect("/track", status_code=303)
    gcx = request.app.state.gcx
    app = await find_by_tracking_code(gcx, submitted["code"])
    kept = set(submitted.get("documents", []))
    uploaded = [d for d in await documents_of(gcx, app.id) if d.id in kept]
    return Template(
        "apply/done.html",
        context={"application": app, "documents": uploaded, "email": app.contact.email},
    )


@get("/apply/submit", include_in_schema=False)
async def apply_submit_again(request: Request[Any, Any, Any]) -> Redirect:
    """A reload or a bookmark of the submit address: the confirmation, or the form."""
    if isinstance((request.session or {}).get(SUBMITTED), dict):
        return Redirect("/apply/done", status_code=303)
    return Redirect("/apply", status_code=303)


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> Redirect:
    """Browsers and tools that ask for /favicon.ico get the site's icon, not a 404."""
    return Redirect("/static/favicon.svg", status_code=301)


@get("/apply/restart", include_in_schema=False)
async def apply_restart_confirm(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Ask before a draft (and the files it holds) is thrown away."""
    draft = _draft(request)
    if not draft["done"] and not draft["files"]:
        return Redirect("/apply", status_code=303)
    return Template(
        "apply/restart.html",
        context={"files": draft["files"], "steps_done": len(draft["done"]), "steps": STEPS},
    )


@post("/apply/restart", include_in_schema=False)
async def apply_restart(request: Request[Any, Any, Any]) -> Redirect:
    keys = {info["key"] for info in _draft(request)["files"].values()}
    await doc_service.discard_files(request.app.state.gcx, keys)
    _discard(request)
    return Redirect("/apply", status_code=303)


HANDLERS = [
    home,
    favicon,
    apply_start,
    apply_done,
    apply_submit_again,
    apply_step,
    apply_submit,
    apply_restart_confirm,
    apply_restart,
    apply_save,
]
