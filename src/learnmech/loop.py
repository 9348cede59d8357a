"""Training any ``nn.Module``: the small loop behind the μP verifier and the laws whose
models the :class:`~learnmech.system.System` spec does not describe (residual MLPs, the
character transformer).

:func:`train_module` is the plain PyTorch loop (forward, loss, backward, step) over batches drawn
by a callback; as in :func:`learnmech.train.train`, divergence ends the run as an outcome,
never as an exception.
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


def default_loss(out: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy for integer targets (any leading dims: ``out`` is ``(..., classes)``,
    ``y`` is ``(...)``), else ``mse = 1/(2n) Σ‖y − f‖²`` over the first dim."""
    if not y.is_floating_point():
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return 0.5 * (out - y).pow(2).sum() / out.shape[0]


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
    bound = math.inf
    for step in range(steps):
        x, y = batches(step)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        value = loss.item()
        if step == 0:
            bound = divergence_factor * max(abs(value), 1e-12)
        if not math.isfinite(value) or value > bound:
            result.status, result.diverged_at = "diverged", step
            break
        result.losses.append(value)
        loss.backward()
        optimizer.step()
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
