"""The μP verifier against microsoft/mup's coordinate check, on the same model family.

Both train a 3-layer μP MLP (64 → width → width → 10, Adam, lr 0.01) for 3 steps on one
batch of digits at widths 64–512 and record every module's output size; learnmech also
measures the feature change and ‖ΔW‖₂/‖W‖₂ and fits a verdict per layer, mup returns the
raw table (``get_coord_data``, one forward per step). Repetitions interleave
(``bench/timing.py``); the script prints the time ratio mup / learnmech, median [min–max]
over the pairs, and, as a cross-check between independent implementations,
the largest difference between the width exponents of the output sizes after the steps
(learnmech: RMS; mup: mean |x|, fitted here by least squares).

mup is an optional peer, in the environment that ``bench/peers.sh`` builds::

    PYTHONPATH=src ~/venvs/peers/bin/python bench/coordcheck.py [--reps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from learnmech.coordcheck import digits_batch, fit_exponent, verify_mup
from learnmech.param import parametrized
from timing import MIN_REPEATS, interleaved

WIDTHS = (64, 128, 256, 512)
LR, STEPS, BASE = 0.01, 3, 64


def ours(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, dict[str, float]]:
    def mlp(n: int) -> nn.Module:
        return nn.Sequential(nn.Linear(64, n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(),
                             nn.Linear(n, 10))

    start = time.perf_counter()
    check = verify_mup(lambda n: parametrized(mlp, n, "mup", "adam", base_width=BASE), batch,
                       WIDTHS, "adam", lr=LR, steps=STEPS)
    seconds = time.perf_counter() - start
    assert check.passed, check.summary()
    names = {"0": "0", "2": "2", "4": "4"}
    return seconds, {names[k]: v for k, v in check.exponents("activation").items() if k in names}


def peer(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, dict[str, float]]:
    from mup import MuReadout, set_base_shapes
    from mup.coord_check import get_coord_data

    def mlp(n: int) -> nn.Module:
        return nn.Sequential(nn.Linear(64, n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(),
                             MuReadout(n, 10))

    def lazy(n: int):
        def make() -> nn.Module:
            model = mlp(n)
            with torch.no_grad():  # the same init as learnmech's plan: N(0, 1/fan_in), no bias
                for layer in model[::2]:
                    nn.init.normal_(layer.weight, std=layer.in_features**-0.5)
                    nn.init.zeros_(layer.bias)
            set_base_shapes(model, mlp(BASE), delta=mlp(2 * BASE))  # readout: ×√m, output ÷m
            return model
        return make

    start = time.perf_counter()
    frame = get_coord_data({n: lazy(n) for n in WIDTHS}, [batch] * (STEPS + 1), optimizer="adam",
                           lr=LR, nsteps=STEPS + 1, mup=True, show_progress=False,
                           cuda=False)
    seconds = time.perf_counter() - start
    last = frame[frame.t == STEPS + 1]
    exponents = {}
    for module in ("0", "2", "4"):
        rows = last[last.module == module].sort_values("width")
        exponents[module] = fit_exponent(rows.width.to_numpy(), rows.l1.to_numpy())
    return seconds, exponents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=MIN_REPEATS)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # both tools on one thread: less noise on a shared machine
    batch = digits_batch(256)
    found: dict[str, dict[str, float]] = {}

    def side(name: str, fn):  # type: ignore[no-untyped-def]
        def run() -> float:
            seconds, found[name] = fn(batch)
            return seconds
        return run

    pairs = interleaved(side("ours", ours), side("peer", peer), args.reps)
    e_ours, e_peer = found["ours"], found["peer"]
    gap = max(abs(e_ours[k] - e_peer[k]) for k in e_ours)
    print(f"{args.reps} interleaved pairs; learnmech verify_mup (verdicts per layer, "
          f"3 quantities) / mup get_coord_data (raw table), median: {pairs.times()}")
    print(f"time ratio mup / learnmech: {pairs.ratio()}")
    print("output-size width exponents (learnmech RMS vs mup l1): "
          + ", ".join(f"layer {k}: {e_ours[k]:+.3f} vs {e_peer[k]:+.3f}" for k in e_ours)
          + f"; largest gap {gap:.3f}")
    np.testing.assert_array_less(gap, 0.15)


if __name__ == "__main__":
    main()
