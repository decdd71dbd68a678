"""The `gcx` command. Sub-commands of other packages are found by import, never imported here
eagerly, so `gcx migrate` works with only the core installed."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from gcx_core.exceptions import GcxError, ValidationError
from gcx_core.settings import Settings

# Entry points other packages fill through `gcx_register_commands`; until one does, the
# command exists and says what is missing.
DEFERRED: dict[str, str] = {
    "serve": "the embedded web server needs gcx_web (pip install 'gcx[web]')",
    "web": "the scale-out web process needs gcx_web (pip install 'gcx[web]')",
    "demo": "the demo needs the web back office, gcx_web (pip install 'gcx[web]')",
    "worker": "the notification worker needs gcx_notify (pip install 'gcx[notify]')",
    "scheduler": "the notification scheduler needs gcx_notify (pip install 'gcx[notify]')",
    "status": "queue status needs gcx_notify (pip install 'gcx[notify]')",
}


def configure_logging(settings: Settings) -> None:
    """Long-running commands log to stderr from GCX_LOG_LEVEL up, as text or JSON lines
    (GCX_LOG_FORMAT); see gcx_core.logs."""
    from gcx_core import logs

    logs.configure(settings.log_format, settings.log_level)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the global --data-dir/--database-url applied."""
    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = attrs.evolve(settings, data_dir=args.data_dir)
    if getattr(args, "database_url", None):
        settings = attrs.evolve(settings, database_url=args.database_url)
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from gcx_core.plugins import make_plugin_manager
    from gcx_core.storage.migrate import upgrade_sync
    from gcx_core.system import migration_locations

    settings = settings_from_args(args)
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    upgrade_sync(settings.resolved_database_url, migration_locations(pm))
    print(f"database is up to date: {_safe_url(settings.resolved_database_url)}")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from gcx_core.entities import Actor
    from gcx_core.services.accounts import create_user
    from gcx_core.system import Gcx

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty() and not args.generate:
        password = getpass.getpass("Password (empty to generate one): ") or None
        if password is not None and getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 2

    async def run() -> tuple[Any, str | None]:
        async with await Gcx.open(settings_from_args(args), migrate=True) as gcx:
            return await create_user(
                gcx, args.email, args.role, Actor.system("cli"), name=args.name, password=password
            )

    user, generated = asyncio.run(run())
    print(f"created {user.role} {user.email} (id {user.id})")
    if generated:
        print(f"password (shown once): {generated}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from gcx_core.plugins import describe_plugins, make_plugin_manager

    settings = settings_from_args(args)
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    for info in describe_plugins(pm):
        print(f"{info.name}  {info.version}")
        for hook in info.hooks:
            print(f"    {hook}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from gcx_core.seed import seed_demo

    settings = settings_from_args(args)
    created = asyncio.run(
        seed_demo(settings, args.count, batch_size=args.batch_size, progress=not args.quiet)
    )
    print(f"seeded {created} applications into {_safe_url(settings.resolved_database_url)}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from gcx_core.operations import backup

    settings = settings_from_args(args)
    for path in backup(settings, args.target, with_files=not args.no_files):
        print(f"wrote {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gcx_core.operations import run_checks

    settings = settings_from_args(args)  # a bad setting stops here, naming the variable
    print("configuration: ok")
    checks = asyncio.run(run_checks(settings, smtp_login=not args.no_smtp_login))
    for check in checks:
        print(f"{check.name}: {'ok' if check.ok else 'FAILED'}, {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def _deferred(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"gcx {name}: not available: {DEFERRED[name]}", file=sys.stderr)
        return 3

    return run


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser(plugin_manager: Any = None) -> argparse.ArgumentParser:
    """The parser, with the sub-commands plugins add through `gcx_register_commands`."""
    parser = argparse.ArgumentParser(prog="gcx", description="GCX supplier application programme")
    parser.add_argument("--data-dir", type=_path, help="where the embedded database and files live")
    parser.add_argument("--database-url", help="overrides GCX_DATABASE_URL")
    parser.add_argument("--config", help="a TOML configuration file (as GCX_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(
        func=cmd_migrate
    )

    p = sub.add_parser("create-user", help="create a staff user")
    p.add_argument("email")
    p.add_argument("--role", required=True, choices=["viewer", "reviewer", "admin"])
    p.add_argument("--name", default="")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--generate", action="store_true", help="generate a password, print it once")
    p.set_defaults(func=cmd_create_user)

    sub.add_parser("plugins", help="list loaded plugins and their hooks").set_defaults(
        func=cmd_plugins
    )

    p = sub.add_parser("backup", help="copy the embedded database (and files) while running")
    p.add_argument("target", type=_path, help="folder to write gcx-<time>.db and files-<time>/ to")
    p.add_argument("--no-files", action="store_true", help="the database only")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "check", help="check the configuration, database, migrations, Redis, SMTP and files"
    )
    p.add_argument("--no-smtp-login", action="store_true", help="connect to SMTP, do not sign in")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("seed-demo", help="load sample applications in every state")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_seed_demo)

    if plugin_manager is None:
        from gcx_core.plugins import make_plugin_manager

        plugin_manager = make_plugin_manager(disabled=Settings.from_env().disabled_plugins)
    plugin_manager.hook.gcx_register_commands(subparsers=sub)
    for name in DEFERRED:
        if name in sub.choices:
            continue
        p = sub.add_parser(name, help=f"({DEFERRED[name]})")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_deferred(name))
    return parser


def _path(value: str) -> Any:
    from pathlib import Path

    return Path(value)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config:
        os.environ["GCX_CONFIG"] = args.config  # read by every settings object from here on
    try:
        return int(args.func(args))
    except ValidationError as exc:
        for field, messages in exc.errors.items():
            print(f"error: {field}: {'; '.join(messages)}", file=sys.stderr)
        return 2
    except GcxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
