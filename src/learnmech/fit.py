"""Scaling-law fits of real runs: inputs, the ``learnmech fit`` report, and plots.

The fitting itself lives in :mod:`learnmech.theory.scaling`. This module turns the places
where runs live into its input, a table with columns ``N`` (parameters), ``D`` (training
examples or tokens) and ``loss``:

* a CSV file (:func:`read_csv`): columns ``N``, ``D``, ``loss``; ``D`` may be derived
  from a compute column ``C = 6ND``;
* a run store (:func:`store_frame`): every finished run, with ``N`` its network's
  parameter count, ``D`` its ``data.n_train`` and ``loss`` a recorded observable
  (``test_loss`` by default, final or minimum over training);
* trajectories in memory (:func:`trajectory_frame`), which is how laws use it.

:func:`fit_report` runs a fit, its bootstrap and, for laws in ``N`` and ``D``, the
compute-optimal allocation, and returns a JSON-ready summary; :func:`plot_report` draws
the fit against the data with bands, iso-loss contours and the compute-optimal frontier.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from learnmech.errors import InputError
from learnmech.system import MLP, Data, DeepLinear, System
from learnmech.theory import scaling
from learnmech.train import Trajectory

Reduce = Literal["final", "min"]


# ---- inputs -----------------------------------------------------------------------------


def read_csv(path: str | Path, loss: str = "loss", flops_per_param_token: float = 6.0
             ) -> pd.DataFrame:
    """Runs from a CSV: columns ``N``, ``D`` (or ``C``, then ``D = C/(6N)``) and ``loss``.

    A CSV with an ``x`` column (and no ``N``) is read for one-variable laws.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("file", str(path), "an existing CSV file")
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError("file", str(path), f"a readable CSV file ({err})") from None
    if loss not in frame:
        raise InputError("loss", loss, f"a column of {p.name}: {list(frame.columns)}")
    for col in ("N", "C", "D", "x", loss):
        if col not in frame:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{col} (row {row + 2} of {p.name})", frame[col].iloc[row],
                             "a positive finite number")
        frame[col] = values.astype(float)
    if "D" not in frame and "C" in frame and "N" in frame:
        frame["D"] = frame["C"] / (flops_per_param_token * frame["N"])
    if "x" not in frame and not {"N", "D"} <= set(frame.columns):
        raise InputError("file", str(path),
                         "a CSV with columns N and D (or N and C), or x, and a loss column")
    return frame.rename(columns={loss: "loss"}) if loss != "loss" else frame


def check_identifiable(data: pd.DataFrame, law: str) -> None:
    """Refuse data from which ``law``'s parameters cannot be identified: a loss that does
    not vary (its exponents are then arbitrary) or a variable of the law taking a single
    value."""
    loss = np.log(np.asarray(data["loss"], dtype=float))
    if loss.size and np.ptp(loss) <= 1e-9:
        raise InputError("loss", f"all {loss.size} losses equal {float(np.exp(loss[0])):.6g}",
                         "losses that vary: a flat loss leaves the law's exponents "
                         "unidentifiable")
    for name in scaling.family(law).variables:
        if name in data and data[name].nunique() < 2:
            raise InputError(name, f"the single value {data[name].iloc[0]:.6g}",
                             f"at least two distinct values of {name} to fit {law}")


@functools.lru_cache(maxsize=64)
def _data_dims(data_json: str) -> tuple[int, int]:
    """``(d_in, d_out)`` of a data spec given as JSON (cached: loading can be slow)."""
    from learnmech.data import load

    data = load(TypeAdapter(Data).validate_json(data_json))
    return data.d_in, data.d_out


