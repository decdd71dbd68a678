"""Meta-tests: every hook documented under its exact signature and tested; every setting in
the configuration reference; every code sample in the docs runs and imports what exists."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

from gcx_core import hookspecs
from gcx_notify import hookspecs as notify_hookspecs
from gcx_web import hookspecs as web_hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {
    name: fn
    for module in (hookspecs, notify_hookspecs, web_hookspecs)
    for name, fn in inspect.getmembers(module, inspect.isfunction)
    if name.startswith("gcx_")
}


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_documented_with_its_signature(name):
    params = ", ".join(inspect.signature(HOOKS[name]).parameters)
    assert f"### {name}({params})" in (ROOT / "docs" / "plugins.md").read_text()


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_docstring(name):
    assert inspect.getdoc(HOOKS[name])


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_implemented_by_a_test_plugin(name):
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def {name}\(", sources), f"no test plugin implements {name}"


def test_every_docs_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in nav, page.name


def test_every_setting_is_in_the_configuration_reference():
    from gcx_core.settings import SETTING_NAMES

    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in SETTING_NAMES if f"`{name}`" not in reference)
    assert not missing, f"not in docs/configuration.md: {missing}"


def _samples() -> list[tuple[str, int, str]]:
    found = []
    for page in sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]):
        text = page.read_text()
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 2
            found.append((f"{page.name}:{line}", line, match.group(1)))
    return found


@pytest.mark.parametrize(("where", "line", "code"), _samples(), ids=[s[0] for s in _samples()])
def test_every_code_sample_runs(where, line, code, tmp_path, monkeypatch):
    """Each Python sample in the docs runs as a reader would paste it (in an empty folder,
    with no GCX settings in the environment), every name it imports exists, and the plugins it
    defines load: hook names and arguments checked, registration hooks called."""
    import ast
    import importlib.util
    import types

    tree = ast.parse(code, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{where}: {node.module} has no {alias.name}"
    for name in [n for n in os.environ if n.startswith("GCX_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    sample = types.ModuleType(f"sample_{line}")
    exec(compile(tree, where, "exec"), sample.__dict__)
    _load_plugins(sample)


def _load_plugins(sample):
    """Register what a sample defines with hook implementations, as GCX would load it."""
    import inspect

    from gcx_core.plugins import check_plugin_manager, make_plugin_manager
    from gcx_core.system import build_workflow, collect_requirements
    from gcx_notify import plugin as notify_plugin
    from gcx_web import plugin as web_plugin

    def implements(obj):
        return any(
            hasattr(getattr(obj, n, None), "gcx_impl") for n in dir(obj) if n.startswith("gcx_")
        )

    plugins = [sample] if implements(sample) else []
    for value in list(vars(sample).values()):
        if inspect.isclass(value) and value.__module__ == sample.__name__ and implements(value):
            plugins.append(value())
    if not plugins:
        return
    pm = make_plugin_manager(plugins=[notify_plugin, web_plugin, *plugins], load_entry_points=False)
    check_plugin_manager(pm)
    build_workflow(pm)
    collect_requirements(pm)
