"""Parametrizations as plain data: how each weight is initialized, scaled and trained.

An abc-parametrization gives every weight ``W`` (shape ``fan_out × fan_in``) a forward
multiplier ``a``, an init std ``b`` and a learning-rate multiplier ``c``: the layer computes
``a · W h``, ``W ~ N(0, b²)`` and ``W`` is trained with learning rate ``lr · c``. A weight's
*role* says which of its sides grow with the network's width: ``input`` (fan-out only),
``hidden`` (both), ``output`` (fan-in only) or ``fixed`` (neither). With ``σ = init_scale``,
``f = fan_in`` and ``m_in``, ``m_out`` the width ratios of the infinite sides relative to a
base model (``1`` on finite sides, and everywhere at the base width):

================  ===========  ==========  ===================  =================
parametrization   role         init std    multiplier           lr_mult SGD / Adam
================  ===========  ==========  ===================  =================
sp                all          σ/√f        1                    1 / 1
ntp               all          σ           1/√f                 1 / 1
mup               input        σ/√f        1                    m_out / 1
mup               hidden       σ/√f        1                    1 / 1/m_in
mup               output       σ/√(f·m_in) 1                    1/m_in / 1/m_in
mf                input        σ/√f        1                    f_out / 1
mf                hidden       σ/√f        1                    1 / 1/f
mf                output       σ           1/f                  f / 1
================  ===========  ==========  ===================  =================

``mup`` is Table 3 of Yang et al. (2022, "Tensor Programs V") written relative to a base
width, so it equals ``sp`` exactly at the base width. ``mf`` is the mean-field scaling
(Mei et al. 2018; Chizat & Bach 2018) in absolute units: μP with every infinite side's base
size equal to 1, its readout written in the multiplier form of Yang et al.'s Table 8
(``a = 1/f``, ``b = σ``, SGD lr ``f``, Adam lr ``1``), which the symmetry below maps onto
Table 3. Vector-like parameters (biases, normalization gains, embeddings) follow the input
row: SGD lr ``m_out`` under ``mup`` (``f_out`` under ``mf``), Adam lr 1; biases start at 0,
normalization gains at 1, embeddings at ``N(0, σ²)`` (one-hot fan-in 1). The readout's
multiplier is further multiplied by ``output_multiplier`` (α; richness γ = 1/α).

**The abc symmetry.** ``(a, b, c) → (aθ, b/θ, c/θ²)`` under SGD and ``(aθ, b/θ, c/θ)``
under Adam leaves the function and its training trajectory unchanged (Adam up to its ε).
:func:`plan` keeps the multipliers (the :class:`~learnmech.models.Network` applies them);
:func:`parametrize`, which works on any ``nn.Module`` whose forward pass it cannot change,
absorbs them with ``θ = 1/a`` into init std and learning rate.

**Depth.** In a residual network ``h ← h + β·branch(h)`` with ``L`` branches, depth-μP
(Yang et al. 2023; Bordelon et al. 2023; ``α = 1/2``) and CompleteP (Dey et al. 2025;
``α = 1``) set ``β = (L₀/L)^α`` relative to a base depth ``L₀`` and multiply the learning
rate of every parameter inside a branch by ``(L/L₀)^{2α−1}`` under SGD and ``(L/L₀)^{α−1}``
under Adam (so each branch moves the residual stream by ``Θ(1/L)`` per step), and Adam's
ε by ``(L₀/L)^α`` (the branch gradients shrink by ``β``).

**Weight decay.** Every parameter's weight decay is multiplied by ``1/lr_mult``, so the
per-step decay ``lr·λ`` of (decoupled or coupled) weight decay is independent of width and
depth, as in ``mup.MuAdam``/``MuSGD``.

**Attention.** Under ``mup`` the attention logits are ``q·k · √d₀/d`` (``1/d`` scaling,
equal to ``1/√d`` at the base head size ``d₀``); ``mf`` uses ``1/d``; ``sp`` and ``ntp``
``1/√d`` (:func:`attention_scale`).

Nothing is stored on the parameters: a plan is a tuple of frozen dataclasses keyed by
parameter name, so it survives ``state_dict``, ``deepcopy``, ``torch.compile`` and wrappers
(``DataParallel``/DDP, FSDP), whose name prefixes are ignored.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.system import MLP, DeepLinear

ParametrizationName = Literal["sp", "ntp", "mup", "mf"]
Side = Literal["input", "hidden", "output", "fixed"]
Role = Literal[
    "input", "hidden", "output", "fixed", "readout", "embedding", "attention", "bias", "norm"
]
ROLES: tuple[str, ...] = get_args(Role)
DepthRule = Literal["depth-mup", "completep"]
DEPTH_ALPHA: dict[str, float] = {"depth-mup": 0.5, "completep": 1.0}


def _is_adam(optimizer: str) -> bool:
    if optimizer not in ("gd", "sgd", "momentum", "adam", "adamw"):
        raise InputError("optimizer", optimizer, "one of gd, sgd, momentum, adam, adamw")
    return optimizer in ("adam", "adamw")


def abc(
    parametrization: str, side: Side, fan_in: int, m_in: float, m_out: float, adam: bool,
    init_scale: float = 1.0,
) -> tuple[float, float, float]:
    """``(init std b, multiplier a, lr multiplier c)`` of one weight: the table above.

    Args:
        parametrization: ``sp``, ``ntp``, ``mup`` or ``mf``.
        side: which sides of the weight are infinite.
        fan_in: the weight's fan-in ``f``.
        m_in, m_out: width ratios of the fan-in and fan-out sides (1 where finite); for
            ``mf`` the absolute sizes of the infinite sides.
        adam: the Adam column instead of the SGD one.
        init_scale: σ.
    """
    sigma = init_scale
    std, mult, lr = sigma / math.sqrt(fan_in), 1.0, 1.0
    if parametrization == "ntp":
        return sigma, 1.0 / math.sqrt(fan_in), 1.0
    if parametrization in ("mup", "mf"):
        if side == "input":
            lr = 1.0 if adam else m_out
        elif side == "hidden":
            lr = 1.0 / m_in if adam else 1.0
        elif side == "output":
            if parametrization == "mup":
                std, lr = sigma / math.sqrt(fan_in * m_in), 1.0 / m_in
            else:
                std, mult, lr = sigma, 1.0 / fan_in, 1.0 if adam else float(fan_in)
    elif parametrization != "sp":
        raise InputError("parametrization", parametrization, "one of sp, ntp, mup, mf")
    return std, mult, lr


def vector_lr(parametrization: str, m_out: float, adam: bool) -> float:
    """Learning-rate multiplier of a vector-like parameter (bias, gain) of ``m_out`` ratio."""
    return m_out if parametrization in ("mup", "mf") and not adam else 1.0


def attention_scale(parametrization: str, d_head: int, base_d_head: int | None = None) -> float:
    """The factor on attention logits ``q·k``: ``1/√d`` (sp, ntp), ``√d₀/d`` (mup, equal to
    ``1/√d`` at the base head size ``d₀``, default ``d``), ``1/d`` (mf)."""
    if parametrization == "mup":
        return math.sqrt(base_d_head or d_head) / d_head
    if parametrization == "mf":
        return 1.0 / d_head
    if parametrization in ("sp", "ntp"):
        return 1.0 / math.sqrt(d_head)
    raise InputError("parametrization", parametrization, "one of sp, ntp, mup, mf")


@dataclass(frozen=True)
class DepthScaling:
    """Residual-branch scaling across depth.

    Args:
        rule: ``depth-mup`` (``β = (L₀/L)^{1/2}``) or ``completep`` (``β = L₀/L``).
        depth: the number of residual branches ``L``.
        base_depth: ``L₀``, the depth at which nothing changes (1: absolute ``1/√L``, ``1/L``).
        branches: name patterns (``fnmatch``) of the parameters inside residual branches.
    """

    rule: DepthRule
    depth: int
    base_depth: int = 1
    branches: tuple[str, ...] = ("blocks.*",)

    def __post_init__(self) -> None:
        if self.rule not in DEPTH_ALPHA:
            raise InputError("depth.rule", self.rule, f"one of {sorted(DEPTH_ALPHA)}")
        if self.depth < 1 or self.base_depth < 1:
            raise InputError("depth.depth", (self.depth, self.base_depth), "positive integers")

    @property
    def alpha(self) -> float:
        return DEPTH_ALPHA[self.rule]

    @property
    def ratio(self) -> float:
        return self.depth / self.base_depth

    @property
    def branch_multiplier(self) -> float:
        """``β = (L₀/L)^α``: the factor on every residual branch's output."""
        return self.ratio**-self.alpha

    def lr_mult(self, adam: bool) -> float:
        return self.ratio ** (self.alpha - 1 if adam else 2 * self.alpha - 1)

    @property
    def eps_mult(self) -> float:
        return self.ratio**-self.alpha

    def covers(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.branches)


