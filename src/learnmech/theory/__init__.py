"""Predictions: closed forms, ODEs, kernels and fits, computed from numbers (never from the
spec or a probe). One module per body of theory, imported by name, e.g.
``from learnmech.theory import dln``."""

__all__ = [
    "batch_size",
    "dln",
    "eigenlearning",
    "feature_ansatz",
    "hyperparameters",
    "infinite_width",
    "kernels",
    "linearized",
    "quanta",
    "scaling",
    "signal",
    "similarity",
    "stability",
    "stepwise",
    "symmetry",
]
