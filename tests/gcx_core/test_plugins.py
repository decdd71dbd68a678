"""Plugins extend requirements and the workflow through the same hooks as the defaults."""

from __future__ import annotations

import textwrap

import pytest
import sqlalchemy as sa

from gcx_core.entities import Actor, DocumentRequirement, Role
from gcx_core.exceptions import GuardFailedError, PluginError, ValidationError
from gcx_core.plugins import (
    call_async,
    describe_plugins,
    first_async,
    hookimpl,
    make_plugin_manager,
)
from gcx_core.services import applications, documents, queries
from gcx_core.storage.tables import applications as application_rows
from gcx_core.storage.tables import notifications, status_changes
from gcx_core.testing import make_submission
from gcx_core.workflow import State, Transition

from .pdfs import PDF

APPLICANT = Actor.applicant()
SEEN: list[object] = []


class HoldPlugin:
    """Adds a requirement, an on_hold state with hold/resume, and a guard on approve."""

    @hookimpl
    def gcx_register_document_requirements(self, register):
        register(DocumentRequirement("insurance", "Insurance certificate"))

    @hookimpl
    def gcx_register_workflow(self, builder):
        builder.add_state(State("on_hold", "On hold", "Paused by the programme"))
        builder.add_transition(Transition("hold", frozenset({"under_review"}), "on_hold", "review"))
        builder.add_transition(
            Transition("resume", frozenset({"on_hold"}), "under_review", "review")
        )
        builder.add_sources("reject", ["on_hold"])
        builder.add_guard(
            "approve",
            "region",
            lambda ctx: (
                "Savannah suppliers are paused" if ctx.application.business.region == "SV" else None
            ),
        )

    @hookimpl
    async def gcx_validate_upload(self, requirement, content, content_type, filename):
        return "no files named virus" if "virus" in filename else None

    @hookimpl
    async def gcx_after_transition(self, event, application):
        SEEN.append((event.action, application.status))


class BrokenAfterCommit:
    @hookimpl(tryfirst=True)
    def gcx_after_transition(self, event, application):
        raise RuntimeError("plugin bug after commit")

    @hookimpl
    def gcx_handle_event(self, event):
        raise RuntimeError("another plugin bug")


class VetoSubmit:
    @hookimpl
    def gcx_before_transition(self, application, action, actor, params):
        if action == "submit" and application.business.city == "Nowhere":
            raise ValidationError({"business.city": "we do not serve Nowhere"})


class BrokenNotifications:
    @hookimpl
    def gcx_collect_notifications(self, event, application, staff):
        if event.action == "start_review":
            raise RuntimeError("template lookup exploded")


@pytest.fixture(name="gcx_extra_plugins")
def _plugins():
    SEEN.clear()
    return [HoldPlugin(), BrokenAfterCommit(), VetoSubmit(), BrokenNotifications()]


async def test_plugin_requirement_state_transition_and_guard(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    assert "insurance" in gcx.requirements
    app = await applications.submit(gcx, make_submission(**{"business.region": "SV"}), APPLICANT)
    async with gcx.database.write() as conn:  # start_review is broken on purpose; set it by hand
        await conn.execute(application_rows.update().values(status="under_review", version=2))
    app = await queries.get_application(gcx, app.id)
    app = await applications.act(gcx, app.id, "hold", reviewer)
    assert app.status == "on_hold"
    app = await applications.act(gcx, app.id, "resume", reviewer)
    for r in gcx.requirements_for(app):
        if r.required:
            doc = await documents.upload_document(gcx, app.id, r.code, PDF, "d.pdf", APPLICANT)
            await documents.review_document(gcx, doc.id, True, reviewer)
    with pytest.raises(GuardFailedError) as info:
        await applications.act(gcx, app.id, "approve", reviewer)
    assert info.value.reasons == {"region": "Savannah suppliers are paused"}
    app = await applications.act(gcx, app.id, "hold", reviewer)
    app = await applications.act(
        gcx, app.id, "reject", reviewer, params={"reason_code": "other", "message": "Paused"}
    )
    assert app.status == "rejected"
    assert ("hold", "on_hold") in SEEN and ("reject", "rejected") in SEEN


async def test_plugin_requirement_blocks_approval(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    async with gcx.database.write() as conn:
        await conn.execute(application_rows.update().values(status="under_review", version=2))
    for r in gcx.requirements_for(app):
        if r.required and r.code != "insurance":
            doc = await documents.upload_document(gcx, app.id, r.code, PDF, "d.pdf", APPLICANT)
            await documents.review_document(gcx, doc.id, True, reviewer)
    with pytest.raises(GuardFailedError, match="insurance"):
        await applications.act(gcx, app.id, "approve", reviewer)


async def test_async_upload_check_refuses(gcx):
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    with pytest.raises(ValidationError, match="virus"):
        await documents.upload_document(gcx, app.id, "tax_clearance", PDF, "virus.pdf", APPLICANT)


async def test_failing_hooks_never_corrupt_committed_data(gcx, gcx_staff):
    _, reviewer = await gcx_staff(Role.REVIEWER)
    # A veto before commit: nothing is written.
    with pytest.raises(ValidationError, match="Nowhere"):
        await applications.submit(gcx, make_submission(**{"business.city": "Nowhere"}), APPLICANT)
    # After-commit hooks that raise: logged; the data and the other plugins' hooks are fine.
    app = await applications.submit(gcx, make_submission(), APPLICANT)
    assert ("submit", "pending_review") in SEEN
    assert (await queries.get_application(gcx, app.id)).status == "pending_review"
    # A hook that raises inside the transaction rolls all of it back.
    with pytest.raises(RuntimeError, match="exploded"):
        await applications.act(gcx, app.id, "start_review", reviewer)
    assert (await queries.get_application(gcx, app.id)) == app
    async with gcx.database.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(status_changes))
        ).scalar() == 1
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(notifications))
        ).scalar() == 2  # the applicant's confirmation and the reviewer's alert


