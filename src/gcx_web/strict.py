"""JSON request bodies decoded strictly, before the handler runs.

Litestar converts a handler's `data` leniently (the string "1" becomes an int, "true" a bool)
and reads any content type as JSON. The public and staff APIs promise more: a body is
`application/json`, and a value of the wrong type is a 400 with its field's path. These
`before_request` hooks check that, so the handler's `data` (and the OpenAPI schema made from
it) stays as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

Hook = Callable[[Request[Any, Any, Any]], Awaitable[None]]


def strict_json(struct: type[Any]) -> Hook:
    """A hook that refuses a body that is not JSON, or not exactly a `struct`."""
    decoder = msgspec.json.Decoder(struct, strict=True)

    async def check(request: Request[Any, Any, Any]) -> None:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(status_code=415, detail="send the body as application/json")
        try:
            decoder.decode(await request.body())
        except msgspec.ValidationError as exc:
            raise ValidationException(
                detail="the request is malformed", extra=[{"message": str(exc)}]
            ) from None
        except msgspec.DecodeError:
            raise ValidationException(
                detail="the request body could not be read",
                extra=[{"message": "is not valid JSON", "key": "$"}],
            ) from None

    check.__name__ = f"strict_json_{struct.__name__}"
    return check


def in_turn(*hooks: Hook) -> Hook:
    """One `before_request` hook that runs several, in order."""

    async def run(request: Request[Any, Any, Any]) -> None:
        for hook in hooks:
            await hook(request)

    return run
