"""A pytorch-lightning callback that runs a :class:`~learnmech.monitor.Monitor`.

::

    from learnmech.integrations.lightning import MonitorCallback
    cb = MonitorCallback(probes=["sharpness", "update_rms"], every=50)
    pl.Trainer(callbacks=[cb]).fit(module, loader)
    cb.monitor.frame()

With ``loss_fn=None`` the loss of a batch is the module's own ``training_step(batch, 0)``
(a tensor, or a mapping with ``"loss"``), evaluated with its ``self.log`` silenced; with
``loss_fn(outputs, targets)`` it is ``loss_fn(module(x), y)`` for ``(x, y)`` batches. The
twins read the first optimizer after each optimizer step (so gradient accumulation is
respected) and every reading is also logged to the trainer's loggers as
``learnmech/<probe>[/<layer>]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.monitor import Monitor
from learnmech.twins import Batch, Reading

try:
    import pytorch_lightning as pl
except ImportError as err:  # pragma: no cover - the extra is installed in tests
    raise ImportError("learnmech.integrations.lightning needs pytorch-lightning: "
                      "pip install 'learnmech[lightning]'") from err


def _step_loss(module: nn.Module, batch: Batch) -> Tensor:
    """``module.training_step(batch, 0)`` as a scalar, with logging silenced."""
    silent = {"log": lambda *a, **k: None, "log_dict": lambda *a, **k: None}
    saved = {k: module.__dict__[k] for k in silent if k in module.__dict__}
    module.__dict__.update(silent)
    try:
        out = module.training_step(batch, 0)  # type: ignore[operator]
    finally:
        for k in silent:
            module.__dict__.pop(k, None)
        module.__dict__.update(saved)
    if isinstance(out, Mapping):
        out = out.get("loss")
    if not isinstance(out, Tensor) or out.ndim != 0:
        raise InputError("training_step", type(out).__name__,
                         "a scalar loss tensor or a mapping with 'loss' (or pass loss_fn)")
    return out


class MonitorCallback(pl.Callback):
    """Run theory twins on the LightningModule being fitted.

    Args:
        loss_fn: ``loss_fn(outputs, targets)``, or ``None`` to use ``training_step``.
        probes, every, **options: as for :class:`~learnmech.monitor.Monitor`.

    Attributes:
        monitor: the :class:`~learnmech.monitor.Monitor`, created when fitting starts.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
                 probes: Sequence[str | Any] = ("sharpness", "update_rms"), every: int = 50,
                 **options: Any) -> None:
        self.loss_fn, self.probes, self.every, self.options = loss_fn, probes, every, options
        self.monitor: Monitor | None = None
        self._seen_step = 0
        self._trainer: pl.Trainer | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.optimizers:
            raise InputError("optimizers", [], "a LightningModule with an optimizer")
        options = dict(self.options)
        if self.loss_fn is None:
            options.setdefault("batch_loss", _step_loss)
            options.setdefault("output_fn", lambda m, b: m(b[0]))
        self._trainer = trainer
        self.monitor = Monitor(pl_module, trainer.optimizers[0], self.loss_fn, self.probes,
                               self.every, on_reading=self._log, **options)
        self._seen_step = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor is None or trainer.global_step == self._seen_step:
            return  # no optimizer step on this batch (gradient accumulation)
        self._seen_step = trainer.global_step
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        self.monitor.step(batch, loss if isinstance(loss, Tensor) else None)

    def _log(self, rows: list[Reading]) -> None:
        if self._trainer is None:
            return
        metrics = {r.key: r.value for r in rows}
        for logger in self._trainer.loggers:
            logger.log_metrics(metrics, step=self._trainer.global_step)