def test_hook_typos_are_caught():
    class Typo:
        @hookimpl
        def gcx_register_workflw(self, builder):
            pass

    with pytest.raises(PluginError, match="gcx_register_workflw"):
        make_plugin_manager(plugins=[Typo()], load_entry_points=False)


def test_wrong_hook_arguments_are_caught():
    class WrongArgs:
        @hookimpl
        def gcx_register_workflow(self, builder, colour):
            pass

    with pytest.raises(PluginError, match="colour"):
        make_plugin_manager(plugins=[WrongArgs()], load_entry_points=False)


def test_wrappers_on_async_hooks_are_refused():
    class Wrapper:
        @hookimpl(wrapper=True)
        def gcx_handle_event(self, event):
            return (yield)

    with pytest.raises(PluginError, match="wrapper"):
        make_plugin_manager(plugins=[Wrapper()], load_entry_points=False)


def test_async_implementations_of_synchronous_hooks_are_refused():
    class Eager:
        @hookimpl
        async def gcx_register_workflow(self, builder):
            pass

    with pytest.raises(PluginError, match="gcx_register_workflow is called synchronously"):
        make_plugin_manager(plugins=[Eager()], load_entry_points=False)


def test_each_hookspecs_module_declares_its_async_hooks():
    from gcx_core import hookspecs
    from gcx_notify import hookspecs as notify_hookspecs
    from gcx_web import hookspecs as web_hookspecs

    class Listener:
        @hookimpl
        async def gcx_handle_event(self, event):
            pass

        @hookimpl
        async def gcx_notify_retry_policy(self, notification):
            return None

    pm = make_plugin_manager(plugins=[Listener()])  # async where the specs allow it: accepted
    assert "gcx_handle_event" in hookspecs.ASYNC_HOOKS
    assert {"gcx_notify_retry_policy"} == notify_hookspecs.ASYNC_HOOKS
    for module in (hookspecs, notify_hookspecs, web_hookspecs):
        for name in module.ASYNC_HOOKS:
            assert callable(getattr(module, name)), name
            assert hasattr(pm.hook, name)


async def test_async_caller_awaits_before_choosing():
    class Undecided:
        @hookimpl(tryfirst=True)
        async def gcx_validate_upload(self, requirement, content, content_type, filename):
            return None

    class Decided:
        @hookimpl
        def gcx_validate_upload(self, requirement, content, content_type, filename):
            return "refused"

    pm = make_plugin_manager(plugins=[Decided(), Undecided()], load_entry_points=False)
    kwargs = {"requirement": None, "content": b"", "content_type": "", "filename": ""}
    assert await first_async(pm.hook.gcx_validate_upload, **kwargs) == "refused"
    assert await call_async(pm.hook.gcx_validate_upload, **kwargs) == ["refused"]


async def test_disabling_a_default_plugin(gcx_settings):
    from gcx_core.system import Gcx

    pm = make_plugin_manager(
        disabled=["gcx_core.default_plugins.notifications"], load_entry_points=False
    )
    async with await Gcx.open(gcx_settings, plugin_manager=pm) as gcx:
        await applications.submit(gcx, make_submission(), APPLICANT)
        async with gcx.database.read() as conn:
            assert (
                await conn.execute(sa.select(sa.func.count()).select_from(notifications))
            ).scalar() == 0


