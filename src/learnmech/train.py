"""One trainer for every experiment: ``train(system, probes, schedule) -> Trajectory``.

Each update is the training core's :func:`~learnmech.loop.gradient_step` (forward, loss,
backward, step) with two additions: probes run on the steps of a :class:`Schedule`, and
divergence (:class:`~learnmech.loop.Divergence`) ends the run as an outcome. A run
diverges at step ``s`` when the loss evaluated before update ``s`` is not finite or
exceeds ``divergence_factor`` times the loss at step 0.

Probes (:class:`learnmech.probes.base.Probe`) are called as ``probe(model, loss_fn, data,
optimizer, step)`` with the run's whole data set as the batch. They see the model *before*
the update of the step they are called at, so step 0 is the initialization and step
``steps`` is the trained network. Probes are not run on non-finite weights: the run is
recorded as diverged at that step instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from learnmech.data import Dataset, load
from learnmech.errors import InputError
from learnmech.loop import Divergence, cross_entropy, gradient_step
from learnmech.models import Network, build_model
from learnmech.param import LayerPlan
from learnmech.probes.base import LossFn, Probe
from learnmech.system import LearningRule, System, check_memory

Observable = float | list[float]


#: Most probe points a schedule may ask for.
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Schedule:
    """Which steps of a run the probes measure.

    ``kind="log"``: ``points`` log-spaced steps from 1 to ``steps`` plus step 0;
    ``kind="linear"``: ``points`` evenly spaced steps from 0 to ``steps``. The first and
    last steps are always included; duplicates after rounding are dropped.
    """

    kind: Literal["log", "linear"] = "log"
    points: int = 100

    def __post_init__(self) -> None:
        if self.kind not in ("log", "linear"):
            raise InputError("schedule", self.kind, "'log' or 'linear'")
        if isinstance(self.points, bool) or not 1 <= self.points <= MAX_POINTS:
            raise InputError("points", self.points, f"an integer from 1 to {MAX_POINTS}")

    def steps(self, total: int) -> list[int]:
        if total == 0:
            return [0]
        if self.kind == "log":
            grid = np.geomspace(1, total, max(self.points - 1, 1))
        else:
            grid = np.linspace(0, total, max(self.points, 2))
        return sorted({0, total, *(round(float(s)) for s in grid)})


@dataclass
class Series:
    """An observable over training: ``values[i]`` was measured at ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    values: list[Observable] = field(default_factory=list)

    def array(self) -> np.ndarray:
        return np.asarray(self.values, dtype=float)


@dataclass
class Trajectory:
    """The outcome of :func:`train`.

    ``status`` is ``"completed"`` or ``"diverged"`` (then ``diverged_at`` is the step and
    ``reason`` says why); a store returns ``"running"`` for a run that was interrupted.
    ``model`` and ``data`` are the trained network and the data it saw; they are ``None``
    for a trajectory read back from the store.
    """

    system: System
    status: Literal["completed", "diverged", "running"]
    steps_done: int
    observables: dict[str, Series]
    seconds: float
    diverged_at: int | None = None
    reason: str | None = None
    model: nn.Module | None = None
    data: Dataset | None = None

    @property
    def run_id(self) -> str:
        return self.system.run_id

    def __getitem__(self, name: str) -> Series:
        if name not in self.observables:
            raise KeyError(f"no observable {name!r}; recorded: {sorted(self.observables)}")
        return self.observables[name]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; other names must be available here
    (else :class:`~learnmech.errors.InputError`)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise InputError("device", name, f"a device this machine has: 'auto', 'cpu'"
                             f"{''.join(f', cuda:{i}' for i in range(count))}"
                             f"{', mps' if torch.backends.mps.is_available() else ''}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device", name, "a device this machine has: 'auto', 'cpu'"
                         f"{', cuda' if torch.cuda.is_available() else ''}")
    return device


def check_system(system: System) -> None:
    """Fail before allocating anything when ``system`` cannot run here: its device is
    missing or its memory estimate exceeds the budget (:func:`~learnmech.system.check_memory`)."""
    resolve_device(system.device)
    check_memory(system)


