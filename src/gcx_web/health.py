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
    """The database (and Redis, when configured: the client this app holds) answer; 503
    otherwise."""
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
    ok = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


HANDLERS = [live, ready]
