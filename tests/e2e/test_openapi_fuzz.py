"""Schemathesis generates requests from the app's own OpenAPI document: none may get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import start_server

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(name="api_schema")
def _api_schema(tmp_path: Path) -> Iterator[Any]:
    with start_server(tmp_path) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")


def test_no_server_errors(api_schema: Any) -> None:
    from schemathesis.checks import not_a_server_error

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        call()
