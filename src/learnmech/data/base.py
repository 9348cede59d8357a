"""The loader contract shared by every data set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor

from learnmech.errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors of one task.

    Shapes: ``x_*`` is ``(n, d_in)``; ``y_*`` is ``(n, d_out)`` floats for regression and
    ``(n,)`` integer labels for classification. ``info`` carries task-specific facts
    (a teacher's singular vectors, item names, ...).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    task: Literal["regression", "classification"]
    n_classes: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def d_out(self) -> int:
        if self.task == "classification":
            assert self.n_classes is not None
            return self.n_classes
        return int(self.y_train.shape[1])

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Dataset:
        """Inputs (and regression targets) in ``dtype`` on ``device``; labels stay integer."""

        def move(t: Tensor, is_target: bool) -> Tensor:
            if is_target and self.task == "classification":
                return t.to(device)
            return t.to(device=device, dtype=dtype)

        return replace(
            self,
            x_train=move(self.x_train, False),
            y_train=move(self.y_train, True),
            x_test=move(self.x_test, False),
            y_test=move(self.y_test, True),
        )

    def targets(self, y: Tensor) -> Tensor:
        """Regression targets for MSE: one-hot rows for class labels, ``y`` otherwise."""
        if self.task == "classification":
            assert self.n_classes is not None
            return torch.nn.functional.one_hot(y, self.n_classes).to(self.x_train.dtype)
        return y

    def input_output_correlation(self) -> tuple[Tensor, Tensor]:
        """``(Σ_xx, Σ_yx)`` on the training set: ``XᵀX/n`` and ``YᵀX/n`` (float64)."""
        x = self.x_train.double()
        y = self.targets(self.y_train).double()
        n = x.shape[0]
        return x.T @ x / n, y.T @ x / n

    def modes(self, rtol: float = 1e-5) -> list[tuple[float, Tensor, Tensor]]:
        """The task's modes: singular triplets of ``Σ_yx`` grouped by singular value.

        Returns ``[(λ, U_g, V_g), ...]`` in descending ``λ``; ``U_g`` is ``(d_out, k)`` and
        ``V_g`` is ``(d_in, k)`` for a group of ``k`` singular values equal within
        ``rtol·λ_1``. Singular values below ``10⁻⁴ λ_1`` (round-off) are left out.
        """
        _, syx = self.input_output_correlation()
        u, s, vh = torch.linalg.svd(syx)
        keep = int((s > 1e-4 * s[0]).sum())
        groups: list[tuple[float, Tensor, Tensor]] = []
        start = 0
        for i in range(1, keep + 1):
            if i == keep or s[start] - s[i] > rtol * s[0]:
                groups.append((float(s[start:i].mean()), u[:, start:i], vh[start:i].T))
                start = i
        return groups


_LOADERS: dict[str, Callable[[Any], Dataset]] = {}


def register(name: str) -> Callable[[Callable[[Any], Dataset]], Callable[[Any], Dataset]]:
    """Decorator: make ``fn(spec) -> Dataset`` the loader of data specs named ``name``."""

    def deco(fn: Callable[[Any], Dataset]) -> Callable[[Any], Dataset]:
        _LOADERS[name] = fn
        return fn

    return deco


def load(spec: Any) -> Dataset:
    """The :class:`Dataset` described by a data spec (float32 tensors on the CPU)."""
    from learnmech.data import real, synthetic  # noqa: F401  (registers the loaders)

    if spec.name not in _LOADERS:
        raise InputError("data.name", spec.name, f"one of {sorted(_LOADERS)}")
    return _LOADERS[spec.name](spec)
