"""PostgreSQL and Redis servers a test can stop and start again, on the same port and data.

The fault tests take a service away under load and bring it back; the shared servers of the
other tests must not be touched, so each of these is private to its test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from gcx_core.testing import unavailable
from gcx_core.testing.servers import _pg_tool, _reachable, free_port


def _wait(port: int, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _reachable("127.0.0.1", port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still {'down' if up else 'up'} after {timeout} s")
        time.sleep(0.05)


class PostgresService:
    """A private PostgreSQL cluster on a fixed port, which `stop()` and `start()` toggle."""

    def __init__(self) -> None:
        initdb, self._postgres = _pg_tool("initdb"), _pg_tool("postgres")
        if not (initdb and self._postgres):
            unavailable("PostgreSQL: no initdb/postgres binaries to run a private server")
        self._prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="gcx-pg-fault-"))
        if self._prefix:
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            [
                *self._prefix,
                initdb,
                "-D",
                str(self.dir / "db"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert self._postgres is not None
        self._proc = subprocess.Popen(
            [
                *self._prefix,
                self._postgres,
                "-D",
                str(self.dir / "db"),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.port, up=True)
        time.sleep(0.3)  # accepting TCP a moment before it accepts logins

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, new ones refused."""
        if self._proc is not None and self._proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown; it goes to the postmaster itself (the
            # runuser wrapper does not pass it on).
            pid_file = self.dir / "db" / "postmaster.pid"
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
            else:
                self._proc.send_signal(signal.SIGINT)
            self._proc.wait(30)
        self._proc = None
        _wait(self.port, up=False)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisService:
    """A private Redis without persistence: a restart loses every key, streams and groups too."""

    def __init__(self) -> None:
        self._binary = shutil.which("redis-server")
        if self._binary is None:
            unavailable("Redis: no redis-server binary to run a private server")
        self.dir = tempfile.mkdtemp(prefix="gcx-redis-fault-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert self._binary is not None
        self._proc = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.port, up=True)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None
        _wait(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
