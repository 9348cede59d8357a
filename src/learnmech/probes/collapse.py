"""Neural-collapse metrics (Papyan, Han & Donoho 2020) of last-layer features.

Given features ``h_i`` ``(N, p)`` with labels ``y_i ∈ {0, …, C−1}`` and a linear classifier
``W`` ``(C, p)``, ``b`` ``(C,)``, with class means ``μ_c``, their mean ``μ_G = (1/C) Σ_c μ_c``
and centred means ``μ̃_c = μ_c − μ_G`` (columns of ``M̃``, ``(p, C)``):

* ``nc1`` = ``tr(Σ_W Σ_B⁺)/C`` with ``Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ`` and
  ``Σ_B = (1/C) M̃M̃ᵀ``: within-class variability relative to the spread of the means (→ 0);
* ``nc2_equinorm`` = ``std_c ‖μ̃_c‖ / mean_c ‖μ̃_c‖`` (→ 0);
* ``nc2_angle_std`` = std over pairs ``c ≠ c'`` of ``cos(μ̃_c, μ̃_c')`` (→ 0) and
  ``nc2_angle_dev`` = mean over pairs of ``|cos(μ̃_c, μ̃_c') + 1/(C−1)|`` (→ 0: a simplex);
* ``nc2_etf`` = ``‖G/‖G‖_F − E/‖E‖_F‖_F`` with ``G = M̃ᵀM̃`` and ``E = I − 11ᵀ/C``, the
  distance of the means' Gram matrix from a simplex equiangular tight frame (→ 0);
* ``nc3`` = ``‖Wᵀ/‖W‖_F − M̃/‖M̃‖_F‖_F²`` (self-duality, → 0);
* ``nc4`` = fraction of examples on which ``argmax_c (Wh + b)_c`` differs from the nearest
  class mean ``argmin_c ‖h − μ_c‖`` (→ 0).

The mean of the class means (not of the examples) is the centre, so the centred means
sum to zero exactly, as the vertices of a simplex do; on balanced data the two agree.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.probes.base import Batch, LossFn, dataset
from learnmech.probes.hidden import as_network, penultimate, readout
from learnmech.probes.registry import register_probe


def class_means(h: Tensor, y: Tensor, classes: int) -> Tensor:
    """Class means ``(C, p)`` of features ``h`` ``(N, p)`` (float64); every class must occur."""
    h = h.detach().double()
    counts = torch.bincount(y, minlength=classes)
    if counts.numel() > classes or bool((counts[:classes] == 0).any()):
        raise InputError("labels", counts.tolist(),
                         f"every class 0…{classes - 1} present, no other")
    sums = torch.zeros(classes, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, y, h)
    return sums / counts[:, None].to(h.dtype)


def collapse_metrics(
    h: Tensor, y: Tensor, w: Tensor, b: Tensor | None = None, classes: int | None = None
) -> dict[str, float]:
    """The metrics listed in the module docstring.

    Args:
        h: features ``(N, p)``.
        y: integer labels ``(N,)``.
        w: classifier ``(C, p)``.
        b: classifier bias ``(C,)`` or ``None``.
        classes: ``C`` (default ``w.shape[0]``).
    """
    c = classes or w.shape[0]
    if c < 2 or w.shape != (c, h.shape[1]):
        raise InputError("classifier", tuple(w.shape), f"a ({c}, {h.shape[1]}) matrix, C ≥ 2")
    h, w = h.detach().double(), w.detach().double()
    means = class_means(h, y, c)
    centred = means - means.mean(0)  # rows μ̃_c, (C, p)
    within = h - means[y]
    sigma_w = within.T @ within / h.shape[0]
    mt_pinv = torch.linalg.pinv(centred.T, rtol=1e-10)  # (C, p): pseudo-inverse of M̃
    nc1 = float(torch.trace(mt_pinv @ sigma_w @ mt_pinv.T))  # tr(Σ_W Σ_B⁺)/C

    norms = torch.linalg.norm(centred, dim=1)
    cos = (centred @ centred.T) / (norms[:, None] * norms[None, :])
    off = cos[~torch.eye(c, dtype=torch.bool, device=cos.device)]
    g = centred @ centred.T
    etf = torch.eye(c, dtype=g.dtype, device=g.device) - 1.0 / c
    self_dual = w / torch.linalg.norm(w) - centred / torch.linalg.norm(centred)

    logits = h @ w.T + (0.0 if b is None else b.detach().double())
    nearest = torch.cdist(h, means).argmin(1)
    return {
        "nc1": nc1,
        "nc2_equinorm": float(norms.std() / norms.mean()),
        "nc2_angle_std": float(off.std()),
        "nc2_angle_dev": float((off + 1.0 / (c - 1)).abs().mean()),
        "nc2_etf": float(torch.linalg.norm(g / torch.linalg.norm(g)
                                           - etf / torch.linalg.norm(etf))),
        "nc3": float(torch.linalg.norm(self_dual) ** 2),
        "nc4": float((logits.argmax(1) != nearest).double().mean()),
    }


@register_probe("neural_collapse")
class NeuralCollapse:
    """Neural-collapse metrics of a classifier's penultimate features on its training set.

    Observables ``collapse.<metric>`` for each metric of :func:`collapse_metrics`.
    """

    name = "neural_collapse"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        d = dataset(batch, self.name)
        if d.task != "classification" or d.n_classes is None:
            raise InputError("probe", self.name, "a classification data set")
        net = as_network(model)
        w, b = readout(net)
        values = collapse_metrics(penultimate(net, d.x_train), d.y_train, w, b, d.n_classes)
        return {f"collapse.{k}": v for k, v in values.items()}
