"""Security headers on every HTTP response, errors and static files included."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from litestar import Response

# No inline script anywhere: scripts and styles come from /static only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def security_headers(app: Any) -> Any:
    """ASGI middleware: every HTTP response, errors and static files included, gets the
    security headers."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                # A response that sets one of these itself (a sandboxed file, say) keeps its own.
                own = message.get("headers", ())
                names = {name.lower() for name, _ in own}
                message["headers"] = [
                    *own,
                    *(h for h in SECURITY_HEADERS if h[0] not in names),
                ]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def content_disposition(disposition: str, filename: str) -> str:
    """A Content-Disposition value for any file name (RFC 6266): an ASCII ``filename`` for old
    clients, and the name itself, UTF-8 and percent-encoded, as ``filename*``."""
    plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    plain = "".join(ch if ch.isprintable() and ch not in '"\\' else "_" for ch in plain).strip()
    value = f'{disposition}; filename="{plain or "document"}"'
    if plain != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def document_response(document: Any, content: bytes, *, inline: bool = False) -> Response[bytes]:
    """A stored document's bytes as an answer that cannot run anything: its own type, a
    sandbox, never cached, downloaded unless `inline`."""
    return Response(
        content,
        media_type=document.content_type,
        headers={
            "Content-Disposition": content_disposition(
                "inline" if inline else "attachment", document.original_name
            ),
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )
