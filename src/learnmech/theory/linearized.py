"""Linearized training dynamics under the mean squared error (Lee et al. 2019).

A network linear in its parameters around initialization, ``f_t(x) = f_0(x) + J(x)(θ_t −
θ_0)``, trained by gradient flow on learnmech's ``mse = 1/(2n) Σ_i ‖y_i − f(x_i)‖²`` follows
``d f_t(X)/dt = −(1/n) Θ (f_t(X) − Y)``, where ``Θ = Θ(X, X)`` is its (learning-rate
weighted) NTK on the ``n`` training inputs and ``t = lr · steps``. Hence ::

    f_t(X) = Y + e^{−Θt/n} (f_0(X) − Y)
    f_t(x) = f_0(x) + Θ(x, X) Θ⁻¹ (I − e^{−Θt/n}) (Y − f_0(X))

Full-batch gradient descent with learning rate ``lr`` replaces ``e^{−Θt/n}`` by
``(I − lr Θ/n)^steps``. Kernels may be ``(N, M)`` (one kernel shared by every output) or
``(N, M, O, O)`` (the full multi-output NTK); outputs are ``(N, O)``. Everything is computed
in float64 from the eigendecomposition of ``Θ``; ``Θ⁻¹(I − e^{−Θt/n})`` is evaluated as
``(1 − e^{−λt/n})/λ`` per eigenvalue, which stays finite (→ ``t/n``) when ``λ → 0``.

:func:`ensemble_prediction` gives the mean and covariance over random initializations of
an infinitely wide network in NTK parametrization (Lee et al. 2019, eqs. 15–16), where
``f_0`` is a Gaussian process with the NNGP ``K`` and ``Θ`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnmech.errors import InputError


def _flat_kernel(k: Tensor) -> tuple[Tensor, int | None]:
    """``(N, M)`` stays; ``(N, M, O, O)`` becomes ``(N·O, M·O)`` (row index ``i·O + a``)."""
    if k.ndim == 2:
        return k.double(), None
    if k.ndim == 4:
        n, m, o, _ = k.shape
        return k.double().permute(0, 2, 1, 3).reshape(n * o, m * o), o
    raise InputError("kernel", tuple(k.shape), "a kernel of shape (N, M) or (N, M, O, O)")


def _as_columns(v: Tensor, outputs: int | None) -> Tensor:
    v = v.double()
    if v.ndim == 1:
        v = v.unsqueeze(1)
    return v.reshape(-1, 1) if outputs is not None else v


@dataclass(frozen=True)
class _Spectral:
    evals: Tensor
    evecs: Tensor


def _spectral(theta: Tensor) -> _Spectral:
    evals, evecs = torch.linalg.eigh(0.5 * (theta + theta.T))
    return _Spectral(evals.clamp_min(0.0), evecs)


def _decay(evals: Tensor, n: int, t: float, lr: float | None) -> tuple[Tensor, Tensor]:
    """Per eigenvalue: the residual factor ``r(λ)`` and ``(1 − r(λ))/λ``."""
    rate = evals / n
    if lr is None:
        decay = torch.exp(-rate * t)
        gain = torch.where(rate * t > 1e-12, -torch.expm1(-rate * t) / evals.clamp_min(1e-300),
                           torch.full_like(evals, t / n))
    else:
        steps = round(t / lr)
        decay = (1.0 - lr * rate) ** steps
        small = (lr * rate).abs() < 1e-12
        gain = torch.where(small, torch.full_like(evals, steps * lr / n),
                           (1.0 - decay) / torch.where(small, torch.ones_like(evals), evals))
    return decay, gain


def predict_outputs(
    ntk_train: Tensor,
    y_train: Tensor,
    f0_train: Tensor,
    t: float,
    *,
    ntk_test_train: Tensor | None = None,
    f0_test: Tensor | None = None,
    lr: float | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Outputs of the linearized network at time ``t`` (see the module docstring).

    Args:
        ntk_train: ``Θ(X, X)``, ``(n, n)`` or ``(n, n, O, O)``.
        y_train, f0_train: targets and initial outputs on ``X``, ``(n, O)``.
        t: gradient-flow time ``lr · steps``.
        ntk_test_train, f0_test: ``Θ(x, X)`` and ``f_0(x)`` on test inputs (optional).
        lr: ``None`` for gradient flow, else full-batch GD with this learning rate
            (``steps = round(t / lr)``).

    Returns:
        ``(f_t(X), f_t(x))`` as float64 ``(n, O)`` and ``(m, O)`` (``None`` without test inputs).
    """
    theta, o = _flat_kernel(ntk_train)
    n = y_train.shape[0]
    shape = y_train.reshape(n, -1).shape
    residual0 = _as_columns(f0_train, o) - _as_columns(y_train, o)
    spec = _spectral(theta)
    decay, gain = _decay(spec.evals, n, t, lr)
    coeffs = spec.evecs.T @ residual0
    train = _as_columns(y_train, o) + spec.evecs @ (decay[:, None] * coeffs)
    test = None
    if ntk_test_train is not None:
        if f0_test is None:
            raise InputError("f0_test", None, "the initial outputs on the test inputs")
        cross, _ = _flat_kernel(ntk_test_train)
        m = f0_test.shape[0]
        change = cross @ (spec.evecs @ (gain[:, None] * coeffs))
        test = (_as_columns(f0_test, o) - change).reshape(m, shape[1])
    return train.reshape(shape), test


