"""Meta-tests: every hook documented under its exact signature and tested; every setting in
the configuration reference; every code sample in the docs valid, importing what exists."""

from __future__ import annotations

import inspect
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
def test_every_code_sample_compiles_and_imports_what_exists(where, line, code):
    """Each Python sample in the docs is valid Python, and every name it imports from GCX (or
    anything else) exists: a renamed API breaks this test, not a reader's first attempt."""
    import ast
    import importlib.util

    tree = ast.parse(code, filename=where)
    compile(tree, where, "exec")
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
