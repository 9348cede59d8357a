"""The μP verifier: does a model family train with width-independent coordinates?

:func:`verify_mup` takes any factory ``width -> nn.Module`` (hand-written μP included),
trains each width for a few steps on the same batch, and measures on a fixed probe batch:

* ``activation``: the RMS coordinate ``‖h‖/√numel`` of every module's output after the
  steps (and of the model's output, named ``(output)``);
* ``change``: the RMS coordinate of ``h_t − h_0``, how far the features moved;
* ``update``: ``‖W_t − W_0‖ / ‖W_0‖`` for every weight matrix (tensors of more than two
  dims flattened to ``(dim 0, rest)``): spectral norms for *matrix-like* weights, both of
  whose dimensions grow with width, and Frobenius norms for *vector-like* ones (an
  embedding or readout: one dimension fixed; Yang & Hu 2021's classification). For a
  vector-like ``V × n`` weight the spectral norm of its random init is ``σ(√n + √V)``
  (Bai–Yin), so its ratio drifts with ``n`` until ``n ≫ V`` while the entrywise (RMS)
  statement of μP, ``ΔW_ij = Θ(W_ij)``, holds at every width.

For each quantity it fits the exponent ``p`` of ``value ∝ width^p`` by least squares on a
log-log scale. Under μP every one of them is ``Θ(1)`` after the first step (Yang & Hu 2021;
Yang et al. 2022): activations neither blow up nor vanish, features move by ``Θ(1)``
(feature learning) and ``‖ΔW‖₂`` is as large as ``‖W‖₂``, both ``Θ(√(fan_out/fan_in))``
(the spectral condition of Yang, Simon & Bernstein 2023). So the expected exponent is 0
and a layer passes when ``|p| ≤ tolerance``; it *blows up* when ``p > tolerance`` and
*vanishes* when ``p < −tolerance``. (At initialization, before any step, the readout and
the μP attention logits are smaller, ``∝ 1/√width``: the check looks after the steps.)

Unlike a visual coordinate check, the verdict names the offending layers. The verifier
does not care how μP was implemented; it only trains the models it is given. It sees
module outputs through forward hooks, so a computation done functionally inside a parent
module (``F.linear(x, layer.weight)``) is not measured as a layer of its own; the model's
output and every weight's ``‖ΔW‖/‖W‖`` always are. Attention logits are seen however they
are computed (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, a softmax over
``(T, T)`` scores), as ``<module>.attention_logits``; a module whose class name says
attention but whose logits were not seen makes the verdict ``inconclusive``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from learnmech.errors import InputError
from learnmech.figures import Curve, Figure
from learnmech.linalg import spectral_norm
from learnmech.loop import Divergence, default_loss, train_module
from learnmech.param import ModulePlan, canonical_name

Metric = Literal["activation", "change", "update"]
METRICS: tuple[Metric, ...] = ("activation", "change", "update")
OUTPUT = "(output)"
Factory = Callable[[int], "nn.Module | tuple[nn.Module, ModulePlan]"]
OptimizerSpec = str | Callable[[nn.Module], torch.optim.Optimizer]


@dataclass(frozen=True)
class LayerVerdict:
    """The fitted width exponent of one quantity of one layer, and its verdict."""

    layer: str
    metric: Metric
    exponent: float
    expected: float
    tolerance: float
    values: tuple[float, ...]

    @property
    def passed(self) -> bool:
        return abs(self.exponent - self.expected) <= self.tolerance

    @property
    def problem(self) -> str:
        """``ok``, ``blows up`` or ``vanishes``."""
        if self.passed:
            return "ok"
        return "blows up" if self.exponent > self.expected else "vanishes"


@dataclass(frozen=True)
class CoordCheck:
    """The verifier's result: one :class:`LayerVerdict` per layer and quantity.

    ``skipped`` lists quantities that could not be fitted (zero at some width, e.g. a
    parameter that received no gradient); ``diverged`` the widths whose training diverged
    (then the check fails); ``attention`` the attention-logit call sites observed and
    ``unobserved`` the attention modules whose logits the verifier could not see (then the
    verdict is ``inconclusive``, never a pass).
    """

    widths: tuple[int, ...]
    steps: int
    verdicts: tuple[LayerVerdict, ...]
    skipped: tuple[str, ...] = ()
    diverged: tuple[int, ...] = ()
    attention: tuple[str, ...] = ()
    unobserved: tuple[str, ...] = ()

    @property
    def verdict(self) -> Literal["pass", "fail", "inconclusive"]:
        if self.diverged or self.failures:
            return "fail"
        return "inconclusive" if self.unobserved else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failures(self) -> list[LayerVerdict]:
        return [v for v in self.verdicts if not v.passed]

    def offending_layers(self) -> list[str]:
        """Names of the layers with at least one failing quantity, in model order."""
        return list(dict.fromkeys(v.layer for v in self.failures))

    def exponents(self, metric: Metric) -> dict[str, float]:
        return {v.layer: v.exponent for v in self.verdicts if v.metric == metric}

    def summary(self) -> str:
        """One line: passes, or which layers blow up or vanish."""
        if self.diverged:
            return f"FAIL: training diverged at widths {list(self.diverged)}"
        if self.verdict == "inconclusive":
            return (f"INCONCLUSIVE: the attention logits of {list(self.unobserved)} were not "
                    "observed (not scaled_dot_product_attention, nn.MultiheadAttention or a "
                    "softmax over (T, T) scores), so μP cannot be confirmed there")
        if self.passed:
            return (f"PASS: all {len(self.verdicts)} width exponents within tolerance "
                    f"(widths {list(self.widths)}, {self.steps} steps)")
        parts = [f"{v.layer} {v.metric} {v.problem} (width^{v.exponent:+.2f})"
                 for v in self.failures]
        return "FAIL: " + "; ".join(parts)

    def table(self) -> str:
        """A plain-text table: layer, quantity, exponent, expected, verdict."""
        rows = [f"{'layer':<34} {'quantity':<10} {'exponent':>9} {'expected':>9}  verdict"]
        for v in self.verdicts:
            rows.append(f"{v.layer:<34} {v.metric:<10} {v.exponent:>+9.3f} "
                        f"{v.expected:>+9.2f}  {v.problem}")
        return "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "summary": self.summary(),
            "attention_sites": list(self.attention),
            "unobserved_attention": list(self.unobserved),
            "widths": list(self.widths),
            "steps": self.steps,
            "offending_layers": self.offending_layers(),
            "diverged": list(self.diverged),
            "skipped": list(self.skipped),
            "layers": [
                {"layer": v.layer, "quantity": v.metric, "exponent": v.exponent,
                 "expected": v.expected, "tolerance": v.tolerance, "verdict": v.problem,
                 "values": list(v.values)}
                for v in self.verdicts
            ],
        }

    def figures(self, title: str = "") -> list[Figure]:
        """Exponent plots: per quantity, the fitted exponent of every layer (x = the layer's
        index in model order, named in the curve labels) against the tolerance band."""
        out = []
        prefix = f"{title}: " if title else ""
        for metric in METRICS:
            rows = [v for v in self.verdicts if v.metric == metric]
            if not rows:
                continue
            fig = Figure(f"{prefix}width exponent of {metric}", "layer (model order)",
                         f"fitted exponent p of {metric} ∝ width^p",
                         hlines=[(rows[0].expected + rows[0].tolerance, "tolerance"),
                                 (rows[0].expected - rows[0].tolerance, "tolerance")])
            for status in ("ok", "blows up", "vanishes"):
                pts = [(i, v) for i, v in enumerate(rows) if v.problem == status]
                if pts:
                    label = status if status == "ok" else (
                        f"{status}: " + ", ".join(v.layer for _, v in pts[:6])
                        + (" …" if len(pts) > 6 else ""))
                    fig.curves.append(Curve(label, [float(i) for i, _ in pts],
                                            [v.exponent for _, v in pts], "measured", status))
            fig.curves.append(Curve("μP: 0", [0.0, float(len(rows) - 1)],
                                    [rows[0].expected] * 2, "theory", "ok"))
            out.append(fig)
        return out


def fit_exponents(widths: Sequence[float] | np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``log value`` against ``log width``, one per column of
    ``values`` ``(widths, k)``, in one solve; shape ``(k,)``."""
    return np.asarray(np.polyfit(np.log(widths), np.log(values), 1)[0])


