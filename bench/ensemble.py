"""Throughput of 32 small MLPs trained as one vectorized ensemble vs one by one.

Both sides train the same 32 systems (digits, MLP 64-64-64-10, SGD, batch 64; the members
differ in seed and learning rate) with the same ``loss`` probe schedule, in this process,
alternating, and the best of ``--repeats`` timings of each side is kept. The ratio is
one-by-one time / ensemble time. The final losses of both sides are compared too.

    python bench/ensemble.py [--members 32] [--steps 300] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from learnmech.ensemble import train_ensemble
from learnmech.probes import make_probes
from learnmech.system import MLP, Digits, LearningRule, System
from learnmech.train import Schedule, train


def systems(members: int, steps: int) -> list[System]:
    base = System(
        architecture=MLP(width=64, depth=3),
        data=Digits(n_train=1000, n_test=500),
        objective="cross_entropy",
        learning_rule=LearningRule(optimizer="sgd", lr=0.05, steps=steps, batch_size=64),
    )
    lrs = np.geomspace(0.02, 0.2, 4)
    return [
        base.updated({"seed": k, "learning_rule.lr": float(lrs[k % len(lrs)])})
        for k in range(members)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = systems(args.members, args.steps)
    schedule = Schedule("linear", 6)
    # warm-up: imports, data loading caches, kernel selection
    train_ensemble(runs[:2], ["loss"], schedule)
    train(runs[0], make_probes(["loss"]), schedule)

    best_single, best_ensemble = float("inf"), float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        single = [train(s, make_probes(["loss"]), schedule) for s in runs]
        best_single = min(best_single, time.perf_counter() - start)
        start = time.perf_counter()
        together = train_ensemble(runs, ["loss"], schedule)
        best_ensemble = min(best_ensemble, time.perf_counter() - start)
    a = np.array([t["train_loss"].values[-1] for t in single])
    b = np.array([t["train_loss"].values[-1] for t in together])
    updates = args.members * args.steps
    print(
        f"{args.members} MLPs 64-64-64-10 on digits, SGD batch 64, {args.steps} steps, "
        f"{args.threads} torch thread(s), best of {args.repeats}"
    )
    print(
        f"one by one (learnmech.train):        {best_single:7.2f} s  "
        f"{updates / best_single:8.0f} updates/s"
    )
    print(
        f"vectorized ensemble (train_ensemble): {best_ensemble:6.2f} s  "
        f"{updates / best_ensemble:8.0f} updates/s"
    )
    print(f"ratio (one by one / ensemble):       {best_single / best_ensemble:7.2f}x")
    print(
        f"max relative difference of final train losses: "
        f"{float(np.max(np.abs(a - b) / np.abs(a))):.2e}"
    )


if __name__ == "__main__":
    main()
