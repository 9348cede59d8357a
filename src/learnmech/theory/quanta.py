"""The quanta model of neural scaling (Michaud et al. 2023).

Assumptions: learning decomposes into discrete quanta; quantum ``k`` is used with
frequency ``p_k = A k^−(α+1)`` and learning it lowers the loss by ``Δ`` on the samples
that use it. With the first ``n`` quanta learned,

    L(n) = L(0) − Δ Σ_{k≤n} p_k = L_∞ + Δ A ζ(α+1, n+1)  ≈  L_∞ + C n^−α,   C = AΔ/α,

where ``ζ(s, q) = Σ_{k≥0} (k+q)^−s`` is the Hurwitz zeta function, so the tail sum is
exact and ``C n^−α`` is its leading term (relative error ``O(1/n)``). Then:

* parameters, ``n ≈ N/c`` (``c`` parameters per quantum): ``L(N) ≈ L_∞ + C c^α N^−α``;
* data, quantum ``k`` learned once ``τ`` of its samples were seen, so
  ``n = (A D/τ)^{1/(α+1)}``: ``L(D) ≈ L_∞ + C (τ/A)^{α/(α+1)} D^−α/(α+1)``;
* steps, the gradient of quantum ``n`` scales as ``p_n``, so it is learned after
  ``S_n ∝ 1/p_n ∝ n^{α+1}`` steps: ``L(S) ≈ L_∞ + C_S S^−α/(α+1)``;
* missing every ``M``-th quantum keeps the exponent: ``C' = C (M−1)/M`` and the floor
  rises by ``Δ A M^−(α+1) ζ(α+1)`` (≈ ``ΔA M^−(α+1)/α`` in the integral approximation).

The Hutter model (Hutter 2021) simulates the data axis: each sample shows one feature
drawn with probabilities ``p_k``; a feature is learned once seen ``τ`` times; the loss is
the total probability of the unlearned features.
"""

from __future__ import annotations

import numpy as np
from scipy.special import zeta

from learnmech.errors import InputError


def frequencies(n_quanta: int, alpha: float) -> np.ndarray:
    """``p_k ∝ k^−(α+1)`` for ``k = 1 … n_quanta``, normalised to sum to one."""
    if n_quanta < 1:
        raise InputError("n_quanta", n_quanta, "a positive integer")
    if alpha <= 0:
        raise InputError("alpha", alpha, "a positive exponent")
    p = np.arange(1, n_quanta + 1, dtype=float) ** -(alpha + 1)
    return p / p.sum()


def tail(n: np.ndarray | float, alpha: float, every: int | None = None) -> np.ndarray:
    """Exact ``Σ_{k>n} k^−(α+1)``; with ``every = M``, leaving out multiples of ``M``."""
    s = alpha + 1.0
    n = np.asarray(n, dtype=float)
    out = zeta(s, n + 1.0)
    if every is not None:
        out = out - every**-s * zeta(s, np.floor(n / every) + 1.0)
    return np.asarray(out)


def loss_of_quanta(n: np.ndarray | float, alpha: float, amplitude: float = 1.0,
                   delta: float = 1.0, every: int | None = None) -> np.ndarray:
    """Exact ``L(n) − L_∞ = Δ A Σ_{k>n} k^−(α+1)``, ``L_∞`` the floor of the complete model.

    With ``every = M`` the multiples of ``M`` are never learned: the sum runs over the
    learnable quanta above ``n`` plus all the missing ones.
    """
    s = alpha + 1.0
    out = tail(n, alpha, every)
    if every is not None:
        out = out + every**-s * zeta(s)
    return delta * amplitude * out


def asymptotic_loss(n: np.ndarray | float, alpha: float, amplitude: float = 1.0,
                    delta: float = 1.0, every: int | None = None) -> np.ndarray:
    """The closed form ``C n^−α`` with ``C = AΔ/α`` (times ``(M−1)/M`` when every
    ``M``-th quantum is missing), plus the raised floor ``ΔA M^−(α+1) ζ(α+1)``."""
    n = np.asarray(n, dtype=float)
    c = amplitude * delta / alpha
    if every is None:
        return c * n**-alpha
    floor = delta * amplitude * every ** -(alpha + 1) * zeta(alpha + 1.0)
    return c * (every - 1) / every * n**-alpha + floor


def data_exponent(alpha: float) -> float:
    """``α/(α+1)``: the exponent of ``L(D)`` and ``L(S)`` given ``L(N) ∝ N^−α``."""
    return alpha / (alpha + 1.0)


def hutter_curve(alpha: float, n_features: int, samples: np.ndarray, tau: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One run of the Hutter model.

    Args:
        alpha: features are drawn with ``p_k ∝ k^−(α+1)``, ``k ≤ n_features``.
        n_features: number of features.
        samples: increasing sample counts ``D`` at which to report the loss.
        tau: sightings needed to learn a feature.
        seed: seeds the draw of the sample stream.

    Returns:
        ``loss (len(samples),)``: the total probability of the features not yet learned
        after each ``D``; and ``learned_at (n_features,)``: the sample at which each
        feature was learned (``inf`` if never within ``max(samples)``).
    """
    if tau < 1:
        raise InputError("tau", tau, "a positive number of sightings")
    p = frequencies(n_features, alpha)
    total = int(np.max(samples))
    stream = np.random.default_rng(seed).choice(n_features, size=total, p=p)
    order = np.argsort(stream, kind="stable")  # sample times grouped by feature
    counts = np.bincount(stream, minlength=n_features)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    learned_at = np.full(n_features, np.inf)
    seen = counts >= tau
    learned_at[seen] = order[starts[seen] + tau - 1] + 1.0  # 1-based sample count
    ranked = np.argsort(learned_at)
    mass = 1.0 - np.concatenate([[0.0], np.cumsum(p[ranked])])
    loss = mass[np.searchsorted(learned_at[ranked], samples, side="right")]
    return loss, learned_at


def order_agreement(learned_at: np.ndarray) -> float:
    """Among pairs of subtasks (more frequent ``i`` < ``j``) of which at least one was
    learned, the fraction where ``i`` was learned no later than ``j``."""
    i, j = np.triu_indices(len(learned_at), 1)
    keep = np.isfinite(learned_at[i]) | np.isfinite(learned_at[j])
    return float(np.mean(learned_at[i][keep] <= learned_at[j][keep])) if keep.any() else 0.0
