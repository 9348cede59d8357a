"""The Ray backend against a local Ray instance started here (skipped without Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from learnmech.errors import InputError
from learnmech.probes import make_probes
from learnmech.store import Store
from learnmech.sweep import RayPool, Sweep, run_sweep, summary
from learnmech.train import Schedule, train

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'learnmech[ray]'")

SWEEP = {
    "base": {
        "architecture": {"kind": "mlp", "width": 8, "depth": 2},
        "data": {"name": "teacher_student", "n_train": 64, "n_test": 16},
        "learning_rule": {"optimizer": "sgd", "lr": 0.05, "steps": 40, "batch_size": 16},
        "dtype": "float64",
    },
    "grid": {"learning_rule.lr": [0.05, 0.1, 500.0], "architecture.width": [8, 12]},
    "schedule": {"kind": "linear", "points": 5},
}


def test_sweep_on_a_local_ray_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    sweep = Sweep.from_dict(SWEEP)
    store = Store(tmp_path / "s.sqlite")
    pool = RayPool(workers=2)
    try:
        assert pool.slots == 2
        with pytest.raises(InputError, match="GPUs in the cluster"):
            RayPool(gpus_per_trial=1)
        result = run_sweep(sweep, store, executor=pool, backend="ray")
    finally:
        ray.shutdown()
    assert (result.counts.done, result.counts.failed, result.counts.diverged) == (6, 0, 2)
    table = summary(sweep, store)
    assert (table.loc[table["learning_rule.lr"] == 500.0, "status"] == "diverged").all()
    # stored numbers are the plain trainer's at the trial's thread count (one), up to the
    # summation order of the vectorized ensemble the sweep trains them in (float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for trial in sweep.trials()[:2]:
            ref = train(trial.system, make_probes(["loss"]), Schedule("linear", 5))
            np.testing.assert_allclose(
                store.load(trial.run_id)["train_loss"].array(), ref["train_loss"].array(),
                rtol=1e-8, atol=0,
            )
    finally:
        torch.set_num_threads(threads)
    # resuming needs no cluster at all: everything is stored
    again = run_sweep(sweep, store, backend="ray")
    assert again.counts.reused == 6
