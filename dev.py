#!/usr/bin/env python3
"""One-command entry points for a fresh clone: needs only Python >= 3.11.

    python3 dev.py demo     install into .venv, load sample data, run the demo
    python3 dev.py test     install into .venv and run the whole test suite
    python3 dev.py lowest   the test suite with the lowest dependency versions pyproject allows
    python3 dev.py plugins  every plugin here installed together: `gcx plugins`, their tests
    python3 dev.py lint     ruff (lint + format check) and mypy
    python3 dev.py docs     build the documentation into site/
    python3 dev.py bench    run the benchmarks in bench/

Everything is installed into ./.venv; nothing outside the clone is touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
MARKER = VENV / ".gcx-installed"
LOWEST_VENV = ROOT / ".venv-lowest"
PLUGINS_VENV = ROOT / ".venv-plugins"
# Plugin distributions that live in this repository: installed beside GCX, tested on their own.
PLUGINS = ["plugins/gcx-webhook", "plugins/gcx-sms"]
# Tested on their own from the source tree but not installed: a workflow plugin changes the
# workflow of every GCX process in the environment, GCX's own tests included.
EXAMPLE_PLUGINS = ["examples/custom-workflow"]


def run(*args: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=check).returncode  # noqa: S603


def ensure_venv(group: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        sys.exit(f"GCX needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    version = max((ROOT / p / "pyproject.toml").stat().st_mtime_ns for p in [".", *PLUGINS])
    if MARKER.exists():
        installed, _, stamped = MARKER.read_text().partition(":")
        # "dev" includes every other group, so it satisfies them all.
        if stamped == str(version) and installed in (group, "dev"):
            return
    stamp = f"{group}:{version}"
    # Dependency groups (PEP 735) need pip >= 25.1.
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".", "--group", group,
        *editable(PLUGINS))  # fmt: skip
    MARKER.write_text(stamp)


def editable(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("-e", path)]


def run_tests(python: Path, args: list[str]) -> int:
    """GCX's suite, then each plugin's from its own folder (its conftest is its top level);
    with arguments, only what they name."""
    if args:
        return run(python, "-m", "pytest", *args, check=False)
    failed = run(python, "-m", "pytest", check=False)
    for plugin in [*PLUGINS, *EXAMPLE_PLUGINS]:
        failed |= run(python, "-m", "pytest", "--rootdir", plugin, plugin, check=False)
    return failed


def demo(args: list[str]) -> int:
    ensure_venv("test")
    return run(BIN / "gcx", "demo", *args, check=False)


def test(args: list[str]) -> int:
    ensure_venv("test")
    return run_tests(BIN / "python", args)


def lowest_versions() -> list[str]:
    """A pip constraint `name==X` for every requirement of GCX and its test group that says
    `>=X`: the oldest versions pyproject claims to work with."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        *project["project"]["dependencies"],
        *(r for rs in project["project"]["optional-dependencies"].values() for r in rs),
        *(r for r in project["dependency-groups"]["test"] if isinstance(r, str)),
    ]
    pins: dict[str, str] = {}
    for requirement in wanted:
        found = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^]]*])?\s*([^;]*)", requirement)
        lowest = re.search(r">=\s*([\w.]+)", found.group(2)) if found else None
        if found and lowest and found.group(1).lower() != "gcx":
            pins[found.group(1).lower()] = lowest.group(1)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def lowest(args: list[str]) -> int:
    """The test suite in .venv-lowest, each direct dependency at its lowest allowed version."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        sys.exit(f"GCX needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    bin_dir = LOWEST_VENV / BIN.name
    venv.EnvBuilder(with_pip=True, clear=True).create(LOWEST_VENV)
    constraints = LOWEST_VENV / "lowest.txt"
    constraints.write_text("\n".join(lowest_versions()) + "\n")
    print(constraints.read_text(), end="", flush=True)
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "-c", constraints, "-e", ".",
        "--group", "test", *editable(PLUGINS))  # fmt: skip
    return run_tests(bin_dir / "python", args)


def plugins(args: list[str]) -> int:
    """A fresh .venv-plugins with GCX and every plugin distribution here, the workflow example
    too, as a deployment would install them: `gcx plugins` must list each, and their tests
    run there."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        sys.exit(f"GCX needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    bin_dir = PLUGINS_VENV / BIN.name
    venv.EnvBuilder(with_pip=True, clear=True).create(PLUGINS_VENV)
    every = [*PLUGINS, *EXAMPLE_PLUGINS]
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "-e", ".", "--group", "test",
        *editable(every))  # fmt: skip
    listed = subprocess.run(  # noqa: S603
        [str(bin_dir / "gcx"), "plugins"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    print(listed, end="", flush=True)
    names = [Path(p).name for p in every]
    for path, name in zip(every, names, strict=True):
        project = (ROOT / path / "pyproject.toml").read_text()
        entry = re.search(r"\[project\.entry-points\.gcx\]\s*\n\s*(\w+)\s*=", project)
        if entry is None or not re.search(rf"^{entry.group(1)}\b", listed, re.M):
            print(f"gcx plugins does not list {name}", file=sys.stderr)
            return 1
    failed = 0
    for plugin in every:
        failed |= run(bin_dir / "python", "-m", "pytest", "--rootdir", plugin, plugin, *args,
                      check=False)  # fmt: skip
    return failed


def lint(args: list[str]) -> int:
    ensure_venv("dev")
    failed = 0
    for cmd in (
        ("ruff", "check", "src", "tests", "bench", "examples", "plugins", "dev.py"),
        ("ruff", "format", "--check", "src", "tests", "bench", "examples", "plugins", "dev.py"),
        ("mypy",),
    ):
        failed |= run(BIN / cmd[0], *cmd[1:], *args, check=False)
    return failed


def docs(args: list[str]) -> int:
    ensure_venv("dev")
    return run(BIN / "mkdocs", "build", "--strict", *args, check=False)


def bench(args: list[str]) -> int:
    ensure_venv("test")
    return run(BIN / "python", "bench/run.py", *args, check=False)


COMMANDS = {
    "demo": demo,
    "test": test,
    "lowest": lowest,
    "plugins": plugins,
    "lint": lint,
    "docs": docs,
    "bench": bench,
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
