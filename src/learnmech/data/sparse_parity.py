"""Multitask sparse parity (Michaud et al. 2023), sampled online.

An input is ``n_tasks`` control bits (a one-hot code of the subtask) followed by
``n_bits`` task bits (uniform, coded ±1). Subtask ``i`` labels the input with the parity
of a fixed ``k``-subset ``S_i`` of the task bits; the subsets are distinct and drawn from
``seed``. Subtask ``i`` (1-based) is drawn with probability ``p_i ∝ i^−(α+1)``, the
quanta model's power law; ``alpha=None`` makes the frequencies uniform.

Shapes: ``x`` is ``(n, n_tasks + n_bits)`` float32, ``y`` and ``task`` are ``(n,)`` long.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from learnmech.errors import InputError


class MultitaskSparseParity:
    """The task: ``sample(n, generator)`` draws fresh labelled inputs.

    Args:
        n_tasks: number of subtasks.
        n_bits: number of task bits.
        k: parity order (bits per subset).
        alpha: frequencies ``p_i ∝ i^−(α+1)``; ``None`` for uniform.
        seed: seeds the choice of the subsets.
    """

    def __init__(self, n_tasks: int, n_bits: int, k: int = 3, alpha: float | None = 0.5,
                 seed: int = 0) -> None:
        if k < 1 or k > n_bits:
            raise InputError("k", k, f"a parity order between 1 and n_bits = {n_bits}")
        if n_tasks < 1 or n_tasks > math.comb(n_bits, k):
            raise InputError("n_tasks", n_tasks,
                             f"between 1 and C(n_bits, k) = {math.comb(n_bits, k)}")
        if alpha is not None and alpha <= 0:
            raise InputError("alpha", alpha, "a positive exponent or None (uniform)")
        self.n_tasks, self.n_bits, self.k, self.alpha = n_tasks, n_bits, k, alpha
        g = torch.Generator().manual_seed(seed)
        every = list(itertools.combinations(range(n_bits), k))
        pick = torch.randperm(len(every), generator=g)[:n_tasks]
        self.subsets = torch.tensor([every[i] for i in pick.tolist()], dtype=torch.long)
        ranks = torch.arange(1, n_tasks + 1, dtype=torch.float64)
        p = torch.ones_like(ranks) if alpha is None else ranks ** -(alpha + 1)
        self.frequencies = p / p.sum()

    @property
    def d_in(self) -> int:
        return self.n_tasks + self.n_bits

    def sample(self, n: int, generator: torch.Generator, task: int | None = None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` inputs, labels and subtask indices (0-based); all of subtask ``task`` if
        given, else subtasks drawn with the frequencies."""
        if task is None:
            tasks = torch.multinomial(self.frequencies, n, replacement=True,
                                      generator=generator)
        else:
            tasks = torch.full((n,), task, dtype=torch.long)
        bits = torch.randint(0, 2, (n, self.n_bits), generator=generator)
        y = bits.gather(1, self.subsets[tasks]).sum(1) % 2
        control = torch.nn.functional.one_hot(tasks, self.n_tasks)
        x = torch.cat([control, 2 * bits - 1], dim=1).float()
        return x, y, tasks
