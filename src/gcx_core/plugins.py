"""The plugin manager: built by a function, never at import time, and an async-aware caller."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from inspect import isawaitable
from typing import Any

import attrs
import pluggy

from gcx_core import hookspecs
from gcx_core.exceptions import PluginError

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("gcx")
ENTRY_POINT_GROUP = "gcx"

# Built-in behaviour, registered through the same hooks as third-party plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "gcx_core.default_plugins.workflow",
    "gcx_core.default_plugins.requirements",
    "gcx_core.default_plugins.notifications",
    "gcx_core.default_plugins.phones",
)


def make_plugin_manager(
    *,
    plugins: Iterable[object] = (),
    disabled: Iterable[str] = (),
    load_entry_points: bool = True,
    default_plugins: Iterable[str] = DEFAULT_PLUGINS,
) -> pluggy.PluginManager:
    """Build a fresh manager: default plugins, installed `gcx` entry points, then `plugins`.

    `disabled` names plugins (module names of defaults, entry-point names of installed ones)
    that must not load, as GCX_DISABLE_PLUGINS does.
    """
    pm = pluggy.PluginManager("gcx")
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    for module_name in default_plugins:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc
    pm.hook.gcx_add_hookspecs.call_historic(kwargs={"plugin_manager": pm})
    check_plugin_manager(pm)
    return pm


def async_hooks(caller: pluggy.HookCaller) -> frozenset[str]:
    """The hooks that its hookspecs module (``ASYNC_HOOKS``) says may be async."""
    spec = caller.spec
    return getattr(spec.namespace, "ASYNC_HOOKS", frozenset()) if spec else frozenset()


def check_plugin_manager(pm: pluggy.PluginManager) -> None:
    """Catch typos in hook names, async implementations of hooks called synchronously (they
    would never run) and wrappers on async hooks; call after registering plugins."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    callers = {c.name: c for p in pm.get_plugins() for c in pm.get_hookcallers(p) or ()}
    for name, caller in callers.items():
        if caller.spec is None:
            continue
        may_be_async = name in async_hooks(caller)
        for impl in caller.get_hookimpls():
            if may_be_async and (impl.hookwrapper or impl.wrapper):
                raise PluginError(
                    f"{impl.plugin_name}: {name} may be async and cannot be a wrapper"
                )
            if not may_be_async and inspect.iscoroutinefunction(impl.function):
                raise PluginError(
                    f"{impl.plugin_name}: {name} is called synchronously; "
                    "an async implementation would never run"
                )


def register_named(pm: pluggy.PluginManager, plugin: object, name: str) -> str:
    """Register `plugin` as `name`, or `name.2`, `name.3`... when instances of the same kind
    are registered at once (a worker's notifier beside its process service's); returns the
    name used. Stable names, unlike pluggy's default of the object's id."""
    candidate, n = name, 1
    while pm.has_plugin(candidate):
        n += 1
        candidate = f"{name}.{n}"
    pm.register(plugin, name=candidate)
    return candidate


async def call_async(
    caller: pluggy.HookCaller, *, isolate: bool = False, **kwargs: Any
) -> list[Any]:
    """Call every implementation in hook order, awaiting those that return awaitables.

    With `isolate`, an implementation that raises is logged and the others still run: used for
    hooks fired after a commit, where one plugin's failure must not hide the event from others.
    """
    results = []
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(*[kwargs[a] for a in impl.argnames])
            if isawaitable(result):
                result = await result
        except Exception:
            if not isolate:
                raise
            log.exception("plugin %s failed in %s", _label(impl), caller.name)
            continue
        if result is not None:
            results.append(result)
    return results


def _label(impl: pluggy.HookImpl) -> str:
    # Instances registered without a name are named by id(); their class says more.
    if impl.plugin_name.isdigit():
        return type(impl.plugin).__qualname__
    return impl.plugin_name


async def first_async(caller: pluggy.HookCaller, **kwargs: Any) -> Any:
    """Return the first non-None result, awaiting each before deciding (unlike firstresult)."""
    for impl in reversed(caller.get_hookimpls()):
        result = impl.function(*[kwargs[a] for a in impl.argnames])
        if isawaitable(result):
            result = await result
        if result is not None:
            return result
    return None


@attrs.frozen
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What `gcx plugins` prints: each plugin, its version and the hooks it implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distributions()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        version = dist.version if dist is not None else _builtin_version()
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, version, hooks))
    return infos


def _builtin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gcx")
    except PackageNotFoundError:
        return "unknown"
