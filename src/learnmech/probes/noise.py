"""Gradient noise: the simple noise scale of McCandlish et al. (2018).

With per-example losses ``ℓ_i`` on the ``n`` training examples and per-example gradients
``g_i = ∇ℓ_i``, the full-batch gradient is ``G = (1/n) Σ_i g_i`` and the per-example
covariance is ``Σ = (1/n) Σ_i (g_i − G)(g_i − G)ᵀ``. A minibatch of ``B`` examples drawn
at random has gradient mean ``G`` and covariance ``Σ/B``, and the *simple noise scale* is

    B_simple = tr Σ / |G|²,

the batch size at which the minibatch gradient's noise ``tr Σ / B`` equals the signal
``|G|²``. Parameters trained with different learning rates (the plan's per-layer
multipliers ``m_p``) are weighted by them, ``|G|² = Σ_p m_p |G_p|²`` and
``tr Σ = Σ_p m_p tr Σ_p``, which is the noise scale of the preconditioned SGD step; with
one learning rate (``sp``) all ``m_p = 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from learnmech.probes.base import Batch, LossFn, optimizer_weights, training_pair
from learnmech.probes.registry import register_probe


@register_probe("noise_scale")
class GradientNoiseScale:
    """``B_simple = tr Σ / |G|²`` on the batch (in :func:`learnmech.train.train`, the whole
    training set), exact (no sampling).

    Observables: ``noise_scale`` (B_simple), ``grad_norm_sq`` (``|G|²``) and
    ``grad_trace_cov`` (``tr Σ``). Per-example gradients come from ``torch.func``
    (``vmap`` of ``grad``) in chunks of ``chunk`` examples; the model's parameters,
    mode and gradients are left untouched.
    """

    name = "noise_scale"

    def __init__(self, chunk: int = 256) -> None:
        self.chunk = chunk

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        params = {k: v.detach() for k, v in model.named_parameters()}
        weight = optimizer_weights(model, optimizer)

        def loss_one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            return loss_fn(functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

        per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
        x, y = training_pair(batch)
        n = x.shape[0]
        total = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in params.items()}
        squares = torch.zeros((), dtype=torch.float64, device=x.device)
        for start in range(0, n, self.chunk):
            part = slice(start, start + self.chunk)
            grads = per_example(params, x[part], y[part])
            for k, g in grads.items():
                g = g.double()
                total[k] += g.sum(0)
                squares += weight[k] * g.pow(2).sum()
        grad_sq = sum(weight[k] * (t / n).pow(2).sum() for k, t in total.items())
        trace = squares / n - grad_sq
        return {
            "noise_scale": float(trace / grad_sq),
            "grad_norm_sq": float(grad_sq),
            "grad_trace_cov": float(trace),
        }

