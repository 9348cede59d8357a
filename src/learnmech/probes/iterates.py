"""An in-memory instrument that keeps every iterate of a run (the store keeps only
observables, so this probe is for a purpose-built :func:`learnmech.train.train` call)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learnmech.probes.base import Batch, LossFn, training_pair


class Iterates:
    """The flat parameter vector ``θ_k`` (shape ``(P,)``, detached copies, in
    :attr:`params`) and the training loss ``L(θ_k)`` on the batch (the observable
    ``iterates``) at every step it is called, both before that step's update."""

    name = "iterates"

    def __init__(self) -> None:
        self.params: list[Tensor] = []

    def start(self, model: nn.Module, loss_fn: LossFn, batch: Batch,
              optimizer: torch.optim.Optimizer, step: int) -> None:
        self.params = []

    def __call__(self, model: nn.Module, loss_fn: LossFn, batch: Batch,
                 optimizer: torch.optim.Optimizer, step: int) -> float:
        self.params.append(nn.utils.parameters_to_vector(model.parameters()).detach().clone())
        x, y = training_pair(batch)
        with torch.no_grad():
            return float(loss_fn(model(x), y))
