"""Analytic and empirical NTKs, timed against neural-tangents and a naive torch.func
Jacobian contraction on the same inputs and networks.

Usage::

    python bench/kernels.py [--nt-python PATH] [--nt-structured-python PATH] [--threads N]
                            [--quick]

``--nt-python`` (or ``$NT_PYTHON``) is a Python with ``jax==0.5.3``, ``jaxlib==0.5.3``,
``frozendict`` and ``neural-tangents==0.6.5`` (installed with ``--no-deps``); without it the
neural-tangents columns are skipped. neural-tangents' STRUCTURED_DERIVATIVES fails on jax
0.5.3 and 0.4.30 (``jax.interpreters.ad.source_info_util``); ``--nt-structured-python`` may
point to a second environment with ``jax==jaxlib==0.4.23``. Every case runs in a fresh
subprocess so that its peak resident memory (ru_maxrss) is its own, with ``--threads``
threads for both libraries (default 1: on a shared machine, multi-threaded timings mostly
measure contention). Each worker times one call after a warm-up call (for neural-tangents
the warm-up includes jit compilation, reported separately). Every comparison with
neural-tangents runs ``--repeats`` interleaved pairs of workers, ours then theirs
(``bench/timing.py``); the tables give median seconds and the ratio NT / ours, median
[min–max] over the pairs. learnmech's other methods and the naive contraction, which are
not peers, run once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import MIN_REPEATS, Pairs, interleaved

HERE = Path(__file__).resolve()

# ---- cases ---------------------------------------------------------------------------------
ANALYTIC = [  # (activation, inputs, dimension)
    ("relu", 2000, 64),
    ("erf", 2000, 64),
    ("leaky_relu", 2000, 64),
    ("tanh", 200, 64),  # ours at defaults (error-controlled); neural-tangents 96 GH nodes
]
W_STD, B_STD, SLOPE, NODES = 1.3, 0.2, 0.1, 96
EMPIRICAL_SMALL = (64, 512, 500)  # input dim, width, inputs: 64-512-512-1 ReLU MLP
EMPIRICAL_BIG = (784, 512, 256, 10)  # input dim, width, inputs, outputs: the 670k MLP


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(fn, repeats: int = 1) -> tuple[float, float, object]:
    """(first-call seconds, best of ``repeats`` later calls, result)."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return first, min(times), out


# ---- torch side ------------------------------------------------------------------------------
def _torch_inputs(n: int, d: int, seed: int = 0):
    import numpy as np

    return np.random.default_rng(seed).standard_normal((n, d))


def torch_analytic(activation: str, n: int, d: int, out_dir: str) -> dict:
    import numpy as np
    import torch

    from learnmech.theory.kernels import analytic_kernels

    x = torch.tensor(_torch_inputs(n, d))
    first, best, k = _best(lambda: analytic_kernels(
        x, depth=3, activation=activation, w_std=W_STD, b_std=B_STD, negative_slope=SLOPE))
    np.savez(Path(out_dir) / f"ours_{activation}.npz", nngp=k.nngp.numpy(), ntk=k.ntk.numpy())
    return {"seconds": best, "first": first, "peak_mb": _peak_mb()}


def _torch_mlp(d: int, width: int, outputs: int, dtype):
    import torch

    from learnmech.models import build_model
    from learnmech.system import MLP

    net, _ = build_model(MLP(width=width, depth=3, activation="relu", parametrization="sp"), d,
                         outputs, generator=torch.Generator().manual_seed(0))
    return net.to(dtype)


def _save_params(net, path: Path) -> None:
    import numpy as np

    arrays = {}
    for i, layer in enumerate(net.layers):
        arrays[f"w{i}"] = layer.weight.detach().double().numpy().T
        arrays[f"b{i}"] = layer.bias.detach().double().numpy()
    np.savez(path, **arrays)