def parameter_count(system: System) -> int:
    """Trainable parameters of the system's network (weights and biases)."""
    d_in, d_out = _data_dims(system.data.model_dump_json())
    arch = system.architecture
    if isinstance(arch, MLP):
        widths = [d_in] + [arch.width] * (arch.depth - 1) + [d_out]
        bias = arch.bias
    elif isinstance(arch, DeepLinear):
        widths = [d_in, *arch.hidden, d_out]
        bias = False
    else:  # pragma: no cover - the Architecture union is closed
        raise InputError("architecture.kind", arch.kind, "mlp or deep_linear")
    return sum(a * b + (b if bias else 0) for a, b in itertools.pairwise(widths))


def _data_size(system: System) -> int:
    n = getattr(system.data, "n_train", None)
    if n is None:
        raise InputError("data", system.data.name, "a data set with an n_train field")
    return int(n)


def _loss(values: Sequence[Any], metric: str, reduce: Reduce) -> float:
    if reduce not in ("final", "min"):
        raise InputError("reduce", reduce, "'final' or 'min'")
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or not arr.size:
        raise InputError("metric", metric, "a scalar observable recorded at least once")
    return float(arr[-1] if reduce == "final" else np.nanmin(arr))


def stopped_value(select: Sequence[Any] | np.ndarray, report: Sequence[Any] | np.ndarray
                  ) -> float:
    """``report[i*]`` at ``i* = argmin select`` (the first least value): early stopping
    chosen on one curve (a validation loss) and read on another (a held-out loss), both
    recorded at the same steps, shape ``(steps,)``. NaN when ``select`` is all NaN."""
    s = np.asarray(select, dtype=float)
    r = np.asarray(report, dtype=float)
    if s.shape != r.shape or s.ndim != 1 or not s.size:
        raise InputError("select", list(s.shape), f"a curve of the report's shape {list(r.shape)}")
    if not np.isfinite(s).any():
        return float("nan")
    return float(r[int(np.nanargmin(s))])


def trajectory_frame(trajectories: Iterable[Trajectory], metric: str = "test_loss",
                     reduce: Reduce = "final", select: str | None = None) -> pd.DataFrame:
    """One row per completed trajectory: ``run_id, N, D, loss``.

    ``loss`` is ``metric`` reduced by ``reduce`` or, when ``select`` names another
    observable recorded at the same steps, ``metric`` at the step where ``select`` is
    least (:func:`stopped_value`; ``reduce`` is then ignored).
    """
    rows = []
    for traj in trajectories:
        if traj.status != "completed":
            continue
        loss = (_loss(traj[metric].values, metric, reduce) if select is None
                else stopped_value(traj[select].values, traj[metric].values))
        rows.append({
            "run_id": traj.run_id,
            "N": parameter_count(traj.system),
            "D": _data_size(traj.system),
            "loss": loss,
        })
    return pd.DataFrame(rows, columns=["run_id", "N", "D", "loss"])


def store_frame(store: Any, metric: str = "test_loss", reduce: Reduce = "final",
                where: str | None = None) -> pd.DataFrame:
    """Finished runs of a :class:`~learnmech.store.Store` as ``run_id, N, D, loss``.

    Args:
        store: the store.
        metric: the observable giving the loss.
        reduce: ``"final"`` (its last value) or ``"min"`` (best over training, i.e.
            early stopping).
        where: optional pandas query on :meth:`Store.runs` columns, e.g.
            ``"`data.name` == 'digits'"``.
    """
    runs = store.runs()
    if runs.empty:
        raise InputError("store", str(store.path), "a store holding finished runs")
    runs = runs[runs["status"] == "completed"]
    if where:
        try:
            runs = runs.query(where)
        except Exception as err:  # pandas raises many kinds for a bad expression
            raise InputError("where", where, f"a pandas query on the run table ({err})") from None
    trajs = [store.load_record(r) for r in runs["record"]]
    trajs = [t for t in trajs if metric in t.observables]
    frame = trajectory_frame(trajs, metric, reduce)
    if frame.empty:
        raise InputError("metric", metric, "an observable recorded by the selected runs")
    return frame


