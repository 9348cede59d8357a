"""Curvature instruments: matrix-free Hessians of any ``nn.Module`` with a user loss.

The loss is ``L(θ) = Σ_b (n_b / N) loss_fn(model(x_b), y_b)`` over the batches ``b`` of
``data`` (one ``(inputs, targets)`` tuple, or an iterable of them such as a DataLoader),
with ``N = Σ_b n_b``: for a ``loss_fn`` that averages over examples this is the mean loss
over the whole data set. ``θ`` is the flat vector of the chosen parameters (all that
require gradients by default, or those named in ``params``), concatenated in
``model.named_parameters()`` order; every vector below has that layout, the parameters'
dtype and device.

What is here:

* :class:`HessianOperator`: ``v ↦ H v`` with ``H = ∇²_θ L`` at the parameters the model
  has when the operator is built (they are copied; the model is never modified);
* :func:`lanczos`: top-``k`` eigenpairs of a symmetric operator, with full
  reorthogonalization and a residual-based stopping rule;
* :func:`hutchinson` and :func:`hutch_pp`: trace estimates with standard errors;
* :func:`spectral_density`: stochastic Lanczos quadrature (SLQ) of the spectrum;
* :func:`adam_preconditioner` and :class:`PreconditionedOperator`: the preconditioned
  Hessian ``P⁻¹H`` of Adam (Cohen et al. 2022), through its symmetric form;
* the probes ``sharpness`` and ``preconditioned_sharpness`` for :func:`learnmech.train`.

Example (any model, any loss)::

    op = HessianOperator(model, torch.nn.functional.cross_entropy, (x, y))
    top = lanczos(op, k=3, tol=1e-4, seed=0)
    top.values                      # (3,) largest eigenvalues, descending
    hutch_pp(op, 300, seed=0)       # TraceEstimate(value, stderr, matvecs)

Nothing here changes a model's mode, dtype or device or leaves gradients behind: the loss
is evaluated with :func:`torch.func.functional_call` on copies of the parameters and
buffers (so a BatchNorm in training mode does not update the model's running statistics).
The Hessian is that of the model in its current mode: dropout in training mode makes it
random, so call ``model.eval()`` yourself if that is what you mean.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

from learnmech.errors import InputError
from learnmech.probes.registry import register_probe
from learnmech.train import ProbeState

Batch = tuple[Any, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
Backend = Literal["auto", "autograd", "func"]


class SymmetricOperator(Protocol):
    """A symmetric linear map on vectors of length ``dim`` (dtype and device given)."""

    dim: int
    dtype: torch.dtype
    device: torch.device

    def matvec(self, v: Tensor) -> Tensor: ...


class DenseOperator:
    """A symmetric matrix ``(dim, dim)`` as a :class:`SymmetricOperator`."""

    def __init__(self, matrix: Tensor) -> None:
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise InputError("matrix", tuple(matrix.shape), "a square matrix")
        self.matrix = matrix
        self.dim = matrix.shape[0]
        self.dtype = matrix.dtype
        self.device = matrix.device
        self.matvecs = 0

    def matvec(self, v: Tensor) -> Tensor:
        self.matvecs += 1
        return self.matrix @ v


def _batches(data: Batch | Iterable[Batch]) -> tuple[list[Batch] | None, Iterable[Batch]]:
    """``([batch], _)`` for a single ``(inputs, targets)`` tuple, ``(None, data)`` otherwise."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Tensor):
        return [data], [data]
    if isinstance(data, Iterable):
        return None, data
    raise InputError("data", type(data).__name__,
                     "an (inputs, targets) tuple or an iterable of such tuples")


def _size(inputs: Any) -> int:
    return int(inputs.shape[0]) if isinstance(inputs, Tensor) else len(inputs)