def test_entry_point_plugins_load_and_can_be_disabled(tmp_path, monkeypatch):
    (tmp_path / "gcx_demo_plugin.py").write_text(
        textwrap.dedent("""
        from gcx_core.plugins import hookimpl
        from gcx_core.entities import DocumentRequirement

        @hookimpl
        def gcx_register_document_requirements(register):
            register(DocumentRequirement("export_licence", "Export licence"))
    """)
    )
    dist = tmp_path / "gcx_demo_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gcx-demo-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[gcx]\ndemo = gcx_demo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from gcx_core.system import collect_requirements

    pm = make_plugin_manager()
    assert "export_licence" in collect_requirements(pm)
    info = {i.name: i for i in describe_plugins(pm)}
    assert info["demo"].version == "1.2.3"
    assert info["demo"].hooks == ("gcx_register_document_requirements",)
    assert "export_licence" not in collect_requirements(make_plugin_manager(disabled=["demo"]))


def test_plugins_add_phone_formats(gcx_settings):
    import asyncio

    import attrs

    from gcx_core.phones import PhoneFormat
    from gcx_core.system import Gcx

    class Togo:
        @hookimpl
        def gcx_register_phone_formats(self, register):
            register(PhoneFormat("TG", "228", 8, trunk_prefix="", example="90 12 34 56"))

    async def run():
        pm = make_plugin_manager(plugins=[Togo()], load_entry_points=False)
        async with await Gcx.open(
            attrs.evolve(gcx_settings, phone_country="TG"), plugin_manager=pm
        ) as gcx:
            return gcx.phone_format.normalise("90 12 34 56")

    assert asyncio.run(run()) == "+22890123456"


def test_plugins_add_tables_and_migrations(tmp_path):
    """A plugin's table joins the MetaData; its Alembic branch runs with `migrate=True`."""
    import asyncio

    from gcx_core.settings import Settings
    from gcx_core.storage.tables import metadata
    from gcx_core.system import Gcx

    versions = tmp_path / "loyalty_versions"
    versions.mkdir()
    (versions / "l001_loyalty.py").write_text(
        textwrap.dedent("""
        import sqlalchemy as sa
        from alembic import op

        revision = "l001"
        down_revision = None
        branch_labels = ("loyalty",)
        depends_on = "0001"

        def upgrade():
            op.create_table("loyalty_points",
                            sa.Column("application_id", sa.Integer, primary_key=True),
                            sa.Column("points", sa.Integer, nullable=False))

        def downgrade():
            op.drop_table("loyalty_points")
    """)
    )

    class Loyalty:
        @hookimpl
        def gcx_register_tables(self, metadata):
            if "loyalty_points" not in metadata.tables:
                sa.Table(
                    "loyalty_points",
                    metadata,
                    sa.Column("application_id", sa.Integer, primary_key=True),
                    sa.Column("points", sa.Integer, nullable=False),
                )

        @hookimpl
        def gcx_migration_locations(self):
            return [str(versions)]

    async def run():
        pm = make_plugin_manager(plugins=[Loyalty()], load_entry_points=False)
        settings = Settings(data_dir=tmp_path / "data", secret_key="k")
        async with await Gcx.open(settings, plugin_manager=pm, migrate=True) as gcx:
            table = metadata.tables["loyalty_points"]
            async with gcx.database.write() as conn:
                await conn.execute(table.insert().values(application_id=1, points=5))
            async with gcx.database.read() as conn:
                return (await conn.execute(sa.select(table.c.points))).scalar()

    try:
        assert asyncio.run(run()) == 5
    finally:
        metadata.remove(metadata.tables["loyalty_points"])


def test_plugins_add_their_own_hookspecs():
    import types

    spec_module = types.ModuleType("loyalty_hookspecs")
    from gcx_core.hookspecs import hookspec

    @hookspec
    def gcx_loyalty_points(application_id):  # pragma: no cover - a spec has no body
        """How many points an application earns."""

    spec_module.gcx_loyalty_points = gcx_loyalty_points

    class Defines:
        @hookimpl
        def gcx_add_hookspecs(self, plugin_manager):
            plugin_manager.add_hookspecs(spec_module)

    class Implements:
        @hookimpl
        def gcx_loyalty_points(self, application_id):
            return application_id * 10

    pm = make_plugin_manager(plugins=[Defines(), Implements()], load_entry_points=False)
    assert pm.hook.gcx_loyalty_points(application_id=4) == [40]


def test_instances_of_one_kind_get_stable_numbered_names():
    from gcx_core.plugins import register_named

    pm = make_plugin_manager(load_entry_points=False)
    first, second, third = object(), object(), object()
    assert register_named(pm, first, "gcx_x.thing") == "gcx_x.thing"
    assert register_named(pm, second, "gcx_x.thing") == "gcx_x.thing.2"
    pm.unregister(first)
    assert register_named(pm, third, "gcx_x.thing") == "gcx_x.thing"
