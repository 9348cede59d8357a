"""The run store: caching, fresh runs, resume after kill -9, schema guard, pandas export."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import learnmech.store as store_module
from learnmech.errors import InputError, StoreError
from learnmech.store import Store
from learnmech.system import MLP, DeepLinear, LearningRule, LinearTeacher, System
from learnmech.train import Schedule

SYSTEM = System(architecture=DeepLinear(hidden=[8], init_scale=0.1), data=LinearTeacher(),
                learning_rule=LearningRule(lr=0.05, steps=60))


def test_stored_run_is_reused_with_a_subset_of_probes(store, monkeypatch):
    first = store.run(SYSTEM, ["loss", "mode_strengths"], Schedule("linear", 5))

    def no_training(*args, **kwargs):
        raise AssertionError("should have been served from the store")

    monkeypatch.setattr(store_module, "train", no_training)
    again = store.run(SYSTEM, ["loss"], Schedule("linear", 5))
    assert again.observables["train_loss"].values == first.observables["train_loss"].values
    assert again.observables["mode_strengths"].values == first.observables["mode_strengths"].values
    with pytest.raises(AssertionError, match="served from the store"):
        store.run(SYSTEM, ["loss", "balancedness"], Schedule("linear", 5))
    with pytest.raises(AssertionError, match="served from the store"):
        store.run(SYSTEM, ["loss"], Schedule("linear", 6))
    with pytest.raises(AssertionError, match="served from the store"):
        store.run(SYSTEM, ["loss"], Schedule("linear", 5), fresh=True)


def test_bad_probe_name_writes_nothing(store):
    with pytest.raises(InputError):
        store.run(SYSTEM, ["nope"])
    assert store.runs().empty


def test_pandas_export(store):
    store.run(SYSTEM, ["loss", "e2e_svals"], Schedule("linear", 3))
    runs = store.runs()
    assert list(runs["run_id"]) == [SYSTEM.run_id]
    assert runs.loc[0, "status"] == "completed"
    assert runs.loc[0, "learning_rule.lr"] == 0.05
    obs = store.observables(SYSTEM.run_id)
    assert set(obs["name"]) == {"train_loss", "test_loss", "e2e_svals"}
    assert len(obs[obs.name == "e2e_svals"]) == 3 * 6


def test_diverged_run_is_stored_as_diverged(store):
    system = System(architecture=MLP(width=16), data=LinearTeacher(),
                    learning_rule=LearningRule(lr=50.0, steps=100))
    traj = store.run(system, ["loss"])
    assert traj.status == "diverged"
    loaded = store.load(system.run_id)
    assert loaded.status == "diverged" and loaded.diverged_at == traj.diverged_at


def test_newer_schema_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).run(SYSTEM, ["loss"], Schedule("linear", 2))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(StoreError, match="schema 99"):
        Store(path).runs()


class _CtrlCAfterBegin(sqlite3.Connection):
    """A connection whose next ``BEGIN IMMEDIATE`` succeeds and is then hit by Ctrl-C:
    Python raises a pending SIGINT right after the call that was running returns."""

    armed = False

    def execute(self, sql, *args):
        cursor = super().execute(sql, *args)
        if self.armed and sql == "BEGIN IMMEDIATE":
            self.armed = False
            raise KeyboardInterrupt
        return cursor


def test_ctrl_c_just_after_begin_leaves_the_store_unlocked(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.reclaim()  # creates the store
    store.close()
    store._conn = sqlite3.connect(store.path, timeout=30, isolation_level=None,
                                  factory=_CtrlCAfterBegin)
    store._conn.armed = True
    with pytest.raises(KeyboardInterrupt):
        store.claim(SYSTEM, ["loss"], Schedule("linear", 3))
    assert not store.conn.in_transaction
    other = sqlite3.connect(store.path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # 'database is locked' if the claim left it open
    other.execute("ROLLBACK")
    other.close()
    record = store.claim(SYSTEM, ["loss"], Schedule("linear", 3))
    store.fail(record, "the test was interrupted", "interrupted")
    assert store.status(SYSTEM, ["loss"], Schedule("linear", 3)) == "interrupted"


def test_kill_9_leaves_a_readable_store_and_the_rerun_completes(tmp_path):
    path = tmp_path / "killed.sqlite"
    slow = SYSTEM.updated({"learning_rule.steps": 4000})  # a few seconds of training
    code = (
        "import sys; from learnmech.store import Store; from learnmech.system import System; "
        f"Store(sys.argv[1]).run(System.from_json({slow.canonical_json()!r}), ['loss'])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])
    deadline = time.time() + 60
    status = None
    while time.time() < deadline and status is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(path) as conn:
                row = conn.execute("SELECT status FROM runs").fetchone()
                status = row[0] if row else None
        except sqlite3.Error:
            status = None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert status == "running"
    reader = Store(path)  # opening the store reclaims the dead process's record
    assert list(reader.runs()["status"]) == ["interrupted"]
    assert reader.load(slow.run_id).observables == {}
    resumed = reader.run(slow, ["loss"])
    assert resumed.status == "completed" and resumed.steps_done == 4000
    assert list(reader.runs()["status"]) == ["completed"]
    assert reader.load(slow.run_id).observables["train_loss"].steps[-1] == 4000


def test_store_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNMECH_STORE", str(tmp_path / "env.sqlite"))
    assert Store().path == tmp_path / "env.sqlite"
    with pytest.raises(InputError, match="not a directory"):
        Store(tmp_path)
