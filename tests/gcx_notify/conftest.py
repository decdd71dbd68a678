from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from typing import Any

import attrs
import pytest
from aiosmtpd.smtp import SMTP

from gcx_core.plugins import make_plugin_manager
from gcx_core.settings import SmtpSettings
from gcx_notify import plugin as notify_plugin
from gcx_notify.runtime import Notifier


class Sink:
    """An aiosmtpd handler that records messages and can refuse recipients on demand."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        # Replies to RCPT for an address, used up one per attempt ("*" for any address).
        self.refusals: dict[str, list[str]] = {}

    def refuse(self, address: str, *replies: str) -> None:
        self.refusals.setdefault(address, []).extend(replies)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for key in (address, "*"):
            if self.refusals.get(key):
                return self.refusals[key].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK queued"

    def by_recipient(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(name="smtp_sink")
async def _smtp_sink():
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="gcx-test"), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins():
    return [notify_plugin]


@pytest.fixture(name="gcx_settings")
def _smtp_settings(gcx_settings, smtp_sink):
    return attrs.evolve(
        gcx_settings,
        smtp=SmtpSettings("127.0.0.1", smtp_sink.port, starttls=False),
        mail_from="GCX <noreply@gcx.example>",
    )


@pytest.fixture(name="notifier")
def _notifier(gcx_notifier: Notifier) -> Notifier:
    return gcx_notifier


def make_pm(*plugins):
    return make_plugin_manager(plugins=[notify_plugin, *plugins], load_entry_points=False)
