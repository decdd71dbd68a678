"""Query parameters of the application list (pages, CSV export and the staff API alike)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from gcx_core.exceptions import ValidationError
from gcx_core.reference import COMMODITIES_BY_CODE, REGIONS_BY_CODE
from gcx_core.services.queries import MAX_PER_PAGE, SORTS, ApplicationFilter
from gcx_core.system import Gcx
from gcx_web.schemas import MAX_ROW_ID

MAX_PAGE = 10**6


def _many(params: Any, name: str) -> tuple[str, ...]:
    values = params.getall(name, []) if hasattr(params, "getall") else params.get(name, [])
    if isinstance(values, str):
        values = [values]
    return tuple(v for part in values for v in str(part).split(",") if v.strip())


def _date(value: str, name: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        errors[name] = "must be a date like 2026-11-28"
        return None
    return datetime.combine(day, time(), tzinfo=UTC)


def _known(
    values: tuple[str, ...], known: Collection[str], name: str, what: str, errors: dict[str, str]
) -> None:
    unknown = [v for v in values if v not in known]
    if unknown:
        errors[name] = f"unknown {what}: " + ", ".join(sorted(set(unknown)))


def _flag(value: str, name: str, errors: dict[str, str]) -> bool:
    """A yes/no filter: true, 1 or on (a ticked box) for yes; false, 0 or nothing for no."""
    value = value.lower()
    if value not in ("", "0", "1", "true", "false", "on"):
        errors[name] = "must be true or false"
    return value in ("1", "true", "on")


QUEUES = ("all", "mine", "unassigned")
MAX_IDS = 500


def parse_filter(
    params: Mapping[str, Any],
    gcx: Gcx | None = None,
    *,
    per_page: int = 25,
    me: int | None = None,
) -> ApplicationFilter:
    """An ApplicationFilter from query parameters; malformed values are field errors, and so
    are statuses (of `gcx`'s workflow), regions and commodities that do not exist.

    `queue=mine` (the applications assigned to `me`) and `queue=unassigned` list open
    applications only (in statuses that wait on someone) unless statuses are given."""
    errors: dict[str, str] = {}
    statuses, regions = _many(params, "status"), _many(params, "region")
    commodities = _many(params, "commodity")
    if gcx is not None:
        _known(statuses, gcx.workflow.states, "status", "status", errors)
    _known(regions, REGIONS_BY_CODE, "region", "region", errors)
    _known(commodities, COMMODITIES_BY_CODE, "commodity", "commodity", errors)

    def one(name: str) -> str:
        value = params.get(name)
        return str(value).strip() if value is not None else ""

    created_from = _date(one("from"), "from", errors)
    created_to = _date(one("to"), "to", errors)
    if created_to is not None:
        created_to += timedelta(days=1)  # "to" is inclusive
    reviewer = one("reviewer")
    if reviewer and not (reviewer.isdigit() and 0 < int(reviewer) <= MAX_ROW_ID):
        errors["reviewer"] = "must be a user id"
    ids = _many(params, "id")
    if len(ids) > MAX_IDS or not all(i.isdigit() and 0 < int(i) <= MAX_ROW_ID for i in ids):
        errors["id"] = f"must be up to {MAX_IDS} application ids"
    queue = one("queue") or "all"
    if queue not in QUEUES:
        errors["queue"] = "must be all, mine or unassigned"
    elif queue == "mine" and me is None:
        errors["queue"] = "mine needs a signed-in member of staff"
    elif queue == "mine" and reviewer and (not reviewer.isdigit() or int(reviewer) != me):
        errors["queue"] = "mine lists your own applications; leave the reviewer out"
    elif queue == "unassigned" and reviewer:
        errors["queue"] = "unassigned applications have no reviewer; leave the reviewer out"
    if queue != "all" and not statuses and gcx is not None:
        statuses = tuple(n for n in gcx.workflow.states if gcx.workflow.waits(n))
    overdue = _flag(one("overdue"), "overdue", errors)
    expired = _flag(one("expired_documents"), "expired_documents", errors)
    sort = one("sort") or "-created_at"
    if sort.lstrip("-") not in SORTS:
        errors["sort"] = "must be one of " + ", ".join(SORTS)
    numbers = {}
    for name, default, top in (("page", 1, MAX_PAGE), ("per_page", per_page, MAX_PER_PAGE)):
        raw = one(name) or str(default)
        if not raw.isdigit() or not 1 <= int(raw) <= top:
            errors[name] = f"must be a whole number from 1 to {top}"
            numbers[name] = default
        else:
            numbers[name] = int(raw)
    search = one("q")
    if len(search) > 200:
        errors["q"] = "must be at most 200 characters"
    if errors:
        raise ValidationError(errors)
    return ApplicationFilter(
        search=search,
        statuses=statuses,
        regions=regions,
        commodities=commodities,
        created_from=created_from,
        created_to=created_to,
        assigned_reviewer_id=me if queue == "mine" else int(reviewer) if reviewer else None,
        unassigned=queue == "unassigned",
        ids=tuple(int(i) for i in ids),
        overdue_at=(gcx.now() if gcx is not None else datetime.now(UTC)) if overdue else None,
        expired_documents=expired,
        sort=sort,
        page=numbers["page"],
        per_page=numbers["per_page"],
    )
