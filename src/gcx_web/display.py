"""How the pages show stored values: labels instead of codes, one date format in one zone.

Templates get `labels` (statuses of the running workflow, plugin states included; regions,
commodities, business types, rejection reasons, document requirements) and the filters `when`
("3 Dec 2026, 14:05") and `day` ("3 Dec 2026"), in the zone `GCX_TIME_ZONE` names. The
scripts that update pages live format dates the same way from `data-time-zone` on <body>.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import attrs

from gcx_core.reference import (
    BUSINESS_TYPE_LABELS,
    COMMODITIES_BY_CODE,
    REGIONS_BY_CODE,
    REJECTION_REASONS,
)


def time_zone(name: str) -> tzinfo:
    return UTC if name in ("UTC", "Etc/UTC") else zoneinfo.ZoneInfo(name)


def when(value: datetime | None, zone: tzinfo = UTC) -> str:
    """A moment as people read it: "3 Dec 2026, 14:05" in `zone`; "—" for none."""
    if value is None:
        return "—"
    local = value.astimezone(zone)
    return f"{local.day} {local:%b %Y, %H:%M}"


def day(value: datetime | None, zone: tzinfo = UTC) -> str:
    if value is None:
        return "—"
    local = value.astimezone(zone)
    return f"{local.day} {local:%b %Y}"


def _words(code: str) -> str:
    return code.replace("_", " ").capitalize()


@attrs.frozen
class Labels:
    """Names for codes. A code nothing names (a disabled plugin's state, say) reads as words
    with "(unknown)", never as an error."""

    statuses: Mapping[str, str] = attrs.field(factory=dict)
    requirements: Mapping[str, str] = attrs.field(factory=dict)

    def status(self, code: str | None) -> str:
        if not code:
            return "—"
        found = self.statuses.get(code)
        return found if found is not None else f"{_words(code)} (unknown status)"

    def region(self, code: str) -> str:
        found = REGIONS_BY_CODE.get(code)
        return found.name if found is not None else code

    def commodity(self, code: str) -> str:
        found = COMMODITIES_BY_CODE.get(code)
        return found.name if found is not None else code

    def commodities(self, codes: Any) -> str:
        return ", ".join(self.commodity(c) for c in codes)

    def business_type(self, code: str) -> str:
        return BUSINESS_TYPE_LABELS.get(code, _words(code))

    def reason(self, code: str) -> str:
        return REJECTION_REASONS.get(code, _words(code))

    def requirement(self, code: str) -> str:
        return self.requirements.get(code, _words(code))

    def action(self, name: str, transitions: Mapping[str, Any] | None = None) -> str:
        transition = (transitions or {}).get(name)
        label = getattr(transition, "label", "") if transition is not None else ""
        return label or _words(name)


def install(env: Any, zone_name: str) -> None:
    """Give a Jinja environment the date filters for this deployment's zone."""
    zone = time_zone(zone_name)
    env.filters["when"] = lambda value: when(value, zone)
    env.filters["day"] = lambda value: day(value, zone)
    # A validity's end is the first instant it no longer holds: its last day is the one before.
    env.filters["last_day"] = lambda value: day(
        value - timedelta(microseconds=1) if value is not None else None, zone
    )
    env.globals["time_zone"] = zone_name
    env.globals.setdefault("labels", Labels())
