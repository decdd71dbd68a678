"""Tracking codes: 60 random bits in Crockford base32, e.g. ``GCX-7K3Q-M9TD-X2HB``."""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "GCX"
_GROUPS = 3
_GROUP_LEN = 4
_BITS = _GROUPS * _GROUP_LEN * 5  # 60
# Crockford's decoding rules: I and L read as 1, O as 0; hyphens and spaces are ignored.
_CLEAN = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None, "\t": None})
_BODY = re.compile(f"[{ALPHABET}]{{{_GROUPS * _GROUP_LEN}}}")
_CANONICAL = re.compile(f"{PREFIX}(-[{ALPHABET}]{{{_GROUP_LEN}}}){{{_GROUPS}}}")


def new_tracking_code() -> str:
    value = secrets.randbits(_BITS)
    chars = []
    for _ in range(_GROUPS * _GROUP_LEN):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return _format("".join(chars))


def _format(body: str) -> str:
    """``GCX-XXXX-XXXX-XXXX`` from the twelve characters of a code."""
    groups = [body[i : i + _GROUP_LEN] for i in range(0, len(body), _GROUP_LEN)]
    return "-".join([PREFIX, *groups])


def normalise_tracking_code(text: str) -> str | None:
    """Return the canonical form of what a person typed, or None if it cannot be a code."""
    if _CANONICAL.fullmatch(text):  # most lookups: a code as issued
        return text
    cleaned = text.upper().translate(_CLEAN)
    if cleaned.startswith(PREFIX):
        cleaned = cleaned[len(PREFIX) :]
    return _format(cleaned) if _BODY.fullmatch(cleaned) else None
