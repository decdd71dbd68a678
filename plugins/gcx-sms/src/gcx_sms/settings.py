"""The gateway's configuration, read from the environment (`GCX_SMS_*`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import attrs

from gcx_core.exceptions import ConfigurationError

DEFAULT_PAYLOAD = '{"to": "{to}", "text": "{text}"}'
# The applicant-facing messages this plugin has short texts for.
DEFAULT_TYPES = (
    "application_received",
    "status_changed",
    "documents_requested",
    "approved",
    "rejected",
    "reopened",
    "withdrawal_confirmed",
)


@attrs.frozen
class SmsSettings:
    """How to reach the gateway and what counts as success.

    `payload` is the request body with `{to}`, `{text}` and `{sender}` where the values go
    (each inserted as JSON string content, so quotes in a message cannot break the body).
    A 2xx answer is success; with `success_field`, its JSON must also hold `success_value`
    there (a gateway that answers 200 with `{"status": "rejected"}`). `id_field` names the
    answer's message id, kept as the notification's provider id.
    """

    url: str = ""
    auth_header: str = ""
    payload: str = DEFAULT_PAYLOAD
    sender: str = ""
    id_field: str = "id"
    success_field: str = ""
    success_value: str = ""
    timeout: float = 10.0
    enabled: bool = True
    types: tuple[str, ...] = DEFAULT_TYPES

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.url)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SmsSettings:
        env = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return env.get(f"GCX_SMS_{name}", default).strip()

        enabled = get("ENABLED", "true").lower()
        if enabled not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ConfigurationError(f"GCX_SMS_ENABLED must be true or false, not {enabled!r}")
        try:
            timeout = float(get("TIMEOUT", "10"))
        except ValueError:
            raise ConfigurationError("GCX_SMS_TIMEOUT must be a number of seconds") from None
        if not 0 < timeout <= 120:
            raise ConfigurationError("GCX_SMS_TIMEOUT must be between 0 and 120 seconds")
        url = get("URL")
        if url and not url.startswith(("http://", "https://")):
            raise ConfigurationError("GCX_SMS_URL must be an http:// or https:// address")
        auth = get("AUTH_HEADER")
        if auth and ":" not in auth:
            raise ConfigurationError('GCX_SMS_AUTH_HEADER must read "Name: value"')
        payload = get("PAYLOAD", DEFAULT_PAYLOAD)
        try:
            json.loads(fill(payload, to="+10000000000", text="x", sender="x"))
        except ValueError:
            raise ConfigurationError(
                "GCX_SMS_PAYLOAD must be JSON once {to}, {text} and {sender} are filled in"
            ) from None
        types = tuple(t.strip() for t in get("TYPES").split(",") if t.strip()) or DEFAULT_TYPES
        return cls(
            url=url,
            auth_header=auth,
            payload=payload,
            sender=get("SENDER"),
            id_field=get("ID_FIELD", "id"),
            success_field=get("SUCCESS_FIELD"),
            success_value=get("SUCCESS_VALUE"),
            timeout=timeout,
            enabled=enabled in ("true", "1", "yes", "on"),
            types=types,
        )


def fill(template: str, **values: str) -> str:
    """The payload with each `{name}` replaced by its value as JSON string content."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", json.dumps(value)[1:-1])
    return out
