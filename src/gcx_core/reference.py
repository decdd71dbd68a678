"""Reference data: Ghana's regions and the default commodity catalogue."""

from __future__ import annotations

import attrs


@attrs.frozen
class Region:
    code: str
    name: str


@attrs.frozen
class Commodity:
    code: str
    name: str
    processed_food: bool = False


# The 16 regions created by the 2018 reorganisation.
REGIONS: tuple[Region, ...] = (
    Region("AH", "Ashanti"),
    Region("BA", "Bono"),
    Region("BE", "Bono East"),
    Region("AF", "Ahafo"),
    Region("CP", "Central"),
    Region("EP", "Eastern"),
    Region("AA", "Greater Accra"),
    Region("NE", "North East"),
    Region("NP", "Northern"),
    Region("OT", "Oti"),
    Region("SV", "Savannah"),
    Region("UE", "Upper East"),
    Region("UW", "Upper West"),
    Region("TV", "Volta"),
    Region("WP", "Western"),
    Region("WN", "Western North"),
)

COMMODITIES: tuple[Commodity, ...] = (
    Commodity("maize", "Maize"),
    Commodity("rice", "Rice (paddy)"),
    Commodity("soybean", "Soybean"),
    Commodity("sorghum", "Sorghum"),
    Commodity("millet", "Millet"),
    Commodity("groundnut", "Groundnut"),
    Commodity("cowpea", "Cowpea"),
    Commodity("sesame", "Sesame"),
    Commodity("cashew", "Cashew (raw nuts)"),
    Commodity("shea", "Shea nuts"),
    Commodity("milled_rice", "Milled rice", processed_food=True),
    Commodity("maize_flour", "Maize flour", processed_food=True),
    Commodity("gari", "Gari", processed_food=True),
    Commodity("palm_oil", "Palm oil", processed_food=True),
    Commodity("soy_oil", "Soybean oil", processed_food=True),
)

REGIONS_BY_CODE = {r.code: r for r in REGIONS}
COMMODITIES_BY_CODE = {c.code: c for c in COMMODITIES}

BUSINESS_TYPES: tuple[str, ...] = (
    "sole_proprietorship",
    "partnership",
    "limited_company",
    "cooperative",
    "farmer_based_organisation",
    "other",
)

BUSINESS_TYPE_LABELS: dict[str, str] = {
    "sole_proprietorship": "Sole proprietorship",
    "partnership": "Partnership",
    "limited_company": "Limited company",
    "cooperative": "Cooperative",
    "farmer_based_organisation": "Farmer-based organisation",
    "other": "Other",
}

REJECTION_REASONS: dict[str, str] = {
    "incomplete_documents": "Required documents were not provided",
    "failed_verification": "Documents could not be verified",
    "ineligible": "The business does not meet the programme's criteria",
    "duplicate": "Duplicate of another application",
    "other": "Other reason (see message)",
}

# The message a decision email starts from, for staff to edit before it goes (the back
# office's preview fills it in when the message is left empty).
REJECTION_MESSAGES: dict[str, str] = {
    "incomplete_documents": "We did not receive every document the programme requires. You "
    "are welcome to apply again with all of them attached.",
    "failed_verification": "We could not confirm one or more of your documents with the "
    "authority that issued them. You are welcome to apply again with documents that can be "
    "confirmed.",
    "ineligible": "Your business does not meet the programme's criteria for suppliers at "
    "this time.",
    "duplicate": "This application repeats one we already have from your business; we will "
    "continue with the earlier one.",
    "other": "",
}
DOCUMENTS_MESSAGE = (
    "Please upload the documents listed above so that we can continue reviewing your application."
)


def is_processed_food(commodity: str) -> bool:
    """Free-text commodities are not in the catalogue and count as unprocessed."""
    known = COMMODITIES_BY_CODE.get(commodity)
    return known is not None and known.processed_food
