"""Theory twins: instruments that read any model in any training loop, each reading set
beside what a theory predicts for it.

A twin sees what every training loop has: the model, a way to compute the loss on a
batch, the batch, the optimizer and the step (a :class:`Context`). It returns
:class:`Reading` rows ``(step, probe, layer, value, theory, ratio, regime)``; ``layer`` is
``''`` for a whole-model reading. :class:`~learnmech.monitor.Monitor` runs them beside a
user's loop; the framework callbacks in :mod:`learnmech.integrations` run the Monitor.

The twins (``ratio = value / theory`` unless said otherwise):

* ``sharpness``: top eigenvalue of the loss Hessian on the probe batch, by warm-started
  Lanczos, in the geometry of the optimizer in use, against that optimizer's stability
  threshold (:func:`stability_twin`): GD ``2/η``, heavy ball ``(2 + 2β)/η``, Nesterov
  ``(2 + 2β)/((1 + 2β)η)``, Adam/AdamW ``(2 + 2β₁)/((1 − β₁)η)`` for the preconditioned
  sharpness ``λ_max(P⁻¹H)`` (Cohen et al. 2021, 2022). Regimes: ``below edge``
  (ratio < 0.9), ``at edge`` (0.9–1.1), ``unstable`` (> 1.1).
* ``layer_sharpness``: the same for each layer's block of the Hessian (the layer's
  parameters alone), against the same threshold: where the curvature sits.
* ``update_rms``: per layer, the relative size of the last update ``‖ΔW‖_F/‖W‖_F`` and
  (observable ``output_change``) of the change it makes to the layer's output on the probe
  batch, ``rms(ΔW x)/rms(W x)``. μP's prediction (Yang & Hu 2021; the spectral condition
  of Yang, Simon & Bernstein 2023) is that every layer's relative change is of one order,
  Θ(1) in width; the twin is the median over layers, and a layer more than 10× off it is
  ``dominant`` or ``frozen`` (in SP at large width the hidden layers freeze).
* ``noise_scale``: the simple noise scale ``B_simple = tr Σ / |G|²`` (McCandlish et al.
  2018) of the batch in use, from micro-batch gradients with the unbiased estimators of
  their appendix A.1; the twin is the batch size ``B`` in use, ``ratio = B / B_simple``:
  ``linear scaling`` below 1 (a larger batch cuts the steps almost proportionally),
  ``diminishing returns`` above.
* ``kernel_movement``: ``‖K_t − K_0‖_F / ‖K_0‖_F`` of the empirical NTK on the probe
  examples since the first reading (of the scalar output ``⟨f(x), u⟩`` for a fixed random
  unit ``u``, so any output shape works); the lazy-limit twin is 0 (the kernel frozen at
  init, Jacot et al. 2018; Chizat et al. 2019): ``lazy`` up to 0.1, ``rich`` above. Its
  ``ratio`` is NaN (the twin is 0).

Every twin leaves the model's parameters, buffers, gradients and mode as it found them:
the loss and outputs are evaluated with :func:`torch.func.functional_call` on copies.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from learnmech.errors import InputError
from learnmech.linalg import HessianOperator, PreconditionedOperator, adam_preconditioner
from learnmech.probes.base import optimizer_weights
from learnmech.probes.curvature import TopEigenvalue
from learnmech.theory.stability import Method, threshold

Batch = Any
"""An ``(inputs, targets)`` tuple, a list, or a mapping of tensors (a Hugging Face batch);
every tensor has the examples along its first dimension."""

BatchLoss = Callable[[nn.Module, Batch], Tensor]
OutputFn = Callable[[nn.Module, Batch], Tensor]

EDGE_BAND = (0.9, 1.1)
"""Sharpness / threshold ratios counted as ``at edge``: the band within which full-batch
GD hovers at the edge of stability (Cohen et al. 2021 report 2/η within a few per cent)."""
BALANCE_FACTOR = 10.0
"""How far (×) a layer's relative change may sit from the median before it is flagged."""
LAZY_MOVEMENT = 0.1
"""Relative kernel change up to which a run counts as lazy."""


