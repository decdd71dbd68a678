"""Scale-out tests: real Redis, PostgreSQL and `gcx worker` / `gcx scheduler` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from email import message_from_bytes, policy
from typing import Any

import attrs
import pytest
from aiosmtpd.smtp import SMTP

from gcx_core.settings import SmtpSettings


class SlowSink:
    """Records messages; each DATA takes a little while, so a backlog lasts long enough to kill."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(name="slow_sink")
async def _slow_sink():
    sink = SlowSink()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


@pytest.fixture(name="gcx_database_url")
def _postgres_only(gcx_postgres_database_url: str) -> str:
    return gcx_postgres_database_url


class Process:
    """A `gcx` sub-command in its own process, its stderr collected as it runs."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def wait_for(self, text: str, timeout: float = 30) -> None:
        async def poll() -> None:
            while not any(text in line for line in self.lines):
                if self.proc.returncode is not None:
                    raise AssertionError(f"{self.name} exited: " + "\n".join(self.lines[-20:]))
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader


@pytest.fixture(name="spawn")
async def _spawn():
    started: list[Process] = []

    async def spawn(name: str, *args: str, env: dict[str, str]) -> Process:
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GCX_", "EMAIL_", "REDIS_", "CELERY_"))
        }
        full_env.update(env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gcx_core.cli",
            *args,
            env=full_env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        process = Process(proc, name)
        started.append(process)
        return process

    yield spawn
    for process in started:
        await process.stop(signal.SIGKILL)


@pytest.fixture(name="pg_service")
def _pg_service():
    from tests.scaleout.services import PostgresService

    service = PostgresService()
    yield service
    service.close()


@pytest.fixture(name="redis_service")
def _redis_service():
    from tests.scaleout.services import RedisService

    service = RedisService()
    yield service
    service.close()


async def wait_http(url: str, timeout: float = 30) -> None:
    """Until something answers at `url` (any status)."""
    import httpx

    async with httpx.AsyncClient(timeout=2) as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def outbox_statuses(gcx):
    """How many notifications are in each status."""
    from collections import Counter

    import sqlalchemy as sa

    from gcx_core.storage.tables import notifications

    async with gcx.database.read() as conn:
        return Counter(s for (s,) in await conn.execute(sa.select(notifications.c.status)))


def scaleout_settings(settings: Any, redis_url: str, smtp_port: int, **more: Any) -> Any:
    """`settings` (the test's) on Redis for live updates and tasks, mailing to `smtp_port`."""
    return attrs.evolve(
        settings,
        redis_url=redis_url,
        broker_url=redis_url,
        smtp=SmtpSettings("127.0.0.1", smtp_port, starttls=False),
        **more,
    )


def process_env(database_url: str, redis_url: str, secret: str, smtp_port: int, **more: str):
    """The environment of a scale-out `gcx` process mailing to a sink on `smtp_port`."""
    return {
        "GCX_DATABASE_URL": database_url,
        "GCX_REDIS_URL": redis_url,
        "GCX_SECRET_KEY": secret,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_USE_TLS": "false",
        **more,
    }