def load_runs(source: str | Path, metric: str = "test_loss", reduce: Reduce = "final",
              where: str | None = None) -> pd.DataFrame:
    """A CSV file (``*.csv``) or a run store (any other file) as a table of runs."""
    p = Path(source)
    if p.suffix.lower() == ".csv":
        return read_csv(p)
    if not p.is_file():
        raise InputError("source", str(source), "a CSV file or an existing run store file")
    from learnmech.store import Store

    with Store(p) as store:
        return store_frame(store, metric, reduce, where)


# ---- the report -------------------------------------------------------------------------


def fit_report(data: pd.DataFrame, law: str = "chinchilla", *, n_boot: int = 200,
               level: float = 0.95, seed: int = 0, delta: float = 1e-3,
               compute: Sequence[float] | None = None) -> tuple[dict[str, Any],
                                                                scaling.Bootstrap]:
    """Fit ``law``, bootstrap it and (for laws in N and D) allocate compute.

    Returns the JSON-ready summary and the :class:`~learnmech.theory.scaling.Bootstrap`.
    ``compute`` lists the budgets C (FLOP, ``C = 6ND``) at which to report ``N_opt``,
    ``D_opt`` and tokens per parameter; default: three budgets spanning the data's.
    """
    check_identifiable(data, law)
    boot = scaling.bootstrap(data, law, n_boot=n_boot, seed=seed, delta=delta)
    f = boot.fit
    out: dict[str, Any] = {"fit": f.to_json(), "bootstrap": boot.to_json(level)}
    if f.family.variables == ("N", "D"):
        c_data = 6.0 * np.asarray(data["N"], float) * np.asarray(data["D"], float)
        cs = np.asarray(compute if compute is not None else
                        np.geomspace(c_data.min(), c_data.max() * 100, 3), dtype=float)
        n_opt, d_opt = scaling.compute_optimal(f, cs)
        out["compute_optimal"] = [
            {"C": float(c), "N_opt": float(n), "D_opt": float(d), "D_per_N": float(d / n),
             "loss": float(f.predict(N=[n], D=[d])[0])}
            for c, n, d in zip(cs, n_opt, d_opt, strict=True)
        ]
    return out, boot


def format_report(report: dict[str, Any]) -> str:
    """The summary as plain text (what ``learnmech fit`` prints without ``--json``)."""
    f, b = report["fit"], report["bootstrap"]
    lines = [f"{f['law']}: {f['formula']}",
             f"{f['n_points']} runs, Huber δ = {f['delta']:g}, objective {f['objective']:.6g}, "
             f"{'converged' if f['converged'] else 'NOT converged'} "
             f"(relative gradient {f['gradient']:.1e}, {f['n_starts']} starts)",
             f"{'parameter':>10}  {'estimate':>12}  {'s.e.':>10}  "
             f"{round(100 * b['level'])}% interval ({b['n_boot']} bootstraps)"]
    values = f["params"] | f["derived"]
    for name, value in values.items():
        lo, hi = b["intervals"][name]
        lines.append(f"{name:>10}  {value:12.5g}  {b['se'][name]:10.3g}  [{lo:.5g}, {hi:.5g}]")
    for row in report.get("compute_optimal", []):
        lines.append(f"C = {row['C']:.3g}: N_opt = {row['N_opt']:.3g}, D_opt = {row['D_opt']:.3g}"
                     f" ({row['D_per_N']:.3g} per parameter), loss {row['loss']:.4g}")
    return "\n".join(lines)


# ---- plots ------------------------------------------------------------------------------


