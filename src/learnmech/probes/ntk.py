"""The empirical neural tangent kernel of any ``nn.Module``.

For a network ``f(x; θ)`` with ``O`` outputs and parameters ``θ``,

    Θ(x, x')_{ab} = Σ_p w_p ⟨∂f_a(x)/∂θ_p, ∂f_b(x')/∂θ_p⟩,

a sum over parameter tensors ``p`` with weights ``w_p`` (default 1; passing the per-tensor
learning-rate multipliers of an optimizer gives the kernel that governs its gradient
descent, see :func:`optimizer_weights`). Shapes: ``x1`` is ``(N1, ...)``, ``x2`` is
``(N2, ...)``; ``outputs="full"`` returns ``(N1, N2, O, O)`` and ``outputs="trace"`` returns
``(N1, N2)``, the trace over outputs divided by ``O`` (neural-tangents' ``trace_axes=(-1,)``).

Three algorithms, all exact:

* ``"structured"``: for every linear layer ``z = m W h + b`` used once per example,
  ``∂f_a/∂W = m δ_a hᵀ`` with ``δ_a = ∂f_a/∂z``, so its block of the kernel is
  ``m² (h·h') (δ_a·δ'_b) + (δ_a·δ'_b)``: a Gram of layer inputs times a Gram of
  backpropagated signals, never a Jacobian. Signals come from one forward pass and ``O``
  backward passes. Parameters outside such layers are added by Jacobian contraction.
  Applies to :class:`~learnmech.models.Network` and to ``nn.Linear`` modules of any model.
* ``"jacobian"``: Jacobian contraction ``J(x1) diag(w) J(x2)ᵀ`` over blocks of examples.
* ``"ntvp"``: NTK-vector products ``Θ v = J(x1) (w ⊙ J(x2)ᵀ v)`` (one ``vjp`` and one
  ``jvp``), vectorized over the basis vectors; :func:`ntk_vector_product` gives one
  product without forming the kernel.

``"auto"`` picks ``"structured"`` when the model has such linear layers, else
``"jacobian"``. Every method works in blocks of examples sized so that its temporaries
stay under ``max_memory`` bytes (the kernel itself comes on top). The structured method
assumes examples are processed independently (no batch statistics, e.g. no BatchNorm in
training mode); use ``"jacobian"`` otherwise.

The model is not modified: its mode, dtype, device and ``.grad`` fields are left as they
are. The kernel has the model's dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from learnmech.errors import InputError
from learnmech.memory import require_memory
from learnmech.models import Network
from learnmech.probes.base import optimizer_weights  # noqa: F401  (re-exported)
from learnmech.probes.hidden import linear_layers

Progress = Callable[[int, int], None]
Outputs = Literal["full", "trace"]
Method = Literal["auto", "structured", "jacobian", "ntvp"]


# ---- linear sites ---------------------------------------------------------------------
@dataclass
class _Site:
    """One linear layer on one batch: inputs ``h`` (B, in) and signals ``δ`` (B, O, out)."""

    weight: str
    bias: str | None
    multiplier: float
    h: Tensor
    delta: Tensor


def _network_forward(
    model: Network, x: Tensor, probes: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """:meth:`Network.forward` with ``probes[l]`` added to pre-activation ``z_l``: the
    outputs and every layer's input."""
    trace = model.forward_trace(x, lambda i, h: model.affine(i, h) + probes[i])
    return trace.output, trace.inputs


def _linear_modules(model: nn.Module, x: Tensor) -> dict[str, nn.Linear]:
    """``nn.Linear`` submodules called exactly once, on 2-D input, by ``model(x[:1])``."""
    calls: dict[str, list[int]] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):

            def hook(m: nn.Module, args: tuple[Tensor, ...], name: str = name) -> None:
                calls.setdefault(name, []).append(args[0].ndim)

            handles.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    mods = dict(model.named_modules())
    return {n: cast(nn.Linear, mods[n]) for n, dims in calls.items() if dims == [2]}


