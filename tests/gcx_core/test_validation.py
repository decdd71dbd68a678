"""Every field of a submission: the error names the field; good values are normalised."""

from __future__ import annotations

import pytest

from gcx_core.exceptions import ValidationError
from gcx_core.phones import BUILTIN_FORMATS, GHANA
from gcx_core.testing import make_submission
from gcx_core.validation import comparable_name, validate_submission

from .helpers import NOW


def errors_for(data):
    with pytest.raises(ValidationError) as info:
        validate_submission(data, now=NOW)
    return info.value.errors


def test_a_valid_submission_is_normalised():
    data = make_submission(
        **{
            "contact.email": "  Owner@Example.COM ",
            "business.tin": "p 0012345678",
            "business.region": "ashanti",
            "contact.telephone": "024-123-4567",
        }
    )
    draft = validate_submission(data, now=NOW)
    assert draft.contact.email == "owner@example.com"
    assert draft.business.tin == "P0012345678"
    assert draft.business.region == "AH"
    assert draft.contact.telephone == "+233241234567"
    assert draft.declaration.signed_at == NOW
    assert draft.commodities == ("maize", "soybean")


BAD_FIELDS = [
    ("business.name", "", "business.name", "is required"),
    ("business.name", "x" * 201, "business.name", "at most 200"),
    ("business.name", 42, "business.name", "must be text"),
    ("business.business_type", "empire", "business.business_type", "must be one of"),
    ("business.registration_number", "", "business.registration_number", "is required"),
    ("business.tin", "12", "business.tin", "8 to 20"),
    ("business.tin", "P00123456$8", "business.tin", "8 to 20"),
    ("business.address", "", "business.address", "is required"),
    ("business.city", "  ", "business.city", "is required"),
    ("business.region", "Atlantis", "business.region", "16 regions"),
    ("business.postal_code", "x" * 21, "business.postal_code", "at most 20"),
    ("contact.telephone", "12345", "contact.telephone", "valid GH number"),
    ("contact.telephone", "+234 803 123 4567", "contact.telephone", "valid GH number"),
    ("contact.telephone", "0441234567", "contact.telephone", "valid GH number"),
    ("contact.email", "not-an-email", "contact.email", "email address"),
    ("contact.email", "", "contact.email", "is required"),
    ("commodities", [], "commodities", "at least one"),
    ("commodities", "maize", "commodities", "at least one"),
    ("commodities", ["maize", ""], "commodities[1]", "catalogue code"),
    ("commodities", ["x" * 101], "commodities[0]", "catalogue code"),
    ("commodities", ["maize"] * 21, "commodities", "at most 20"),
    ("warehouse_location", "", "warehouse_location", "is required"),
    ("team_members", [], "team_members", "at least one"),
    ("team_members.0.full_name", "", "team_members[0].full_name", "is required"),
    ("team_members.0.telephone", "abc", "team_members[0].telephone", "valid GH number"),
    ("team_members.0.email", "bad@", "team_members[0].email", "email address"),
    ("next_of_kin.full_name", "", "next_of_kin.full_name", "is required"),
    ("next_of_kin.relationship", "", "next_of_kin.relationship", "is required"),
    ("next_of_kin.telephone", "", "next_of_kin.telephone", "is required"),
    ("bank_accounts.primary", None, "bank_accounts.primary", "must be an object"),
    ("bank_accounts.primary.bank_name", "", "bank_accounts.primary.bank_name", "is required"),
    (
        "bank_accounts.primary.account_number",
        "12ab",
        "bank_accounts.primary.account_number",
        "6 to 20 digits",
    ),
    (
        "bank_accounts.primary.account_name",
        "Someone Else Ltd",
        "bank_accounts.primary.account_name",
        "must match the business name",
    ),
    ("declaration.agreed", False, "declaration.agreed", "agree"),
    ("declaration.agreed", "yes", "declaration.agreed", "agree"),
    ("declaration.data_consent", None, "declaration.data_consent", "consent"),
    ("declaration.signer_name", "", "declaration.signer_name", "is required"),
    ("declaration.signer_designation", "", "declaration.signer_designation", "is required"),
]


