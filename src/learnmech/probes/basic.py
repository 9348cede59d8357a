"""Basic instruments: losses, accuracy, singular values, mode strengths, balancedness."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.probes.base import Batch, LossFn, dataset, is_classification, splits
from learnmech.probes.hidden import as_network


class Loss:
    """Train and test loss (the system's objective on the whole split): two observables
    ``train_loss`` and ``test_loss``; the test one only when a test split exists."""

    name = "loss"

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        return {f"{split}_loss": float(loss_fn(model(x), y)) for split, x, y in splits(batch)}


class ValidationLoss:
    """The objective on the two halves of the test split: ``validation_loss`` on its first
    ``⌈n/2⌉`` examples, ``holdout_loss`` on the other ``⌊n/2⌋``.

    Choosing a stopping step by the least ``validation_loss`` and reporting
    ``holdout_loss`` at that step is early stopping whose reported loss was not used to
    choose it (the minimum of one curve over many steps is biased low). Needs a data set
    with at least two test examples.
    """

    name = "validation_loss"

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        data = dataset(batch, self.name)
        n = data.x_test.shape[0]
        if n < 2:
            raise InputError("data.n_test", n, f"at least 2 test examples for probe {self.name!r}")
        half = (n + 1) // 2
        x, y = data.x_test, data.y_test
        return {"validation_loss": float(loss_fn(model(x[:half]), y[:half])),
                "holdout_loss": float(loss_fn(model(x[half:]), y[half:]))}


class Accuracy:
    """Classification accuracy on both splits: ``train_accuracy``, ``test_accuracy``."""

    name = "accuracy"

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        if not is_classification(batch):
            raise InputError("probe", "accuracy", "a classification data set")
        return {
            f"{split}_accuracy": float((model(x).argmax(1) == y).double().mean())
            for split, x, y in splits(batch)
        }


class WeightSingularValues:
    """Singular values (descending) of every effective weight ``m_l W_l``:
    observables ``weight_svals.<l>``."""

    name = "weight_svals"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, Tensor]:
        return {
            f"weight_svals.{l}": torch.linalg.svdvals(w.double())
            for l, w in enumerate(as_network(model).effective_weights())
        }


class EndToEndSingularValues:
    """Singular values (descending) of a linear network's whole map ``W_L ⋯ W_1``."""

    name = "e2e_svals"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> Tensor:
        return torch.linalg.svdvals(as_network(model).end_to_end(torch.float64))


class ModeStrengths:
    """Strengths of a linear network's map ``W_L ⋯ W_1`` along the modes of the task.

    The modes are the singular triplets ``(u_α, λ_α, v_α)`` of the training data's
    ``Σ_yx`` (:meth:`learnmech.data.Dataset.modes`), descending. The strength of a mode is
    ``|u_αᵀ W v_α|``; for a group of modes sharing one ``λ`` (whose singular vectors are
    only defined up to a rotation) it is the singular values of the block ``U_gᵀ W V_g``.
    With ``Σ_xx = I`` these are the quantities whose dynamics Saxe et al. (2014) solve.
    """

    name = "mode_strengths"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> Tensor:
        w = as_network(model).end_to_end(torch.float64)
        parts = [
            torch.linalg.svdvals(u.to(w.device).T @ w @ v.to(w.device))
            for _, u, v in dataset(batch, self.name).modes()
        ]
        return torch.cat(parts)


class Balancedness:
    """Conserved quantities of gradient flow in a linear or homogeneous stack.

    For each pair of adjacent layers, ``C_l = W_{l+1}ᵀ W_{l+1} − W_l W_lᵀ`` (effective
    weights). Observables: ``balancedness.norm.<l>`` = ``‖C_l(t)‖_F`` and
    ``balancedness.drift.<l>`` = ``‖C_l(t) − C_l(0)‖_F``, with ``C_l(0)`` taken at the
    first measurement.
    """

    name = "balancedness"

    def __init__(self) -> None:
        self._initial: list[Tensor] | None = None

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self._initial = None

    @staticmethod
    def matrices(model: nn.Module) -> list[Tensor]:
        w = [x.double() for x in as_network(model).effective_weights()]
        return [w[l + 1].T @ w[l + 1] - w[l] @ w[l].T for l in range(len(w) - 1)]

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        now = self.matrices(as_network(model))
        if self._initial is None:
            self._initial = now
        out = {}
        for l, (c, c0) in enumerate(zip(now, self._initial)):
            out[f"balancedness.norm.{l}"] = float(torch.linalg.norm(c))
            out[f"balancedness.drift.{l}"] = float(torch.linalg.norm(c - c0))
        return out
