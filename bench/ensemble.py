"""Throughput of 32 small MLPs trained as one vectorized ensemble vs one by one.

Both sides train the same 32 systems (digits, MLP 64-64-64-10, SGD, batch 64; the members
differ in seed and learning rate) with the same ``loss`` probe schedule, in this process,
interleaved (``bench/timing.py``). The ratio is one-by-one time / ensemble time, median
[min–max] over the pairs. The final losses and weights of both sides are compared too.

    python bench/ensemble.py [--members 32] [--steps 300] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from learnmech.ensemble import train_ensemble
from learnmech.probes import make_probes
from learnmech.system import MLP, Digits, LearningRule, System
from learnmech.train import Schedule, train
from timing import MIN_REPEATS, interleaved, seconds_of


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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = systems(args.members, args.steps)
    schedule = Schedule("linear", 6)
    out: dict[str, list] = {}

    def ensemble() -> None:
        out["together"] = train_ensemble(runs, ["loss"], schedule)

    def one_by_one() -> None:
        out["single"] = [train(s, make_probes(["loss"]), schedule) for s in runs]

    pairs = interleaved(seconds_of(ensemble), seconds_of(one_by_one), args.repeats)
    a = np.array([t["train_loss"].values[-1] for t in out["single"]])
    b = np.array([t["train_loss"].values[-1] for t in out["together"]])
    with torch.no_grad():
        weights = max(
            float((p - q).abs().max() / p.abs().max())
            for s, t in zip(out["single"], out["together"], strict=True)
            for p, q in zip(s.model.parameters(), t.model.parameters(), strict=True)
        )
    print(
        f"{args.members} MLPs 64-64-64-10 on digits, SGD batch 64, {args.steps} steps, "
        f"{args.threads} torch thread(s), {args.repeats} interleaved pairs"
    )
    print(f"ensemble / one by one (median): {pairs.times()}")
    print(f"ratio (one by one / ensemble): {pairs.ratio()}x")
    print(
        f"max relative difference of final train losses: "
        f"{float(np.max(np.abs(a - b) / np.abs(a))):.2e}; of final weights (per tensor, "
        f"relative to its largest entry): {weights:.2e}"
    )


if __name__ == "__main__":
    main()
