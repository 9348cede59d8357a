"""Time to the top Hessian eigenvalue: learnmech's Lanczos vs PyHessian's power iteration,
curvlinops' Hessian operator under SciPy's ``eigsh`` (ARPACK), hessian-eigenthings'
Lanczos and a dense eigensolve, on the same network, data and accuracy; and the cost of
one Hessian-vector product in units of one gradient.

Run it in the peer environment that ``bench/peers.sh`` builds (PyHessian 0.1,
curvlinops-for-pytorch 3.0.1, hessian-eigenthings 1.0.0a5)::

    PYTHONPATH=src ~/venvs/peers/bin/python bench/hessian.py [--reps 5] [--target 1e-4]

PyHessian runs as a subprocess on the same problem, saved to a temporary file (it times
itself); the others run in this process. learnmech's Lanczos starts from
``HessianOperator.gradient_start`` (the gradient direction plus half a Gaussian one, as its
sharpness probe does); each peer from its own random start.

Accuracy is matched, not the tolerance parameters (they mean different things: PyHessian
stops when two consecutive power-iteration estimates differ by less than ``tol``
relatively; ARPACK on its Ritz estimate; learnmech's Lanczos when the Ritz residual is
below ``tol·|θ|``; hessian-eigenthings runs a fixed number of Lanczos steps). For each
method the cheapest of several settings whose every repetition lands within ``target``
relative error of the reference eigenvalue (float64 Lanczos of the same model and batch) is
timed, setup (the gradient graph, the operator) included. All run single-threaded;
repetitions interleave (learnmech, then each peer in turn, ``--reps`` times) and each ratio
is the median [min–max] over the repetitions of peer time / learnmech time.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnmech.data import load
from learnmech.linalg import HessianOperator, lanczos
from learnmech.system import Digits, FashionMNIST
from timing import MIN_REPEATS, spread

OURS_TOLS = (1e-2, 3e-3, 1e-3, 1e-4)
THEIR_TOLS = (1e-3, 1e-4, 1e-5, 1e-6)
ARPACK_TOLS = (1e-2, 1e-3, 1e-4, 1e-6)
EIGENTHINGS_STEPS = (6, 10, 16, 24, 40)  # it runs a fixed number of Lanczos steps

Record = tuple[float, float, int]  # seconds, eigenvalue, Hessian-vector products


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


def ours(model: nn.Module, x: Tensor, y: Tensor, tol: float, seed: int) -> Record:
    start = time.perf_counter()
    op = HessianOperator(model, F.cross_entropy, (x, y))
    top = lanczos(op, 1, tol=tol, max_iter=1000, v0=op.gradient_start(seed))
    return time.perf_counter() - start, float(top.values[0]), top.matvecs


def curvlinops_eigsh(model: nn.Module, x: Tensor, y: Tensor, tol: float, seed: int) -> Record:
    """curvlinops' HessianLinearOperator as a SciPy operator under ARPACK's ``eigsh``
    (the route its documentation gives for eigenvalues); its determinism check, which
    costs extra products at construction, is switched off."""
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import LinearOperator, eigsh

    start = time.perf_counter()
    op = HessianLinearOperator(model, nn.CrossEntropyLoss(), list(model.parameters()), [(x, y)],
                               check_deterministic=False).to_scipy()
    calls = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return op @ v

    counted = LinearOperator(op.shape, matvec=matvec, dtype=op.dtype)
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])
    value = eigsh(counted, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return time.perf_counter() - start, float(value[0]), calls[0]


def eigenthings(model: nn.Module, x: Tensor, y: Tensor, steps: int, seed: int) -> Record:
    """hessian-eigenthings' ``lanczos`` on its ``HessianOperator`` (``steps`` products)."""
    from hessian_eigenthings import HessianOperator as TheirOperator
    from hessian_eigenthings import lanczos as their_lanczos
    from hessian_eigenthings import supervised_loss

    start = time.perf_counter()
    op = TheirOperator(model, [(x, y)], supervised_loss(F.cross_entropy))
    top = their_lanczos(op, k=1, max_iter=steps, which="LA", seed=seed)
    return time.perf_counter() - start, float(top.eigenvalues[0]), steps