def fit_exponent(widths: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
                 ) -> float:
    """Least-squares slope of ``log value`` against ``log width``."""
    return float(fit_exponents(widths, np.asarray(values, dtype=float)[:, None])[0])


def _squares(t: Tensor) -> float:
    """``Σ t²`` of a vector: one float32 (or float64) dot product, relative error ``≈ 10⁻⁷``
    at 10⁵ entries (``3·10⁻⁵`` at 10⁷), recomputed in float64 where it overflows (entries
    above ``≈ 10¹⁹``)."""
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    squares = float(torch.dot(t, t))
    if math.isfinite(squares):
        return squares
    return float(torch.linalg.vector_norm(t, dtype=torch.float64)) ** 2


def _rms(squares: float, size: int) -> float:
    """``√(Σ t² / numel)`` (NaN for no entries)."""
    return math.sqrt(squares / size) if size else math.nan


class _Moments:
    """The RMS of every module's output and of its change ``h − h_0``, summed call by call
    during one forward pass (:meth:`add` is a recording's sink; nothing is kept). ``h_0`` is
    the same call's output in ``first``; a module whose calls do not match those of
    ``first`` in number and shape has no change."""

    def __init__(self, first: Mapping[str, list[Tensor]]) -> None:
        self.first = first
        self.calls: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self.squares: dict[str, float] = {}
        self.changes: dict[str, float] = {}  # dropped at the first call that does not match

    def add(self, name: str, h: Tensor) -> None:
        i = self.calls.get(name, 0)
        self.calls[name] = i + 1
        self.sizes[name] = self.sizes.get(name, 0) + h.numel()
        self.squares[name] = self.squares.get(name, 0.0) + _squares(h)
        h0 = self.first.get(name, [])
        if (i == 0 or name in self.changes) and i < len(h0) and h0[i].shape == h.shape:
            self.changes[name] = self.changes.get(name, 0.0) + _squares(h - h0[i])
        else:
            self.changes.pop(name, None)

    def values(self) -> dict[tuple[str, Metric], float]:
        out: dict[tuple[str, Metric], float] = {}
        for name, size in self.sizes.items():
            out[(name, "activation")] = _rms(self.squares[name], size)
            if name in self.changes and self.calls[name] == len(self.first[name]):
                out[(name, "change")] = _rms(self.changes[name], size)
        return out


