"""The law catalogue: claims from the literature with checks that can fail.

``catalogue()`` lists every law; ``get_law(id).check(budget)`` runs one. Laws live in one
module per family, named after the paper's strands; importing this package registers
them all.
"""

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
)


def _load_all() -> None:
    """Import every law module (each registers its laws on import)."""
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


__all__ = [
    "BUDGETS",
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
]
