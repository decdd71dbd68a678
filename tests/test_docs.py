"""Meta-tests: every hook is documented under its exact signature, and every hook is tested."""

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
