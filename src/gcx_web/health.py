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
    """The database (and Redis, when configured) answer; 503 otherwise."""
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
    channels = request.app.state.channels
    backend = channels._backend
    redis = getattr(backend, "_redis", None)
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
        # Litestar's pub/sub tasks do not survive a Redis restart (stack notes §1.2): report it.
        for name in ("_sub_task", "_pub_task"):
            task = getattr(channels, name, None)
            if task is not None and task.done():
                checks["channels"] = "failed: live updates stopped"
    ok = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


HANDLERS = [live, ready]
