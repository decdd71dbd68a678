"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get


@get("/health/live", include_in_schema=False, sync_to_thread=False)
def live() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/health/ready", include_in_schema=False)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """503 when this process cannot serve: the database does not answer. Redis (when
    configured) is reported but does not fail readiness: every web process shares it, so a
    Redis restart would take them all out of the load balancer at once, while submissions and
    lookups still work without it; the answer then says "degraded"."""
    checks: dict[str, str] = {}
    gcx = getattr(request.app.state, "gcx", None)
    try:
        if gcx is None:
            raise RuntimeError("not started")
        async with gcx.database.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; say which part
        checks["database"] = f"failed: {type(exc).__name__}"
    redis = request.app.state.redis
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
        backend = getattr(request.app.state, "live_backend", None)
        if backend is not None:
            checks["live_updates"] = "ok" if backend.connected else "reconnecting"
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(v != "ok" for v in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return Response({"status": status, "checks": checks}, status_code=code)


HANDLERS = [live, ready]
