"""Vectorized ensembles: several runs of one shape trained together as one model.

Runs that differ only in ``seed``, ``learning_rule.lr`` and ``architecture.init_scale``
have parameters of identical shapes and identical forward maps, so their ``E`` parameter
sets can be stacked along a leading axis (one flat ``(E, P)`` tensor) and trained in one
pass: a batched forward (batched matrix products for a learnmech ``Network``,
``torch.func.vmap`` over ``functional_call`` for any other module), one backward pass
of the summed member losses (members are independent, so each member's block of the
gradient is its own gradient), and one vectorized optimizer step::

    systems = [base.updated({"seed": s, "learning_rule.lr": lr}) for s, lr in grid]
    trajectories = train_ensemble(systems, ["loss"], Schedule("log", 30))

Each member keeps everything that makes it the same run as :func:`learnmech.train.train`
would make: its own initial weights (from its seed, as :func:`~learnmech.train.initial_state`
draws them), its own minibatch order (from the same generator, after initialization),
its own learning rate, optimizer state and divergence test. The optimizers are written
out functionally on the stacked tensors, following ``torch.optim.SGD`` and
``torch.optim.AdamW`` operation by operation, so the numbers agree with one-by-one
training up to floating-point rounding of batched kernels (tested against
:func:`~learnmech.train.train`). Probes see each member as an ordinary
:class:`~learnmech.models.Network` with a torch optimizer carrying its state.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from learnmech.data import Dataset, load
from learnmech.errors import InputError
from learnmech.loop import Divergence, class_log_probs
from learnmech.models import Network, Trace, build_model
from learnmech.probes import make_probes
from learnmech.store import Store
from learnmech.system import LearningRule, System
from learnmech.train import (
    Schedule,
    Series,
    Trajectory,
    make_optimizer,
    objective,
    record,
    resolve_device,
    start_probes,
    train,
)

aten = torch.ops.aten

#: The spec fields in which members of one ensemble may differ.
VARYING = ("seed", "learning_rule.lr", "architecture.init_scale")

#: ``forward(named, x)``: stacked parameters by name and inputs to outputs ``(E, B, d_out)``.
_Forward = Callable[[dict[str, Tensor], Tensor], Tensor]


def ensemble_key(system: System) -> str:
    """Canonical JSON of ``system`` without the :data:`VARYING` fields: runs with equal
    keys can train together as one ensemble."""
    raw = system.model_dump(mode="json")
    del raw["seed"]
    del raw["learning_rule"]["lr"]
    del raw["architecture"]["init_scale"]
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


def group_ensembles(systems: Sequence[System], max_size: int = 64) -> list[list[System]]:
    """Partition ``systems`` (order kept within a group) into ensembles of equal
    :func:`ensemble_key`, each at most ``max_size`` members."""
    if max_size < 1:
        raise InputError("max_size", max_size, "a positive integer")
    groups: dict[str, list[System]] = {}
    for s in systems:
        groups.setdefault(ensemble_key(s), []).append(s)
    return [g[i : i + max_size] for g in groups.values() for i in range(0, len(g), max_size)]


class _Member:
    """One run of the ensemble: its spec, its network (for probes), optimizer and state."""

    def __init__(self, system: System, data: Dataset, device: torch.device, dtype: torch.dtype):
        self.system = system
        gen = torch.Generator().manual_seed(system.seed)  # exactly as in initial_state
        model, self.plan = build_model(
            system.architecture,
            data.d_in,
            data.d_out,
            system.learning_rule.optimizer,
            generator=gen,
        )
        self.model: Network = model.to(device=device, dtype=dtype)
        self.gen = gen
        self.optimizer = make_optimizer(self.model, self.plan, system.learning_rule)
        self.observables: dict[str, Series] = {}
        self.status: Literal["completed", "diverged"] = "completed"
        self.diverged_at: int | None = None
        self.reason: str | None = None

    def lr_of(self) -> dict[str, float]:
        """Learning rate of every parameter, by name, as its torch optimizer has it."""
        by_id = {id(p): g["lr"] for g in self.optimizer.param_groups for p in g["params"]}
        return {name: by_id[id(p)] for name, p in self.model.named_parameters()}


def _check_compatible(systems: Sequence[System]) -> None:
    if not systems:
        raise InputError("systems", [], "at least one system")
    key = ensemble_key(systems[0])
    for s in systems[1:]:
        if ensemble_key(s) != key:
            raise InputError(
                "systems",
                s.run_id,
                f"systems that differ only in {', '.join(VARYING)} (see ensemble_key)",
            )


def train_ensemble(
    systems: Sequence[System],
    probes: Sequence[str] = (),
    schedule: Schedule | None = None,
    *,
    divergence_factor: float = 1e4,
    progress: Callable[[int, int], None] | None = None,
) -> list[Trajectory]:
    """Train ``systems`` together as one vectorized model; one trajectory per system.

    Args:
        systems: ``E`` systems that differ at most in :data:`VARYING`.
        probes: names of the probes each member is measured with (fresh instances per
            member, see :mod:`learnmech.probes`).
        schedule: when to run them; default 100 log-spaced steps.
        divergence_factor: as in :func:`learnmech.train.train`, per member.
        progress: optional ``callback(steps_done, steps_total)``.

    Returns:
        Trajectories in the order of ``systems``, as :func:`learnmech.train.train` returns
        them (trained ``model`` and ``data`` included). ``seconds`` is each member's share
        (1/E) of the ensemble's wall time.
    """
    _check_compatible(systems)
    start = time.perf_counter()
    first = systems[0]
    device = resolve_device(first.device)
    dtype = torch.float64 if first.dtype == "float64" else torch.float32
    data = load(first.data).to(device, dtype)
    members = [_Member(s, data, device, dtype) for s in systems]
    rule = first.learning_rule
    loss_fn = objective(first, data)
    total = rule.steps
    vectorized = [name for name in probes if name in _VECTORIZED]
    instruments = [make_probes([p for p in probes if p not in _VECTORIZED]) for _ in members]
    probe_steps = set((schedule or Schedule()).steps(total)) if probes else set()
    for insts, m in zip(instruments, members, strict=True):
        start_probes(insts, m.model, loss_fn, data, m.optimizer)

    template = members[0].model
    layout = _Layout(template)
    # (E, P), updated in place; ``named`` are its views shaped (E, *shape) per parameter
    params = torch.stack([layout.flatten(dict(m.model.named_parameters())) for m in members])
    named = layout.unflatten_stacked(params)
    lrs = torch.stack([layout.flatten_values(m.lr_of()) for m in members]).to(dtype)
    opt = _FunctionalOptimizer(rule, layout, params, lrs)

    network = _StackedNetwork(template)
    forward = network.forward
    loss_terms = _stacked_loss_terms(first, data)
    stacked_loss = stacked_objective(first, data)

    x, y = data.x_train, data.y_train
    batch = rule.batch_size if rule.batch_size and rule.batch_size < x.shape[0] else None
    batches = (
        itertools.repeat((x, y))
        if batch is None
        else _minibatches([m.gen for m in members], x, y, batch)
    )
    alive = torch.ones(len(members), dtype=torch.bool, device=device)
    divergence = Divergence(divergence_factor)
    tick = max(total // 100, 1)
    step = 0
    for step in range(total + 1):
        if step in probe_steps:
            finite = torch.isfinite(params).all(1).tolist()
            for k, m in enumerate(members):
                if m.status == "completed" and not finite[k]:  # as train: no probes on NaNs
                    m.status, m.diverged_at, m.reason = "diverged", step, "non-finite parameters"
                    alive[k] = False
            for name in vectorized:
                _record_stacked(
                    _VECTORIZED[name](forward, named, data, stacked_loss), members, step
                )
            for k, m in enumerate(members):
                if m.status == "completed" and instruments[k]:
                    _sync(m, k, params, opt, layout)
                    record(instruments[k], m.model, loss_fn, data, m.optimizer, step,
                           m.observables)
        if step == total or not bool(alive.any()):
            break
        xb, yb = next(batches)
        losses, by_name = network.gradients(named, xb, yb, loss_terms)  # (E,), (E, *shape)
        grads = [by_name[name] for name, *_ in layout.entries]
        values = losses.double()  # (E,), compared in float64 as train does
        diverging = alive & divergence.diverging(step, values)
        if bool(diverging.any()):
            for k in diverging.nonzero().flatten().tolist():
                m = members[k]
                m.status, m.diverged_at = "diverged", step
                m.reason = divergence.explain(float(values[k]))
            alive &= ~diverging
        opt.step(grads, alive)
        if progress is not None and (step + 1) % tick == 0:
            progress(step + 1, total)
    seconds = (time.perf_counter() - start) / len(members)
    out = []
    for k, m in enumerate(members):
        _sync(m, k, params, opt, layout)
        m.optimizer.zero_grad(set_to_none=True)
        out.append(
            Trajectory(
                system=m.system,
                status=m.status,
                steps_done=m.diverged_at if m.diverged_at is not None else step,
                observables=m.observables,
                seconds=seconds,
                diverged_at=m.diverged_at,
                reason=m.reason,
                model=m.model,
                data=data,
            )
        )
    return out


#: ``backward(g, z, h)``: the gradient at an activation's input ``z`` from the gradient
#: ``g`` at its output ``h = φ(z)``, computed as autograd computes it (the kernel or formula
#: of torch's ``derivatives.yaml``), so that the stacked gradients are bitwise autograd's.
_ACTIVATION_BACKWARD: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "relu": lambda g, z, h: aten.threshold_backward(g, h, 0),
    "tanh": lambda g, z, h: aten.tanh_backward(g, h),
    "gelu": lambda g, z, h: aten.gelu_backward(g, z),
    "erf": lambda g, z, h: (2.0 / math.sqrt(math.pi)) * torch.exp(-z.pow(2)) * g,
    "identity": lambda g, z, h: g,
}


class _StackedNetwork:
    """``E`` stacked copies of a :class:`Network`: their forward pass, and the gradient of
    every member's loss written out layer by layer (no autograd graph).

    The forward is :meth:`Network.forward_trace` with each product ``h Wᵀ`` a batched one
    (``(E, B, in) × (E, in, out)``; the bias added in the product when the multiplier is
    1, as one pass). The backward runs, for each member, the products of
    :func:`torch.nn.functional.linear`'s backward in its layouts (``g W`` for the input,
    ``gᵀ h`` for the weight, the batch sum of ``g`` for the bias) and the kernels autograd
    calls for the activation and the loss, so a member's gradient is that of its network
    run alone, bit for bit wherever the batched product of one member is the plain one.
    Written out, there is no autograd graph to build and walk: the forward and backward of
    the 32 MLPs of ``bench/ensemble.py`` take 2.5 ms instead of 3.2 ms (an AMD EPYC, one
    thread).
    """

    def __init__(self, net: Network) -> None:
        self.net = net
        self._phi_backward = _ACTIVATION_BACKWARD[net.activation]

    def trace(self, named: dict[str, Tensor], x: Tensor) -> Trace:
        """Every member's forward trace; ``x`` ``(E, B, d_in)`` or shared ``(B, d_in)``."""
        members = next(iter(named.values())).shape[0]
        h = x if x.ndim == 3 else x.expand(members, *x.shape)  # (E, B, d_in)

        def affine(i: int, h: Tensor) -> Tensor:
            weight, bias = named[f"layers.{i}.weight"], named.get(f"layers.{i}.bias")
            m = self.net.multipliers[i]
            if m == 1.0 and bias is not None:  # the same numbers as product + bias
                return torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
            z = torch.bmm(h, weight.transpose(1, 2))
            z = z if m == 1.0 else z * m
            return z if bias is None else z + bias[:, None, :]

        return self.net.forward_trace(h, affine)

    def forward(self, named: dict[str, Tensor], x: Tensor) -> Tensor:
        """Outputs ``(E, B, d_out)``."""
        return self.trace(named, x).output

    def gradients(self, named: dict[str, Tensor], x: Tensor, y: Tensor, loss: _LossTerms
                  ) -> tuple[Tensor, dict[str, Tensor]]:
        """The members' losses ``(E,)`` and the gradient of each member's loss with respect
        to its parameters, by name, each ``(E, *shape)``."""
        trace = self.trace(named, x)
        losses, g = loss(trace.output, y, True)  # g: ∂loss/∂z_L, (E, B, d_out)
        assert g is not None
        grads: dict[str, Tensor] = {}
        for i in reversed(range(len(trace.inputs))):
            if f"layers.{i}.bias" in named:
                grads[f"layers.{i}.bias"] = g.sum(1)
            m = self.net.multipliers[i]
            g = g if m == 1.0 else g * m  # ∂loss/∂(h Wᵀ)
            h = trace.inputs[i]
            grads[f"layers.{i}.weight"] = torch.bmm(g.transpose(1, 2), h)
            if i:
                g = self._phi_backward(torch.bmm(g, named[f"layers.{i}.weight"]),
                                       trace.preactivations[i - 1], h)
        return losses, grads


