"""gcx_web's built-in plugin: its hookspecs, pages, API, templates and commands.

Registered through the `gcx` entry point like any third-party plugin; the built-in routes and
templates go through the same hooks a plugin uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

from gcx_core.plugins import hookimpl
from gcx_web import hookspecs

TEMPLATES = Path(__file__).parent / "templates"


@hookimpl
def gcx_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl(tryfirst=True)
def gcx_web_register_routes(register: Callable[[Any], None]) -> None:
    from gcx_web import account, health, metrics
    from gcx_web.applicant import api, pages, track
    from gcx_web.backoffice import admin, sockets
    from gcx_web.backoffice import api as staff_api
    from gcx_web.backoffice import pages as backoffice

    register(api.router())
    register(staff_api.router())
    for handler in (
        *pages.HANDLERS,
        *track.HANDLERS,
        *health.HANDLERS,
        *metrics.HANDLERS,
        *account.HANDLERS,
        *backoffice.HANDLERS,
        *admin.HANDLERS,
        *sockets.HANDLERS,
    ):
        register(handler)


@hookimpl(trylast=True)
def gcx_web_register_templates(register: Callable[[Any], None]) -> None:
    register(TEMPLATES)


@hookimpl
def gcx_register_commands(subparsers: Any) -> None:
    from gcx_web.cli import register

    register(subparsers)


@hookimpl
def gcx_process_services(gcx: Any, role: str) -> Any:
    """In scale-out workers and schedulers, publish live updates to Redis for the web."""
    if role not in ("worker", "scheduler") or not gcx.settings.redis_url:
        return None
    from gcx_web.live.publisher import redis_publishing

    return redis_publishing(gcx)
