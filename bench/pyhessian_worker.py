"""PyHessian's side of ``bench/hessian.py``: run in PyHessian's own environment.

Usage: ``python bench/pyhessian_worker.py PROBLEM.pt TOLS REPS`` prints one JSON line:
``{"tol": {"times": [...], "values": [...], "matvecs": [...]}, ..., "hvp_seconds": s}``.
The problem file holds the network's widths, activation and weights and the batch; the
network is rebuilt here with plain torch, so this script needs only torch, numpy and
pyhessian.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from pyhessian import hessian as PyHessian  # the class; it shadows the submodule's name
from torch import nn

# the submodule itself, whose hessian_vector_product the class calls (counted below)
pyhessian_module = sys.modules["pyhessian.hessian"]


def build(problem: dict) -> nn.Module:
    layers: list[nn.Module] = []
    widths = problem["widths"]
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    model.load_state_dict(problem["state_dict"])
    return model


def main() -> None:
    problem = torch.load(sys.argv[1])
    tols = [float(t) for t in sys.argv[2].split(",")]
    reps = int(sys.argv[3])
    torch.set_num_threads(1)
    model = build(problem)
    x, y = problem["x"], problem["y"]
    criterion = nn.CrossEntropyLoss()
    calls = [0]
    product = pyhessian_module.hessian_vector_product

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return product(*args, **kwargs)

    pyhessian_module.hessian_vector_product = counted
    PyHessian(model, criterion, data=(x, y), cuda=False).eigenvalues(maxIter=3)  # warm-up
    model.zero_grad(set_to_none=True)
    out: dict = {}
    for tol in tols:
        rec: dict = {"times": [], "values": [], "matvecs": []}
        for rep in range(reps):
            torch.manual_seed(rep)
            calls[0] = 0
            start = time.perf_counter()
            values, _ = PyHessian(model, criterion, data=(x, y), cuda=False).eigenvalues(
                maxIter=1000, tol=tol, top_n=1)
            rec["times"].append(time.perf_counter() - start)
            rec["values"].append(float(values[0]))
            rec["matvecs"].append(calls[0])
            model.zero_grad(set_to_none=True)
        out[str(tol)] = rec
    # the cost of one of its products (graph built once, as in its eigenvalues())
    h = PyHessian(model, criterion, data=(x, y), cuda=False)
    v = [torch.randn_like(p) for p in h.params]
    counted(h.gradsH, h.params, v)
    start = time.perf_counter()
    for _ in range(20):
        counted(h.gradsH, h.params, v)
    out["hvp_seconds"] = (time.perf_counter() - start) / 20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
