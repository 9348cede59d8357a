"""The README's Python example runs and its stated result holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_experiment_runs_and_matches_theory():
    block = re.search(r"```python\n(from learnmech\.system.*?)```", README.read_text(), re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["error"] < 0.05  # "within a few percent of λ"


BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index, monkeypatch):
    """Docs that run: each block on its own, in a fresh namespace (a law the README
    registers goes into a copy of the catalogue)."""
    from learnmech.laws import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    exec(compile(BLOCKS[index], f"README.md, Python block {index + 1}", "exec"), {})
