"""GCX core: the domain, workflow, storage and plugin system of a supplier application programme.

Imports neither litestar nor taskiq: the web and notification packages build on this one.
"""

from __future__ import annotations

from gcx_core.entities import Actor, ActorKind, Application, Role, User
from gcx_core.exceptions import GcxError
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.settings import Settings
from gcx_core.system import Gcx

__all__ = [
    "Actor",
    "ActorKind",
    "Application",
    "Gcx",
    "GcxError",
    "Role",
    "Settings",
    "User",
    "hookimpl",
    "make_plugin_manager",
]
