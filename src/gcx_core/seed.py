"""`gcx seed-demo`: realistic applications in every state, fast enough for a million rows.

Rows are written in bulk (not through the services, which would send notifications for
made-up people); counters are reconciled at the end so the dashboard is exact.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from gcx_core.entities import (
    Application,
    BankAccount,
    Business,
    Contact,
    Declaration,
    NextOfKin,
    ReviewStatus,
    TeamMember,
)
from gcx_core.reference import BUSINESS_TYPES, COMMODITIES, REJECTION_REASONS
from gcx_core.services.dashboard import reconcile_counters
from gcx_core.settings import Settings
from gcx_core.storage.applications import row_values
from gcx_core.storage.tables import (
    application_commodities,
    applications,
    documents,
    status_changes,
)
from gcx_core.system import Gcx
from gcx_core.tracking import new_tracking_code

# (final status, share, the actions that led there)
PATHS: tuple[tuple[str, float, tuple[tuple[str, str], ...]], ...] = (
    ("pending_review", 0.30, (("submit", "pending_review"),)),
    ("under_review", 0.20, (("submit", "pending_review"), ("start_review", "under_review"))),
    (
        "documents_requested",
        0.12,
        (
            ("submit", "pending_review"),
            ("start_review", "under_review"),
            ("request_documents", "documents_requested"),
        ),
    ),
    (
        "approved",
        0.25,
        (("submit", "pending_review"), ("start_review", "under_review"), ("approve", "approved")),
    ),
    (
        "rejected",
        0.08,
        (("submit", "pending_review"), ("start_review", "under_review"), ("reject", "rejected")),
    ),
    ("withdrawn", 0.05, (("submit", "pending_review"), ("withdraw", "withdrawn"))),
)
FIRST = ("Ama", "Kofi", "Yaw", "Akosua", "Kwame", "Abena", "Kojo", "Efua", "Kwesi", "Adwoa")
LAST = ("Mensah", "Owusu", "Boateng", "Asante", "Osei", "Addo", "Agyeman", "Darko", "Badu")
WORDS = (
    "Golden",
    "Harvest",
    "Savanna",
    "Volta",
    "Green",
    "Sunrise",
    "Unity",
    "Prime",
    "Royal",
    "Northern",
    "Coastal",
    "Ashanti",
    "Heritage",
    "Bright",
    "Evergreen",
)
KINDS = ("Farms", "Agro", "Grains", "Foods", "Traders", "Cooperative", "Produce", "Agribusiness")
# Each region's capital, so a sample address is somewhere real.
CITIES = (
    ("Kumasi", "AH"),
    ("Sunyani", "BA"),
    ("Techiman", "BE"),
    ("Goaso", "AF"),
    ("Cape Coast", "CP"),
    ("Koforidua", "EP"),
    ("Accra", "AA"),
    ("Nalerigu", "NE"),
    ("Tamale", "NP"),
    ("Dambai", "OT"),
    ("Damongo", "SV"),
    ("Bolgatanga", "UE"),
    ("Wa", "UW"),
    ("Ho", "TV"),
    ("Sekondi-Takoradi", "WP"),
    ("Sefwi Wiawso", "WN"),
)
TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]"
    b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _pick_path(rng: random.Random) -> tuple[str, tuple[tuple[str, str], ...]]:
    roll = rng.random()
    for status, share, steps in PATHS:
        if roll < share:
            return status, steps
        roll -= share
    return PATHS[0][0], PATHS[0][2]


def make_application(
    rng: random.Random, app_id: int, tag: str, now: Any
) -> tuple[Application, list[dict[str, Any]]]:
    status, steps = _pick_path(rng)
    city, region = rng.choice(CITIES)
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(KINDS)} {app_id}"
    created = now - timedelta(seconds=rng.randint(3600, 60 * 86400))
    phone = f"+2332{rng.randint(0, 99_999_999):08d}"
    commodities = tuple(sorted({c.code for c in rng.sample(COMMODITIES, rng.randint(1, 3))}))
    changes: list[dict[str, Any]] = []
    at = created
    for action, target in steps:
        changes.append(
            {
                "application_id": app_id,
                "from_status": changes[-1]["to_status"] if changes else None,
                "to_status": target,
                "action": action,
                "actor": "seed",
                "at": at,
                "reason_code": rng.choice(list(REJECTION_REASONS)) if action == "reject" else "",
                "comment": "",
            }
        )
        # The next step comes some time after this one, never after now.
        at = at + min(timedelta(hours=rng.randint(1, 96)), (now - at) * rng.uniform(0.1, 0.6))
    last = changes[-1]["at"]
    app = Application(
        id=app_id,
        tracking_code=new_tracking_code(),
        status=status,
        version=len(steps),
        business=Business(
            name,
            rng.choice(BUSINESS_TYPES),
            f"CS{app_id:08d}",
            f"S{tag}{app_id:09d}",
            f"{rng.randint(1, 200)} Market Street",
            city,
            region,
            "GA-100",
        ),
        contact=Contact(phone, f"contact{app_id}.{tag.lower()}@example.com"),
        commodities=commodities,
        warehouse_location=f"Warehouse {app_id % 97}, {city}",
        team_members=(TeamMember(person, "Director", phone),),
        next_of_kin=NextOfKin(f"{rng.choice(FIRST)} {rng.choice(LAST)}", "Sibling", phone),
        primary_account=BankAccount("GCB Bank", name, f"{rng.randint(10**9, 10**10 - 1)}"),
        declaration=Declaration(True, True, person, "Director", created),
        created_at=created,
        updated_at=last,
        status_changed_at=last,
    )
    return app, changes


async def seed_demo(
    settings: Settings,
    count: int,
    *,
    batch_size: int = 5000,
    progress: bool = True,
    seed: int | None = None,
    with_documents: bool | None = None,
) -> int:
    """Insert `count` applications spread over every state; returns how many were made."""
    rng = random.Random(seed)
    tag = secrets.token_hex(2).upper()
    with_documents = count <= 2000 if with_documents is None else with_documents
    async with await Gcx.open(settings, migrate=True) as gcx:
        active = {name for name, state in gcx.workflow.states.items() if state.active}
        pdf_key = await gcx.files.put(TINY_PDF) if with_documents else ""
        async with gcx.database.read() as conn:
            next_id = (
                (await conn.execute(sa.select(sa.func.max(applications.c.id)))).scalar() or 0
            ) + 1
        started = time.monotonic()
        done = 0
        while done < count:
            n = min(batch_size, count - done)
            apps: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            commodities: list[dict[str, Any]] = []
            docs: list[dict[str, Any]] = []
            now = gcx.now()
            for i in range(n):
                app, app_changes = make_application(rng, next_id + done + i, tag, now)
                apps.append({"id": app.id, **row_values(app, active=app.status in active)})
                changes.extend(app_changes)
                commodities.extend(
                    {"application_id": app.id, "commodity": c} for c in app.commodities
                )
                if with_documents and app.status != "pending_review":
                    docs.extend(_documents(gcx, app, pdf_key))
            async with gcx.database.write() as conn:
                await conn.execute(applications.insert(), apps)
                await conn.execute(application_commodities.insert(), commodities)
                await conn.execute(status_changes.insert(), changes)
                if docs:
                    await conn.execute(documents.insert(), docs)
            done += n
            if progress:
                _bar(done, count, started)
        if gcx.database.dialect == "postgresql":
            async with gcx.database.write() as conn:
                await conn.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence('applications', 'id'), "
                        "(SELECT max(id) FROM applications))"
                    )
                )
        await reconcile_counters(gcx)
    if progress:
        sys.stderr.write("\n")
    return count


def _documents(gcx: Gcx, app: Application, key: str) -> list[dict[str, Any]]:
    verified = app.status == "approved"
    return [
        {
            "application_id": app.id,
            "requirement_code": r.code,
            "version": 1,
            "sha256": key,
            "size": len(TINY_PDF),
            "content_type": "application/pdf",
            "original_name": f"{r.code}.pdf",
            "uploaded_at": app.created_at,
            "uploaded_by": "applicant",
            "review_status": ReviewStatus.VERIFIED if verified else ReviewStatus.PENDING,
            "review_note": "",
            "reviewed_at": app.status_changed_at if verified else None,
        }
        for r in gcx.requirements_for(app)
        if r.required
    ]


def _bar(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total)
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(
        f"\r[{'#' * filled}{' ' * (width - filled)}] {done * 100 // total:3d}% "
        f"{done:,}/{total:,} applications, {rate:,.0f}/s"
    )
    sys.stderr.flush()
