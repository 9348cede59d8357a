"""Kills by pid and concurrent writers, through the real command line in subprocesses:
no record left ``running`` by a dead process, no worker outliving its sweep driver, no
mixed records from concurrent runs, every trial of two concurrent sweeps trained once."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import learnmech
from learnmech.store import Store

SRC = str(Path(learnmech.__file__).resolve().parents[1])
SPEC = {"architecture": {"kind": "deep_linear", "hidden": [6], "init_scale": 0.1},
        "data": {"name": "linear_teacher", "n_train": 64, "n_test": 16},
        "learning_rule": {"lr": 0.02, "steps": 150}}
linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _learnmech(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "LEARNMECH_STORE"} | {"PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "learnmech", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running(path: Path) -> int:
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _wait(condition, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_run_leaves_no_running_record(tmp_path: Path) -> None:
    slow = SPEC | {"learning_rule": SPEC["learning_rule"] | {"steps": 200000}}
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(slow))
    proc = _learnmech("run", "slow.yaml", "--store", "s.sqlite", cwd=tmp_path)
    _wait(lambda: _running(tmp_path / "s.sqlite") == 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _running(tmp_path / "s.sqlite") == 1  # what the killed process left
    runs = Store(tmp_path / "s.sqlite").runs()  # the next process reclaims it
    assert list(runs["status"]) == ["interrupted"]
    assert str(proc.pid) in runs.loc[0, "reason"]


@linux
def test_kill_9_of_sweep_driver_takes_its_workers_down(tmp_path: Path) -> None:
    slow = SPEC | {"learning_rule": SPEC["learning_rule"] | {"steps": 200000}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"base": slow, "grid": {"learning_rule.lr": [0.01, 0.02]}}))
    proc = _learnmech("sweep", "sweep.yaml", "--store", "s.sqlite", "--workers", "2",
                      "--no-ensemble", cwd=tmp_path)
    _wait(lambda: _running(tmp_path / "s.sqlite") == 2 and len(_children(proc.pid)) >= 2)
    children = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait(lambda: not any(_alive(c) for c in children), seconds=10)
    assert list(Store(tmp_path / "s.sqlite").runs()["status"]) == ["interrupted"] * 2


def test_two_runs_of_one_spec_with_other_probes_keep_apart(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    a = _learnmech("run", "spec.yaml", "--store", "s.sqlite", "--points", "10", cwd=tmp_path)
    b = _learnmech("run", "spec.yaml", "--store", "s.sqlite", "--points", "20",
                   "--probe", "loss", "--probe", "weight_movement", cwd=tmp_path)
    for proc in (a, b):
        assert proc.wait(timeout=120) == 0, proc.communicate()[1]
    store = Store(tmp_path / "s.sqlite")
    runs = store.runs().set_index("record")
    assert len(runs) == 2 and set(runs["status"]) == {"completed"}
    for record, row in runs.iterrows():
        traj = store.load_record(int(record))
        points = yaml.safe_load(row["schedule"])["points"]
        assert any("weight_movement" in k for k in traj.observables) == (
            "weight_movement" in row["probes"])
        assert len(traj["train_loss"].steps) <= points
        assert len(traj["train_loss"].steps) > (10 if points == 20 else 0)


def test_two_identical_sweeps_at_once_train_each_trial_once(tmp_path: Path) -> None:
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"base": SPEC, "grid": {"learning_rule.lr": [0.01, 0.015, 0.02, 0.025]},
         "seeds": 2, "schedule": {"kind": "linear", "points": 5}}))
    args = ("sweep", "sweep.yaml", "--store", "s.sqlite", "--workers", "1", "--no-ensemble")
    procs = [_learnmech(*args, cwd=tmp_path) for _ in range(2)]
    trained = 0
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        done, total, reused = map(int, re.search(r"done (\d+)/(\d+).*\((\d+) reused", err)
                                  .groups())
        assert done == total == 8
        trained += total - reused
    assert trained == 8
    runs = Store(tmp_path / "s.sqlite").runs()
    assert len(runs) == 8 and set(runs["status"]) == {"completed"}