def parameter_change(
    jacobian: Tensor, weight: float, ntk_train: Tensor, residual0: Tensor, t: float, *,
    lr: float | None = None,
) -> Tensor:
    """How far the linearized network moves one parameter tensor by time ``t``.

    With per-tensor learning-rate weights ``w_p`` (GD: ``θ_p ← θ_p − lr w_p ∇_p L``), the
    NTK is ``Θ = Σ_p w_p J_p J_pᵀ`` and the residual decays as ``r_t = e^{−Θt/n} r_0``, so ::

        θ_p(t) − θ_p(0) = −w_p J_pᵀ Θ⁻¹ (I − e^{−Θt/n}) r_0

    (``(I − lr Θ/n)^steps`` for GD). One output: ``jacobian`` is ``J_p = ∂f(X)/∂θ_p``
    ``(n, P)``, ``weight`` is ``w_p``, ``ntk_train`` the weighted ``Θ`` ``(n, n)``,
    ``residual0`` is ``f_0(X) − Y`` ``(n,)`` or ``(n, 1)``. Returns ``(P,)``, float64.
    """
    theta = ntk_train.double()
    n = theta.shape[0]
    spec = _spectral(theta)
    _, gain = _decay(spec.evals, n, t, lr)
    coeffs = spec.evecs.T @ residual0.double().reshape(n)
    return -weight * (jacobian.double().T @ (spec.evecs @ (gain * coeffs)))


def residual_modes(
    ntk_train: Tensor, residual0: Tensor, t: Tensor, *, lr: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Spectral bias: the residual ``f_t(X) − Y`` along the eigenvectors ``v_i`` of ``Θ``.

    Each component decays independently, ``⟨v_i, r_t⟩ = e^{−λ_i t/n} ⟨v_i, r_0⟩`` (gradient
    flow) or ``(1 − lr λ_i/n)^steps ⟨v_i, r_0⟩`` (GD). ``residual0`` is ``(n, O)``; ``t``
    is a 1-D tensor of times. Returns eigenvalues (descending), eigenvectors (columns) and
    the predicted components ``(len(t), n·O)`` (or ``(len(t), n, O)`` components for a
    shared ``(n, n)`` kernel).
    """
    theta, o = _flat_kernel(ntk_train)
    n = residual0.shape[0]
    spec = _spectral(theta)
    evals, evecs = spec.evals.flip(0), spec.evecs.flip(1)
    coeffs = evecs.T @ _as_columns(residual0, o)  # (modes, O') with O' = 1 or O
    rows = []
    for time in t.double().tolist():
        decay, _ = _decay(evals, n, time, lr)
        rows.append(decay[:, None] * coeffs)
    pred = torch.stack(rows)
    return evals, evecs, pred.squeeze(-1) if o is not None else pred


def ensemble_prediction(
    ntk_train: Tensor,
    nngp_train: Tensor,
    y_train: Tensor,
    t: float,
    ntk_test_train: Tensor,
    nngp_test_train: Tensor,
    nngp_test: Tensor,
) -> tuple[Tensor, Tensor]:
    """Mean ``(m, O)`` and covariance ``(m, m)`` of the test outputs at time ``t`` over an
    infinite ensemble of infinitely wide networks (every output has the same covariance).

    With ``T_t = Θ(x, X) Θ⁻¹ (I − e^{−Θt/n})``:
    ``μ_t(x) = T_t Y`` and
    ``Σ_t = K(x, x) + T_t K(X, X) T_tᵀ − (T_t K(X, x) + K(x, X) T_tᵀ)``.
    Kernels are the scalar ``(·, ·)`` NNGP and NTK of one output.
    """
    theta = ntk_train.double()
    n = theta.shape[0]
    spec = _spectral(theta)
    _, gain = _decay(spec.evals, n, t, None)
    transfer = ntk_test_train.double() @ (spec.evecs @ (gain[:, None] * spec.evecs.T))
    mean = transfer @ y_train.double().reshape(n, -1)
    kxx = nngp_test_train.double()
    cov = (
        nngp_test.double()
        + transfer @ nngp_train.double() @ transfer.T
        - transfer @ kxx.T
        - kxx @ transfer.T
    )
    return mean, cov
