"""Analytic and empirical NTKs, timed against neural-tangents and a naive torch.func
Jacobian contraction on the same inputs and networks.

Usage::

    python bench/kernels.py [--nt-python PATH] [--quick]

``--nt-python`` (or ``$NT_PYTHON``) is a Python with ``jax==0.5.3``, ``jaxlib==0.5.3``,
``frozendict`` and ``neural-tangents==0.6.5`` (installed with ``--no-deps``); without it the
neural-tangents columns are skipped. Every case runs in a fresh subprocess so that its peak
resident memory (ru_maxrss) is its own. Times are the best of three calls after one warm-up
call (for neural-tangents the warm-up includes jit compilation, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()

# ---- cases ---------------------------------------------------------------------------------
ANALYTIC = [  # (activation, inputs, dimension)
    ("relu", 2000, 64),
    ("erf", 2000, 64),
    ("leaky_relu", 2000, 64),
    ("tanh", 300, 64),
]
EMPIRICAL_SMALL = (64, 512, 500)  # input dim, width, inputs: 64-512-512-1 ReLU MLP
EMPIRICAL_BIG = (784, 512, 256, 10)  # input dim, width, inputs, outputs: the 670k MLP


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(fn, repeats: int = 3) -> tuple[float, float, object]:
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
        x, depth=3, activation=activation, w_std=1.3, b_std=0.2, negative_slope=0.1,
        quadrature_points=25))
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

        first, best, k = _best(naive, repeats=1)
    else:
        first, best, k = _best(lambda: empirical_ntk(net, x, method=method),
                               repeats=3 if case == "small" else 1)
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
        "relu": stax.Relu(), "erf": stax.Erf(), "leaky_relu": stax.LeakyRelu(0.1),
        "tanh": stax.ElementwiseNumerical(jnp.tanh, deg=25, df=lambda x: 1 - jnp.tanh(x) ** 2),
    }[activation]
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=1.3, b_std=0.2), act,
                                  stax.Dense(512, W_std=1.3, b_std=0.2), act,
                                  stax.Dense(1, W_std=1.3, b_std=0.2))
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

    first, best, k = _best(run, repeats=3 if case == "small" else 1)
    if case == "small":
        np.save(Path(out_dir) / f"nt_empirical_{implementation}.npy", np.asarray(k))
    return {"seconds": best, "first": first, "peak_mb": _peak_mb(), "shape": list(k.shape)}


# ---- driver ----------------------------------------------------------------------------------
def _run(python: str, args: list[str], timeout: float = 900) -> dict:
    env = dict(os.environ)
    src = str(HERE.parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([python, str(HERE), "--worker", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _relative(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float).squeeze(), np.asarray(b, dtype=float).squeeze()
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nt-python", default=os.environ.get("NT_PYTHON"))
    parser.add_argument("--quick", action="store_true", help="skip the 670k-parameter case")
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

    ours_py, nt_py = sys.executable, args.nt_python
    tmp = tempfile.mkdtemp(prefix="lm-bench-")
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}; "
          f"neural-tangents: {nt_py or 'not given (skipped)'}")
    print("\n## Analytic NNGP + NTK, depth 3 (2 hidden layers), float64")
    print("| activation | inputs | ours (s) | neural-tangents (s, jit; compile) | ratio NT/ours "
          "| max rel. diff |")
    print("|---|---|---|---|---|---|")
    for activation, n, d in ANALYTIC:
        ours = _run(ours_py, ["torch_analytic", activation, str(n), str(d), tmp])
        row = f"| {activation} | {n} | {ours.get('seconds', float('nan')):.3f} |"
        if nt_py:
            ref = _run(nt_py, ["nt_analytic", activation, str(n), str(d), tmp])
            if "error" in ref:
                row += f" error: {ref['error']} | | |"
            else:
                a = np.load(Path(tmp) / f"ours_{activation}.npz")
                b = np.load(Path(tmp) / f"nt_{activation}.npz")
                diff = max(_relative(a["nngp"], b["nngp"]), _relative(a["ntk"], b["ntk"]))
                row += (f" {ref['seconds']:.3f} ({ref['first']:.1f}) | "
                        f"{ref['seconds'] / ours['seconds']:.2f} | {diff:.1e} |")
        else:
            row += " – | – | – |"
        print(row)

    d, width, n = EMPIRICAL_SMALL
    print(f"\n## Empirical NTK, {d}-{width}-{width}-1 ReLU MLP, {n} inputs, float32")
    print("| implementation | seconds | peak RSS (MB) | max rel. diff vs ours |")
    print("|---|---|---|---|")
    ours = _run(ours_py, ["torch_empirical", "small", "auto", tmp])
    print(f"| learnmech empirical_ntk (auto = structured) | {ours['seconds']:.3f} | "
          f"{ours['peak_mb']:.0f} | – |")
    base = np.load(Path(tmp) / "ours_empirical_auto.npy")
    for method in ("jacobian", "ntvp"):
        r = _run(ours_py, ["torch_empirical", "small", method, tmp])
        diff = _relative(np.load(Path(tmp) / f"ours_empirical_{method}.npy"), base)
        print(f"| learnmech method={method} | {r['seconds']:.3f} | {r['peak_mb']:.0f} | "
              f"{diff:.1e} |")
    naive = _run(ours_py, ["torch_empirical", "small", "naive", tmp])
    print(f"| torch.func vmap(jacrev) contraction (naive) | {naive['seconds']:.3f} | "
          f"{naive['peak_mb']:.0f} | – |")
    best_nt = None
    if nt_py:
        for impl in ("JACOBIAN_CONTRACTION", "NTK_VECTOR_PRODUCTS", "STRUCTURED_DERIVATIVES"):
            r = _run(nt_py, ["nt_empirical", "small", impl, tmp])
            if "error" in r:
                print(f"| neural-tangents {impl} | error: {r['error']} | | |")
                continue
            diff = _relative(np.load(Path(tmp) / f"nt_empirical_{impl}.npy"), base)
            print(f"| neural-tangents {impl} (compile {r['first']:.1f} s) | {r['seconds']:.3f} "
                  f"| {r['peak_mb']:.0f} | {diff:.1e} |")
            best_nt = r["seconds"] if best_nt is None else min(best_nt, r["seconds"])
    if best_nt is not None:
        print(f"\nratio fastest neural-tangents / learnmech: {best_nt / ours['seconds']:.2f}")
    print(f"ratio naive torch.func / learnmech: {naive['seconds'] / ours['seconds']:.2f}")

    if args.quick:
        return
    d, width, n, outputs = EMPIRICAL_BIG
    print(f"\n## Full {outputs}-output empirical NTK ({n}, {n}, {outputs}, {outputs}), "
          f"{d}-{width}-{width}-{outputs} ReLU MLP, float32")
    print("| implementation | seconds | peak RSS (MB) |")
    print("|---|---|---|")
    big = _run(ours_py, ["torch_empirical", "big", "auto", tmp])
    print(f"| learnmech empirical_ntk (auto = structured), {big['parameters']} parameters | "
          f"{big['seconds']:.2f} | {big['peak_mb']:.0f} |")
    if nt_py:
        r = _run(nt_py, ["nt_empirical", "big", "STRUCTURED_DERIVATIVES", tmp], timeout=1800)
        text = (f"{r['seconds']:.2f} | {r['peak_mb']:.0f}" if "error" not in r
                else f"error: {r['error']} |")
        print(f"| neural-tangents STRUCTURED_DERIVATIVES | {text} |")


if __name__ == "__main__":
    main()
