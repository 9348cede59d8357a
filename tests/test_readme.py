"""The README's Python example runs and its stated result holds."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_experiment_runs_and_matches_theory():
    block = re.search(r"```python\n(from learnmech\.system.*?)```", README.read_text(), re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["error"] < 0.05  # "within a few percent of λ"
