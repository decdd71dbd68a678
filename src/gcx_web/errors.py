"""The one mapping from errors to HTTP responses (DESIGN §7).

The API answers ``{"error": {"status", "code", "message", "fields"}}`` everywhere; pages get the
same facts as an HTML page. Unexpected errors are logged with their trace and answered with a
bare 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from gcx_core import exceptions as ex
from gcx_core.logs import throttled
from gcx_core.storage.database import database_unavailable

log = logging.getLogger("gcx_web")
outage_log = throttled("gcx_web.database", interval=10.0)


class ErrorBody(msgspec.Struct):
    status: int
    code: str
    message: str
    fields: dict[str, list[str]] = {}


class ErrorResponse(msgspec.Struct):
    """The shape of every error the API returns."""

    error: ErrorBody


# Most specific first: the first matching class decides.
_DOMAIN: list[tuple[type[Exception], int, str]] = [
    (ex.ValidationError, 422, "invalid"),
    (ex.NotFoundError, 404, "not_found"),
    (ex.ConflictError, 409, "conflict"),
    (ex.DuplicateApplicationError, 409, "duplicate"),
    (ex.InvalidTransitionError, 409, "invalid_transition"),
    (ex.GuardFailedError, 409, "refused"),
    (ex.PermissionDeniedError, 403, "forbidden"),
    (ex.AuthenticationError, 401, "unauthenticated"),
    (ex.TokenError, 410, "link_expired"),
    (ex.FileTooLargeError, 413, "too_large"),
    (ex.UnsupportedFileTypeError, 415, "unsupported_type"),
    (ex.DocumentError, 422, "invalid_document"),
]
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "link_expired",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
}
_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)


def describe(exc: Exception) -> tuple[ErrorBody, dict[str, str]]:
    """Status, code, message and field errors for an exception, plus headers to send."""
    for cls, status, code in _DOMAIN:
        if isinstance(exc, cls):
            return ErrorBody(status, code, _message(exc), _fields(exc)), {}
    if isinstance(exc, ValidationException):
        return _decode_error(exc), {}
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):
        # msgspec gives up on JSON nested past Python's recursion limit: a malformed body.
        return ErrorBody(400, "bad_request", "the request body is nested too deeply"), {}
    if isinstance(exc, UnicodeDecodeError):
        # A form field (a multipart part without a file name, say) whose bytes are not UTF-8.
        return ErrorBody(400, "bad_request", "the request holds text that is not UTF-8"), {}
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status >= 500:
            return ErrorBody(status, "unavailable", "the service is unavailable"), {}
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else "request refused"
        # Litestar reports an over-long multipart form as 400 "Request Entity Too Large".
        if status == 400 and "too large" in message.lower():
            status = 413
        return ErrorBody(status, _HTTP_CODES.get(status, "error"), message), dict(exc.headers or {})
    if database_unavailable(exc):
        return ErrorBody(503, "unavailable", DATABASE_DOWN), {"Retry-After": RETRY_AFTER}
    return ErrorBody(500, "internal", "something went wrong on our side"), {}


def error_messages(exc: Exception) -> tuple[list[str], int]:
    """What a form shows next to one field for an error: its field messages (or its message),
    and the status to answer with."""
    body, _ = describe(exc)
    return [m for msgs in body.fields.values() for m in msgs] or [body.message], body.status


DATABASE_DOWN = "a service GCX needs cannot be reached just now; try again in a few seconds"
RETRY_AFTER = "5"


def _message(exc: Exception) -> str:
    if isinstance(exc, ex.ValidationError):
        return "some fields need attention"
    return str(exc)


def _fields(exc: Exception) -> dict[str, list[str]]:
    if isinstance(exc, ex.ValidationError):
        return exc.errors
    if isinstance(exc, ex.DuplicateApplicationError):
        names = {"email": "contact.email", "TIN": "business.tin"}
        return {
            names.get(f, f): ["an active application already uses this value"] for f in exc.fields
        }
    if isinstance(exc, ex.GuardFailedError):
        return {name: [reason] for name, reason in exc.reasons.items()}
    return {}


def _decode_error(exc: ValidationException) -> ErrorBody:
    """Litestar's decoding errors (malformed JSON, wrong types, unknown fields) with paths."""
    fields: dict[str, list[str]] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        text = str(item.get("message", ""))
        match = _AT.match(text)
        message, where = (match.group(1), match.group(2)) if match else (text, None)
        path = (where or "").lstrip(".") or str(item.get("key") or "$")
        fields.setdefault(path, []).append(message)
    message = "the request body could not be read" if not fields else "the request is malformed"
    return ErrorBody(400, "bad_request", message, fields)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """Pages answer errors with pages; the API, schema and health endpoints with JSON."""
    return not request.url.path.startswith(("/api/", "/schema", "/health"))


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    body, headers = describe(exc)
    if body.status == 401 and wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)
    if body.status == 503 and database_unavailable(exc):
        # One line, at most every few seconds: an outage must not flood the log with tracebacks.
        outage_log.warning(
            "database unavailable: %s", _first_line(exc), extra={"event": "outage.database"}
        )
    elif body.status >= 500:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if wants_html(request):
        return Template(
            "error.html",
            context={"error": body},
            status_code=body.status,
            headers=headers,
            media_type=MediaType.HTML,
        )
    return Response(
        ErrorResponse(body), status_code=body.status, headers=headers, media_type=MediaType.JSON
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ex.GcxError: handle,
    HTTPException: handle,
    RecursionError: handle,
    UnicodeDecodeError: handle,
    HTTP_500_INTERNAL_SERVER_ERROR: handle,
}
