"""The README's promises: its set-up commands, and Python snippets that at least compile."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_the_first_section_gives_the_two_commands() -> None:
    first = README.split("\n## ", 2)[1]
    assert "python3 dev.py demo" in first
    assert "python3 dev.py test" in first


def test_there_are_snippets() -> None:
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_compiles(code: str) -> None:
    # Snippets may `await` at the top level, as in an async REPL or notebook.
    compile(code, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def test_every_example_is_linked() -> None:
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert f"examples/{example.name}" in README