class _Recorder:
    """Forward hooks that, while :meth:`recording`, hand every module's tensor outputs of the
    model's next forward pass to a sink, and a
    :class:`~torch.overrides.TorchFunctionMode` active during that pass that sees attention
    logits however they are computed: ``F.scaled_dot_product_attention`` (``scale · q kᵀ``,
    its default scale ``1/√d``, masked entries left out), ``nn.MultiheadAttention`` (its
    ``q kᵀ/√d`` from the in-projection) and the finite entries of any softmax over a square
    ``(…, T, T)`` input (attention written out by hand). Each such call site is recorded as
    ``<module>.attention_logits``, named after the innermost module running. Outside a
    recorded pass the hooks do nothing, so a training step can be the recorded pass.
    ``attention_modules`` are the modules whose class name says attention; those no
    recorded logits belong to are :meth:`unobserved`."""

    def __init__(self, model: nn.Module) -> None:
        self.sink: Callable[[str, Tensor], None] = lambda name, values: None
        self.handles = []
        self.frames: list[str] = []  # the modules running, innermost last
        self.armed = False  # the next forward pass of the model is recorded
        self.watcher: _AttentionWatcher | None = None  # active during the recorded pass
        self.attention_modules = [
            canonical_name(n) for n, m in model.named_modules()
            if isinstance(m, nn.MultiheadAttention) or "attention" in type(m).__name__.lower()]
        self.sites: set[str] = set()
        for name, module in model.named_modules():
            leaf = not any(True for _ in module.children())
            key = OUTPUT if module is model else canonical_name(name)
            root = module is model
            self.handles.append(module.register_forward_pre_hook(self._enter(key, root)))
            self.handles.append(module.register_forward_hook(self._hook(key, leaf or root,
                                                                        root)))

    def _enter(self, key: str, root: bool) -> Callable[..., None]:
        def pre_hook(module: nn.Module, args: Any) -> None:
            if not self.armed:
                return
            if root:
                self.watcher = _AttentionWatcher(self)
                self.watcher.__enter__()
            self.frames.append(key)

        return pre_hook

    def _hook(self, key: str, keep: bool, root: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            if not self.armed:
                return
            self.frames.pop()
            if keep and isinstance(out, Tensor) and out.is_floating_point():
                self.sink(key, out.detach().flatten())
            if root:
                self._disarm()

        return hook

    def _disarm(self) -> None:
        if self.watcher is not None:
            self.watcher.__exit__(None, None, None)
            self.watcher = None
        self.armed = False

    @contextmanager
    def recording(self, sink: Callable[[str, Tensor], None]) -> Iterator[None]:
        """Record the first forward pass of the model run inside: every module output
        (flattened; to be used or copied at once, as a later module may overwrite it in
        place) and attention logits go to ``sink(name, values)``. Later passes are not
        recorded."""
        self.sink, self.frames, self.armed = sink, [], True
        try:
            yield
        finally:
            self._disarm()  # also when the pass raised or never ran

    def record_logits(self, logits: Tensor) -> None:
        where = self.frames[-1] if self.frames else OUTPUT
        site = "attention_logits" if where == OUTPUT else f"{where}.attention_logits"
        self.sites.add(site)
        values = logits.detach()
        self.sink(site, values[torch.isfinite(values)])

    def unobserved(self) -> list[str]:
        """Attention modules no recorded logits belong to: none was recorded inside them,
        nor in a module that contains them."""
        seen = [s.removesuffix("attention_logits").rstrip(".") for s in self.sites]
        return [m for m in self.attention_modules
                if not any(p == "" or m == p or m.startswith(f"{p}.") or p.startswith(f"{m}.")
                           for p in seen)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class _AttentionWatcher(TorchFunctionMode):
    """Hands the attention logits of every attention call to a :class:`_Recorder`."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        if func in _ATTENTION_CALLS:  # every other call passes straight through
            with torch.no_grad():  # the recorded pass may be a training step's
                if func is F.scaled_dot_product_attention:
                    self.recorder.record_logits(_sdpa_logits(*args, **kwargs))
                elif func is F.multi_head_attention_forward:
                    self.recorder.record_logits(_mha_logits(*args, **kwargs))
                elif args:  # a softmax
                    x = args[0]
                    if isinstance(x, Tensor) and x.ndim >= 2 and x.shape[-1] == x.shape[-2] > 1:
                        self.recorder.record_logits(x)
        return func(*args, **kwargs)


_ATTENTION_CALLS = frozenset({F.scaled_dot_product_attention, F.multi_head_attention_forward,
                              F.softmax, torch.softmax, Tensor.softmax})


def _sdpa_logits(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                 **_: Any) -> Tensor:
    """``scale · q kᵀ`` of a ``scaled_dot_product_attention`` call, masked entries −∞."""
    s = scale if scale is not None else query.shape[-1] ** -0.5
    logits = s * (query @ key.transpose(-2, -1))
    t, u = logits.shape[-2:]
    if is_causal:
        allowed = torch.ones(t, u, dtype=torch.bool, device=logits.device).tril()
        logits = logits.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        logits = logits.masked_fill(~attn_mask, float("-inf"))
    return logits


def _mha_logits(query: Tensor, key: Tensor, value: Tensor, embed_dim: int, num_heads: int,
                in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, *args: Any,
                **kwargs: Any) -> Tensor:
    """``q kᵀ/√d`` per head of ``F.multi_head_attention_forward`` (inputs ``(L, N, E)``)."""
    if in_proj_weight is None:  # separate projection weights
        w_q, w_k = kwargs["q_proj_weight"], kwargs["k_proj_weight"]
        b_q, b_k = (None, None) if in_proj_bias is None else in_proj_bias.chunk(3)[:2]
    else:
        w_q, w_k, _ = in_proj_weight.chunk(3)
        b_q, b_k = (None, None) if in_proj_bias is None else in_proj_bias.chunk(3)[:2]
    q, k = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k)
    d = embed_dim // num_heads

    def heads(t: Tensor) -> Tensor:  # (L, N, E) -> (N·H, L, d)
        return t.reshape(t.shape[0], -1, d).transpose(0, 1)

    return heads(q) @ heads(k).transpose(-2, -1) * d**-0.5


_ACCELERATORS = (torch.cuda, torch.mps, torch.xpu, torch.mtia)


def _manual_seed(seed: int) -> None:
    """``torch.manual_seed(seed)`` for the back-ends present: the CPU generator, and every
    accelerator that is available (CUDA lazily, as torch does, until it is initialized).
    ``torch.manual_seed`` also queues a seed for each absent accelerator, which is never
    used but records a stack trace each time: 80 µs a call, against 2 µs here."""
    for backend in _ACCELERATORS:
        if backend.is_available():
            seed_all = getattr(backend, "manual_seed_all", backend.manual_seed)
            seed_all(seed)
    torch.random.default_generator.manual_seed(seed)


def _build(
    factory: Factory, width: int, seed: int, optimizer: OptimizerSpec, lr: float
) -> tuple[nn.Module, torch.optim.Optimizer]:
    with torch.random.fork_rng(devices=[]):
        _manual_seed(seed)
        built = factory(width)
    model, module_plan = built if isinstance(built, tuple) else (built, None)
    if callable(optimizer):
        return model, optimizer(model)
    if optimizer not in ("sgd", "adam"):
        raise InputError("optimizer", optimizer, "'sgd', 'adam' or a function model -> optimizer")
    # torch's one-kernel AdamW where it runs: the same update, a fraction of the time
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                for p in model.parameters())
    if module_plan is not None:
        return model, module_plan.make_optimizer(model, lr, fused=fused)
    if optimizer == "adam":
        return model, torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0,
                                        fused=fused or None)
    return model, torch.optim.SGD(model.parameters(), lr=lr)


@dataclass
class _Run:
    """One width and seed: the activation and change of every layer (``None`` if training
    diverged), the attention call sites seen, the attention modules not seen, and per
    nonzero weight its initial value and its update as matrices ``(dim 0, rest)``."""

    values: dict[tuple[str, Metric], float] | None
    sites: list[str]
    unseen: list[str]
    updates: dict[str, tuple[Tensor, Tensor]]


def _measure_width(
    factory: Factory, width: int, seed: int, data: tuple[Tensor, Tensor], optimizer: OptimizerSpec,
    lr: float, steps: int, loss_fn: Callable[[Tensor, Tensor], Tensor],
) -> _Run:
    """Train one model for ``steps`` steps on ``data``. ``h_0`` is recorded in the first
    training step's forward pass (the same weights and input as a separate pass), ``h_t``
    in one forward pass after the last step, whose loss must pass the training loop's
    divergence rule too (an update can overflow the weights without the loop seeing it)."""
    model, opt = _build(factory, width, seed, optimizer, lr)
    x, y = data
    weights = {canonical_name(n): p.detach().clone()
               for n, p in model.named_parameters() if p.ndim >= 2}
    first: dict[str, list[Tensor]] = {}

    def keep(name: str, h: Tensor) -> None:
        first.setdefault(name, []).append(h.clone())

    recorder = _Recorder(model)
    try:
        with recorder.recording(keep):
            result = train_module(model, opt, lambda _: (x, y), steps, loss_fn)
        if result.status == "diverged":
            return _Run(None, [], [], {})
        moments = _Moments(first)
        with torch.no_grad(), recorder.recording(moments.add):
            output = model(x)
    finally:
        recorder.remove()
    rule = Divergence()
    rule.reason(0, result.losses[0])
    if rule.reason(steps, float(loss_fn(output, y))) is not None:
        return _Run(None, [], [], {})
    updates = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            key = canonical_name(name)
            if key in weights and weights[key].any():
                w0 = weights[key].reshape(p.shape[0], -1)
                updates[key] = (w0, p.detach().reshape(p.shape[0], -1) - w0)
    return _Run(moments.values(), sorted(recorder.sites), recorder.unobserved(), updates)


SPECTRAL_TOL = 1e-6
"""Stopping tolerance of the spectral norms: each within ``10⁻⁶`` (relative) of a dense SVD
(tests/test_coordcheck.py), far inside any verdict's tolerance, for about 10 % fewer
iterations than ``spectral_norm``'s default (at ``10⁻⁵`` errors reach ``2·10⁻⁵``)."""


def _update_ratio(w0: Tensor, dw: Tensor, vector_like: bool) -> float:
    """``‖ΔW‖/‖W_0‖``: Frobenius norms for a vector-like weight, spectral for the others."""
    if vector_like:
        return float(dw.norm() / w0.norm())
    return spectral_norm(dw, tol=SPECTRAL_TOL) / spectral_norm(w0, tol=SPECTRAL_TOL)


def _vector_like(shapes: Sequence[Mapping[str, tuple[int, ...]]]) -> set[str]:
    """Weights with exactly one dimension that changes across the measured widths."""
    out = set()
    for key in set().union(*shapes) if shapes else set():
        seen = [s[key] for s in shapes if key in s]
        varying = sum(len({shape[d] for shape in seen}) > 1 for d in range(len(seen[0])))
        if varying == 1:
            out.add(key)
    return out


def verify_mup(
    factory: Factory,
    data: tuple[Tensor, Tensor],
    widths: Sequence[int] = (64, 128, 256, 512),
    optimizer: OptimizerSpec = "adam",
    *,
    lr: float = 0.01,
    steps: int = 3,
    seeds: Sequence[int] = (0,),
    loss_fn: Callable[[Tensor, Tensor], Tensor] = default_loss,
    tolerance: float = 0.25,
    expected: Mapping[str, float] | None = None,
    metrics: Sequence[Metric] = METRICS,
) -> CoordCheck:
    """Verify that the models ``factory(width)`` have width-independent coordinates.

    Args:
        factory: ``width -> model`` or ``width -> (model, plan)`` (a
            :class:`~learnmech.param.ModulePlan`, whose optimizer is then used). Called
            with the global torch seed set to each of ``seeds``, its global state restored.
        data: one batch ``(x, y)``: trained on at every step and measured on.
        widths: at least two widths (a ≥ 8× range resolves exponents to about ±0.1).
        optimizer: ``"adam"`` or ``"sgd"`` with learning rate ``lr`` (through the plan's
            per-parameter groups when the factory returns one, else a single group), or a
            function ``model -> optimizer`` for hand-written per-layer learning rates.
        lr: learning rate of a named optimizer; large enough that a few steps move the
            weights (as in Yang et al.'s coordinate checks).
        steps: training steps before measuring (≥ 1).
        seeds: the quantities are averaged (geometrically) over these seeds.
        loss_fn: ``(output, y) -> loss``; default cross-entropy for integer ``y``, else MSE.
        tolerance: largest accepted ``|p − expected|``.
        expected: expected exponents by ``fnmatch`` pattern on layer names, for known
            exceptions (default 0 everywhere).
        metrics: the quantities to judge.

    Returns:
        A :class:`CoordCheck`; ``.passed``, ``.summary()``, ``.offending_layers()``.
    """
    widths = sorted(int(w) for w in widths)
    if len(widths) < 2 or widths[0] <= 0:
        raise InputError("widths", widths, "at least two positive widths")
    if steps < 1:
        raise InputError("steps", steps, "at least 1 (μP concerns the coordinates after updates)")
    if not seeds:
        raise InputError("seeds", seeds, "at least one seed")
    for m in metrics:
        if m not in METRICS:
            raise InputError("metrics", m, f"some of {list(METRICS)}")
    measured = {w: [_measure_width(factory, w, s, data, optimizer, lr, steps, loss_fn)
                    for s in seeds] for w in widths}
    runs = [run for w in widths for run in measured[w]]
    sites = sorted({site for run in runs for site in run.sites})
    unseen = sorted({module for run in runs for module in run.unseen})
    diverged = [w for w in widths if any(run.values is None for run in measured[w])]
    if diverged:
        return CoordCheck(tuple(widths), steps, (), (), tuple(diverged), tuple(sites),
                          tuple(unseen))
    vector_like = _vector_like([{k: tuple(w0.shape) for k, (w0, _) in run.updates.items()}
                                for run in runs])

    def update_ratios(run: _Run) -> dict[tuple[str, Metric], float]:
        if "update" not in metrics:  # the spectral norms are most of the measuring time
            return {}
        return {(k, "update"): _update_ratio(w0, dw, k in vector_like)
                for k, (w0, dw) in run.updates.items()}

    per_width: list[dict[tuple[str, Metric], float]] = []
    for w in widths:
        done = [run.values | update_ratios(run) for run in measured[w] if run.values is not None]
        keys = [k for k in done[0] if all(k in r for r in done)]
        per_width.append({k: float(np.exp(np.mean([math.log(max(r[k], 1e-300)) for r in done])))
                          for k in keys})
    order = list(dict.fromkeys(k for k in per_width[-1]))
    fitted, skipped = [], []
    for layer, metric in order:
        if metric not in metrics:
            continue
        values = [d.get((layer, metric), 0.0) for d in per_width]
        if min(values) <= 1e-30 or not all(math.isfinite(v) for v in values):
            skipped.append(f"{layer} {metric}")
            continue
        fitted.append((layer, metric, tuple(values)))
    slopes = (fit_exponents(widths, np.array([v for *_, v in fitted]).T) if fitted
              else np.empty(0))
    verdicts = []
    for (layer, metric, series), slope in zip(fitted, slopes, strict=True):
        target = next((e for pattern, e in (expected or {}).items()
                       if fnmatch.fnmatchcase(layer, pattern)), 0.0)
        verdicts.append(LayerVerdict(layer, metric, float(slope), target, tolerance, series))
    verdicts.sort(key=lambda v: METRICS.index(v.metric))
    return CoordCheck(tuple(widths), steps, tuple(verdicts), tuple(skipped), (), tuple(sites),
                      tuple(unseen))


def save_plot(check: CoordCheck, path: str, title: str = "") -> None:
    """Write the check to an image: per quantity, the values against width (log-log, failing
    layers in red) and the fitted exponents with the tolerance band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if check.exponents(m)]
    fig, axes = plt.subplots(2, len(metrics), figsize=(5 * len(metrics), 8), squeeze=False)
    for j, metric in enumerate(metrics):
        rows = [v for v in check.verdicts if v.metric == metric]
        ax = axes[0][j]
        for v in rows:
            ax.plot(check.widths, v.values, marker="o", lw=1,
                    color="0.6" if v.passed else "tab:red", label=None if v.passed else v.layer)
        ax.set(xscale="log", yscale="log", xlabel="width", ylabel=metric,
               title=f"{metric} after {check.steps} steps")
        if any(not v.passed for v in rows):
            ax.legend(fontsize=6)
        ax = axes[1][j]
        ax.bar(range(len(rows)), [v.exponent for v in rows],
               color=["tab:green" if v.passed else "tab:red" for v in rows])
        ax.axhspan(rows[0].expected - rows[0].tolerance, rows[0].expected + rows[0].tolerance,
                   color="0.9", zorder=0)
        ax.set_xticks(range(len(rows)), [v.layer for v in rows], rotation=90, fontsize=5)
        ax.set(ylabel="fitted width exponent", title=f"{metric}: exponents (band: tolerance)")
    fig.suptitle(f"{title}  {check.summary()}"[:160], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def previous_token_task(
    vocab: int = 16, length: int = 16, batch: int = 16, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Random tokens ``x`` of shape ``(batch, length)`` and targets ``y_t = x_{t−1}``
    (``y_0 = x_0``): a task only attention can solve, so the attention logits learn within a
    few steps (a task attention cannot help with leaves the μP logits at their ``1/√d``
    initial size, which the verifier would rightly call vanishing)."""
    x = torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))
    return x, torch.cat([x[:, :1], x[:, :-1]], 1)


