"""Basic instruments: losses, accuracy, singular values, mode strengths, balancedness."""

from __future__ import annotations

import torch
from torch import Tensor

from learnmech.errors import InputError
from learnmech.models import Network
from learnmech.train import ProbeState


def _network(state: ProbeState) -> Network:
    if not isinstance(state.model, Network):
        raise InputError("model", type(state.model).__name__, "a learnmech Network")
    return state.model


class Loss:
    """Train and test loss (the system's objective on the whole split): two observables
    ``train_loss`` and ``test_loss``; the test one only when a test split exists."""

    name = "loss"

    @torch.no_grad()
    def __call__(self, state: ProbeState) -> dict[str, float]:
        d = state.data
        out = {"train_loss": float(state.loss_fn(state.model(d.x_train), d.y_train))}
        if d.x_test.shape[0]:
            out["test_loss"] = float(state.loss_fn(state.model(d.x_test), d.y_test))
        return out


class Accuracy:
    """Classification accuracy on both splits: ``train_accuracy``, ``test_accuracy``."""

    name = "accuracy"

    @torch.no_grad()
    def __call__(self, state: ProbeState) -> dict[str, float]:
        d = state.data
        if d.task != "classification":
            raise InputError("probe", "accuracy", "a classification data set")
        out = {}
        for split, x, y in (("train", d.x_train, d.y_train), ("test", d.x_test, d.y_test)):
            if x.shape[0]:
                out[f"{split}_accuracy"] = float((state.model(x).argmax(1) == y).double().mean())
        return out


class WeightSingularValues:
    """Singular values (descending) of every effective weight ``m_l W_l``:
    observables ``weight_svals.<l>``."""

    name = "weight_svals"

    def __call__(self, state: ProbeState) -> dict[str, Tensor]:
        return {
            f"weight_svals.{l}": torch.linalg.svdvals(w.double())
            for l, w in enumerate(_network(state).effective_weights())
        }


class EndToEndSingularValues:
    """Singular values (descending) of a linear network's whole map ``W_L ⋯ W_1``."""

    name = "e2e_svals"

    def __call__(self, state: ProbeState) -> Tensor:
        return torch.linalg.svdvals(_network(state).end_to_end(torch.float64))


class ModeStrengths:
    """Strengths of a linear network's map ``W_L ⋯ W_1`` along the modes of the task.

    The modes are the singular triplets ``(u_α, λ_α, v_α)`` of the training data's
    ``Σ_yx`` (:meth:`learnmech.data.Dataset.modes`), descending. The strength of a mode is
    ``|u_αᵀ W v_α|``; for a group of modes sharing one ``λ`` (whose singular vectors are
    only defined up to a rotation) it is the singular values of the block ``U_gᵀ W V_g``.
    With ``Σ_xx = I`` these are the quantities whose dynamics Saxe et al. (2014) solve.
    """

    name = "mode_strengths"

    def __call__(self, state: ProbeState) -> Tensor:
        w = _network(state).end_to_end(torch.float64)
        parts = [
            torch.linalg.svdvals(u.to(w.device).T @ w @ v.to(w.device))
            for _, u, v in state.data.modes()
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

    def start(self, state: ProbeState) -> None:
        self._initial = None

    @staticmethod
    def matrices(model: Network) -> list[Tensor]:
        w = [x.double() for x in model.effective_weights()]
        return [w[l + 1].T @ w[l + 1] - w[l] @ w[l].T for l in range(len(w) - 1)]

    def __call__(self, state: ProbeState) -> dict[str, float]:
        now = self.matrices(_network(state))
        if self._initial is None:
            self._initial = now
        out = {}
        for l, (c, c0) in enumerate(zip(now, self._initial)):
            out[f"balancedness.norm.{l}"] = float(torch.linalg.norm(c))
            out[f"balancedness.drift.{l}"] = float(torch.linalg.norm(c - c0))
        return out
