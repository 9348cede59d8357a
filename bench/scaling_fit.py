"""Scaling-law fitting: learnmech's fitter vs Epoch AI's procedure for the Chinchilla refit.

The peer is the procedure of Besiroglu et al. (2024), notebook ``data_analysis.ipynb`` of
``epoch-research/analyzing-chinchilla``, re-run here with SciPy on the same objective (the
summed Huber loss, δ = 10⁻³, of log-loss residuals over the log-sum-exp parametrization,
with its analytic gradient):

* point fit: L-BFGS-B from every point of their 4500-point grid, keep the best;
* bootstrap: refit every resample with BFGS from Hoffmann et al.'s published values.

learnmech: ``theory.scaling.fit`` (L-BFGS from the best grid points, at most 16, until a
Bayesian stopping rule expects no unseen minimum; each restarted until the objective
stops improving) and ``theory.scaling.bootstrap`` (one batched damped-Newton
solve for all resamples from the point estimate). Both sides are timed in one run,
interleaved (``bench/timing.py``, ``--repeats`` pairs); the script prints median times,
the ratio Epoch / learnmech as median [min–max] over the pairs, and how far the answers
differ. ``--grid-stride k`` times Epoch's point fit on every k-th start of its grid and
multiplies that time by k (its starts are independent, so its cost is linear in their
number; the best of the subset is compared), for machines where ``--repeats`` full grids
take too long.

    python bench/scaling_fit.py [--csv chinchilla_svg_extracted_data.csv] [--boot 400]
                                [--repeats 5] [--grid-stride 1]

Without ``--csv`` it uses 240 synthetic runs drawn around Epoch's refit with 1% noise.
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from learnmech.fit import read_csv
from learnmech.theory import scaling
from timing import MIN_REPEATS, interleaved, seconds_of, spread

HOFFMANN = np.array([0.5267228, 6.0073404, 6.0179186, 0.33917084, 0.2849083])  # e a b α β
GRID = list(itertools.product([-1, -0.5, 0, 0.5, 1], range(0, 30, 5), range(0, 30, 5),
                              [0, 0.5, 1, 1.5, 2], [0, 0.5, 1, 1.5, 2]))


def synthetic(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(6e7), np.log(1.6e10), 240))
    d = np.exp(rng.uniform(np.log(2.5e8), np.log(3e11), 240))
    loss = 1.817 + 477.8 / n**0.3473 + 2143 / d**0.3672
    return pd.DataFrame({"N": n, "D": d, "loss": loss * np.exp(0.01 * rng.standard_normal(240))})


def huber_objective(frame: pd.DataFrame, weights: np.ndarray | None = None):
    fam = scaling.family("chinchilla")
    lv = {"N": np.log(frame["N"].to_numpy()), "D": np.log(frame["D"].to_numpy())}
    y = np.log(frame["loss"].to_numpy())
    w = np.ones_like(y) if weights is None else weights

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        pred, jac = fam.value_jac(theta, lv)
        r = y - pred
        return float(w @ scaling.huber(r, 1e-3)), -(w * np.clip(r, -1e-3, 1e-3)) @ jac

    return fun


def epoch_point_fit(frame: pd.DataFrame, stride: int = 1) -> tuple[np.ndarray, float]:
    fun = huber_objective(frame)
    best = None
    for start in GRID[::stride]:
        res = minimize(fun, np.array(start, dtype=float), jac=True, method="L-BFGS-B")
        if res.success and (best is None or res.fun < best.fun):
            best = res
    assert best is not None
    return best.x, float(best.fun)


def epoch_bootstrap(frame: pd.DataFrame, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        res = minimize(huber_objective(frame, counts), HOFFMANN, jac=True, method="BFGS")
        out.append(res.x)
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", help="Epoch's svg_extracted_data.csv (245 runs)")
    parser.add_argument("--boot", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    parser.add_argument("--grid-stride", type=int, default=1)
    args = parser.parse_args()
    if args.csv:
        frame = read_csv(args.csv)
        frame = frame.nsmallest(len(frame) - 5, "loss")  # Epoch drop the 5 highest losses
        source = f"{args.csv} ({len(frame)} runs)"
    else:
        frame, source = synthetic(), "240 synthetic runs around Epoch's refit"
    print(f"data: {source}")

    out: dict = {}

    def peer_fit() -> float:
        seconds = seconds_of(lambda: out.update(peer=epoch_point_fit(frame, args.grid_stride)))
        return seconds() * args.grid_stride

    def our_fit() -> None:
        out["ours"] = scaling.fit(frame, "chinchilla")

    pairs = interleaved(seconds_of(our_fit), peer_fit, args.repeats, warmup=False)
    (peer_theta, peer_obj), ours = out["peer"], out["ours"]
    starts = len(GRID[::args.grid_stride])
    scaled = f", × {args.grid_stride}" if args.grid_stride > 1 else ""
    print(f"point fit, {args.repeats} interleaved pairs: Epoch grid ({starts} L-BFGS-B starts"
          f"{scaled}) {statistics.median(pairs.peer):.2f} s, objective {peer_obj:.8g}; "
          f"learnmech ({ours.n_starts} starts) {statistics.median(pairs.ours):.3f} s, "
          f"objective {ours.objective:.8g}; ratio {spread(pairs.ratios, 1)}x; "
          f"max |Δθ| {np.max(np.abs(peer_theta - ours.theta)):.1e}")

    def peer_boot() -> None:
        out["peer_boot"] = epoch_bootstrap(frame, args.boot, seed=1)

    def our_boot() -> None:
        out["boot"] = scaling.bootstrap(frame, ours, n_boot=args.boot, seed=1)

    pairs = interleaved(seconds_of(our_boot), seconds_of(peer_boot), args.repeats, warmup=False)
    peer_boot_thetas, boot = out["peer_boot"], out["boot"]
    names = ["E", "A", "B", "alpha", "beta"]
    peer_se = [np.std([scaling.family("chinchilla").natural(th)[k] for th in peer_boot_thetas],
                      ddof=1) for k in names]
    print(f"bootstrap ({args.boot} resamples): Epoch BFGS per resample "
          f"{statistics.median(pairs.peer):.2f} s; learnmech batched Newton "
          f"{statistics.median(pairs.ours):.2f} s; ratio {spread(pairs.ratios, 1)}x")
    for name, se in zip(names, peer_se, strict=True):
        print(f"  s.e. {name:>5}: Epoch-style {se:.4g}   learnmech {boot.se(name):.4g}")


if __name__ == "__main__":
    with threadpool_limits(1, "blas"):  # both sides single-threaded: tiny problems
        main()
