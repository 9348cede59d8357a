"""Scaling-law fits of runs: CSV and store inputs, parameter counts against the built
network, the `learnmech fit` command and its figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from learnmech import fit as F
from learnmech.cli import app
from learnmech.errors import InputError
from learnmech.system import MLP, DeepLinear, Digits, LearningRule, LinearTeacher, System
from learnmech.train import Schedule, initial_state

runner = CliRunner()


def _law_frame(k: int = 6, sigma: float = 0.01, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, k), np.geomspace(1e8, 1e11, k))
    n, d = n.ravel(), d.ravel()
    loss = (1.7 + 400 / n**0.34 + 410 / d**0.28) * np.exp(sigma * rng.standard_normal(n.size))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


@pytest.mark.parametrize("system", [
    System(architecture=MLP(width=7, depth=3), data=Digits(n_train=50, n_test=10)),
    System(architecture=MLP(width=5, depth=1, bias=False), data=Digits(n_train=50, n_test=10)),
    System(architecture=DeepLinear(hidden=[4, 3]), data=LinearTeacher()),
])
def test_parameter_count_matches_the_built_network(system):
    model = initial_state(system)[0]
    assert F.parameter_count(system) == sum(p.numel() for p in model.parameters())


def test_csv_with_compute_column_gets_d_from_c_over_6n(tmp_path):
    frame = _law_frame(k=3)
    path = tmp_path / "runs.csv"
    frame.assign(C=6 * frame.N * frame.D).drop(columns="D").to_csv(path, index=False)
    back = F.read_csv(path)
    np.testing.assert_allclose(back["D"], frame["D"], rtol=1e-12)
    with pytest.raises(InputError, match="loss"):
        F.read_csv(path, loss="final_loss")
    (tmp_path / "bad.csv").write_text("a,loss\n1,2\n")
    with pytest.raises(InputError, match="columns N and D"):
        F.read_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="file"):
        F.read_csv(tmp_path / "missing.csv")


def test_store_runs_become_a_table_of_n_d_and_loss(store):
    base = System(architecture=MLP(width=4), data=Digits(n_train=60, n_test=40),
                  objective="cross_entropy",
                  learning_rule=LearningRule(optimizer="adam", lr=1e-2, steps=20))
    for width in (4, 8):
        for n in (60, 120):
            store.run(base.updated({"architecture.width": width, "data.n_train": n}), ["loss"],
                      Schedule("linear", 5))
    frame = F.store_frame(store, reduce="min")
    assert len(frame) == 4
    assert sorted(frame["D"].unique()) == [60, 120]
    run = frame.iloc[0]
    stored = store.load(run["run_id"])
    assert run["loss"] == min(stored["test_loss"].values)
    assert run["N"] == F.parameter_count(stored.system)
    assert len(F.store_frame(store, where="`architecture.width` == 8")) == 2
    with pytest.raises(InputError, match="metric"):
        F.store_frame(store, metric="no_such_observable")


def test_fit_command_prints_json_and_writes_a_figure(tmp_path):
    path = tmp_path / "runs.csv"
    _law_frame().to_csv(path, index=False)
    png = tmp_path / "fit.png"
    result = runner.invoke(app, ["fit", str(path), "--law", "chinchilla", "--json",
                                 "--bootstrap", "50", "--compute", "1e20", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[0])
    assert summary["fit"]["converged"]
    assert summary["fit"]["params"]["alpha"] == pytest.approx(0.34, abs=0.05)
    assert summary["bootstrap"]["n_boot"] == 50
    row = summary["compute_optimal"][0]
    assert row["C"] == 1e20 and row["N_opt"] * row["D_opt"] * 6 == pytest.approx(1e20)
    assert png.stat().st_size > 10_000


def test_fit_command_text_output_and_bad_law(tmp_path):
    path = tmp_path / "runs.csv"
    _law_frame(k=4).to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "alpha" in result.stdout and "N_opt" in result.stdout
    result = runner.invoke(app, ["fit", str(path), "--law", "chinchila"])
    assert isinstance(result.exception, InputError)


def test_stopped_value_reads_the_report_at_the_least_selection_step():
    select = np.array([3.0, 1.0, 2.0, 1.0, np.nan])
    report = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert F.stopped_value(select, report) == 20.0  # first least value, NaN skipped
    assert np.isnan(F.stopped_value([np.nan, np.nan], [1.0, 2.0]))
    with pytest.raises(InputError, match="select"):
        F.stopped_value([1.0, 2.0], [1.0, 2.0, 3.0])
