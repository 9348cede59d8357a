"""The training core: one gradient step and one divergence rule for every trainer.

:func:`gradient_step` is the plain PyTorch step (forward, loss, backward, optimizer step)
and :class:`Divergence` the rule that ends a run as an outcome, never as an exception: a
run diverges at step ``s`` when the loss before update ``s`` is not finite or exceeds
``factor`` times the loss at step 0. :func:`learnmech.train.train` (a
:class:`~learnmech.system.System` with probes), :func:`learnmech.ensemble.train_ensemble`
(stacked members, the rule applied per member) and :func:`train_module` here (any
``nn.Module`` over batches drawn by a callback: the μP verifier and the laws whose models
the spec does not describe) all use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]


def class_log_probs(logits: Tensor) -> Tensor:
    """Log-softmax of logits ``(N, C)`` over the classes, returned as ``(C, N)``: taken
    over the first dimension of the transposed view, because torch's CPU kernel over a
    short last dimension (10 classes) takes about 150 ns a row on an AVX-512 build, three
    times its time this way (2048 rows, forward and backward: 449 against 139 µs; the same
    at 64 rows)."""
    return torch.log_softmax(logits.T, 0)


def cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """``F.cross_entropy`` of logits ``(N, C)`` and labels ``(N,)``, through
    :func:`class_log_probs`. ``reduction``: ``"mean"`` or ``"none"`` (per example,
    ``(N,)``)."""
    return F.nll_loss(class_log_probs(logits).T, labels, reduction=reduction)


def default_loss(out: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy for integer targets (any leading dims: ``out`` is ``(..., classes)``,
    ``y`` is ``(...)``), else ``mse = 1/(2n) Σ‖y − f‖²`` over the first dim."""
    if not y.is_floating_point():
        return cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return 0.5 * (out - y).pow(2).sum() / out.shape[0]


class Divergence:
    """The divergence rule: the loss before update ``s`` must be finite and at most
    ``factor`` × the loss at step 0 (floored at 10⁻¹²)."""

    def __init__(self, factor: float = 1e4) -> None:
        self.factor = factor
        self.bound = math.inf
        self.member_bounds: Tensor | None = None

    def reason(self, step: int, value: float) -> str | None:
        """Why the run diverges at ``step`` with loss ``value``, ``None`` while it does not
        (step 0 sets the bound)."""
        if step == 0:
            self.bound = self.factor * max(abs(value), 1e-12)
        return self.explain(value) if not value <= self.bound else None

    def explain(self, value: float) -> str:
        """The reason a diverging loss ``value`` is given."""
        if not math.isfinite(value):
            return "non-finite loss"
        return f"loss {value:.3g} above {self.factor:g}× the initial loss"

    def diverging(self, step: int, values: Tensor) -> Tensor:
        """The rule for ``E`` members at once: ``values`` ``(E,)`` → a boolean mask ``(E,)``
        (step 0 sets each member's bound)."""
        if step == 0 or self.member_bounds is None:
            self.member_bounds = self.factor * values.abs().clamp_min(1e-12)
        return ~torch.isfinite(values) | (values > self.member_bounds)


def gradient_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    step: int,
    divergence: Divergence,
) -> tuple[float, str | None]:
    """One update on ``(x, y)``: the loss before it and ``None``, or the loss and the
    reason the run diverges (then no update is made). An optimizer step that overflows
    the dtype (a learning rate of 10³⁰⁰) is a divergence too."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    value = loss.item()
    reason = divergence.reason(step, value)
    if reason is not None:
        return value, reason
    loss.backward()
    try:
        optimizer.step()
    except RuntimeError as err:  # lr·update beyond the dtype's range
        if "overflow" not in str(err):
            raise
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        lr = optimizer.param_groups[0].get("lr", float("nan"))
        return value, (f"the update overflows {str(dtype).removeprefix('torch.')} "
                       f"(learning rate {lr:g} in the first parameter group)")
    return value, None


@dataclass
class LoopResult:
    """Losses of the training batches (``losses[s]``: before update ``s``) and the outcome;
    ``diverged_at`` is the step whose loss was not finite or above the divergence bound."""

    losses: list[float] = field(default_factory=list)
    status: Literal["completed", "diverged"] = "completed"
    diverged_at: int | None = None


def train_module(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Batch],
    steps: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = default_loss,
    *,
    divergence_factor: float = 1e4,
) -> LoopResult:
    """Train ``model`` for ``steps`` updates on ``batches(step)``.

    A loss that is not finite, or above ``divergence_factor`` × the first loss, stops the
    run with ``status="diverged"``. Gradients are cleared at the end.
    """
    result = LoopResult()
    divergence = Divergence(divergence_factor)
    for step in range(steps):
        x, y = batches(step)
        value, reason = gradient_step(model, optimizer, loss_fn, x, y, step, divergence)
        if reason is not None:
            result.status, result.diverged_at = "diverged", step
            break
        result.losses.append(value)
    optimizer.zero_grad(set_to_none=True)
    return result


@torch.no_grad()
def evaluate(
    model: nn.Module, x: Tensor, y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = default_loss, chunk: int = 4096,
) -> float:
    """The mean of ``loss_fn`` over ``(x, y)`` in chunks of ``chunk`` rows (NaN if not finite);
    the model's mode is left as it was."""
    total, n = 0.0, x.shape[0]
    for i in range(0, n, chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        total += float(loss_fn(model(xb), yb)) * xb.shape[0]
    value = total / n
    return value if math.isfinite(value) else float("nan")
