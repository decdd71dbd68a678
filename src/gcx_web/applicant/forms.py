"""The application form's steps, and the translation between form fields and a submission.

Form fields are named by the validator's own paths (``business.name``,
``team_members[0].full_name``), so its errors land next to the right field.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from gcx_core.reference import BUSINESS_TYPE_LABELS, BUSINESS_TYPES, COMMODITIES, REGIONS

TEAM_ROWS = 3
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d{1,2})\]")


@attrs.frozen
class Field:
    name: str
    label: str
    kind: str = "text"  # text, email, tel, select, checkbox, checkboxes
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    autocomplete: str = ""


@attrs.frozen
class Step:
    slug: str
    title: str
    fields: tuple[Field, ...] = ()
    # Error paths starting with one of these belong to this step.
    prefixes: tuple[str, ...] = ()
    intro: str = ""

    def owns(self, path: str) -> bool:
        return any(path == p or path.startswith((p + ".", p + "[")) for p in self.prefixes)


def _person(prefix: str, required: bool) -> tuple[Field, ...]:
    return (
        Field(f"{prefix}.full_name", "Full name", required=required),
        Field(f"{prefix}.role", "Role", required=required, hint="e.g. Director"),
        Field(f"{prefix}.telephone", "Telephone", "tel", required=required),
        Field(f"{prefix}.email", "Email", "email", required=False),
        Field(f"{prefix}.id_number", "ID number", required=False, hint="Ghana Card number"),
    )


def _account(prefix: str, required: bool) -> tuple[Field, ...]:
    return (
        Field(f"{prefix}.bank_name", "Bank", required=required),
        Field(
            f"{prefix}.account_name",
            "Account name",
            required=required,
            hint="Must match the business name",
        ),
        Field(f"{prefix}.account_number", "Account number", required=required, hint="6-20 digits"),
        Field(f"{prefix}.branch", "Branch", required=False),
    )


STEPS: tuple[Step, ...] = (
    Step(
        "business",
        "Business",
        (
            Field("business.name", "Business name", autocomplete="organization"),
            Field(
                "business.business_type",
                "Type of business",
                "select",
                options=tuple((t, BUSINESS_TYPE_LABELS[t]) for t in BUSINESS_TYPES),
            ),
            Field("business.registration_number", "Registration number"),
            Field("business.tin", "Taxpayer identification number (TIN)"),
            Field("business.address", "Address", autocomplete="street-address"),
            Field("business.city", "City or town"),
            Field(
                "business.region",
                "Region",
                "select",
                options=tuple((r.code, r.name) for r in REGIONS),
            ),
            Field("business.postal_code", "Postal or digital address", required=False),
        ),
        ("business",),
    ),
    Step(
        "contact",
        "Contact",
        (
            Field(
                "contact.telephone",
                "Telephone",
                "tel",
                hint="e.g. 024 123 4567",
                autocomplete="tel",
            ),
            Field(
                "contact.email", "Email", "email", hint="We send updates here", autocomplete="email"
            ),
            Field("warehouse_location", "Warehouse location"),
        ),
        ("contact", "warehouse_location"),
    ),
    Step(
        "commodities",
        "Commodities",
        (
            Field(
                "commodities",
                "Commodities you supply",
                "checkboxes",
                options=tuple((c.code, c.name) for c in COMMODITIES),
            ),
            Field(
                "commodities_other",
                "Other commodities",
                required=False,
                hint="Not in the list? Separate names with commas",
            ),
        ),
        ("commodities",),
    ),
    Step(
        "team",
        "Team members",
        tuple(f for i in range(TEAM_ROWS) for f in _person(f"team_members[{i}]", i == 0)),
        ("team_members",),
        "The first person is required; add up to two more.",
    ),
    Step(
        "next_of_kin",
        "Next of kin",
        (
            Field("next_of_kin.full_name", "Full name"),
            Field("next_of_kin.relationship", "Relationship"),
            Field("next_of_kin.telephone", "Telephone", "tel"),
            Field("next_of_kin.address", "Address", required=False),
        ),
        ("next_of_kin",),
    ),
    Step(
        "bank",
        "Bank accounts",
        (*_account("bank_accounts.primary", True), *_account("bank_accounts.secondary", False)),
        ("bank_accounts",),
        "A primary account is required; a secondary one is optional.",
    ),
    Step(
        "documents",
        "Documents",
        (),
        ("documents",),
        "PDF, PNG or JPEG. You can also upload them later from your tracking page.",
    ),
    Step(
        "declaration",
        "Declaration",
        (
            Field(
                "declaration.agreed",
                "I declare that the information given is true and complete",
                "checkbox",
            ),
            Field(
                "declaration.data_consent",
                "I agree that the programme may process this data to assess the application",
                "checkbox",
            ),
            Field("declaration.signer_name", "Name of the person signing", autocomplete="name"),
            Field("declaration.signer_designation", "Designation", hint="e.g. Director"),
        ),
        ("declaration",),
    ),
)
STEPS_BY_SLUG = {s.slug: s for s in STEPS}


def parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in _TOKEN.findall(path):
        parts.append(name if name else int(index))
    return parts


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = parse_path(path)
    node: Any = target
    for part, following in itertools.pairwise(parts):
        if isinstance(part, int):
            while len(node) <= part:
                node.append({})
            node = node[part]
        else:
            if part not in node or not isinstance(node[part], dict | list):
                node[part] = [] if isinstance(following, int) else {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def get_path(source: Any, path: str) -> Any:
    node = source
    for part in parse_path(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def read_step(step: Step, form: Mapping[str, Any], getall: Any) -> dict[str, Any]:
    """The posted values of one step, as a partial submission."""
    data: dict[str, Any] = {}
    for field in step.fields:
        if field.name == "commodities_other":
            continue
        if field.kind == "checkboxes":
            chosen = [v for v in getall(field.name, []) if isinstance(v, str) and v.strip()]
            other = str(form.get("commodities_other") or "")
            chosen += [part.strip() for part in other.split(",") if part.strip()]
            set_path(data, field.name, chosen)
        elif field.kind == "checkbox":
            set_path(data, field.name, form.get(field.name) in ("true", "on", "yes", "1"))
        else:
            value = form.get(field.name)
            set_path(data, field.name, value if isinstance(value, str) else "")
    if step.slug == "team":
        rows = data.get("team_members", [])
        # Blank extra rows are not team members.
        data["team_members"] = [r for i, r in enumerate(rows) if i == 0 or any(r.values())]
    if step.slug == "bank":
        secondary = data["bank_accounts"].get("secondary") or {}
        if not any(secondary.values()):
            data["bank_accounts"]["secondary"] = None
    return data


def merge(draft: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(draft)
    for key, value in update.items():
        if key == "bank_accounts":
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def errors_for(step: Step, errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {path: msgs for path, msgs in errors.items() if step.owns(path)}


def form_values(step: Step, draft: dict[str, Any]) -> dict[str, Any]:
    """Values to show in a step's fields."""
    values: dict[str, Any] = {}
    for field in step.fields:
        if field.name == "commodities_other":
            known = {c.code for c in COMMODITIES}
            values[field.name] = ", ".join(
                c for c in draft.get("commodities", []) if c not in known
            )
        else:
            values[field.name] = get_path(draft, field.name)
    return values


