"""The ``learnmech`` command line: list and check laws, train systems, browse the store.

Bad input (an unknown law id, a spec field with a wrong value, a missing file) prints one
message naming the field, the value and what is allowed, exits with code 2 and writes
nothing to the store.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
    """Progress bars on stderr (so that ``--json`` output stays clean)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
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


@app.command("list")
def list_laws(as_json: JsonOpt = False) -> None:
    """The law catalogue: id, strand, claim, reference."""
    laws = catalogue()
    if as_json:
        _print_json({"laws": [
            {"id": law.id, "strand": law.strand, "claim": law.claim, "reference": law.reference,
             "regime": law.regime, "negative_control": law.control}
            for law in laws
        ]})
        return
    table = Table("law", "strand", "claim", "reference", show_lines=True)
    for law in laws:
        table.add_row(law.id, STRANDS[law.strand], law.claim, law.reference)
    out.print(table)


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
    records, crashed = [], False
    with _progress(sys.stderr.isatty()) as bar:
        ctx = _context(bar, run_store, fresh)
        for law in laws:
            if not as_json:
                err.print(f"[bold]{law.id}[/] ({budget}) …")
            try:
                record = law.check(budget, ctx).to_json()
            except Exception as exc:  # one broken law must not hide the others' verdicts
                crashed = True
                err.print(f"[red]{law.id} did not run: {type(exc).__name__}: {exc}[/]",
                          soft_wrap=True)
                continue
            run_store.save_verdict(record)
            records.append(record)
    if as_json:
        keys = ("id", "strand", "verdict", "metric", "value", "tolerance", "seconds")
        _print_json({"laws": [
            {k: r[k] for k in keys}
            | {"negative_control": {k: r["negative_control"][k] for k in ("verdict", "value")}}
            for r in records
        ]})
    else:
        _scorecard(records)
    if report is not None:
        from learnmech.report import write_report

        path = write_report(records, report)
        err.print(f"report written to {path}")
    if crashed:
        raise typer.Exit(1)
    if strict and any(
        r["verdict"] != "holds" or r["negative_control"]["verdict"] != "fails" for r in records
    ):
        raise typer.Exit(1)


def _scorecard(records: list[dict[str, Any]]) -> None:
    table = Table("law", "verdict", "metric", "value", "tolerance", "negative control", "s")
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
            f"{r['seconds']:.1f}",
        )
    out.print(table)


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
    if schedule not in ("log", "linear"):
        raise InputError("schedule", schedule, "'log' or 'linear'")
    if points < 1:
        raise InputError("points", points, "a positive integer")
    run_store = Store(store)
    with _progress(sys.stderr.isatty() and not as_json) as bar:
        task = bar.add_task(system.run_id, total=system.learning_rule.steps) if bar else None

        def progress(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done)

        traj = run_store.run(system, names, Schedule(schedule, points),  # type: ignore[arg-type]
                             fresh=fresh, progress=progress)
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
    table = Table(*cols)
    for row in frame[cols].itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="A run id from `learnmech runs`.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One stored run: its spec, status and observables."""
    run_store = _existing(store)
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
    out.print(f"[bold]run {run_id}[/]: {status}, {traj.steps_done} steps, {traj.seconds:.2f} s")
    out.print(traj.system.to_yaml().rstrip())
    table = Table("observable", "points", "first", "last")
    for name, s in sorted(traj.observables.items()):
        first, last = s.values[0], s.values[-1]
        table.add_row(name, str(len(s.steps)), _brief(first), _brief(last))
    out.print(table)


def _brief(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(f"{v:.3g}" for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return f"{value:.4g}"


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
    out.print(f"report written to {write_report(verdicts, path)}")


def main() -> None:
    """Entry point: bad input exits with code 2 and one message."""
    try:
        app()
    except (InputError, StoreError, DataUnavailableError) as exc:
        err.print(f"[red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
