"""The `gcx` command, run as a real subprocess against a temporary data directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gcx_core.cli import DEFERRED


def gcx(tmp_path, *args, stdin=None, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GCX_", "EMAIL_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gcx_core.cli", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=full_env,
        timeout=120,
    )


def test_migrate_create_user_and_plugins(tmp_path):
    result = gcx(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    result = gcx(tmp_path, "create-user", "Admin@Example.com", "--role", "admin", "--generate")
    assert result.returncode == 0, result.stderr
    assert "created admin admin@example.com" in result.stdout
    password = result.stdout.split("password (shown once): ")[1].strip()
    assert len(password) >= 20
    again = gcx(tmp_path, "create-user", "admin@example.com", "--role", "viewer", "--generate")
    assert again.returncode == 2 and "already exists" in again.stderr
    piped = gcx(
        tmp_path,
        "create-user",
        "r@example.com",
        "--role",
        "reviewer",
        "--password-stdin",
        stdin="a perfectly fine password\n",
    )
    assert piped.returncode == 0 and "password" not in piped.stdout.split("\n", 1)[1]
    weak = gcx(
        tmp_path,
        "create-user",
        "w@example.com",
        "--role",
        "reviewer",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 2 and "error: password" in weak.stderr
    bad_role = gcx(tmp_path, "create-user", "x@example.com", "--role", "king")
    assert bad_role.returncode == 2
    plugins = gcx(tmp_path, "plugins")
    assert plugins.returncode == 0
    assert "gcx_core.default_plugins.workflow" in plugins.stdout
    assert "gcx_register_workflow" in plugins.stdout


def test_seed_demo_fills_every_state(tmp_path):
    result = gcx(tmp_path, "seed-demo", "--count", "300", "--batch-size", "100")
    assert result.returncode == 0, result.stderr
    assert "seeded 300 applications" in result.stdout
    assert "100%" in result.stderr  # the progress bar
    import asyncio

    from gcx_core.services import dashboard
    from gcx_core.settings import Settings
    from gcx_core.system import Gcx

    async def check():
        async with await Gcx.open(Settings(data_dir=tmp_path / "data")) as g:
            snap = await dashboard.snapshot(g)
            assert not await dashboard.reconcile_counters(g)
            return snap

    snap = asyncio.run(check())
    assert snap.total == 300
    # Sample data is plausible: nothing happened in the future, every city is in its region.
    import sqlite3
    from datetime import UTC, datetime

    from gcx_core.seed import CITIES

    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    with sqlite3.connect(tmp_path / "data" / "gcx.db") as db:
        latest = db.execute(
            "SELECT max(updated_at), max(status_changed_at), max(created_at) FROM applications"
        ).fetchone()
        assert all(value <= now for value in latest), (latest, now)
        assert db.execute("SELECT max(at) FROM status_changes").fetchone()[0] <= now
        pairs = set(
            db.execute(
                "SELECT json_extract(details, '$.business.city'), region FROM applications"
            ).fetchall()
        )
    assert pairs <= set(CITIES), pairs - set(CITIES)
    assert all(s.count > 0 for s in snap.statuses), snap.statuses
    assert sum(round(s.percent * 10) for s in snap.statuses) == 1000  # exactly 100.0 in tenths
    assert round(sum(s.percent for s in snap.statuses), 1) == 100.0


@pytest.mark.parametrize("name", ["serve", "web", "demo"])
def test_entry_points_of_later_packages_say_what_is_missing(tmp_path, name):
    # Without gcx_web (here: disabled) its commands are one-line placeholders.
    result = gcx(tmp_path, name, env={"GCX_DISABLE_PLUGINS": "gcx_web"})
    if result.returncode == 0:
        pytest.fail(f"gcx {name} should not succeed before its package exists")
    assert f"gcx {name}: not available: " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert name in DEFERRED


def test_placeholders_give_way_to_plugin_commands():
    from gcx_core.cli import build_parser
    from gcx_core.plugins import hookimpl, make_plugin_manager

    class Hello:
        @hookimpl
        def gcx_register_commands(self, subparsers):
            p = subparsers.add_parser("serve", help="a plugin's own serve")
            p.set_defaults(func=lambda args: 42)

    parser = build_parser(make_plugin_manager(plugins=[Hello()], load_entry_points=False))
    args = parser.parse_args(["serve"])
    assert args.func(args) == 42
