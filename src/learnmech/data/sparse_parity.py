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
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from learnmech.errors import InputError
from learnmech.threads import one_torch_thread


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


def train_width_ensemble(task: MultitaskSparseParity, widths: Sequence[int], steps: int,
                         batch: int, lr: float, seed: int, points: int = 30
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Train one-hidden-layer ReLU networks of several widths on ``task`` with fresh
    batches (Adam, cross-entropy), all at once as one batched ensemble that sees the same
    batches (drawn from ``seed``).

    Returns the log-spaced checkpoint steps ``(C,)`` and each network's test loss per
    subtask in bits, ``(C, len(widths), n_tasks)``, measured on 200 fresh inputs per
    subtask. Hidden units beyond a network's width are masked out; initialization is
    PyTorch's ``nn.Linear`` default for each width.
    """
    g = torch.Generator().manual_seed(seed)
    e, h, d = len(widths), max(widths), task.d_in
    mask = torch.stack([(torch.arange(h) < w).float() for w in widths])[:, None, :]
    fan2 = torch.tensor([w**-0.5 for w in widths]).view(e, 1, 1)
    w1 = ((torch.rand(e, d, h, generator=g) * 2 - 1) * d**-0.5).requires_grad_()
    b1 = ((torch.rand(e, 1, h, generator=g) * 2 - 1) * d**-0.5).requires_grad_()
    w2 = ((torch.rand(e, h, 2, generator=g) * 2 - 1) * fan2).requires_grad_()
    b2 = ((torch.rand(e, 1, 2, generator=g) * 2 - 1) * fan2).requires_grad_()
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=lr)

    def forward(x: torch.Tensor) -> torch.Tensor:  # (B, d) -> (E, B, 2)
        return (torch.relu(x @ w1 + b1) * mask) @ w2 + b2

    test_gen = torch.Generator().manual_seed(10_000 + seed)
    tests = [task.sample(200, test_gen, i)[:2] for i in range(task.n_tasks)]
    xt, yt = torch.cat([x for x, _ in tests]), torch.cat([y for _, y in tests])
    checkpoints = set(np.unique(np.geomspace(1, steps, points).round().astype(int)).tolist())
    seen, losses = [], []
    with one_torch_thread():
        for step in range(1, steps + 1):
            x, y, _ = task.sample(batch, g)
            loss = F.cross_entropy(forward(x).reshape(-1, 2), y.repeat(e)) * e
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step in checkpoints:
                with torch.no_grad():
                    per = F.cross_entropy(forward(xt).reshape(-1, 2), yt.repeat(e),
                                          reduction="none").view(e, task.n_tasks, -1).mean(2)
                seen.append(step)
                losses.append((per / math.log(2)).numpy())
    return np.asarray(seen, dtype=float), np.stack(losses)
