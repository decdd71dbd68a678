from __future__ import annotations

import gcx_site_inspection
import pytest

pytest_plugins = ["gcx_core.testing"]


@pytest.fixture(name="gcx_extra_plugins")
def _plugins() -> list[object]:
    return [gcx_site_inspection]