def first_incomplete(done: Iterable[str]) -> Step | None:
    finished = set(done)
    return next((s for s in STEPS if s.slug not in finished), None)


_GROUPS = (
    (re.compile(r"^team_members\[(\d+)\]\."), lambda m: f"Team member {int(m.group(1)) + 1}"),
    (re.compile(r"^bank_accounts\.primary\."), lambda m: "Primary account"),
    (re.compile(r"^bank_accounts\.secondary\."), lambda m: "Secondary account"),
    (re.compile(r"^next_of_kin\."), lambda m: "Next of kin"),
)
_ALL_FIELDS = {f.name: f.label for s in STEPS for f in s.fields}


def field_label(path: str, requirement_titles: Mapping[str, str] | None = None) -> str:
    """What an error's field is called on the form: "Primary account: Account number",
    "Team member 2: Telephone", a document's title; never a path like `documents.x`."""
    if path.startswith("documents."):
        code = path.removeprefix("documents.")
        return (requirement_titles or {}).get(code) or code.replace("_", " ").capitalize()
    label = _ALL_FIELDS.get(path)
    for pattern, group in _GROUPS:
        found = pattern.match(path)
        if found:
            rest = path[found.end() :]
            inner = label or rest.replace("_", " ").capitalize()
            return f"{group(found)}: {inner[0].lower() + inner[1:] if inner else inner}"
    if label:
        return label
    words = re.sub(r"\[(\d+)\]", lambda m: f" {int(m.group(1)) + 1}", path)
    return words.replace(".", " ").replace("_", " ").strip().capitalize()
