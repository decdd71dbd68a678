"""The express lane: `GET /api/v1/applications/{code}` answered before Litestar's own stack.

The status lookup is the endpoint applicants and their integrations call most, and on the
embedded server Litestar's per-request work (connection objects, routing, the middleware
chain, parameter parsing, response objects) costs more than the lookup itself, whose view
and JSON are kept while the application is unchanged (`applicant_view`, `wire.status_json`).
So the app looks at each request first: a lookup whose client is within its rate limit and
whose application exists is answered here, with the same body and headers as the route
`gcx_web.api.application_status` would send. Everything else goes on through Litestar, where
that route still exists: unknown codes (404), rate-limited clients (429), errors (500) and
every other path get the one error mapping of DESIGN §7. A request counted here is marked
(`ratelimit.SPENT`) so that Litestar does not count it again.
"""

from __future__ import annotations

from typing import Any

from gcx_core.foreground import Foreground
from gcx_core.services.applicant import applicant_view
from gcx_web.ratelimit import SPENT, scope_address

PREFIX = "/api/v1/applications/"
_JSON = (b"content-type", b"application/json")


class Express:
    def __init__(
        self, state: Any, headers: list[tuple[bytes, bytes]], foreground: Foreground
    ) -> None:
        self.state = state  # the app's state: gcx and status_json once the lifespan started
        self.headers = headers
        self.foreground = foreground

    async def __call__(self, scope: Any, send: Any) -> bool:
        """Answer the request if it is a lookup this lane serves; False to leave it to Litestar."""
        path: str = scope["path"]
        if (
            scope["method"] != "GET"
            or not path.startswith(PREFIX)
            or "/" in path[len(PREFIX) :]
            or len(path) == len(PREFIX)
            or scope.get("root_path")
        ):
            return False
        state = self.state
        gcx = getattr(state, "gcx", None)
        if gcx is None:  # not started yet
            return False
        limiter = state.rate_limiter
        if await limiter.spend("lookup", scope_address(scope, limiter.trusted)) is not None:
            return False  # Litestar answers the 429 (counting once more changes nothing then)
        scope[SPENT] = "lookup"
        self.foreground.started()
        try:
            try:
                body: bytes = state.status_json(await applicant_view(gcx, path[len(PREFIX) :]))
            except Exception:  # an unknown code, or a failure: Litestar answers it its own way
                return False
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [_JSON, (b"content-length", b"%d" % len(body)), *self.headers],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            self.foreground.finished()
        return True
