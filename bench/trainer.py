"""Trainer overhead: ``learnmech.train`` without probes vs a hand-written PyTorch loop.

Both start from the same initial network and data (``initial_state``), run the same
number of steps with the same optimizer and loss, and are timed end to end, interleaved
(``bench/timing.py``) so that machine noise hits both alike. Prints the median time ratio
trainer / hand-written over the pairs, with its minimum and maximum.

    python bench/trainer.py [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from learnmech.system import MLP, DeepLinear, Digits, LearningRule, LinearTeacher, System
from learnmech.train import initial_state, objective, train
from timing import MIN_REPEATS, interleaved

CASES = {
    "MLP 64-512-512-10, digits, SGD batch 128": System(
        architecture=MLP(width=512, depth=3), data=Digits(n_train=1200, n_test=0),
        objective="cross_entropy",
        learning_rule=LearningRule(optimizer="sgd", batch_size=128, lr=0.05, steps=400),
    ),
    "MLP 64-512-512-10, digits, full-batch GD": System(
        architecture=MLP(width=512, depth=3), data=Digits(n_train=1200, n_test=0),
        objective="cross_entropy", learning_rule=LearningRule(optimizer="gd", lr=0.05, steps=150),
    ),
    "DLN 6-32-6 (overhead-bound), GD": System(
        architecture=DeepLinear(hidden=[32], init_scale=0.01), data=LinearTeacher(n_test=0),
        learning_rule=LearningRule(optimizer="gd", lr=0.01, steps=2000),
    ),
}


def hand_written(system: System) -> float:
    """The plain loop a user would write, timed like ``train`` (setup included)."""
    start = time.perf_counter()
    model, _, data, gen = initial_state(system)
    rule = system.learning_rule
    opt = torch.optim.SGD(model.parameters(), lr=rule.lr)
    loss_fn = objective(system, data)
    x, y, n = data.x_train, data.y_train, data.x_train.shape[0]
    batch = rule.batch_size
    order, cursor = torch.empty(0, dtype=torch.long), n
    for _ in range(rule.steps):
        if batch is None:
            xb, yb = x, y
        else:
            if cursor + batch > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def with_trainer(system: System) -> float:
    start = time.perf_counter()
    train(system)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=MIN_REPEATS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{args.reps} interleaved pairs")
    for name, system in CASES.items():
        pairs = interleaved(lambda s=system: with_trainer(s), lambda s=system: hand_written(s),
                            args.reps)
        print(f"{name:45s} trainer / hand-written {pairs.times()}  "
              f"ratio {pairs.inverse_ratio()}")


if __name__ == "__main__":
    main()
