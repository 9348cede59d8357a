"""The probe interface: what an instrument sees in any training loop.

A probe is called as ``probe(model, loss_fn, batch, optimizer, step)`` and returns an
observable (a number, a tensor, a list) or a mapping name → observable:

* ``model``: the ``nn.Module`` being trained, as it is *before* the update of ``step``;
* ``loss_fn(outputs, y)``: the objective, a scalar;
* ``batch``: what to measure on: an ``(x, y)`` pair of tensors (examples along the first
  dimension) or a whole :class:`~learnmech.data.Dataset` (its training split is the
  ``(x, y)`` pair; probes that report on the test split or read the task's modes or
  classes need the data set). :func:`learnmech.train.train` passes the run's data set;
* ``optimizer``: the ``torch.optim.Optimizer`` in use (learning rates, Adam's moments);
* ``step``: the number of updates taken so far.

A probe may define ``start(model, loss_fn, batch, optimizer, step)``, called once before
its first measurement, to reset what it keeps across calls. A probe leaves the model's
mode, dtype, device, parameters and gradients as it found them. Nothing here knows about
specs, trainers or laws: a probe that needs more (a seed, a layer plan) takes it in its
constructor or reads it from the model or the optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.errors import InputError

__all__ = [
    "Batch",
    "LossFn",
    "Probe",
    "dataset",
    "is_classification",
    "optimizer_weights",
    "splits",
    "training_pair",
]

Batch = Dataset | tuple[Tensor, Tensor]
"""What a probe measures on: an ``(x, y)`` pair or a whole data set."""

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss_fn(outputs, y) -> scalar``."""


@runtime_checkable
class Probe(Protocol):
    """An instrument: ``probe(model, loss_fn, batch, optimizer, step)`` returns an
    observable or a mapping name → observable (see the module docstring)."""

    name: str

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> Any: ...


def training_pair(batch: Batch) -> tuple[Tensor, Tensor]:
    """``(x, y)``: the batch itself, or a data set's training split."""
    if isinstance(batch, Dataset):
        return batch.x_train, batch.y_train
    x, y = batch
    return x, y


def splits(batch: Batch) -> list[tuple[str, Tensor, Tensor]]:
    """``[(split, x, y), ...]``: ``train`` (the pair, or the training split) and, for a data
    set with a test split, ``test``."""
    if isinstance(batch, Dataset):
        out = [("train", batch.x_train, batch.y_train)]
        if batch.x_test.shape[0]:
            out.append(("test", batch.x_test, batch.y_test))
        return out
    x, y = batch
    return [("train", x, y)]


def dataset(batch: Batch, probe: str) -> Dataset:
    """``batch`` if it is a whole data set (``probe`` needs its modes, classes or splits),
    else an :class:`~learnmech.errors.InputError` naming the probe."""
    if not isinstance(batch, Dataset):
        raise InputError("batch", type(batch).__name__, f"a learnmech Dataset for probe {probe!r}")
    return batch


def is_classification(batch: Batch) -> bool:
    """Whether ``batch`` is classification: a data set's task, or integer labels."""
    if isinstance(batch, Dataset):
        return batch.task == "classification"
    return not training_pair(batch)[1].is_floating_point()


def optimizer_weights(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each parameter's learning rate in ``optimizer`` divided by its default ``lr``, by
    parameter name (0 for a parameter the optimizer does not train).

    These are the per-layer learning-rate multipliers of a parametrization: the weights
    under which the gradient noise (:mod:`learnmech.probes.noise`), the conserved
    quantities (:mod:`learnmech.probes.conservation`) and the tangent kernel
    (:func:`learnmech.probes.ntk.empirical_ntk`) of the optimizer's descent are measured.
    """
    base = optimizer.defaults["lr"]
    rates = {id(p): g["lr"] / base for g in optimizer.param_groups for p in g["params"]}
    return {name: rates.get(id(p), 0.0) for name, p in model.named_parameters()}
