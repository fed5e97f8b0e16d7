"""Certified robustness from quantum differential privacy, exact and from finite shots.

If every outcome probability is :math:`e^{\\varepsilon}`-stable under :math:`\\tau`-perturbations, then
:math:`y_{\\max} > e^{2\\varepsilon} y_{\\text{second}}` keeps the prediction for every state within
:math:`\\tau`. With :math:`\\varepsilon = \\ln(1 + (\\kappa-1)\\tau)` this gives the radius
:math:`\\tau^* = (\\sqrt{y_{\\max}/y_{\\text{second}}} - 1)/(\\kappa - 1)`.
Derived in ``notebooks/04_quantum_certified_robustness``. :func:`trace_distance_radius` is the
certificate from the trace distance alone, the noise-free baseline the DP certificate is compared with.
"""
from __future__ import annotations

import math

import torch

from trustml_ref.certification import clopper_pearson


def _check_probs(probs: torch.Tensor) -> torch.Tensor:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (batch, classes >= 2), got {tuple(probs.shape)}")
    if (probs < 0).any() or (probs.sum(1) > 1 + 1e-9).any():
        raise ValueError("probs must be non-negative with rows summing to at most 1")
    return probs


def _radius(top: torch.Tensor, second: torch.Tensor, kappa: float) -> torch.Tensor:
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa!r}")
    if math.isinf(kappa):
        return torch.zeros_like(top)
    with torch.no_grad():
        ratio_root = torch.sqrt(top / second.clamp_min(1e-300))
        if kappa == 1:  # every state gives the same output distribution
            return torch.where(top > second, torch.full_like(top, math.inf), torch.zeros_like(top))
        return ((ratio_root - 1) / (kappa - 1)).clamp_min(0.0).clamp_max(1.0)


def certified_radius(probs: torch.Tensor, kappa: float) -> torch.Tensor:
    """Trace-distance radius per example, shape ``(batch,)``, from exact class probabilities.

    Capped at 1 (the largest trace distance); 0 where the top two classes tie.
    """
    probs = _check_probs(probs)
    top2 = probs.topk(2, dim=1).values
    return _radius(top2[:, 0], top2[:, 1], kappa)


def trace_distance_radius(probs: torch.Tensor, contraction: float = 1.0) -> torch.Tensor:
    r"""Trace-distance radius per example from the trace distance alone, shape ``(batch,)``.

    For outcome operators :math:`0 \le M_a, M_b` with :math:`M_a + M_b \le I` and states at trace
    distance :math:`T`, :math:`(p_a - q_a) - (p_b - q_b) \le 2T` (the Helstrom bound, primer p6). The
    circuit's noise shrinks trace distances by ``contraction`` at most (1 for any channel, by data
    processing; exactly :math:`1 - p` for global depolarising noise of replacement :math:`p`), so the
    prediction is kept for every input within :math:`\tau = (y_{\max} - y_{\text{second}}) / (2\,
    \text{contraction})`, capped at 1. With ``contraction = 1`` on noiseless probabilities this is the
    noise-free certificate; with ``1 - p`` on globally depolarised probabilities it equals it at every
    :math:`p`. Tight for a binary read-out.
    """
    probs = _check_probs(probs)
    if not 0 < contraction <= 1:
        raise ValueError(f"contraction must lie in (0, 1], got {contraction!r}")
    top2 = probs.topk(2, dim=1).values
    return ((top2[:, 0] - top2[:, 1]) / (2 * contraction)).clamp(0.0, 1.0)


def shot_certified_radius(
    counts: torch.Tensor, kappa: float, alpha: float = 0.05, n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and radius from measured ``counts`` (batch, outcomes), valid with probability ``1 - alpha``.

    The first ``n_classes`` outcomes are the classes (default: all); any further outcomes belong to
    no class but count as shots. The prediction is the most frequent class. A lower Clopper-Pearson
    bound on its probability and upper bounds on every other class, each at level
    ``alpha / n_classes`` (Bonferroni), replace the exact probabilities in :func:`certified_radius`;
    where the bounds overlap the radius is 0 (abstain).
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 2 or (counts < 0).any():
        raise ValueError(f"counts must be a non-negative (batch, outcomes) array, got shape {tuple(counts.shape)}")
    n_classes = counts.shape[1] if n_classes is None else n_classes
    if not 2 <= n_classes <= counts.shape[1]:
        raise ValueError(f"n_classes must lie in [2, {counts.shape[1]}], got {n_classes}")
    trials = counts.sum(1)
    if not torch.all(trials == trials[0]) or trials[0] < 1:
        raise ValueError("every row of counts must sum to the same positive number of shots")
    n, classes = int(trials[0]), counts[:, :n_classes]
    level = alpha / n_classes
    prediction = classes.argmax(1)
    lower = clopper_pearson(classes.gather(1, prediction[:, None]).squeeze(1), n, level, "lower")
    upper = clopper_pearson(classes, n, level, "upper").scatter(1, prediction[:, None], 0.0).max(1).values
    radius = _radius(lower, upper, kappa)
    return prediction, torch.where(lower > upper, radius, torch.zeros_like(radius))


def amplitude_input_radius(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """:math:`\\ell_2` radius in feature space that stays within trace distance ``tau`` under amplitude encoding.

    For :math:`|\\psi(x)\\rangle = x/\\|x\\|`, the trace distance of two pure states is :math:`\\sin` of
    the angle between the vectors, and :math:`\\sin\\angle(x, x+\\delta) \\le \\|\\delta\\|_2/\\|x\\|_2`;
    so :math:`\\|\\delta\\|_2 \\le \\tau\\|x\\|_2` suffices.
    """
    return torch.as_tensor(tau, dtype=torch.float64) * x.to(torch.float64).norm(dim=-1)
