"""gcx_notify's built-in plugin: its hookspecs, table and migrations, and the email channel.

Loaded through the `gcx` entry point like any third-party plugin. It imports no taskiq and no
aiosmtplib itself, so it loads even where only the core is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from gcx_core.plugins import hookimpl
from gcx_notify import hookspecs
from gcx_notify.storage import MIGRATIONS


@hookimpl
def gcx_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def gcx_register_tables(metadata: Any) -> None:
    # Importing gcx_notify.storage (done above) put captured_messages on the shared MetaData.
    assert "captured_messages" in metadata.tables


@hookimpl
def gcx_register_commands(subparsers: Any) -> None:
    from gcx_notify.cli import register

    register(subparsers)


@hookimpl
def gcx_migration_locations() -> list[str]:
    return [str(MIGRATIONS / "versions")]


def _email(notifier: Any) -> Any:
    from gcx_notify.channels import CaptureChannel, SmtpChannel

    smtp = notifier.gcx.settings.smtp
    # Without SMTP settings (the embedded default) mail is captured for the back office.
    return SmtpChannel(smtp) if smtp is not None else CaptureChannel(notifier.gcx)


@hookimpl(tryfirst=True)
def gcx_notify_register_channels(register: Callable[[str, Callable[[Any], Any]], None]) -> None:
    register("email", _email)
    register("capture", _capture)


def _capture(notifier: Any) -> Any:
    from gcx_notify.channels import CaptureChannel

    return CaptureChannel(notifier.gcx)


@hookimpl
def gcx_process_services(gcx: Any, role: str) -> Any:
    """Deliver from the web process: everything in `serve`, only the kicks in scale-out `web`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def running() -> Any:
        from gcx_notify.runtime import Notifier

        notifier = Notifier(gcx)
        # In scale-out the web process only hands deliveries to the workers through Redis.
        await notifier.start(run_scheduler=None if role == "serve" else False, kick=role == "serve")
        try:
            yield notifier
        finally:
            await notifier.stop()

    return running()


# The back office's ports; optional, so gcx_notify loads where gcx_web is not installed.
@hookimpl(optionalhook=True)
def gcx_web_notification_preview(gcx: Any, notification: Any) -> dict[str, str] | None:
    import re

    from gcx_notify.render import Renderer

    dirs = [d for found in gcx.plugins.hook.gcx_notify_template_dirs() for d in (found or [])]
    try:
        message = Renderer(gcx, dirs).render(notification)
    except Exception as exc:  # a broken template is what the preview must show
        return {"subject": "(cannot render)", "text": str(exc), "html": ""}
    redact = re.compile(r"(/activate/|/reset/)[A-Za-z0-9_\-]+")
    return {
        "subject": message.subject,
        "text": redact.sub(r"\1…", message.text),
        "html": redact.sub(r"\1…", message.html),
    }


@hookimpl(optionalhook=True)
async def gcx_web_captured_mail(
    gcx: Any, limit: int, recipient: str
) -> list[dict[str, Any]] | None:
    import sqlalchemy as sa

    from gcx_notify.storage import captured_messages as cm

    if gcx.settings.smtp is not None:
        return None
    query = sa.select(cm).order_by(cm.c.id.desc()).limit(limit)
    if recipient:
        query = query.where(cm.c.recipient.contains(recipient.lower(), autoescape=True))
    async with gcx.database.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


@hookimpl(optionalhook=True)
async def gcx_web_captured_message(gcx: Any, message_id: int) -> dict[str, Any] | None:
    import sqlalchemy as sa

    from gcx_notify.storage import captured_messages as cm

    async with gcx.database.read() as conn:
        row = (await conn.execute(sa.select(cm).where(cm.c.id == message_id))).first()
    return dict(row._mapping) if row is not None else None
