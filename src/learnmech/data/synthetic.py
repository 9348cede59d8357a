"""Synthetic tasks generated from a seed: exact control over the quantities theory uses."""

from __future__ import annotations

import torch

from learnmech.data.base import Dataset, register
from learnmech.models.network import lecun_mlp
from learnmech.system import Hierarchy, LinearTeacher, TeacherStudent

ITEMS = ("canary", "salmon", "oak", "rose")
PROPERTIES = ("grow", "move", "roots", "fly", "swim", "leaves", "petals")
_HAS = {
    "canary": {"grow", "move", "fly"},
    "salmon": {"grow", "move", "swim"},
    "oak": {"grow", "roots", "leaves"},
    "rose": {"grow", "roots", "petals"},
}


def _haar(n: int, g: torch.Generator) -> torch.Tensor:
    """A Haar-random ``n × n`` orthogonal matrix (float64)."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _whiten(x: torch.Tensor) -> torch.Tensor:
    """Rows ``x`` linearly transformed so that ``xᵀx / n = I`` exactly (ZCA)."""
    cov = x.T @ x / x.shape[0]
    evals, evecs = torch.linalg.eigh(cov)
    return x @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T


@register("linear_teacher")
def linear_teacher(spec: LinearTeacher) -> Dataset:
    g = torch.Generator().manual_seed(spec.seed)
    if spec.basis == "identity":
        u, v = torch.eye(spec.d_out, dtype=torch.float64), torch.eye(spec.d_in, dtype=torch.float64)
    else:
        u, v = _haar(spec.d_out, g), _haar(spec.d_in, g)
    r = len(spec.singular_values)
    s = torch.tensor(spec.singular_values, dtype=torch.float64)
    teacher = u[:, :r] @ torch.diag(s) @ v[:, :r].T
    x_train = _whiten(torch.randn(spec.n_train, spec.d_in, generator=g, dtype=torch.float64))
    x_test = torch.randn(spec.n_test, spec.d_in, generator=g, dtype=torch.float64)

    def targets(x: torch.Tensor) -> torch.Tensor:
        eps = torch.randn(x.shape[0], spec.d_out, generator=g, dtype=torch.float64)
        return x @ teacher.T + spec.noise * eps

    return Dataset(
        x_train.float(),
        targets(x_train).float(),
        x_test.float(),
        targets(x_test).float(),
        task="regression",
        info={"teacher": teacher, "U": u[:, :r], "S": s, "V": v[:, :r]},
    )


@register("hierarchy")
def hierarchy(spec: Hierarchy) -> Dataset:
    x = 2.0 * torch.eye(len(ITEMS))  # √P · one-hot, so Σ_xx = I over the P = 4 items
    y = torch.tensor([[float(p in _HAS[item]) for p in PROPERTIES] for item in ITEMS])
    return Dataset(
        x, y, x.clone(), y.clone(), task="regression",
        info={"items": ITEMS, "properties": PROPERTIES},
    )


@register("teacher_student")
def teacher_student(spec: TeacherStudent) -> Dataset:
    g = torch.Generator().manual_seed(spec.seed)
    widths = [spec.d_in] + [spec.teacher_width] * (spec.teacher_depth - 1) + [spec.d_out]
    teacher = lecun_mlp(widths, spec.activation, generator=g)
    n = spec.n_train + spec.n_test
    x = torch.randn(n, spec.d_in, generator=g)
    with torch.no_grad():
        y = teacher(x) + spec.noise * torch.randn(n, spec.d_out, generator=g)
    return Dataset(
        x[: spec.n_train], y[: spec.n_train], x[spec.n_train :], y[spec.n_train :],
        task="regression",
        info={"teacher_widths": widths, "teacher_weights": teacher.effective_weights()},
    )
