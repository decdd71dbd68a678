"""gcx-sms: text messages to applicants through an HTTP SMS gateway.

Registers the `sms` channel, short texts for the applicant-facing notifications, and routes
each of those to the applicant's telephone as well as their email. See README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from gcx_core.entities import Application, NotificationDraft
from gcx_core.plugins import hookimpl

# Secrets and links for the email only: a text says to look at the email instead.
_EMAIL_ONLY = frozenset({"activation_selector", "reset_selector", "withdrawal_selector"})


def _settings() -> Any:
    """The settings for the environment as it is now (parsed once per distinct value)."""
    import os

    from gcx_sms.settings import SmsSettings

    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GCX_SMS_")))
    found = _parsed.get(key)
    if found is None:
        found = _parsed[key] = SmsSettings.from_environment()
    return found


_parsed: dict[tuple[tuple[str, str], ...], Any] = {}


@hookimpl
def gcx_process_services(gcx: Any, role: str) -> None:
    """Check the configuration as a process starts: a mistake stops it with its name."""
    _settings()


@hookimpl(optionalhook=True)  # gcx_notify's hook: absent when gcx_notify is disabled
def gcx_notify_register_channels(register: Any) -> None:
    from gcx_sms.channel import SmsChannel

    register("sms", lambda notifier: SmsChannel(_settings, notifier.gcx.phone_format))


@hookimpl(optionalhook=True)  # gcx_notify's hook: absent when gcx_notify is disabled
def gcx_notify_template_dirs() -> list[str]:
    return [str(Path(__file__).parent / "templates")]


@hookimpl
def gcx_route_notification(
    draft: NotificationDraft, application: Application
) -> list[NotificationDraft] | None:
    """The applicant's messages go to their telephone too, when SMS is on."""
    if draft.channel != "email" or draft.recipient != application.contact.email:
        return None
    settings = _settings()
    if not settings.active or draft.type not in settings.types:
        return None
    context = {k: v for k, v in draft.context.items() if k not in _EMAIL_ONLY}
    return [
        attrs.evolve(draft, channel="sms", recipient=application.contact.telephone, context=context)
    ]
