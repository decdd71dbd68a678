"""Staff websockets: the dashboard, one application, the notifications stream.

Each checks the Origin, the session (staff with the view permission) before accepting, sends a
snapshot, then forwards channel messages as they come; a slow client loses its oldest
messages (bounded backlog), never the server's memory.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import WebSocket, websocket

from gcx_core.exceptions import NotFoundError
from gcx_core.services import dashboard
from gcx_core.services.queries import get_application
from gcx_web.live.publisher import LiveMessage, dashboard_data
from gcx_web.live.redis_backend import RESYNC
from gcx_web.live.sockets import follow, origin_allowed
from gcx_web.schemas import RowId
from gcx_web.security.auth import session_user


async def _admit(socket: WebSocket[Any, Any, Any]) -> bool:
    """Close the socket (before accepting) unless a signed-in staff member opens it."""
    if not origin_allowed(socket, socket.app.state.config.allowed_origins):
        await socket.close(code=4403, reason="origin not allowed")
        return False
    user = await session_user(socket)
    if user is None or not user.can("view"):
        await socket.close(code=4401, reason="sign in as staff first")
        return False
    return True


def _forward(snapshot: Any) -> Any:
    async def render(event: Any) -> bytes | None:
        # A fresh snapshot first, and again whenever live updates were interrupted.
        if event is None or event == RESYNC:
            return await snapshot()
        return event if isinstance(event, bytes) else str(event).encode()

    return render


@websocket("/ws/dashboard")
async def dashboard_socket(socket: WebSocket[Any, Any, Any]) -> None:
    if not await _admit(socket):
        return
    await socket.accept()
    gcx = socket.app.state.gcx

    async def snapshot() -> bytes:
        data = await dashboard_data(gcx, [])
        return msgspec.json.encode(LiveMessage("dashboard", 0, gcx.now(), data))

    await follow(socket, ["dashboard"], _forward(snapshot))


@websocket("/ws/applications/{app_id:int}")
async def application_socket(socket: WebSocket[Any, Any, Any], app_id: RowId) -> None:
    if not await _admit(socket):
        return
    gcx = socket.app.state.gcx
    try:
        app = await get_application(gcx, app_id)
    except NotFoundError:
        await socket.close(code=4404, reason="not found")
        return
    await socket.accept()

    async def snapshot() -> bytes:
        current = await get_application(gcx, app.id)
        data = {"application_id": current.id, "version": current.version, "status": current.status}
        return msgspec.json.encode(LiveMessage("application", 0, current.updated_at, data))

    await follow(socket, [f"application:{app.id}"], _forward(snapshot))


@websocket("/ws/notifications")
async def notifications_socket(socket: WebSocket[Any, Any, Any]) -> None:
    if not await _admit(socket):
        return
    await socket.accept()
    gcx = socket.app.state.gcx

    async def snapshot() -> bytes:
        snap = await dashboard.snapshot(gcx)
        return msgspec.json.encode(
            LiveMessage("notifications", 0, snap.at, dict(snap.notifications))
        )

    await follow(socket, ["notifications"], _forward(snapshot))


HANDLERS = [dashboard_socket, application_socket, notifications_socket]