def branch_multiplier(depth: DepthScaling | None) -> float:
    """``β`` of a depth scaling; 1 without one."""
    return 1.0 if depth is None else depth.branch_multiplier


# ---- the MLP / deep linear network of the System spec ------------------------------------


@dataclass(frozen=True)
class LayerPlan:
    """How one weight layer of an MLP is initialized, scaled in the forward pass and trained."""

    name: str
    role: Role
    fan_in: int
    fan_out: int
    init_std: float
    multiplier: float
    lr_mult: float
    bias_lr_mult: float


def layer_widths(arch: MLP | DeepLinear, d_in: int, d_out: int) -> list[int]:
    """``[d_in, n_1, ..., n_{L-1}, d_out]`` for the architecture."""
    hidden = arch.hidden if isinstance(arch, DeepLinear) else [arch.width] * (arch.depth - 1)
    return [d_in, *hidden, d_out]


def plan(
    arch: MLP | DeepLinear, d_in: int, d_out: int, optimizer: str = "gd"
) -> tuple[LayerPlan, ...]:
    """The per-layer plan (multiplier form) of ``arch`` on data of ``d_in`` inputs and
    ``d_out`` outputs. ``optimizer`` selects the SGD-family or the Adam column. A network
    of depth 1 has both sides finite (role ``readout``) and is ``sp`` under ``mup``."""
    widths = layer_widths(arch, d_in, d_out)
    depth = len(widths) - 1
    adam = _is_adam(optimizer)
    p = arch.parametrization
    base = arch.base_width
    layers = []
    for l in range(depth):
        f, f_out = widths[l], widths[l + 1]
        side: Side = (
            "fixed" if depth == 1 else "input" if l == 0 else "output" if l == depth - 1
            else "hidden"
        )
        inf_in, inf_out = side in ("hidden", "output"), side in ("input", "hidden")
        if p == "mf":
            m_in, m_out = (float(f) if inf_in else 1.0), (float(f_out) if inf_out else 1.0)
        else:
            m_in = f / base if base and inf_in else 1.0
            m_out = f_out / base if base and inf_out else 1.0
        std, mult, lr = abc(p, side, f, m_in, m_out, adam, arch.init_scale)
        if side in ("output", "fixed"):
            mult *= arch.output_multiplier
        role: Role = "readout" if side == "fixed" else side
        layers.append(LayerPlan(f"layers.{l}", role, f, f_out, std, mult, lr,
                                vector_lr(p, m_out, adam)))
    return tuple(layers)


