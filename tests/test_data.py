"""Data sets: the quantities theory relies on, checked against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from learnmech.data import load
from learnmech.data import real as real_data
from learnmech.errors import DataUnavailableError
from learnmech.system import Digits, FashionMNIST, Hierarchy, LinearTeacher, TeacherStudent


def test_linear_teacher_is_exactly_whitened_with_the_given_spectrum():
    spec = LinearTeacher(d_in=8, d_out=5, singular_values=[4.0, 2.5, 1.0], n_train=300)
    data = load(spec)
    sxx, syx = data.input_output_correlation()
    assert torch.allclose(sxx, torch.eye(8, dtype=torch.float64), atol=1e-5)
    svals = torch.linalg.svdvals(syx)
    assert svals[:3].tolist() == pytest.approx([4.0, 2.5, 1.0], rel=1e-5)
    assert float(svals[3:].max()) < 1e-5
    assert torch.allclose(syx, data.info["teacher"], atol=1e-5)


def test_hierarchy_modes_match_the_closed_form():
    """YᵀY has eigenvalues 7, 3, 1, 1 over the four items, so with Σ_xx = I the singular
    values of Σ_yx = Y·2I/4 are √7/2, √3/2, 1/2, 1/2: the last two form one group."""
    data = load(Hierarchy())
    sxx, _ = data.input_output_correlation()
    assert torch.allclose(sxx, torch.eye(4, dtype=torch.float64))
    groups = data.modes()
    assert [g[0] for g in groups] == pytest.approx([math.sqrt(7) / 2, math.sqrt(3) / 2, 0.5])
    assert [g[1].shape[1] for g in groups] == [1, 1, 2]
    living = groups[0][2][:, 0].abs()
    assert torch.allclose(living, torch.full((4,), 0.5, dtype=torch.float64))


def test_teacher_student_is_seeded_and_split():
    a, b = load(TeacherStudent(n_train=50, n_test=20)), load(TeacherStudent(n_train=50, n_test=20))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape == (50, 16) and a.y_test.shape == (20, 1)
    c = load(TeacherStudent(n_train=50, n_test=20, seed=1))
    assert not torch.equal(a.y_train, c.y_train)


def test_digits_split_and_standardization():
    data = load(Digits(n_train=600, n_test=300))
    assert data.x_train.shape == (600, 64) and data.x_test.shape == (300, 64)
    assert data.d_out == 10 and data.y_train.dtype == torch.long
    varying = data.x_train.std(0) > 0.5
    assert torch.allclose(data.x_train.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(data.x_train.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-4)


def test_fashion_mnist_missing_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(real_data, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(DataUnavailableError, match="apt-get install -y dataset-fashion-mnist"):
        load(FashionMNIST())


@pytest.mark.skipif(not real_data.FASHION_MNIST_DIR.exists(),
                    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)")
def test_fashion_mnist_subset():
    data = load(FashionMNIST(n_train=500, n_test=100, classes=4))
    assert data.x_train.shape == (500, 784) and data.x_test.shape == (100, 784)
    assert set(data.y_train.tolist()) <= {0, 1, 2, 3} and data.d_out == 4
