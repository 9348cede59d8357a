"""Learning-rate sweeps: locate the optimal learning rate of a family of networks.

A sweep trains every setting ``s`` (a width, a depth, a richness γ) at every learning rate
``2**x`` of a grid, for several seeds, and records one objective per run: the **training
loss averaged over the run** (:func:`mean_training_loss`), less noisy than the last loss
and the objective of a fixed training budget. The optimum of one (seed, setting) is the
vertex of a least-squares parabola in ``(log₂ lr, log loss)`` through the grid points
around the smallest loss (:func:`optimal_log2_lr`); how it moves with ``log₂ s`` is the
slope of a line fitted per seed (:meth:`LrSweep.slopes`), and the seed spread of those
slopes gives a confidence interval (:func:`t_halfwidth`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch import nn

from learnmech.coordcheck import CoordCheck, verify_mup
from learnmech.data import Dataset, load
from learnmech.figures import Curve, Figure
from learnmech.loop import train_module
from learnmech.models import char_transformer, res_mlp
from learnmech.param import ModulePlan, parametrized
from learnmech.system import Digits, FashionMNIST
from learnmech.threads import one_torch_thread
from learnmech.train import Trajectory, resolve_device


def _parabola(log2_lrs: Sequence[float], losses: Sequence[float], half: int
              ) -> tuple[float, float]:
    """``(x*, log loss at x*)``: the vertex of the parabola fitted to the ``2·half + 1``
    grid points centred on the grid minimum, or the grid minimum itself (NaN, NaN)."""
    x = np.asarray(log2_lrs, dtype=float)
    y = np.log(np.asarray(losses, dtype=float))
    finite = np.isfinite(y)
    if not finite.any():
        return float("nan"), float("nan")
    i = int(np.argmin(np.where(finite, y, np.inf)))
    lo, hi = max(0, i - half), min(len(x), i + half + 1)
    window = slice(lo, hi)
    if i == 0 or i == len(x) - 1 or not finite[window].all() or hi - lo < 3:
        return float(x[i]), float(y[i])
    a, b, c = np.polyfit(x[window], y[window], 2)
    if a <= 0:
        return float(x[i]), float(y[i])
    vertex = -b / (2 * a)
    return float(vertex), float(c - b * b / (4 * a))


def optimal_log2_lr(log2_lrs: Sequence[float], losses: Sequence[float], half: int = 1
                    ) -> float:
    """``log₂`` of the loss-minimizing learning rate.

    ``log2_lrs``, ``losses``: shape ``(m,)`` (NaN: diverged). The vertex of the
    least-squares parabola in ``(log₂ lr, log loss)`` through the grid minimum and up to
    ``half`` neighbours on each side (all finite; ``half = 1`` interpolates three
    points); the grid point itself when the minimum lies on the grid's edge, next to a
    diverged run, or the fit is not convex; NaN if every run diverged."""
    return _parabola(log2_lrs, losses, half)[0]


def loss_at_optimum(log2_lrs: Sequence[float], losses: Sequence[float], half: int = 1
                    ) -> float:
    """The loss at :func:`optimal_log2_lr`, read off the same parabola (``exp`` of its
    value at the vertex); the grid minimum where no parabola is fitted; NaN if all
    diverged."""
    return float(np.exp(_parabola(log2_lrs, losses, half)[1]))


def mean_training_loss(traj: Trajectory) -> float:
    """The training loss averaged over the run's evaluations after step 0 (NaN if
    diverged)."""
    if traj.status != "completed":
        return float("nan")
    return float(traj["train_loss"].array()[1:].mean())


def t_halfwidth(samples: Sequence[float] | np.ndarray, confidence: float = 0.95,
                sides: int = 2) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``samples`` (shape
    ``(k,)``, independent seeds): ``t_{q, k−1}·s/√k`` with ``s`` the sample standard
    deviation and ``q = 1 − (1 − confidence)/sides``; NaN for fewer than two samples or
    a NaN sample."""
    v = np.asarray(samples, dtype=float)
    if v.size < 2:
        return float("nan")
    q = 1 - (1 - confidence) / sides
    return float(stats.t.ppf(q, v.size - 1) * np.std(v, ddof=1) / np.sqrt(v.size))