def objective(system: System, data: Dataset) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss ``(outputs, y) -> scalar`` (see :mod:`learnmech.system` for conventions)."""
    if system.objective == "cross_entropy":
        return cross_entropy

    def mse(out: Tensor, y: Tensor) -> Tensor:
        target = data.targets(y) if data.task == "classification" else y
        return 0.5 * (out - target).pow(2).sum() / out.shape[0]

    return mse


def make_optimizer(
    model: Network, layer_plan: Sequence[LayerPlan], rule: LearningRule
) -> torch.optim.Optimizer:
    """The torch optimizer of ``rule``: one parameter group per distinct learning rate of
    the plan (``lr · lr_mult`` for weights, ``lr · bias_lr_mult`` for biases)."""
    by_lr: dict[float, list[Tensor]] = {}
    for p, layer in zip(layer_plan, model.linears()):
        by_lr.setdefault(rule.lr * p.lr_mult, []).append(layer.weight)
        if layer.bias is not None:
            by_lr.setdefault(rule.lr * p.bias_lr_mult, []).append(layer.bias)
    groups: list[dict[str, Any]] = [{"params": ps, "lr": lr} for lr, ps in by_lr.items()]
    if rule.optimizer == "adam":
        return torch.optim.AdamW(
            groups, lr=rule.lr, betas=rule.betas, eps=rule.eps, weight_decay=rule.weight_decay
        )
    momentum = rule.momentum if rule.optimizer == "momentum" else 0.0
    return torch.optim.SGD(
        groups,
        lr=rule.lr,
        momentum=momentum,
        nesterov=rule.nesterov and momentum > 0,
        weight_decay=rule.weight_decay,
    )


def _as_observable(value: Any) -> Observable:
    if isinstance(value, Tensor):
        value = value.detach().cpu().double()
        return float(value) if value.ndim == 0 else value.flatten().tolist()
    if isinstance(value, np.ndarray):
        return float(value) if value.ndim == 0 else value.astype(float).ravel().tolist()
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return float(value)


def start_probes(
    probes: Iterable[Probe],
    model: nn.Module,
    loss_fn: LossFn,
    data: Dataset,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Call ``start`` on every probe that has one, before step 0."""
    for probe in probes:
        begin = getattr(probe, "start", None)
        if begin is not None:
            begin(model, loss_fn, data, optimizer, 0)


def record(
    probes: Iterable[Probe],
    model: nn.Module,
    loss_fn: LossFn,
    data: Dataset,
    optimizer: torch.optim.Optimizer,
    step: int,
    out: dict[str, Series],
) -> None:
    """Measure every probe at ``step`` and append what it returns to ``out``."""
    for probe in probes:
        result = probe(model, loss_fn, data, optimizer, step)
        items = result.items() if isinstance(result, Mapping) else [(probe.name, result)]
        for name, value in items:
            series = out.setdefault(name, Series())
            series.steps.append(step)
            series.values.append(_as_observable(value))


def initial_state(
    system: System,
) -> tuple[Network, tuple[LayerPlan, ...], Dataset, torch.Generator]:
    """The network at step 0, its plan, the data on the run's device and dtype, and the
    generator (seeded by ``system.seed``, already advanced past initialization) that
    :func:`train` goes on to draw minibatches from. Calling it again reproduces the
    initial weights exactly."""
    device = resolve_device(system.device)
    dtype = torch.float64 if system.dtype == "float64" else torch.float32
    data = load(system.data).to(device, dtype)
    gen = torch.Generator().manual_seed(system.seed)
    model, layer_plan = build_model(
        system.architecture, data.d_in, data.d_out, system.learning_rule.optimizer, generator=gen
    )
    return model.to(device=device, dtype=dtype), layer_plan, data, gen


def train(
    system: System,
    probes: Sequence[Probe] = (),
    schedule: Schedule | None = None,
    *,
    divergence_factor: float = 1e4,
    progress: Callable[[int, int], None] | None = None,
) -> Trajectory:
    """Train ``system`` and measure ``probes`` on the steps of ``schedule``.

    Deterministic on CPU for a given ``system.seed``: initialization and minibatch order
    are drawn from generators seeded by it.

    Args:
        system: the learning system.
        probes: instruments to run (see :mod:`learnmech.probes`).
        schedule: when to run them; default 100 log-spaced steps.
        divergence_factor: a loss above this multiple of the initial loss ends the run.
        progress: optional ``callback(steps_done, steps_total)``, called about 100 times.

    Returns:
        The :class:`Trajectory`, with the trained ``model`` and the ``data``.
    """
    start = time.perf_counter()
    check_system(system)
    model, layer_plan, data, gen = initial_state(system)
    device = data.x_train.device
    rule = system.learning_rule
    optimizer = make_optimizer(model, layer_plan, rule)
    loss_fn = objective(system, data)
    total = rule.steps
    probe_steps = set((schedule or Schedule()).steps(total)) if probes else set()
    start_probes(probes, model, loss_fn, data, optimizer)

    x, y = data.x_train, data.y_train
    n = x.shape[0]
    batch = rule.batch_size if rule.batch_size and rule.batch_size < n else None
    order, cursor = torch.empty(0, dtype=torch.long), n
    observables: dict[str, Series] = {}
    tick = max(total // 100, 1)
    divergence = Divergence(divergence_factor)
    status: Literal["completed", "diverged"] = "completed"
    diverged_at, reason = None, None
    step = 0
    for step in range(total + 1):
        if step in probe_steps:
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                status, diverged_at, reason = "diverged", step, "non-finite parameters"
                break
            record(probes, model, loss_fn, data, optimizer, step, observables)
        if step == total:
            break
        if batch is None:
            xb, yb = x, y
        else:
            if cursor + batch > n:
                order, cursor = torch.randperm(n, generator=gen).to(device), 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            xb, yb = x[idx], y[idx]
        _, reason = gradient_step(model, optimizer, loss_fn, xb, yb, step, divergence)
        if reason is not None:
            status, diverged_at = "diverged", step
            break
        if progress is not None and (step + 1) % tick == 0:
            progress(step + 1, total)
    optimizer.zero_grad(set_to_none=True)
    return Trajectory(
        system=system,
        status=status,
        steps_done=step,
        observables=observables,
        seconds=time.perf_counter() - start,
        diverged_at=diverged_at,
        reason=reason,
        model=model,
        data=data,
    )