class HessianOperator:
    """The Hessian ``H = ∇²_θ L`` at the model's current parameters, matrix-free.

    Args:
        model: any ``nn.Module``; it is only read.
        loss_fn: ``loss_fn(model(inputs), targets) -> scalar``, a mean over examples.
        data: one ``(inputs, targets)`` tuple, or an iterable of them (re-iterated on
            every product); tensors are moved to the parameters' device.
        params: names (as in ``model.named_parameters()``) of the parameters to
            differentiate, e.g. one layer's; default every parameter requiring grad. The
            others are held fixed.
        backend: how ``H v`` is computed. ``"autograd"``: double backward; for a single
            batch the gradient's graph is built once and each product is one backward pass
            through it (about 1.2–1.6 gradients each on an MLP). ``"func"``:
            reverse-over-forward, ``torch.func.grad`` of ``θ ↦ torch.func.jvp(L, θ, v)``:
            slower (about 3–5 gradients plus torch.func's overhead) but it only needs
            forward-mode formulas and their first backward, so it works where a backward
            is not twice differentiable (a custom ``autograd.Function`` with a
            ``once_differentiable`` backward and a ``jvp``). ``"auto"`` uses
            ``"autograd"`` and falls back to ``"func"`` with a warning when the double
            backward fails.

    The ``"func"`` products are checked once for symmetry (``aᵀHb = bᵀHa`` for two random
    vectors) and raise if they fail it: in torch 2.13 second-order forward mode through
    ``layer_norm`` is wrong (pytorch/pytorch#196700), and forward-over-reverse silently
    drops the second-order term of a ``once_differentiable`` backward, which is why that
    order is not used.

    Attributes:
        dim: number of parameters ``P``. ``matvecs``: products computed so far.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Batch | Iterable[Batch],
        params: Sequence[str] | None = None,
        backend: Backend = "auto",
    ) -> None:
        if backend not in ("auto", "autograd", "func"):
            raise InputError("backend", backend, "one of 'auto', 'autograd', 'func'")
        named = dict(model.named_parameters())
        if params is None:
            names = [n for n, p in named.items() if p.requires_grad]
        else:
            unknown = [n for n in params if n not in named]
            if unknown or not params:
                raise InputError("params", list(params), f"names among {sorted(named)}")
            names = [n for n in named if n in set(params)]
        self.model = model
        self.loss_fn = loss_fn
        self.names = names
        self.shapes = [named[n].shape for n in names]
        self.sizes = [named[n].numel() for n in names]
        self.dim = sum(self.sizes)
        first = named[names[0]]
        self.dtype, self.device = first.dtype, first.device
        # a snapshot of the parameters and buffers: H is taken at this point
        self._theta = {n: p.detach().clone() for n, p in named.items()}
        self._buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self._single, self._data = _batches(data)
        self.backend: Literal["autograd", "func"] = "func" if backend == "func" else "autograd"
        self._fallback = backend == "auto"
        self._graph: tuple[list[Tensor], Tensor, list[Tensor]] | None = None
        self._func_checked = False
        self.matvecs = 0

    # ---- flat vectors ---------------------------------------------------------------
    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        """Concatenate per-parameter tensors into one vector of length ``dim``."""
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, v: Tensor) -> list[Tensor]:
        """Split a vector of length ``dim`` into tensors shaped like the parameters."""
        if v.shape != (self.dim,):
            raise InputError("v", tuple(v.shape), f"a vector of shape ({self.dim},)")
        return [c.view(s) for c, s in zip(v.split(self.sizes), self.shapes, strict=True)]

    def parameters_vector(self) -> Tensor:
        """``θ``: the chosen parameters at which ``H`` is taken, as one vector."""
        return self.flatten([self._theta[n] for n in self.names])

    # ---- the loss as a function of the chosen parameters -----------------------------
    def _batches(self) -> Iterable[Batch]:
        return self._single if self._single is not None else self._data

    def _total(self) -> int:
        n = sum(_size(x) for x, _ in self._batches())
        if n == 0:
            raise InputError("data", "empty", "at least one non-empty batch")
        return n

    def _loss(self, chosen: dict[str, Tensor], batch: Batch) -> Tensor:
        x, y = batch
        if isinstance(x, Tensor):
            x = x.to(self.device)
        state = {**self._theta, **self._buffers_copy(), **chosen}
        return self.loss_fn(functional_call(self.model, state, (x,)), y.to(self.device))

    def _buffers_copy(self) -> dict[str, Tensor]:
        # fresh copies each call: a module that updates buffers in place (BatchNorm in
        # training mode) must not change the snapshot between products
        return {n: b.clone() for n, b in self._buffers.items()}

    def _leaves(self) -> dict[str, Tensor]:
        return {n: self._theta[n].clone().requires_grad_(True) for n in self.names}

    def loss_and_gradient(self) -> tuple[float, Tensor]:
        """``(L(θ), ∇L(θ))``, the gradient as a vector of length ``dim``."""
        if self._single is not None and self.backend == "autograd":
            _, loss, g = self._cached_graph()
            return float(loss.detach()), self.flatten(g).detach()
        total = self._total()
        value, grad_ = 0.0, torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for batch in self._batches():
            leaves = self._leaves()
            part = self._loss(leaves, batch) * (_size(batch[0]) / total)
            grad_ += self.flatten(torch.autograd.grad(part, list(leaves.values())))
            value += float(part.detach())
        return value, grad_

    # ---- products ---------------------------------------------------------------------
    def matvec(self, v: Tensor) -> Tensor:
        """``H v`` for a vector ``v`` of length ``dim``."""
        parts = self.unflatten(v.to(device=self.device, dtype=self.dtype))
        if self.backend == "autograd":
            try:
                out = self._hvp_autograd(parts)
            except RuntimeError as err:
                if not self._fallback:
                    raise
                warnings.warn(f"double backward failed ({err}); using torch.func instead",
                              RuntimeWarning, stacklevel=2)
                self.backend, self._graph = "func", None
                out = self._hvp_func(parts)
        else:
            out = self._hvp_func(parts)
        self.matvecs += 1
        return out

    def __matmul__(self, v: Tensor) -> Tensor:
        """``H @ v`` for a vector ``(dim,)`` or a matrix ``(dim, k)`` (column by column)."""
        if v.ndim == 2:
            return torch.stack([self.matvec(c) for c in v.T], dim=1)
        return self.matvec(v)

    def _gradient_graph(self, batch: Batch, weight: float
                        ) -> tuple[list[Tensor], Tensor, list[Tensor]]:
        """Leaves, weighted loss and its gradient, with the graph kept for differentiating
        again."""
        leaves = list(self._leaves().values())
        loss = self._loss(dict(zip(self.names, leaves, strict=True)), batch) * weight
        return leaves, loss, list(torch.autograd.grad(loss, leaves, create_graph=True))

    def _cached_graph(self) -> tuple[list[Tensor], Tensor, list[Tensor]]:
        """The single batch's gradient graph, built once and reused by every product."""
        assert self._single is not None
        if self._graph is None:
            self._graph = self._gradient_graph(self._single[0], 1.0)
        return self._graph

    def _graphs(self) -> Iterable[tuple[list[Tensor], Tensor, list[Tensor]]]:
        if self._single is not None:
            yield self._cached_graph()
            return
        total = self._total()
        for batch in self._batches():
            yield self._gradient_graph(batch, _size(batch[0]) / total)

    def _hvp_autograd(self, parts: list[Tensor]) -> Tensor:
        out = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for leaves, _, g in self._graphs():
            out += self.flatten(torch.autograd.grad(g, leaves, parts, retain_graph=True))
        return out

    def _hvp_func(self, parts: list[Tensor]) -> Tensor:
        if not self._func_checked:
            self._func_checked = True
            self._check_symmetry()
        total, out = self._total(), torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        primal = {n: self._theta[n] for n in self.names}
        tangent = dict(zip(self.names, parts, strict=True))
        for batch in self._batches():
            w = _size(batch[0]) / total

            def directional(chosen: dict[str, Tensor], batch: Batch = batch, w: float = w
                            ) -> Tensor:
                def loss(c: dict[str, Tensor]) -> Tensor:
                    return self._loss(c, batch) * w

                return jvp(loss, (chosen,), (tangent,))[1]

            hv = grad(directional)(primal)
            out += self.flatten([hv[n] for n in self.names])
        return out

    def _check_symmetry(self) -> None:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(self.dim, generator=gen, dtype=torch.float64).to(
            device=self.device, dtype=self.dtype) for _ in range(2))
        ha, hb = self._hvp_func(self.unflatten(a)), self._hvp_func(self.unflatten(b))
        gap = abs(float(b @ ha - a @ hb))
        scale = float(ha.norm() * b.norm() + hb.norm() * a.norm())
        tol = 1e-8 if self.dtype == torch.float64 else 1e-4
        if gap > tol * scale:
            raise RuntimeError(
                f"torch.func Hessian-vector products are not symmetric (|bᵀHa − aᵀHb| = "
                f"{gap:.3g}, scale {scale:.3g}): a forward-mode formula of this model is wrong "
                "or missing; use backend='autograd'"
            )

    def curvature_gradient(self, u: Tensor) -> Tensor:
        """``∇_θ (uᵀ H(θ) u)`` for a fixed vector ``u``: a third-derivative contraction.

        For a simple top eigenpair ``(S, u)`` with ``‖u‖ = 1`` this is the gradient of the
        sharpness, ``∇S = ∇_θ(uᵀHu)`` (Hellmann–Feynman). Uses double backward (whatever
        the backend); for a single batch it reuses the gradient graph of the products, and
        costs one product with its graph plus one backward pass through it.
        """
        parts = self.unflatten(u.to(device=self.device, dtype=self.dtype))
        out = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for leaves, _, g in self._graphs():
            hv = torch.autograd.grad(g, leaves, parts, create_graph=True, retain_graph=True)
            quad = sum((h * p).sum() for h, p in zip(hv, parts, strict=True))
            assert isinstance(quad, Tensor)
            out += self.flatten(torch.autograd.grad(quad, leaves, retain_graph=True))
        return out.detach()

    def dense(self) -> Tensor:
        """The full ``(dim, dim)`` matrix, one product per column (small models only)."""
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return torch.stack([self.matvec(e) for e in eye], dim=1)