# ---- any nn.Module -----------------------------------------------------------------------

_WRAPPERS = ("module.", "_orig_mod.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm)
_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding, nn.MultiheadAttention)


def canonical_name(name: str) -> str:
    """``name`` without the prefixes that wrappers add (``module.``, ``_orig_mod.``, …)."""
    parts = [p for p in name.split(".") if f"{p}." not in _WRAPPERS]
    return ".".join(parts)


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module) or inner is model:
            return model
        model = inner


@dataclass(frozen=True)
class ParamPlan:
    """The plan of one parameter (absorbed form: no forward multiplier).

    ``side`` says which of its sides are infinite; ``fan_in``/``fan_out`` are their sizes
    (an embedding's fan-in is 1, a convolution's includes the kernel) and ``m_in``/``m_out``
    their width ratios (1 where finite; absolute sizes under ``mf``). ``init`` is ``normal``
    (std ``init_std``), ``zeros`` or ``ones``. The parameter's learning rate, weight decay
    and Adam ε are the optimizer's times ``lr_mult``, ``wd_mult`` and ``eps_mult``.
    """

    name: str
    role: Role
    side: Side
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    m_in: float
    m_out: float
    init: Literal["normal", "zeros", "ones"]
    init_std: float
    lr_mult: float
    wd_mult: float
    eps_mult: float = 1.0
    in_branch: bool = False


