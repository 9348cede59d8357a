"""Scaling-law fitting: families, a robust fitter, bootstrap intervals, extrapolation
scores and compute-optimal allocation.

Families (``law=`` names), each written as a log-sum-exp in log space so that every
fitted quantity is unconstrained (``A = e^a``, ``E = e^e``)::

    power_law         L(x)    = E + A x^−α
    pure_power_law    L(x)    = A x^−α                                     no irreducible loss
    broken_power_law  L(x)    = E + A x^−α (1 + (x/x_b)^{1/s})^{−Δ s}     slope α → α + Δ
    chinchilla        L(N, D) = E + A/N^α + B/D^β                         Hoffmann et al. 2022
    kaplan            L(N, D) = [(N_c/N)^{α_N/α_D} + D_c/D]^{α_D}          Kaplan et al. 2020
    quanta            L(N, D) = E + (A/N + B/D^{1/(1+α)})^α                 Michaud et al. 2023

The fit minimises the Huber loss of the log-loss residuals ``r_i = log L_i − log L̂_i``,

    J(θ) = Σ_i h_δ(r_i),   h_δ(r) = r²/2 if |r| ≤ δ else δ(|r| − δ/2),

summed over points (δ = 10⁻³ by default, as in Hoffmann et al. and Besiroglu et al.).
L-BFGS (SciPy) starts from the best points of a grid, best first, until a Bayesian
stopping rule (Boender and Rinnooy Kan 1987) expects no unseen local minimum. L-BFGS-B
measures its stopping tolerances in absolute terms when the objective is below 1, and
the summed Huber objective is of order δ·n. So the minimiser works on ``J/δ²`` (the
Huber loss in units of δ) with tight tolerances, and it restarts from its own answer
until the objective stops improving. The early stop described by Besiroglu et al.
(2024), where the fit halts near its starting point, therefore cannot happen:
:attr:`Fit.converged` reports the final gradient.

Uncertainty comes from the bootstrap (resample the points, refit from the point
estimate). Percentile intervals are used for parameters, derived quantities and
predicted curves. On the 240 Chinchilla runs of Besiroglu et al. this reproduces their
refit (E = 1.817, A = 478, B = 2143, α = 0.347, β = 0.367, objective 0.0010183) and
their bootstrap standard errors.

Compute-optimal allocation under ``C = 6 N D`` minimises ``L(N, C/(6N))`` over ``N``.
For the Chinchilla form the closed form is

    N_opt = G (C/6)^{β/(α+β)},  D_opt = G⁻¹ (C/6)^{α/(α+β)},  G = (αA/(βB))^{1/(α+β)}.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from threadpoolctl import ThreadpoolController

from learnmech.errors import InputError

Array = np.ndarray
# (θ (p,) or (p, m), log-variables {name: (n,)}) -> log L̂, and with its Jacobian in θ
Value = Callable[[Array, Mapping[str, Array]], Array]
ValueJac = Callable[[Array, Mapping[str, Array]], tuple[Array, Array]]


def _lse(*zs: Array) -> Array:
    """``LSE(z) = log Σ_j exp(z_j)`` (stable); arguments broadcast."""
    m = functools.reduce(np.maximum, zs)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(functools.reduce(np.add, [np.exp(z - m) for z in zs]))


def _lse_w(*zs: Array) -> tuple[Array, tuple[Array, ...]]:
    """``LSE(z) = log Σ_j exp(z_j)`` (stable) and its weights ``exp(z_j − LSE(z))``, the
    derivative in each ``z_j``, one array per argument. Arguments broadcast; a few terms
    are combined one by one (no stacked copy: this runs once per objective evaluation)."""
    m = functools.reduce(np.maximum, zs)
    m = np.where(np.isfinite(m), m, 0.0)
    ez = [np.exp(z - m) for z in zs]
    total = functools.reduce(np.add, ez)
    return m + np.log(total), tuple(e / total for e in ez)


# ---- families ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A scaling-law family in its log-space parametrization.

    Attributes:
        name: the ``law=`` name.
        formula: the law in words.
        variables: the input columns (``("N", "D")`` or ``("x",)``).
        theta: names of the fitted, unconstrained parameters (``e = log E``, ...).
        grid: default multi-start grid, one list of values per entry of ``theta``.
        value: ``(θ, {variable: log values (n,)}) -> log L̂``; ``θ`` of shape ``(p,)``
            gives ``(n,)``, a batch ``(p, m)`` gives ``(m, n)``.
        value_jac: the same with the Jacobian ``∂ log L̂/∂θ``, ``(n, p)`` or ``(m, n, p)``
            (``value`` skips the Jacobian: the grid search evaluates thousands of points).
        natural: maps ``theta`` to the parameters as usually quoted.
        derived: extra quantities computed from the natural parameters.
    """

    name: str
    formula: str
    variables: tuple[str, ...]
    theta: tuple[str, ...]
    grid: tuple[tuple[float, ...], ...]
    value: Value
    value_jac: ValueJac
    natural: Callable[[Array], dict[str, float]]
    derived: Callable[[dict[str, float]], dict[str, float]] = lambda p: {}

    def log_predict(self, theta: Array, log_vars: Mapping[str, Array]) -> Array:
        """``log L̂`` at ``log_vars`` for ``θ`` of shape ``(p,)`` or a batch ``(p, m)``."""
        return self.value(theta, log_vars)