# ---- Lanczos ---------------------------------------------------------------------------


@dataclass
class Eigenpairs:
    """Top eigenpairs found by :func:`lanczos`.

    ``values`` ``(k,)`` descending; ``vectors`` ``(dim, k)`` orthonormal columns;
    ``residuals`` ``(k,)`` the norms ``‖A y − θ y‖``; ``converged`` whether every residual
    is within the tolerance; ``matvecs`` the products used.
    """

    values: Tensor
    vectors: Tensor
    residuals: Tensor
    converged: bool
    matvecs: int


def _random_vector(op: SymmetricOperator, generator: torch.Generator,
                   kind: Literal["gaussian", "rademacher"] = "gaussian") -> Tensor:
    if kind == "rademacher":
        z = torch.randint(0, 2, (op.dim,), generator=generator).to(torch.float64) * 2 - 1
    else:
        z = torch.randn(op.dim, generator=generator, dtype=torch.float64)
    return z.to(device=op.device, dtype=op.dtype)


def _orthogonalize(w: Tensor, rows: Tensor) -> Tensor:
    """``w`` (a vector or columns) minus its projection on the orthonormal rows of
    ``rows`` ``(m, dim)``, done twice (classical Gram–Schmidt, twice is enough)."""
    if rows.shape[0] == 0:
        return w
    for _ in range(2):
        w = w - rows.T @ (rows @ w)
    return w


