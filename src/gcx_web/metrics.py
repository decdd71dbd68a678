"""`/metrics` for Prometheus, and the middleware that counts and times every request.

The endpoint answers a scraper holding `GCX_METRICS_TOKEN` (as a bearer token). Without a
token configured it answers only a client on this machine that came straight in (loopback,
no `X-Forwarded-For`): a reverse proxy on the same host forwards its clients' requests with
that header, so they are refused (404, as if there were nothing there).
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from gcx_core.logs import log_context
from gcx_web.errors import describe

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(scope: Any) -> bytes:
    """The caller's X-Request-ID when it is a plain token (a proxy's, say), else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return bytes(value)
    return uuid.uuid4().hex[:16].encode()


def metrics_middleware(app: Any) -> Any:
    """ASGI middleware (inside routing, so each request has its route's path template): counts
    and times the request, and gives it a request id (`X-Request-ID` on the answer, and on
    every log record made while it runs)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        gcx = getattr(scope["app"].state, "gcx", None) if scope["type"] == "http" else None
        if gcx is None:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = request_id_of(scope)

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            with log_context(request_id=request_id.decode()):
                await app(scope, receive, sending)
        except Exception as exc:
            # Answered by the error handlers outside this middleware: count the status they
            # will send.
            status = describe(exc)[0].status
            raise
        finally:
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]
            metrics = gcx.metrics
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.request_seconds.labels(method, route).observe(time.perf_counter() - started)

    return middleware


def _allowed(request: Request[Any, Any, Any]) -> bool:
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    client = request.client.host if request.client else ""
    return client in LOOPBACK and "x-forwarded-for" not in request.headers


@get("/metrics", include_in_schema=False, opt={"skip_session": True, "exclude_from_csrf": True})
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    if not _allowed(request):
        raise NotFoundException()
    gcx = request.app.state.gcx
    await gcx.metrics.refresh(gcx)
    return Response(
        gcx.metrics.exposition(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


HANDLERS = [metrics]
