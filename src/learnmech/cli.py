"""The ``learnmech`` command line: list and check laws, train systems, browse the store.

Bad input (an unknown law id, a spec field with a wrong value, a missing file) prints one
message naming the field, the value and what is allowed, exits with code 2 and writes
nothing to the store.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

# numpy before torch: torch's C start-up imports numpy and discards any exception it
# raises, so a Ctrl-C landing there would be lost and the command would run on
import numpy  # noqa: F401
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from learnmech.errors import DataUnavailableError, InputError, StoreError
from learnmech.laws import BUDGETS, STRANDS, LawContext, catalogue, get_law
from learnmech.probes import PROBES, make_probes
from learnmech.store import Store
from learnmech.system import System
from learnmech.train import Schedule

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="learnmech: theory that predicts, instruments that measure, laws that compare.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _table(*columns: str, **options: Any) -> Table:
    """A table whose cells wrap and fold a word too long for its column onto the next
    line: an id or a value is never cut with an ellipsis, however narrow the terminal."""
    table = Table(**options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store", help="SQLite run store (default $LEARNMECH_STORE or ./learnmech.sqlite)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _existing(path: Path | None) -> Store:
    """The store at ``path`` for reading; a missing file is an input error, not a new store."""
    found = Store(path)
    if not found.path.exists():
        raise InputError("store", str(found.path), "an existing store file (runs are stored by "
                         "`learnmech run` and `learnmech check`)")
    return found


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_clean(obj), allow_nan=False) + "\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """Progress bars on stderr (so that ``--json`` output stays clean), with the time
    spent and an estimate of the time left."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        yield bar


def _context(bar: Progress | None, store: Store, fresh: bool) -> LawContext:
    tasks: dict[str, Any] = {}

    def on_progress(name: str, done: int, total: int) -> None:
        if bar is None:
            return
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done)

    return LawContext(store=store, fresh=fresh, on_progress=on_progress)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"learnmech {version('learnmech')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
        ] = False) -> None:
    """learnmech: theory that predicts, instruments that measure, laws that compare."""


@app.command("list")
def list_laws(as_json: JsonOpt = False) -> None:
    """The law catalogue: id, strand, claim, regime of validity, negative control."""
    laws = catalogue()
    if as_json:
        _print_json({"laws": [
            {"id": law.id, "strand": law.strand, "claim": law.claim, "reference": law.reference,
             "regime": law.regime, "negative_control": law.control}
            for law in laws
        ]})
        return
    table = _table("law", "strand", "claim", "regime", "control", show_lines=True)
    for law in laws:
        table.add_row(law.id, STRANDS[law.strand], f"{law.claim} ({law.reference})",
                      law.regime, _control(law))
    out.print(table)


def _control(law: Any) -> str:
    theory = getattr(law, "control_theory", "")
    return f"{law.control} — rival: {theory}" if theory and theory != law.control else law.control


@app.command()
def describe(law_id: Annotated[str, typer.Argument(help="A law id (see `learnmech list`).")],
             as_json: JsonOpt = False) -> None:
    """One law in full: claim, reference, regime, the control and its rival theory, budgets."""
    law = get_law(law_id)
    info = {"id": law.id, "strand": law.strand, "claim": law.claim, "reference": law.reference,
            "regime": law.regime, "negative_control": law.control,
            "control_theory": getattr(law, "control_theory", ""),
            "qualitative": getattr(law, "qualitative", ""), "budgets": dict(law.budgets)}
    if as_json:
        _print_json(info)
        return
    out.print(f"[bold]{escape(law.id)}[/] ({STRANDS[law.strand]}) — {escape(law.reference)}")
    for key in ("claim", "regime", "negative_control", "control_theory", "qualitative"):
        if info[key]:
            out.print(f"[bold]{key.replace('_', ' ')}:[/] {escape(str(info[key]))}")
    for budget, text in law.budgets.items():
        out.print(f"[bold]{budget}:[/] {escape(text)}")


@app.command()
def schema() -> None:
    """The JSON Schema of a system spec (what `learnmech run SPEC` accepts)."""
    _print_json(System.model_json_schema())