@dataclass
class LrSweep:
    """Objective values on a grid: ``losses[k, i, j]`` for seed ``k``, setting
    ``settings[i]`` (a width, depth or γ) and learning rate ``2**log2_lrs[j]`` (NaN:
    diverged). ``half`` is the half-width of the optimum's parabola fit."""

    quantity: str
    settings: list[float]
    log2_lrs: list[float]
    losses: np.ndarray
    run_ids: list[str] = field(default_factory=list)
    half: int = 1

    def __post_init__(self) -> None:
        self.losses = np.asarray(self.losses, dtype=float)
        if self.losses.ndim == 2:
            self.losses = self.losses[None]

    def optima(self) -> np.ndarray:
        """``log₂`` of the optimal learning rate, shape ``(seeds, settings)``."""
        return np.array([[optimal_log2_lr(self.log2_lrs, row, self.half) for row in seed]
                         for seed in self.losses])

    def optimal_losses(self) -> np.ndarray:
        """The loss at the optimum, shape ``(seeds, settings)``."""
        return np.array([[loss_at_optimum(self.log2_lrs, row, self.half) for row in seed]
                         for seed in self.losses])

    def slopes(self) -> np.ndarray:
        """Per seed, the least-squares slope of the optimal ``log₂ lr`` against ``log₂`` of
        the setting, shape ``(seeds,)`` (NaN where an optimum is NaN)."""
        x = np.log2(np.asarray(self.settings, dtype=float))
        out = []
        for row in self.optima():
            out.append(float(np.polyfit(x, row, 1)[0]) if np.isfinite(row).all()
                       else float("nan"))
        return np.array(out)

    def figure(self, title: str, label: Callable[[float], str]) -> Figure:
        """Loss against learning rate, averaged over seeds, one measured curve per
        setting."""
        fig = Figure(title, "learning rate η", "training loss (mean over the run)",
                     xscale="log", yscale="log")
        lrs = np.array([2.0**x for x in self.log2_lrs])
        for s, row in zip(self.settings, self.losses.mean(axis=0), strict=True):
            ok = np.isfinite(row)
            fig.curves.append(Curve(label(s), lrs[ok].tolist(), row[ok].tolist(), "measured",
                                    label(s)))
        return fig


# ---- the experiments --------------------------------------------------------------------


def _lr_sweep(
    data: Digits | FashionMNIST, name: str, settings: Sequence[int], log2_lrs: Sequence[float],
    steps: int, seeds: Sequence[int], half: int,
    build: Callable[[Dataset, int, torch.Generator], tuple[nn.Module, ModulePlan]],
) -> LrSweep:
    """Mean training loss of ``build(data, setting, generator)`` over (seed × setting ×
    learning rate), full-batch Adam for ``steps`` steps on the training set of ``data``
    with cross-entropy; seed ``k`` seeds the generator of every network."""
    device = resolve_device("auto")
    d = load(data).to(device, torch.float32)
    x, y = d.x_train, d.y_train
    losses = np.full((len(seeds), len(settings), len(log2_lrs)), np.nan)
    with one_torch_thread():
        for k, seed in enumerate(seeds):
            for i, setting in enumerate(settings):
                for j, lr in enumerate(log2_lrs):
                    model, plan = build(d, setting, torch.Generator().manual_seed(seed))
                    model.to(device)
                    result = train_module(model, plan.make_optimizer(model, 2.0**lr),
                                          lambda _: (x, y), steps)
                    if result.status == "completed":
                        losses[k, i, j] = float(np.mean(result.losses[1:]))
    return LrSweep(name, [float(v) for v in settings], [float(v) for v in log2_lrs], losses,
                   half=half)


def residual_lr_sweep(
    data: Digits | FashionMNIST, width: int, depths: Sequence[int], log2_lrs: Sequence[float],
    steps: int, rule: str | None, seeds: Sequence[int] = (0,), half: int = 1,
) -> LrSweep:
    """:func:`_lr_sweep` of :func:`learnmech.models.res_mlp` (one-layer branches, SP in
    width, depth rule ``rule``: ``"depth-mup"`` or ``None`` for a plain ResNet) over
    depths."""
    return _lr_sweep(data, "depth", depths, log2_lrs, steps, seeds, half,
                     lambda d, depth, g: res_mlp(d.d_in, d.d_out, width, depth, "sp", "adam",
                                                 depth_rule=rule, generator=g))


def _mlp3(d_in: int, d_out: int) -> Callable[[int], nn.Module]:
    """``width ↦`` the 3-layer ReLU MLP ``d_in → width → width → d_out`` (weights ``0``,
    ``2``, ``4``: input, hidden, readout)."""
    def make(width: int) -> nn.Module:
        return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width),
                             nn.ReLU(), nn.Linear(width, d_out))

    return make


