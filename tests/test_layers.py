"""The layers of the design hold in the imports (every import, also those inside functions).

errors, memory → linalg → theory → instruments → spec / models / data → training → probes
→ Monitor → store → laws: a module imports only from layers before its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import learnmech

PACKAGE = Path(learnmech.__file__).parent

# (modules matched by path prefix, forbidden import prefixes)
RULES = [
    ("linalg/", ["learnmech."], ["learnmech.errors", "learnmech.memory", "learnmech.linalg"]),
    ("theory/", ["learnmech.system", "learnmech.probes", "learnmech.train", "learnmech.laws"], []),
    ("probes/", ["learnmech.train", "learnmech.system", "learnmech.param", "learnmech.laws",
                 "learnmech.loop", "learnmech.ensemble", "learnmech.monitor", "learnmech.twins"],
     []),
    ("figures.py", ["learnmech."], ["learnmech.errors"]),
    ("coordcheck.py", ["learnmech.laws"], []),
]


def imported(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, absolute (relative imports resolved in ``package``)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def violations(relative: str, source: str) -> list[str]:
    """``module imports name`` for each import that breaks a rule of :data:`RULES`."""
    package = "learnmech." + ".".join(Path(relative).with_suffix("").parts[:-1])
    found = []
    for prefix, forbidden, allowed in RULES:
        if not relative.startswith(prefix):
            continue
        for name in sorted(imported(source, package.rstrip("."))):
            bad = any(name == f.rstrip(".") or name.startswith(f if f.endswith(".") else f + ".")
                      for f in forbidden)
            ok = any(name == a or name.startswith(a + ".") for a in allowed)
            if bad and not ok:
                found.append(f"{relative} imports {name}")
    return found


def test_the_checker_sees_a_forbidden_import_even_inside_a_function() -> None:
    source = "import torch\n\ndef f():\n    from learnmech.train import ProbeState\n"
    assert violations("probes/hidden.py", source) == [
        "probes/hidden.py imports learnmech.train",
        "probes/hidden.py imports learnmech.train.ProbeState",
    ]
    assert violations("theory/x.py", "from ..system import LearningRule\n") == [
        "theory/x.py imports learnmech.system",
        "theory/x.py imports learnmech.system.LearningRule",
    ]
    assert violations("linalg/x.py", "from learnmech.errors import InputError\n") == []


@pytest.mark.parametrize("prefix", sorted({rule[0] for rule in RULES}))
def test_layers_hold(prefix: str) -> None:
    files = [p for p in sorted(PACKAGE.rglob("*.py"))
             if p.relative_to(PACKAGE).as_posix().startswith(prefix)]
    assert files, f"no module matches {prefix}"
    found = [v for p in files
             for v in violations(p.relative_to(PACKAGE).as_posix(), p.read_text())]
    assert found == []


def test_every_subpackage_declares_its_public_names():
    import importlib

    for init in sorted(PACKAGE.glob("*/__init__.py")):
        name = f"learnmech.{init.parent.name}"
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), name
        if name == "learnmech.integrations":
            continue  # its submodules need their optional extras
        for public in module.__all__:
            assert hasattr(module, public) or importlib.import_module(f"{name}.{public}"), public
