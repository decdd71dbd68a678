"""National telephone formats; Ghana's is the default, others come from settings or plugins."""

from __future__ import annotations

import re

import attrs


@attrs.frozen
class PhoneFormat:
    """A national numbering plan reduced to what a form needs: parse, normalise to E.164."""

    country: str
    calling_code: str
    national_digits: int
    leading_digits: str = "0-9"
    trunk_prefix: str = "0"
    example: str = ""

    def normalise(self, text: str) -> str | None:
        digits = re.sub(r"[\s\-().]", "", text)
        if digits.startswith("+"):
            digits = digits[1:]
            if not digits.startswith(self.calling_code):
                return None
            national = digits[len(self.calling_code) :]
        elif digits.startswith("00" + self.calling_code):
            national = digits[2 + len(self.calling_code) :]
        elif self.trunk_prefix and digits.startswith(self.trunk_prefix):
            national = digits[len(self.trunk_prefix) :]
        elif (
            digits.startswith(self.calling_code)
            and len(digits) == len(self.calling_code) + self.national_digits
        ):
            national = digits[len(self.calling_code) :]
        elif not self.trunk_prefix and len(digits) == self.national_digits:
            national = digits  # plans without a trunk prefix dial the national number as is
        else:
            return None
        pattern = rf"[{self.leading_digits}]\d{{{self.national_digits - 1}}}"
        if not re.fullmatch(pattern, national):
            return None
        return f"+{self.calling_code}{national}"


# Ghana: 0 + 9 digits nationally; mobile and fixed numbers start with 2, 3 or 5.
GHANA = PhoneFormat("GH", "233", 9, leading_digits="235", example="024 123 4567")

BUILTIN_FORMATS: dict[str, PhoneFormat] = {
    "GH": GHANA,
    "NG": PhoneFormat("NG", "234", 10, leading_digits="789", example="0803 123 4567"),
    "KE": PhoneFormat("KE", "254", 9, leading_digits="17", example="0712 345678"),
    "CI": PhoneFormat("CI", "225", 10, trunk_prefix="", example="07 12 34 56 78"),
}
