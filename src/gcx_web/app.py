"""`create_app`: the Litestar app of both modes (DESIGN §2), extended by plugins."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jinja2
import pluggy
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.template import TemplateConfig

from gcx_core.exceptions import ConfigurationError
from gcx_core.plugins import make_plugin_manager, register_named
from gcx_core.settings import Settings
from gcx_core.system import Gcx
from gcx_web import display
from gcx_web import plugin as web_plugin
from gcx_web.config import WebConfig
from gcx_web.display import Labels
from gcx_web.errors import EXCEPTION_HANDLERS
from gcx_web.live.publisher import Publisher, hear_snapshots, live_backend, make_channels
from gcx_web.live.sockets import Listeners, LiveHub
from gcx_web.metrics import metrics_middleware
from gcx_web.openapi import complete_openapi
from gcx_web.schemas import StatusViews
from gcx_web.security.headers import security_headers
from gcx_web.security.ratelimit import MemoryCounter, RateLimiter, RedisCounter, parse_networks
from gcx_web.security.sessions import RotatingSessionConfig

HERE = Path(__file__).parent
# Paths without cookies: the public API and machine endpoints need no session and no CSRF.
COOKIELESS = [
    "^/api/v1/applications",
    "^/health",
    "^/schema",
    "^/static",
    "^/favicon.ico$",
    "^/metrics$",
]
# The staff API checks CSRF itself (only for calls authenticated by session, not by token).
NO_CSRF = [*COOKIELESS, "^/api/v1/staff"]


def _version() -> str:
    try:
        return importlib.metadata.version("gcx")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "0"


def require_web_plugin(pm: pluggy.PluginManager) -> None:
    """The app's pages, API and templates come from gcx_web's own plugin, through its hooks."""
    if pm.get_plugin("gcx_web") is None and not pm.is_registered(web_plugin):
        raise ConfigurationError(
            "the plugin manager has no gcx_web plugin: build it with make_plugin_manager() "
            "(which loads the installed `gcx` entry points) or register gcx_web.plugin"
        )


def template_engine(pm: pluggy.PluginManager, settings: Settings) -> JinjaTemplateEngine:
    loaders: list[jinja2.BaseLoader] = []

    def register(item: Any) -> None:
        loaders.append(
            item if isinstance(item, jinja2.BaseLoader) else jinja2.FileSystemLoader(str(item))
        )

    pm.hook.gcx_web_register_templates(register=register)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.ChainableUndefined,
        auto_reload=False,
    )
    env.globals["programme_name"] = settings.programme_name
    display.install(env, settings.time_zone)
    return JinjaTemplateEngine.from_environment(env)


def collect_routes(pm: pluggy.PluginManager) -> list[Any]:
    handlers: list[Any] = []
    pm.hook.gcx_web_register_routes(register=handlers.append)
    return handlers


def request_stack(settings: Settings, config: WebConfig) -> dict[str, Any]:
    """What every request passes through, as Litestar arguments: the middleware, CSRF, the
    error mapping and the body limits. (The benchmarks' bare app uses it too, so that its
    figures differ from GCX's by GCX's own work only.)"""
    return {
        "middleware": [
            security_headers,
            metrics_middleware,
            RotatingSessionConfig(
                store="sessions",
                key="gcx_session",
                max_age=config.session_minutes * 60,
                secure=config.secure_cookies,
                samesite="lax",
                exclude=COOKIELESS,
            ).middleware,
        ],
        "csrf_config": CSRFConfig(
            secret=settings.secret_key,
            cookie_name="gcx_csrf",
            cookie_secure=config.secure_cookies,
            cookie_samesite="strict",
            exclude=NO_CSRF,
        ),
        "exception_handlers": EXCEPTION_HANDLERS,
        "request_max_body_size": config.max_body_bytes,
        "multipart_form_part_limit": config.max_parts,
    }


def create_app(
    settings: Settings | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    *,
    gcx: Gcx | None = None,
    role: str = "serve",
    config: WebConfig | None = None,
    migrate: bool | None = None,
) -> Litestar:
    """The web app. Pass `gcx` to serve an already open Gcx (tests); otherwise the app opens
    one from `settings` in its lifespan, migrating an embedded SQLite database when serving
    (`migrate` overrides that)."""
    if gcx is not None:
        settings = gcx.settings
        plugin_manager = gcx.plugins
    settings = (settings or Settings.from_env()).with_secret_key()
    pm = plugin_manager or make_plugin_manager(disabled=settings.disabled_plugins)
    require_web_plugin(pm)
    config = config or WebConfig.from_env(settings)
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
    backend = live_backend(redis)
    channels = make_channels(backend)
    listeners = Listeners()
    live_hub = LiveHub(channels)
    trusted = parse_networks(settings.trusted_proxies)
    counter: Any = RedisCounter(redis) if redis is not None else MemoryCounter()
    if redis is not None:
        from litestar.stores.redis import RedisStore

        session_store: Any = RedisStore(redis, namespace="gcx:session")
    else:
        session_store = FileStore(settings.data_dir / "sessions", create_directories=True)

    templates = template_engine(pm, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own = gcx is None
        running = gcx or await Gcx.open(
            settings,
            plugin_manager=pm,
            migrate=migrate
            if migrate is not None
            else role == "serve" and settings.resolved_database_url.startswith("sqlite"),
        )
        state = app.state
        state.gcx = running
        state.requirement_titles = {r.code: r.title for r in running.requirements.values()}
        state.status_labels = {s.name: s.label for s in running.workflow.states.values()}
        state.status_views = StatusViews(state.requirement_titles, state.status_labels)
        complete_openapi(app, running)
        templates.engine.globals["labels"] = Labels(state.status_labels, state.requirement_titles)
        templates.engine.globals["transitions"] = running.workflow.transitions
        templates.engine.globals["plugin_links"] = [
            (str(label), str(path), str(permission))
            for links in pm.hook.gcx_web_backoffice_links()
            for label, path, permission in (links or [])
        ]
        # Embedded, every listener is in this process: messages nobody follows are not built.
        publisher = Publisher(channels, running, listeners if redis is None else None)
        register_named(pm, publisher, "gcx_web.publisher")
        hearing = None
        if redis is not None:  # other processes' snapshots show this one's changes too
            heard = await channels.subscribe(["dashboard"])
            hearing = asyncio.create_task(hear_snapshots(publisher, heard.iter_events()))
        try:
            async with contextlib.AsyncExitStack() as stack:
                for service in pm.hook.gcx_process_services(gcx=running, role=role):
                    if service is not None:
                        await stack.enter_async_context(service)
                yield
        finally:
            pm.unregister(publisher)
            if hearing is not None:
                hearing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hearing
            await publisher.close()
            await live_hub.close()
            if own:
                await running.close()
            if redis is not None:
                await redis.aclose()

    app = Litestar(
        route_handlers=[
            *collect_routes(pm),
            create_static_files_router("/static", directories=[HERE / "static"]),
        ],
        lifespan=[lifespan],
        plugins=[channels],
        stores={"sessions": session_store, "memory": MemoryStore()},
        **request_stack(settings, config),
        template_config=TemplateConfig(instance=templates),
        openapi_config=OpenAPIConfig(
            title=settings.programme_name,
            version=_version(),
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(
                security_schemes={
                    "apiToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A staff API token (created by an admin, shown once)",
                    )
                }
            ),
        ),
    )
    app.state.settings = settings
    app.state.config = config
    app.state.trusted_proxies = trusted
    app.state.rate_limiter = RateLimiter(config.rate_limits, counter, trusted)
    app.state.channels = channels
    app.state.live_backend = backend if redis is not None else None
    app.state.listeners = listeners
    app.state.live_hub = live_hub
    app.state.redis = redis
    return app
