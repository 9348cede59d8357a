"""Ray under faults, against a local Ray instance started here (skipped without Ray): a
worker killed mid-sweep costs no trial; a killed driver leaves no Ray process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learnmech.store import Store
from learnmech.sweep import Counts, RayPool, Sweep, run_sweep

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'learnmech[ray]'")
linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
SRC = str(Path(__file__).parents[2] / "src")
ENV = {"PYTHONPATH": SRC, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _ray_task_workers() -> list[int]:
    """Processes running a learnmech trial for Ray (Ray titles them ``ray::train_task``)."""
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::train_task"):
                out.append(int(cmdline.parent.name))
        except OSError:
            continue
    return out


@linux
def test_a_ray_worker_killed_mid_sweep_costs_no_trial(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    sweep = Sweep.from_dict({
        "base": {"architecture": {"kind": "mlp", "width": 32, "depth": 2},
                 "data": {"name": "teacher_student", "n_train": 256, "n_test": 16},
                 "learning_rule": {"optimizer": "sgd", "lr": 0.05, "steps": 400,
                                   "batch_size": 32}},
        "grid": {"architecture.width": [16, 24, 32, 40]},
        "schedule": {"kind": "linear", "points": 3},
    })
    killed: list[int] = []

    def kill_once(counts: Counts) -> None:
        workers = _ray_task_workers()
        if counts.running and not killed and workers:
            killed.append(workers[0])
            os.kill(workers[0], signal.SIGKILL)

    try:
        result = run_sweep(sweep, Store(tmp_path / "s.sqlite"), executor=RayPool(workers=2),
                           backend="ray", progress=kill_once)
    finally:
        ray.shutdown()
    assert killed, "no Ray worker was seen running a trial"
    assert (result.counts.done, result.counts.failed) == (4, 0), result.errors


RAY_DRIVER = """
import os, time
from learnmech import watchdog
from learnmech.sweep import RayPool
pool = RayPool(workers=1)
print(" ".join(map(str, sorted(watchdog.descendants([os.getpid()])))), flush=True)
time.sleep(300)
"""


@linux
def test_killing_the_driver_ends_the_ray_processes_it_started() -> None:
    driver = subprocess.Popen([sys.executable, "-c", RAY_DRIVER], stdout=subprocess.PIPE,
                              text=True, env=os.environ | ENV)
    pids = [int(p) for p in driver.stdout.readline().split()]
    names = {p: Path(f"/proc/{p}/comm").read_text().strip() for p in pids
             if Path(f"/proc/{p}/comm").exists()}
    assert "raylet" in names.values() and any("Agent" in n or "RuntimeEnv" in n
                                               for n in names.values()), names
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    def alive() -> list[str]:
        return [name for p, name in names.items() if _alive(p)]

    deadline = time.monotonic() + 15  # Ray's agents alone outlive their driver by ≥ 60 s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive()
