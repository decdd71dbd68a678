"""`gcx serve`, `gcx web` and `gcx demo`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import attrs

from gcx_core.cli import configure_logging, settings_from_args
from gcx_core.exceptions import ConfigurationError
from gcx_core.plugins import hookimpl, make_plugin_manager
from gcx_core.settings import Settings, environment
from gcx_core.system import settle_heap

log = logging.getLogger("gcx_web")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run everything in one process (embedded mode)")
    _address(p)
    p.set_defaults(func=serve)
    p = subparsers.add_parser("web", help="run a web process (scale-out: needs Redis)")
    _address(p)
    p.set_defaults(func=web)
    p = subparsers.add_parser("demo", help="load sample data and serve it, with an admin login")
    _address(p)
    p.add_argument("--count", type=int, default=500, help="sample applications (default 500)")
    p.add_argument(
        "--simulate",
        action="store_true",
        help="keep submitting and reviewing synthetic applications so the dashboard moves",
    )
    p.set_defaults(func=demo)


def _address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def _run(settings: Settings, args: argparse.Namespace, role: str, pm: Any = None) -> int:
    import uvicorn

    from gcx_web.app import create_app

    configure_logging(settings)
    app = create_app(settings, pm, role=role)
    app.on_startup.append(settle_heap)
    print(f"GCX is serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        # Access lines are below the log level anyway; off, uvicorn does not format their
        # arguments for every request only to drop them.
        access_log=False,
        proxy_headers=False,  # proxies are trusted by GCX_TRUSTED_PROXIES, nothing else
        server_header=False,
        ws_max_size=64 * 1024,
        # Compression would deflate the same dashboard message once per socket and keep a
        # zlib context per connection: at a thousand dashboards that is most of the CPU and
        # memory of a broadcast.
        ws_per_message_deflate=False,
        # SIGTERM: stop accepting, let requests in progress finish for this long, close the
        # websockets (1012, "service restart": the pages reconnect elsewhere), then exit.
        timeout_graceful_shutdown=settings.stop_timeout,
    )
    return 0


def listening_at(settings: Settings, args: argparse.Namespace) -> Settings:
    """Links in mail point where this server listens, unless GCX_BASE_URL says otherwise."""
    if environment().get("GCX_BASE_URL"):
        return settings
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return attrs.evolve(settings, base_url=f"http://{host}:{args.port}")


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(args: argparse.Namespace) -> int:
    return _run(listening_at(settings_from_args(args), args), args, "serve")


def web(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if not settings.redis_url:
        raise ConfigurationError(
            "gcx web is for the scale-out mode and needs GCX_REDIS_URL; use `gcx serve` for "
            "the embedded mode"
        )
    return _run(listening_at(settings, args), args, "web")


DEMO_ADMIN = "admin@demo.gcx.invalid"


def demo(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from gcx_core.entities import Actor, Role
    from gcx_core.seed import seed_demo
    from gcx_core.services.accounts import (
        RESET,
        RESET_TTL,
        create_user,
        derive_token,
        generate_password,
        issue_token,
        reset_password,
    )
    from gcx_core.services.staff import list_users
    from gcx_core.storage.tables import applications
    from gcx_core.system import Gcx

    if not port_free(args.host, args.port):  # before anything is written
        print(
            f"gcx demo: port {args.port} on {args.host} is in use. Pick another with --port, "
            f"e.g. `gcx demo --port {args.port + 100}`. Nothing was changed.",
            file=sys.stderr,
        )
        return 2
    settings = listening_at(settings_from_args(args).with_secret_key(), args)

    async def prepare() -> tuple[str, str]:
        async with await Gcx.open(settings, migrate=True) as gcx:
            async with gcx.database.read() as conn:
                query = sa.select(sa.func.count()).select_from(applications)
                stored = int((await conn.execute(query)).scalar_one())
            if stored:
                print(
                    f"The demo database ({settings.data_dir}) already holds {stored:,} "
                    "applications: nothing added. Delete that folder for a fresh demo."
                )
            elif args.count:
                await seed_demo(settings, args.count, progress=sys.stderr.isatty())
            password = generate_password()
            system = Actor.system("demo")
            known = [u for u in await list_users(gcx, system) if u.email == DEMO_ADMIN]
            if not known:
                await create_user(gcx, DEMO_ADMIN, Role.ADMIN, system, password=password)
            else:  # a demo ran here before: the same admin, a new password
                async with gcx.database.write() as conn:
                    selector = await issue_token(gcx, conn, known[0].id, RESET, RESET_TTL)
                token = derive_token(settings.secret_key, RESET, selector)
                await reset_password(gcx, token, password)
            return DEMO_ADMIN, password

    email, password = asyncio.run(prepare())
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    if args.simulate:
        pm.register(Simulator(), name="gcx_web.demo.simulator")
    print(
        f"\n  Back office: {settings.base_url}/backoffice/\n"
        f"  Sign in as:  {email}\n"
        f"  Password:    {password}   (shown once; a new one on every `gcx demo`)\n",
        flush=True,
    )
    return _run(settings, args, "serve", pm)


class Simulator:
    """`gcx demo --simulate`: a steady trickle of submissions and review actions."""

    @hookimpl
    def gcx_process_services(self, gcx: Any, role: str) -> Any:
        return self._running(gcx)

    @contextlib.asynccontextmanager
    async def _running(self, gcx: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(simulate(gcx))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def simulate(gcx: Any, *, pause: float = 1.0) -> None:
    """Submit an application and move a random open one along, every `pause` seconds."""
    from gcx_core.entities import Actor, Role
    from gcx_core.exceptions import GcxError
    from gcx_core.samples import make_submission
    from gcx_core.services import applications as app_service
    from gcx_core.services.accounts import create_user
    from gcx_core.services.queries import ApplicationFilter, list_applications

    rng = random.Random()  # noqa: S311 - picks demo actions, not secrets
    reviewer, _ = await create_user(
        gcx,
        f"simulated-reviewer-{rng.randrange(10**6)}@demo.gcx.invalid",
        Role.REVIEWER,
        Actor.system("demo"),
    )
    actor = Actor.for_user(reviewer)
    moves: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "pending_review": [("start_review", {})],
        "under_review": [
            (
                "request_documents",
                {
                    "requirement_codes": ["tax_clearance"],
                    "message": "Please send a current certificate.",
                },
            ),
            (
                "reject",
                {"reason_code": "ineligible", "message": "Outside the programme's criteria."},
            ),
        ],
    }
    while True:
        try:
            await app_service.submit(gcx, make_submission(), Actor.applicant())
            status = rng.choice(list(moves))
            page = await list_applications(gcx, ApplicationFilter(statuses=(status,), per_page=20))
            if page.items:
                app = rng.choice(page.items)
                action, params = rng.choice(moves[status])
                await app_service.act(gcx, app.id, action, actor, params=params)
        except GcxError as exc:
            log.info("simulation step refused: %s", exc)
        await asyncio.sleep(pause)
