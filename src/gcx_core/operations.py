"""What operators run: `gcx backup` (a consistent copy of an embedded deployment) and
`gcx check` (is this configuration able to run?)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gcx_core.exceptions import ConfigurationError
from gcx_core.settings import Settings


def sqlite_path(settings: Settings) -> Path:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise ConfigurationError(
            "gcx backup copies an embedded (SQLite) database; for PostgreSQL use pg_dump "
            "(docs/operations.md shows how)"
        )
    return Path(url.database)


def backup(settings: Settings, target: Path, *, with_files: bool = True) -> list[Path]:
    """Copy the SQLite database with SQLite's online backup API (consistent while GCX keeps
    running and writing) into `target`, and the file store beside it. Returns what was
    written: `gcx-<time>.db` and `files-<time>/`."""
    source = sqlite_path(settings)
    if not source.exists():
        raise ConfigurationError(f"there is no database at {source} to back up")
    target.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    written = []
    db_copy = target / f"gcx-{stamp}.db"
    with sqlite3.connect(source) as live, sqlite3.connect(db_copy) as copy:
        live.backup(copy)
    written.append(db_copy)
    files = settings.resolved_files_dir
    if with_files and files.exists():
        # Files are named by their content and never changed in place: copying them after
        # the database can only add files nothing refers to yet, never lose one it needs.
        files_copy = target / f"files-{stamp}"
        shutil.copytree(files, files_copy)
        written.append(files_copy)
    return written


@attrs.frozen
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings, *, smtp_login: bool = True) -> list[Check]:
    """Database reachable and migrated, Redis answering, SMTP accepting a login, the file
    store writable: each a Check, in that order."""
    checks = [await _check(name, probe) for name, probe in _probes(settings, smtp_login)]
    return checks


async def _check(name: str, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await probe())
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])


def _probes(settings: Settings, smtp_login: bool) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
    async def database() -> str:
        from gcx_core.storage.database import Database

        db = Database.from_url(settings.resolved_database_url)
        try:
            async with db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        finally:
            await db.dispose()
        return _safe(settings.resolved_database_url)

    async def migrations() -> str:
        from gcx_core.plugins import make_plugin_manager
        from gcx_core.storage.migrate import pending_migrations
        from gcx_core.system import migration_locations

        pm = make_plugin_manager(disabled=settings.disabled_plugins)
        pending = await pending_migrations(settings.resolved_database_url, migration_locations(pm))
        if pending:
            raise RuntimeError(
                "not up to date; run `gcx migrate` (pending: " + ", ".join(pending) + ")"
            )
        return "up to date"

    async def redis() -> str:
        if not settings.redis_url:
            return "not configured (embedded mode)"
        from redis.asyncio import Redis

        client = Redis.from_url(settings.redis_url)
        try:
            await client.ping()
            info = await client.info("persistence")
        finally:
            await client.aclose()
        persistent = bool(int(info.get("aof_enabled", 0))) or bool(info.get("rdb_last_save_time"))
        return "answers" + ("" if persistent else " (no persistence: see docs/operations.md)")

    async def smtp() -> str:
        if settings.smtp is None:
            return "not configured: mail is captured in the back office"
        import aiosmtplib

        s = settings.smtp
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls,
            start_tls=s.starttls,
            validate_certs=s.validate_certs,
            timeout=10,
        )
        await client.connect()
        try:
            if smtp_login and s.username:
                await client.login(s.username, s.password or "")
                return f"{s.host}:{s.port}, signed in as {s.username}"
            return f"{s.host}:{s.port} answers"
        finally:
            await client.quit()

    async def files() -> str:
        folder = settings.resolved_files_dir
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".gcx-check"
        probe.write_bytes(b"ok")
        probe.unlink()
        return str(folder)

    return [
        ("database", database),
        ("migrations", migrations),
        ("redis", redis),
        ("smtp", smtp),
        ("file store", files),
    ]


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