def torch_empirical(case: str, method: str, out_dir: str) -> dict:
    import numpy as np
    import torch

    from learnmech.probes.ntk import empirical_ntk

    if case == "small":
        d, width, n = EMPIRICAL_SMALL
        outputs = 1
    else:
        d, width, n, outputs = EMPIRICAL_BIG
    net = _torch_mlp(d, width, outputs, torch.float32)
    x = torch.tensor(_torch_inputs(n, d), dtype=torch.float32)
    if method == "naive":
        from torch.func import functional_call, jacrev, vmap

        params = {k: v.detach() for k, v in net.named_parameters()}

        def one(p, xi):
            return functional_call(net, p, (xi.unsqueeze(0),)).squeeze(0)

        def naive():  # the torch.func tutorial's Jacobian contraction
            jac = vmap(jacrev(one), (None, 0))(params, x)
            flat = [j.flatten(2) for j in jac.values()]
            return sum(torch.einsum("Naf,Mbf->NMab", j, j) for j in flat)

        first, best, k = _best(naive)
    else:
        first, best, k = _best(lambda: empirical_ntk(net, x, method=method))
    if case == "small":
        _save_params(net, Path(out_dir) / "params_small.npz")
        np.save(Path(out_dir) / f"ours_empirical_{method}.npy", k.numpy())
    return {"seconds": best, "first": first, "peak_mb": _peak_mb(), "parameters":
            sum(p.numel() for p in net.parameters()), "shape": list(k.shape)}


# ---- neural-tangents side (runs under --nt-python) -------------------------------------------
def _nt():
    import types

    sys.modules.setdefault("neural_tangents.experimental",
                           types.ModuleType("neural_tangents.experimental"))
    import jax

    jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt
    from neural_tangents import stax

    return jax, nt, stax


def nt_analytic(activation: str, n: int, d: int, out_dir: str) -> dict:
    import numpy as np

    jax, _, stax = _nt()
    import jax.numpy as jnp

    act = {
        "relu": stax.Relu(), "erf": stax.Erf(), "leaky_relu": stax.LeakyRelu(SLOPE),
        "tanh": stax.ElementwiseNumerical(jnp.tanh, deg=NODES,
                                          df=lambda x: 1 - jnp.tanh(x) ** 2),
    }[activation]
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=W_STD, b_std=B_STD), act,
                                  stax.Dense(512, W_std=W_STD, b_std=B_STD), act,
                                  stax.Dense(1, W_std=W_STD, b_std=B_STD))
    kernel_fn = jax.jit(kernel_fn, static_argnames="get")
    x = jnp.asarray(_torch_inputs(n, d))

    def run():
        k = kernel_fn(x, None, ("nngp", "ntk"))
        return jax.block_until_ready(k)

    first, best, k = _best(run)
    np.savez(Path(out_dir) / f"nt_{activation}.npz", nngp=np.asarray(k.nngp),
             ntk=np.asarray(k.ntk))
    return {"seconds": best, "first": first, "peak_mb": _peak_mb()}


def nt_empirical(case: str, implementation: str, out_dir: str) -> dict:
    import numpy as np

    jax, nt, stax = _nt()
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", False)
    if case == "small":
        d, width, n = EMPIRICAL_SMALL
        outputs = 1
    else:
        d, width, n, outputs = EMPIRICAL_BIG
    _, apply_fn, _ = stax.serial(stax.Dense(width, parameterization="standard"), stax.Relu(),
                                 stax.Dense(width, parameterization="standard"), stax.Relu(),
                                 stax.Dense(outputs, parameterization="standard"))
    saved = Path(out_dir) / "params_small.npz"
    if case == "small" and saved.exists():
        arrays = np.load(saved)
        params = [(jnp.asarray(arrays[f"w{i}"], jnp.float32),
                   jnp.asarray(arrays[f"b{i}"], jnp.float32)) for i in range(3)]
        params = [params[0], (), params[1], (), params[2]]
    else:
        key = jax.random.PRNGKey(0)
        params = []
        for fan_in, fan_out in ((d, width), (width, width), (width, outputs)):
            key, sub = jax.random.split(key)
            params += [(jax.random.normal(sub, (fan_in, fan_out)) / fan_in**0.5,
                        jnp.zeros(fan_out)), ()]
        params = params[:-1]
    impl = getattr(nt.NtkImplementation, implementation)
    fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                                     implementation=impl))
    x = jnp.asarray(_torch_inputs(n, d), jnp.float32)

    def run():
        return jax.block_until_ready(fn(x, None, params))

    first, best, k = _best(run)
    if case == "small":
        np.save(Path(out_dir) / f"nt_empirical_{implementation}.npy", np.asarray(k))
    return {"seconds": best, "first": first, "peak_mb": _peak_mb(), "shape": list(k.shape)}