def mlp_lr_sweep(
    data: Digits | FashionMNIST, widths: Sequence[int], log2_lrs: Sequence[float], steps: int,
    parametrization: str, seeds: Sequence[int] = (0,), half: int = 1,
) -> LrSweep:
    """:func:`_lr_sweep` over widths of the 3-layer ReLU MLP ``d → n → n → k`` in
    ``parametrization`` (relative to ``widths[0]``, Adam) with its readout weight
    initialized at zero.

    The zero readout (what the ``mup`` package of Yang et al. 2022 recommends,
    ``readout_zero_init``) makes the output at initialization 0 at every width, its
    infinite-width value: Table 3's random readout (variance ∝ 1/width²) leaves initial
    logits of size ∝ √(widths[0]/width), a finite-width transient."""
    return _lr_sweep(data, "width", widths, log2_lrs, steps, seeds, half,
                     lambda d, width, g: parametrized(
                         _mlp3(d.d_in, d.d_out), width, parametrization, "adam",
                         base_width=widths[0], zero_init=("4.weight",), generator=g))


def mlp_coordcheck(data: Digits | FashionMNIST, widths: Sequence[int], parametrization: str,
                   steps: int = 3, lr: float = 0.01, n: int = 256) -> CoordCheck:
    """The μP verifier on the 3-layer ReLU MLP ``d → n → n → k`` in ``parametrization``
    (relative to ``widths[0]``, Adam, Table 3's random readout), trained ``steps`` steps at
    ``lr`` on the first ``n`` training examples of ``data``: per layer, the width exponents
    of activations, their change and ``‖ΔW‖/‖W‖`` (:func:`learnmech.coordcheck.verify_mup`)."""
    d = load(data)
    mlp = _mlp3(d.d_in, d.d_out)

    def factory(width: int) -> tuple[nn.Module, ModulePlan]:
        return parametrized(mlp, width, parametrization, "adam", base_width=widths[0],
                            generator=torch.Generator().manual_seed(0))

    with one_torch_thread():
        return verify_mup(factory, (d.x_train[:n], d.y_train[:n]), list(widths), "adam",
                          lr=lr, steps=steps)


@dataclass(frozen=True)
class TransformerSetup:
    """A μTransfer experiment on a character transformer: widths, the learning-rate grid
    (``log₂``), blocks, heads, context, batch size, Adam steps and the seeds."""

    widths: tuple[int, ...] = (128, 256, 512, 1024)
    log2_lrs: tuple[float, ...] = tuple(float(x) for x in np.arange(-14.0, -3.5))
    depth: int = 4
    heads: int = 4
    context: int = 128
    batch: int = 64
    steps: int = 1000
    seeds: tuple[int, ...] = (0,)


def transformer_sweep(parametrization: str, setup: TransformerSetup = TransformerSetup(),
                      text: str | None = None, half: int = 1) -> LrSweep:
    """Mean training loss (the minibatch losses averaged over the run after step 0) of the
    char transformer over (seed × width × learning rate); the runs of one seed see the
    same batches. ``text`` defaults to all of Shakespeare (:mod:`learnmech.data.text`)."""
    from learnmech.data.text import CharCorpus, shakespeare_text

    corpus = CharCorpus.from_text(text if text is not None else shakespeare_text())
    device = resolve_device("auto")
    losses = np.full((len(setup.seeds), len(setup.widths), len(setup.log2_lrs)), np.nan)
    for k, seed in enumerate(setup.seeds):
        gen = torch.Generator().manual_seed(seed)
        batches = []
        for _ in range(setup.steps):
            xb, yb = corpus.batch(setup.batch, setup.context, gen)
            batches.append((xb.to(device), yb.to(device)))
        for i, width in enumerate(setup.widths):
            for j, x in enumerate(setup.log2_lrs):
                model, plan = char_transformer(
                    len(corpus.vocab), setup.context, width, setup.depth, setup.heads,
                    parametrization, "adam", base_width=setup.widths[0],
                    generator=torch.Generator().manual_seed(seed))
                model.to(device)
                result = train_module(model, plan.make_optimizer(model, 2.0**x),
                                      batches.__getitem__, setup.steps)
                if result.status == "completed":
                    losses[k, i, j] = float(np.mean(result.losses[1:]))
    return LrSweep("width", [float(w) for w in setup.widths], list(setup.log2_lrs), losses,
                   half=half)