def plot_report(data: pd.DataFrame, boot: scaling.Bootstrap, path: str | Path,
                level: float = 0.95, heldout: pd.DataFrame | None = None) -> Path:
    """Draw the fit and return the PNG path written.

    Left: the data against the law on log-log axes with the pointwise bootstrap band;
    for laws in N and D one curve per data size when there are at most eight of them
    (a sweep), otherwise observed against predicted loss with band error bars. Right, for
    laws in N and D: iso-loss contours over (N, D) and the compute-optimal frontier.
    ``heldout`` runs (not used by the fit) are drawn as open markers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = boot.fit
    two = f.family.variables == ("N", "D")
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(11 if two else 5.5, 4.2),
                             squeeze=False)
    ax = axes[0, 0]
    frames = [(data, True)] + ([(heldout, False)] if heldout is not None else [])
    everything = pd.concat([fr for fr, _ in frames])
    xname = f.family.variables[0]
    groups = sorted(everything["D"].unique()) if two else [None]
    if len(groups) <= 8:
        xs = np.geomspace(everything[xname].min() / 1.5, everything[xname].max() * 1.5, 120)
        cmap = plt.get_cmap("viridis")
        for i, dval in enumerate(groups):
            colour = cmap(i / max(len(groups) - 1, 1))
            cols = {xname: xs} | ({"D": np.full_like(xs, dval)} if two else {})
            lo, hi = boot.band(level, cols)
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, lw=0)
            ax.plot(xs, f.predict(cols), color=colour, lw=1.2,
                    label=f"D = {dval:.3g}" if two else "fit")
            for frame, fitted in frames:
                pts = frame[frame["D"] == dval] if two else frame
                ax.scatter(pts[xname], pts["loss"], s=16, facecolors=colour if fitted else "none",
                           edgecolors=colour, zorder=3)
        ax.set(xlabel=xname, ylabel="loss", title=f"{f.law} fit, {round(100 * level)}% band")
    else:
        for frame, fitted in frames:
            pred = f.predict(frame)
            lo, hi = boot.band(level, frame)
            ax.errorbar(pred, frame["loss"], xerr=[pred - lo, hi - pred], fmt="o", ms=3,
                        mfc="C0" if fitted else "none", mec="C0", ecolor="0.6", lw=0.8,
                        label="fitted runs" if fitted else "held-out runs")
        span = [everything["loss"].min(), everything["loss"].max()]
        ax.plot(span, span, "k--", lw=1, label="observed = predicted")
        ax.set(xlabel=f"predicted loss ({round(100 * level)}% band)", ylabel="observed loss",
               title=f"{f.law} fit against the runs")
    if len(groups) <= 8:
        ax.set(xscale="log", yscale="log")
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.legend(fontsize=7)
    if two:
        ax = axes[0, 1]
        n_grid = np.geomspace(everything["N"].min() / 3, everything["N"].max() * 3, 100)
        d_grid = np.geomspace(everything["D"].min() / 3, everything["D"].max() * 3, 100)
        nn, dd = np.meshgrid(n_grid, d_grid)
        loss = f.predict(N=nn.ravel(), D=dd.ravel()).reshape(nn.shape)
        levels = np.quantile(loss, np.linspace(0.05, 0.95, 9))
        cs = ax.contour(nn, dd, loss, levels=levels, cmap="viridis", linewidths=0.8)
        ax.clabel(cs, fontsize=6, fmt="%.3g")
        c_lo = 6 * n_grid.min() * d_grid.min()
        c_hi = 6 * n_grid.max() * d_grid.max()
        budgets = np.geomspace(c_lo * 10, c_hi / 10, 40)
        n_opt, d_opt = scaling.compute_optimal(f, budgets)
        ax.plot(n_opt, d_opt, "k-", lw=1.5, label="compute-optimal N_opt(C), D_opt(C)")
        ax.scatter(data["N"], data["D"], c="k", s=8, label="runs (fitted)")
        if heldout is not None:
            ax.scatter(heldout["N"], heldout["D"], facecolors="none", edgecolors="k", s=14,
                       label="runs (held out)")
        ax.set(xscale="log", yscale="log", xlabel="N (parameters)", ylabel="D (data)",
               xlim=(n_grid.min(), n_grid.max()), ylim=(d_grid.min(), d_grid.max()),
               title="iso-loss contours and compute-optimal frontier")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