@pytest.mark.parametrize(("path", "value", "error_path", "message"), BAD_FIELDS)
def test_every_field_has_a_clear_error(path, value, error_path, message):
    errors = errors_for(make_submission(**{path: value}))
    assert error_path in errors, errors
    assert any(message in m for m in errors[error_path]), errors[error_path]


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\x9b"])
@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("business", "name"),
        ("business", "address"),
        ("contact", "email"),
        ("declaration", "signer_name"),
        ("next_of_kin", "full_name"),
    ],
)
def test_control_characters_are_refused_in_text(bad, path, key):
    data = make_submission()
    data[path][key] = f"Adom{bad}Farms"
    errors = errors_for(data)
    assert any("control characters" in m for m in errors[f"{path}.{key}"]), errors


def test_unknown_fields_are_refused():
    data = make_submission()
    data["surprise"] = 1
    data["business"]["colour"] = "red"
    errors = errors_for(data)
    assert errors["surprise"] == ["unknown field"]
    assert errors["business.colour"] == ["unknown field"]


def test_not_an_object():
    assert errors_for([1, 2]) == {"$": ["must be an object"]}


def test_every_problem_is_reported_at_once():
    errors = errors_for(
        make_submission(**{"business.name": "", "contact.email": "x", "declaration.agreed": False})
    )
    assert {"business.name", "contact.email", "declaration.agreed"} <= set(errors)


def test_secondary_account_is_checked_too():
    data = make_submission()
    primary = data["bank_accounts"]["primary"]
    data["bank_accounts"]["secondary"] = dict(primary)
    errors = errors_for(data)
    assert "must differ" in errors["bank_accounts.secondary.account_number"][0]
    data["bank_accounts"]["secondary"] = dict(
        primary, account_number="99999999", account_name="Other Co"
    )
    assert "bank_accounts.secondary.account_name" in errors_for(data)


def test_account_name_ignores_case_and_punctuation():
    data = make_submission(**{"business.name": "Kofi & Sons Ltd."})
    data["bank_accounts"]["primary"]["account_name"] = "KOFI SONS LTD"
    assert validate_submission(data, now=NOW).primary_account.account_name == "KOFI SONS LTD"
    assert comparable_name("Ñana-Co.") == comparable_name("nana co")


def test_free_text_commodities_are_kept_and_deduplicated():
    draft = validate_submission(
        make_submission(commodities=["Maize", "Dried  mango", "maize"]), now=NOW
    )
    assert draft.commodities == ("maize", "Dried mango")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0241234567", "+233241234567"),
        ("+233 24 123 4567", "+233241234567"),
        ("00233241234567", "+233241234567"),
        ("233241234567", "+233241234567"),
        ("(030) 123-4567", "+233301234567"),
        ("0541234567", "+233541234567"),
        ("024123456", None),
        ("02412345678", None),
        ("+44 20 7946 0958", None),
        ("0841234567", None),
    ],
)
def test_ghana_numbers(text, expected):
    assert GHANA.normalise(text) == expected


def test_other_national_formats():
    nigeria = BUILTIN_FORMATS["NG"]
    draft = validate_submission(
        make_submission(
            **{
                "contact.telephone": "0803 123 4567",
                "team_members.0.telephone": "08031234567",
                "next_of_kin.telephone": "+2348031234567",
            }
        ),
        phone_format=nigeria,
        now=NOW,
    )
    assert draft.contact.telephone == "+2348031234567"
    ivory_coast = BUILTIN_FORMATS["CI"]
    assert ivory_coast.normalise("07 12 34 56 78") == "+2250712345678"
    assert ivory_coast.normalise("+225 07 12 34 56 78") == "+2250712345678"
    assert ivory_coast.normalise("07 12 34 56") is None
