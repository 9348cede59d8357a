"""The law catalogue: claims from the literature with checks that can fail.

``catalogue()`` lists every law; ``get_law(id).check(budget)`` runs one. Laws live in one
module per family, named after the paper's strands; importing this package registers
them all.
"""

import inspect
import warnings
from importlib.metadata import entry_points

from learnmech.laws.base import (
    BUDGETS,
    LADDER,
    STRANDS,
    Budget,
    Criterion,
    Curve,
    Evidence,
    Figure,
    JudgedLaw,
    Law,
    LawContext,
    Measurement,
    Prediction,
    Sharpness,
    Verdict,
    catalogue,
    get_law,
    register,
    registered,
)

ENTRY_POINTS = "learnmech.laws"
"""The entry-point group through which an installed package adds laws: each entry names a
module (whose ``@register`` classes join the catalogue on import) or a law class."""


def _load_all() -> None:
    """Import every law module (each registers its laws on import), then the laws that
    installed packages declare under the ``learnmech.laws`` entry point. A plugin that
    fails to load is named in a ``RuntimeWarning`` and the rest of the catalogue loads."""
    from learnmech.laws import (  # noqa: F401
        collapse,
        conservation,
        dln,
        feature_ansatz,
        initialization,
        kernel_regression,
        lazy,
        learning_rule,
        representations,
        scaling,
        stability,
        stepwise,
        transfer,
    )

    for entry in entry_points(group=ENTRY_POINTS):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not hide the catalogue
            warnings.warn(f"law plugin {entry.name!r} ({entry.value}) did not load: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Law) and not inspect.isabstract(
                loaded) and loaded.id not in registered():
            register(loaded)


__all__ = [
    "BUDGETS",
    "ENTRY_POINTS",
    "LADDER",
    "STRANDS",
    "Budget",
    "Criterion",
    "Curve",
    "Evidence",
    "Figure",
    "JudgedLaw",
    "Law",
    "LawContext",
    "Measurement",
    "Prediction",
    "Sharpness",
    "Verdict",
    "catalogue",
    "get_law",
    "register",
    "registered",
]