@app.command()
def check(
    law_ids: Annotated[list[str] | None, typer.Argument(help="Law ids (default: all).")] = None,
    budget: Annotated[str, typer.Option(help="quick | standard | full")] = "quick",
    as_json: JsonOpt = False,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    store: StoreOpt = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 unless every law holds and every "
                                         "negative control fails.")] = False,
    fresh: Annotated[bool, typer.Option(help="Retrain even when the store has the run.")] = False,
) -> None:
    """Run laws, print the scorecard, store the verdicts and optionally write the report.

    Exits 0 when every law ran, 1 when one could not run (it is reported and the others
    go on) or, with ``--strict``, when a law does not hold or a negative control does not
    fail."""
    if budget not in BUDGETS:
        raise InputError("budget", budget, f"one of {list(BUDGETS)}")
    laws = [get_law(i) for i in law_ids] if law_ids else catalogue()
    run_store = Store(store)
    records: list[dict[str, Any]] = []
    not_run: list[dict[str, str]] = []
    with _progress(sys.stderr.isatty()) as bar:
        ctx = _context(bar, run_store, fresh)
        for law in laws:
            if not as_json:
                err.print(f"[bold]{law.id}[/] ({budget}) …")
            try:
                record = law.check(budget, ctx).to_json()
            except Exception as exc:  # one broken law must not hide the others' verdicts
                reason = f"{type(exc).__name__}: {exc}"
                not_run.append({"id": law.id, "strand": law.strand, "reason": reason})
                err.print(f"[red]{law.id} did not run: {escape(reason)}[/]", soft_wrap=True)
                continue
            run_store.save_verdict(record)
            records.append(record)
    totals = _totals(records, not_run)
    if as_json:
        _print_json({"laws": [_check_json(r) for r in records], "not_run": not_run,
                     "totals": totals})
    else:
        _scorecard(records, not_run, totals)
    if report is not None:
        from learnmech.report import write_report

        path = write_report(records, report)
        err.print(f"report written to {escape(str(path))}")
    if not_run:
        raise typer.Exit(1)
    if strict and any(
        r["verdict"] != "holds" or r["negative_control"]["verdict"] != "fails" for r in records
    ):
        raise typer.Exit(1)


_CHECK_KEYS = ("id", "strand", "verdict", "criteria", "resolving_power", "qualitative",
               "regime", "budget", "seconds", "run_ids")


def _check_json(record: dict[str, Any]) -> dict[str, Any]:
    """One law's entry in ``check --json``: the verdict, criteria, control, resolving power."""
    control = record["negative_control"]
    return {k: record[k] for k in _CHECK_KEYS} | {
        "negative_control": {k: control[k] for k in ("theory", "verdict", "criteria")}
    }


def _totals(records: list[dict[str, Any]], not_run: list[dict[str, str]]) -> dict[str, Any]:
    """Counts of verdicts and failed controls, laws not run, and the median resolving power
    over the laws that report one."""
    powers = sorted(r["resolving_power"] for r in records if r["resolving_power"] is not None)
    median = None
    if powers:
        mid = len(powers) // 2
        median = powers[mid] if len(powers) % 2 else (powers[mid - 1] + powers[mid]) / 2
    return {
        "requested": len(records) + len(not_run),
        **{k: sum(r["verdict"] == k for r in records) for k in ("holds", "fails", "inconclusive")},
        "controls_failed": sum(r["negative_control"]["verdict"] == "fails" for r in records),
        "not_run": len(not_run),
        "resolving_power_reported": len(powers),
        "median_resolving_power": median,
    }


def _resolution(record: dict[str, Any]) -> str:
    if record["qualitative"]:
        return "qualitative"
    power = record["resolving_power"]
    return "–" if power is None else f"{power:.0%}"


