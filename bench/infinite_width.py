"""Infinite-width kernels beyond Dense (conv, pooling, LayerNorm, residual) and the dense
closed forms at default settings, against neural-tangents on the same inputs.

Usage::

    python bench/infinite_width.py --nt-python ~/venvs/nt/bin/python [--repeats 5]

Both libraries run in float64 with one thread, each in its own subprocess that stays alive
for the whole run; timings alternate ours, theirs, ours, theirs … (``--repeats`` pairs,
after a warm-up call that includes neural-tangents' jit compilation) and the ratio is the
median of the per-pair ratios, with its minimum and maximum. Agreement is the largest
entry-wise difference relative to the largest entry.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
W, B = 1.4, 0.1
CONV = {  # name: (inputs, channels, height, width)
    "conv-relu-conv-relu-gap": (20, 3, 8, 8),
    "conv-erf-avgpool-flatten": (20, 3, 8, 8),
    "conv-gelu-circular-flatten": (20, 3, 8, 8),
    "conv-relu-valid-stride2-conv-gap": (20, 3, 8, 8),
    "conv-layernorm-relu-flatten": (20, 3, 8, 8),
    "dense-residual-relu": (200, 16, 0, 0),
}
DENSE_ACTIVATIONS = ("relu", "erf", "gelu", "identity")


def _inputs(n: int, c: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, c, h, w)) if h else rng.standard_normal((n, c))


# ---- learnmech -------------------------------------------------------------------------------
def ours(name: str):
    from learnmech.theory import infinite_width as iw

    act = {"relu": iw.ActivationLayer("relu"), "erf": iw.ActivationLayer("erf"),
           "gelu": iw.ActivationLayer("gelu")}
    conv = iw.Conv(64, 3, w_std=W, b_std=B)
    layers = {
        "conv-relu-conv-relu-gap": [conv, act["relu"], conv, act["relu"], iw.GlobalAvgPool(),
                                    iw.Dense(1, W, B)],
        "conv-erf-avgpool-flatten": [conv, act["erf"], iw.AvgPool(2), iw.Flatten(),
                                     iw.Dense(1, W, B)],
        "conv-gelu-circular-flatten": [
            iw.Conv(64, 3, 1, "circular", W, B), act["gelu"], iw.Flatten(), iw.Dense(1, W, B)],
        "conv-relu-valid-stride2-conv-gap": [
            iw.Conv(64, 3, 2, "valid", W, B), act["relu"], conv, act["relu"], iw.GlobalAvgPool(),
            iw.Dense(1, W, B)],
        "conv-layernorm-relu-flatten": [conv, iw.LayerNorm("all", eps=1e-12), act["relu"],
                                        iw.Flatten(), iw.Dense(1, W, B)],
        "dense-residual-relu": [iw.Dense(64, W, B),
                                iw.Residual([act["relu"], iw.Dense(64, W, B)], 0.5),
                                iw.Residual([act["relu"], iw.Dense(64, W, B)], 0.5),
                                act["relu"], iw.Dense(1, W, B)],
    }[name]
    return lambda x: iw.network_kernels(layers, x)


def ours_dense(activation: str, depth: int, parameterization: str):
    from learnmech.theory.kernels import analytic_kernels

    return lambda x1, x2: analytic_kernels(x1, x2, depth=depth, activation=activation,
                                           w_std=W, b_std=B, parameterization=parameterization,
                                           width=512)


def ours_worker() -> None:
    import torch

    torch.set_num_threads(1)
    for line in sys.stdin:
        job = json.loads(line)
        if job["kind"] == "conv":
            x = torch.tensor(_inputs(*CONV[job["name"]]))
            fn = ours(job["name"])
            call = functools.partial(fn, x)
        else:
            x = torch.tensor(_inputs(30, 8, 0, 0))
            fn2 = ours_dense(job["activation"], job["depth"], job["parameterization"])
            call = functools.partial(fn2, x[:20], x[20:])
        start = time.perf_counter()
        k = call()
        seconds = time.perf_counter() - start
        np.savez(job["out"], nngp=k.nngp.numpy(), ntk=k.ntk.numpy())
        print(json.dumps({"seconds": seconds}), flush=True)


# ---- neural-tangents -------------------------------------------------------------------------
def nt_worker() -> None:
    import types

    sys.modules.setdefault("neural_tangents.experimental",
                           types.ModuleType("neural_tangents.experimental"))
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from neural_tangents import stax

    def conv(padding: str = "SAME", strides: tuple[int, int] = (1, 1)):
        return stax.Conv(64, (3, 3), strides, padding, W_std=W, b_std=B)

    nets = {
        "conv-relu-conv-relu-gap": [conv(), stax.Relu(), conv(), stax.Relu(),
                                    stax.GlobalAvgPool(), stax.Dense(1, W, B)],
        "conv-erf-avgpool-flatten": [conv(), stax.Erf(), stax.AvgPool((2, 2), (2, 2)),
                                     stax.Flatten(), stax.Dense(1, W, B)],
        "conv-gelu-circular-flatten": [conv("CIRCULAR"), stax.Gelu(), stax.Flatten(),
                                       stax.Dense(1, W, B)],
        "conv-relu-valid-stride2-conv-gap": [conv("VALID", (2, 2)), stax.Relu(), conv(),
                                             stax.Relu(), stax.GlobalAvgPool(),
                                             stax.Dense(1, W, B)],
        "conv-layernorm-relu-flatten": [conv(), stax.LayerNorm(axis=(1, 2, 3)), stax.Relu(),
                                        stax.Flatten(), stax.Dense(1, W, B)],
        "dense-residual-relu": [
            stax.Dense(64, W, B),
            stax.serial(stax.FanOut(2), stax.parallel(
                stax.Identity(), stax.serial(stax.Relu(), stax.Dense(64, W * 0.5, B * 0.5))),
                stax.FanInSum()),
            stax.serial(stax.FanOut(2), stax.parallel(
                stax.Identity(), stax.serial(stax.Relu(), stax.Dense(64, W * 0.5, B * 0.5))),
                stax.FanInSum()),
            stax.Relu(), stax.Dense(1, W, B)],
    }
    acts = {"relu": stax.Relu(), "erf": stax.Erf(), "gelu": stax.Gelu(),
            "identity": stax.Identity()}
    cache: dict = {}
    for line in sys.stdin:
        job = json.loads(line)
        if job["kind"] == "conv":
            key = job["name"]
            if key not in cache:
                _, _, kfn = stax.serial(*nets[key])
                cache[key] = jax.jit(kfn, static_argnames="get")
            x = _inputs(*CONV[key])
            x = jnp.asarray(np.moveaxis(x, 1, -1) if x.ndim == 4 else x)
            call = functools.partial(cache[key], x, None, ("nngp", "ntk"))
        else:
            key = (job["activation"], job["depth"], job["parameterization"])
            if key not in cache:
                p = job["parameterization"]
                layers = []
                for _ in range(job["depth"] - 1):
                    layers += [stax.Dense(512, W, B, parameterization=p), acts[key[0]]]
                _, _, kfn = stax.serial(*layers, stax.Dense(1, W, B, parameterization=p))
                cache[key] = jax.jit(kfn, static_argnames="get")
            x = jnp.asarray(_inputs(30, 8, 0, 0))
            call = functools.partial(cache[key], x[:20], x[20:], ("nngp", "ntk"))
        start = time.perf_counter()
        k = jax.block_until_ready(call())
        seconds = time.perf_counter() - start
        np.savez(job["out"], nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk))
        print(json.dumps({"seconds": seconds}), flush=True)


# ---- driver ----------------------------------------------------------------------------------
class Worker:
    def __init__(self, python: str, role: str) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        env["PYTHONPATH"] = str(HERE.parent.parent / "src") + os.pathsep + env.get(
            "PYTHONPATH", "")
        self.proc = subprocess.Popen([python, str(HERE), "--worker", role], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, job: dict) -> float:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["seconds"]


def _diff(a: str, b: str) -> float:
    x, y = np.load(a), np.load(b)
    return max(float(np.abs(x[k].squeeze() - y[k].squeeze()).max()
                     / np.abs(y[k]).max()) for k in ("nngp", "ntk"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nt-python", default=os.environ.get("NT_PYTHON"), required=False)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"ours": ours_worker, "nt": nt_worker}[args.worker]()
        return
    if not args.nt_python:
        parser.error("--nt-python (a Python with neural-tangents 0.6.5 on jax 0.5.3) is needed")
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    mine, theirs = Worker(sys.executable, "ours"), Worker(args.nt_python, "nt")
    a, b = str(tmp / "lm_iw_ours.npz"), str(tmp / "lm_iw_nt.npz")

    print("## Dense closed forms at default settings: max relative difference "
          "(NNGP and NTK, cross kernel 20×10)")
    print("| activation | depth | parameterization | max rel. diff |")
    print("|---|---|---|---|")
    for act in DENSE_ACTIVATIONS:
        for depth in (1, 2, 3):
            for p in ("ntk", "standard"):
                job = {"kind": "dense", "activation": act, "depth": depth, "parameterization": p}
                mine({**job, "out": a})
                theirs({**job, "out": b})
                print(f"| {act} | {depth} | {p} | {_diff(a, b):.1e} |")

    print(f"\n## Conv / pooling / LayerNorm / residual kernels, float64, one thread, "
          f"median of {args.repeats} interleaved pairs")
    print("| network | inputs | ours (s) | neural-tangents (s) | NT compile (s) | "
          "ratio NT/ours median [min–max] | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    for name, shape in CONV.items():
        job = {"kind": "conv", "name": name}
        mine({**job, "out": a})
        compile_s = theirs({**job, "out": b})
        ratios, t_ours, t_nt = [], [], []
        for _ in range(args.repeats):
            t1 = mine({**job, "out": a})
            t2 = theirs({**job, "out": b})
            t_ours.append(t1)
            t_nt.append(t2)
            ratios.append(t2 / t1)
        print(f"| {name} | {shape[0]}×{shape[1:]} | {statistics.median(t_ours):.3f} | "
              f"{statistics.median(t_nt):.3f} | {compile_s:.1f} | "
              f"{statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}] | "
              f"{_diff(a, b):.1e} |")


if __name__ == "__main__":
    main()
