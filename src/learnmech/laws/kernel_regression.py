"""Kernel ridge regression with a network's NTK on real data: the eigenlearning theory of
its generalization (Simon et al. 2023; paper Fig. 1b)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from learnmech.data import load
from learnmech.errors import DataUnavailableError
from learnmech.kernel_regression import PoolRegression, pool_regression
from learnmech.laws.base import (
    Budget,
    Criterion,
    Curve,
    Evidence,
    Figure,
    JudgedLaw,
    LawContext,
    Measurement,
    Prediction,
    register,
)
from learnmech.system import Digits, FashionMNIST
from learnmech.theory import eigenlearning
from learnmech.theory.kernels import analytic_kernels

_RIDGES = [0.0, 1e-2, 1.0]  # × the mean eigenvalue scale tr(K)/M
_SETTINGS = {  # pool, pool size, sample sizes, trials
    "quick": ("digits", 1797, [10, 30, 100, 300], 10),
    "standard": ("fashion_mnist", 5000, [10, 30, 100, 300, 1000], 10),
    "full": ("fashion_mnist", 12000, [10, 30, 100, 300, 1000, 2000], 12),
}
_TOP_MODES = 20


@dataclass
class _Pool:
    """The finite population KRR samples from: inputs, one-hot targets, NTK, eigensystem."""

    name: str
    kernel: Tensor  # (M, M)
    targets: Tensor  # (M, 10)
    eigenvalues: np.ndarray  # (M,) descending
    coefficients: np.ndarray  # (M, 10)
    eigenfunctions: Tensor  # (M, M): column i is φ_i on the pool, mean φ_i² = 1


def _sphere(x: Tensor) -> Tensor:
    """Centre the pixels and put every image on the sphere of radius √d."""
    x = x.double() - x.double().mean(0)
    return x / x.norm(dim=1, keepdim=True) * math.sqrt(x.shape[1])


def _pool(budget: Budget) -> _Pool:
    """The budget's pool: a pure function of the data and the analytic kernel (no
    training), read by the measurement (through the context's cache), the theory and the
    rival."""
    name, size, _, _ = _SETTINGS[budget]
    if name == "fashion_mnist":
        try:
            data = load(FashionMNIST(n_train=size, n_test=0, standardize=False))
        except DataUnavailableError:
            name, size = "digits (Fashion-MNIST not installed)", 1797
            data = load(Digits(n_train=size, n_test=0, standardize=False))
    else:
        data = load(Digits(n_train=size, n_test=0, standardize=False))
    x = _sphere(data.x_train)
    y = data.targets(data.y_train).double()
    k = analytic_kernels(x, depth=3, activation="relu", w_std=math.sqrt(2.0), b_std=0.1,
                         get=("ntk",)).ntk
    assert k is not None
    m = k.shape[0]
    evals, evecs = torch.linalg.eigh(k / m)
    evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
    coeffs = (evecs.T @ y / math.sqrt(m)).numpy()
    return _Pool(name, k, y, evals.numpy(), coeffs, evecs * math.sqrt(m))


Theory = Callable[[np.ndarray, np.ndarray, int, float], eigenlearning.Prediction]


def _no_overfitting(eigenvalues: np.ndarray, coefficients: np.ndarray, n: int, ridge: float
                    ) -> eigenlearning.Prediction:
    """A competing theory: eigenlearning's κ and learnabilities, but without the
    overfitting coefficient (E₀ = 1), i.e. the test error is the bias of the unlearned
    modes alone and the variance that fitting n points adds is ignored."""
    p = eigenlearning.predict(eigenvalues, coefficients, n, ridge)
    return dataclasses.replace(p, overfitting=1.0, test_mse=p.test_mse / p.overfitting,
                               train_mse=p.train_mse / p.overfitting)


# Largest errors at the quick budget: test MSE 9 % (n = 300: the finite pool), train MSE
# at the largest ridge 6 % (the smaller ridge's reaches 30 %, not judged), per-mode
# learnability 0.06 averaged over 10 draws; the standard draws stay within these bounds.
_TEST_TOL, _TRAIN_TOL, _LEARN_TOL = 0.15, 0.25, 0.1


@register
class Eigenlearning(JudgedLaw):
    id = "eigenlearning"
    strand = "limits"
    claim = (
        "Kernel ridge regression with a network's NTK on real data generalizes as eigenlearning "
        "predicts from the kernel's eigensystem: the effective regularization κ solving "
        "Σ λ_i/(λ_i+κ) + δ/κ = n gives the learnability λ_i/(λ_i+κ) of every mode and the test "
        "and train MSE, across sample sizes and ridges."
    )
    reference = "Simon, Dickens, Karkada & DeWeese 2023; Bordelon, Canatar & Pehlevan 2020"
    regime = (
        "The NTK of a depth-3 ReLU MLP (NTK parametrization, σ_w² = 2, σ_b = 0.1) on images "
        "centred and projected to the sphere (without this, standardized digits have outlier "
        "images whose eigenfunctions are localized and whose learnabilities the theory misses "
        "by up to 0.5). The pool (all 1797 digits; 5000 Fashion-MNIST training images at the "
        "standard budget, digits if Fashion-MNIST is not installed) stands for the "
        "distribution: its eigensystem gives the theory, KRR trains on n points drawn without "
        "replacement and is tested on the whole pool; targets are one-hot, MSE sums the 10 "
        "outputs. n/M stays ≤ 1/5: at n = 1000 of 1797 digits the measured test MSE exceeds "
        "the prediction by ≈ 30% (finite pool)."
    )
    control = (
        "A competing theory on the same measurements: eigenlearning's κ and learnabilities "
        "without the overfitting coefficient (E₀ = 1), i.e. the test error as the bias of "
        "the unlearned modes alone, ignoring the variance of fitting n points."
    )
    control_theory = "eigenlearning without the overfitting coefficient (E₀ = 1)"
    budgets: ClassVar[dict[str, str]] = {
        "quick": "digits pool (1797), n = 10–300, 10 draws",
        "standard": "Fashion-MNIST pool (5000), n = 10–1000, 10 draws",
        "full": "Fashion-MNIST pool (12000), n = 10–2000, 12 draws",
    }

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """KRR at every (ridge, n): ``test``, ``train`` ``(ridges, ns)``, ``learn``
        ``(ridges, ns, top modes)``, with the ridges used."""
        pool = ctx.cached((self.id, budget, "pool"), lambda: _pool(budget))
        _, _, ns, trials = _SETTINGS[budget]
        lam = torch.from_numpy(pool.eigenvalues[:_TOP_MODES])
        phi = pool.eigenfunctions[:, :_TOP_MODES]

        def regressions() -> list[list[PoolRegression]]:
            return [[pool_regression(pool.kernel, pool.targets, n, ridge, trials, 1000 * r + n,
                                     lam, phi) for n in ns]
                    for r, ridge in enumerate(_ridges(pool))]

        runs = ctx.cached((self.id, budget, "krr", tuple(_RIDGES), _TOP_MODES), regressions)
        return Measurement(
            {"ns": ns, "test": np.array([[m.test_mse for m in row] for row in runs]),
             "train": np.array([[m.train_mse for m in row] for row in runs]),
             "learn": np.array([[m.learnabilities for m in row] for row in runs]),
             "pool": pool.name},
            notes=f"pool: {pool.name}, M = {pool.kernel.shape[0]}; n = {ns}")

    def predict(self, budget: Budget) -> Prediction:
        return _predicted(budget, eigenlearning.predict)

    def control_prediction(self, budget: Budget) -> Prediction:
        return _predicted(budget, _no_overfitting)

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        ns = measurement["ns"]
        test_err = np.abs(prediction["test"] - measurement["test"]) / measurement["test"]
        train_err = (np.abs(prediction["train"][-1] - measurement["train"][-1])
                     / measurement["train"][-1])
        learn_err = np.abs(prediction["learn"][0] - measurement["learn"][0])
        criteria = [
            Criterion("max |predicted − measured| / measured test MSE over n and ridge",
                      float(np.max(test_err)), _TEST_TOL),
            Criterion(f"max |predicted − measured| / measured train MSE at ridge "
                      f"{_RIDGES[-1]:g}·tr K/M", float(np.max(train_err)), _TRAIN_TOL),
            Criterion(f"max |L̂_i − L_i| over the top {_TOP_MODES} modes at zero ridge",
                      float(np.max(learn_err)), _LEARN_TOL),
        ]
        curves = Figure(f"Learning curves of NTK regression on {measurement['pool']}",
                        "training points n", "test MSE (sum over 10 outputs)", xscale="log",
                        yscale="log")
        modes = Figure("Learnability of the top NTK eigenmodes, zero ridge", "mode index i",
                       "learnability L_i")
        x = [float(n) for n in ns]
        for r, rel in enumerate(_RIDGES):
            group = f"δ = {rel:g}·tr K/M"
            curves.curves += [
                Curve(f"theory {group}", x, prediction["test"][r].tolist(), "theory", group),
                Curve(f"measured {group}", x, measurement["test"][r].tolist(), "measured",
                      group)]
        idx = [float(i) for i in range(_TOP_MODES)]
        for j, n in enumerate(ns):
            modes.curves += [
                Curve(f"theory n={n}", idx, prediction["learn"][0, j].tolist(), "theory",
                      f"n={n}"),
                Curve(f"measured n={n}", idx, measurement["learn"][0, j].tolist(), "measured",
                      f"n={n}")]
        return Evidence(criteria, [curves, modes])


def _ridges(pool: _Pool) -> list[float]:
    """:data:`_RIDGES` in units of the mean eigenvalue scale tr(K)/M of the pool."""
    scale = float(pool.kernel.diagonal().mean())
    return [rel * scale for rel in _RIDGES]


def _predicted(budget: Budget, theory: Theory) -> Prediction:
    """``theory`` at every (ridge, n) of the budget from the pool's eigensystem: ``test``,
    ``train`` ``(ridges, ns)`` and ``learn`` ``(ridges, ns, top modes)``."""
    pool = _pool(budget)
    _, _, ns, _ = _SETTINGS[budget]
    grid = [[theory(pool.eigenvalues, pool.coefficients, n, ridge) for n in ns]
            for ridge in _ridges(pool)]
    return Prediction({
        "test": np.array([[p.test_mse for p in row] for row in grid]),
        "train": np.array([[p.train_mse for p in row] for row in grid]),
        "learn": np.array([[p.learnabilities[:_TOP_MODES] for p in row] for row in grid]),
    })
