"""The hooks of gcx_web: plugins add routes and template folders exactly as the built-ins do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import jinja2
    from litestar.types import ControllerRouterHandler

    from gcx_core.entities import Notification
    from gcx_core.system import Gcx

hookspec = pluggy.HookspecMarker("gcx")

ASYNC_HOOKS = frozenset(
    {"gcx_web_notification_preview", "gcx_web_captured_mail", "gcx_web_captured_message"}
)


@hookspec
def gcx_web_register_routes(register: Callable[[ControllerRouterHandler], None]) -> None:
    """Add Litestar route handlers, controllers or routers to the web app.

    :param register: call ``register(handler)`` once per handler, ``Controller`` subclass or
        ``Router``. Handlers receive the running ``Gcx`` as ``request.app.state.gcx``. The
        built-in pages register ``tryfirst``; a plugin may add paths but not replace theirs.
    """


@hookspec
def gcx_web_register_templates(
    register: Callable[[str | Path | jinja2.BaseLoader], None],
) -> None:
    """Add Jinja2 template folders or loaders, searched before the built-in templates.

    :param register: call ``register(path_or_loader)`` with a folder (``str`` or ``Path``) or a
        ``jinja2.BaseLoader``. Earlier registrations win, and the built-ins register ``trylast``,
        so a plugin's ``apply/done.html`` replaces the default page.
    """


@hookspec
def gcx_web_backoffice_links() -> list[tuple[str, str, str]] | None:
    """Add links to the back office's navigation bar, for a plugin's own pages.

    :return: ``(label, path, permission)`` tuples; a link shows to staff whose role has the
        permission (``"view"``, ``"review"`` or ``"admin"``), and is marked current on pages
        under its path. Guard the pages themselves too: a hidden link is not a lock.
    """


@hookspec
def gcx_web_notification_preview(gcx: Gcx, notification: Notification) -> dict[str, str] | None:
    """Render a notification for the back office: ``{"subject", "text", "html"}``, or None.

    gcx_notify answers with its templates; links carrying a token are shown redacted.

    :param gcx: the running ``Gcx``.
    :param notification: a ``gcx_core.entities.Notification``.
    """


@hookspec
def gcx_web_captured_mail(gcx: Gcx, limit: int, recipient: str) -> list[dict[str, Any]] | None:
    """Return the newest captured messages (embedded mode without SMTP), or None if none exist.

    Each message is a dict with ``id``, ``recipient``, ``subject``, ``text``, ``html``,
    ``message_id`` and ``created_at``.

    :param gcx: the running ``Gcx``.
    :param limit: how many, newest first.
    :param recipient: only messages whose recipient contains this text ("" for all).
    """


@hookspec
def gcx_web_captured_message(gcx: Gcx, message_id: int) -> dict[str, Any] | None:
    """Return one captured message (the same dict as ``gcx_web_captured_mail``'s), or None.

    :param gcx: the running ``Gcx``.
    :param message_id: its ``id``.
    """