class _Structure:
    """Which parameters the structured method covers, and how to get their sites."""

    def __init__(self, model: nn.Module, x: Tensor) -> None:
        self.model = model
        self.is_network = isinstance(model, Network)
        if self.is_network:
            assert isinstance(model, Network)
            self.layers: list[tuple[str, nn.Linear, float]] = [
                (f"layers.{i}", layer, m)
                for i, (layer, m) in enumerate(zip(linear_layers(model), model.multipliers,
                                                   strict=True))
            ]
        else:
            self.layers = [(n, mod, 1.0) for n, mod in _linear_modules(model, x).items()]
        covered = set()
        for name, layer, _ in self.layers:
            covered.add(f"{name}.weight")
            if layer.bias is not None:
                covered.add(f"{name}.bias")
        self.covered = covered

    def sites(self, x: Tensor) -> tuple[Tensor, list[_Site]]:
        """Outputs ``f(x)`` (B, O) and the sites of every covered layer on ``x``."""
        with torch.enable_grad():
            probes = [
                torch.zeros(x.shape[0], layer.out_features, dtype=x.dtype, device=x.device,
                            requires_grad=True)
                for _, layer, _ in self.layers
            ]
            if self.is_network:
                assert isinstance(self.model, Network)
                out, inputs = _network_forward(self.model, x, probes)
            else:
                out, inputs = self._hooked_forward(x, probes)
            out = out.reshape(out.shape[0], -1)
            n_out = out.shape[1]
            per_output = []
            for a in range(n_out):
                grads = torch.autograd.grad(
                    out[:, a].sum(), probes, retain_graph=a < n_out - 1, allow_unused=True
                )
                per_output.append([
                    torch.zeros_like(p) if g is None else g
                    for g, p in zip(grads, probes, strict=True)
                ])
        sites = []
        for l, (name, layer, m) in enumerate(self.layers):
            delta = (per_output[0][l].unsqueeze(1) if n_out == 1
                     else torch.stack([per_output[a][l] for a in range(n_out)], dim=1))
            sites.append(_Site(
                f"{name}.weight", f"{name}.bias" if layer.bias is not None else None, m,
                inputs[l].detach(), delta.detach(),
            ))
        return out.detach(), sites

    def _hooked_forward(self, x: Tensor, probes: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        inputs: list[Tensor] = [x] * len(self.layers)
        handles = []
        for l, (_, layer, _) in enumerate(self.layers):

            def hook(m: nn.Module, args: tuple[Tensor, ...], out: Tensor, l: int = l) -> Tensor:
                inputs[l] = args[0]
                return out + probes[l]

            handles.append(layer.register_forward_hook(hook))
        try:
            out = self.model(x)
        finally:
            for h in handles:
                h.remove()
        return out, inputs


def _site_kernel(
    s1: list[_Site], s2: list[_Site], weights: Callable[[str], float], outputs: Outputs
) -> Tensor:
    """``Σ_l (w_W m_l² H_l H'_lᵀ + w_b) ⊙ G_l``, ``G_l`` the Gram of the signals: per pair of
    outputs (``(B1, B2, O, O)``) or summed over outputs and divided by ``O`` (``(B1, B2)``).
    Each Gram is one matrix product; the sum is accumulated in place."""
    theta: Tensor | None = None
    for a, b in zip(s1, s2, strict=True):
        (b1, o, k), b2 = a.delta.shape, b.delta.shape[0]
        g_h = a.h @ b.h.T
        g_h.mul_(weights(a.weight) * a.multiplier**2)
        if a.bias is not None:
            g_h.add_(weights(a.bias))
        if outputs == "full":
            g_delta = a.delta.reshape(b1 * o, k) @ b.delta.reshape(b2 * o, k).T
            g_delta = g_delta.view(b1, o, b2, o).permute(0, 2, 1, 3)
            g_h = g_h[:, :, None, None]
        else:
            g_delta = a.delta.reshape(b1, o * k) @ b.delta.reshape(b2, o * k).T
            g_delta.div_(o)
        if theta is None:
            theta = g_h * g_delta
        else:
            theta.addcmul_(g_h, g_delta)
    assert theta is not None
    return theta


# ---- Jacobian contraction ---------------------------------------------------------------
def _params(model: nn.Module, names: set[str] | None = None) -> dict[str, Tensor]:
    return {
        n: p.detach()
        for n, p in model.named_parameters()
        if p.requires_grad and (names is None or n in names)
    }


def _jacobian(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
    """Per parameter tensor, ``J`` of shape ``(B, O, P_p)`` (other tensors held fixed).

    Per-example Jacobians (``vmap`` over examples of ``jacrev``) cost one backward pass per
    output and example; models that cannot run under ``vmap`` fall back to the Jacobian of
    the whole batch, which costs a batch-sized backward pass per output and example.
    """

    def single(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

    def batch(p: dict[str, Tensor]) -> Tensor:
        out = functional_call(model, p, (x,))
        return out.reshape(out.shape[0], -1)

    b = x.shape[0]
    try:
        jac = vmap(jacrev(single), (None, 0))(params, x)
    except RuntimeError:
        jac = jacrev(batch)(params)
    return {n: j.reshape(b, j.shape[1], -1) for n, j in jac.items()}


def _contract(
    j1: dict[str, Tensor], j2: dict[str, Tensor], weight: Callable[[str], float],
    outputs: Outputs,
) -> Tensor:
    """``Σ_p w_p J1_p J2_pᵀ`` as ``(B1, B2, O, O)`` (or its trace over outputs / O)."""
    theta: Tensor | None = None
    for name, a in j1.items():
        b = j2[name]
        (b1, o, p), b2 = a.shape, b.shape[0]
        if outputs == "full":
            term = (a.reshape(b1 * o, p) @ b.reshape(b2 * o, p).T).reshape(b1, o, b2, o)
            term = term.permute(0, 2, 1, 3)
        else:
            term = torch.einsum("iap,jap->ij", a, b) / o
        term = term * weight(name)
        theta = term if theta is None else theta + term
    assert theta is not None
    return theta


# ---- public API --------------------------------------------------------------------------
def _blocks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _n_outputs(model: nn.Module, x: Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).reshape(1, -1).shape[1])


@contextmanager
def _frozen_grads(model: nn.Module) -> Iterator[None]:
    """Leave every ``.grad`` exactly as it was (a probe leaves no gradients behind)."""
    saved = {n: p.grad for n, p in model.named_parameters()}
    try:
        yield
    finally:
        for n, p in model.named_parameters():
            p.grad = saved[n]


def empirical_ntk(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    outputs: Outputs = "full",
    method: Method = "auto",
    weights: Mapping[str, float] | None = None,
    max_memory: float = 2**30,
    progress: Progress | None = None,
) -> Tensor:
    """The empirical NTK ``Θ(x1, x2)`` of ``model`` (see the module docstring).

    Args:
        model: any ``nn.Module`` mapping a batch ``(B, ...)`` to outputs ``(B, O)``.
        x1, x2: inputs; ``x2`` defaults to ``x1``.
        outputs: ``"full"`` → ``(N1, N2, O, O)``; ``"trace"`` → ``(N1, N2)`` (mean over outputs).
        method: ``"auto"``, ``"structured"``, ``"jacobian"`` or ``"ntvp"``.
        weights: per-parameter multipliers ``w_p`` by parameter name (missing names: 1).
        max_memory: bytes allowed for temporaries (Jacobian blocks, signals).
        progress: ``callback(done, total)`` after each block of the kernel (a long
            computation on many inputs can show a bar).

    The kernel itself must fit the memory budget (:mod:`learnmech.memory`); a larger
    request is an :class:`InputError` before anything is allocated.
    """
    if outputs not in ("full", "trace"):
        raise InputError("outputs", outputs, "'full' or 'trace'")
    if method not in ("auto", "structured", "jacobian", "ntvp"):
        raise InputError("method", method, "'auto', 'structured', 'jacobian' or 'ntvp'")
    names = {n for n, _ in model.named_parameters()}
    if weights is not None and not set(weights) <= names:
        unknown = sorted(set(weights) - names)[:3]
        raise InputError("weights", unknown, "parameter names of the model")
    w = dict(weights or {})

    def weight(name: str) -> float:
        return float(w.get(name, 1.0))

    symmetric = x2 is None
    x2 = x1 if x2 is None else x2
    per_pair = _n_outputs(model, x1) ** 2 if outputs == "full" else 1
    require_memory("x1", f"an empirical NTK of {x1.shape[0]} × {x2.shape[0]} inputs",
                   float(x1.shape[0]) * x2.shape[0] * per_pair * x1.element_size(),
                   "pass fewer inputs" + (" or outputs='trace'" if outputs == "full" else ""))
    with _frozen_grads(model):
        if method == "ntvp":
            return _ntk_by_products(model, x1, x2, weight, outputs, max_memory, progress)
        structure = _Structure(model, x1) if method in ("auto", "structured") else None
        if method == "structured" and (structure is None or not structure.layers):
            raise InputError("method", method, "a model with linear layers (or 'jacobian')")
        if structure is not None and not structure.layers:
            structure = None
        return _ntk_by_blocks(model, x1, x2, symmetric, structure, weight, outputs, max_memory,
                              progress)


# Row tiles of a symmetric kernel whose pieces fit one block, and their least size: two
# tiles (three of four tile products) measured 1.26× faster than one at 500 inputs and
# 1.57× at 2000; three were no faster at 500.
_TILES, _MIN_TILE = 2, 128


def _ntk_by_blocks(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor,
    symmetric: bool,
    structure: _Structure | None,
    weight: Callable[[str], float],
    outputs: Outputs,
    max_memory: float,
    progress: Progress | None = None,
) -> Tensor:
    """Structured sites plus Jacobian contraction of the remaining parameters, by blocks."""
    rest = _params(model, None if structure is None else set(_params(model)) - structure.covered)
    n_out = _n_outputs(model, x1)
    item = x1.element_size()
    site_width = 0
    if structure is not None:
        site_width = sum(l.in_features + n_out * l.out_features for _, l, _ in structure.layers)
    n_rest = sum(p.numel() for p in rest.values())
    per_example = item * (site_width + 3 * n_out * n_rest) * 2 + 1
    block = max(1, int(max_memory // per_example))
    n1, n2 = x1.shape[0], x2.shape[0]
    shape = (n1, n2, n_out, n_out) if outputs == "full" else (n1, n2)
    theta = torch.zeros(shape, dtype=x1.dtype, device=x1.device)

    def pieces(x: Tensor) -> tuple[list[_Site], dict[str, Tensor] | None]:
        sites = structure.sites(x)[1] if structure is not None else []
        jac = _jacobian(model, rest, x) if rest else None
        return sites, jac

    def cut(cache: tuple[list[_Site], dict[str, Tensor] | None], j: slice
             ) -> tuple[list[_Site], dict[str, Tensor] | None]:
        return ([_slice_site(s, j) for s in cache[0]],
                None if cache[1] is None else {n: t[j] for n, t in cache[1].items()})

    cached2 = None if n2 > block else pieces(x2)
    if symmetric and cached2 is not None:
        # Θ is symmetric: with the pieces of all inputs at hand, tiles of the kernel below
        # the diagonal are mirrored, not computed (TILES² products become TILES(TILES+1)/2).
        block = max(_MIN_TILE, -(-n1 // _TILES))
    rows, cols = -(-n1 // block), -(-n2 // block)
    total, done = (rows * (rows + 1) // 2 if symmetric else rows * cols), 0
    for i in _blocks(n1, block):
        s1, j1 = cut(cached2, i) if symmetric and cached2 is not None else pieces(x1[i])
        for j in _blocks(n2, block):
            if symmetric and j.start < i.start:
                continue
            if symmetric and j == i:
                s2, j2 = s1, j1
            elif cached2 is not None:
                s2, j2 = cut(cached2, j)
            else:
                s2, j2 = pieces(x2[j])
            part = torch.zeros_like(theta[i, j])
            if s1:
                part = part + _site_kernel(s1, s2, weight, outputs)
            if j1 is not None and j2 is not None:
                part = part + _contract(j1, j2, weight, outputs)
            theta[i, j] = part
            if symmetric and j != i:
                theta[j, i] = part.transpose(0, 1) if outputs == "trace" else part.permute(
                    1, 0, 3, 2
                )
            done += 1
            if progress is not None:
                progress(done, total)
    return theta


def _slice_site(s: _Site, j: slice) -> _Site:
    return _Site(s.weight, s.bias, s.multiplier, s.h[j], s.delta[j])


def _functional(model: nn.Module) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
        out = functional_call(model, p, (x,))
        return out.reshape(out.shape[0], -1)

    return f


def ntk_vector_product(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor,
    v: Tensor,
    *,
    weights: Mapping[str, float] | None = None,
) -> Tensor:
    """``Θ(x1, x2) v`` for ``v`` of shape ``(N2, O)``, without forming the kernel: one
    ``vjp`` at ``x2`` and one ``jvp`` at ``x1``. Returns ``(N1, O)``."""
    w = dict(weights or {})
    f = _functional(model)
    params = _params(model)
    with _frozen_grads(model):
        pullback = vjp(lambda p: f(p, x2), params)[1]
        (g,) = pullback(v.reshape(x2.shape[0], -1).to(x2))
        g = {n: t * float(w.get(n, 1.0)) for n, t in g.items()}
        out: Tensor = jvp(lambda p: f(p, x1), (params,), (g,))[1]
    return out


def _ntk_by_products(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor,
    weight: Callable[[str], float],
    outputs: Outputs,
    max_memory: float,
    progress: Progress | None = None,
) -> Tensor:
    """Columns ``Θ e_{(j,b)}`` for basis vectors ``e``, vectorized in chunks."""
    f = _functional(model)
    params = _params(model)
    n1, n2, n_out = x1.shape[0], x2.shape[0], _n_outputs(model, x1)
    n_params = sum(p.numel() for p in params.values())
    chunk = max(1, int(max_memory // (x1.element_size() * 4 * (n_params + n1 * n_out) + 1)))
    pullback = vjp(lambda p: f(p, x2), params)[1]

    def column(e: Tensor) -> Tensor:
        (g,) = pullback(e)
        g = {n: t * weight(n) for n, t in g.items()}
        return jvp(lambda p: f(p, x1), (params,), (g,))[1]

    basis = torch.eye(n2 * n_out, dtype=x1.dtype, device=x1.device).reshape(-1, n2, n_out)
    count = -(-(n2 * n_out) // chunk) if outputs == "full" else n_out * -(-n2 // chunk)
    done = 0

    def columns(e: Tensor) -> Tensor:
        nonlocal done
        out = vmap(column)(e)
        done += 1
        if progress is not None:
            progress(done, count)
        return out

    if outputs == "trace":
        diagonal = []
        for b in range(n_out):
            e = basis.reshape(n2, n_out, n2, n_out)[:, b]  # (n2, n2, O): columns (j, b)
            part = torch.cat([columns(e[c]) for c in _blocks(n2, chunk)])
            diagonal.append(part[:, :, b])  # (n2, n1): Θ_bb(x1, x2_j)
        return torch.stack(diagonal).mean(0).T
    cols = torch.cat([columns(basis[c]) for c in _blocks(n2 * n_out, chunk)])
    return cols.reshape(n2, n_out, n1, n_out).permute(2, 0, 3, 1)


def ntk_eigen(theta: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric kernel matrix,
    ``(N, N)`` or ``(N, N, O, O)`` flattened to ``(N·O, N·O)``, in float64."""
    if theta.ndim == 4:
        n, _, o, _ = theta.shape
        theta = theta.permute(0, 2, 1, 3).reshape(n * o, n * o)
    evals, evecs = torch.linalg.eigh(theta.double())
    return evals.flip(0), evecs.flip(1)