# ---- driver ----------------------------------------------------------------------------------
def _run(python: str, args: list[str], timeout: float = 900) -> dict:
    env = dict(os.environ)
    threads = env.get("LM_BENCH_THREADS", "1")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = threads
    env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'false' if threads == '1' else 'true'} "
                        f"intra_op_parallelism_threads={threads}")
    src = str(HERE.parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([python, str(HERE), "--worker", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "Error" in ln] or ["failed"]
        return {"error": lines[-1].strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pair(ours: tuple[str, list[str]], peer: tuple[str, list[str]], repeats: int
          ) -> tuple[Pairs, dict, dict]:
    """Interleaved fresh workers, ours then the peer, ``repeats`` times: the pairs of
    seconds and the last result of each side (``{"error": ...}`` if the peer failed)."""
    last: dict[str, dict] = {}

    def side(name: str, python: str, args: list[str]):  # type: ignore[no-untyped-def]
        def run() -> float:
            last[name] = _run(python, args)
            if "error" in last[name]:
                raise RuntimeError(last[name]["error"])
            return last[name]["seconds"]
        return run

    try:
        pairs = interleaved(side("ours", *ours), side("peer", *peer), repeats, warmup=False)
    except RuntimeError:
        return Pairs([], []), last.get("ours", {}), last.get("peer", {"error": "failed"})
    return pairs, last["ours"], last["peer"]


def _relative(a, b, mask=None) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float).squeeze(), np.asarray(b, dtype=float).squeeze()
    diff = np.abs(a - b) if mask is None else np.abs(a - b)[mask]
    return float(np.max(diff) / np.max(np.abs(b)))


def _exact_diagonal(activation: str, n: int, d: int):
    """NNGP and NTK of each input with itself (c = 1 exactly): closed forms, no arccos."""
    import numpy as np

    x = _torch_inputs(n, d)
    w2, b2 = W_STD**2, B_STD**2
    q = w2 * (x * x).sum(1) / d + b2
    theta = q.copy()
    for _ in range(2):
        if activation == "erf":
            e = 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))
            edot = 4 / np.pi / np.sqrt(1 + 4 * q)
        else:  # relu / leaky relu: E[φ²] = q (1 + a²)/2, E[φ'²] = (1 + a²)/2
            a = SLOPE if activation == "leaky_relu" else 0.0
            e, edot = q * (1 + a * a) / 2, (1 + a * a) / 2
        q = w2 * e + b2
        theta = q + w2 * edot * theta
    return q, theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nt-python", default=os.environ.get("NT_PYTHON"))
    parser.add_argument("--nt-structured-python", default=os.environ.get("NT_STRUCTURED_PYTHON"),
                        help="a Python whose neural-tangents runs STRUCTURED_DERIVATIVES "
                             "(it fails on jax 0.5.3; jax 0.4.30 works); default --nt-python")
    parser.add_argument("--quick", action="store_true", help="skip the 670k-parameter case")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        kind, *rest = args.worker
        rest = [int(r) if r.isdigit() else r for r in rest]
        out = {"torch_analytic": torch_analytic, "nt_analytic": nt_analytic,
               "torch_empirical": torch_empirical, "nt_empirical": nt_empirical}[kind](*rest)
        print(json.dumps(out))
        return
    import numpy as np

    os.environ["LM_BENCH_THREADS"] = str(args.threads)
    ours_py, nt_py = sys.executable, args.nt_python
    structured_py = args.nt_structured_python or nt_py
    tmp = tempfile.mkdtemp(prefix="lm-bench-")
    print(f"threads per library: {args.threads}; neural-tangents: "
          f"{nt_py or 'not given (skipped)'}")
    print("\n## Analytic NNGP + NTK, depth 3 (2 hidden layers), float64")
    print("| activation | inputs | ours (s) | neural-tangents (s, jit; compile) | ratio NT/ours "
          "[min–max] | max rel. diff off-diagonal | diagonal error vs exact: ours / NT |")
    print("|---|---|---|---|---|---|---|")
    for activation, n, d in ANALYTIC:
        job = [activation, str(n), str(d), tmp]
        if not nt_py:
            ours = _run(ours_py, ["torch_analytic", *job])
            print(f"| {activation} | {n} | {ours.get('seconds', float('nan')):.3f} "
                  "| – | – | – | – |")
            continue
        pairs, ours, ref = _pair((ours_py, ["torch_analytic", *job]),
                                 (nt_py, ["nt_analytic", *job]), args.repeats)
        row = f"| {activation} | {n} |"
        if "error" in ref:
            row += f" {ours.get('seconds', float('nan')):.3f} | error: {ref['error']} | | | |"
        else:
            a = np.load(Path(tmp) / f"ours_{activation}.npz")
            b = np.load(Path(tmp) / f"nt_{activation}.npz")
            off = ~np.eye(n, dtype=bool)
            diff = max(_relative(a[k], b[k], off) for k in ("nngp", "ntk"))
            diag = "–"
            if activation != "tanh":
                exact = dict(zip(("nngp", "ntk"), _exact_diagonal(activation, n, d),
                                 strict=True))
                errs = [max(_relative(np.diag(m[k]), exact[k]) for k in exact)
                        for m in (a, b)]
                diag = f"{errs[0]:.1e} / {errs[1]:.1e}"
            row += (f" {statistics.median(pairs.ours):.3f} | "
                    f"{statistics.median(pairs.peer):.3f} ({ref['first']:.1f}) | "
                    f"{pairs.ratio()} | {diff:.1e} | {diag} |")
        print(row)

    d, width, n = EMPIRICAL_SMALL
    print(f"\n## Empirical NTK, {d}-{width}-{width}-1 ReLU MLP, {n} inputs, float32")
    print("| implementation | seconds | peak RSS (MB) | max rel. diff vs ours "
          "| ratio its time / ours [min–max] |")
    print("|---|---|---|---|---|")
    ours = _run(ours_py, ["torch_empirical", "small", "auto", tmp])
    print(f"| learnmech empirical_ntk (auto = structured) | {ours['seconds']:.3f} | "
          f"{ours['peak_mb']:.0f} | – | – |")
    base = np.load(Path(tmp) / "ours_empirical_auto.npy")
    for method in ("jacobian", "ntvp", "naive"):
        r = _run(ours_py, ["torch_empirical", "small", method, tmp])
        diff = (_relative(np.load(Path(tmp) / f"ours_empirical_{method}.npy"), base)
                if method != "naive" else float("nan"))
        label = ("torch.func vmap(jacrev) contraction (naive), once" if method == "naive"
                 else f"learnmech method={method}, once")
        print(f"| {label} | {r['seconds']:.3f} | {r['peak_mb']:.0f} | {diff:.1e} | "
              f"{r['seconds'] / ours['seconds']:.2f} |")
    if nt_py:
        for impl in ("JACOBIAN_CONTRACTION", "NTK_VECTOR_PRODUCTS", "STRUCTURED_DERIVATIVES"):
            py = structured_py if impl == "STRUCTURED_DERIVATIVES" else nt_py
            pairs, _, r = _pair((ours_py, ["torch_empirical", "small", "auto", tmp]),
                                   (py, ["nt_empirical", "small", impl, tmp]), args.repeats)
            if "error" in r:
                print(f"| neural-tangents {impl} | error: {r['error']} | | | |")
                continue
            diff = _relative(np.load(Path(tmp) / f"nt_empirical_{impl}.npy"), base)
            print(f"| neural-tangents {impl} (compile {r['first']:.1f} s; ours "
                  f"{statistics.median(pairs.ours):.3f} s in these pairs) | "
                  f"{statistics.median(pairs.peer):.3f} | {r['peak_mb']:.0f} | {diff:.1e} | "
                  f"{pairs.ratio()} |")

    if args.quick:
        return
    d, width, n, outputs = EMPIRICAL_BIG
    print(f"\n## Full {outputs}-output empirical NTK ({n}, {n}, {outputs}, {outputs}), "
          f"{d}-{width}-{width}-{outputs} ReLU MLP, float32")
    print("| implementation | seconds | peak RSS (MB) |")
    print("|---|---|---|")
    if not nt_py:
        big = _run(ours_py, ["torch_empirical", "big", "auto", tmp])
        print(f"| learnmech empirical_ntk (auto = structured), {big['parameters']} parameters "
              f"| {big['seconds']:.2f} | {big['peak_mb']:.0f} |")
        return
    pairs, big, r = _pair((ours_py, ["torch_empirical", "big", "auto", tmp]),
                          (structured_py, ["nt_empirical", "big", "STRUCTURED_DERIVATIVES", tmp]),
                          args.repeats)
    print(f"| learnmech empirical_ntk (auto = structured), {big['parameters']} parameters | "
          f"{statistics.median(pairs.ours) if pairs.ours else big['seconds']:.2f} | "
          f"{big['peak_mb']:.0f} |")
    text = (f"{statistics.median(pairs.peer):.2f} | {r['peak_mb']:.0f}" if "error" not in r
            else f"error: {r['error']} |")
    print(f"| neural-tangents STRUCTURED_DERIVATIVES | {text} |")
    if pairs.ours:
        print(f"\nratio NT / ours: {pairs.ratio()}")


if __name__ == "__main__":
    main()
