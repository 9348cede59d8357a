"""Stability of gradient methods: thresholds, the quadratic model, and the central flow.

**Quadratic model.** On ``L(x) = ½ λ x²`` with ``a = ηλ``:

* GD: ``x_{k+1} = (1 − a) x_k``; it converges iff ``λ < 2/η`` and oscillates (flips sign)
  when ``λ > 1/η``; ``|1 − ηλ|`` is the factor per step.
* heavy-ball momentum (PyTorch's ``SGD(momentum=β)``: ``b ← βb + g``, ``x ← x − ηb``):
  state ``(x_k, b_{k−1})``, characteristic polynomial ``z² − (1 + β − a) z + β``; stable
  iff ``λ < (2 + 2β)/η``.
* Nesterov (PyTorch's ``nesterov=True``: ``x ← x − η(g + βb)``): characteristic polynomial
  ``z² − (1 + β)(1 − a) z + β(1 − a)``; stable iff ``λ < (2 + 2β)/((1 + 2β)η)``.
* Adam with a frozen preconditioner ``P`` (EMA momentum ``m ← β₁m + (1 − β₁)g``,
  ``x ← x − ηP⁻¹m``): heavy ball with step ``η(1 − β₁)/P``; stable iff
  ``λ(P⁻¹H) < (2 + 2β₁)/((1 − β₁)η)`` (38/η at β₁ = 0.9; Cohen et al. 2022).

Where the loss is not quadratic, the sharpness ``S = λ_max(∇²L)`` plays ``λ``: full-batch
GD drives ``S`` up to the threshold and hovers there (the edge of stability; Cohen et al.
2021).

**Central flow** (Cohen, Damian, Talwalkar, Kolter & Lee 2025): a smooth ODE for the
time average of GD at the edge of stability, see :func:`central_flow`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.linalg import HessianOperator, lanczos

Method = Literal["gd", "momentum", "nesterov", "adam"]


class OptimizerSettings(Protocol):
    """What :func:`rule_threshold` reads from a learning rule (a
    :class:`learnmech.system.LearningRule` is one)."""

    @property
    def optimizer(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def nesterov(self) -> bool: ...
    @property
    def betas(self) -> tuple[float, float]: ...


def threshold(method: Method, lr: float, beta: float = 0.0) -> float:
    """The sharpness above which ``method`` is unstable on a quadratic.

    ``gd``: ``2/η``; ``momentum`` (heavy ball): ``(2 + 2β)/η``; ``nesterov``:
    ``(2 + 2β)/((1 + 2β)η)``; ``adam``: ``(2 + 2β₁)/((1 − β₁)η)`` for the preconditioned
    sharpness ``λ_max(P⁻¹H)`` (``beta`` is β₁).
    """
    if lr <= 0:
        raise InputError("lr", lr, "a positive learning rate")
    if not 0 <= beta < 1:
        raise InputError("beta", beta, "a momentum in [0, 1)")
    if method == "gd":
        return 2.0 / lr
    if method == "momentum":
        return (2.0 + 2.0 * beta) / lr
    if method == "nesterov":
        return (2.0 + 2.0 * beta) / ((1.0 + 2.0 * beta) * lr)
    if method == "adam":
        return (2.0 + 2.0 * beta) / ((1.0 - beta) * lr)
    raise InputError("method", method, "one of 'gd', 'momentum', 'nesterov', 'adam'")


def rule_threshold(rule: OptimizerSettings) -> float:
    """:func:`threshold` for a learning rule's optimizer ``gd``/``sgd``, ``momentum``
    (heavy ball or Nesterov) or ``adam`` (the threshold of the preconditioned sharpness)."""
    if rule.optimizer in ("gd", "sgd"):
        return threshold("gd", rule.lr)
    if rule.optimizer == "momentum":
        return threshold("nesterov" if rule.nesterov else "momentum", rule.lr, rule.momentum)
    if rule.optimizer == "adam":
        return threshold("adam", rule.lr, rule.betas[0])
    raise InputError("optimizer", rule.optimizer, "one of 'gd', 'sgd', 'momentum', 'adam'")


def iteration_matrix(a: float, method: Method = "gd", beta: float = 0.0) -> np.ndarray:
    """The linear map of one step on ``½λx²`` with ``a = ηλ`` (``a = ηλ/P`` for adam).

    ``gd``: ``[[1 − a]]`` on ``x``; ``momentum`` and ``nesterov`` act on ``(x_k, b_{k−1})``
    (PyTorch's buffer); ``adam`` on ``(x_k, m_{k−1})`` with a frozen preconditioner.
    """
    if method == "gd":
        return np.array([[1.0 - a]])
    if method == "momentum":
        return np.array([[1.0 - a, -beta], [a, beta]])  # in units b·η
    if method == "nesterov":
        return np.array([[1.0 - a * (1 + beta), -beta * beta], [a, beta]])
    if method == "adam":
        return np.array([[1.0 - a * (1 - beta), -beta], [a * (1 - beta), beta]])
    raise InputError("method", method, "one of 'gd', 'momentum', 'nesterov', 'adam'")


def growth_factor(a: float, method: Method = "gd", beta: float = 0.0) -> float:
    """Asymptotic factor per step, the spectral radius of :func:`iteration_matrix`
    (``|1 − ηλ|`` for GD); the iteration diverges iff it exceeds 1."""
    return float(np.abs(np.linalg.eigvals(iteration_matrix(a, method, beta))).max())


# ---- central flow ----------------------------------------------------------------------


@dataclass
class FlowPath:
    """A flow integrated in GD-step time ``t`` (one GD step = ``dt = 1``).

    Arrays over the recorded times: ``times``; ``params`` ``(n, dim)`` the flat parameters;
    ``loss`` ``L(w(t))``; ``sharpness`` ``S(w(t))``; ``sigma2`` ``σ²(t)`` (0 where the flow
    is plain gradient flow); ``avg_loss`` the predicted time-averaged GD loss
    ``L + σ²/η``; ``top_vector`` ``(n, dim)`` the top eigenvector ``u(t)`` of ``∇²L``.

    """

    lr: float
    times: list[float] = field(default_factory=list)
    params: list[Tensor] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    sigma2: list[float] = field(default_factory=list)
    top_vector: list[Tensor] = field(default_factory=list)

    @property
    def avg_loss(self) -> np.ndarray:
        return np.asarray(self.loss) + np.asarray(self.sigma2) / self.lr


def _operator(net: nn.Module, params: list[nn.Parameter], w: Tensor,
              loss_fn: Callable[[Tensor, Tensor], Tensor],
              data: tuple[Any, Tensor] | Iterable[tuple[Any, Tensor]]) -> Any:
    """The Hessian operator of ``net`` with its parameters set to ``w``."""
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(w, params)
    return HessianOperator(net, loss_fn, data)


def central_flow(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data: tuple[Any, Tensor] | Iterable[tuple[Any, Tensor]],
    lr: float,
    steps: float,
    *,
    dt: float = 0.25,
    record: Sequence[float] | None = None,
    stabilize: bool = True,
    tol: float = 1e-6,
) -> FlowPath:
    """Integrate the central flow of full-batch GD with one unstable direction.

    In GD-step time ``t`` (so gradient flow is ``dw/dt = −η∇L``), with ``S(w)`` the top
    Hessian eigenvalue and ``u`` its unit eigenvector:

    ``dw/dt = −η [∇L(w) + ½ σ²(t) ∇S(w)]``,   ``∇S = ∇_w(uᵀ∇²L(w)u)``,

    where ``σ² ≥ 0`` is zero while ``S < 2/η`` and otherwise holds ``S`` at ``2/η``:
    ``dS/dt = ⟨∇S, dw/dt⟩ = 0`` gives ``σ² = 2⟨−∇L, ∇S⟩/‖∇S‖²`` (clipped at 0, which lets
    the flow leave the edge). ``σ²`` is the predicted variance of GD's oscillation along
    ``u``: writing ``w_GD = w + x u`` with ``E[x] = 0``, ``E[x²] = σ²``, the expansion
    ``L(w + xu) ≈ L(w) + x⟨∇L, u⟩ + ½x²S`` averages to the time-averaged loss

    ``E[L(w_GD)] ≈ L(w) + ½σ²S = L(w) + σ²/η``   (at ``S = 2/η``),

    and ``∇L(w + xu) ≈ ∇L + xSu + ½x²∇S`` averages to the flow's velocity above.

    Discretization: explicit Euler with step ``dt ≤ ½`` (GD steps; along ``u`` the flow's
    curvature is ``2/η``, so ``η·dt·S = 2dt ≤ 1`` keeps Euler stable). To stay on the constraint
    ``S = 2/η`` despite the discretization, ``σ²`` is the value that makes the linearized
    sharpness after the step exactly ``2/η``:

    ``σ² = max(0, 2[(S − 2/η)/(η dt) − ⟨∇S, ∇L⟩] / ‖∇S‖²)``,

    which equals the formula above when ``S = 2/η`` and is 0 whenever gradient flow would
    keep ``S`` below ``2/η`` over the step. ``∇S`` is computed only when ``S > 0.9 · 2/η``
    (below, ``σ² = 0`` unless one Euler step raises ``S`` by 10 %). ``stabilize=False``
    gives plain gradient flow (``σ² = 0``); as its sharpness is not capped it takes Euler
    sub-steps ``dt/m`` with ``η (dt/m) S ≤ ½``.

    Args:
        model: the network at the start; a copy is integrated, the model is not changed.
        loss_fn, data: as for :class:`learnmech.linalg.HessianOperator`.
        lr: GD's learning rate ``η``.
        steps: the horizon in GD steps.
        dt: Euler step in GD steps, at most ½.
        record: the times at which to record (default every GD step); rounded to the grid.
        stabilize: ``False`` for gradient flow.
        tol: relative Lanczos tolerance of ``S`` and ``u`` (warm-started each step; at
            least 1e-2 for gradient flow, where ``S`` only sets the sub-steps).

    Returns:
        The :class:`FlowPath` at the recorded times.
    """
    if not 0 < dt <= 0.5 or steps < 0:
        raise InputError("dt/steps", (dt, steps), "0 < dt ≤ 0.5 and steps ≥ 0")
    net = copy.deepcopy(model)
    params = [p for p in net.parameters() if p.requires_grad]
    n = round(steps / dt)
    marks = np.arange(n + 1) * dt
    wanted = np.arange(int(steps) + 1) if record is None else np.asarray(record, dtype=float)
    keep = {round(float(t) / dt) for t in wanted}
    edge = 2.0 / lr
    path = FlowPath(lr)
    u: Tensor | None = None
    with torch.no_grad():
        w = torch.nn.utils.parameters_to_vector(params).clone()
    for i in range(n + 1):
        op = _operator(net, params, w, loss_fn, data)
        loss, g = op.loss_and_gradient()
        # gradient flow needs S only to choose its sub-steps: 1 % is enough
        top = lanczos(op, 1, tol=tol if stabilize else max(tol, 1e-2), v0=u, seed=0)
        u, s = top.vectors[:, 0], float(top.values[0])
        sigma2, velocity = 0.0, g
        if stabilize and s > 0.9 * edge:
            grad_s = op.curvature_gradient(u)
            need = (s - edge) / (lr * dt) - float(grad_s @ g)
            sigma2 = max(0.0, 2.0 * need / float(grad_s @ grad_s))
            velocity = g + 0.5 * sigma2 * grad_s
        if i in keep:
            path.times.append(float(marks[i]))
            path.params.append(w.clone())
            path.loss.append(loss)
            path.sharpness.append(s)
            path.sigma2.append(sigma2)
            path.top_vector.append(u.clone())
        if i == n:
            break
        if stabilize:
            w = w - lr * dt * velocity
        else:  # sub-steps with η·dt_sub·S ≤ ½: gradient flow's sharpness is not capped
            sub = max(1, math.ceil(2 * lr * dt * s))
            for j in range(sub):
                if j > 0:
                    g = _operator(net, params, w, loss_fn, data).loss_and_gradient()[1]
                w = w - lr * (dt / sub) * g
        if not torch.isfinite(w).all() or not math.isfinite(loss):
            raise RuntimeError(f"the flow diverged at t = {marks[i]:.3g}")
    return path
