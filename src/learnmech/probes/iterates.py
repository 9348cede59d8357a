"""An in-memory instrument that keeps every iterate of a run (the store keeps only
observables, so this probe is for a purpose-built :func:`learnmech.train.train` call)."""

from __future__ import annotations

import torch
from torch import Tensor

from learnmech.train import ProbeState


class Iterates:
    """The flat parameter vector ``θ_k`` (shape ``(P,)``, detached copies, in
    :attr:`params`) and the training loss ``L(θ_k)`` (the observable ``iterates``) at
    every step it is called, both before that step's update."""

    name = "iterates"

    def __init__(self) -> None:
        self.params: list[Tensor] = []

    def start(self, state: ProbeState) -> None:
        self.params = []

    def __call__(self, state: ProbeState) -> float:
        self.params.append(
            torch.nn.utils.parameters_to_vector(state.model.parameters()).detach().clone())
        with torch.no_grad():
            return float(state.loss_fn(state.model(state.data.x_train), state.data.y_train))
