"""Every bad input of the corpus `bad_inputs.yaml` exits with code 2 and one message that
names the field, without a traceback, without echoing a file's contents and without
Rich markup being interpreted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from learnmech.cli import main

CORPUS = yaml.safe_load((Path(__file__).parent / "bad_inputs.yaml").read_text())
CASES = CORPUS["cases"]


def _patched(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    spec = json.loads(json.dumps(base))
    for path, value in patch.items():
        node = spec
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return spec


def _spec_text(case: dict[str, Any]) -> bytes:
    text = case.get("text")
    if text is None:
        return yaml.safe_dump(_patched(CORPUS["base"], case.get("patch", {}))).encode()
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    if text.startswith("deep:"):
        n = int(text[5:])
        return ("[" * n + "]" * n).encode()
    if text.startswith("deepjson:"):
        n = int(text[9:])
        return ("[" * n + "]" * n).encode()
    return text.encode()


def _accelerator(case: dict[str, Any]) -> bool:
    return torch.cuda.is_available() or torch.backends.mps.is_available()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 100
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_exits_2_with_one_message(case: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if case.get("needs_no_accelerator") and _accelerator(case):
        pytest.skip("this machine has the device")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / ("spec.json" if str(case.get("text", "")).startswith("deepjson")
                       else "spec.yaml")
    spec.write_bytes(_spec_text(case))
    (tmp_path / "runs.csv").write_text(case.get("csv", "N,D,loss\n1e6,1e8,2\n2e6,2e8,1\n"))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(case.get("sweep", {})))
    names = {"{spec}": str(spec), "{csv}": "runs.csv", "{sweep}": "sweep.yaml"}
    argv = [names.get(a, a) for a in case["argv"]]
    if argv[0] in ("run", "sweep", "check") and "--store" not in argv:
        argv += ["--store", "s.sqlite"]
    if argv[0] == "sweep" and "--workers" not in argv:
        argv += ["--workers", "1"]
    monkeypatch.setattr(sys, "argv", ["learnmech", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    assert exit_info.value.code == 2, captured.err
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    message = captured.err[captured.err.index("error: "):]
    assert "allowed:" in message, message
    assert case["field"] in message, message
    assert "root:" not in message  # /etc/passwd's first line is never echoed
