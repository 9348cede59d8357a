"""Representational similarity between two networks seen on the same inputs.

Every measure here is a function of the two linear kernels (Gram matrices)
``K = X Xᵀ`` and ``L = Y Yᵀ`` of representations ``X`` ``(n, p)`` and ``Y`` ``(n, q)`` of the
same ``n`` inputs, so a run only has to keep its Gram matrix (:class:`FeatureGram`) to
be compared later with any other run.

* **Linear CKA** (Kornblith et al. 2019): with ``H = I − 11ᵀ/n``,
  ``HSIC(K, L) = tr(KHLH)/(n−1)²`` and ``CKA = HSIC(K, L)/√(HSIC(K, K) HSIC(L, L))``,
  which equals ``‖Y_cᵀX_c‖_F² / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F)`` on centred features.
  It is biased upwards when ``p, q`` are not small compared with ``n``.
* **Debiased CKA** (Nguyen, Raghu & Kornblith 2021): the same ratio with the unbiased
  HSIC estimator of Song et al. (2012), with ``K̃ = K − diag(K)``::

      HSIC₁(K, L) = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))

  (an unbiased U-statistic, close to 0 for independent representations).
* **Mutual k-nearest-neighbour alignment** (Huh et al. 2024): the mean over inputs ``i``
  of ``|N_X(i) ∩ N_Y(i)| / k``, with ``N_X(i)`` the ``k`` nearest other inputs of ``i`` by
  cosine similarity in representation ``X``. Chance level is about ``k/(n−1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.probes.base import Batch, LossFn, splits
from learnmech.probes.hidden import as_network, penultimate
from learnmech.probes.registry import register_probe


def gram(x: Tensor) -> Tensor:
    """Linear kernel ``X Xᵀ`` (float64) of features ``x`` ``(n, p)``: shape ``(n, n)``."""
    x = x.detach().double()
    return x @ x.T


def _check_grams(k: Tensor, l: Tensor, minimum: int) -> None:
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape != l.shape:
        raise InputError("gram", tuple(k.shape), f"two square matrices of equal shape; got "
                         f"{tuple(k.shape)} and {tuple(l.shape)}")
    if k.shape[0] < minimum:
        raise InputError("gram", tuple(k.shape), f"at least {minimum} examples")


def center_gram(k: Tensor) -> Tensor:
    """``H K H`` with ``H = I − 11ᵀ/n`` (double centring)."""
    k = k.double()
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def _unbiased_parts(k: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``K̃ = K − diag(K)``, its row sums and its total: what ``HSIC₁`` needs of one kernel."""
    kt = k.double().clone()
    kt.fill_diagonal_(0.0)
    rows = kt.sum(1)
    return kt, rows, rows.sum()


def _hsic1(a: tuple[Tensor, Tensor, Tensor], b: tuple[Tensor, Tensor, Tensor], n: int) -> float:
    (kt, k_rows, k_sum), (lt, l_rows, l_sum) = a, b
    value = (kt * lt).sum() + k_sum * l_sum / ((n - 1) * (n - 2))
    return float((value - 2.0 / (n - 2) * (k_rows @ l_rows)) / (n * (n - 3)))


def hsic(k: Tensor, l: Tensor, unbiased: bool = False) -> float:
    """HSIC of two Gram matrices ``(n, n)``: biased ``tr(KHLH)/(n−1)²`` or Song's ``HSIC₁``."""
    _check_grams(k, l, 4 if unbiased else 2)
    n = k.shape[0]
    if unbiased:
        return _hsic1(_unbiased_parts(k), _unbiased_parts(l), n)
    return float((center_gram(k) * center_gram(l)).sum() / (n - 1) ** 2)