def per_call(fn: Any, reps: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def cheapest(records: dict[float, list[Record]], ref: float, target: float
             ) -> tuple[float, list[float], float, int] | None:
    """(setting, times per repetition, worst error, median products) of the fastest
    setting whose every repetition is accurate to ``target``."""
    best = None
    for setting, rec in records.items():
        worst = max(abs(v - ref) / abs(ref) for _, v, _ in rec)
        if worst <= target:
            times = [r[0] for r in rec]
            if best is None or statistics.median(times) < statistics.median(best[1]):
                best = (setting, times, worst, int(statistics.median(r[2] for r in rec)))
    return best


def pyhessian(python: str, path: Path) -> dict[float, Record]:
    """One repetition of every PyHessian tolerance, in its own process (timed there)."""
    done = subprocess.run(
        [python, str(Path(__file__).with_name("pyhessian_worker.py")), str(path),
         ",".join(str(t) for t in THEIR_TOLS), "1"],
        capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    records = {tol: (out[str(tol)]["times"][0], out[str(tol)]["values"][0],
                     out[str(tol)]["matvecs"][0]) for tol in THEIR_TOLS}
    records[-1.0] = (out["hvp_seconds"], 0.0, 0)  # the cost of one product
    return records


def run_case(case: str, reps: int, target: float, python: str) -> None:
    made = problem(case)
    if made is None:
        return
    model, x, y, widths = made
    dim = sum(p.numel() for p in model.parameters())
    print(f"\n[{case}] MLP {widths}, tanh, {x.shape[0]} examples, cross-entropy, P = {dim}")
    # the reference: the same model and batch in float64 (every method runs in float32)
    exact = HessianOperator(copy.deepcopy(model).double(), F.cross_entropy, (x.double(), y))
    ref = float(lanczos(exact, 1, tol=1e-12, max_iter=2000).values[0])
    print(f"reference λ_max = {ref:.8g} (float64 Lanczos of the same model, tol 1e-12)")
    methods: dict[str, tuple[tuple[float, ...], Any]] = {
        "learnmech Lanczos": (OURS_TOLS, ours),
        "PyHessian power iteration": (THEIR_TOLS, None),
        "curvlinops + SciPy eigsh": (ARPACK_TOLS, curvlinops_eigsh),
        "hessian-eigenthings Lanczos": (EIGENTHINGS_STEPS, eigenthings),
    }
    records: dict[str, dict[float, list[Record]]] = {
        name: {s: [] for s in settings} for name, (settings, _) in methods.items()}
    hvp_theirs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problem.pt"
        torch.save({"widths": widths, "state_dict": model.state_dict(), "x": x, "y": y}, path)
        for rep in range(reps + 1):  # repetition 0 warms every method up
            for name, (settings, fn) in methods.items():
                if fn is None:
                    got = pyhessian(python, path)
                    hvp_theirs.append(got.pop(-1.0)[0])
                else:
                    got = {s: fn(model, x, y, s, rep) for s in settings}
                    model.zero_grad(set_to_none=True)
                if rep:
                    for s, r in got.items():
                        records[name][s].append(r)
    for name, rec in records.items():
        for setting, rs in rec.items():
            errs = [abs(v - ref) / abs(ref) for _, v, _ in rs]
            label = "steps" if name.startswith("hessian-eigenthings") else "tol"
            print(f"  {name:28s} {label}={setting:<7g} time "
                  f"{statistics.median(r[0] for r in rs):7.3f} s  products "
                  f"{statistics.median(r[2] for r in rs):6.0f}  worst rel. error {max(errs):.1e}")
    mine = cheapest(records["learnmech Lanczos"], ref, target)
    if mine is None:
        print(f"learnmech reached no setting within {target:g}")
        return
    print(f"time to λ_max within {target:g}: learnmech {statistics.median(mine[1]):.3f} s "
          f"(tol {mine[0]:g}, {mine[3]} products)")
    for name in list(methods)[1:]:
        theirs = cheapest(records[name], ref, target)
        if theirs is None:
            print(f"  {name}: no setting reached {target:g}")
            continue
        ratios = [t / o for o, t in zip(mine[1], theirs[1], strict=True)]
        print(f"  {name}: {statistics.median(theirs[1]):.3f} s (setting {theirs[0]:g}, "
              f"{theirs[3]} products); ratio {name.split()[0]} / learnmech = {spread(ratios)}")
    if dim <= 5000:
        start = time.perf_counter()
        op = HessianOperator(model, F.cross_entropy, (x, y))
        dense_top = float(torch.linalg.eigvalsh(op.dense())[-1])
        t_dense = time.perf_counter() - start
        print(f"dense: {dim} products + eigvalsh {t_dense:.2f} s (λ_max {dense_top:.8g}); "
              f"ratio dense/learnmech = {t_dense / statistics.median(mine[1]):.1f}×")
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
    parser.add_argument("--reps", type=int, default=MIN_REPEATS)
    parser.add_argument("--target", type=float, default=1e-4,
                        help="relative error of λ_max both methods must reach")
    parser.add_argument("--pyhessian", default=sys.executable,
                        help="the Python of PyHessian's environment (default: this one)")
    parser.add_argument("--case", choices=["digits", "fashion", "all"], default="all")
    args = parser.parse_args()
    missing = [m for m in ("curvlinops", "hessian_eigenthings")
               if importlib.util.find_spec(m) is None]
    if missing or subprocess.run([args.pyhessian, "-c", "import pyhessian"],
                                 capture_output=True).returncode:
        sys.exit(f"peers missing ({', '.join(missing) or 'pyhessian'}): run bash bench/peers.sh "
                 "and this script with ~/venvs/peers/bin/python")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; target relative error {args.target:g}; "
          f"{args.reps} interleaved repetitions, medians")
    for case in ("digits", "fashion") if args.case == "all" else (args.case,):
        run_case(case, args.reps, args.target, args.pyhessian)


if __name__ == "__main__":
    main()
