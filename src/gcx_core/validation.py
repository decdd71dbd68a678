"""Turn a submitted mapping into an ApplicationDraft, or a ValidationError naming bad fields."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gcx_core.entities import (
    ApplicationDraft,
    BankAccount,
    Business,
    Contact,
    Declaration,
    NextOfKin,
    TeamMember,
)
from gcx_core.exceptions import ValidationError
from gcx_core.phones import GHANA, PhoneFormat
from gcx_core.reference import BUSINESS_TYPES, COMMODITIES_BY_CODE, REGIONS, REGIONS_BY_CODE

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_TIN = re.compile(r"^[A-Z0-9][A-Z0-9-]{6,18}[A-Z0-9]$")
_ACCOUNT_NUMBER = re.compile(r"^\d{6,20}$")
_REGION_NAMES = {r.name.casefold(): r.code for r in REGIONS}
MAX_TEXT = 200
MAX_LONG_TEXT = 1000
MAX_LIST = 20


def normalise_email(value: str) -> str:
    return value.strip().lower()


def email_domain(email: str) -> str:
    """The part after the @, lower-cased: what a conflict of interest may name."""
    return email.rpartition("@")[2].strip().lower()


def normalise_tin(value: str) -> str:
    return re.sub(r"\s", "", value).upper()


def comparable_name(value: str) -> str:
    """Case, accents, punctuation and spacing removed: what makes two names 'the same'."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed.casefold() if ch.isalnum())