@dataclass(frozen=True)
class ModulePlan:
    """A parametrization applied to one model: a :class:`ParamPlan` per parameter.

    ``branch_multiplier`` (β) and :meth:`attention_scale` are the two forward-pass constants
    a model must build in itself (as :class:`~learnmech.models.ResMLP` and
    :class:`~learnmech.models.CharTransformer` do); everything else is init and optimizer.
    """

    parametrization: str
    optimizer: str
    params: tuple[ParamPlan, ...]
    depth: DepthScaling | None = None
    _index: dict[str, ParamPlan] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({p.name: p for p in self.params})

    def __getitem__(self, name: str) -> ParamPlan:
        key = canonical_name(name)
        if key not in self._index:
            raise InputError("parameter", name, f"one of {sorted(self._index)}")
        return self._index[key]

    def __iter__(self) -> Iterator[ParamPlan]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def branch_multiplier(self) -> float:
        return branch_multiplier(self.depth)

    def attention_scale(self, d_head: int, base_d_head: int | None = None) -> float:
        return attention_scale(self.parametrization, d_head, base_d_head)

    @torch.no_grad()
    def initialize(self, model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
        """Draw every parameter of ``model`` in place as planned, and return ``model``.

        Gaussians are drawn on the CPU from ``generator`` in parameter order, then moved to
        the parameter's device and dtype, so a seed fixes the weights on any device.
        """
        for name, tensor in model.named_parameters():
            p = self[name]
            if p.init == "normal":
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.copy_((p.init_std * noise).to(tensor))
            else:
                tensor.fill_(0.0 if p.init == "zeros" else 1.0)
        return model

    def param_groups(
        self, model: nn.Module, lr: float, weight_decay: float = 0.0, eps: float = 1e-8
    ) -> list[dict[str, Any]]:
        """Torch optimizer parameter groups, one per distinct ``(lr, wd, ε)`` multiplier;
        each also lists its parameters' ``names``. ``eps`` is set for Adam plans only."""
        adam = _is_adam(self.optimizer)
        groups: dict[tuple[float, float, float], dict[str, Any]] = {}
        for name, tensor in model.named_parameters():
            p = self[name]
            key = (p.lr_mult, p.wd_mult, p.eps_mult)
            if key not in groups:
                groups[key] = {"params": [], "names": [], "lr": lr * p.lr_mult,
                               "weight_decay": weight_decay * p.wd_mult}
                if adam:
                    groups[key]["eps"] = eps * p.eps_mult
            groups[key]["params"].append(tensor)
            groups[key]["names"].append(p.name)
        return list(groups.values())

    def make_optimizer(
        self, model: nn.Module, lr: float, weight_decay: float = 0.0, momentum: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *, fused: bool = False,
    ) -> torch.optim.Optimizer:
        """``AdamW`` (plans for ``adam``/``adamw``) or ``SGD`` (``gd``/``sgd``/``momentum``)
        over :meth:`param_groups`. ``fused``: torch's one-kernel AdamW (the same update,
        for floating-point parameters on the CPU or CUDA; SGD ignores it)."""
        groups = self.param_groups(model, lr, weight_decay, eps)
        if _is_adam(self.optimizer):
            return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused or None)
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)

    def table(self) -> str:
        """A plain-text table of the plan, one parameter a line."""
        rows = [f"{'parameter':<34} {'role':<10} {'shape':<12} {'init':>9} {'lr×':>9} {'wd×':>9}"]
        for p in self.params:
            init = f"{p.init_std:.3g}" if p.init == "normal" else p.init
            rows.append(f"{p.name:<34} {p.role:<10} {'×'.join(map(str, p.shape)):<12} "
                        f"{init:>9} {p.lr_mult:>9.3g} {p.wd_mult:>9.3g}")
        return "\n".join(rows)


def _owners(model: nn.Module) -> dict[str, tuple[str, nn.Module]]:
    """Canonical parameter name → (canonical name of the owning module, the module)."""
    out: dict[str, tuple[str, nn.Module]] = {}
    for mod_name, module in model.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            out.setdefault(canonical_name(full), (canonical_name(mod_name), module))
    return out


def _axes(module: nn.Module, tensor: Tensor) -> tuple[int, int | None, int]:
    """``(fan-out axis, fan-in axis or None, receptive field)`` of a parameter of ``module``:
    ``(out, in, *kernel)`` for linear and convolutional weights, ``(vocab, dim)`` for
    embeddings, ``(dim,)`` for vectors."""
    if tensor.ndim < 2:
        return 0, None, 1
    if isinstance(module, nn.Embedding):
        return 1, 0, 1
    return 0, 1, math.prod(tensor.shape[2:])


