"""Schemathesis, with every check it has, against a running `gcx serve`: it reports nothing.

It generates requests from the app's own OpenAPI document, valid and invalid, and checks the
answers against the document: status codes documented, bodies matching their schemas,
invalid input refused, valid input accepted, no 5xx. Staff routes are called with an admin's
API token, over applications in every state.

One configured expectation (tests/e2e/schemathesis.toml): a request that fits the schema may
still be a 422 or a 415, because some rules are not expressible as JSON schema (a telephone
number for the deployment's country, a TIN's form, the documents a business type needs, a
file's type by its content); those answers carry the errors the docs describe.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcx_core.entities import Actor, Role
from gcx_core.seed import seed_demo
from gcx_core.services import accounts, staff
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from tests.e2e.conftest import start_server

pytest.importorskip("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")


async def _admin_token(data_dir: Path) -> str:
    """Sample applications and an admin API token, written into the server's database."""
    settings = Settings.from_env({"GCX_DATA_DIR": str(data_dir)})
    await seed_demo(settings, 30, progress=False, seed=7)
    gcx = await Gcx.open(settings)
    try:
        admin, _ = await accounts.create_user(
            gcx, "fuzz-admin@gcx.invalid", Role.ADMIN, Actor.system("test")
        )
        _, token = await staff.create_api_token(gcx, admin.id, "schemathesis", Actor.system("test"))
    finally:
        await gcx.close()
    return token


def test_every_check_passes(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        token = asyncio.run(_admin_token(server.data_dir))
        st = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [
                str(st),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/schema/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                os.environ.get("GCX_FUZZ_EXAMPLES", "60"),
                "--header",
                f"Authorization: Bearer {token}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "failure" not in report.rsplit("SUMMARY", 1)[-1]
    assert "generated" in report
