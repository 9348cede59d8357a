"""The Monitor: theory twins beside a user's own model and training loop.

::

    from learnmech import Monitor
    mon = Monitor(model, optimizer, loss_fn, probes=["sharpness", "update_rms",
                  "noise_scale", "kernel_movement"], every=50)
    for x, y in loader:
        optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()
        mon.step((x, y), loss)                  # after optimizer.step()
    mon.frame()      # pandas: step, probe, layer, value, theory, ratio, regime
    print(mon.summary())

Any ``nn.Module`` and any torch optimizer. ``loss_fn(model(inputs), targets)`` is the
loss of an ``(inputs, targets)`` batch; for other batches (a Hugging Face mapping, a
Lightning ``training_step``) pass ``batch_loss(model, batch)`` and, for
``kernel_movement``, ``output_fn(model, batch)`` instead. The twins are described in
:mod:`learnmech.twins`.

``step`` counts optimizer steps; twins read at step 1 and every ``every`` steps. The
probe batch (sharpness, output changes, kernel movement) is the first batch seen unless
``probe_batch`` is given, so readings along a run are comparable. Readings are taken in
eval mode by default (dropout off; each module's mode is restored afterwards).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from learnmech.errors import InputError
from learnmech.twins import (
    TWINS,
    Batch,
    BatchLoss,
    Context,
    OutputFn,
    Reading,
    UpdateTwin,
    to_device,
)

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("step", "probe", "layer", "value", "theory", "ratio", "regime")


class Monitor:
    """Run theory twins on a model as it trains (see the module docstring).

    Args:
        model: the ``nn.Module`` being trained.
        optimizer: its torch optimizer (read for learning rates, momenta, Adam state).
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` for ``(inputs, targets)`` batches.
        probes: names among :data:`learnmech.twins.TWINS`, or twin objects (a ``name`` and
            ``twin(context) -> list[Reading]``, e.g. ``NoiseScaleTwin(micro_batches=64)``).
        every: read every ``every`` optimizer steps (and at step 1).
        batch_loss: ``batch_loss(model, batch) -> scalar``, instead of ``loss_fn``.
        output_fn: ``output_fn(model, batch) -> outputs`` (default ``model(batch[0])``).
        probe_batch: the fixed batch for sharpness, output changes and kernel movement.
        eval_mode: take readings with the model in eval mode.
        seed: seed of the random starts (Lanczos, the kernel's output direction).
        on_reading: called with each step's list of readings (loggers hook in here).

    Attributes:
        readings: every :class:`~learnmech.twins.Reading` so far, in order.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        probes: Sequence[str | Any] = ("sharpness", "update_rms", "noise_scale", "kernel_movement"),
        every: int = 50,
        *,
        batch_loss: BatchLoss | None = None,
        output_fn: OutputFn | None = None,
        probe_batch: Batch | None = None,
        eval_mode: bool = True,
        seed: int = 0,
        on_reading: Callable[[list[Reading]], None] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InputError("model", type(model).__name__, "a torch.nn.Module")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError("optimizer", type(optimizer).__name__, "a torch.optim.Optimizer")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError("every", every, "a positive integer")
        if isinstance(probes, str):
            probes = [probes]
        unknown = [p for p in probes if (isinstance(p, str) and p not in TWINS)
                   or (not isinstance(p, str) and not callable(p))]
        if unknown or not probes:
            raise InputError("probes", list(probes), f"names among {sorted(TWINS)}")
        if (loss_fn is None) == (batch_loss is None):
            raise InputError("loss_fn", loss_fn,
                             "exactly one of loss_fn(outputs, targets) and "
                             "batch_loss(model, batch)")
        self.model, self.optimizer, self.every, self.seed = model, optimizer, every, seed
        self.eval_mode = eval_mode
        self.on_reading = on_reading
        if loss_fn is not None:
            fn = loss_fn
            self.batch_loss: BatchLoss = lambda m, b: fn(m(b[0]), b[1])
        else:
            assert batch_loss is not None
            self.batch_loss = batch_loss
        self.output_fn: OutputFn | None = output_fn or (
            (lambda m, b: m(b[0])) if loss_fn is not None else None)
        twins = [TWINS[p]() if isinstance(p, str) else p for p in probes]
        self.twins: dict[str, Any] = {t.name: t for t in twins}
        device = _device(model)
        self.probe_batch = to_device(probe_batch, device) if probe_batch is not None else None
        self.readings: list[Reading] = []
        self.losses: list[tuple[int, float]] = []
        self.steps = 0
        self._snapshot()

    # ---- the loop's side ---------------------------------------------------------------
    def step(self, batch: Batch, loss: Tensor | float | None = None) -> list[Reading]:
        """Record one optimizer step (call it after ``optimizer.step()``); returns the
        readings taken at this step (empty between readings)."""
        self.steps += 1
        if loss is not None:
            self.losses.append((self.steps, float(loss.detach() if isinstance(loss, Tensor)
                                                  else loss)))
        device = _device(self.model)
        if self.probe_batch is None:
            self.probe_batch = to_device(batch, device)
        rows: list[Reading] = []
        if self.steps == 1 or self.steps % self.every == 0:
            ctx = Context(self.model, self.batch_loss, self.output_fn, self.optimizer,
                          to_device(batch, device), self.probe_batch, self.steps, self.seed)
            with _reading_mode(self.model, self.eval_mode):
                for twin in self.twins.values():
                    rows.extend(twin(ctx))
            self.readings.extend(rows)
            if self.on_reading is not None and rows:
                self.on_reading(rows)
        if (self.steps + 1) % self.every == 0:
            self._snapshot()
        return rows

    def _snapshot(self) -> None:
        for twin in self.twins.values():
            if isinstance(twin, UpdateTwin):
                twin.snapshot(self.model)

    # ---- results -------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """Every reading as a table with columns ``step, probe, layer, value, theory,
        ratio, regime``."""
        import pandas as pd

        return pd.DataFrame([[getattr(r, c) for c in COLUMNS] for r in self.readings],
                            columns=list(COLUMNS))

    def latest(self, probe: str, layer: str = "") -> Reading | None:
        """The last reading of ``probe`` (for ``layer``), or ``None``."""
        for r in reversed(self.readings):
            if r.probe == probe and r.layer == layer:
                return r
        return None

    def summary(self) -> str:
        """One line per twin: where the run stands against its theory at the last reading."""
        lines = []
        for name in self.twins:
            rows = [r for r in self.readings if r.probe in _observables(name)]
            if not rows:
                lines.append(f"{name}: no reading yet")
                continue
            last = rows[-1].step
            lines.extend(_describe(name, [r for r in rows if r.step == last]))
        return "\n".join(lines)


def _observables(name: str) -> tuple[str, ...]:
    return ("update_rms", "output_change") if name == "update_rms" else (name,)


def _describe(name: str, rows: list[Reading]) -> list[str]:
    step = rows[0].step
    if name in ("sharpness", "noise_scale", "kernel_movement"):
        r = rows[0]
        twin = {"sharpness": "threshold", "noise_scale": "batch size",
                "kernel_movement": "lazy limit"}[name]
        ratio = "" if math.isnan(r.ratio) else f", ratio {r.ratio:.3g}"
        return [f"{name} at step {step}: {r.value:.4g} vs {twin} {r.theory:.4g}{ratio} "
                f"— {r.regime}"]
    lines = []
    for probe in dict.fromkeys(r.probe for r in rows):
        part = [r for r in rows if r.probe == probe]
        off = [f"{r.layer} {r.regime} (×{r.ratio:.2g})" for r in part
               if not r.regime.startswith("balanced")]
        state = f"all layers balanced; {part[0].regime.partition(' (')[2][:-1]}" if not off \
            else "; ".join(off)
        lines.append(f"{probe} at step {step}: median {part[0].theory:.3g} over "
                     f"{len(part)} layers — {state}")
    return lines


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    raise InputError("model", type(model).__name__, "a module with parameters")


class _reading_mode:
    """Eval mode (if asked) during a reading, every module's own mode restored after; and
    ``scaled_dot_product_attention`` on its math backend, whose backward is twice
    differentiable (the fused CPU and CUDA kernels have no double backward)."""

    def __init__(self, model: nn.Module, eval_mode: bool) -> None:
        self.model, self.eval_mode = model, eval_mode
        self.modes: list[tuple[nn.Module, bool]] = []
        self.backend = sdpa_kernel([SDPBackend.MATH])

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.model.modules()]
        if self.eval_mode:
            self.model.eval()
        self.backend.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.backend.__exit__(*exc)
        for m, training in self.modes:
            m.training = training
