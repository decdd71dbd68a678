"""The express lane: the public API's two busiest calls, answered before Litestar's own stack.

`GET /api/v1/applications/{code}` (the status lookup) and `POST /api/v1/applications` (a
submission as JSON) are what applicants and their integrations call most, and on the embedded
server Litestar's per-request work (connection objects, routing, the middleware chain,
parameter parsing, response objects) costs more than a cached lookup and a good part of a
submission. So the app offers each request to the lane first. The lane answers only the
successful case, with the same body and headers as the routes in `gcx_web.api`: a lookup of an
existing application, or a well-formed submission that was stored. Everything else goes on
through Litestar, where those routes still exist, and gets the one error mapping of DESIGN §7:
unknown codes (404), rate-limited clients (429), bodies Litestar refuses (400, 413, 415),
invalid or duplicate submissions (422, 409), failures (500) and every other path. A
submission the lane read and did not store is handed over with its body replayed (nothing was
written, so Litestar does it again and answers its way). A request counted against its rate
limit in the lane is marked (`ratelimit.SPENT`) so that Litestar does not count it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gcx_core.entities import Actor
from gcx_core.foreground import Foreground
from gcx_core.services.applicant import applicant_view
from gcx_core.services.applications import submit
from gcx_web.ratelimit import SPENT, scope_address
from gcx_web.wire import ApplicationIn, as_submission, submitted_out

Receive = Callable[[], Awaitable[Any]]

COLLECTION = "/api/v1/applications"
PREFIX = COLLECTION + "/"
_JSON = (b"content-type", b"application/json")


class Express:
    def __init__(
        self,
        state: Any,
        headers: list[tuple[bytes, bytes]],
        foreground: Foreground,
        max_body: int,
    ) -> None:
        self.state = state  # the app's state: gcx and status_json once the lifespan started
        self.headers = headers
        self.foreground = foreground
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Receive, send: Any) -> Receive | None:
        """None when the lane answered; otherwise the `receive` Litestar must read from."""
        if scope.get("root_path") or getattr(self.state, "gcx", None) is None:
            return receive  # mounted under a prefix, or not started yet
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "GET" and path.startswith(PREFIX):
            code = path[len(PREFIX) :]
            if code and "/" not in code:
                return await self._lookup(scope, receive, send, code)
        elif method == "POST" and path == COLLECTION:
            return await self._submit(scope, receive, send)
        return receive

    async def _lookup(self, scope: Any, receive: Receive, send: Any, code: str) -> Receive | None:
        state = self.state
        if not await self._spend(scope, "lookup", scope_address(scope, state.rate_limiter.trusted)):
            return receive
        self.foreground.started()
        try:
            try:
                body: bytes = state.status_json(await applicant_view(state.gcx, code))
            except Exception:  # an unknown code, or a failure: Litestar answers it its own way
                return receive
            await self._answer(send, 200, body)
        finally:
            self.foreground.finished()
        return None

    async def _submit(self, scope: Any, receive: Receive, send: Any) -> Receive | None:
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        if (
            content_type is None
            or content_type.split(b";", 1)[0].strip().lower() != b"application/json"
            or length is None
            or not length.isdigit()
            or int(length) > self.max_body
        ):
            return receive
        who = scope_address(scope, self.state.rate_limiter.trusted)
        if not await self._spend(scope, "submit", who):
            return receive
        self.foreground.started()
        try:
            body, replay = await self._read(receive)
            if body is None:
                return replay
            try:
                data = msgspec.json.decode(body, type=ApplicationIn)
                app = await submit(self.state.gcx, as_submission(data), Actor.applicant(who))
            except Exception:  # nothing was stored: Litestar reads the same body again
                return replay
            await self._answer(send, 201, msgspec.json.encode(submitted_out(app, [])))
        finally:
            self.foreground.finished()
        return None

    async def _spend(self, scope: Any, bucket: str, who: str) -> bool:
        """Count the request; False when the client is over its limit (Litestar answers the
        429, and counting once more changes nothing then)."""
        if await self.state.rate_limiter.spend(bucket, who) is not None:
            return False
        scope[SPENT] = bucket
        return True

    async def _read(self, receive: Receive) -> tuple[bytes | None, Receive]:
        """The whole body, and a `receive` that gives Litestar the same messages again. The
        body is None when it was cut short or ran over the limit: Litestar decides then."""
        messages: list[Any] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return None, _replaying(messages, receive)
            size += len(message.get("body", b""))
            if size > self.max_body:
                return None, _replaying(messages, receive)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        return body, _replaying(messages, receive)

    async def _answer(self, send: Any, status: int, body: bytes) -> None:
        headers = [_JSON, (b"content-length", b"%d" % len(body)), *self.headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _replaying(messages: list[Any], receive: Receive) -> Receive:
    """`receive`, after giving `messages` once more."""
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
