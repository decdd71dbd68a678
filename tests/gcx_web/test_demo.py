"""`gcx demo --simulate`: synthetic activity keeps flowing while the demo runs."""

from __future__ import annotations

import asyncio
import contextlib

import sqlalchemy as sa

from gcx_core.entities import Actor
from gcx_core.samples import make_submission
from gcx_core.services import applications as app_service
from gcx_core.storage.tables import applications
from gcx_core.system import Gcx
from gcx_web.cli import simulate


async def test_simulation_submits_and_reviews(gcx: Gcx) -> None:
    for _ in range(5):
        await app_service.submit(gcx, make_submission(), Actor.applicant())
    task = asyncio.create_task(simulate(gcx, pause=0.01))
    await asyncio.sleep(1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with gcx.database.read() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(applications.c.status, sa.func.count()).group_by(
                        applications.c.status
                    )
                )
            ).all()
        )
    assert sum(statuses.values()) > 5
    assert set(statuses) - {"pending_review"}, statuses


def run_demo(tmp_path, port: int, *extra: str, wait_for_port: bool = True):
    """Start `gcx demo` in tmp_path; returns its output once it serves (or exits)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCX_", "EMAIL_", "REDIS_"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcx_core.cli",
            "demo",
            "--count",
            "20",
            "--port",
            str(port),
            *extra,
        ],
        cwd=tmp_path,
        env={**env, "GCX_DATA_DIR": str(tmp_path / "gcx-data")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while wait_for_port and time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            if wait_for_port and proc.poll() is None:
                raise AssertionError("gcx demo neither served nor exited in 60 s")
    finally:
        if wait_for_port and proc.poll() is None:
            proc.terminate()
        out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def count_rows(path, table: str) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_demo_twice_seeds_once_and_keeps_one_admin(tmp_path) -> None:
    from gcx_core.testing.servers import free_port

    port = free_port()
    _, first = run_demo(tmp_path, port)
    assert "Password:" in first, first
    assert f"http://127.0.0.1:{port}/backoffice/" in first
    _, second = run_demo(tmp_path, port)
    assert "already holds 20 applications" in second, second
    database = tmp_path / "gcx-data" / "gcx.db"
    assert count_rows(database, "applications") == 20
    assert count_rows(database, "users") == 1
    passwords = [
        line.split()[1]
        for out in (first, second)
        for line in out.splitlines()
        if line.strip().startswith("Password:")
    ]
    assert len(passwords) == 2 and passwords[0] != passwords[1]


def test_demo_on_a_busy_port_changes_nothing(tmp_path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out = run_demo(tmp_path, port, wait_for_port=False)
    assert code == 2 and "--port" in out, out
    assert not (tmp_path / "gcx-data").exists()


def test_mail_links_follow_the_port_unless_a_base_url_is_set(monkeypatch) -> None:
    import argparse

    from gcx_core.settings import Settings
    from gcx_web.cli import listening_at

    monkeypatch.delenv("GCX_BASE_URL", raising=False)
    args = argparse.Namespace(host="127.0.0.1", port=8100)
    assert listening_at(Settings(), args).base_url == "http://127.0.0.1:8100"
    everywhere = argparse.Namespace(host="0.0.0.0", port=9000)
    assert listening_at(Settings(), everywhere).base_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("GCX_BASE_URL", "https://suppliers.example.org")
    configured = Settings(base_url="https://suppliers.example.org")
    assert listening_at(configured, args).base_url == "https://suppliers.example.org"
