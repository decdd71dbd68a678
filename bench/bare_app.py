"""The baseline for bench_web.py: Litestar with GCX's request stack and handlers that do no
GCX work.

The app has the same middleware, CSRF configuration, error mapping and body limits as GCX's
(`gcx_web.app.request_stack`), and its routes sit under a router with the same options as
GCX's public API. POST decodes the same msgspec body as `POST /api/v1/applications` and
answers a fixed 201; GET answers a fixed status body of the same size as GCX's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from litestar import Litestar, Router, get, post
from litestar.params import JSONBody
from litestar.stores.memory import MemoryStore

from gcx_core.settings import Settings
from gcx_web.app import request_stack
from gcx_web.config import WebConfig
from gcx_web.schemas import ApplicationIn

STATUS = json.loads(os.environ.get("BARE_STATUS_BODY", "{}"))
SUBMITTED = {
    "tracking_code": "GCX-0000-0000-0000",
    "status": "pending_review",
    "status_url": "/api/v1/applications/GCX-0000-0000-0000",
    "submitted_at": "2026-11-28T00:00:00Z",
    "documents": [],
}


@post("/", status_code=201)
async def submit(data: JSONBody[ApplicationIn]) -> dict[str, Any]:
    return SUBMITTED


@get("/{tracking_code:str}")
async def status(tracking_code: str) -> dict[str, Any]:
    return STATUS


_settings = Settings(secret_key="bench-secret")
app = Litestar(
    [
        Router(
            "/api/v1/applications",
            route_handlers=[submit, status],
            opt={"skip_session": True, "exclude_from_csrf": True},
        )
    ],
    stores={"sessions": MemoryStore()},
    openapi_config=None,
    **request_stack(_settings, WebConfig.from_env(_settings)),
)
