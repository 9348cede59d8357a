"""A Hugging Face ``Trainer`` callback that runs a :class:`~learnmech.monitor.Monitor`.

::

    from learnmech.integrations.transformers import MonitorCallback
    cb = MonitorCallback(probes=["sharpness", "update_rms"], every=50)
    Trainer(model=model, args=args, train_dataset=ds, callbacks=[cb]).train()
    cb.monitor.frame()

The batch a step trained on is taken from the model's forward call (a forward pre-hook
records its keyword tensors; with gradient accumulation, the last micro-batch's); with
``loss_fn=None`` its loss is ``model(**batch).loss`` (the batch holds ``labels``),
otherwise ``loss_fn(model(**inputs).logits, labels)``.
``kernel_movement`` reads the logits. Readings are appended to ``state.log_history`` (what
the Trainer's loggers and ``trainer.state`` show) as ``learnmech/<probe>[/<layer>]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.monitor import Monitor
from learnmech.twins import Batch, Reading

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as err:  # pragma: no cover - the extra is installed in tests
    raise ImportError("learnmech.integrations.transformers needs transformers: "
                      "pip install 'learnmech[transformers]'") from err


def _inputs(batch: Batch) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k != "labels"}


def _model_loss(model: nn.Module, batch: Batch) -> Tensor:
    out = model(**batch)
    if getattr(out, "loss", None) is None:
        raise InputError("labels", sorted(batch), "a batch with labels (or pass loss_fn)")
    return out.loss


def _logits(model: nn.Module, batch: Batch) -> Tensor:
    return model(**_inputs(batch)).logits


class MonitorCallback(TrainerCallback):
    """Run theory twins on the model a ``Trainer`` trains.

    Args:
        loss_fn: ``loss_fn(logits, labels)``, or ``None`` for the model's own loss.
        probes, every, **options: as for :class:`~learnmech.monitor.Monitor`.

    Attributes:
        monitor: the :class:`~learnmech.monitor.Monitor`, created when training begins.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
                 probes: Sequence[str | Any] = ("sharpness", "update_rms"), every: int = 50,
                 **options: Any) -> None:
        self.loss_fn, self.probes, self.every, self.options = loss_fn, probes, every, options
        self.monitor: Monitor | None = None
        self._batch: dict[str, Any] | None = None
        self._state: TrainerState | None = None
        self._handle: Any = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, model: nn.Module | None = None,
                       optimizer: Any = None, **kwargs: Any) -> None:
        if model is None or optimizer is None:
            raise InputError("trainer", "no model or optimizer", "a Trainer with both")
        fn = self.loss_fn
        batch_loss = _model_loss if fn is None else (
            lambda m, b: fn(_logits(m, b), b["labels"]))
        options = {"batch_loss": batch_loss, "output_fn": _logits, **self.options}
        self._state = state
        self.monitor = Monitor(model, getattr(optimizer, "optimizer", optimizer), None,
                               self.probes, self.every, on_reading=self._log, **options)
        self._handle = model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: nn.Module, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> None:
        if module.training and isinstance(kwargs.get("labels"), Tensor):
            # the per-example tensors only: a loss normalised by the whole batch's token
            # count (num_items_in_batch) would not be the mean loss of a micro-batch
            self._batch = {k: v for k, v in kwargs.items()
                           if isinstance(v, Tensor) and v.ndim and k != "num_items_in_batch"}

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:
        if self.monitor is not None and self._batch is not None:
            self.monitor.step(self._batch)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _log(self, rows: list[Reading]) -> None:
        if self._state is None:
            return
        entry: dict[str, Any] = {"step": self._state.global_step}
        entry.update({r.key: r.value for r in rows})
        self._state.log_history.append(entry)

