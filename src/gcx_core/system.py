"""`Gcx`: the running system's parts in one object that services receive."""

from __future__ import annotations

import gc
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import pluggy

from gcx_core.deadlines import Calendar, Deadlines, merge
from gcx_core.entities import Application, DocumentRequirement
from gcx_core.exceptions import ConfigurationError
from gcx_core.files import FileStore, LocalFileStore
from gcx_core.metrics import Metrics
from gcx_core.phones import PhoneFormat
from gcx_core.plugins import call_async, make_plugin_manager
from gcx_core.reference import is_processed_food
from gcx_core.settings import Settings
from gcx_core.storage.database import Database
from gcx_core.storage.migrate import upgrade
from gcx_core.storage.tables import metadata
from gcx_core.workflow import TransitionEvent, Workflow, WorkflowBuilder

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.define
class Gcx:
    settings: Settings
    database: Database
    plugins: pluggy.PluginManager
    workflow: Workflow
    requirements: dict[str, DocumentRequirement]
    phone_format: PhoneFormat
    files: FileStore
    clock: Callable[[], datetime] = utcnow
    # The GroupCommit that writes concurrent submissions together (services.submit); made on
    # first use.
    submissions: Any = None
    # The applicants' status views made so far, by (application id, revision)
    # (services.applicant).
    applicant_views: OrderedDict[tuple[int, int], Any] = attrs.field(
        factory=OrderedDict, eq=False, repr=False
    )
    # The deadline policies in force and their working calendar (gcx_core.deadlines).
    deadlines: Deadlines = attrs.field(factory=Deadlines)
    # This process's Prometheus metrics (gcx_core.metrics).
    metrics: Metrics = attrs.field(factory=Metrics, eq=False, repr=False)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        clock: Callable[[], datetime] = utcnow,
        migrate: bool = False,
        files: FileStore | None = None,
    ) -> Gcx:
        """Build everything from settings; with `migrate`, bring the schema up to date first."""
        settings = settings.with_secret_key()
        pm = plugin_manager or make_plugin_manager(disabled=settings.disabled_plugins)
        pm.hook.gcx_register_tables(metadata=metadata)
        if migrate:
            await upgrade(settings.resolved_database_url, migration_locations(pm))
        workflow = build_workflow(pm, settings)
        database = Database.from_url(
            settings.resolved_database_url, pool_size=settings.sqlite_pool_size
        )
        return cls(
            settings=settings,
            database=database,
            plugins=pm,
            workflow=workflow,
            requirements=collect_requirements(pm),
            phone_format=select_phone_format(pm, settings.phone_country),
            files=files or LocalFileStore(settings.resolved_files_dir),
            clock=clock,
            deadlines=collect_deadlines(pm, settings, workflow),
        )

    async def close(self) -> None:
        await self.database.dispose()

    async def __aenter__(self) -> Gcx:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def now(self) -> datetime:
        return self.clock()

    def requirements_for(self, application: Application) -> list[DocumentRequirement]:
        """The requirements that apply to this application (FDA only for processed food)."""
        processed = any(is_processed_food(c) for c in application.commodities)
        return [r for r in self.requirements.values() if processed or not r.processed_food_only]

    async def fire(self, events: Iterable[tuple[Any, Application | None]]) -> None:
        """Tell plugins what committed. A failing plugin is logged; the data stays as committed.

        Each item is an event and, for transitions, the application after it.
        """
        for event, application in events:
            if isinstance(event, TransitionEvent):
                await call_async(
                    self.plugins.hook.gcx_after_transition,
                    isolate=True,
                    event=event,
                    application=application,
                )
            await call_async(self.plugins.hook.gcx_handle_event, isolate=True, event=event)


def settle_heap() -> None:
    """Once a process has started, move everything loaded so far out of the garbage
    collector's sight.

    The modules, compiled statements, templates and routes live as long as the process; left
    in the oldest generation, each full collection walks all of them again, a pause of tens
    of milliseconds on the event loop. Frozen, a collection walks only what requests,
    sockets and tasks made since.
    """
    gc.collect()
    gc.freeze()


def build_workflow(pm: pluggy.PluginManager, settings: Settings | None = None) -> Workflow:
    builder = WorkflowBuilder(settings)
    pm.hook.gcx_register_workflow(builder=builder)
    return builder.build()


def collect_deadlines(
    pm: pluggy.PluginManager, settings: Settings, workflow: Workflow
) -> Deadlines:
    """The policies the plugins name, checked against the workflow they will run in."""
    calendar = Calendar(settings.time_zone, settings.working_days, settings.holidays)
    policies = merge(pm.hook.gcx_deadline_policies(settings=settings))
    for policy in policies.values():
        if policy.status not in workflow.states:
            raise ConfigurationError(f"a deadline policy names an unknown status {policy.status!r}")
        transition = workflow.transitions.get(policy.action or "")
        if policy.action is not None and (
            transition is None or policy.status not in transition.sources
        ):
            raise ConfigurationError(
                f"the deadline of {policy.status!r} takes the action {policy.action!r}, "
                "which the workflow does not allow from that status"
            )
    return Deadlines(policies, calendar)


def collect_requirements(pm: pluggy.PluginManager) -> dict[str, DocumentRequirement]:
    found: dict[str, DocumentRequirement] = {}
    pm.hook.gcx_register_document_requirements(register=lambda r: found.__setitem__(r.code, r))
    return found


def select_phone_format(pm: pluggy.PluginManager, country: str) -> PhoneFormat:
    formats: dict[str, PhoneFormat] = {}
    pm.hook.gcx_register_phone_formats(register=lambda f: formats.__setitem__(f.country, f))
    try:
        return formats[country]
    except KeyError:
        raise ConfigurationError(
            f"no telephone format for country {country!r}; known: {', '.join(sorted(formats))}"
        ) from None


def migration_locations(pm: pluggy.PluginManager) -> list[str]:
    return [loc for locs in pm.hook.gcx_migration_locations() for loc in (locs or [])]
