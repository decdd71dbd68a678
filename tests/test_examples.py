"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_workflow_example_is_a_plugin_distribution(monkeypatch):
    """examples/custom-workflow declares an entry point in the `gcx` group naming a module
    whose hooks GCX accepts (its own tests run it end to end)."""
    import importlib
    import tomllib

    from gcx_core.plugins import make_plugin_manager
    from gcx_core.system import build_workflow

    folder = ROOT / "examples" / "custom-workflow"
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    (name, target), *_ = project["project"]["entry-points"]["gcx"].items()
    monkeypatch.syspath_prepend(str(folder / "src"))
    module = importlib.import_module(target)
    pm = make_plugin_manager(plugins=[module], load_entry_points=False)
    workflow = build_workflow(pm)
    assert name == "gcx_site_inspection"
    assert "site_inspection" in workflow.states
    assert "under_review" not in workflow.transitions["approve"].sources


def test_the_scale_out_example_starts_serves_and_delivers():
    import shutil

    from gcx_core.testing import unavailable
    from gcx_core.testing.servers import _pg_tool, free_port

    if not (_pg_tool("initdb") and _pg_tool("postgres")) or not shutil.which("redis-server"):
        unavailable("the scale-out example starts PostgreSQL and Redis from their binaries")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/scale-out/run.py"),
            "--smoke",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 web, 2 workers, 1 scheduler" in result.stdout
    assert "sent 2" in result.stdout


def test_the_deployment_examples_name_only_real_settings():
    import re
    import tomllib

    from gcx_core.settings import SETTING_NAMES

    for path in (ROOT / "examples").rglob("*.toml"):
        if path.name == "pyproject.toml":  # a plugin distribution's, not a GCX_CONFIG file
            continue
        keys = tomllib.loads(path.read_text())
        unknown = {k for k in keys if "GCX_" + k.upper() not in SETTING_NAMES}
        assert not unknown, (path, unknown)
    for path in [*(ROOT / "examples").rglob("*.service"), *(ROOT / "examples").rglob("*.env")]:
        for name in re.findall(r"\b(GCX_[A-Z_]+)=", path.read_text()):
            assert name in SETTING_NAMES | {"GCX_CONFIG"}, (path, name)
