"""The largest problems the long-running instruments handle within a memory budget.

Each case runs in a fresh subprocess with ``LEARNMECH_MAX_MEMORY_GB`` set to the budget,
on one torch thread, and reports its seconds and peak resident memory (``ru_maxrss``);
next to it, a request beyond the budget must be refused at once with an
:class:`~learnmech.errors.InputError` (exit 2 from the CLI) instead of being attempted:

* analytic NNGP and NTK (ReLU, depth 3, float64) of 20 000 × 20 000 inputs, in row blocks;
* the empirical NTK (trace over outputs) of a 64-512-512-1 ReLU MLP on 10 000 inputs;
* the top Hessian eigenvalue (Lanczos, tolerance 1e-3) of a 10M-parameter MLP
  (784-2048-2048-2048-10, float32) on 1000 Fashion-MNIST images.

    python bench/scale.py [--budget-gb 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REFUSED = "refused"


def _analytic(big: bool) -> dict:
    import torch

    from learnmech.theory.kernels import analytic_kernels

    n = 60_000 if big else 20_000
    x = torch.randn(n, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    k = analytic_kernels(x, depth=3, activation="relu", w_std=1.4, b_std=0.1)
    return {"problem": f"analytic NNGP + NTK, {n} × {n}, float64",
            "check": float(k.ntk.diagonal().mean())}


def _empirical(big: bool) -> dict:
    import torch

    from learnmech.models import build_model
    from learnmech.probes.ntk import empirical_ntk
    from learnmech.system import MLP

    n = 200_000 if big else 10_000
    net, _ = build_model(MLP(width=512, depth=3, activation="relu"), 64, 1,
                         generator=torch.Generator().manual_seed(0))
    x = torch.randn(n, 64, generator=torch.Generator().manual_seed(1))
    theta = empirical_ntk(net, x, outputs="trace")
    return {"problem": f"empirical NTK (trace), 64-512-512-1 MLP, {n} inputs, float32",
            "check": float(theta.diagonal().mean())}


def _lanczos(big: bool) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from learnmech.data import load
    from learnmech.linalg import HessianOperator, lanczos
    from learnmech.system import FashionMNIST

    data = load(FashionMNIST(n_train=1000, n_test=10))
    torch.manual_seed(0)
    widths = [784, 2048, 2048, 2048, 10]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    op = HessianOperator(model, F.cross_entropy, (data.x_train, data.y_train))
    if big:  # the dense Hessian of the same model: 400 TB
        op.dense()
    top = lanczos(op, 1, tol=1e-3, v0=op.gradient_start(0))
    return {"problem": f"Lanczos λ_max, MLP {'-'.join(map(str, widths))} "
                       f"({op.dim / 1e6:.1f}M parameters), 1000 images, float32",
            "check": float(top.values[0]), "products": top.matvecs}


CASES = {"analytic": _analytic, "empirical": _empirical, "lanczos": _lanczos}


def worker(case: str, big: bool) -> None:
    import torch

    from learnmech.errors import InputError

    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        out = CASES[case](big)
    except InputError as err:
        out = {"problem": REFUSED, "error": str(err).splitlines()[0]}
    out["seconds"] = time.perf_counter() - start
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-gb", type=float, default=8.0)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1] == "big")
        return
    env = os.environ | {"LEARNMECH_MAX_MEMORY_GB": str(args.budget_gb)}
    print(f"memory budget {args.budget_gb:g} GB ($LEARNMECH_MAX_MEMORY_GB), one torch thread")
    print("| case | seconds | peak RSS (GB) | result |")
    print("|---|---|---|---|")
    for case in CASES:
        for big in (False, True):
            run = subprocess.run([sys.executable, __file__, "--worker", case,
                                  "big" if big else "fits"], env=env, capture_output=True,
                                 text=True, check=False)
            if run.returncode != 0:
                print(f"| {case} ({'beyond' if big else 'within'} budget) | – | – | "
                      f"failed: {run.stderr.strip().splitlines()[-1]} |")
                continue
            out = json.loads(run.stdout.strip().splitlines()[-1])
            result = (f"refused: {out['error']}" if out["problem"] == REFUSED
                      else f"{out['problem']}; check value {out['check']:.6g}"
                      + (f", {out['products']} products" if "products" in out else ""))
            print(f"| {case} ({'beyond' if big else 'within'} budget) | "
                  f"{out['seconds']:.2f} | {out['peak_gb']:.2f} | {result} |", flush=True)


if __name__ == "__main__":
    main()
