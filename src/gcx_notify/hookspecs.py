"""The hooks of gcx_notify, added to the manager by its plugin through `gcx_add_hookspecs`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from gcx_core.entities import Notification
    from gcx_notify.engine import RetryPolicy
    from gcx_notify.runtime import Notifier

hookspec = pluggy.HookspecMarker("gcx")

ASYNC_HOOKS = frozenset({"gcx_notify_retry_policy"})


@hookspec
def gcx_notify_register_channels(
    register: Callable[[str, Callable[[Notifier], Any]], None],
) -> None:
    """Declare delivery channels.

    :param register: call ``register(name, factory)``; ``factory(notifier)`` returns an object
        with ``async send(message) -> provider_message_id`` and ``async close()``. A later
        registration of the same name replaces an earlier one (the built-in ``email`` channel
        is registered ``tryfirst``).
    """


@hookspec
def gcx_notify_template_dirs() -> list[str] | None:
    """Return folders of Jinja2 templates that override the built-in ones (same file names)."""


@hookspec
def gcx_notify_retry_policy(notification: Notification) -> RetryPolicy | None:
    """Return how to retry this notification, or None to leave it to the next plugin.

    May be async. The first policy returned wins; the default retries with exponential backoff
    (1, 5, 25 minutes, with jitter) up to the notification's ``max_attempts``.

    :param notification: the outbox row being delivered.
    """
