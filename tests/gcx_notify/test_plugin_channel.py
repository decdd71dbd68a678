"""A third-party channel: SMS through a gateway, here a small HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, NotificationDraft
from gcx_core.plugins import hookimpl
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.storage.tables import notifications
from gcx_notify import plugin as notify_plugin
from gcx_notify.channels import TemporaryFailure
from gcx_notify.runtime import Notifier


class Gateway:
    """Accepts `POST /messages` with a JSON body; answers 202 and an id, or 503 when told to."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail_next = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = json.loads(await reader.readexactly(length))
        if self.fail_next:
            self.fail_next -= 1
            writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
        else:
            self.received.append(body)
            reply = json.dumps({"id": f"sms-{len(self.received)}"}).encode()
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply)
            )
        await writer.drain()
        writer.close()


class SmsChannel:
    def __init__(self, port: int) -> None:
        self.port = port

    async def send(self, message) -> str:
        body = json.dumps({"to": message.recipient, "text": message.subject}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            b"POST /messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        status_line = await reader.readline()
        rest = await reader.read()
        writer.close()
        if b" 202 " not in status_line:
            raise TemporaryFailure(status_line.decode().strip())
        return json.loads(rest.split(b"\r\n\r\n", 1)[1])["id"]

    async def close(self) -> None:
        return None


class SmsPlugin:
    def __init__(self, port: int) -> None:
        self.port = port

    @hookimpl
    def gcx_notify_register_channels(self, register):
        register("sms", lambda notifier: SmsChannel(self.port))

    @hookimpl
    def gcx_collect_notifications(self, event, application, staff):
        if event.action == "submit":
            return [
                NotificationDraft(
                    "application_received",
                    application.contact.telephone,
                    {
                        "business_name": application.business.name,
                        "tracking_code": application.tracking_code,
                    },
                    channel="sms",
                )
            ]
        return None


@pytest.fixture(name="gateway")
async def _gateway():
    gateway = Gateway()
    server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
    gateway.port = server.sockets[0].getsockname()[1]
    yield gateway
    server.close()
    await server.wait_closed()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins(gateway):
    return [notify_plugin, SmsPlugin(gateway.port)]


async def test_a_plugin_channel_delivers_and_retries(gcx, gcx_clock, gateway, smtp_sink):
    gateway.fail_next = 1
    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    await notifier.idle()
    async with gcx.database.read() as conn:
        sms = (
            await conn.execute(sa.select(notifications).where(notifications.c.channel == "sms"))
        ).one()
    assert sms.status == "retrying" and "503" in sms.last_error
    gcx_clock.advance(minutes=2)
    await notifier.sweep()
    await notifier.idle()
    await notifier.stop()
    async with gcx.database.read() as conn:
        sms = (
            await conn.execute(sa.select(notifications).where(notifications.c.channel == "sms"))
        ).one()
    assert (sms.status, sms.provider_message_id) == ("sent", "sms-1")
    assert gateway.received == [
        {"to": app.contact.telephone, "text": f"We received your application ({app.tracking_code})"}
    ]
    assert len(smtp_sink.by_recipient(app.contact.email)) == 1
