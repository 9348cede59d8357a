"""The store never loses data: records keyed by system and what was recorded, failing
reruns, schema migration, divergence at absurd learning rates."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

import learnmech.store as store_module
from learnmech.cli import main
from learnmech.store import Store
from learnmech.sweep import Sweep, run_sweep, train_task
from learnmech.system import DeepLinear, LearningRule, LinearTeacher, System
from learnmech.train import Schedule

SYSTEM = System(architecture=DeepLinear(hidden=[6], init_scale=0.1), data=LinearTeacher(),
                learning_rule=LearningRule(lr=0.05, steps=40))


class Serial:
    """An executor training each task in this process when it is submitted."""

    slots = 2

    def submit(self, systems: list[System], probes: list[str], schedule: Schedule) -> Any:
        return [train_task(systems, probes, schedule)]

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        return list(handles)

    def result(self, handle: Any) -> Any:
        return handle[0]

    def close(self, cancel: bool) -> None:
        pass


def test_rerun_with_other_probes_or_points_sits_beside_the_first(store: Store) -> None:
    first = store.run(SYSTEM, ["loss"], Schedule("linear", 5))
    other_probes = store.run(SYSTEM, ["loss", "e2e_svals"], Schedule("linear", 5))
    other_points = store.run(SYSTEM, ["loss"], Schedule("linear", 9))
    runs = store.runs()
    assert len(runs) == 3 and set(runs["status"]) == {"completed"}
    assert store.load(SYSTEM.run_id, ["loss"], Schedule("linear", 5)).observables[
        "train_loss"].values == first.observables["train_loss"].values
    assert len(store.load(SYSTEM.run_id, ["loss"], Schedule("linear", 9))[
        "train_loss"].steps) == len(other_points["train_loss"].steps) == 9
    assert "e2e_svals" in store.load(SYSTEM.run_id, ["e2e_svals"]).observables
    assert other_probes["train_loss"].values == first["train_loss"].values  # same seed


def test_failing_rerun_keeps_the_completed_record(store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = Schedule("linear", 5)
    first = store.run(SYSTEM, ["loss"], schedule)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(store_module, "train", broken)
    with pytest.raises(RuntimeError):
        store.run(SYSTEM, ["loss"], schedule, fresh=True)
    runs = store.runs()
    assert sorted(runs["status"]) == ["completed", "failed"]
    assert "out of memory" in runs.loc[runs["status"] == "failed", "reason"].iloc[0]
    assert store.load(SYSTEM.run_id)["train_loss"].values == first["train_loss"].values
    monkeypatch.undo()
    again = store.run(SYSTEM, ["loss"], schedule, fresh=True)  # succeeds: replaces both
    assert list(store.runs()["status"]) == ["completed"]
    assert again["train_loss"].values == first["train_loss"].values


def test_absurd_points_exit_2_and_leave_the_store_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).run(SYSTEM, ["loss"], Schedule("log", 50))
    before = Store(path).runs().drop(columns=["versions"])
    (tmp_path / "spec.yaml").write_text(SYSTEM.to_yaml())
    monkeypatch.setattr(sys, "argv", ["learnmech", "run", str(tmp_path / "spec.yaml"),
                                      "--points", "1000000000000", "--store", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "points" in capsys.readouterr().err
    assert Store(path).runs().drop(columns=["versions"]).equals(before)


def test_schema_1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    spec = SYSTEM.canonical_json()
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema', '1');
            CREATE TABLE runs (run_id TEXT PRIMARY KEY, spec TEXT NOT NULL,
                status TEXT NOT NULL, probes TEXT NOT NULL, schedule TEXT NOT NULL,
                steps_done INTEGER, diverged_at INTEGER, reason TEXT, started REAL NOT NULL,
                finished REAL, seconds REAL, versions TEXT NOT NULL);
            CREATE TABLE observables (run_id TEXT NOT NULL REFERENCES runs(run_id)
                ON DELETE CASCADE, name TEXT NOT NULL, steps TEXT NOT NULL,
                vals TEXT NOT NULL, PRIMARY KEY (run_id, name));
            CREATE TABLE verdicts (law_id TEXT NOT NULL, budget TEXT NOT NULL,
                created REAL NOT NULL, verdict TEXT NOT NULL, PRIMARY KEY (law_id, budget));
            CREATE TABLE sweep_failures (run_id TEXT PRIMARY KEY, spec TEXT NOT NULL,
                error TEXT NOT NULL, at REAL NOT NULL);
        """)
        schedule = json.dumps({"kind": "linear", "points": 3})
        conn.execute("INSERT INTO runs VALUES (?, ?, 'completed', '[\"loss\"]', ?, 40, NULL, "
                     "NULL, 1.0, 2.0, 1.0, '{}')", (SYSTEM.run_id, spec, schedule))
        conn.execute("INSERT INTO observables VALUES (?, 'train_loss', '[0, 20, 40]', "
                     "'[3.0, 2.0, 1.0]')", (SYSTEM.run_id,))
        other = SYSTEM.updated({"seed": 1})
        conn.execute("INSERT INTO runs VALUES (?, ?, 'running', '[\"loss\"]', ?, NULL, NULL, "
                     "NULL, 3.0, NULL, NULL, '{}')", (other.run_id, other.canonical_json(),
                                                       schedule))
    store = Store(path)
    runs = store.runs()
    assert list(runs["status"]) == ["completed", "interrupted"]
    assert store.load(SYSTEM.run_id)["train_loss"].values == [3.0, 2.0, 1.0]
    assert store.finished(SYSTEM, ["loss"], Schedule("linear", 3))


def test_lr_1e300_is_a_divergence_stored_once(tmp_path: Path) -> None:
    raw = {"base": json.loads(SYSTEM.canonical_json()),
           "grid": {"learning_rule.lr": [1e30, 1e100, 1e300]},
           "schedule": {"kind": "linear", "points": 3}}
    sweep = Sweep.from_dict(raw)
    for ensemble in (True, False):
        result = run_sweep(sweep, Store(tmp_path / f"{ensemble}.sqlite"), executor=Serial(),
                           ensemble=ensemble)
        assert (result.counts.diverged, result.counts.failed) == (3, 0), result.errors
        again = run_sweep(sweep, Store(tmp_path / f"{ensemble}.sqlite"), executor=Serial(),
                          ensemble=ensemble)
        assert again.counts.reused == 3  # a divergence is a result: not retried