# ---- what the command line checks --------------------------------------------------------

BUILTIN_MODELS = ("mlp", "resmlp", "transformer")


def digits_batch(n: int = 256) -> tuple[Tensor, Tensor]:
    """The first ``n`` scikit-learn digits, standardized per pixel: ``(n, 64)``, ``(n,)``."""
    from learnmech.data import load
    from learnmech.system import Digits

    data = load(Digits(n_train=n, n_test=0))
    return data.x_train, data.y_train


def builtin_factory(
    name: str, parametrization: str, optimizer: str, base_width: int
) -> tuple[Factory, tuple[Tensor, Tensor], int, float]:
    """A built-in model family with its probe batch, default steps and learning rate.

    ``mlp`` (3 layers) and ``resmlp`` (4 residual branches) train on digits for 3 steps;
    ``transformer`` (one block, one head) on the previous-token task for 10 steps (see
    :func:`previous_token_task`)."""
    from learnmech.models import char_transformer, res_mlp
    from learnmech.param import parametrized

    lr = 0.5 if optimizer == "sgd" else 0.01
    if name == "mlp":
        def mlp(n: int) -> nn.Module:
            return nn.Sequential(nn.Linear(64, n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(),
                                 nn.Linear(n, 10))

        return (lambda n: parametrized(mlp, n, parametrization, optimizer, base_width=base_width),
                digits_batch(), 3, lr)
    if name == "resmlp":
        return (lambda n: res_mlp(64, 10, n, 4, parametrization, optimizer,
                                  base_width=base_width), digits_batch(), 3, lr)
    if name == "transformer":
        return (lambda n: char_transformer(16, 16, n, 1, 1, parametrization, optimizer,
                                           base_width=base_width),
                previous_token_task(), 10, 0.03 if optimizer == "adam" else lr)
    raise InputError("model", name, f"one of {list(BUILTIN_MODELS)} or 'module:function'")


def load_object(target: str, field: str) -> Any:
    """The object named by ``package.module:name`` or ``path/to/file.py:name``."""
    import importlib
    import importlib.util
    from pathlib import Path

    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise InputError(field, target, "'package.module:name' or 'path/to/file.py:name'")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(module_name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        raise InputError(field, target, f"an importable object ({exc})") from None
