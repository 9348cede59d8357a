"""Sweeps: trial grids, storing as trials finish, resuming, divergence and failures."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from learnmech.errors import InputError
from learnmech.probes import make_probes
from learnmech.store import Store
from learnmech.sweep import (
    Counts,
    LocalPool,
    Sweep,
    aggregate,
    run_sweep,
    summary,
    sweep_figures,
    train_task,
)
from learnmech.system import System
from learnmech.train import Schedule, train

BASE: dict[str, Any] = {
    "architecture": {"kind": "deep_linear", "hidden": [6]},
    "data": {"name": "linear_teacher", "d_in": 6, "d_out": 6, "n_train": 64, "n_test": 16},
    "learning_rule": {"optimizer": "sgd", "lr": 0.05, "steps": 60, "batch_size": 16},
    "dtype": "float64",
}


def _sweep(**extra: Any) -> Sweep:
    raw = {"base": BASE, "schedule": {"kind": "linear", "points": 5}} | extra
    return Sweep.from_dict(raw)


class Serial:
    """An executor running each task in this process when submitted (records tasks)."""

    slots = 2

    def __init__(self) -> None:
        self.tasks: list[list[str]] = []

    def submit(self, systems: list[System], probes: list[str], schedule: Schedule) -> Any:
        self.tasks.append([s.run_id for s in systems])
        return [train_task(systems, probes, schedule)]  # a handle: the outcomes in a box

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        return list(handles)

    def result(self, handle: Any) -> Any:
        return handle[0]

    def close(self, cancel: bool) -> None:
        pass


def test_trials_are_the_product_of_grid_zip_and_seeds() -> None:
    sweep = _sweep(
        grid={"learning_rule.lr": [0.01, 0.02, 0.04], "architecture.hidden": [[4], [8]]},
        zip={"learning_rule.steps": [10, 20], "learning_rule.batch_size": [8, 16]},
        seeds=2,
    )
    trials = sweep.trials()
    assert len(trials) == 3 * 2 * 2 * 2
    assert sweep.varied == [
        "learning_rule.lr",
        "architecture.hidden",
        "learning_rule.steps",
        "learning_rule.batch_size",
        "seed",
    ]
    first = trials[0]
    assert first.params == {
        "learning_rule.lr": 0.01,
        "architecture.hidden": [4],
        "learning_rule.steps": 10,
        "learning_rule.batch_size": 8,
        "seed": 0,
    }
    assert first.system.learning_rule.batch_size == 8 and first.system.seed == 0
    assert {(t.system.learning_rule.steps, t.system.learning_rule.batch_size) for t in trials} == {
        (10, 8),
        (20, 16),
    }
    assert len({t.run_id for t in trials}) == len(trials)
    # a duplicated value gives the same system once
    assert len(_sweep(grid={"learning_rule.lr": [0.01, 0.01]}).trials()) == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"grid": {"learning_rule.rate": [0.1]}}, "learning_rule.rate"),
        ({"grid": {"learning_rule.lr": [-1.0]}}, "learning_rule.lr"),
        ({"zip": {"learning_rule.lr": [0.1], "seed": [1, 2]}}, "zip"),
        ({"probes": ["nonsense"]}, "probe"),
        ({"grid": {"seed": [1]}, "seeds": 2}, "seeds"),
        ({"grid": {"learning_rule.lr": []}}, "grid.learning_rule.lr"),
        ({"schedul": {}}, "schedul"),
    ],
)
def test_bad_sweeps_name_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        _sweep(**extra).trials()
    assert err.value.field == field


def test_sweep_file_with_relative_base(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(System.from_dict(BASE).to_yaml())
    (tmp_path / "sweep.yaml").write_text("base: base.yaml\ngrid: {learning_rule.lr: [0.1, 0.2]}\n")
    assert len(Sweep.load(tmp_path / "sweep.yaml").trials()) == 2
    with pytest.raises(InputError):
        Sweep.load(tmp_path / "missing.yaml")


def test_sweep_stores_diverged_and_failed_trials_and_resumes(tmp_path: Path) -> None:
    sweep = _sweep(
        grid={
            "learning_rule.lr": [0.02, 0.05, 200.0],
            "architecture.init": ["gaussian", "near_identity"],
        },
        seeds=2,
    )
    store = Store(tmp_path / "s.sqlite")
    seen: list[Counts] = []
    result = run_sweep(
        sweep, store, executor=Serial(), progress=lambda c: seen.append(Counts(**vars(c)))
    )
    c = result.counts
    # near_identity needs square layers (6 → 6 → 6 is square): every trial trains
    assert (c.total, c.done, c.failed) == (12, 12, 0)
    assert c.diverged == 4  # lr = 200 diverges for both inits and both seeds
    assert seen[-1].done == 12 and max(s.running for s in seen) > 0
    table = summary(sweep, store)
    assert set(table["status"]) == {"completed", "diverged"}
    assert (table.loc[table["learning_rule.lr"] == 200.0, "status"] == "diverged").all()
    # what is stored equals the plain trainer's numbers
    for trial in sweep.trials()[:3]:
        ref = train(trial.system, make_probes(["loss"]), Schedule("linear", 5))
        stored = store.load(trial.run_id)
        assert stored.status == ref.status
        np.testing.assert_allclose(
            stored["train_loss"].array(), ref["train_loss"].array(), rtol=1e-9
        )
    # a second invocation reuses everything
    again = Serial()
    second = run_sweep(sweep, store, executor=again)
    assert again.tasks == [] and second.counts.reused == 12 and second.counts.diverged == 4
    # a failing trial (near_identity with non-square layers) is recorded and retried later
    wider = _sweep(grid={"architecture.hidden": [[6], [7]], "architecture.init": ["near_identity"]})
    res = run_sweep(wider, store, executor=Serial())
    assert (res.counts.done, res.counts.failed) == (1, 1)
    (error,) = res.errors.values()
    assert "square layers" in error
    assert sorted(summary(wider, store)["status"]) == ["completed", "failed"]
    retry = Serial()
    run_sweep(wider, store, executor=retry)
    assert len(retry.tasks) == 1


def test_ensembled_and_single_trials_store_the_same_numbers(tmp_path: Path) -> None:
    sweep = _sweep(grid={"learning_rule.lr": [0.02, 0.05]}, seeds=2)
    together, alone = Serial(), Serial()
    run_sweep(sweep, Store(tmp_path / "a.sqlite"), executor=together)
    run_sweep(sweep, Store(tmp_path / "b.sqlite"), executor=alone, ensemble=False)
    assert [len(t) for t in together.tasks] == [2, 2]  # two slots: two ensembles of two
    assert [len(t) for t in alone.tasks] == [1, 1, 1, 1]
    a = summary(sweep, Store(tmp_path / "a.sqlite"))
    b = summary(sweep, Store(tmp_path / "b.sqlite"))
    np.testing.assert_allclose(a["final_train_loss"], b["final_train_loss"], rtol=1e-9)
    agg = aggregate(sweep, a)
    assert list(agg["completed"]) == [2, 2]
    figures, heatmaps = sweep_figures(sweep, Store(tmp_path / "a.sqlite"))
    assert figures[0].curves[0].x == [0.02, 0.05] and heatmaps == []


def test_local_pool_survives_a_lost_worker(tmp_path: Path) -> None:
    """A worker killed mid-task: the pool is rebuilt and the task run again."""
    sweep = _sweep(grid={"learning_rule.lr": [0.01, 0.02, 0.03]})
    pool = LocalPool(workers=1)
    killed: list[int] = []

    def kill_once(counts: Counts) -> None:
        procs = list(getattr(pool._pool, "_processes", {}).values())
        if counts.running and not killed and procs:
            killed.append(procs[0].pid)
            os.kill(procs[0].pid, signal.SIGKILL)

    result = run_sweep(
        sweep, Store(tmp_path / "s.sqlite"), executor=pool, ensemble=False, progress=kill_once
    )
    assert killed and (result.counts.done, result.counts.failed) == (3, 0)


def test_resume_after_kill_9(tmp_path: Path) -> None:
    """Kill the whole sweep (driver and workers) with SIGKILL mid-way; the next run
    trains only the trials that were not stored."""
    path = tmp_path / "s.sqlite"
    raw = {
        "base": BASE | {"learning_rule": BASE["learning_rule"] | {"steps": 1500}},
        "grid": {"learning_rule.lr": [0.01, 0.012, 0.014, 0.016, 0.018, 0.02]},
        "schedule": {"kind": "linear", "points": 5},
    }
    script = textwrap.dedent(f"""
        from learnmech.store import Store
        from learnmech.sweep import Sweep, run_sweep
        if __name__ == "__main__":
            run_sweep(Sweep.from_dict({raw!r}), Store({str(path)!r}), workers=1,
                      ensemble=False)
    """)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)

    def finished() -> dict[str, float]:
        if not path.exists():
            return {}
        try:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT run_id, finished FROM runs").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {r: f for r, f in rows if f is not None}

    deadline = time.time() + 240
    while len(finished()) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished()
    assert 2 <= len(before) < 6, "the sweep should have been killed mid-way"
    resumed = Serial()
    result = run_sweep(Sweep.from_dict(raw), Store(path), executor=resumed, ensemble=False)
    assert sorted(r for t in resumed.tasks for r in t) == sorted(
        t.run_id for t in Sweep.from_dict(raw).trials() if t.run_id not in before
    )
    assert result.counts.done == 6 and result.counts.reused == len(before)
    after = finished()
    assert all(after[r] == f for r, f in before.items())  # finished trials untouched


def test_aggregate_and_figures_with_list_valued_fields(tmp_path: Path) -> None:
    sweep = _sweep(grid={"architecture.hidden": [[6], [8]], "learning_rule.lr": [0.02, 0.05]},
                   seeds=2)
    store = Store(tmp_path / "s.sqlite")
    run_sweep(sweep, store, executor=Serial())
    table = summary(sweep, store)
    agg = aggregate(sweep, table)
    assert list(agg["architecture.hidden"]) == ["[6]", "[6]", "[8]", "[8]"]
    assert list(agg["completed"]) == [2, 2, 2, 2]
    means = table.groupby(table["architecture.hidden"].map(str).str.cat(
        table["learning_rule.lr"].map(str)))["final_train_loss"].mean()
    np.testing.assert_allclose(sorted(agg["mean"]), sorted(means), rtol=1e-12)
    figures, heatmaps = sweep_figures(sweep, store)
    assert [c.label for c in figures[0].curves] == ["hidden=[6]", "hidden=[8]"]
    (heat,) = heatmaps
    assert np.isfinite(heat.values).all() and len(heat.values) == 2