# C0 and C1 control characters (line breaks and tabs are spacing, folded before this check).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class _Reader:
    """Reads fields out of nested mappings, recording an error per bad field path."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self._missing: list[str] = []

    def error(self, path: str, message: str) -> None:
        # Once an object is missing, its fields' own errors would only repeat that.
        if any(path.startswith(m + ".") for m in self._missing):
            return
        self.errors.setdefault(path, []).append(message)

    def mapping(self, data: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            self.error(path or "$", "must be an object")
            self._missing.append(path)
            return {}
        for key in data:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else str(key), "unknown field")
        return data

    def text(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = True,
        max_len: int = MAX_TEXT,
    ) -> str:
        full = f"{path}.{key}" if path else key
        value = data.get(key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.error(full, "must be text")
            return ""
        value = " ".join(value.split())
        if _CONTROL.search(value):
            self.error(full, "must not contain control characters")
        elif required and not value:
            self.error(full, "is required")
        elif len(value) > max_len:
            self.error(full, f"must be at most {max_len} characters")
        return value

    def choice(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        normalise: Callable[[str], str | None],
        message: str,
    ) -> str:
        value = self.text(data, key, path)
        if not value:
            return ""
        result = normalise(value)
        if result is None:
            self.error(f"{path}.{key}", message)
            return ""
        return result

    def flag(self, data: Mapping[str, Any], key: str, path: str, message: str) -> bool:
        value = data.get(key)
        if value is not True:
            self.error(f"{path}.{key}", message)
            return False
        return True


def _region(value: str) -> str | None:
    upper = value.upper()
    if upper in REGIONS_BY_CODE:
        return upper
    return _REGION_NAMES.get(value.casefold())


def validate_submission(
    data: Any, *, phone_format: PhoneFormat = GHANA, now: datetime
) -> ApplicationDraft:
    """Validate a whole submission at once so the applicant sees every problem in one go."""
    r = _Reader()
    if not isinstance(data, Mapping):
        raise ValidationError({"$": "must be an object"})
    top = r.mapping(
        data,
        "",
        {
            "business",
            "contact",
            "commodities",
            "warehouse_location",
            "team_members",
            "next_of_kin",
            "bank_accounts",
            "declaration",
        },
    )

    def phone(d: Mapping[str, Any], key: str, path: str) -> str:
        return r.choice(
            d,
            key,
            path,
            phone_format.normalise,
            f"must be a valid {phone_format.country} number, e.g. {phone_format.example}",
        )

    def email(d: Mapping[str, Any], key: str, path: str, required: bool = True) -> str:
        value = r.text(d, key, path, required=required, max_len=254)
        if value and not _EMAIL.match(value):
            r.error(f"{path}.{key}", "must be an email address")
        return normalise_email(value)

    b = r.mapping(top.get("business"), "business", {f.name for f in Business.__attrs_attrs__})
    business = Business(
        name=r.text(b, "name", "business"),
        business_type=r.choice(
            b,
            "business_type",
            "business",
            lambda v: v if v in BUSINESS_TYPES else None,
            "must be one of " + ", ".join(BUSINESS_TYPES),
        ),
        registration_number=r.text(b, "registration_number", "business", max_len=50),
        tin=r.choice(
            b,
            "tin",
            "business",
            lambda v: t if _TIN.match(t := normalise_tin(v)) else None,
            "must be 8 to 20 letters, digits or hyphens",
        ),
        address=r.text(b, "address", "business", max_len=MAX_LONG_TEXT),
        city=r.text(b, "city", "business"),
        region=r.choice(b, "region", "business", _region, "must be one of Ghana's 16 regions"),
        postal_code=r.text(b, "postal_code", "business", required=False, max_len=20),
        country=(r.text(b, "country", "business", required=False, max_len=2) or "GH").upper(),
    )

    c = r.mapping(top.get("contact"), "contact", {"telephone", "email"})
    contact = Contact(
        telephone=phone(c, "telephone", "contact"), email=email(c, "email", "contact")
    )

    commodities: list[str] = []
    raw = top.get("commodities")
    if not isinstance(raw, list) or not raw:
        r.error("commodities", "choose at least one commodity")
    elif len(raw) > MAX_LIST:
        r.error("commodities", f"at most {MAX_LIST} commodities")
    else:
        for i, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip() or len(item.strip()) > 100:
                r.error(
                    f"commodities[{i}]",
                    "must be a catalogue code or a name of at most 100 characters",
                )
                continue
            value = item.strip()
            value = (
                value.lower() if value.lower() in COMMODITIES_BY_CODE else " ".join(value.split())
            )
            if value not in commodities:
                commodities.append(value)

    warehouse = r.text(top, "warehouse_location", "", max_len=MAX_LONG_TEXT)

    members: list[TeamMember] = []
    raw = top.get("team_members")
    if not isinstance(raw, list) or not raw:
        r.error("team_members", "add at least one team member")
    elif len(raw) > MAX_LIST:
        r.error("team_members", f"at most {MAX_LIST} team members")
    else:
        for i, item in enumerate(raw):
            p = f"team_members[{i}]"
            m = r.mapping(item, p, {f.name for f in TeamMember.__attrs_attrs__})
            members.append(
                TeamMember(
                    full_name=r.text(m, "full_name", p),
                    role=r.text(m, "role", p),
                    telephone=phone(m, "telephone", p),
                    email=email(m, "email", p, required=False),
                    id_number=r.text(m, "id_number", p, required=False, max_len=50),
                )
            )

    k = r.mapping(
        top.get("next_of_kin"), "next_of_kin", {f.name for f in NextOfKin.__attrs_attrs__}
    )
    next_of_kin = NextOfKin(
        full_name=r.text(k, "full_name", "next_of_kin"),
        relationship=r.text(k, "relationship", "next_of_kin", max_len=50),
        telephone=phone(k, "telephone", "next_of_kin"),
        address=r.text(k, "address", "next_of_kin", required=False, max_len=MAX_LONG_TEXT),
    )

    def account(d: Any, path: str) -> BankAccount:
        a = r.mapping(d, path, {f.name for f in BankAccount.__attrs_attrs__})
        acc = BankAccount(
            bank_name=r.text(a, "bank_name", path),
            account_name=r.text(a, "account_name", path),
            account_number=r.choice(
                a,
                "account_number",
                path,
                lambda v: n if _ACCOUNT_NUMBER.match(n := re.sub(r"[\s-]", "", v)) else None,
                "must be 6 to 20 digits",
            ),
            branch=r.text(a, "branch", path, required=False),
        )
        if (
            acc.account_name
            and business.name
            and (comparable_name(acc.account_name) != comparable_name(business.name))
        ):
            r.error(f"{path}.account_name", "must match the business name")
        return acc

    banks = r.mapping(top.get("bank_accounts"), "bank_accounts", {"primary", "secondary"})
    primary = account(banks.get("primary"), "bank_accounts.primary")
    secondary = None
    if banks.get("secondary") is not None:
        secondary = account(banks["secondary"], "bank_accounts.secondary")
        if secondary.account_number and secondary.account_number == primary.account_number:
            r.error(
                "bank_accounts.secondary.account_number", "must differ from the primary account"
            )

    d = r.mapping(
        top.get("declaration"),
        "declaration",
        {"agreed", "data_consent", "signer_name", "signer_designation"},
    )
    declaration = Declaration(
        agreed=r.flag(d, "agreed", "declaration", "you must agree to the declaration"),
        data_consent=r.flag(
            d, "data_consent", "declaration", "you must consent to data processing"
        ),
        signer_name=r.text(d, "signer_name", "declaration"),
        signer_designation=r.text(d, "signer_designation", "declaration"),
        signed_at=now,
    )
    if r.errors:
        raise ValidationError(r.errors)
    return ApplicationDraft(
        business=business,
        contact=contact,
        commodities=tuple(commodities),
        warehouse_location=warehouse,
        team_members=tuple(members),
        next_of_kin=next_of_kin,
        primary_account=primary,
        secondary_account=secondary,
        declaration=declaration,
    )
