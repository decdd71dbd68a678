"""The `webhook` channel: one signed JSON POST per outbox row, to its subscriber's URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from gcx_core.exceptions import NotFoundError
from gcx_core.system import Gcx
from gcx_notify.channels import PermanentFailure, RenderedMessage, TemporaryFailure
from gcx_webhook import store

USER_AGENT = "gcx-webhook/0.1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of ``<timestamp>.<body>`` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def body_of(message: RenderedMessage) -> bytes:
    """The JSON a receiver gets; the same bytes on every attempt of one delivery."""
    ctx = message.context
    payload = {
        "id": ctx["event_id"],
        "type": message.type,
        "occurred_at": ctx["occurred_at"],
        "delivery_id": str(message.notification_id),
        "data": ctx["data"],
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class WebhookChannel:
    """2xx: sent. 410: the subscriber is turned off, the delivery dead. 408, 429 (waiting as
    its Retry-After says), 5xx, timeouts, refused connections: retried with GCX's backoff.
    Other answers (4xx, redirects, which are not followed): dead at once."""

    def __init__(self, gcx: Gcx, timeout: Callable[[], float]) -> None:
        self.gcx = gcx
        self.timeout = timeout
        self.client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})

    async def send(self, message: RenderedMessage) -> str:
        subscriber_id = store.subscriber_of(message.recipient)
        if subscriber_id is None:
            raise PermanentFailure(f"not a webhook subscriber: {message.recipient!r}")
        try:
            subscriber = await store.get(self.gcx, subscriber_id)
        except NotFoundError:
            raise PermanentFailure("the webhook subscriber was deleted") from None
        if not subscriber.active:
            reason = f" ({subscriber.disabled_reason})" if subscriber.disabled_reason else ""
            raise PermanentFailure(f"the webhook subscriber is turned off{reason}")
        body = body_of(message)
        timestamp = str(int(time.time()))  # when it is sent, for the receiver's replay check
        headers = {
            "Content-Type": "application/json",
            "X-GCX-Event": message.type,
            "X-GCX-Event-Id": str(message.context["event_id"]),
            "X-GCX-Delivery": str(message.notification_id),
            "X-GCX-Timestamp": timestamp,
            "X-GCX-Signature": sign(subscriber.secret, timestamp, body),
        }
        started = time.perf_counter()
        code: int | None = None
        try:
            try:
                response = await self.client.post(
                    subscriber.url, content=body, headers=headers, timeout=self.timeout()
                )
            except httpx.TimeoutException:
                raise TemporaryFailure("the receiver did not answer in time") from None
            except httpx.TransportError as exc:
                raise TemporaryFailure(f"the receiver cannot be reached: {exc}") from None
            code = response.status_code
            self._judge(code, response)
        except (TemporaryFailure, PermanentFailure) as exc:
            if code == 410:
                await store.disable(self.gcx, subscriber.id, f"{store.GONE} ({message.at})")
            await self._log(message, subscriber.id, "failed", code, started, str(exc))
            raise
        await self._log(message, subscriber.id, "sent", code, started)
        return str(response.headers.get("x-request-id", ""))[:200]

    @staticmethod
    def _judge(code: int, response: httpx.Response) -> None:
        if 200 <= code < 300:
            return
        if code == 429:
            raise TemporaryFailure(
                "the receiver asked to slow down (429)",
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        if code == 408 or code >= 500:
            raise TemporaryFailure(f"the receiver answered {code}")
        if code == 410:
            raise PermanentFailure("the receiver answered 410 Gone; the subscriber is turned off")
        if 300 <= code < 400:
            raise PermanentFailure(f"the receiver answered {code}; redirects are not followed")
        raise PermanentFailure(f"the receiver refused the delivery ({code})")

    async def _log(
        self,
        message: RenderedMessage,
        subscriber_id: int,
        outcome: str,
        code: int | None,
        started: float,
        error: str = "",
    ) -> None:
        await store.record_attempt(
            self.gcx,
            message.notification_id,
            subscriber_id,
            outcome=outcome,
            response_code=code,
            latency_ms=round((time.perf_counter() - started) * 1000),
            error=error,
        )

    async def close(self) -> None:
        await self.client.aclose()


def factory(timeout: Callable[[], float]) -> Callable[[Any], WebhookChannel]:
    return lambda notifier: WebhookChannel(notifier.gcx, timeout)
