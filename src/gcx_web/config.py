"""Settings of the web process that the core does not need: limits, origins, cookies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from gcx_core.exceptions import ConfigurationError
from gcx_core.settings import Settings, environment

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEFAULT_RATE_LIMITS = {
    "submit": (10, 60),
    "lookup": (120, 60),
    "upload": (30, 60),
    "login": (10, 60),
}


@attrs.frozen
class Rate:
    requests: int
    seconds: int


def parse_rate_limits(value: str | None) -> dict[str, Rate | None]:
    """``"submit=10/minute,lookup=off"`` → rates by bucket; ``off`` disables one bucket."""
    limits: dict[str, Rate | None] = {k: Rate(*v) for k, v in DEFAULT_RATE_LIMITS.items()}
    if value is None or not value.strip():
        return limits
    if value.strip().lower() == "off":
        return dict.fromkeys(limits)
    for part in value.split(","):
        name, sep, spec = part.partition("=")
        name = name.strip()
        if not sep or name not in limits:
            raise ConfigurationError(
                f"GCX_RATE_LIMITS: expected bucket=N/period with a bucket among "
                f"{', '.join(limits)}, got {part.strip()!r}"
            )
        if spec.strip().lower() == "off":
            limits[name] = None
            continue
        match = _RATE.match(spec)
        if match is None or int(match.group(1)) < 1:
            raise ConfigurationError(f"GCX_RATE_LIMITS: {name} must be N/second|minute|hour|day")
        limits[name] = Rate(int(match.group(1)), _PERIODS[match.group(2)])
    return limits


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@attrs.frozen
class WebConfig:
    rate_limits: dict[str, Rate | None] = attrs.field(factory=lambda: parse_rate_limits(None))
    # Browsers' Origin values allowed to open websockets, besides the site's own host.
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_000_000
    max_parts: int = 40
    secure_cookies: bool = False
    session_minutes: int = 8 * 60

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> WebConfig:
        env = environment() if env is None else env
        origins = {origin_of(settings.base_url)}
        for extra in (env.get("GCX_ALLOWED_ORIGINS") or "").split(","):
            if extra.strip():
                origins.add(origin_of(extra.strip()))
        return cls(
            rate_limits=parse_rate_limits(env.get("GCX_RATE_LIMITS")),
            allowed_origins=tuple(sorted(origins)),
            secure_cookies=settings.base_url.startswith("https://"),
        )


# Room for one file at the largest per-requirement limit plus the multipart envelope; the
# core checks each file against its own requirement's limit.
DEFAULT_MAX_UPLOAD_BODY = 11 * 1024 * 1024
