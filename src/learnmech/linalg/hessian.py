"""Matrix-free Hessians of any ``nn.Module`` with a user loss.

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
* :func:`adam_preconditioner`: Adam's diagonal preconditioner ``P``, so that
  ``PreconditionedOperator(HessianOperator(...), P)`` is the preconditioned Hessian
  ``P⁻¹H`` of Cohen et al. 2022 in its symmetric form.

The spectral routines (:func:`~learnmech.linalg.lanczos`, :func:`~learnmech.linalg.hutch_pp`,
:func:`~learnmech.linalg.spectral_density`) take any
:class:`~learnmech.linalg.operators.SymmetricOperator`.

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
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

from learnmech.errors import InputError
from learnmech.linalg.operators import as_generator, random_vector
from learnmech.memory import require_memory

Batch = tuple[Any, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
Backend = Literal["auto", "autograd", "func"]


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

    def gradient_start(self, seed: int | torch.Generator = 0) -> Tensor:
        """A start vector for :func:`~learnmech.linalg.lanczos`: ``ĝ + r̂/2``, the unit
        gradient ``∇L/‖∇L‖`` plus half a unit Gaussian direction drawn from ``seed``
        (``r̂`` alone where the gradient is zero or not finite).

        After a little training the gradient lies mostly in the span of the Hessian's top
        eigenvectors (Gur-Ari, Roberts & Dyer 2018, "Gradient descent happens in a tiny
        subspace"), so the Krylov space it starts holds the top eigenvector after a few
        products; the Gaussian half keeps a component along every direction, should the
        gradient miss the top one. Measured (``bench/hessian.py``, residual tolerance
        3e-3, five seeds): on a Fashion-MNIST MLP of 269k parameters 3–4 products instead
        of 7–9 from a Gaussian start; on a digits MLP whose gradient is orthogonal to the
        top eigenvector (cosine 5e-4) 12–14 instead of 12–13. For a single batch the
        gradient comes from the graph the products use, at no extra cost.
        """
        r = random_vector(self, as_generator(seed))
        r = r / r.norm()
        g = self.loss_and_gradient()[1]
        norm = float(g.norm())
        if not math.isfinite(norm) or norm == 0.0:
            return r
        return g / norm + r / 2

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
        require_memory("dense", f"the Hessian of {self.dim} parameters",
                       2.0 * self.dim**2 * torch.finfo(self.dtype).bits / 8,
                       "use matvec, lanczos or a smaller model")
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return torch.stack([self.matvec(e) for e in eye], dim=1)


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
