"""Throwaway PostgreSQL and Redis servers for tests, on free loopback ports.

Each helper prefers a private server started from the binaries on PATH (isolated, discarded
afterwards), falls back to an already running one named by an environment variable or on the
default port, and otherwise reports why neither exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


class ServiceUnavailable(RuntimeError):
    """Neither a private server could be started nor a running one reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with code {proc.returncode} while starting")
        if _reachable("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"{what} did not accept connections within {timeout}s")


def _pg_tool(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        if os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    return shutil.which(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL (postgresql+asyncpg://...) of a PostgreSQL server for tests."""
    initdb, postgres = _pg_tool("initdb"), _pg_tool("postgres")
    reasons = []
    if initdb and postgres:
        try:
            with _private_postgres(initdb, postgres) as url:
                yield url
                return
        except ServiceUnavailable as exc:
            reasons.append(str(exc))
    else:
        reasons.append("no initdb/postgres binaries found")
    given = os.environ.get("GCX_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if _reachable("127.0.0.1", 5432):
        yield "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        return
    reasons.append("nothing listens on 127.0.0.1:5432 and GCX_TEST_POSTGRES_URL is unset")
    raise ServiceUnavailable("PostgreSQL: " + "; ".join(reasons))


@contextlib.contextmanager
def _private_postgres(initdb: str, postgres: str) -> Iterator[str]:
    # PostgreSQL refuses to run as root; run it as the 'postgres' account when we are root.
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ServiceUnavailable("running as root without runuser")
        prefix = [runuser, "-u", "postgres", "--"]
    data = Path(tempfile.mkdtemp(prefix="gcx-pg-"))
    try:
        if prefix:
            shutil.chown(data, "postgres")
        result = subprocess.run(
            [
                *prefix,
                initdb,
                "-D",
                str(data / "db"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceUnavailable("initdb failed: " + result.stderr.decode()[-300:])
        port = free_port()
        proc = subprocess.Popen(
            [
                *prefix,
                postgres,
                "-D",
                str(data / "db"),
                "-p",
                str(port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port, proc, "postgres")
            time.sleep(0.2)
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis server for tests."""
    binary = shutil.which("redis-server")
    if binary:
        port = free_port()
        data = tempfile.mkdtemp(prefix="gcx-redis-")
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                data,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port, proc, "redis-server")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(data, ignore_errors=True)
        return
    url = os.environ.get("GCX_TEST_REDIS_URL")
    if url:
        yield url
        return
    if _reachable("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/15"
        return
    raise ServiceUnavailable(
        "Redis: no redis-server binary, GCX_TEST_REDIS_URL unset and nothing on 127.0.0.1:6379"
    )
