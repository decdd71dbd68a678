"""The baseline for bench_web.py: bare Litestar handlers with the same bodies and no GCX work.

POST decodes the same msgspec body as `POST /api/v1/applications` and answers a fixed 201;
GET answers a fixed status body of the same size as GCX's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from litestar import Litestar, get, post
from litestar.params import JSONBody

from gcx_web.wire import ApplicationIn

STATUS = json.loads(os.environ.get("BARE_STATUS_BODY", "{}"))
SUBMITTED = {
    "tracking_code": "GCX-0000-0000-0000",
    "status": "pending_review",
    "status_url": "/api/v1/applications/GCX-0000-0000-0000",
    "submitted_at": "2026-11-28T00:00:00Z",
    "documents": [],
}


@post("/api/v1/applications", status_code=201)
async def submit(data: JSONBody[ApplicationIn]) -> dict[str, Any]:
    return SUBMITTED


@get("/api/v1/applications/{tracking_code:str}")
async def status(tracking_code: str) -> dict[str, Any]:
    return STATUS


app = Litestar([submit, status], openapi_config=None)
