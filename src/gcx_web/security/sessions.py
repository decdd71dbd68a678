"""Server-side sessions whose id changes at sign-in, so a planted id is worth nothing."""

from __future__ import annotations

from typing import Any

from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty

ROTATE = "_rotate"
_NEW_ID = "gcx_new_session_id"


class RotatingBackend(ServerSideSessionBackend):
    """Litestar's backend, except that a session marked `_rotate` moves to a fresh id."""

    def get_session_id(self, connection: Any) -> str:
        new_id = connection.scope.get(_NEW_ID)
        return str(new_id) if new_id else super().get_session_id(connection)

    async def store_in_message(self, scope_session: Any, message: Any, connection: Any) -> None:
        if (
            scope_session is not Empty
            and isinstance(scope_session, dict)
            and ROTATE in scope_session
        ):
            scope_session.pop(ROTATE)
            old = connection.cookies.get(self.config.key)
            if old and old != "null":
                await self.delete(
                    old, store=self.config.get_store_from_app(connection.scope["app"])
                )
            connection.scope[_NEW_ID] = self.generate_session_id()
        await super().store_in_message(scope_session, message, connection)


class RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingBackend
