"""Valid sample submissions for tests, examples and benchmarks; override one field per test."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

_counter = itertools.count(1)


def make_submission(n: int | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid submission; each call gets a fresh email, TIN and business name unless given.

    Overrides are dotted paths: ``make_submission(**{"business.tin": "bad"})``.
    """
    n = next(_counter) if n is None else n
    tag = secrets.token_hex(3)
    name = f"Adom Farms {n} {tag} Ltd"
    data: dict[str, Any] = {
        "business": {
            "name": name,
            "business_type": "limited_company",
            "registration_number": f"CS{n:06d}",
            "tin": f"P{tag.upper()}{n:06d}",
            "address": "12 Liberation Road",
            "city": "Accra",
            "region": "AA",
            "postal_code": "GA-123",
            "country": "GH",
        },
        "contact": {"telephone": "024 123 4567", "email": f"owner{n}.{tag}@example.com"},
        "commodities": ["maize", "soybean"],
        "warehouse_location": "Plot 4, Tema Industrial Area",
        "team_members": [
            {
                "full_name": "Ama Mensah",
                "role": "Director",
                "telephone": "+233 20 123 4567",
                "email": "ama@example.com",
                "id_number": "GHA-123456789-0",
            }
        ],
        "next_of_kin": {
            "full_name": "Kofi Mensah",
            "relationship": "Brother",
            "telephone": "0551234567",
            "address": "Kumasi",
        },
        "bank_accounts": {
            "primary": {
                "bank_name": "GCB Bank",
                "account_name": name.upper(),
                "account_number": f"10{n:010d}",
                "branch": "Accra Main",
            },
            "secondary": None,
        },
        "declaration": {
            "agreed": True,
            "data_consent": True,
            "signer_name": "Ama Mensah",
            "signer_designation": "Director",
        },
    }
    for path, value in overrides.items():
        target = data
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return data