def _scorecard(records: list[dict[str, Any]], not_run: list[dict[str, str]],
               totals: dict[str, Any]) -> None:
    table = _table("law", "verdict", "metric", "value", "tolerance", "negative control",
                   "resolves", "s")
    style = {"holds": "green", "fails": "red", "inconclusive": "yellow"}
    for r in records:
        c = r["negative_control"]
        table.add_row(
            r["id"],
            f"[{style[r['verdict']]}]{r['verdict']}[/]",
            r["metric"],
            f"{r['value']:.3g}",
            f"{r['sense']} {r['tolerance']:.3g}",
            f"[{style[c['verdict']]}]{c['verdict']}[/] ({c['value']:.3g})",
            _resolution(r),
            f"{r['seconds']:.1f}",
        )
    for n in not_run:
        table.add_row(n["id"], "[red]did not run[/]", n["reason"], "", "", "", "", "")
    out.print(table)
    median = totals["median_resolving_power"]
    out.print(
        f"{totals['requested']} requested: {totals['holds']} hold, {totals['fails']} fail, "
        f"{totals['inconclusive']} inconclusive, {totals['not_run']} did not run; "
        f"{totals['controls_failed']} controls fail; resolving power reported by "
        f"{totals['resolving_power_reported']}"
        + ("" if median is None else f" (median {median:.0%})"),
        soft_wrap=True,
    )


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="System spec (.yaml, .yml or .json).")],
    probe: Annotated[list[str] | None, typer.Option(
        "--probe", help=f"Probe name, repeatable: {', '.join(sorted(PROBES))}.")] = None,
    schedule: Annotated[str, typer.Option(help="Probe schedule: log | linear.")] = "log",
    points: Annotated[int, typer.Option(help="Number of probe points.")] = 50,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    fresh: Annotated[bool, typer.Option(help="Retrain even when the store has the run.")] = False,
) -> None:
    """Train one system with probes; the run is stored under its run id."""
    system = System.load(spec)
    names = probe or ["loss"]
    make_probes(names)  # validate names before anything touches the store
    plan = Schedule(schedule, points)  # type: ignore[arg-type]  # checks both
    run_store = Store(store)
    with _progress(sys.stderr.isatty() and not as_json) as bar:
        task = bar.add_task(system.run_id, total=system.learning_rule.steps) if bar else None

        def progress(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done)

        traj = run_store.run(system, names, plan, fresh=fresh, progress=progress)
    if as_json:
        _print_json({
            "run_id": traj.run_id,
            "status": traj.status,
            "observables": {n: {"step": s.steps, "value": s.values}
                            for n, s in traj.observables.items()},
        })
        return
    _show(traj.run_id, run_store)


