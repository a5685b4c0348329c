"""Every hook is documented (docstring and a ``## name`` section of docs/hooks.md) and tested.

Adding a hook to ``qplug/hookspecs.py`` without documenting it, renaming one without updating the
reference, or shipping one no test calls, fails here.
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


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_exercised_by_a_test(name: str) -> None:
    this = Path(__file__).resolve()
    found = [p.name for p in TESTS.rglob("*.py") if p.resolve() != this and name in p.read_text(encoding="utf-8")]
    assert found, f"no test under tests/ mentions hook {name}: add one that implements or calls it"
