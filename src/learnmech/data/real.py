"""Real data sets read from packages installed offline (no downloads at run time)."""

from __future__ import annotations

import torch

from learnmech.data.base import Dataset, register
from learnmech.system import Digits


@register("digits")
def digits(spec: Digits) -> Dataset:
    """scikit-learn's bundled 8×8 digits, shuffled with ``spec.seed`` and split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(spec.seed))
    x, y = x[order], y[order]
    tr, te = slice(0, spec.n_train), slice(spec.n_train, spec.n_train + spec.n_test)
    x_train, x_test = x[tr], x[te]
    if spec.standardize:
        mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Dataset(x_train, y[tr], x_test, y[te], task="classification", n_classes=10)
