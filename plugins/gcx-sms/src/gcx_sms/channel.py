"""The `sms` channel: one HTTP POST per message to the configured gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from gcx_notify.channels import PermanentFailure, RenderedMessage, TemporaryFailure
from gcx_sms.settings import SmsSettings, fill

MAX_TEXT = 459  # three concatenated SMS segments of 153 characters


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (dates are not honoured)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class SmsChannel:
    """Posts `{to, text}` (in the configured payload) and reads the gateway's answer.

    2xx (and the success field, when configured): sent. 408, 429 (waiting as long as its
    Retry-After says), 5xx, timeouts and refused connections: retried with GCX's backoff.
    Any other 4xx, a number that is not one, a text too long: dead at once.
    """

    def __init__(self, settings: Callable[[], SmsSettings], phone_format: Any) -> None:
        self.current = settings  # read at each send: the configuration as it is now
        self.phone_format = phone_format
        self.client = httpx.AsyncClient()  # connections kept between messages

    async def send(self, message: RenderedMessage) -> str:
        settings = self.current()
        if not settings.url:
            raise PermanentFailure("no SMS gateway configured (GCX_SMS_URL)")
        number = self.phone_format.normalise(message.recipient)
        if number is None:
            raise PermanentFailure(
                f"not a {self.phone_format.country} telephone number: {message.recipient!r}"
            )
        text = message.text.strip()
        if len(text) > MAX_TEXT:
            raise PermanentFailure(f"the text is {len(text)} characters; at most {MAX_TEXT}")
        body = fill(settings.payload, to=number, text=text, sender=settings.sender)
        headers = {"Content-Type": "application/json"}
        if settings.auth_header:
            name, _, value = settings.auth_header.partition(":")
            headers[name.strip()] = value.strip()
        try:
            response = await self.client.post(
                settings.url, content=body.encode(), headers=headers, timeout=settings.timeout
            )
        except httpx.TimeoutException:
            raise TemporaryFailure("the SMS gateway did not answer in time") from None
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"the SMS gateway cannot be reached: {exc}") from None
        status = response.status_code
        if status == 429:
            raise TemporaryFailure(
                "the SMS gateway asked to slow down (429)",
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        if status == 408 or status >= 500:
            raise TemporaryFailure(f"the SMS gateway answered {status}")
        if not 200 <= status < 300:
            raise PermanentFailure(f"the SMS gateway refused the message ({status})")
        return self._provider_id(response, settings)

    def _provider_id(self, response: httpx.Response, settings: SmsSettings) -> str:
        try:
            answer = response.json()
        except json.JSONDecodeError:
            answer = None
        found = answer if isinstance(answer, dict) else {}
        wanted = settings.success_field
        if wanted and str(found.get(wanted, "")) != settings.success_value:
            raise PermanentFailure(
                f"the SMS gateway did not accept the message ({wanted}="
                f"{str(found.get(wanted, ''))[:40]!r})"
            )
        return str(found.get(settings.id_field, ""))[:200]

    async def close(self) -> None:
        await self.client.aclose()