@app.command()
def runs(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The stored runs."""
    frame = _existing(store).runs()
    cols = [c for c in ("run_id", "status", "architecture.kind", "data.name",
                        "learning_rule.optimizer", "learning_rule.lr", "learning_rule.steps",
                        "seconds") if c in frame]
    if as_json:
        _print_json({"runs": frame[cols].to_dict(orient="records")})
        return
    table = _table(*cols)
    for row in frame[cols].itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else escape(str(v)) for v in row))
    out.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(
        help="A run id from `learnmech runs`, or a prefix of exactly one.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One stored run: its spec, status and observables."""
    run_store = _existing(store)
    run_id = run_store.resolve(run_id)
    if as_json:
        traj = run_store.load(run_id)
        _print_json({
            "run_id": run_id, "status": traj.status, "diverged_at": traj.diverged_at,
            "reason": traj.reason, "spec": json.loads(traj.system.canonical_json()),
            "observables": {n: {"step": s.steps, "value": s.values}
                            for n, s in traj.observables.items()},
        })
        return
    _show(run_id, run_store)


def _show(run_id: str, run_store: Store) -> None:
    traj = run_store.load(run_id)
    status = traj.status + (f" at step {traj.diverged_at} ({traj.reason})" if traj.diverged_at
                            is not None else "")
    out.print(f"[bold]run {escape(run_id)}[/]: {escape(status)}, {traj.steps_done} steps, "
              f"{traj.seconds:.2f} s")
    out.print(escape(traj.system.to_yaml().rstrip()))
    table = _table("observable", "points", "first", "last")
    for name, s in sorted(traj.observables.items()):
        first, last = s.values[0], s.values[-1]
        table.add_row(escape(name), str(len(s.steps)), _brief(first), _brief(last))
    out.print(table)


def _brief(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(f"{v:.3g}" for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return f"{value:.4g}"


@app.command()
def coordcheck(
    model: Annotated[str, typer.Argument(
        help="mlp | resmlp | transformer, or a factory 'package.module:name' / "
             "'file.py:name' mapping a width to a model (or to (model, plan)).")] = "mlp",
    parametrization: Annotated[str, typer.Option(
        help="sp | ntp | mup | mf (built-in models).")] = "mup",
    optimizer: Annotated[str, typer.Option(
        help="adam | sgd, or 'module:name' of a function model -> optimizer.")] = "adam",
    lr: Annotated[float | None, typer.Option(help="Learning rate of a named optimizer.")] = None,
    widths: Annotated[str, typer.Option(help="Comma-separated widths.")] = "64,128,256,512",
    base_width: Annotated[int | None, typer.Option(
        help="Width at which μP equals SP (built-ins; default the narrowest).")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps before measuring.")] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds to average.")] = 1,
    data: Annotated[str | None, typer.Option(
        help="'module:name' of a function returning the batch (x, y) (needed for a factory).")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Largest accepted |exponent|.")] = 0.25,
    plot: Annotated[Path | None, typer.Option(help="Write the exponent plot (PNG) here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify μP: train a few steps at several widths and fit, per layer, the width exponent
    of activations, their change and ‖ΔW‖/‖W‖; all must be ≈ 0. Exits 1 when a layer blows
    up or vanishes (the table names it), 2 on bad input."""
    from learnmech import coordcheck as cc

    try:
        sizes = sorted({int(w) for w in widths.split(",") if w.strip()})
    except ValueError:
        raise InputError("widths", widths, "comma-separated positive integers") from None
    if len(sizes) < 2 or sizes[0] <= 0:
        raise InputError("widths", widths, "at least two positive widths")
    if parametrization not in ("sp", "ntp", "mup", "mf"):
        raise InputError("parametrization", parametrization, "one of sp, ntp, mup, mf")
    named = optimizer in ("adam", "sgd")
    opt: Any = optimizer if named else cc.load_object(optimizer, "optimizer")
    if model in cc.BUILTIN_MODELS:
        factory, batch, default_steps, default_lr = cc.builtin_factory(
            model, parametrization, optimizer if named else "adam", base_width or sizes[0])
    elif ":" not in model:
        raise InputError("model", model, f"one of {list(cc.BUILTIN_MODELS)} or a factory "
                         "'package.module:name' / 'file.py:name'")
    else:
        factory = cc.load_object(model, "model")
        if data is None:
            raise InputError("data", None, "'module:name' of a function returning (x, y) "
                             "(needed with a model factory)")
        batch, default_steps = cc.load_object(data, "data")(), 3
        default_lr = 0.5 if optimizer == "sgd" else 0.01
    check = cc.verify_mup(factory, batch, sizes, opt, lr=lr or default_lr,
                          steps=steps or default_steps, seeds=range(seeds), tolerance=tolerance)
    if plot is not None:
        cc.save_plot(check, str(plot), title=model)
    if as_json:
        _print_json(check.to_json())
    else:
        table = _table("layer", "quantity", "exponent", "verdict")
        for v in check.verdicts:
            color = "green" if v.passed else "red"
            table.add_row(escape(v.layer), v.metric, f"{v.exponent:+.3f}",
                          f"[{color}]{escape(v.problem)}[/]")
        out.print(table)
        out.print(escape(check.summary()), soft_wrap=True)
    if not check.passed:
        raise typer.Exit(1)


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="Where to write the HTML report.")] = Path(
        "report.html"),
    store: StoreOpt = None,
) -> None:
    """Write the HTML report from the verdicts kept in the store."""
    from learnmech.report import write_report

    run_store = _existing(store)
    verdicts = run_store.verdicts()
    if not verdicts:
        raise InputError("store", str(run_store.path), "a store holding law verdicts "
                         "(run `learnmech check` first)")
    out.print(f"report written to {escape(str(write_report(verdicts, path)))}")


@app.command()
def sweep(
    path: Annotated[Path, typer.Argument(
        help="Sweep file (.yaml): base, grid, zip, seeds, probes, schedule.")],
    backend: Annotated[str, typer.Option(help="local (a process pool) | ray")] = "local",
    workers: Annotated[int | None, typer.Option(
        help="Processes (local) or CPUs of a local Ray instance; default: all CPUs.")] = None,
    address: Annotated[str | None, typer.Option(
        help="Address of a running Ray cluster (--backend ray).")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs each Ray task asks for.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs each Ray task asks for.")] = 0.0,
    ensemble: Annotated[bool, typer.Option(
        help="Train trials that differ only in seed, lr or init scale as one vectorized "
             "ensemble.")] = True,
    show: Annotated[bool, typer.Option(
        "--show", help="Show what the store holds for the sweep; train nothing.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the sweep's HTML page here.")] = None,
    metric: Annotated[str, typer.Option(
        help="Column shown and plotted (final value of a scalar observable).")] = (
        "final_train_loss"),
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a sweep (resuming: stored trials are not trained again), then show its results."""
    from learnmech import sweep as sweeps

    spec = sweeps.Sweep.load(path)
    run_store = _existing(store) if show else Store(store)
    if not show:
        if backend not in ("local", "ray"):
            raise InputError("backend", backend, "'local' or 'ray'")
        bar = sweeps.ProgressBar(path.name, err) if sys.stderr.isatty() else None
        try:
            with bar or contextlib.nullcontext():
                result = sweeps.run_sweep(
                    spec, run_store, backend=backend, workers=workers,  # type: ignore[arg-type]
                    address=address, cpus_per_trial=cpus_per_trial,
                    gpus_per_trial=gpus_per_trial, ensemble=ensemble, progress=bar)
        except KeyboardInterrupt:
            err.print("interrupted: finished trials are stored; run the same command again "
                      "to resume")
            raise typer.Exit(130) from None
        err.print(result.counts.line() + f" ({result.counts.reused} reused, "
                  f"{result.seconds:.1f} s)")
        for run_id, error in result.errors.items():
            err.print(f"[red]failed[/] {run_id}: {escape(error)}", soft_wrap=True)
    rows = sweeps.summary(spec, run_store)
    metrics = sorted(str(c) for c in rows if str(c).startswith("final_"))
    if metric not in metrics and metrics:
        raise InputError("metric", metric, f"one of {metrics}")
    table = sweeps.aggregate(spec, rows, metric)
    if as_json:
        _print_json({"metric": metric, "rows": table.to_dict(orient="records")})
    else:  # short column names; status columns only where some trial has that status
        counts = ("completed", "diverged", "failed", "pending", "running")
        table = table.drop(columns=[c for c in counts if not table[c].any()])
        table.columns = [str(c).split(".")[-1] for c in table.columns]
        shown = _table(*map(str, table.columns), title=f"{metric}, mean over seeds")
        for row in sweeps.iter_rows(table):
            shown.add_row(*(escape(v) for v in row))
        out.print(shown)
    if report is not None:
        from learnmech.report.sweep import write_sweep_report

        page = write_sweep_report(spec, run_store, report, metric)
        err.print(f"sweep page written to {escape(str(page))}")


@app.command()
def fit(
    source: Annotated[Path, typer.Argument(
        help="A CSV of runs (columns N, D or C, loss) or a run store (.sqlite).")],
    law: Annotated[str, typer.Option(
        help="chinchilla | kaplan | quanta | power_law | broken_power_law")] = "chinchilla",
    metric: Annotated[str, typer.Option(help="Store runs: the observable used as loss.")
                      ] = "test_loss",
    reduce: Annotated[str, typer.Option(help="Store runs: final | min (early stopping).")
                      ] = "final",
    where: Annotated[str | None, typer.Option(
        help="Store runs: a pandas query on the run table, e.g. '`data.name` == \"digits\"'.")
                     ] = None,
    drop_highest: Annotated[int, typer.Option(
        help="Leave out this many runs with the highest loss (outliers).")] = 0,
    boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples.")] = 200,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    delta: Annotated[float, typer.Option(help="Huber threshold on log-loss residuals.")
                     ] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    compute: Annotated[list[float] | None, typer.Option(
        "--compute", help="FLOP budget C = 6ND for the compute-optimal allocation "
        "(repeatable).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the fit's figure (PNG) here.")
                    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a scaling law to runs, with bootstrap intervals and compute-optimal allocation."""
    from learnmech import fit as scaling_fit

    if reduce not in ("final", "min"):
        raise InputError("reduce", reduce, "'final' or 'min'")
    if not 0 < level < 1:
        raise InputError("level", level, "a confidence level strictly between 0 and 1")
    data = scaling_fit.load_runs(source, metric, reduce, where)  # type: ignore[arg-type]
    if drop_highest:
        if not 0 < drop_highest < len(data):
            raise InputError("drop_highest", drop_highest, f"between 0 and {len(data) - 1}")
        data = data.nsmallest(len(data) - drop_highest, "loss")
    summary, bootstrap = scaling_fit.fit_report(data, law, n_boot=boot, level=level, seed=seed,
                                                delta=delta, compute=compute)
    if as_json:
        _print_json(summary)
    else:
        out.print(escape(scaling_fit.format_report(summary)), soft_wrap=True)
    if plot is not None:
        scaling_fit.plot_report(data, bootstrap, plot, level)
        err.print(f"figure written to {escape(str(plot))}")


def main() -> None:
    """Entry point: bad input exits with code 2 and one message."""
    try:
        app()
    except (InputError, StoreError, DataUnavailableError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
