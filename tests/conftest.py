"""Shared fixtures: small systems and a store in a temporary directory."""

from __future__ import annotations

import pytest
import torch

from learnmech.laws import LawContext
from learnmech.store import Store


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.sqlite") as s:
        yield s


@pytest.fixture(scope="session")
def law_context(tmp_path_factory):
    """One context for the session's law checks: runs trained by one test are reused by
    the next (the laws' claims, controls and resolving-power tests share runs)."""
    with Store(tmp_path_factory.mktemp("laws") / "runs.sqlite") as s:
        yield LawContext(store=s)
