"""A plugin that pauses applications: an on_hold state, an export licence, a guard on approval.

Run it:  python examples/custom_workflow/on_hold.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from gcx_core import Actor, Gcx, Role, Settings, hookimpl, make_plugin_manager
from gcx_core.entities import DocumentRequirement
from gcx_core.exceptions import GuardFailedError
from gcx_core.samples import make_submission
from gcx_core.services import accounts, applications
from gcx_core.workflow import State, Transition


class OnHold:
    @hookimpl
    def gcx_register_workflow(self, builder):
        builder.add_state(State("on_hold", "On hold", "Paused while we check something"))
        builder.add_transition(Transition("hold", frozenset({"under_review"}), "on_hold", "review"))
        builder.add_transition(
            Transition("resume", frozenset({"on_hold"}), "under_review", "review")
        )
        builder.add_sources("reject", ["on_hold"])
        builder.add_guard("approve", "export_licence", self.needs_licence_for_cashew)

    @staticmethod
    def needs_licence_for_cashew(ctx):
        if (
            "cashew" in ctx.application.commodities
            and "export_licence" not in ctx.facts.latest_reviews
        ):
            return "cashew suppliers need an export licence"
        return None

    @hookimpl
    def gcx_register_document_requirements(self, register):
        register(DocumentRequirement("export_licence", "Export licence", required=False))


async def main() -> None:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="gcx-example-")))
    pm = make_plugin_manager(plugins=[OnHold()])
    async with await Gcx.open(settings, plugin_manager=pm, migrate=True) as gcx:
        user, _ = await accounts.create_user(
            gcx, "reviewer@example.org", Role.REVIEWER, Actor.system("example")
        )
        reviewer = Actor.for_user(user)
        app = await applications.submit(
            gcx, make_submission(commodities=["cashew"]), Actor.applicant()
        )
        app = await applications.act(gcx, app.id, "start_review", reviewer)
        app = await applications.act(gcx, app.id, "hold", reviewer)
        print(app.tracking_code, "is", gcx.workflow.state(app.status).label)
        app = await applications.act(gcx, app.id, "resume", reviewer)
        try:
            await applications.act(gcx, app.id, "approve", reviewer)
        except GuardFailedError as exc:
            print("approval refused:", "; ".join(exc.reasons.values()))


if __name__ == "__main__":
    asyncio.run(main())
