"""Matrix-free linear algebra for curvature: symmetric operators (the Hessian of any
``nn.Module``'s loss, Adam's preconditioned Hessian), block Lanczos, Hutchinson and
Hutch++ trace estimates, stochastic Lanczos quadrature, and the spectral norm of a matrix.
Model-agnostic: nothing here knows about specs, trainers or probes."""

from learnmech.linalg.hessian import HessianOperator, adam_preconditioner
from learnmech.linalg.lanczos import Eigenpairs, lanczos
from learnmech.linalg.operators import DenseOperator, PreconditionedOperator, SymmetricOperator
from learnmech.linalg.svd import spectral_norm
from learnmech.linalg.trace import (
    SpectralDensity,
    TraceEstimate,
    hutch_pp,
    hutchinson,
    spectral_density,
)

__all__ = [
    "DenseOperator",
    "Eigenpairs",
    "HessianOperator",
    "PreconditionedOperator",
    "SpectralDensity",
    "SymmetricOperator",
    "TraceEstimate",
    "adam_preconditioner",
    "hutch_pp",
    "hutchinson",
    "lanczos",
    "spectral_density",
    "spectral_norm",
]
