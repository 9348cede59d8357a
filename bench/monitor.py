"""Monitor overhead: a plain PyTorch loop with and without ``Monitor.step`` at ``every=50``.

The same network, data and optimizer from the same initial state; repetitions alternate
(bare, monitored, bare, …) so that machine noise hits both alike. Prints, per probe set,
the median time ratio monitored / bare with its min–max over the repetitions.

    python bench/monitor.py [--reps 5] [--steps 1000]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch import nn

from learnmech import Monitor

PROBE_SETS = {
    "sharpness": ["sharpness"],
    "update_rms": ["update_rms"],
    "noise_scale": ["noise_scale"],
    "kernel_movement": ["kernel_movement"],
    "all four": ["sharpness", "update_rms", "noise_scale", "kernel_movement"],
}


def setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tanh MLP 64-256-256-10 and 1000 digits with one-hot targets (full batch)."""
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    inputs = torch.tensor(x[:1000] / 16.0, dtype=torch.float32)
    targets = nn.functional.one_hot(torch.tensor(y[:1000]), 10).float()
    model = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(),
                          nn.Linear(256, 10))
    return model, inputs, targets


def run(model0: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
        probes: list[str] | None) -> float:
    model = copy.deepcopy(model0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = nn.functional.mse_loss
    start = time.perf_counter()
    mon = Monitor(model, opt, loss_fn, probes=probes, every=50) if probes else None
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.step((x, y), loss)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, x, y = setup()
    print(f"tanh MLP 64-256-256-10, 1000 digits, full-batch GD, {args.steps} steps, "
          f"every=50, 1 thread, {args.reps} interleaved repeats")
    for label, probes in PROBE_SETS.items():
        ratios, bare_times = [], []
        for _ in range(args.reps):
            bare = run(model, x, y, args.steps, None)
            monitored = run(model, x, y, args.steps, probes)
            ratios.append(monitored / bare)
            bare_times.append(bare)
        print(f"{label:16s} monitored/bare {statistics.median(ratios):.2f} "
              f"[{min(ratios):.2f}–{max(ratios):.2f}] "
              f"(bare {statistics.median(bare_times):.2f} s)")


if __name__ == "__main__":
    main()
