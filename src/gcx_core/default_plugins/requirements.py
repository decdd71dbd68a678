"""The default document requirements, registered through `gcx_register_document_requirements`."""

from __future__ import annotations

from collections.abc import Callable

from gcx_core.entities import DocumentRequirement
from gcx_core.plugins import hookimpl

DEFAULT_REQUIREMENTS = (
    DocumentRequirement("business_registration", "Business registration certificate"),
    DocumentRequirement("vat_certificate", "VAT certificate"),
    DocumentRequirement(
        "ppa_certificate", "PPA certificate", "Registration with the Public Procurement Authority"
    ),
    DocumentRequirement("tax_clearance", "Tax clearance certificate", validity_days=365),
    DocumentRequirement(
        "proof_of_office", "Proof of office", "A utility bill or tenancy agreement"
    ),
    DocumentRequirement(
        "director_ids", "ID of directors", "Ghana Card or passport of each director"
    ),
    DocumentRequirement("gcx_registration", "GCX registration proof"),
    DocumentRequirement("team_member_ids", "Team member IDs"),
    DocumentRequirement(
        "fda_certificate",
        "FDA certificate",
        "Food and Drugs Authority certificate, for processed food",
        processed_food_only=True,
    ),
)


@hookimpl(tryfirst=True)
def gcx_register_document_requirements(register: Callable[[DocumentRequirement], None]) -> None:
    for requirement in DEFAULT_REQUIREMENTS:
        register(requirement)