def cka(k: Tensor, l: Tensor, debiased: bool = False) -> float:
    """Linear CKA (``debiased=False``) or debiased CKA of two Gram matrices ``(n, n)``.

    Each kernel is centred (or stripped of its diagonal) once; NaN when a kernel has no
    variance (a debiased self-HSIC can also come out ≤ 0 on tiny samples).
    """
    _check_grams(k, l, 4 if debiased else 2)
    n = k.shape[0]
    if debiased:
        a, b = _unbiased_parts(k), _unbiased_parts(l)
        kl, kk, ll = _hsic1(a, b, n), _hsic1(a, a, n), _hsic1(b, b, n)
    else:
        kc, lc = center_gram(k), center_gram(l)
        kl, kk, ll = float((kc * lc).sum()), float((kc * kc).sum()), float((lc * lc).sum())
    if kk <= 0 or ll <= 0:
        return float("nan")
    return kl / (kk * ll) ** 0.5


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA from features ``x`` ``(n, p)`` and ``y`` ``(n, q)``:
    ``‖Y_cᵀX_c‖_F² / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F)``; cheaper than :func:`cka` when ``p, q ≪ n``."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InputError("features", (tuple(x.shape), tuple(y.shape)),
                         "two matrices with the same number of rows (examples)")
    xc = x.detach().double() - x.detach().double().mean(0)
    yc = y.detach().double() - y.detach().double().mean(0)
    num = torch.linalg.norm(yc.T @ xc) ** 2
    return float(num / (torch.linalg.norm(xc.T @ xc) * torch.linalg.norm(yc.T @ yc)))


def knn_sets(k: Tensor, neighbours: int) -> Tensor:
    """Indices ``(n, neighbours)`` of each input's nearest other inputs by cosine similarity,
    from a Gram matrix ``(n, n)``."""
    n = k.shape[0]
    if not 0 < neighbours < n:
        raise InputError("neighbours", neighbours, f"an integer in [1, {n - 1}]")
    norms = torch.diagonal(k.double()).clamp_min(1e-30).sqrt()
    cos = k.double() / norms[:, None] / norms[None, :]
    cos.fill_diagonal_(-float("inf"))
    return cos.topk(neighbours, dim=1).indices


def mutual_knn(k: Tensor, l: Tensor, neighbours: int = 10) -> float:
    """Mutual k-NN alignment of two Gram matrices ``(n, n)`` (in ``[0, 1]``)."""
    _check_grams(k, l, 3)
    a, b = knn_sets(k, neighbours), knn_sets(l, neighbours)
    n = k.shape[0]
    hit_a = torch.zeros(n, n, dtype=torch.bool, device=a.device).scatter_(1, a, True)
    hit_b = torch.zeros(n, n, dtype=torch.bool, device=b.device).scatter_(1, b, True)
    return float((hit_a & hit_b).sum(1).double().mean() / neighbours)


def alignment(k: Tensor, l: Tensor, neighbours: int = 10) -> dict[str, float]:
    """The three measures at once: ``linear_cka``, ``debiased_cka``, ``mutual_knn``."""
    return {
        "linear_cka": cka(k, l),
        "debiased_cka": cka(k, l, debiased=True),
        "mutual_knn": mutual_knn(k, l, neighbours),
    }


@register_probe("feature_gram")
class FeatureGram:
    """Gram matrix of the penultimate representation on a fixed set of inputs.

    The inputs are the first :attr:`n_inputs` test examples (training examples when the
    task has no test split), the same for every run on the same data, so the Gram
    matrices of two runs can be compared with :func:`alignment`. Observable
    ``feature_gram``: the ``(n, n)`` matrix flattened row-major (float64).
    """

    name = "feature_gram"
    n_inputs = 128

    def inputs(self, batch: Batch) -> Tensor:
        """The first :attr:`n_inputs` test inputs of ``batch`` (else training inputs)."""
        _, x, _ = splits(batch)[-1]
        return x[: self.n_inputs]

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> Tensor:
        return gram(penultimate(as_network(model), self.inputs(batch))).flatten()


def initial_gram(model: nn.Module, batch: Batch) -> Tensor:
    """Gram matrix ``(n, n)`` (float64) of ``model``'s penultimate features on the inputs
    :class:`FeatureGram` reads from ``batch``: for a network at initialization, the step-0
    ``feature_gram`` of its run, without training."""
    return gram(penultimate(as_network(model), FeatureGram().inputs(batch)))


def unflatten_gram(values: list[float] | float | Tensor) -> Tensor:
    """The ``(n, n)`` matrix of a stored ``feature_gram`` observable."""
    v = torch.as_tensor(values, dtype=torch.float64)
    n = round(v.numel() ** 0.5)
    if n * n != v.numel():
        raise InputError("feature_gram", v.numel(), "a square number of entries")
    return v.reshape(n, n)
