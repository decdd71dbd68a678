"""Subscribers from the deployment's configuration: a TOML file and/or three variables.

GCX_WEBHOOK_FILE=/etc/gcx/webhooks.toml     # [[subscriber]] tables, see README.md
GCX_WEBHOOK_URL=https://erp.example.com/gcx  # one subscriber named "environment"
GCX_WEBHOOK_SECRET=...                       # its signing secret
GCX_WEBHOOK_EVENTS=application.*,document.verified   # its filter (default: everything)
GCX_WEBHOOK_TIMEOUT=10                       # seconds to wait for any receiver's answer
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from gcx_core.exceptions import ConfigurationError

MIN_SECRET = 16
ENV_NAME = "environment"


@attrs.frozen
class Subscriber:
    """A subscriber as configured (not yet stored): what the configuration checks and syncs."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ()
    active: bool = True


def wants(patterns: Iterable[str], event_type: str) -> bool:
    """Whether a filter takes an event type: no patterns means every event."""
    patterns = list(patterns)
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def url_problem(url: str) -> str | None:
    """Why a receiver URL cannot be used, or None. Plain http only to this machine."""
    if len(url) > 2000:
        return "must be at most 2000 characters"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// address"
    if parts.username or parts.password:
        return "must not carry a user name or password (use the signing secret)"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "must be an https:// address (plain http only to this machine)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def events_problem(patterns: Iterable[str], known: Iterable[str]) -> str | None:
    """Why an event filter is wrong (a pattern that matches no event), or None."""
    known = sorted(set(known))
    for pattern in patterns:
        if not fnmatch.filter(known, pattern):
            return f"{pattern!r} matches no event; known events: {', '.join(known)}"
    return None


def parse_events(value: str | Iterable[str]) -> tuple[str, ...]:
    items = value.replace("\n", ",").split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(p.strip() for p in items if p.strip()))


def configured(environ: Mapping[str, str] | None = None) -> list[Subscriber]:
    """Every subscriber the environment and the file name; ConfigurationError names a mistake."""
    env = os.environ if environ is None else environ
    found: list[Subscriber] = []
    path = env.get("GCX_WEBHOOK_FILE", "").strip()
    if path:
        found.extend(_from_file(Path(path), env))
    url = env.get("GCX_WEBHOOK_URL", "").strip()
    if url:
        found.append(
            _checked(
                "GCX_WEBHOOK_URL",
                ENV_NAME,
                url,
                env.get("GCX_WEBHOOK_SECRET", ""),
                parse_events(env.get("GCX_WEBHOOK_EVENTS", "")),
                True,
            )
        )
    names = [s.name for s in found]
    for name in names:
        if names.count(name) > 1:
            raise ConfigurationError(f"webhook subscriber {name!r} is configured twice")
    return found


def timeout(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    raw = env.get("GCX_WEBHOOK_TIMEOUT", "10").strip() or "10"
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 60:
        raise ConfigurationError(f"GCX_WEBHOOK_TIMEOUT must be seconds between 0 and 60: {raw!r}")
    return value


def _from_file(path: Path, env: Mapping[str, str]) -> list[Subscriber]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"GCX_WEBHOOK_FILE: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"GCX_WEBHOOK_FILE: {path} is not TOML: {exc}") from None
    unknown = set(data) - {"subscriber"}
    if unknown:
        raise ConfigurationError(f"{path}: unknown keys {sorted(unknown)}; use [[subscriber]]")
    entries = data.get("subscriber", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: write each subscriber as a [[subscriber]] table")
    return [_entry(path, n, e, env) for n, e in enumerate(entries, 1)]


def _entry(path: Path, n: int, entry: Any, env: Mapping[str, str]) -> Subscriber:
    where = f"{path}, subscriber {n}"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: not a table")
    unknown = set(entry) - {"name", "url", "secret", "secret_env", "events", "active"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ConfigurationError(f"{where}: 'name' must be text of 1 to 100 characters")
    secret = entry.get("secret", "")
    if "secret_env" in entry:
        variable = str(entry["secret_env"])
        if variable not in env:
            raise ConfigurationError(f"{where}: the variable {variable} (secret_env) is not set")
        secret = env[variable]
    events = entry.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ConfigurationError(f"{where}: 'events' must be a list of event names")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise ConfigurationError(f"{where}: 'active' must be true or false")
    return _checked(where, name.strip(), str(entry.get("url", "")), str(secret), events, active)


def _checked(
    where: str, name: str, url: str, secret: str, events: Iterable[str], active: bool
) -> Subscriber:
    problem = url_problem(url.strip())
    if problem:
        raise ConfigurationError(f"{where}: the URL {problem}")
    if len(secret) < MIN_SECRET:
        raise ConfigurationError(f"{where}: the secret must be at least {MIN_SECRET} characters")
    return Subscriber(name, url.strip(), secret, parse_events(events), active)