def stacked_forward(template: nn.Module, generic: bool = False) -> _Forward:
    """``forward(named, x)``: the outputs ``(E, B, d_out)`` of every member.

    ``named`` maps each parameter name of ``template`` to the stacked parameters
    ``(E, *shape)`` of the members (e.g. :meth:`_Layout.unflatten_stacked`); ``x`` is
    ``(E, B, d_in)`` (one minibatch per member) or ``(B, d_in)`` (shared). A learnmech
    :class:`Network` runs as batched matrix products, operation by operation as
    :meth:`Network.forward` does them (see :class:`_StackedNetwork`). Any other module (or
    ``generic=True``) runs through ``torch.func.vmap`` over ``functional_call`` (slower for
    small models: per-call transform overhead).
    """
    if isinstance(template, Network) and not generic:
        return _StackedNetwork(template).forward

    def member(named: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(template, named, (x,))

    shared, own = vmap(member, in_dims=(0, None)), vmap(member, in_dims=(0, 0))
    return lambda named, x: shared(named, x) if x.ndim == 2 else own(named, x)


#: ``terms(outputs, y, gradient) -> (losses, ∂Σ losses/∂outputs or None)``.
_LossTerms = Callable[[Tensor, Tensor, bool], tuple[Tensor, Tensor | None]]


def _stacked_loss_terms(system: System, data: Dataset) -> _LossTerms:
    """The system's objective (:func:`learnmech.train.objective`) for each member, from
    outputs ``(E, B, d_out)`` and targets ``(E, B, ...)`` or shared ``(B, ...)``, and, if
    asked, its gradient with respect to the outputs, with the kernels and operations
    autograd runs for it (bitwise autograd's)."""

    def per_member(y: Tensor, members: int, item_dims: int) -> Tensor:
        """``y`` with a leading member axis (expanded when shared by all members)."""
        return y if y.ndim == item_dims + 2 else y.expand(members, *y.shape)

    if system.objective == "cross_entropy":

        def cross_entropy_terms(out: Tensor, y: Tensor, gradient: bool
                                ) -> tuple[Tensor, Tensor | None]:
            members, batch, classes = out.shape
            labels = per_member(y, members, 0).reshape(-1)
            logp = class_log_probs(out.reshape(-1, classes))  # (C, E·B), as cross_entropy
            per_example, total = aten.nll_loss_forward(logp.T, labels, None, 0, -100)
            losses = per_example.view(members, batch).mean(1)
            if not gradient:
                return losses, None
            mean_grad = torch.ones(members * batch, dtype=out.dtype, device=out.device) / batch
            g = aten.nll_loss_backward(mean_grad, logp.T, labels, None, 0, -100, total)
            g = aten._log_softmax_backward_data(g.T, logp, 0, logp.dtype)  # (C, E·B)
            return losses, g.T.reshape(members, batch, classes)

        return cross_entropy_terms

    def mse_terms(out: Tensor, y: Tensor, gradient: bool) -> tuple[Tensor, Tensor | None]:
        target = data.targets(y) if data.task == "classification" else y
        diff = out - per_member(target, out.shape[0], 1)
        losses = 0.5 * diff.pow(2).sum((1, 2)) / out.shape[1]
        if not gradient:
            return losses, None
        # autograd's chain, node by node: /B, 0.5·, the sum's expansion, pow 2
        scale = torch.ones_like(losses) / out.shape[1] * 0.5
        return losses, scale[:, None, None] * (2.0 * diff)

    return mse_terms


def stacked_objective(system: System, data: Dataset) -> Callable[[Tensor, Tensor], Tensor]:
    """``loss(outputs, y) -> (E,)``: the system's objective (:func:`learnmech.train.objective`)
    for each member, from outputs ``(E, B, d_out)`` and targets ``(E, B, ...)`` or shared
    ``(B, ...)``."""
    terms = _stacked_loss_terms(system, data)
    return lambda out, y: terms(out, y, False)[0]


#: Stacked rows (members × examples) per forward pass of a vectorized probe: the whole
#: split at once would make ``(E, N, width)`` activations of several MB (32 members of
#: width 64 on 1000 digits: 8 MB); in chunks they stay in cache, and the loss probe of the
#: ensemble benchmark (``bench/ensemble.py``) takes 0.11 s instead of 0.16 s.
_PROBE_ROWS = 4096


def _chunks(named: dict[str, Tensor], x: Tensor, y: Tensor
            ) -> Iterator[tuple[Tensor, Tensor]]:
    """Shared inputs ``x`` ``(N, ...)`` and targets ``y`` in chunks of examples."""
    rows = max(_PROBE_ROWS // next(iter(named.values())).shape[0], 1)
    for a in range(0, x.shape[0], rows):
        yield x[a : a + rows], y[a : a + rows]


def _stacked_loss(
    forward: _Forward, named: dict[str, Tensor], data: Dataset, loss: _LossFn
) -> dict[str, Tensor]:
    """The ``loss`` probe (:class:`learnmech.probes.Loss`) for every member at once: the
    mean loss over each split, ``Σ_c n_c L_c / N`` over chunks ``c`` of ``n_c`` examples."""
    out = {}
    with torch.no_grad():
        for name, x, y in (("train_loss", data.x_train, data.y_train),
                           ("test_loss", data.x_test, data.y_test)):
            if x.shape[0]:
                parts = [loss(forward(named, xc), yc) * xc.shape[0]
                         for xc, yc in _chunks(named, x, y)]
                out[name] = torch.stack(parts).sum(0) / x.shape[0]
    return out


def _stacked_accuracy(
    forward: _Forward, named: dict[str, Tensor], data: Dataset, loss: _LossFn
) -> dict[str, Tensor]:
    """The ``accuracy`` probe (:class:`learnmech.probes.Accuracy`) for every member."""
    if data.task != "classification":
        raise InputError("probe", "accuracy", "a classification data set")
    out = {}
    with torch.no_grad():
        for split, x, y in (
            ("train", data.x_train, data.y_train),
            ("test", data.x_test, data.y_test),
        ):
            if x.shape[0]:
                hits = torch.cat([forward(named, xc).argmax(-1) == yc
                                  for xc, yc in _chunks(named, x, y)], dim=1)
                out[f"{split}_accuracy"] = hits.double().mean(-1)
    return out


_LossFn = Callable[[Tensor, Tensor], Tensor]

#: Probes measured for all members in one vectorized call (same values as the probe).
_VECTORIZED: dict[
    str, Callable[[_Forward, dict[str, Tensor], Dataset, _LossFn], dict[str, Tensor]]
] = {
    "loss": _stacked_loss,
    "accuracy": _stacked_accuracy,
}


def _record_stacked(values: dict[str, Tensor], members: list[_Member], step: int) -> None:
    """Append member ``k``'s entry of each ``(E,)`` observable to its series."""
    for name, v in values.items():
        for m, value in zip(members, v.tolist(), strict=True):
            if m.status == "completed":
                series = m.observables.setdefault(name, Series())
                series.steps.append(step)
                series.values.append(float(value))


def _minibatches(
    generators: Sequence[torch.Generator], x: Tensor, y: Tensor, batch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless minibatches ``(E, batch, ...)`` of ``x`` and ``y``: member ``k``'s are drawn
    from ``generators[k]`` exactly as :func:`train` draws them (a fresh permutation of the
    ``n`` examples whenever fewer than ``batch`` remain in the current one)."""
    n, members = x.shape[0], len(generators)
    while True:
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (E, n)
        order = order.to(x.device)
        for start in range(0, n - batch + 1, batch):
            idx = order[:, start : start + batch].reshape(-1)  # (E * batch,)
            yield (
                x.index_select(0, idx).view(members, batch, *x.shape[1:]),
                y.index_select(0, idx).view(members, batch, *y.shape[1:]),
            )


class _Layout:
    """Where each parameter of a network lives in one flat vector of length ``P``.

    Stacking the flat vectors of ``E`` members gives one ``(E, P)`` tensor: the forward
    pass sees views shaped like the parameters, the optimizer a handful of whole-tensor
    operations, whatever the number of layers.
    """

    def __init__(self, model: Network) -> None:
        self.entries: list[tuple[str, int, int, torch.Size]] = []
        offset = 0
        for name, p in model.named_parameters():
            self.entries.append((name, offset, offset + p.numel(), p.shape))
            offset += p.numel()

    def flatten(self, tensors: dict[str, Tensor]) -> Tensor:
        """``(P,)``: the named tensors concatenated (detached)."""
        return torch.cat([tensors[name].detach().reshape(-1) for name, *_ in self.entries])

    def flatten_values(self, values: dict[str, float]) -> Tensor:
        """``(P,)`` float64: one value per parameter tensor, repeated over its entries."""
        return torch.cat(
            [
                torch.full((b - a,), values[name], dtype=torch.float64)
                for name, a, b, _ in self.entries
            ]
        )

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Views of ``flat`` (``(P,)``) shaped like the named parameters."""
        return {name: flat[a:b].view(shape) for name, a, b, shape in self.entries}

    def unflatten_stacked(self, flat: Tensor) -> dict[str, Tensor]:
        """Views of ``flat`` (``(E, P)``) shaped ``(E, *shape)`` for each parameter.

        One ``split`` rather than a slice per parameter: its backward assembles the
        ``(E, P)`` gradient in one concatenation instead of one zero-filled ``(E, P)``
        tensor per parameter."""
        chunks = flat.split([b - a for _, a, b, _ in self.entries], dim=1)
        return {
            name: chunk.view(flat.shape[0], *shape)
            for (name, *_, shape), chunk in zip(self.entries, chunks, strict=True)
        }


def _sync(m: _Member, k: int, params: Tensor, opt: _FunctionalOptimizer, layout: _Layout) -> None:
    """Copy member ``k``'s parameters and optimizer state into its network and optimizer."""
    named = dict(m.model.named_parameters())
    with torch.no_grad():
        for name, value in layout.unflatten(params[k]).items():
            named[name].copy_(value)
    for name, a, b, shape in layout.entries:
        m.optimizer.state[named[name]] = opt.member_state(k, a, b, shape)


class _FunctionalOptimizer:
    """SGD (with momentum, Nesterov, L2 weight decay) and AdamW on ``(E, P)`` tensors,
    updated in place.

    ``params`` is the ``(E, P)`` tensor of the members' parameters; each step updates it in
    place, parameter by parameter through its ``(E, *shape)`` views (``torch._foreach_*``
    operations over the layout's tensors), from the gradients shaped like those views.
    ``lrs`` is the ``(E, P)`` learning rate of every member and entry (the member's lr
    times the layer's multiplier, computed in float64, cast to the parameters' dtype).
    The state tensors (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``) are ``(E, P)``
    too, ``step`` is ``(E,)``. Members with ``alive[k] = False`` keep their parameters
    and state unchanged. The update rules are those of ``torch.optim.SGD`` /
    ``torch.optim.AdamW`` (single-tensor implementations), operation by operation,
    written for a leading ensemble axis.
    """

    def __init__(self, rule: LearningRule, layout: _Layout, params: Tensor, lrs: Tensor
                 ) -> None:
        self.rule, self.layout, self.params = rule, layout, params
        self._p = list(layout.unflatten_stacked(params).values())
        self._lr = list(layout.unflatten_stacked(lrs).values())
        self.steps = 0
        self.adam = rule.optimizer == "adam"
        self.momentum = rule.momentum if rule.optimizer == "momentum" else 0.0
        self.state: dict[str, Tensor] = {}
        self._views: dict[str, list[Tensor]] = {}
        if self.adam:
            self._decay = list(layout.unflatten_stacked(1 - lrs * rule.weight_decay).values())

    def _buffer(self, key: str) -> tuple[list[Tensor], bool]:
        """The views of state ``key`` (a zero ``(E, P)`` tensor when new) and whether it
        is new."""
        new = key not in self.state
        if new:
            self.state[key] = torch.zeros_like(self.params)
            self._views[key] = list(self.layout.unflatten_stacked(self.state[key]).values())
        return self._views[key], new

    def step(self, grads: Sequence[Tensor], alive: Tensor) -> None:
        """One update of every member still ``alive`` from ``grads`` (in layout order)."""
        self.steps += 1
        dead = (~alive).nonzero().flatten() if not bool(alive.all()) else None
        if dead is not None:  # the update touches every row: save the stopped members' rows
            kept = {key: value[dead] for key, value in self.state.items()}
            kept["params"] = self.params[dead]
        if self.adam:
            self._adamw(list(grads))
        else:
            self._sgd(list(grads))
        if dead is not None:
            self.params[dead] = kept.pop("params")
            for key, value in kept.items():
                self.state[key][dead] = value

    def _sgd(self, g: list[Tensor]) -> None:
        wd, mom = self.rule.weight_decay, self.momentum
        d = torch._foreach_add(g, torch._foreach_mul(self._p, wd)) if wd != 0 else g
        if mom != 0:
            buf, new = self._buffer("momentum_buffer")
            if new:
                torch._foreach_copy_(buf, d)
            else:
                torch._foreach_mul_(buf, mom)
                torch._foreach_add_(buf, d)
            d = torch._foreach_add(d, torch._foreach_mul(buf, mom)) if self.rule.nesterov else buf
        torch._foreach_addcmul_(self._p, self._lr, d, value=-1)

    def _adamw(self, g: list[Tensor]) -> None:
        beta1, beta2 = self.rule.betas
        exp_avg, _ = self._buffer("exp_avg")
        exp_avg_sq, _ = self._buffer("exp_avg_sq")
        step = self.state.get("step", torch.zeros(self.params.shape[0], dtype=torch.float32,
                                                  device=self.params.device))
        self.state["step"] = step + 1
        if self.rule.weight_decay != 0:
            torch._foreach_mul_(self._p, self._decay)
        torch._foreach_lerp_(exp_avg, g, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_add_(exp_avg_sq, torch._foreach_mul(torch._foreach_mul(g, 1 - beta2), g))
        # every member still training has taken the same number of steps
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        denom = torch._foreach_div(torch._foreach_sqrt(exp_avg_sq), bias_correction2_sqrt)
        torch._foreach_add_(denom, self.rule.eps)
        update = torch._foreach_div(self._lr, bias_correction1)
        torch._foreach_mul_(update, exp_avg)
        torch._foreach_div_(update, denom)
        torch._foreach_sub_(self._p, update)

    def member_state(self, k: int, a: int, b: int, shape: torch.Size) -> dict[str, Tensor]:
        """Member ``k``'s state of the parameter at entries ``a:b``, in ``torch.optim``'s
        format (a scalar ``step``, tensors shaped like the parameter)."""
        return {
            key: value[k].clone() if key == "step" else value[k, a:b].reshape(shape).clone()
            for key, value in self.state.items()
        }


def run_ensembles(
    systems: Sequence[System],
    probes: Sequence[str] = ("loss",),
    schedule: Schedule | None = None,
    *,
    store: Store | None = None,
    fresh: bool = False,
    max_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> list[Trajectory]:
    """Trajectories of ``systems`` (in order), training compatible ones together.

    With a ``store``, finished runs are read back (unless ``fresh``) and new ones are
    saved as each ensemble finishes, exactly as :meth:`learnmech.store.Store.run` would
    store them one by one. ``progress(done, total)`` counts trained steps over all
    ensembles.
    """
    schedule = schedule or Schedule()
    out: dict[str, Trajectory] = {}
    todo: list[System] = []
    for s in systems:
        if store is not None and not fresh and store.finished(s, probes, schedule):
            out[s.run_id] = store.load(s.run_id)
        elif s.run_id not in {t.run_id for t in todo}:
            todo.append(s)
    groups = group_ensembles(todo, max_size)
    total = sum(g[0].learning_rule.steps for g in groups)
    done = 0
    for group in groups:
        steps = group[0].learning_rule.steps

        def report(k: int, _: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + k, total)

        if len(group) == 1:  # the plain trainer: no vectorization overhead
            trajs = [train(group[0], make_probes(probes), schedule, progress=report)]
        else:
            trajs = train_ensemble(group, probes, schedule, progress=report)
        for traj in trajs:
            if store is not None:
                store.save(traj, probes, schedule)
            out[traj.run_id] = traj
        done += steps
    return [out[s.run_id] for s in systems]
