"""Built-in national telephone formats, registered through `gcx_register_phone_formats`."""

from __future__ import annotations

from collections.abc import Callable

from gcx_core.phones import BUILTIN_FORMATS, PhoneFormat
from gcx_core.plugins import hookimpl


@hookimpl(tryfirst=True)
def gcx_register_phone_formats(register: Callable[[PhoneFormat], None]) -> None:
    for phone_format in BUILTIN_FORMATS.values():
        register(phone_format)
