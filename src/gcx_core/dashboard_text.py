"""`python -m gcx_core.dashboard_text`: the dashboard figures of the configured database."""

from __future__ import annotations

import asyncio

from gcx_core.services.dashboard import DashboardSnapshot, snapshot
from gcx_core.settings import Settings
from gcx_core.system import Gcx


def render(snap: DashboardSnapshot) -> str:
    lines = [f"{snap.total:,} applications"]
    width = max(len(s.label) for s in snap.statuses)
    for s in snap.statuses:
        bar = "#" * round(s.percent / 2)
        lines.append(f"  {s.label:<{width}} {s.count:>9,} {s.percent:5.1f}%  {bar}")
    lines.append("notifications: " + ", ".join(f"{k} {v:,}" for k, v in snap.notifications.items()))
    lines.append("most recent:")
    for r in snap.recent[:5]:
        lines.append(f"  {r.tracking_code}  {r.status:<20} {r.business_name}")
    return "\n".join(lines)


async def main() -> None:
    async with await Gcx.open(Settings.from_env()) as gcx:
        print(render(await snapshot(gcx)))


if __name__ == "__main__":
    asyncio.run(main())
