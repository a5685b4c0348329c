"""Every hook is documented (docstring and a ``## name`` section of docs/hooks.md) and tested.

Adding a hook to ``qplug/hookspecs.py`` without documenting it, renaming one without updating the
reference, or shipping one without a ``test_hook_<name>`` test, fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from qplug import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "hooks.md"
TESTS = ROOT / "tests"
# A hook section is a level-2 heading that is exactly an identifier; prose sections have spaces.
_HOOK_HEADING = re.compile(r"[a-z_][a-z0-9_]*")


def _hooks() -> dict[str, object]:
    marker = f"{hookspecs.PROJECT}_spec"  # what pluggy.HookspecMarker sets on each spec
    return {name: obj for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, marker)}


def _sections() -> dict[str, str]:
    """Hook name -> the text of its section (up to the next level-2 heading)."""
    parts = re.split(r"^## (.+?)\s*$", HOOKS_DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    headings, bodies = parts[1::2], parts[2::2]
    return {h: b for h, b in zip(headings, bodies) if _HOOK_HEADING.fullmatch(h)}


HOOKS = sorted(_hooks())


def test_hooks_are_found() -> None:
    assert {"register_scorers", "score_batch"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(_hooks()[name])
    assert doc and doc.strip(), f"hook {name} in qplug/hookspecs.py has no docstring"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_section_naming_its_arguments(name: str) -> None:
    sections = _sections()
    assert name in sections, f"docs/hooks.md has no '## {name}' section"
    body = sections[name]
    for parameter in inspect.signature(_hooks()[name]).parameters:
        assert parameter in body, f"docs/hooks.md '## {name}' does not mention its argument {parameter!r}"
    assert "```python" in body, f"docs/hooks.md '## {name}' has no example"


def test_documented_hooks_exist() -> None:
    stale = sorted(set(_sections()) - set(HOOKS))
    assert not stale, f"docs/hooks.md documents hooks that qplug.hookspecs no longer defines: {stale}"


def _test_functions() -> set[str]:
    """Names of the test functions defined anywhere under tests/."""
    import ast

    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    return names


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test_of_its_own(name: str) -> None:
    """As datasette does: a hook is tested when a function ``test_hook_<name>`` exists, not when its
    name merely appears somewhere under tests/."""
    assert f"test_hook_{name}" in _test_functions(), (
        f"no test function test_hook_{name} under tests/: add one to tests/test_hooks.py")