@dataclass(frozen=True)
class Reading:
    """One row of a Monitor's frame."""

    step: int
    probe: str
    layer: str
    value: float
    theory: float
    ratio: float
    regime: str

    @property
    def key(self) -> str:
        """The name loggers get: ``learnmech/<probe>`` or ``learnmech/<probe>/<layer>``."""
        return f"learnmech/{self.probe}" + (f"/{self.layer}" if self.layer else "")


@dataclass
class Context:
    """What a twin sees: the model, the loss of a batch, the batch, the optimizer, the step,
    and the fixed probe batch (the first batch seen unless the user gives one)."""

    model: nn.Module
    batch_loss: BatchLoss
    output_fn: OutputFn | None
    optimizer: torch.optim.Optimizer
    batch: Batch
    probe_batch: Batch
    step: int
    seed: int


# ---- batches ---------------------------------------------------------------------------


def batch_size(batch: Batch) -> int:
    """The number of examples in a batch (the first dimension of its first tensor)."""
    for t in _tensors(batch):
        return int(t.shape[0]) if t.ndim else 1
    raise InputError("batch", type(batch).__name__, "a tuple, list or mapping of tensors")


def slice_batch(batch: Batch, part: slice) -> Batch:
    """The examples ``part`` of every tensor in ``batch`` (other leaves kept as they are)."""
    if isinstance(batch, Tensor):
        return batch[part] if batch.ndim else batch
    if isinstance(batch, Mapping):
        return {k: slice_batch(v, part) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(slice_batch(v, part) for v in batch)
    return batch


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` with every tensor detached and moved to ``device``."""
    if isinstance(batch, Tensor):
        return batch.detach().to(device)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _tensors(batch: Batch) -> Iterable[Tensor]:
    if isinstance(batch, Tensor):
        yield batch
    elif isinstance(batch, Mapping):
        for v in batch.values():
            yield from _tensors(v)
    elif isinstance(batch, tuple | list):
        for v in batch:
            yield from _tensors(v)


# ---- functional evaluation -------------------------------------------------------------


class _Scalar(nn.Module):
    """``batch ↦ batch_loss(model, batch)`` as a module (parameters named ``model.*``), so
    that :class:`~learnmech.linalg.HessianOperator` can differentiate any loss."""

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module, Batch], Tensor]) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, batch: Batch) -> Tensor:
        return self.fn(self.model, batch)


def _state(model: nn.Module) -> dict[str, Tensor]:
    """Detached copies of the parameters and buffers, keyed as in a :class:`_Scalar`."""
    out = {f"model.{n}": p.detach() for n, p in model.named_parameters()}
    out.update({f"model.{n}": b.detach().clone() for n, b in model.named_buffers()})
    return out


def _evaluate(fn: Callable[[nn.Module, Batch], Tensor], model: nn.Module, batch: Batch,
              state: dict[str, Tensor]) -> Tensor:
    """``fn(model, batch)`` with the model's parameters and buffers swapped for ``state``
    for the duration of the call (:func:`torch.func.functional_call`)."""
    return functional_call(_Scalar(model, fn), state, (batch,))


def _gradient(fn: Callable[[nn.Module, Batch], Tensor], model: nn.Module, batch: Batch,
              names: Sequence[str]) -> list[Tensor]:
    """``∇ fn(model, batch)`` with respect to the parameters ``names`` (zeros where the
    value does not depend on one), the model untouched."""
    state = _state(model)
    leaves = [state[f"model.{n}"].clone().requires_grad_(True) for n in names]
    state.update({f"model.{n}": leaf for n, leaf in zip(names, leaves, strict=True)})
    grads = torch.autograd.grad(_evaluate(fn, model, batch, state), leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves, strict=True)]


def _trainable(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


# ---- the optimizer's stability threshold -------------------------------------------------


@dataclass(frozen=True)
class StabilityTwin:
    """The optimizer's stability threshold and the geometry its sharpness is read in.

    ``scale`` is the diagonal ``P`` of the preconditioned operator ``P^{-1/2} H P^{-1/2}``
    (``None`` for the plain Hessian); ``shift`` is added to the eigenvalue (SGD's
    L2 weight decay adds ``λ_wd I`` to the Hessian). ``threshold`` is NaN where no theory
    is known for the optimizer, and for Adam before its first update.
    """

    method: str
    threshold: float
    scale: Tensor | None
    shift: float
    describe: str


def stability_twin(optimizer: torch.optim.Optimizer, model: nn.Module,
                   names: Sequence[str] | None = None) -> StabilityTwin:
    """Read the stability threshold of ``optimizer`` as it is configured now.

    ``SGD``: learning rate ``η`` (the first group's, as a scheduler left it), momentum
    ``β`` (heavy ball, or Nesterov), dampening ``d`` (the step is ``η(1 − d)`` on the
    gradient term); groups with other learning rates ``η_g`` precondition by
    ``P = η/η_g``. ``Adam``/``AdamW``: β₁ and the preconditioner of
    :func:`~learnmech.linalg.adam_preconditioner`.
    """
    names = list(names) if names is not None else _trainable(model)
    eta = float(optimizer.defaults.get("lr", math.nan))
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        beta1 = float(optimizer.defaults["betas"][0])
        p = adam_preconditioner(optimizer, model, names)
        lim = threshold("adam", eta, beta1) if p is not None else math.nan
        return StabilityTwin("adam", lim, p, 0.0,
                             f"{type(optimizer).__name__} (2+2β₁)/((1−β₁)η), β₁={beta1:g}, "
                             f"η={eta:g}")
    if isinstance(optimizer, torch.optim.SGD):
        group = optimizer.param_groups[0]
        eta = float(group["lr"])  # the current rate, after any scheduler
        beta, damp = float(group["momentum"]), float(group["dampening"])
        nesterov = bool(group["nesterov"])
        wd = float(group["weight_decay"])
        lrs = _lr_vector(optimizer, model, names)
        scale = None if bool((lrs == lrs[0]).all()) else eta / lrs
        step = eta * (1.0 - damp) if beta > 0 else eta
        if beta == 0:
            return StabilityTwin("gd", threshold("gd", step), scale, wd, f"SGD 2/η, η={eta:g}")
        method: Method = "nesterov" if nesterov else "momentum"
        formula = "(2+2β)/((1+2β)η)" if nesterov else "(2+2β)/η"
        return StabilityTwin(method, threshold(method, step, beta), scale, wd,
                             f"SGD {method} {formula}, β={beta:g}, η={eta:g}")
    return StabilityTwin(type(optimizer).__name__, math.nan, None, 0.0,
                         f"no stability theory for {type(optimizer).__name__}")


def _lr_vector(optimizer: torch.optim.Optimizer, model: nn.Module,
               names: Sequence[str]) -> Tensor:
    """Each chosen parameter's group learning rate, one entry per scalar parameter."""
    lr_of = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    first = named[names[0]]
    return torch.cat([torch.full((named[n].numel(),), lr_of.get(id(named[n]), math.nan),
                                 dtype=first.dtype, device=first.device) for n in names])


def edge_regime(ratio: float) -> str:
    """``below edge`` / ``at edge`` / ``unstable`` for a sharpness-to-threshold ratio."""
    if not math.isfinite(ratio):
        return "no threshold"
    if ratio < EDGE_BAND[0]:
        return "below edge"
    return "at edge" if ratio <= EDGE_BAND[1] else "unstable"


# ---- the twins -------------------------------------------------------------------------


class SharpnessTwin:
    """Top eigenvalue of the probe batch's Hessian against the optimizer's threshold.

    Lanczos stops at a relative residual ``tol``; the eigenvalue is then accurate to about
    ``tol²/gap`` relative (1e-6 at the default for a relative gap of 1).
    """

    name = "sharpness"

    def __init__(self, tol: float = 1e-3, max_iter: int = 100) -> None:
        self.top = TopEigenvalue(tol, max_iter)

    def __call__(self, ctx: Context) -> list[Reading]:
        return [self._read(ctx, "", _trainable(ctx.model))]

    def _read(self, ctx: Context, layer: str, names: Sequence[str]) -> Reading:
        twin = stability_twin(ctx.optimizer, ctx.model, names)
        if twin.method == "adam" and twin.scale is None:
            return Reading(ctx.step, self.name, layer, math.nan, math.nan, math.nan,
                           "before the first Adam update")
        wrapped = _Scalar(ctx.model, ctx.batch_loss)
        op = HessianOperator(wrapped, _identity_loss, (ctx.probe_batch, _NO_TARGET),
                             params=[f"model.{n}" for n in names])
        matrix = PreconditionedOperator(op, twin.scale) if twin.scale is not None else op
        value = self.top(matrix, layer, seed=ctx.seed) + twin.shift
        ratio = value / twin.threshold
        return Reading(ctx.step, self.name, layer, value, twin.threshold, ratio,
                       f"{edge_regime(ratio)} ({twin.describe})")


class LayerSharpnessTwin(SharpnessTwin):
    """:class:`SharpnessTwin` for each layer's diagonal block of the Hessian."""

    name = "layer_sharpness"

    def __call__(self, ctx: Context) -> list[Reading]:
        return [self._read(ctx, layer, names) for layer, names in _layers(ctx.model).items()]


def _layers(model: nn.Module) -> dict[str, list[str]]:
    """Trainable parameter names grouped by the module that owns them."""
    out: dict[str, list[str]] = {}
    for name in _trainable(model):
        owner = name.rpartition(".")[0]
        out.setdefault(owner, []).append(name)
    return out


_NO_TARGET = torch.zeros(1)


def _identity_loss(value: Tensor, _: Tensor) -> Tensor:
    return value


class UpdateTwin:
    """Per layer: ``‖ΔW‖/‖W‖`` of the last update and ``rms(ΔW x)/rms(W x)`` on the probe
    batch, against the median over layers (μP: every layer's change is Θ(1)).

    Needs the parameters just before the update: :meth:`snapshot` is called by the
    Monitor one step before each reading (and at the start).
    """

    name = "update_rms"

    def __init__(self) -> None:
        self._before: dict[str, Tensor] = {}

    def snapshot(self, model: nn.Module) -> None:
        self._before = {n: _weight(m).clone() for n, m in _weighted(model)}

    def __call__(self, ctx: Context) -> list[Reading]:
        modules = [(n, m) for n, m in _weighted(ctx.model) if n in self._before]
        if not modules:
            return []
        inputs = _layer_inputs(ctx, [m for _, m in modules])
        weight_change, output_change = {}, {}
        for (name, module), x in zip(modules, inputs, strict=True):
            w = _weight(module)
            dw = w - self._before[name]
            weight_change[name] = float(dw.norm() / w.norm())
            if x is not None:
                out, dout = _apply(module, x, w), _apply(module, x, dw)
                output_change[name] = float(_rms(dout) / _rms(out))
        scheme = parametrization(ctx.optimizer, [m for _, m in modules])
        return (_balanced(ctx.step, "update_rms", weight_change, scheme)
                + _balanced(ctx.step, "output_change", output_change, scheme))


def _weighted(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose weight acts linearly on their input: ``nn.Linear``, ``nn.Conv1d/2d``,
    ``nn.Embedding`` and Hugging Face's ``Conv1D`` (``x @ W`` with ``W`` of shape
    ``(in, out)``)."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)
    return [(n, m) for n, m in model.named_modules()
            if (isinstance(m, kinds) or _is_hf_conv1d(m))
            and bool(getattr(m.weight, "requires_grad", False))]


def _is_hf_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None


def _weight(module: nn.Module) -> Tensor:
    weight = module.weight
    assert isinstance(weight, Tensor)
    return weight.detach()


def _apply(module: nn.Module, x: Tensor, w: Tensor) -> Tensor:
    if isinstance(module, nn.Linear):
        return torch.nn.functional.linear(x, w)
    if isinstance(module, nn.Embedding):
        return torch.nn.functional.embedding(x, w)
    if _is_hf_conv1d(module):
        return x @ w
    assert isinstance(module, nn.Conv1d | nn.Conv2d)
    return module._conv_forward(x, w, None)


def _layer_inputs(ctx: Context, modules: Sequence[nn.Module]) -> list[Tensor | None]:
    """The input each module receives on the probe batch (one functional forward)."""
    seen: dict[int, Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], Tensor) and id(module) not in seen:
            seen[id(module)] = args[0].detach()

    handles = [m.register_forward_pre_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            _evaluate(ctx.batch_loss, ctx.model, ctx.probe_batch, _state(ctx.model))
    finally:
        for h in handles:
            h.remove()
    return [seen.get(id(m)) for m in modules]


def _rms(t: Tensor) -> Tensor:
    return t.double().pow(2).mean().sqrt()


def parametrization(optimizer: torch.optim.Optimizer, modules: Sequence[nn.Module]) -> str:
    """What the optimizer's groups say of the parametrization, in words.

    ``SP``: one learning rate for every weight. ``μP-like``: the input weights (the first
    module, and embeddings) train at a larger rate than the rest, whose rates scale as
    ``1/fan_in`` (``lr × fan_in`` equal within 10 %: the Adam μP rule of Yang et al. 2022).
    Otherwise ``per-layer learning rates``. One width cannot show how the rates scale with
    width, and initial scales are not readable after training starts, so this is a
    description of the optimizer, not a verification (that is :func:`verify_mup`)."""
    lr_of = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    rates = [(lr_of[id(m.weight)], _fan_in(m), i == 0 or isinstance(m, nn.Embedding))
             for i, m in enumerate(modules) if id(m.weight) in lr_of]
    if len({lr for lr, _, _ in rates}) <= 1:
        return "SP (one learning rate)"
    inner = [lr * fan for lr, fan, first in rates if not first]
    outer = [lr for lr, _, first in rates if first]
    inner_lr = [lr for lr, _, first in rates if not first]
    if inner and outer and min(outer) > max(inner_lr) and max(inner) <= 1.1 * min(inner):
        return "μP-like (hidden learning rates ∝ 1/fan_in)"
    return "per-layer learning rates"


def _fan_in(module: nn.Module) -> int:
    w = _weight(module)
    if isinstance(module, nn.Embedding):
        return 1
    if _is_hf_conv1d(module):
        return int(w.shape[0])
    return int(w[0].numel())


def _balanced(step: int, probe: str, values: dict[str, float], scheme: str = ""
              ) -> list[Reading]:
    if not values:
        return []
    median = statistics.median(values.values())
    rows = []
    for layer, value in values.items():
        ratio = value / median if median > 0 else math.nan
        regime = ("balanced" if 1 / BALANCE_FACTOR <= ratio <= BALANCE_FACTOR
                  else "dominant" if ratio > BALANCE_FACTOR else "frozen")
        rows.append(Reading(step, probe, layer, value, median, ratio,
                            f"{regime} ({scheme})" if scheme else regime))
    return rows


class NoiseScaleTwin:
    """``B_simple`` of the batch in use from ``micro_batches`` micro-batch gradients.

    With ``m`` micro-batches of ``b`` examples (``B' = mb``), gradients ``g_j`` and their
    mean ``G``: ``E[|g_j|²] = |𝒢|² + tr Σ/b`` and ``E[|G|²] = |𝒢|² + tr Σ/B'``, so
    ``tr Σ ≈ (mean_j |g_j|² − |G|²)/(1/b − 1/B')`` and ``|𝒢|² ≈ |G|² − tr Σ/B'``
    (unbiased; ``b = 1`` gives the per-example sample covariance). Parameters in groups
    with other learning rates are weighted by ``η_g/η``. If ``|𝒢|²`` is not resolved
    (estimate ≤ 0) the value is ``inf``: noise dominates.
    """

    name = "noise_scale"

    def __init__(self, micro_batches: int = 16) -> None:
        if micro_batches < 2:
            raise InputError("micro_batches", micro_batches, "an integer ≥ 2")
        self.micro_batches = micro_batches

    def __call__(self, ctx: Context) -> list[Reading]:
        n = batch_size(ctx.batch)
        m = min(self.micro_batches, n)
        if m < 2:
            return [Reading(ctx.step, self.name, "", math.nan, n, math.nan,
                            "a batch of one example has no noise estimate")]
        b = n // m
        names = _trainable(ctx.model)
        rates = optimizer_weights(ctx.model, ctx.optimizer)
        weight = [rates[k] for k in names]
        total = [torch.zeros(p.shape, dtype=torch.float64)
                 for p in (dict(ctx.model.named_parameters())[k] for k in names)]
        squares = 0.0
        for j in range(m):
            micro = slice_batch(ctx.batch, slice(j * b, (j + 1) * b))
            for i, g in enumerate(_gradient(ctx.batch_loss, ctx.model, micro, names)):
                g = g.detach().double().cpu()
                total[i] += g
                squares += weight[i] * float(g.pow(2).sum())
        mean_sq = sum(weight[i] * float((t / m).pow(2).sum()) for i, t in enumerate(total))
        big = m * b
        trace = (squares / m - mean_sq) / (1 / b - 1 / big)
        signal = mean_sq - trace / big
        value = trace / signal if signal > 0 else math.inf
        ratio = n / value
        regime = "linear scaling" if ratio < 1 else "diminishing returns"
        return [Reading(ctx.step, self.name, "", value, float(n), ratio,
                        f"{regime} (batch {n} vs B_simple)")]


class KernelMovementTwin:
    """Relative change of the empirical NTK on ``examples`` probe examples since the first
    reading, against the lazy limit (0)."""

    name = "kernel_movement"

    def __init__(self, examples: int = 8) -> None:
        self.examples = examples
        self._k0: Tensor | None = None
        self._u: Tensor | None = None

    def __call__(self, ctx: Context) -> list[Reading]:
        if ctx.output_fn is None:
            raise InputError("output_fn", None,
                             "a function (model, batch) -> outputs for kernel_movement")
        k = self._kernel(ctx)
        if self._k0 is None:
            self._k0 = k
        moved = float((k - self._k0).norm() / self._k0.norm())
        regime = "lazy" if moved <= LAZY_MOVEMENT else "rich"
        return [Reading(ctx.step, self.name, "", moved, 0.0, math.nan,
                        f"{regime} (lazy limit: kernel frozen at init)")]

    def _kernel(self, ctx: Context) -> Tensor:
        """``K = J Jᵀ`` with ``J_i = ∇_θ ⟨f(x_i), u⟩`` on the probe examples."""
        assert ctx.output_fn is not None
        output_fn = ctx.output_fn
        n = min(self.examples, batch_size(ctx.probe_batch))
        names = _trainable(ctx.model)
        rows = []
        for i in range(n):
            example = slice_batch(ctx.probe_batch, slice(i, i + 1))

            def scalar(model: nn.Module, batch: Batch) -> Tensor:
                out = output_fn(model, batch)
                if self._u is None or self._u.shape != out.shape[1:]:
                    gen = torch.Generator().manual_seed(ctx.seed)
                    u = torch.randn(out.shape[1:], generator=gen, dtype=torch.float64)
                    self._u = (u / u.norm()).to(out)
                return (out[0] * self._u.to(out)).sum()

            grads = _gradient(scalar, ctx.model, example, names)
            rows.append(torch.cat([g.reshape(-1).double() for g in grads]))
        j = torch.stack(rows)
        return j @ j.T


TWINS: dict[str, Callable[[], Any]] = {
    "sharpness": SharpnessTwin,
    "layer_sharpness": LayerSharpnessTwin,
    "update_rms": UpdateTwin,
    "noise_scale": NoiseScaleTwin,
    "kernel_movement": KernelMovementTwin,
}
"""The twins by name, as ``Monitor(probes=[...])`` takes them."""
