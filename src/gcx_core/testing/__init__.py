"""A pytest plugin for GCX and plugin authors: a fresh plugin manager, database and clock per test.

Enable it with ``pytest_plugins = ["gcx_core.testing"]`` in a conftest (it needs pytest-asyncio).
Override ``gcx_extra_plugins`` to register your plugin, and ``gcx_database_url`` to pick the
database (SQLite by default; ``gcx_postgres_database_url`` gives a fresh PostgreSQL database).
GCX's own parts (gcx_notify and gcx_web, ``gcx_parts``) are registered with it, so hooks of
theirs that a plugin implements are called; no other installed plugin is loaded.

With the ``web`` and ``notify`` extras installed, ``gcx_app`` is the Litestar app running on the
test's own event loop and Gcx, ``gcx_client`` an httpx client for it, and ``gcx_notifier`` the
embedded notifier (taskiq's in-memory broker; ``await gcx_notifier.idle()`` waits for the
deliveries in flight), ``gcx_deliver`` sends what is due and waits, and ``gcx_captured_mail``
reads the emails the capture channel kept. Litestar and taskiq are imported only when those
fixtures are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from gcx_core.entities import Actor, Role, User
from gcx_core.plugins import make_plugin_manager
from gcx_core.samples import make_submission
from gcx_core.settings import Settings
from gcx_core.storage.migrate import upgrade_sync
from gcx_core.system import Gcx
from gcx_core.testing.servers import ServiceUnavailable, postgres_server, redis_server

__all__ = ["FakeClock", "make_submission", "postgres_server", "redis_server", "running_app"]

_db_names = itertools.count(1)


class FakeClock:
    """A clock tests move by hand: `clock.advance(minutes=5)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def unavailable(reason: str) -> None:
    """Skip a test whose service is missing, except in CI, where a missing service fails."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: services must be available)")
    pytest.skip(reason)


@pytest.fixture(name="gcx_extra_plugins")
def _gcx_extra_plugins() -> list[object]:
    """Plugins to register on top of the defaults; override in your conftest or module."""
    return []


@pytest.fixture(name="gcx_clock")
def _gcx_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="_gcx_sqlite_template", scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gcx-template") / "template.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}", _installed_migrations())
    return path


@pytest.fixture(name="gcx_sqlite_database_url")
def _gcx_sqlite_database_url(_gcx_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gcx.db"
    shutil.copyfile(_gcx_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(name="gcx_postgres_server", scope="session")
def _gcx_postgres_server() -> Iterator[str | ServiceUnavailable]:
    """A PostgreSQL server with a migrated template database, or why there is none."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
            _admin(url, "DROP DATABASE IF EXISTS gcx_template", "CREATE DATABASE gcx_template")
            upgrade_sync(_database_url(url, "gcx_template"), _installed_migrations())
        except ServiceUnavailable as exc:
            yield exc
            return
        yield url


@pytest.fixture(name="gcx_postgres_database_url")
def _gcx_postgres_database_url(gcx_postgres_server: str | ServiceUnavailable) -> Iterator[str]:
    if isinstance(gcx_postgres_server, ServiceUnavailable):
        unavailable(str(gcx_postgres_server))
        return
    name = f"gcx_test_{os.getpid()}_{next(_db_names)}"
    _admin(gcx_postgres_server, f"CREATE DATABASE {name} TEMPLATE gcx_template")
    yield _database_url(gcx_postgres_server, name)
    _admin(gcx_postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(name="gcx_redis_url", scope="session")
def _gcx_redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except ServiceUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(name="gcx_database_url")
def _gcx_database_url(gcx_sqlite_database_url: str) -> str:
    return gcx_sqlite_database_url


@pytest.fixture(name="gcx_settings")
def _gcx_settings(gcx_database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=gcx_database_url,
        secret_key="test-secret-key-not-for-production",
    )


@pytest.fixture(name="gcx_parts")
def _gcx_parts() -> list[object]:
    """GCX's own plugins that the test's plugin manager registers beside the built-in
    workflow: gcx_notify's and gcx_web's, when they are installed (the manager loads no entry
    points, so no other installed plugin gets in). Override it to leave them out."""
    import importlib

    found: list[object] = []
    for name in ("gcx_notify.plugin", "gcx_web.plugin"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


@pytest.fixture(name="gcx")
async def _gcx(
    gcx_settings: Settings,
    gcx_parts: list[object],
    gcx_extra_plugins: list[object],
    gcx_clock: FakeClock,
) -> AsyncIterator[Gcx]:
    """A Gcx on a fresh database, with `gcx_parts` and `gcx_extra_plugins` registered."""
    plugins = [*gcx_parts, *(p for p in gcx_extra_plugins if p not in gcx_parts)]
    pm = make_plugin_manager(plugins=plugins, load_entry_points=False)
    gcx = await Gcx.open(gcx_settings, plugin_manager=pm, clock=gcx_clock)
    try:
        yield gcx
    finally:
        await gcx.close()


@pytest.fixture(name="gcx_staff")
def _gcx_staff(gcx: Gcx) -> Any:
    """`await gcx_staff(Role.REVIEWER)` creates an active staff user; returns (user, actor)."""
    from gcx_core.services.accounts import create_user

    async def make(role: Role = Role.REVIEWER, email: str | None = None) -> tuple[User, Actor]:
        email = email or f"{role}{next(_db_names)}@staff.example.com"
        user, _ = await create_user(
            gcx, email, role, Actor.system("test"), password="correct horse battery staple"
        )
        return user, Actor.for_user(user, client_address="127.0.0.1")

    return make


@pytest.fixture(name="gcx_web_config")
def _gcx_web_config() -> Any:
    """The web app's configuration for ``gcx_app``: rate limits off, ``http://testserver``
    (httpx's test host) allowed as an origin."""
    from gcx_web.config import WebConfig, parse_rate_limits

    return WebConfig(rate_limits=parse_rate_limits("off"), allowed_origins=("http://testserver",))


@pytest.fixture(name="gcx_app")
async def _gcx_app(gcx: Gcx, gcx_web_config: Any) -> AsyncIterator[Any]:
    """The Litestar app serving ``gcx``, its lifespan running (gcx_web's own plugin is
    registered if the manager was built without entry points)."""
    from gcx_web import plugin as web_plugin
    from gcx_web.app import create_app

    if gcx.plugins.get_plugin("gcx_web") is None and not gcx.plugins.is_registered(web_plugin):
        gcx.plugins.register(web_plugin, name="gcx_web")
    app = create_app(gcx=gcx, config=gcx_web_config)
    async with running_app(app):
        yield app


@pytest.fixture(name="gcx_client")
async def _gcx_client(gcx_app: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` for ``gcx_app`` at ``http://testserver``, from 203.0.113.7."""
    import httpx

    transport = httpx.ASGITransport(app=gcx_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(name="gcx_notifier")
async def _gcx_notifier(gcx: Gcx) -> AsyncIterator[Any]:
    """The embedded notifier for ``gcx``, started without its scheduler (gcx_notify's plugin
    must be registered: it is, through ``gcx_parts``, unless a conftest overrides that)."""
    from gcx_notify.runtime import Notifier

    notifier = Notifier(gcx)
    await notifier.start(run_scheduler=False)
    try:
        yield notifier
    finally:
        await notifier.stop()


@pytest.fixture(name="gcx_deliver")
def _gcx_deliver(gcx_notifier: Any) -> Any:
    """``await gcx_deliver()`` sends every notification due now (on the test's clock) and
    waits until each has an outcome; returns how many the sweep found due."""

    async def deliver() -> int:
        await gcx_notifier.idle()
        found = int(await gcx_notifier.sweep())
        await gcx_notifier.idle()
        return found

    return deliver


@pytest.fixture(name="gcx_captured_mail")
def _gcx_captured_mail(gcx: Gcx) -> Any:
    """``await gcx_captured_mail(recipient="")`` lists the emails the capture channel kept
    (no SMTP server configured, as in these tests), newest first: dicts with ``recipient``,
    ``subject``, ``text``, ``html``, ``message_id``, ``notification_id``, ``captured_at``."""

    async def captured(recipient: str = "", limit: int = 100) -> list[dict[str, Any]]:
        from gcx_notify.plugin import gcx_web_captured_mail

        return list(await gcx_web_captured_mail(gcx, limit, recipient) or [])

    return captured


@contextlib.asynccontextmanager
async def running_app(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan in a task of its own while the block runs: pytest-asyncio
    may set a fixture up and tear it down in different tasks, and the lifespan's cancel
    scopes must stay in one."""
    started = asyncio.Event()
    stop = asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # the lifespan failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


def _installed_migrations() -> list[str]:
    """Migration folders of the installed plugins, so templates have every table."""
    from gcx_core.system import migration_locations

    return migration_locations(make_plugin_manager())


def _database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _admin(server_url: str, *statements: str) -> None:
    import asyncpg

    url = make_url(server_url).set(drivername="postgresql")

    async def run() -> None:
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())
