"""Delivery channels: SMTP email over reused aiosmtplib connections, and capture.

A channel's `send` returns the provider's message id, raises `TemporaryFailure` for what may
work later (a 4xx reply, a dropped connection) and `PermanentFailure` for what never will (a
5xx reply, an address that is not one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import secrets
from email.header import Header
from email.utils import format_datetime, formataddr, formatdate, parseaddr
from typing import Any, Protocol

import aiosmtplib
import attrs
import sqlalchemy as sa

from gcx_core.settings import SmtpSettings
from gcx_core.storage import bookkeeping
from gcx_core.storage.batching import GroupCommit
from gcx_core.storage.rows import insert_many
from gcx_core.system import Gcx
from gcx_notify.storage import captured_messages


class DeliveryError(Exception):
    """Raised by a channel when a message could not be handed over."""


class TemporaryFailure(DeliveryError):
    """Raised when the same message may succeed later; it will be retried.

    `retry_after` (seconds), when the provider said how long to wait (an HTTP 429's
    Retry-After, say): the next attempt comes no sooner than that, even when the retry
    policy's own delay is shorter.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(DeliveryError):
    """Raised when the message can never be delivered as it is; it goes dead at once."""


@attrs.frozen
class RenderedMessage:
    """What a channel's `send` gets: one outbox row rendered from its templates.

    `subject`, `text` and `html` come from `<template>/subject.txt`, `body.txt` and
    `body.html`; a channel other than email with a template `<template>/<channel>.txt` gets
    that as `text` and an empty subject and html (an SMS's short text, say). `message_id`
    is stable across attempts (the receiving side can drop repeats by it). `type` and
    `context` are the notification's own (the values its templates saw, secrets never
    included), for channels that post data rather than text.
    """

    notification_id: int
    channel: str
    recipient: str
    subject: str
    text: str
    html: str
    message_id: str
    sent_from: str
    at: Any = None
    type: str = ""
    context: dict[str, Any] = attrs.field(factory=dict)


class Channel(Protocol):
    async def send(self, message: RenderedMessage) -> str: ...

    async def close(self) -> None: ...


def _header(value: str) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise PermanentFailure("a header value contains a line break")
    return value if value.isascii() else Header(value, "utf-8").encode()


def _body(subtype: str, text: str) -> str:
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
    )


@functools.lru_cache(maxsize=64)
def _sender(sent_from: str) -> tuple[str, str]:
    """(envelope address, From header) of the configured sender, parsed once."""
    name, address = parseaddr(sent_from)
    return address, formataddr((name, address), charset="utf-8") if name else address


def build_email(message: RenderedMessage) -> bytes:
    """The whole message as bytes: multipart/alternative, text then HTML, both base64 UTF-8.

    Written directly rather than through the email package, whose header handling cost more per
    message than the SMTP exchange; the tests parse what arrives with the email package.
    """
    sender = _sender(message.sent_from)[1]
    boundary = f"=_gcx_{message.notification_id}_{secrets.token_hex(8)}"
    headers = [
        ("From", _header(sender)),
        ("To", _header(message.recipient)),
        ("Subject", _header(message.subject)),
        # Stable across retries, so a receiver that sees one message twice can drop the copy.
        ("Message-ID", _header(message.message_id)),
        ("Date", format_datetime(message.at) if message.at is not None else formatdate()),
        ("Auto-Submitted", "auto-generated"),
        ("X-GCX-Notification", str(message.notification_id)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    parts = "".join(
        f"--{boundary}\r\n{_body(sub, body)}\r\n"
        for sub, body in (("plain", message.text), ("html", message.html))
    )
    return f"{head}\r\n{parts}--{boundary}--\r\n".encode("ascii")


def _valid_address(address: str) -> bool:
    _, parsed = parseaddr(address)
    return bool(parsed) and "@" in parsed and parsed == address.strip() and " " not in parsed


class SmtpChannel:
    """Email through one SMTP server, over a small pool of connections kept open between sends."""

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp
        self._idle: list[aiosmtplib.SMTP] = []
        # Each SMTP exchange waits on round trips; parallel connections hide that latency.
        self._slots = asyncio.Semaphore(smtp.connections)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            use_tls=self.smtp.tls,
            start_tls=self.smtp.starttls if not self.smtp.tls else False,
            timeout=self.smtp.timeout,
            validate_certs=self.smtp.validate_certs,
        )
        await client.connect()
        if self.smtp.username:
            await client.login(self.smtp.username, self.smtp.password or "")
        return client

    async def send(self, message: RenderedMessage) -> str:
        if not _valid_address(message.recipient):
            raise PermanentFailure(f"not an email address: {message.recipient!r}")
        data = build_email(message)
        sender = _sender(message.sent_from)[0]
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                errors, _ = await client.sendmail(sender, [message.recipient], data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._keep(client)
                raise _classify(exc.recipients[0] if exc.recipients else exc) from None
            except aiosmtplib.SMTPResponseException as exc:
                await self._discard(client)
                raise _classify(exc) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                await self._discard(client)
                raise TemporaryFailure(f"SMTP connection failed: {type(exc).__name__}") from None
            self._keep(client)
        if errors:
            first = next(iter(errors.values()))
            raise _classify(aiosmtplib.SMTPResponseException(first[0], first[1]))
        return message.message_id

    def _keep(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self._idle.append(client)

    async def _discard(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await client.quit()


def _classify(exc: Any) -> DeliveryError:
    code = getattr(exc, "code", 0) or 0
    text = f"SMTP {code}: {getattr(exc, 'message', exc)}"[:500]
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


class CaptureChannel:
    """Keeps messages in the database instead of sending them: the embedded default without SMTP.

    The back office reads them from `captured_messages`. Messages captured at the same time
    share one transaction (a GroupCommit), as concurrent deliveries would otherwise queue for
    SQLite's single writer one by one.
    """

    def __init__(self, gcx: Gcx) -> None:
        self.gcx = gcx
        self._writes: GroupCommit[dict[str, Any], int] = GroupCommit(gcx.database, _capture_rows)

    async def send(self, message: RenderedMessage) -> str:
        captured_id = await self._writes(
            {
                "notification_id": message.notification_id,
                "recipient": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "message_id": message.message_id,
                "created_at": self.gcx.now(),
            }
        )
        return f"captured:{captured_id}"

    async def close(self) -> None:
        return None


async def captured(gcx: Gcx, recipient: str | None = None) -> list[dict[str, Any]]:
    """Captured messages, newest first (for the back office and tests)."""
    query = sa.select(captured_messages).order_by(captured_messages.c.id.desc())
    if recipient:
        query = query.where(captured_messages.c.recipient == recipient)
    async with gcx.database.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def _capture_rows(conn: Any, rows: list[dict[str, Any]]) -> list[int]:
    ids = await bookkeeping.allocate_ids(conn, captured_messages, len(rows))
    for row, captured_id in zip(rows, ids, strict=True):
        row["id"] = captured_id
    await insert_many(conn, captured_messages, rows)
    return ids
