"""Real data sets read from packages installed offline (no downloads at run time)."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from learnmech.data.base import Dataset, register
from learnmech.errors import DataUnavailableError
from learnmech.system import Digits, FashionMNIST

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _standardized(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale each feature with the training split's mean and std."""
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)
    return (x_train - mean) / std, (x_test - mean) / std


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
        x_train, x_test = _standardized(x_train, x_test)
    return Dataset(x_train, y[tr], x_test, y[te], task="classification", n_classes=10)


def _idx(path: Path) -> np.ndarray:
    """Parse a gzipped IDX file (the MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@lru_cache(maxsize=2)
def fashion_mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` and labels ``(n,)`` of split ``"train"`` or ``"t10k"``
    (read-only arrays, read once per process)."""
    images = FASHION_MNIST_DIR / f"{split}-images-idx3-ubyte.gz"
    labels = FASHION_MNIST_DIR / f"{split}-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise DataUnavailableError(
            f"Fashion-MNIST is not installed (looked for {images}). Install it with "
            "`apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu)."
        )
    return _idx(images), _idx(labels)


@register("fashion_mnist")
def fashion_mnist(spec: FashionMNIST) -> Dataset:
    """A seeded subset of Fashion-MNIST, pixels scaled to [0, 1] (then standardized)."""
    g = np.random.default_rng(spec.seed)
    parts = []
    for split, n in (("train", spec.n_train), ("t10k", spec.n_test)):
        images, labels = fashion_mnist_arrays(split)
        keep = np.nonzero(labels < spec.classes)[0]
        pick = g.choice(keep, size=min(n, keep.size), replace=False)
        parts.append((torch.tensor(images[pick].reshape(len(pick), 28 * 28) / 255.0,
                                   dtype=torch.float32),
                      torch.tensor(labels[pick], dtype=torch.long)))
    (x_train, y_train), (x_test, y_test) = parts
    if spec.standardize:
        x_train, x_test = _standardized(x_train, x_test)
    return Dataset(x_train, y_train, x_test, y_test, task="classification",
                   n_classes=spec.classes)
