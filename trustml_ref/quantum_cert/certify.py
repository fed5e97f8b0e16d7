"""Certified robustness from quantum differential privacy, exact and from finite shots.

If every outcome probability is :math:`e^{\\varepsilon}`-stable under
:math:`\\tau`-perturbations, then :math:`y_{\\max} > e^{2\\varepsilon}
y_{\\text{second}}` keeps the prediction for every state within :math:`\\tau`. With
:math:`\\varepsilon = \\ln(1 + (\\kappa-1)\\tau)` this gives the radius :math:`\\tau^* =
(\\sqrt{y_{\\max}/y_{\\text{second}}} - 1)/(\\kappa - 1)`. Derived in
``notebooks/04_quantum_certified_robustness``. :func:`trace_distance_radius` is the
certificate from the trace distance alone, the noise-free baseline the DP certificate is
compared with.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from trustml_ref.certification import clopper_pearson
from trustml_ref.quantum_cert.channels import DTYPE


def _check_probs(probs: torch.Tensor) -> torch.Tensor:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"probs must have shape (batch, classes >= 2), got {tuple(probs.shape)}"
        )
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
            return torch.where(
                top > second, torch.full_like(top, math.inf), torch.zeros_like(top)
            )
        return ((ratio_root - 1) / (kappa - 1)).clamp_min(0.0).clamp_max(1.0)


def certified_radius(probs: torch.Tensor, kappa: float) -> torch.Tensor:
    """Trace-distance radius per example, shape ``(batch,)``, from exact class
    probabilities.

    Capped at 1 (the largest trace distance); 0 where the top two classes tie.
    """
    probs = _check_probs(probs)
    top2 = probs.topk(2, dim=1).values
    return _radius(top2[:, 0], top2[:, 1], kappa)


def _tv_radius(
    top: torch.Tensor, second: torch.Tensor, contraction: float
) -> torch.Tensor:
    if not 0 < contraction <= 1:
        raise ValueError(f"contraction must lie in (0, 1], got {contraction!r}")
    return ((top - second) / (2 * contraction)).clamp(0.0, 1.0)


def trace_distance_radius(
    probs: torch.Tensor, contraction: float = 1.0
) -> torch.Tensor:
    r"""Trace-distance radius per example from the trace distance alone, shape
    ``(batch,)``.

    For outcome operators :math:`0 \le M_a, M_b` with :math:`M_a + M_b \le I` and states
    at trace distance :math:`T`, :math:`(p_a - q_a) - (p_b - q_b) \le 2T` (the Helstrom
    bound, primer p6). The circuit's noise shrinks this by ``contraction`` at most (1
    for any channel, by data processing; exactly :math:`1 - p` for global depolarising
    noise of replacement :math:`p`; for any circuit, :func:`trace_distance_contraction`
    of its Heisenberg operators), so the prediction is kept for every input within
    :math:`\tau = (y_{\max} - y_{\text{second}}) / (2\,\text{contraction})`, capped at
    1. With ``contraction = 1`` on noiseless probabilities this is the noise-free
    certificate; with ``1 - p`` on globally depolarised probabilities it equals it at
    every :math:`p`.
    """
    probs = _check_probs(probs)
    top2 = probs.topk(2, dim=1).values
    return _tv_radius(top2[:, 0], top2[:, 1], contraction)


def trace_distance_contraction(
    heisenberg_operators: Sequence[torch.Tensor],
    n_classes: int | None = None,
) -> float:
    r""":math:`c = \max_{a \ne b} \tfrac12\big(\lambda_{\max} -
    \lambda_{\min}\big)(\tilde M_a - \tilde M_b)` over the first ``n_classes`` operators
    (default: all).

    Over states at trace distance :math:`\le \tau`, the margin :math:`y_a - y_b` of the
    noisy circuit moves by at most :math:`\tau(\lambda_{\max} - \lambda_{\min})(\tilde
    M_a - \tilde M_b) \le 2c\tau`, so ``trace_distance_radius(probs, c)`` certifies that
    circuit. :math:`c \le 1` always; :math:`c = 1 - p` for global depolarising noise on
    a projective read-out.
    """
    ops = [torch.as_tensor(m, dtype=DTYPE) for m in heisenberg_operators]
    n_classes = len(ops) if n_classes is None else n_classes
    if not 2 <= n_classes <= len(ops):
        raise ValueError(
            f"n_classes must lie in [2, {len(ops)}] (the number of operators), got "
            f"{n_classes}"
        )
    spread = 0.0
    for a, b in itertools.combinations(range(n_classes), 2):
        ev = torch.linalg.eigvalsh(ops[a] - ops[b])
        spread = max(spread, float(ev[-1] - ev[0]))
    return min(1.0, spread / 2)


def shot_class_bounds(
    counts: torch.Tensor,
    alpha: float = 0.05,
    n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prediction, a lower bound on its probability and an upper bound on every other
    class's, from measured ``counts`` (batch, outcomes); all hold together with
    probability ``1
    - alpha``.

    The first ``n_classes`` outcomes are the classes (default: all); any further
    outcomes belong to no class but count as shots. The prediction is the most frequent
    class, so it is chosen by the same counts: the bounds are one-sided Clopper-Pearson
    bounds, a lower and an upper one for *every* class, each at level ``alpha / (2 K)``
    (Bonferroni over all ``2 K``), whichever class is predicted. With exactly two
    outcomes the lower bound of one class is one minus the upper bound of the other, so
    the ``2 K = 4`` bounds are two events and ``alpha / 2`` suffices.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 2 or (counts < 0).any():
        raise ValueError(
            "counts must be a non-negative (batch, outcomes) array, got shape "
            f"{tuple(counts.shape)}"
        )
    n_classes = counts.shape[1] if n_classes is None else n_classes
    if not 2 <= n_classes <= counts.shape[1]:
        raise ValueError(
            f"n_classes must lie in [2, {counts.shape[1]}], got {n_classes}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    trials = counts.sum(1)
    if not torch.all(trials == trials[0]) or trials[0] < 1:
        raise ValueError(
            "every row of counts must sum to the same positive number of shots"
        )
    n, classes = int(trials[0]), counts[:, :n_classes]
    level = alpha / 2 if counts.shape[1] == 2 else alpha / (2 * n_classes)
    prediction = classes.argmax(1)
    lower = clopper_pearson(
        classes.gather(1, prediction[:, None]).squeeze(1), n, level, "lower"
    )
    upper = (
        clopper_pearson(classes, n, level, "upper")
        .scatter(1, prediction[:, None], 0.0)
        .max(1)
        .values
    )
    return prediction, lower, upper


def shot_certified_radius(
    counts: torch.Tensor,
    kappa: float,
    alpha: float = 0.05,
    n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and DP radius from measured ``counts``, valid with probability ``1 -
    alpha``.

    The bounds of :func:`shot_class_bounds` replace the exact probabilities in
    :func:`certified_radius`; where they overlap the radius is 0 (abstain).
    """
    prediction, lower, upper = shot_class_bounds(counts, alpha, n_classes)
    radius = _radius(lower, upper, kappa)
    return prediction, torch.where(lower > upper, radius, torch.zeros_like(radius))


def shot_trace_distance_radius(
    counts: torch.Tensor,
    contraction: float = 1.0,
    alpha: float = 0.05,
    n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and trace-distance radius from measured ``counts``, valid with
    probability ``1 - alpha``: :func:`trace_distance_radius` on the bounds of
    :func:`shot_class_bounds`."""
    prediction, lower, upper = shot_class_bounds(counts, alpha, n_classes)
    return prediction, _tv_radius(lower, upper, contraction)


def amplitude_input_radius(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """:math:`\\ell_2` radius in feature space that stays within trace distance ``tau``
    under amplitude encoding.

    For :math:`|\\psi(x)\\rangle = x/\\|x\\|`, the trace distance of two pure states is
    :math:`\\sin` of the angle between the vectors, and :math:`\\sin\\angle(x,
    x+\\delta) \\le \\|\\delta\\|_2/\\|x\\|_2`; so :math:`\\|\\delta\\|_2 \\le
    \\tau\\|x\\|_2` suffices.
    """
    return torch.as_tensor(tau, dtype=torch.float64) * x.to(torch.float64).norm(dim=-1)
