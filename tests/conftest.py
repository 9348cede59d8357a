"""Shared fixtures: small systems and a store in a temporary directory."""

from __future__ import annotations

import pytest
import torch

from learnmech.store import Store


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.sqlite") as s:
        yield s
