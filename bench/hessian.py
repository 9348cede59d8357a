"""Time to the top Hessian eigenvalue: learnmech's Lanczos vs PyHessian's power iteration
vs a dense eigensolve, on the same network, data and accuracy; and the cost of one
Hessian-vector product in units of one gradient.

PyHessian lives in its own environment (it is run as a subprocess on the same problem,
saved to a temporary file); create it with::

    python -m venv ~/venvs/pyhessian
    ~/venvs/pyhessian/bin/pip install torch==2.13.0
    ~/venvs/pyhessian/bin/pip install numpy
    ~/venvs/pyhessian/bin/pip install --no-deps pyhessian

Usage: ``python bench/hessian.py [--reps 3] [--target 1e-4] [--pyhessian PYTHON]``.

Accuracy is matched, not the tolerance parameters (they mean different things: PyHessian
stops when two consecutive power-iteration estimates differ by less than ``tol``
relatively; learnmech's Lanczos when the Ritz residual is below ``tol·|θ|``). For each
method the cheapest of several tolerances whose every repetition lands within ``target``
relative error of the reference eigenvalue is timed, setup (the gradient graph) included.
Both sides run single-threaded, repetitions alternate, medians are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnmech.data import load
from learnmech.linalg import HessianOperator, lanczos
from learnmech.system import Digits, FashionMNIST

OURS_TOLS = (1e-2, 3e-3, 1e-3, 1e-4)
THEIR_TOLS = (1e-3, 1e-4, 1e-5, 1e-6)


def network(widths: list[int], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def problem(case: str) -> tuple[nn.Sequential, Tensor, Tensor, list[int]] | None:
    """A tanh MLP trained for 100 full-batch GD steps (cross-entropy) and its batch."""
    if case == "digits":
        data = load(Digits(n_train=1000, n_test=0))
        widths = [64, 32, 10]
    else:
        try:
            data = load(FashionMNIST(n_train=2000, n_test=10))  # n_test=0 trips the loader
        except Exception as err:  # not installed: skip the case
            print(f"[{case}] skipped: {err}")
            return None
        widths = [784, 256, 256, 10]
    x, y = data.x_train, data.y_train
    model = network(widths, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model, x, y, widths


def ours(model: nn.Module, x: Tensor, y: Tensor, tol: float, seed: int
         ) -> tuple[float, float, int]:
    start = time.perf_counter()
    top = lanczos(HessianOperator(model, F.cross_entropy, (x, y)), 1, tol=tol, max_iter=1000,
                  seed=seed)
    return time.perf_counter() - start, float(top.values[0]), top.matvecs


def per_call(fn: Any, reps: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def cheapest(records: dict[float, list[tuple[float, float, int]]], ref: float, target: float
             ) -> tuple[float, float, float, int] | None:
    """(tol, median time, worst error, median products) of the fastest accurate setting."""
    best = None
    for tol, rec in records.items():
        worst = max(abs(v - ref) / abs(ref) for _, v, _ in rec)
        if worst <= target:
            t = statistics.median(r[0] for r in rec)
            if best is None or t < best[1]:
                best = (tol, t, worst, int(statistics.median(r[2] for r in rec)))
    return best


def run_case(case: str, reps: int, target: float, python: str) -> None:
    made = problem(case)
    if made is None:
        return
    model, x, y, widths = made
    dim = sum(p.numel() for p in model.parameters())
    print(f"\n[{case}] MLP {widths}, tanh, {x.shape[0]} examples, cross-entropy, P = {dim}")
    ref = float(lanczos(HessianOperator(model, F.cross_entropy, (x, y)), 1, tol=1e-10,
                        max_iter=2000).values[0])
    print(f"reference λ_max = {ref:.8g} (Lanczos, tol 1e-10)")
    mine: dict[float, list[tuple[float, float, int]]] = {t: [] for t in OURS_TOLS}
    theirs: dict[float, list[tuple[float, float, int]]] = {t: [] for t in THEIR_TOLS}
    hvp_theirs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problem.pt"
        torch.save({"widths": widths, "state_dict": model.state_dict(), "x": x, "y": y}, path)
        for rep in range(reps):
            for tol in OURS_TOLS:
                mine[tol].append(ours(model, x, y, tol, rep))
            done = subprocess.run(
                [python, str(Path(__file__).with_name("pyhessian_worker.py")), str(path),
                 ",".join(str(t) for t in THEIR_TOLS), "1"],
                capture_output=True, text=True, check=True)
            out = json.loads(done.stdout.strip().splitlines()[-1])
            for tol in THEIR_TOLS:
                r = out[str(tol)]
                theirs[tol].append((r["times"][0], r["values"][0], r["matvecs"][0]))
            hvp_theirs.append(out["hvp_seconds"])
    for name, rec in (("learnmech Lanczos", mine), ("PyHessian power iteration", theirs)):
        for tol, rs in rec.items():
            errs = [abs(v - ref) / abs(ref) for _, v, _ in rs]
            print(f"  {name:26s} tol={tol:<7g} time {statistics.median(r[0] for r in rs):7.3f}"
                  f" s  products {statistics.median(r[2] for r in rs):6.0f}  worst rel. error "
                  f"{max(errs):.1e}")
    a, b = cheapest(mine, ref, target), cheapest(theirs, ref, target)
    if a and b:
        print(f"time to λ_max within {target:g}: learnmech {a[1]:.3f} s (tol {a[0]:g}, "
              f"{a[3]} products), PyHessian {b[1]:.3f} s (tol {b[0]:g}, {b[3]} products): "
              f"ratio PyHessian/learnmech = {b[1] / a[1]:.1f}×")
    else:
        print(f"no setting reached {target:g}: learnmech {a}, PyHessian {b}")
    if dim <= 5000:
        start = time.perf_counter()
        op = HessianOperator(model, F.cross_entropy, (x, y))
        dense_top = float(torch.linalg.eigvalsh(op.dense())[-1])
        t_dense = time.perf_counter() - start
        ratio = f"; ratio dense/learnmech = {t_dense / a[1]:.1f}×" if a else ""
        print(f"dense: {dim} products + eigvalsh {t_dense:.2f} s (λ_max {dense_top:.8g})"
              + ratio)
    # a product in units of one gradient
    params = list(model.parameters())

    def gradient() -> None:
        torch.autograd.grad(F.cross_entropy(model(x), y), params)

    op = HessianOperator(model, F.cross_entropy, (x, y))
    func = HessianOperator(model, F.cross_entropy, (x, y), backend="func")
    v = torch.randn(op.dim)
    t_grad = per_call(gradient)
    t_hvp = per_call(lambda: op.matvec(v))
    t_func = per_call(lambda: func.matvec(v), 5)
    print(f"one gradient {t_grad * 1e3:.2f} ms; Hessian-vector product: learnmech autograd "
          f"{t_hvp / t_grad:.2f}, learnmech torch.func {t_func / t_grad:.2f}, PyHessian "
          f"{statistics.median(hvp_theirs) / t_grad:.2f} gradients")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--target", type=float, default=1e-4,
                        help="relative error of λ_max both methods must reach")
    parser.add_argument("--pyhessian", default=str(Path.home() / "venvs/pyhessian/bin/python"),
                        help="the Python of PyHessian's environment")
    parser.add_argument("--case", choices=["digits", "fashion", "all"], default="all")
    args = parser.parse_args()
    if not Path(args.pyhessian).exists():
        sys.exit(f"no PyHessian environment at {args.pyhessian}; see this script's docstring")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; target relative error {args.target:g}; "
          f"{args.reps} repetitions, medians")
    for case in ("digits", "fashion") if args.case == "all" else (args.case,):
        run_case(case, args.reps, args.target, args.pyhessian)


if __name__ == "__main__":
    main()
