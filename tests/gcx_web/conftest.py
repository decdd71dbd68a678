from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar

from gcx_core.system import Gcx


@pytest.fixture(name="gcx_database_url")
def _sqlite_only(gcx_sqlite_database_url: str) -> str:
    """The web layer adds nothing database-specific; test_api.py runs on both databases."""
    return gcx_sqlite_database_url


@pytest.fixture(name="app")
def _app(gcx_app: Litestar) -> Litestar:
    return gcx_app


@pytest.fixture(name="client")
def _client(gcx_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return gcx_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


async def submit_json(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/api/v1/applications", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["tracking_code"])


def step_form(data: dict[str, Any], step: str) -> dict[str, Any]:
    """The fields a person would type into one step, from a sample submission."""
    b, c = data["business"], data["contact"]
    if step == "business":
        return {f"business.{k}": v for k, v in b.items() if k != "country"}
    if step == "contact":
        return {
            "contact.telephone": c["telephone"],
            "contact.email": c["email"],
            "warehouse_location": data["warehouse_location"],
        }
    if step == "commodities":
        return {"commodities": data["commodities"], "commodities_other": "Dried mango"}
    if step == "team":
        return {f"team_members[0].{k}": v for k, v in data["team_members"][0].items()}
    if step == "next_of_kin":
        return {f"next_of_kin.{k}": v for k, v in data["next_of_kin"].items()}
    if step == "bank":
        return {
            f"bank_accounts.primary.{k}": v for k, v in data["bank_accounts"]["primary"].items()
        }
    if step == "declaration":
        d = data["declaration"]
        return {
            "declaration.agreed": "true",
            "declaration.data_consent": "true",
            "declaration.signer_name": d["signer_name"],
            "declaration.signer_designation": d["signer_designation"],
        }
    return {}


async def post_step(
    client: httpx.AsyncClient, step: str, fields: dict[str, Any], files: Any = None
) -> httpx.Response:
    page = await client.get(f"/apply/{step}")
    assert page.status_code == 200, page.text
    return await client.post(
        f"/apply/{step}", data={"_csrf_token": csrf_of(page.text), **fields}, files=files
    )


UNKNOWN = "GCX-0000-0000-0000"


async def count(gcx: Gcx, table: sa.Table) -> int:
    async with gcx.database.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert body["error"]["message"]
    return body["error"]


async def withdrawal_tokens(gcx: Gcx, code: str) -> list[str]:
    """The tokens of the withdrawal links emailed for this application, oldest first (derived
    from the selectors in the outbox, as the renderer derives the links)."""
    from gcx_core.services.accounts import derive_token
    from gcx_core.services.withdrawals import WITHDRAW
    from gcx_core.storage.tables import applications, notifications

    query = (
        sa.select(notifications.c.context)
        .join(applications, applications.c.id == notifications.c.application_id)
        .where(
            applications.c.tracking_code == code,
            notifications.c.type == "withdrawal_requested",
        )
        .order_by(notifications.c.id)
    )
    async with gcx.database.read() as conn:
        contexts = list((await conn.execute(query)).scalars())
    secret = gcx.settings.secret_key
    return [derive_token(secret, WITHDRAW, c["withdrawal_selector"]) for c in contexts]


async def withdraw_by_api(client: httpx.AsyncClient, gcx: Gcx, code: str) -> httpx.Response:
    """Both steps of a withdrawal through the public API; the answer of the second."""
    asked = await client.post(f"/api/v1/applications/{code}/withdraw", json={"confirm": True})
    assert asked.status_code == 202, asked.text
    (*_, token) = await withdrawal_tokens(gcx, code)
    return await client.post(f"/api/v1/applications/{code}/withdraw/confirm", json={"token": token})