def _shapes(base: nn.Module | Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    if isinstance(base, nn.Module):
        return {canonical_name(n): tuple(t.shape) for n, t in base.named_parameters()}
    return {canonical_name(n): tuple(s) for n, s in base.items()}


def _structural_sides(model: nn.Module) -> dict[str, tuple[bool, bool]]:
    """Infinite ``(fan-in, fan-out)`` sides without a base model: all infinite except the
    fan-in of embeddings (or, with no embedding, of the first linear/convolutional layer)
    and the fan-out of the last linear/convolutional layer (and of its bias)."""
    dense = [m for _, m in _unwrap(model).named_modules()
             if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    has_embedding = any(isinstance(m, nn.Embedding) for m in model.modules())
    first = dense[0] if dense and not has_embedding else None
    last = dense[-1] if dense else None
    return {
        name: (not (isinstance(module, nn.Embedding) or module is first), module is not last)
        for name, (_, module) in _owners(model).items()
    }


def _side(inf_in: bool, inf_out: bool) -> Side:
    return ("hidden" if inf_out else "output") if inf_in else ("input" if inf_out else "fixed")


def _width(
    name: str, shape: tuple[int, ...], axis: int | None, refs: list[dict[str, tuple[int, ...]]]
) -> tuple[bool, float]:
    """Is side ``axis`` of parameter ``name`` infinite (its size differs from a reference's),
    and its width ratio to the base (the first reference)."""
    if axis is None:
        return False, 1.0
    infinite = any(ref[name][axis] != shape[axis] for ref in refs)
    return infinite, shape[axis] / refs[0][name][axis]


def _label(module_name: str, module: nn.Module, tensor: Tensor, side: Side) -> Role:
    """Role label from the module type: embedding, attention, norm, bias, else the side."""
    if tensor.ndim < 2:
        return "norm" if isinstance(module, _NORMS) else "bias"
    if isinstance(module, nn.Embedding):
        return "embedding"
    name = module_name.lower()
    in_attention = (isinstance(module, nn.MultiheadAttention) or "attn" in name
                    or "attention" in name)
    return "attention" if side == "hidden" and in_attention else side


_ROLE_SIDES: dict[str, tuple[bool, bool]] = {
    "input": (False, True), "embedding": (False, True), "hidden": (True, True),
    "attention": (True, True), "output": (True, False), "fixed": (False, False),
    "readout": (False, False),
}


def parametrize(
    model: nn.Module,
    parametrization: str = "mup",
    optimizer: str = "adam",
    *,
    base: nn.Module | Mapping[str, Sequence[int]] | None = None,
    delta: nn.Module | Mapping[str, Sequence[int]] | None = None,
    roles: Mapping[str, str] | None = None,
    init_scale: float = 1.0,
    output_multiplier: float = 1.0,
    depth: DepthScaling | None = None,
    zero_init: Sequence[str] = (),
) -> ModulePlan:
    """The plan of ``parametrization`` for every parameter of ``model`` (absorbed form).

    Which sides of a weight are infinite (grow with width) is read from shapes when a
    ``base`` model (the same architecture at the base width, e.g. built under
    ``torch.device("meta")``) or its ``{name: shape}`` is given: a side is infinite where its
    size differs from the base's, or from ``delta``'s (a third width: needed to tell the
    sides apart when ``model`` is at the base width), and its ratio is ``size / base size``.
    Without a base the sides are inferred from the structure (all infinite except the fan-in
    of embeddings, or else of the first layer, and the fan-out of the last linear layer);
    the model is then its own base, so ``mup`` equals ``sp`` on it, while ``mf`` (absolute
    sizes) is fully defined.

    Role labels come from module types: ``embedding`` (``nn.Embedding``), ``attention``
    (hidden weights under an attention module), ``norm``/``bias`` (vectors), else the side.
    ``roles`` overrides them by ``fnmatch`` pattern on parameter names, e.g.
    ``{"head.weight": "output"}``; for a matrix the override also fixes its infinite sides.

    Args:
        model: any module (wrapped and compiled models included).
        parametrization: ``sp``, ``ntp``, ``mup`` or ``mf``.
        optimizer: ``gd``/``sgd``/``momentum`` (SGD column) or ``adam``/``adamw``.
        base, delta: base shapes (see above).
        roles: role overrides.
        init_scale: σ.
        output_multiplier: α on ``output``/``readout`` weights (absorbed into their init
            and learning rate).
        depth: residual-branch scaling; its learning-rate and ε corrections apply to the
            parameters matching ``depth.branches``.
        zero_init: name patterns of weights to initialize at zero (e.g. attention queries
            or the readout, as Yang et al. 2022 recommend under μP); their learning rates
            are unchanged.

    Raises:
        InputError: an unknown parametrization, optimizer or role, or a base whose
            parameter names differ from the model's.
    """
    adam = _is_adam(optimizer)
    abc(parametrization, "fixed", 1, 1.0, 1.0, adam)  # validates the name
    overrides = dict(roles or {})
    for pattern, forced in overrides.items():
        if forced not in ROLES:
            raise InputError(f"roles[{pattern!r}]", forced, f"one of {list(ROLES)}")
    owners = _owners(model)
    tensors = {canonical_name(n): t for n, t in model.named_parameters()}
    refs = [_shapes(r) for r in (base, delta) if r is not None]
    for ref, label in zip(refs, ("base", "delta"), strict=False):
        if set(ref) != set(tensors):
            raise InputError(label, sorted(set(tensors) ^ set(ref))[:5],
                             "a model with the same parameter names")
    structural = _structural_sides(model) if not refs else {}
    params = []
    for name, tensor in tensors.items():
        module_name, module = owners[name]
        shape = tuple(tensor.shape)
        out_ax, in_ax, field_size = _axes(module, tensor)
        if refs:
            (inf_in, r_in), (inf_out, r_out) = (_width(name, shape, ax, refs)
                                                for ax in (in_ax, out_ax))
        else:
            (inf_in, inf_out), r_in, r_out = structural[name], 1.0, 1.0
            inf_in = inf_in and in_ax is not None
        side = _side(inf_in, inf_out)
        role = _label(module_name, module, tensor, side)
        for pattern, forced in overrides.items():
            if fnmatch.fnmatchcase(name, pattern):
                role = cast(Role, forced)
                if tensor.ndim >= 2 and forced in _ROLE_SIDES:
                    inf_in, inf_out = _ROLE_SIDES[forced]
                    side = _side(inf_in, inf_out)
        fan_out = shape[out_ax]
        fan_in = 1 if role == "embedding" or in_ax is None else shape[in_ax] * field_size
        absolute = parametrization == "mf"
        m_in = (float(fan_in) if absolute else r_in) if inf_in else 1.0
        m_out = (float(fan_out) if absolute else r_out) if inf_out else 1.0
        if tensor.ndim < 2:
            is_gain = role == "norm" and name.rsplit(".", 1)[-1] == "weight"
            init: Literal["normal", "zeros", "ones"] = "ones" if is_gain else "zeros"
            std, lr = 0.0, vector_lr(parametrization, m_out, adam)
        else:
            zero = any(fnmatch.fnmatchcase(name, pattern) for pattern in zero_init)
            init = "zeros" if zero else "normal"
            std, mult, lr = abc(parametrization, side, fan_in, m_in, m_out, adam, init_scale)
            if side == "output" or role == "readout":
                mult *= output_multiplier
            std, lr = (0.0 if zero else std * mult), lr * (mult if adam else mult**2)
        eps = 1.0
        in_branch = depth is not None and depth.covers(name)
        if depth is not None and in_branch:
            lr *= depth.lr_mult(adam)
            eps = depth.eps_mult if adam else 1.0
        params.append(ParamPlan(name, role, side, shape, fan_in, fan_out, m_in, m_out, init,
                                std, lr, 1.0 / lr, eps, in_branch))
    return ModulePlan(parametrization, optimizer, tuple(params), depth)


def parametrized(
    factory: Callable[[int], nn.Module],
    width: int,
    parametrization: str = "mup",
    optimizer: str = "adam",
    *,
    base_width: int | None = None,
    generator: torch.Generator | None = None,
    **options: Any,
) -> tuple[nn.Module, ModulePlan]:
    """``factory(width)``, parametrized against the same factory at ``base_width`` (default:
    ``width``) and initialized; returns the model and its plan.

    The base and a third width (``2·base_width``, which tells the infinite sides apart) are
    built only for their shapes (without touching the global random state), so keep the
    base width small. ``options`` go to :func:`parametrize` (``roles``, ``init_scale``,
    ``output_multiplier``, ``depth``, ``zero_init``).
    """
    base_width = base_width or width
    with torch.random.fork_rng(devices=[]):
        base, delta = _shapes(factory(base_width)), _shapes(factory(2 * base_width))
    model = factory(width)
    module_plan = parametrize(model, parametrization, optimizer, base=base, delta=delta,
                              **options)
    return module_plan.initialize(model, generator), module_plan
