"""The command line end to end, in a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = """\
architecture: {kind: deep_linear, hidden: [8], init_scale: 0.05}
data: {name: linear_teacher}
learning_rule: {optimizer: gd, lr: 0.05, steps: 200}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LEARNMECH_STORE"}
    return subprocess.run([sys.executable, "-m", "learnmech", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_tables_fold_long_ids_instead_of_cutting_them(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    result = cli("list", cwd=tmp_path)
    assert result.returncode == 0
    cells = "".join(line.split("│")[1].strip() for line in result.stdout.splitlines()
                    if line.startswith("│"))  # the law column, its folded pieces joined
    assert "dln-conservation" in cells and "representation-universality" in cells


def test_list_json(tmp_path):
    result = cli("list", "--json", cwd=tmp_path)
    assert result.returncode == 0
    ids = [law["id"] for law in json.loads(result.stdout)["laws"]]
    assert {"dln-mode-learning", "dln-conservation"} <= set(ids)


def test_run_runs_show_round_trip(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = cli("run", "spec.yaml", "--json", "--probe", "loss", "--probe", "e2e_svals",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "completed"
    loss = record["observables"]["train_loss"]
    assert loss["step"][0] == 0 and loss["step"][-1] == 200 and loss["value"][-1] < loss["value"][0]
    assert len(record["observables"]["e2e_svals"]["value"][0]) == 6
    listed = json.loads(cli("runs", "--json", cwd=tmp_path).stdout)["runs"]
    assert [r["run_id"] for r in listed] == [record["run_id"]]
    shown = json.loads(cli("show", record["run_id"], "--json", cwd=tmp_path).stdout)
    assert shown["observables"]["train_loss"] == loss
    assert "run " + record["run_id"] in cli("show", record["run_id"], cwd=tmp_path).stdout
    by_prefix = json.loads(cli("show", record["run_id"][:6], "--json", cwd=tmp_path).stdout)
    assert by_prefix["run_id"] == record["run_id"]
    unknown = cli("show", "zz-no-such", cwd=tmp_path)
    assert unknown.returncode == 2 and "run_id" in unknown.stderr


def test_check_json_report_and_stored_verdict(tmp_path):
    result = cli("check", "dln-conservation", "--budget", "quick", "--json",
                 "--report", "out/report.html", "--store", "s.sqlite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scorecard = json.loads(result.stdout)
    (law,) = scorecard["laws"]
    assert set(law) == {"id", "strand", "verdict", "criteria", "negative_control",
                        "resolving_power", "qualitative", "regime", "budget", "seconds",
                        "run_ids"}
    assert set(law["criteria"][0]) == {"name", "value", "tolerance", "sense", "passed"}
    assert set(law["negative_control"]) == {"theory", "verdict", "criteria"}
    assert law["verdict"] == "holds" and law["negative_control"]["verdict"] == "fails"
    assert scorecard["not_run"] == []
    assert scorecard["totals"]["requested"] == scorecard["totals"]["holds"] == 1
    html = (tmp_path / "out/report.html").read_text()
    assert "dln-conservation" in html and "data:image/webp;base64," in html
    again = cli("report", "again.html", "--store", "s.sqlite", cwd=tmp_path)
    assert again.returncode == 0 and (tmp_path / "again.html").exists()


@pytest.mark.parametrize(
    ("args", "spec", "needle"),
    [
        (["check", "no-such-law"], None, "law: got 'no-such-law'"),
        (["check", "--budget", "huge"], None, "budget: got 'huge'"),
        (["run", "missing.yaml"], None, "file: got 'missing.yaml'"),
        (["run", "spec.yaml"], SPEC.replace("hidden: [8]", "hidden: [8], colour: red"),
         "architecture.colour"),
        (["run", "spec.yaml"], SPEC.replace("lr: 0.05", "lr: fast"), "learning_rule.lr"),
        (["run", "spec.yaml", "--probe", "nope"], SPEC, "probe: got 'nope'"),
        (["show", "abc"], None, "store"),
    ],
)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(tmp_path, args, spec, needle):
    if spec is not None:
        (tmp_path / "spec.yaml").write_text(spec)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert needle in result.stderr
    assert not (tmp_path / "learnmech.sqlite").exists()


def test_check_lists_a_law_that_did_not_run_with_its_reason(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from learnmech.cli import app
    from learnmech.laws import get_law

    def broken(budget, ctx):
        raise RuntimeError("no data here")

    monkeypatch.setattr(get_law("dln-conservation"), "check", broken)
    result = CliRunner().invoke(app, ["check", "dln-conservation", "--json",
                                      "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1
    scorecard = json.loads(result.stdout)
    assert scorecard["laws"] == []
    assert scorecard["not_run"] == [{"id": "dln-conservation", "strand": "solvable",
                                     "reason": "RuntimeError: no data here"}]
    assert scorecard["totals"]["requested"] == scorecard["totals"]["not_run"] == 1
