"""Generalisation of the weight-perturbed class: a Rademacher bound by peeling and a
margin bound.

Derived in ``notebooks/05_weight_perturbation``. The perturbed network :math:`\\hat W`
has rows of :math:`\\ell_1` norm at most :math:`\\beta_k + n_{k-1}\\varepsilon_k`, so
the perturbed class sits inside an :math:`\\ell_1`-row-norm ball with inflated radii,
and the bound of that ball applies. The ball's radii and the margin :math:`\\rho` read
off a trained network are chosen from the data; :func:`grid_value` rounds them onto a
finite grid fixed in advance, and the margin bound pays for the grid with a union bound
(``union_size``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from trustml_ref.weight_robustness.bounds import layer_norms, per_layer_epsilons
from trustml_ref.weight_robustness.network import Weights

GRID_BASE = 2**0.25  # grid points base**j, |j| <= GRID_LEVELS: 129 values per quantity
GRID_LEVELS = 64


def grid_value(value: float, *, up: bool) -> float:
    """``value`` rounded up (``up=True``) or down onto the grid
    :math:`\\{b^j : |j| \\le J\\}`, :math:`b` = ``GRID_BASE``, :math:`J` =
    ``GRID_LEVELS``; a value outside the grid's range raises ``ValueError``."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"value must be a finite number > 0, got {value!r}")
    exponent = math.log(value, GRID_BASE)
    j = math.ceil(exponent - 1e-12) if up else math.floor(exponent + 1e-12)
    if abs(j) > GRID_LEVELS:
        raise ValueError(
            f"value {value!r} lies outside the grid [{GRID_BASE**-GRID_LEVELS:.3g}, "
            f"{GRID_BASE**GRID_LEVELS:.3g}]"
        )
    return GRID_BASE**j


def perturbed_row_norms(weights: Weights, eps: float | Sequence[float]) -> list[float]:
    """:math:`B_k = \\beta_k + n_{k-1}\\varepsilon_k`, the largest row :math:`\\ell_1`
    norm of layer :math:`k` anywhere in the box."""
    eps_list = per_layer_epsilons(eps, len(weights))
    _, betas = layer_norms(weights)
    return [float(b) + w.shape[1] * e for b, w, e in zip(betas, weights, eps_list)]


def rademacher_bound(
    row_norms: Sequence[float], n_inputs: int, x_max_inf: float, n_samples: int
) -> float:
    """Rademacher complexity bound of the logits :math:`\\{x\\mapsto \\hat f_y(x)\\}` of
    every network whose layers have row :math:`\\ell_1` norms at most ``row_norms``
    :math:`B_1..B_L`, on inputs with :math:`\\|x\\|_\\infty \\le X_\\infty`.

    .. math:: \\mathfrak R_n \\le X_\\infty \\sqrt{\\frac{2\\ln(2
       n_0)}{n}}\\ 2^{L-1} \\prod_{k=1}^{L} B_k

    Massart's lemma for the input layer (a maximum over :math:`2 n_0` signed
    coordinates), a factor :math:`B_k` per layer (a linear function over an
    :math:`\\ell_1` ball), and a factor 2 for each of the :math:`L-1` activations
    (Ledoux-Talagrand contraction with an absolute value, :math:`\\sigma` 1-Lipschitz,
    :math:`\\sigma(0) = 0`). With :math:`X_\\infty` a bound on the input *domain* it
    bounds the expected complexity, which :func:`margin_generalization_bound` needs.
    """
    if x_max_inf < 0 or n_samples < 1 or n_inputs < 1 or not row_norms:
        raise ValueError(
            "need x_max_inf >= 0, n_samples >= 1, n_inputs >= 1 and at least one row "
            f"norm; got {x_max_inf}, {n_samples}, {n_inputs}, {list(row_norms)}"
        )
    if any(b < 0 for b in row_norms):
        raise ValueError(f"row_norms must be >= 0, got {list(row_norms)}")
    return (
        x_max_inf
        * math.sqrt(2 * math.log(2 * n_inputs) / n_samples)
        * 2 ** (len(row_norms) - 1)
        * math.prod(row_norms)
    )


def margin_generalization_bound(
    empirical_margin_loss: float,
    rademacher: float,
    n_classes: int,
    rho: float,
    n_samples: int,
    confidence: float = 0.05,
    union_size: int = 1,
) -> float:
    """Multi-class margin bound (Mohri et al. 2018, Thm 9.2): with probability
    :math:`1-\\eta`,

    .. math:: \\Pr[\\text{error}] \\le \\hat L_\\rho + \\frac{4K}{\\rho}\\,\\mathfrak
       R_n + \\sqrt{\\frac{\\ln(N/\\eta)}{2n}},

    where :math:`\\hat L_\\rho` is the fraction of training points with worst margin
    below :math:`\\rho`, :math:`\\eta` = ``confidence`` and :math:`N` = ``union_size``,
    the number of (:math:`\\rho`, norm) grid points the bound must hold for at once
    when they are chosen after seeing the data (1 when fixed in advance).
    """
    if rho <= 0 or not 0 < confidence < 1 or n_classes < 2 or union_size < 1:
        raise ValueError(
            "need rho > 0, confidence in (0, 1), n_classes >= 2, union_size >= 1; got "
            f"{rho}, {confidence}, {n_classes}, {union_size}"
        )
    return (
        empirical_margin_loss
        + 4 * n_classes / rho * rademacher
        + math.sqrt(math.log(union_size / confidence) / (2 * n_samples))
    )