def _unpack(theta: Array) -> list[Array]:
    """Rows of ``theta``, shaped to broadcast against ``(n,)`` data (batch → ``(m, 1)``)."""
    return [t[..., None] if np.ndim(t) else t for t in theta]


def _jac(*columns: Array) -> Array:
    """Stack derivative columns (broadcast to a common shape) on a last axis."""
    return np.stack(np.broadcast_arrays(*columns), axis=-1)


def _power_law_value(th: Array, lv: Mapping[str, Array]) -> Array:
    e, a, al = _unpack(th)
    return _lse(a - al * lv["x"], e + 0 * lv["x"])


def _power_law(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = LSE(a − α log x, e)``."""
    e, a, al = _unpack(th)
    x = lv["x"]
    value, (s1, s2) = _lse_w(a - al * x, e + 0 * x)
    return value, _jac(s2, s1, -s1 * x)


def _pure_power_law_value(th: Array, lv: Mapping[str, Array]) -> Array:
    a, al = _unpack(th)
    return a - al * lv["x"]


def _pure_power_law(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = a − α log x``."""
    a, al = _unpack(th)
    x = lv["x"]
    return a - al * x, _jac(1.0 + 0 * x + 0 * a, -x + 0 * a)


def _broken_power_law_value(th: Array, lv: Mapping[str, Array]) -> Array:
    e, a, al, dl, lb, ls = _unpack(th)
    x = lv["x"]
    s = np.exp(ls)
    return _lse(a - al * x - dl * s * np.logaddexp(0.0, (x - lb) / s), e + 0 * x)


def _broken_power_law(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = LSE(a − α log x − Δ s softplus((log x − ℓ_b)/s), e)`` with ``s = e^σ``."""
    e, a, al, dl, lb, ls = _unpack(th)
    x = lv["x"]
    s = np.exp(ls)
    u = (x - lb) / s
    sp = np.logaddexp(0.0, u)
    value, (s1, s2) = _lse_w(a - al * x - dl * s * sp, e + 0 * x)
    sig = 1.0 / (1.0 + np.exp(-u))
    return value, _jac(s2, s1, -s1 * x, -s1 * s * sp, s1 * dl * sig,
                       -s1 * dl * s * (sp - u * sig))


def _chinchilla_value(th: Array, lv: Mapping[str, Array]) -> Array:
    e, a, b, al, be = _unpack(th)
    return _lse(a - al * lv["N"], b - be * lv["D"], e + 0 * lv["N"])


def _chinchilla(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = LSE(a − α log N, b − β log D, e)``."""
    e, a, b, al, be = _unpack(th)
    n, d = lv["N"], lv["D"]
    value, (s1, s2, s3) = _lse_w(a - al * n, b - be * d, e + 0 * n)
    return value, _jac(s3, s1, s2, -s1 * n, -s2 * d)


def _kaplan_value(th: Array, lv: Mapping[str, Array]) -> Array:
    nc, dc, an, ad = _unpack(th)
    return ad * _lse(an / ad * (nc - lv["N"]), dc - lv["D"])


def _kaplan(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = α_D · LSE((α_N/α_D)(log N_c − log N), log D_c − log D)``."""
    nc, dc, an, ad = _unpack(th)
    gap = nc - lv["N"]
    w, (s1, s2) = _lse_w(an / ad * gap, dc - lv["D"])
    return ad * w, _jac(s1 * an, ad * s2, s1 * gap, w - s1 * an / ad * gap)


def _quanta_value(th: Array, lv: Mapping[str, Array]) -> Array:
    e, a, b, al = _unpack(th)
    w = _lse(a - lv["N"], b - lv["D"] / (1 + al))
    return _lse(e + 0 * w, al * w)


def _quanta(th: Array, lv: Mapping[str, Array]) -> tuple[Array, Array]:
    """``log L = LSE(e, α·LSE(a − log N, b − log D/(1+α)))``."""
    e, a, b, al = _unpack(th)
    w, (t1, t2) = _lse_w(a - lv["N"], b - lv["D"] / (1 + al))
    value, (s1, s2) = _lse_w(e + 0 * w, al * w)
    return value, _jac(s1, s2 * al * t1, s2 * al * t2,
                       s2 * (w + al * t2 * lv["D"] / (1 + al) ** 2))


def _chinchilla_derived(p: dict[str, float]) -> dict[str, float]:
    al, be = p["alpha"], p["beta"]
    if al + be == 0:
        return {}
    return {"a": be / (al + be), "b": al / (al + be)}


_EXP = np.exp
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family(
            "power_law", "L(x) = E + A·x^−α", ("x",), ("e", "a", "alpha"),
            ((-1.0, -0.5, 0.0, 0.5, 1.0), (0.0, 2.5, 5.0, 10.0, 15.0, 20.0),
             (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)),
            _power_law_value, _power_law,
            lambda t: {"E": _EXP(t[0]), "A": _EXP(t[1]), "alpha": t[2]},
        ),
        Family(
            "pure_power_law", "L(x) = A·x^−α", ("x",), ("a", "alpha"),
            ((0.0, 2.5, 5.0, 10.0, 15.0, 20.0), (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)),
            _pure_power_law_value, _pure_power_law,
            lambda t: {"A": _EXP(t[0]), "alpha": t[1]},
        ),
        Family(
            "broken_power_law", "L(x) = E + A·x^−α·(1 + (x/x_b)^{1/s})^{−Δ·s}", ("x",),
            ("e", "a", "alpha", "delta_alpha", "log_x_break", "log_s"),
            ((-1.0, 0.0, 1.0), (0.0, 5.0, 10.0), (0.0, 0.5, 1.0),
             (-0.5, 0.0, 0.5, 1.0), (2.0, 5.0, 8.0, 11.0, 14.0), (-1.0, 0.0)),
            _broken_power_law_value, _broken_power_law,
            lambda t: {"E": _EXP(t[0]), "A": _EXP(t[1]), "alpha": t[2], "delta_alpha": t[3],
                       "x_break": _EXP(t[4]), "s": _EXP(t[5])},
        ),
        Family(
            "chinchilla", "L(N, D) = E + A/N^α + B/D^β", ("N", "D"),
            ("e", "a", "b", "alpha", "beta"),
            ((-1.0, -0.5, 0.0, 0.5, 1.0), (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
             (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), (0.0, 0.5, 1.0, 1.5, 2.0),
             (0.0, 0.5, 1.0, 1.5, 2.0)),
            _chinchilla_value, _chinchilla,
            lambda t: {"E": _EXP(t[0]), "A": _EXP(t[1]), "B": _EXP(t[2]), "alpha": t[3],
                       "beta": t[4]},
            _chinchilla_derived,
        ),
        Family(
            "kaplan", "L(N, D) = [(N_c/N)^{α_N/α_D} + D_c/D]^{α_D}", ("N", "D"),
            ("log_Nc", "log_Dc", "alpha_N", "alpha_D"),
            ((5.0, 10.0, 15.0, 20.0, 25.0, 30.0), (5.0, 10.0, 15.0, 20.0, 25.0, 30.0),
             (0.05, 0.1, 0.2, 0.4, 0.8), (0.05, 0.1, 0.2, 0.4, 0.8)),
            _kaplan_value, _kaplan,
            lambda t: {"N_c": _EXP(t[0]), "D_c": _EXP(t[1]), "alpha_N": t[2], "alpha_D": t[3]},
        ),
        Family(
            "quanta", "L(N, D) = E + (A/N + B/D^{1/(1+α)})^α", ("N", "D"),
            ("e", "a", "b", "alpha"),
            ((-1.0, -0.5, 0.0, 0.5, 1.0), (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
             (0.0, 2.5, 5.0, 10.0, 15.0), (0.1, 0.25, 0.5, 1.0, 1.5, 2.0)),
            _quanta_value, _quanta,
            lambda t: {"E": _EXP(t[0]), "A": _EXP(t[1]), "B": _EXP(t[2]), "alpha": t[3]},
            lambda p: {"alpha_D": p["alpha"] / (1 + p["alpha"])},
        ),
    ]
}


def family(law: str | Family) -> Family:
    """The family called ``law`` (a :class:`Family` passes through)."""
    if isinstance(law, Family):
        return law
    if law not in FAMILIES:
        raise InputError("law", law, f"one of {sorted(FAMILIES)}")
    return FAMILIES[law]


# ---- data -------------------------------------------------------------------------------


def _log_columns(
    fam: Family, data: pd.DataFrame | Mapping[str, Any], loss: str | None,
) -> tuple[dict[str, Array], Array | None]:
    """``{variable: log values}`` and ``log loss`` (if ``loss`` is named) from ``data``."""
    cols: dict[str, Array] = {}
    names = list(fam.variables) + ([loss] if loss is not None else [])
    for name in names:
        if name not in data:
            have = list(data.columns) if isinstance(data, pd.DataFrame) else sorted(data)
            raise InputError("data", name, f"a column named {name!r} (have {have})")
        v = np.asarray(data[name], dtype=float).reshape(-1)
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise InputError(name, v[~(np.isfinite(v) & (v > 0))][:3].tolist(),
                             "finite, strictly positive values")
        cols[name] = np.log(v)
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise InputError("data", sorted(lengths), "columns of equal length")
    y = cols.pop(loss) if loss is not None else None
    return cols, y


# ---- the fit ----------------------------------------------------------------------------


def huber(r: Array, delta: float) -> Array:
    """``h_δ(r)``: quadratic for ``|r| ≤ δ``, linear beyond (elementwise)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


def _unit_huber(u: Array) -> tuple[Array, Array]:
    """``(h₁(u), h₁'(u))`` elementwise: the Huber loss with threshold 1 (``u²/2`` inside,
    ``|u| − 1/2`` outside) and its derivative ``clip(u, −1, 1)``; ``h₁(±∞) = ∞``."""
    psi = np.clip(u, -1.0, 1.0)
    return psi * (u - 0.5 * psi), psi


def _objective(fam: Family, lv: Mapping[str, Array], y: Array, delta: float,
               weights: Array | None) -> Callable[[Array], tuple[float, Array]]:
    """``θ ↦ (J/δ², ∇)``: the summed Huber loss in units of δ (see the module text)."""

    def fun(th: Array) -> tuple[float, Array]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred, jac = fam.value_jac(th, lv)
        terms, psi = _unit_huber((y - pred) / delta)
        if weights is not None:
            terms, psi = terms * weights, psi * weights
        value = float(terms.sum())  # not finite iff some u is not (h₁(±∞) = ∞)
        if not math.isfinite(value):
            return float("inf"), np.zeros_like(th)
        return value, (psi @ jac) * (-1.0 / delta)

    return fun


def _relative_gradient(fam: Family, th: Array, lv: Mapping[str, Array], y: Array,
                       delta: float, weights: Array | None = None) -> float:
    """``max_k |Σ_i w_i ψ(u_i) ∂u_i/∂θ_k| / Σ_i w_i |∂u_i/∂θ_k|``: the gradient of ``J/δ²``
    relative to the gradient it would have if every residual pulled one way by δ."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred, jac = fam.value_jac(th, lv)
    psi = np.clip((y - pred) / delta, -1.0, 1.0)
    w = np.ones_like(y) if weights is None else weights
    net = np.abs((w * psi) @ jac)
    gross = w @ np.abs(jac)
    return float(np.max(net / np.maximum(gross, 1e-300)))


_CHUNK_RESIDUALS = 2**14
"""Residuals per batched evaluation: 128 kB per temporary, which stays in cache and below
the allocator's threshold for fresh pages (twice that is two to three times slower on a
2-core Intel laptop; a whole bootstrap batch at once, 400 × 240 residuals, pays page
faults on every evaluation unless an earlier large allocation raised that threshold)."""


def _newton(fam: Family, lv: Mapping[str, Array], y: Array, delta: float, weights: Array,
            theta0: Array, iters: int = 200, h: float = 1e-7) -> Array:
    """Minimise ``J_b(θ)/δ² = Σ_i w_bi h₁(r_i/δ)`` for a batch of weight rows ``b`` at once.

    Damped Newton (Levenberg–Marquardt on the exact objective): the Hessian is the forward
    difference of the analytic gradient (``p`` extra batched evaluations), a step is
    kept only if it lowers the objective, and the damping shrinks tenfold after a kept step
    and grows tenfold after a rejected one. Used for bootstrap refits, which start near
    the optimum; shapes ``weights (B, n)``, ``theta0 (B, p)`` → ``(B, p)``.
    """
    th = np.array(theta0, dtype=float)
    batch, p = th.shape
    eye = np.eye(p)
    rows = max(1, _CHUNK_RESIDUALS // len(y))  # rows per evaluation, as in the grid search

    def value_grad(t: Array, w: Array) -> tuple[Array, Array]:
        value, grad = np.empty(len(t)), np.empty_like(t)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for i in range(0, len(t), rows):
                pred, jac = fam.value_jac(t[i : i + rows].T, lv)
                terms, psi = _unit_huber((y - pred) / delta)
                wi = w[i : i + rows]
                value[i : i + rows] = np.sum(wi * terms, axis=1)
                grad[i : i + rows] = -np.einsum("bn,bnp->bp", wi * psi, jac) / delta
        return np.where(np.isfinite(value), value, np.inf), grad

    value, grad = value_grad(th, weights)
    lam = np.full(batch, 1e-4)
    live = np.isfinite(value)
    for _ in range(iters):
        idx = np.nonzero(live)[0]
        if not idx.size:
            break
        w, t0, g0 = weights[idx], th[idx], grad[idx]
        hess = np.empty((idx.size, p, p))
        for j in range(p):
            hess[:, :, j] = (value_grad(t0 + h * eye[j], w)[1] - g0) / h
        hess = 0.5 * (hess + hess.transpose(0, 2, 1))
        scale = np.maximum(np.abs(np.diagonal(hess, axis1=1, axis2=2)).max(axis=1), 1e-300)
        damped = hess + (lam[idx] * scale)[:, None, None] * eye
        try:
            step = np.linalg.solve(damped, -g0[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g0 / scale[:, None]
        new_value, new_grad = value_grad(t0 + step, w)
        better = new_value < value[idx]
        gain = (value[idx] - new_value) / np.maximum(np.abs(value[idx]), 1e-300)
        kept = idx[better]
        th[kept], value[kept], grad[kept] = (t0 + step)[better], new_value[better], \
            new_grad[better]
        lam[idx] = np.where(better, lam[idx] / 10.0, lam[idx] * 10.0)
        live[idx[(better & (gain < 1e-14)) | (lam[idx] > 1e10)]] = False
    return th


def _grid_values(fam: Family, grid: Array, lv: Mapping[str, Array], y: Array, delta: float,
                 weights: Array | None) -> Array:
    """``J/δ²`` at every row of ``grid`` (shape ``(m, p)``), vectorized in chunks of
    :data:`_CHUNK_RESIDUALS` residuals."""
    chunk = max(1, _CHUNK_RESIDUALS // len(y))
    out = np.empty(len(grid))
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(0, len(grid), chunk):
            terms, _ = _unit_huber((y - fam.value(grid[i : i + chunk].T, lv)) / delta)
            vals = terms.sum(axis=1) if weights is None else terms @ weights
            out[i : i + chunk] = np.where(np.isfinite(vals), vals, np.inf)
    return out


_THREADPOOLS: list[ThreadpoolController] = []


def _one_blas_thread() -> Any:
    """A context with one BLAS thread: SciPy's L-BFGS-B calls BLAS on tiny vectors, and
    BLAS threads on a busy machine make it ten times slower."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


def _lbfgs(fun: Callable[[Array], tuple[float, Array]], x0: Array, rounds: int = 20
           ) -> tuple[Array, float]:
    """L-BFGS with tight tolerances, restarted from its answer until it stops improving.

    Returns ``(θ, value)``.
    """
    x, value = np.asarray(x0, dtype=float), fun(x0)[0]
    for _ in range(rounds):
        with np.errstate(over="ignore", invalid="ignore"), _one_blas_thread():
            res = minimize(fun, x, jac=True, method="L-BFGS-B",
                           options={"maxiter": 5000, "maxcor": 20, "ftol": 1e-13,
                                    "gtol": 1e-9})
        improved = res.fun < value - 1e-12 * max(abs(value), 1.0)
        if res.fun <= value:
            x, value = res.x, float(res.fun)
        if not improved:
            break
    return x, value


def _enough_starts(values: Sequence[float], tol: float = 1e-6) -> bool:
    """Boender and Rinnooy Kan's (1987) Bayesian stopping rule for a multi-start.

    After ``n`` local searches that ended at ``w`` distinct minima, the posterior mean of
    the number of local minima is ``w (n − 1)/(n − w − 2)`` (uniform prior on their
    number and on the relative sizes of their basins); stop once it is below ``w + 1/2``,
    i.e. no unseen minimum is expected. One minimum needs 8 agreeing starts, two need 17.
    ``values`` are the ends ``J/δ²`` of the searches; ends within ``tol·max(|J/δ²|, 1)``
    of each other count as one minimum (L-BFGS ends agree to ~10⁻⁸ relative in a minimum).
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    w = 1 + int(np.sum(np.diff(v) > tol * np.maximum(np.abs(v[1:]), 1.0)))
    return n > w + 2 and w * (n - 1) / (n - w - 2) < w + 0.5


@dataclass
class Fit:
    """A fitted scaling law.

    Attributes:
        law: the family's name.
        theta: fitted log-space parameters (see :attr:`Family.theta`).
        params: the parameters as usually quoted (``E, A, B, alpha, beta`` ...).
        derived: derived quantities (Chinchilla: ``a = β/(α+β)``, ``b = α/(α+β)``).
        objective: the summed Huber loss ``J`` at the optimum (same scale as Epoch's).
        gradient: the largest component of ``∇J`` at the optimum relative to the sum of
            the absolute per-point contributions to it (0 at an exact stationary point).
        converged: ``gradient ≤ 1e-6``.
        n_points: number of points fitted; ``delta``: the Huber threshold.
        n_starts: number of L-BFGS starts made; ``start_values``: their end objectives ``J``.
        residuals: ``log L − log L̂`` at the fitted points.
    """

    law: str
    theta: Array
    params: dict[str, float]
    derived: dict[str, float]
    objective: float
    gradient: float
    converged: bool
    n_points: int
    delta: float
    n_starts: int
    start_values: list[float] = field(default_factory=list)
    residuals: Array = field(default_factory=lambda: np.empty(0))

    @property
    def family(self) -> Family:
        return family(self.law)

    def predict(self, data: pd.DataFrame | Mapping[str, Any] | None = None, **columns: Any
                ) -> Array:
        """Predicted loss at the rows of ``data`` or at keyword columns (``N=..., D=...``)."""
        source: pd.DataFrame | Mapping[str, Any] = columns if data is None else data
        lv, _ = _log_columns(self.family, source, None)
        return np.exp(self.family.log_predict(self.theta, lv))

    def to_json(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "formula": self.family.formula,
            "params": {k: float(v) for k, v in self.params.items()},
            "derived": {k: float(v) for k, v in self.derived.items()},
            "objective": self.objective,
            "gradient": self.gradient,
            "converged": self.converged,
            "n_points": self.n_points,
            "delta": self.delta,
            "n_starts": self.n_starts,
        }


def _grid(fam: Family, grid: Mapping[str, Sequence[float]] | None) -> Array:
    axes = list(fam.grid)
    for name, values in (grid or {}).items():
        if name not in fam.theta:
            raise InputError("grid", name, f"one of the parameters {list(fam.theta)}")
        axes[fam.theta.index(name)] = tuple(values)
    return np.array(list(itertools.product(*axes)), dtype=float)


def fit(
    data: pd.DataFrame | Mapping[str, Any],
    law: str | Family = "chinchilla",
    *,
    loss: str = "loss",
    delta: float = 1e-3,
    grid: Mapping[str, Sequence[float]] | None = None,
    starts: int | None = 16,
    x0: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
    early_stop: bool = True,
) -> Fit:
    """Fit ``law`` to the rows of ``data`` (columns: the family's variables and ``loss``).

    Args:
        data: a DataFrame or mapping of equal-length columns, e.g. ``N``, ``D``, ``loss``
            for two-variable laws and ``x``, ``loss`` for one-variable laws.
        law: a family name (see :data:`FAMILIES`) or a :class:`Family`.
        loss: the name of the loss column (positive values).
        delta: the Huber threshold δ on log-loss residuals.
        grid: values per log-space parameter replacing the family's default grid.
        starts: L-BFGS starts from at most this many best grid points, best first
            (``None``: every point).
        x0: start from this single log-space parameter vector instead of the grid.
        weights: optional per-point weights on the Huber terms (the bootstrap uses counts).
        early_stop: stop the multi-start once :func:`_enough_starts` (Boender and
            Rinnooy Kan's Bayesian rule) judges that every local minimum has been found.

    Returns:
        The best :class:`Fit` over all starts.
    """
    fam = family(law)
    lv, y = _log_columns(fam, data, loss)
    assert y is not None
    if delta <= 0:
        raise InputError("delta", delta, "a positive Huber threshold")
    p = len(fam.theta)
    if len(y) < p:
        raise InputError("data", len(y), f"at least {p} points to fit {fam.name}")
    w = None if weights is None else np.asarray(weights, dtype=float)
    fun = _objective(fam, lv, y, delta, w)
    if x0 is not None:
        if len(x0) != p:
            raise InputError("x0", list(x0), f"{p} values for {list(fam.theta)}")
        candidates = np.asarray([x0], dtype=float)
    else:
        pts = _grid(fam, grid)
        vals = _grid_values(fam, pts, lv, y, delta, w)
        order = np.argsort(vals, kind="stable")
        order = order[np.isfinite(vals[order])]
        candidates = pts[order if starts is None else order[:starts]]
        if not len(candidates):
            raise InputError("grid", "all points", "a grid with a finite objective somewhere")
    best: tuple[Array, float] | None = None
    ends = []
    for c in candidates:
        x, value = _lbfgs(fun, c)
        ends.append(value)
        if best is None or value < best[1]:
            best = (x, value)
        if early_stop and _enough_starts(ends):
            break
    assert best is not None
    theta, value = best
    nat = {k: float(v) for k, v in fam.natural(theta).items()}
    pred = fam.log_predict(theta, lv)
    g = _relative_gradient(fam, theta, lv, y, delta)
    return Fit(
        law=fam.name, theta=theta, params=nat, derived=fam.derived(nat),
        objective=value * delta**2, gradient=g, converged=bool(g <= 1e-6),
        n_points=len(y), delta=delta, n_starts=len(ends),
        start_values=[v * delta**2 for v in ends],
        residuals=y - pred,
    )


# ---- bootstrap --------------------------------------------------------------------------


@dataclass
class Bootstrap:
    """Bootstrap refits of one law.

    Attributes:
        fit: the point estimate on all the data.
        thetas: ``(n_boot, p)`` log-space parameters of the refits.
        samples: natural and derived parameters of every refit, ``name → (n_boot,)``.
    """

    fit: Fit
    thetas: Array
    samples: dict[str, Array]

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval ``[q_{(1−level)/2}, q_{(1+level)/2}]`` of ``name``."""
        if name not in self.samples:
            raise InputError("parameter", name, f"one of {sorted(self.samples)}")
        lo, hi = np.quantile(self.samples[name], [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)

    def se(self, name: str) -> float:
        """Bootstrap standard error (standard deviation of the refits)."""
        return float(np.std(self.samples[name], ddof=1))

    def band(self, level: float = 0.95, data: pd.DataFrame | Mapping[str, Any] | None = None,
             **columns: Any) -> tuple[Array, Array]:
        """Pointwise percentile band of the predicted loss at the given rows."""
        source: pd.DataFrame | Mapping[str, Any] = columns if data is None else data
        lv, _ = _log_columns(self.fit.family, source, None)
        with np.errstate(over="ignore", invalid="ignore"):
            preds = np.exp(self.fit.family.log_predict(self.thetas.T, lv))
        lo, hi = np.nanquantile(preds, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi

    def to_json(self, level: float = 0.95) -> dict[str, Any]:
        return {
            "n_boot": len(self.thetas),
            "level": level,
            "se": {k: self.se(k) for k in self.samples},
            "intervals": {k: list(self.interval(k, level)) for k in self.samples},
        }


def bootstrap(
    data: pd.DataFrame | Mapping[str, Any],
    law: str | Family | Fit = "chinchilla",
    *,
    n_boot: int = 200,
    seed: int = 0,
    loss: str = "loss",
    delta: float = 1e-3,
    **fit_kwargs: Any,
) -> Bootstrap:
    """Refit ``law`` on ``n_boot`` resamples (with replacement) of the rows of ``data``.

    Each refit starts from the full-data fit (fitted first unless a :class:`Fit` is
    given). A resample is a vector of counts used as weights, which is the same as
    duplicating rows. All refits run together as one batched damped-Newton solve (the
    same optimum as L-BFGS, about ten times faster; checked in the tests), and any refit
    it leaves with a relative gradient above 10⁻⁶ is finished by L-BFGS.
    """
    point = law if isinstance(law, Fit) else fit(data, law, loss=loss, delta=delta,
                                                 **fit_kwargs)
    fam = point.family
    lv, y = _log_columns(fam, data, loss)
    assert y is not None
    if n_boot < 2:
        raise InputError("n_boot", n_boot, "at least 2 resamples")
    rng = np.random.default_rng(seed)
    n = len(y)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    start = np.tile(point.theta, (n_boot, 1))
    thetas = _newton(fam, lv, y, point.delta, counts.astype(float), start)
    for i in range(n_boot):  # polish the rare refit that Newton left unconverged
        if _relative_gradient(fam, thetas[i], lv, y, point.delta, counts[i]) > 1e-6:
            fun = _objective(fam, lv, y, point.delta, counts[i].astype(float))
            thetas[i] = _lbfgs(fun, thetas[i])[0]
    rows = [fam.natural(t) for t in thetas]
    rows = [r | fam.derived(r) for r in rows]
    samples = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return Bootstrap(point, thetas, samples)


# ---- extrapolation ----------------------------------------------------------------------


@dataclass
class Extrapolation:
    """A law fitted on the small runs and scored on the held-out large ones.

    ``relative_error`` is ``(L̂ − L)/L`` on each held-out run (in ``heldout`` order).
    """

    fit: Fit
    train: pd.DataFrame
    heldout: pd.DataFrame
    predicted: Array
    relative_error: Array

    @property
    def mean_abs_error(self) -> float:
        return float(np.mean(np.abs(self.relative_error)))

    @property
    def max_abs_error(self) -> float:
        return float(np.max(np.abs(self.relative_error)))


def split_by_size(data: pd.DataFrame, size: Sequence[str], train_fraction: float = 2 / 3
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The smallest ``train_fraction`` of rows by ``Π size columns`` and the rest.

    For ``size=("N", "D")`` this orders runs by ``N·D`` (∝ compute ``6ND``).
    """
    if not 0 < train_fraction < 1:
        raise InputError("train_fraction", train_fraction, "a fraction strictly in (0, 1)")
    key = np.prod([np.asarray(data[c], dtype=float) for c in size], axis=0)
    order = np.argsort(key, kind="stable")
    k = round(train_fraction * len(data))
    return data.iloc[order[:k]], data.iloc[order[k:]]


def extrapolate(
    data: pd.DataFrame,
    law: str | Family = "chinchilla",
    *,
    train_fraction: float = 2 / 3,
    loss: str = "loss",
    **fit_kwargs: Any,
) -> Extrapolation:
    """Fit on the smallest ``train_fraction`` of runs (by the product of the law's
    variables) and predict the others: the held-out extrapolation score."""
    fam = family(law)
    train, held = split_by_size(data, fam.variables, train_fraction)
    if len(held) == 0:
        raise InputError("data", len(data), "enough rows to hold some out")
    f = fit(train, fam, loss=loss, **fit_kwargs)
    pred = f.predict(held)
    actual = np.asarray(held[loss], dtype=float)
    return Extrapolation(f, train, held, pred, (pred - actual) / actual)


# ---- compute-optimal allocation ---------------------------------------------------------


def chinchilla_optimal(params: Mapping[str, float], compute: Any) -> tuple[Array, Array]:
    """Closed-form ``N_opt(C), D_opt(C)`` of ``E + A/N^α + B/D^β`` under ``C = 6ND``."""
    a_, b_, al, be = params["A"], params["B"], params["alpha"], params["beta"]
    c6 = np.asarray(compute, dtype=float) / 6.0
    g = (al * a_ / (be * b_)) ** (1.0 / (al + be))
    n = g * c6 ** (be / (al + be))
    return n, c6 / n


def compute_optimal(f: Fit, compute: Any, flops_per_param_token: float = 6.0
                    ) -> tuple[Array, Array]:
    """``N_opt(C)`` and ``D_opt(C)`` minimising the fitted ``L(N, D)`` with ``C = k·N·D``.

    Numerical (bounded Brent in ``log N`` after a coarse scan) so it works for every
    two-variable family; ``k = 6`` by default.
    """
    fam = f.family
    if fam.variables != ("N", "D"):
        raise InputError("law", f.law, "a law in N and D for compute-optimal allocation")
    cs = np.atleast_1d(np.asarray(compute, dtype=float))
    if np.any(cs <= 0):
        raise InputError("compute", cs.tolist(), "positive FLOP counts")
    n_opt = np.empty_like(cs)
    for i, c in enumerate(cs):
        total = np.log(c / flops_per_param_token)  # log N + log D

        def objective(u: float, total: float = total) -> float:
            lv = {"N": np.array([u]), "D": np.array([total - u])}
            return float(fam.log_predict(f.theta, lv)[0])

        scan = np.linspace(0.0, total, 401)
        vals = fam.log_predict(f.theta, {"N": scan, "D": total - scan})
        j = int(np.argmin(vals))
        lo, hi = scan[max(j - 1, 0)], scan[min(j + 1, len(scan) - 1)]
        res = minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-10})
        n_opt[i] = np.exp(res.x)
    d_opt = cs / (flops_per_param_token * n_opt)
    return n_opt, d_opt


# ---- predicted exponents ----------------------------------------------------------------


def linear_scaling_exponent(a: float, b: float) -> float:
    """Exponent of the noiseless learning curve of linear (kernel) regression.

    With covariance eigenvalues ``λ_k ∝ k^−b`` and target power per eigenmode
    ``λ_k β_k² ∝ k^−a``, ridgeless regression on ``n`` samples has test error
    ``∝ n^−min(a−1, 2b)`` (Bordelon et al. 2020; Spigler et al. 2020), and a linear
    random-feature model with ``N`` features and unlimited data has error ``∝ N^−(a−1)``
    in the same source-limited regime ``a − 1 < 2b`` (Maloney et al. 2022). Outside
    ``a > 1`` (e.g. a flat spectrum, ``a = b = 0``) there is no power law and the value
    returned is only the formula's.
    """
    return min(a - 1.0, 2.0 * b)


# ---- learning curves of linear models, measured exponents ----------------------------


def linear_learning_curves(m: int, a: float, b: float, sizes: np.ndarray, seed: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Population test error, relative to the target's variance, of two linear learners.

    Data: ``x ∈ R^M`` Gaussian with covariance ``diag(λ_k)``, ``λ_k = k^−b``; target
    ``y = βᵀx`` with ``λ_k β_k² = k^−a`` and random signs (seeded).

    * Data scaling: the minimum-norm interpolant of the first ``n`` samples (ridgeless
      regression), for each ``n`` in ``sizes``.
    * Model scaling: the best linear readout of ``N`` Gaussian random features ``F x``
      under the population distribution (unlimited data), for each ``N`` in ``sizes``.

    Both errors are exact expectations over the test distribution,
    ``Σ_k λ_k (β_k − β̂_k)²``, computed from nested prefixes of one sample / one feature
    draw so that each curve is one learner growing. ``sizes`` ``(k,)`` increasing
    integers; returns the data and model curves, each ``(k,)``.
    """
    rng = np.random.default_rng(seed)
    k = np.arange(1, m + 1, dtype=float)
    lam = k**-b
    beta = rng.choice([-1.0, 1.0], m) * np.sqrt(k**-a / lam)
    total = float(np.sum(lam * beta**2))
    top = int(sizes.max())
    x = rng.standard_normal((top, m)) * np.sqrt(lam)
    y = x @ beta
    xl = x * lam
    gram, cross, proj = x @ x.T, xl @ x.T, xl @ beta
    data = []
    for n in sizes:
        coef = np.linalg.solve(gram[:n, :n], y[:n])  # β̂ = X_nᵀ coef
        data.append(total - 2 * proj[:n] @ coef + coef @ cross[:n, :n] @ coef)
    f = rng.standard_normal((top, m))
    fl = f * lam
    feat_gram, feat_proj = fl @ f.T, fl @ beta
    model = [total - feat_proj[:n] @ np.linalg.solve(feat_gram[:n, :n], feat_proj[:n])
             for n in sizes]
    return np.asarray(data) / total, np.asarray(model) / total


def power_law_exponent(sizes: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """Least-squares exponent ``α`` of ``error ∝ size^−α`` on log-log axes (both arrays
    ``(k,)``, positive) and the largest deviation of ``log error`` from that line."""
    coef = np.polyfit(np.log(sizes), np.log(errors), 1)
    dev = float(np.max(np.abs(np.log(errors) - np.polyval(coef, np.log(sizes)))))
    return float(-coef[0]), dev