class _Basis:
    """Orthonormal vectors stored as contiguous rows, in a buffer that doubles when full."""

    def __init__(self, op: SymmetricOperator, capacity: int) -> None:
        self._rows = torch.empty(capacity, op.dim, dtype=op.dtype, device=op.device)
        self.size = 0

    def append(self, columns: Tensor) -> None:
        """Add the columns of ``columns`` ``(dim, b)`` as rows."""
        b = columns.shape[1]
        if self.size + b > self._rows.shape[0]:
            grown = self._rows.new_empty(2 * self._rows.shape[0] + b, self._rows.shape[1])
            grown[: self.size] = self._rows[: self.size]
            self._rows = grown
        self._rows[self.size : self.size + b] = columns.T
        self.size += b

    @property
    def rows(self) -> Tensor:
        return self._rows[: self.size]


def _tridiagonal(alpha: list[float], beta: list[float]) -> Tensor:
    t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if len(alpha) > 1:
        off = torch.tensor(beta[: len(alpha) - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    return t


def _next_block(w: Tensor, basis: Tensor, op: SymmetricOperator, gen: torch.Generator,
                floor: float) -> tuple[Tensor, Tensor]:
    """Orthonormalize the columns of ``w`` (already orthogonal to the rows of ``basis``)
    against each other, Gram–Schmidt twice: ``w ≈ Q_new R`` with ``R`` upper triangular
    (float64, CPU).
    A column that vanishes (norm ``≤ floor``: breakdown) is replaced by a random direction
    orthogonal to everything so far, with a zero row in ``R``."""
    b = w.shape[1]
    cols: list[Tensor] = []
    r = torch.zeros(b, b, dtype=torch.float64)
    for i in range(b):
        v = w[:, i]
        for _ in range(2 if cols else 0):
            done = torch.stack(cols)
            c = done @ v
            r[: len(cols), i] += c.double().cpu()
            v = v - done.T @ c
        norm = float(v.norm())
        if norm > floor:
            r[i, i] = norm
            cols.append(v / norm)
            continue
        done = torch.cat([basis, torch.stack(cols)]) if cols else basis
        v = _orthogonalize(_random_vector(op, gen), done)
        cols.append(v / v.norm())
    return torch.stack(cols, 1), r


def lanczos(
    op: SymmetricOperator,
    k: int = 1,
    *,
    tol: float = 1e-4,
    max_iter: int = 200,
    v0: Tensor | None = None,
    seed: int | torch.Generator = 0,
) -> Eigenpairs:
    """The ``k`` algebraically largest eigenpairs of a symmetric operator, by block Lanczos.

    Block size ``k`` (plain Lanczos for ``k = 1``): from ``V_1`` (``v0``, e.g. the previous
    top eigenvector(s) for a warm start, completed with Gaussian columns from ``seed``) it
    builds an orthonormal basis ``Q = [V_1 … V_j]`` of the block Krylov space with full
    reorthogonalization, so that ``QᵀAQ = T`` is block tridiagonal; the Ritz pairs
    ``(θ_i, Q s_i)`` of ``T`` approximate eigenpairs of ``A``, and an eigenvalue repeated up
    to ``k`` times is found with its multiplicity. It stops when the top ``k`` residuals
    ``‖A y_i − θ_i y_i‖ = ‖R_j s_i^{(last)}‖`` are all ``≤ tol · max|θ|``, after about
    ``max_iter`` products, or when ``Q`` spans the space. For symmetric ``A`` each Ritz
    value lies within its residual of an eigenvalue (typically within residual²/gap). A
    breakdown (an invariant subspace) continues from random directions orthogonal to ``Q``.

    Memory: ``dim × (products)`` in the operator's dtype; ``T`` is handled in float64.
    """
    if k < 1 or k > op.dim:
        raise InputError("k", k, f"an integer in [1, {op.dim}]")
    if tol <= 0:
        raise InputError("tol", tol, "a positive tolerance")
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    start = torch.empty(op.dim, 0, dtype=op.dtype, device=op.device)
    if v0 is not None:
        start = v0.to(device=op.device, dtype=op.dtype).reshape(op.dim, -1)[:, :k]
        if not torch.isfinite(start).all() or bool((start.norm(dim=0) == 0).any()):
            raise InputError("v0", "zero or non-finite vector", "non-zero finite start vectors")
    extra = [_random_vector(op, gen) for _ in range(k - start.shape[1])]
    start = torch.cat([start, *(e[:, None] for e in extra)], dim=1)
    block, _ = _next_block(start, start.T[:0], op, gen, 0.0)
    steps = max(1, min(max(max_iter, k) // k, op.dim // k))
    basis = _Basis(op, min(steps, 16) * k)
    t = torch.zeros(steps * k, steps * k, dtype=torch.float64)
    products = 0
    for j in range(steps):
        lo, hi = j * k, (j + 1) * k
        basis.append(block)
        w = torch.stack([op.matvec(q) for q in block.T], dim=1)
        products += k
        a = block.T @ w
        t[lo:hi, lo:hi] = ((a + a.T) / 2).double().cpu()
        w = _orthogonalize(w, basis.rows)
        theta, s = torch.linalg.eigh(t[:hi, :hi])
        order = torch.argsort(theta, descending=True)[:k]
        scale = max(float(theta.abs().max()), 1e-30)
        residuals = (w @ s[-k:, order].to(w)).norm(dim=0).double().cpu()
        converged = bool((residuals <= tol * scale).all())
        if converged or j == steps - 1:
            break
        block, r = _next_block(w, basis.rows, op, gen, 1e-10 * scale)
        t[hi : hi + k, lo:hi] = r
        t[lo:hi, hi : hi + k] = r.T
    vectors = basis.rows.T @ s[:, order].to(dtype=op.dtype, device=op.device)
    if hi == op.dim:
        converged = True
    return Eigenpairs(theta[order], vectors, residuals, converged, products)


# ---- trace estimators ----------------------------------------------------------------


@dataclass
class TraceEstimate:
    """``value`` ± ``stderr`` (one standard error of the random part), from ``matvecs``."""

    value: float
    stderr: float
    matvecs: int


def _generator(seed: int | torch.Generator) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)


def hutchinson(op: SymmetricOperator, matvecs: int, *, seed: int | torch.Generator = 0
               ) -> TraceEstimate:
    """Hutchinson's estimate ``tr A ≈ (1/m) Σ_i z_iᵀ A z_i`` with Rademacher ``z_i``.

    Unbiased; its variance is ``2(‖A‖_F² − Σ_i A_ii²)/m``. ``stderr`` is the sample
    standard deviation of ``z_iᵀAz_i`` over ``√m`` (needs ``m ≥ 2``).
    """
    if matvecs < 2:
        raise InputError("matvecs", matvecs, "at least 2")
    gen = _generator(seed)
    samples = []
    for _ in range(matvecs):
        z = _random_vector(op, gen, "rademacher")
        samples.append(float(z @ op.matvec(z)))
    x = np.asarray(samples)
    return TraceEstimate(float(x.mean()), float(x.std(ddof=1) / math.sqrt(matvecs)), matvecs)


def hutch_pp(op: SymmetricOperator, matvecs: int, *, seed: int | torch.Generator = 0
             ) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021): ``tr A`` with ``m`` products.

    With ``s = m // 3``: ``Q`` = orthonormal basis of ``A S`` for a Rademacher sketch
    ``S`` (``s`` products); the top part ``tr(QᵀAQ)`` is exact (``s`` products); the rest
    ``tr((I−QQᵀ)A(I−QQᵀ))`` is Hutchinson's estimate with the remaining ``m − 2s``
    projected Rademacher probes. Error ``O(1/m)`` instead of Hutchinson's ``O(1/√m)`` when
    the spectrum decays. ``stderr`` is that of the Hutchinson part (needs ``m ≥ 6``).
    """
    if matvecs < 6:
        raise InputError("matvecs", matvecs, "at least 6")
    gen = _generator(seed)
    s = min(matvecs // 3, op.dim)
    sketch = torch.stack([op.matvec(_random_vector(op, gen, "rademacher")) for _ in range(s)], 1)
    q, _ = torch.linalg.qr(sketch)
    top = sum(float(q[:, i] @ op.matvec(q[:, i])) for i in range(q.shape[1]))
    rest = matvecs - 2 * s
    samples = []
    for _ in range(rest):
        z = _random_vector(op, gen, "rademacher")
        z = z - q @ (q.T @ z)
        samples.append(float(z @ op.matvec(z)))
    x = np.asarray(samples) if samples else np.zeros(1)
    stderr = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return TraceEstimate(top + float(x.mean()), stderr, 2 * s + rest)


# ---- spectral density ----------------------------------------------------------------


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: ``nodes`` and ``weights``, both ``(probes, m)``.

    For each probe ``z`` (Rademacher, normalized) the Gauss quadrature with ``m`` nodes
    satisfies ``Σ_j w_j f(θ_j) = zᵀ f(A) z / zᵀz`` exactly for polynomials ``f`` of degree
    ``< 2m``; averaged over probes it estimates ``(1/dim) tr f(A)``, i.e. integrals
    against the spectral density ``ρ(t) = (1/dim) Σ_i δ(t − λ_i)``.
    """

    nodes: Tensor
    weights: Tensor

    def moment(self, p: int) -> float:
        """The estimate of ``(1/dim) tr A^p``."""
        return float((self.weights * self.nodes**p).sum(1).mean())

    def density(self, grid: Tensor, sigma: float) -> Tensor:
        """``ρ`` broadened by a Gaussian of width ``sigma``, on ``grid`` (float64)."""
        t = grid.double()[:, None, None]
        kernel = torch.exp(-0.5 * ((t - self.nodes[None]) / sigma) ** 2)
        kernel = kernel / (sigma * math.sqrt(2 * math.pi))
        return (kernel * self.weights[None]).sum(2).mean(1)


def spectral_density(
    op: SymmetricOperator, *, probes: int = 4, steps: int = 60, seed: int | torch.Generator = 0
) -> SpectralDensity:
    """SLQ (Lin, Saad & Yang 2016; Ghorbani, Krishnan & Xiao 2019): ``probes`` Lanczos
    runs of ``steps`` products each, with full reorthogonalization; the nodes of a run
    are the eigenvalues ``θ_j`` of its ``T`` and the weights the squared first
    components ``s_{1j}²`` of its eigenvectors."""
    if probes < 1 or steps < 1:
        raise InputError("probes/steps", (probes, steps), "positive integers")
    gen = _generator(seed)
    steps = min(steps, op.dim)
    nodes, weights = [], []
    for _ in range(probes):
        q = _random_vector(op, gen, "rademacher")
        q = q / q.norm()
        basis = _Basis(op, steps)
        alpha: list[float] = []
        beta: list[float] = []
        for _ in range(steps):
            basis.append(q[:, None])
            w = op.matvec(q)
            alpha.append(float(q @ w))
            w = _orthogonalize(w, basis.rows)
            beta.append(float(w.norm()))
            if beta[-1] <= 1e-10 * max(abs(a) for a in alpha):
                break  # invariant subspace: the quadrature is exact for this probe
            q = w / beta[-1]
        theta, s = torch.linalg.eigh(_tridiagonal(alpha, beta))
        pad = steps - len(alpha)  # short runs get zero-weight nodes
        nodes.append(torch.cat([theta, theta.new_zeros(pad)]))
        weights.append(torch.cat([s[0] ** 2, theta.new_zeros(pad)]))
    return SpectralDensity(torch.stack(nodes), torch.stack(weights))


# ---- adaptive preconditioning ------------------------------------------------------------


def adam_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module,
                        params: Sequence[str] | None = None) -> Tensor | None:
    """Adam's diagonal preconditioner ``P`` (Cohen et al. 2022) as one vector.

    For a parameter in a group with learning rate ``η_g`` after ``t`` updates, Adam (and
    AdamW without weight decay) steps by ``θ ← θ − η P⁻¹ m_t`` with ``m_t`` the EMA of
    gradients and ``P = (1 − β₁ᵗ)(√v̂_t + ε) · η/η_g``, ``v̂_t = v_t/(1 − β₂ᵗ)``;
    ``η = optimizer.defaults["lr"]``. On a quadratic with ``P`` frozen, the iteration is
    stable iff ``λ_max(P⁻¹H) < (2 + 2β₁)/((1 − β₁)η)``. The layout is that of
    :class:`HessianOperator` with the same ``params``. ``None`` before the first update.
    """
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        raise InputError("optimizer", type(optimizer).__name__, "torch.optim.Adam or AdamW")
    eta = float(optimizer.defaults["lr"])
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    names = [n for n, p in named.items() if p.requires_grad] if params is None else [
        n for n in named if n in set(params)]
    parts = []
    for n in names:
        p = named[n]
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state or id(p) not in group_of:
            return None
        g = group_of[id(p)]
        beta1, beta2 = g["betas"]
        t = float(state["step"])
        v_hat = state["exp_avg_sq"] / (1 - beta2**t)
        parts.append(((1 - beta1**t) * (v_hat.sqrt() + g["eps"]) * eta / g["lr"]).reshape(-1))
    return torch.cat(parts).detach()


class PreconditionedOperator:
    """``P^{-1/2} H P^{-1/2}`` for a positive diagonal ``P``: symmetric, with the same
    eigenvalues as ``P⁻¹H`` (eigenvectors ``u`` of it map to ``P^{-1/2}u`` of ``P⁻¹H``)."""

    def __init__(self, op: SymmetricOperator, p: Tensor) -> None:
        if p.shape != (op.dim,) or bool((p <= 0).any()):
            raise InputError("p", tuple(p.shape), f"a positive vector of shape ({op.dim},)")
        self.op = op
        self.scale = p.to(device=op.device, dtype=op.dtype).rsqrt()
        self.dim, self.dtype, self.device = op.dim, op.dtype, op.device

    def matvec(self, v: Tensor) -> Tensor:
        return self.scale * self.op.matvec(self.scale * v)


# ---- probes for the trainer ----------------------------------------------------------------


def _train_batch(state: ProbeState) -> Batch:
    return state.data.x_train, state.data.y_train


class Sharpness:
    """Sharpness ``λ_max(∇²L)`` of the full training loss, by Lanczos (``tol`` 1e-4).

    Each measurement warm-starts from the previous top eigenvector, so along a run it
    usually needs a handful of products. The loss is the system's objective on the whole
    training split (also for SGD runs). Observable ``sharpness``.
    """

    name = "sharpness"

    def __init__(self, tol: float = 1e-4, max_iter: int = 200) -> None:
        self.tol, self.max_iter = tol, max_iter
        self._v: Tensor | None = None

    def start(self, state: ProbeState) -> None:
        self._v = None

    def __call__(self, state: ProbeState) -> float:
        return self._top(HessianOperator(state.model, state.loss_fn, _train_batch(state)),
                         state)

    def _top(self, op: SymmetricOperator, state: ProbeState) -> float:
        """The top eigenvalue of ``op``, warm-started from (and keeping) the last vector."""
        top = lanczos(op, 1, tol=self.tol, max_iter=self.max_iter, v0=self._v,
                      seed=state.system.seed)
        self._v = top.vectors[:, 0]
        return float(top.values[0])


class PreconditionedSharpness(Sharpness):
    """``λ_max(P⁻¹H)`` with Adam's current preconditioner (:func:`adam_preconditioner`),
    warm-started like :class:`Sharpness`; NaN before the first update. Its stability
    threshold is ``(2 + 2β₁)/((1 − β₁)η)``. Observable ``preconditioned_sharpness``."""

    name = "preconditioned_sharpness"

    def __call__(self, state: ProbeState) -> float:
        p = adam_preconditioner(state.optimizer, state.model)
        if p is None:
            return math.nan
        return self._top(PreconditionedOperator(
            HessianOperator(state.model, state.loss_fn, _train_batch(state)), p), state)


register_probe("sharpness")(Sharpness)
register_probe("preconditioned_sharpness")(PreconditionedSharpness)
