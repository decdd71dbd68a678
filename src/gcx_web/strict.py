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
        body = await request.body()
        try:
            decoder.decode(body)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc) or not _integral_floats_fit(body, struct):
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


def _integral_floats_fit(body: bytes, struct: type[Any]) -> bool:
    """Whether the body fits once numbers like 2.0 count as the integers they equal (JSON
    Schema, and so the OpenAPI document, counts them as integers)."""

    def whole(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        if isinstance(value, list):
            return [whole(v) for v in value]
        if isinstance(value, dict):
            return {k: whole(v) for k, v in value.items()}
        return value

    try:
        msgspec.convert(whole(msgspec.json.decode(body)), struct, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return False
    return True


def in_turn(*hooks: Hook) -> Hook:
    """One `before_request` hook that runs several, in order."""

    async def run(request: Request[Any, Any, Any]) -> None:
        for hook in hooks:
            await hook(request)

    return run
