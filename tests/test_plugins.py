"""Outside laws through the ``learnmech.laws`` entry point, and the CLI's self-description
(``--version``, ``describe``, ``list``, ``schema``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learnmech.laws import base

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example plugin as pip would leave it: its module and a dist-info with the entry
    point on ``sys.path`` (without running pip)."""
    shutil.copy(EXAMPLE / "learnmech_gd_rate.py", tmp_path)
    info = tmp_path / "learnmech_gd_rate-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: learnmech-gd-rate\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[learnmech.laws]\ngd-quadratic-rate = learnmech_gd_rate\n")
    base.catalogue()                       # the built-ins, registered for good
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.delitem(sys.modules, "learnmech_gd_rate", raising=False)
    return tmp_path


def cli(*args: str, path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LEARNMECH_STORE"}
    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "learnmech", *args], cwd=path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_an_outside_law_joins_the_catalogue_and_is_judged(installed) -> None:
    from learnmech.laws import catalogue, get_law

    assert "gd-quadratic-rate" in {law.id for law in catalogue()}
    verdict = get_law("gd-quadratic-rate").check("quick")
    record = verdict.to_json()
    assert record["verdict"] == "holds"
    assert record["negative_control"]["verdict"] == "fails"
    assert record["resolving_power"] is not None and record["resolving_power"] <= 0.02


def test_an_outside_law_runs_in_check_and_the_report(installed) -> None:
    result = cli("check", "gd-quadratic-rate", "--json", "--report", "r.html", path=installed)
    assert result.returncode == 0, result.stderr
    laws = json.loads(result.stdout)["laws"]
    assert [law["id"] for law in laws] == ["gd-quadratic-rate"]
    assert "gd-quadratic-rate" in (installed / "r.html").read_text()


def test_a_broken_plugin_is_named_and_the_builtins_still_load(tmp_path, monkeypatch) -> None:
    info = tmp_path / "broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[learnmech.laws]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from learnmech.laws import catalogue

    with pytest.warns(RuntimeWarning, match="broken.*no_such_module_xyz"):
        laws = catalogue()
    assert "dln-mode-learning" in {law.id for law in laws}


def test_version_describe_list_and_schema(tmp_path) -> None:
    from importlib.metadata import version

    result = cli("--version", path=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"learnmech {version('learnmech')}"
    described = cli("describe", "eos-gd", "--json", path=tmp_path)
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["id"] == "eos-gd" and info["control_theory"] and set(info["budgets"]) == {
        "quick", "standard", "full"}
    assert cli("describe", "no-such-law", path=tmp_path).returncode == 2
    listed = cli("list", path=tmp_path)
    assert listed.returncode == 0 and "regime" in listed.stdout and "control" in listed.stdout
    schema = json.loads(cli("schema", path=tmp_path).stdout)
    assert {"architecture", "data", "learning_rule"} <= set(schema["properties"])
