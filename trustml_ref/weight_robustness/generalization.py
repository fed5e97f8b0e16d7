"""Generalisation of the weight-perturbed class: a Rademacher bound by peeling and a
margin bound.

Derived in ``notebooks/05_weight_perturbation``. The perturbed network :math:`\\hat W`
has rows of :math:`\\ell_1` norm at most :math:`\\beta_k + n_{k-1}\\varepsilon_k`, so
the perturbed class sits inside an :math:`\\ell_1`-row-norm ball with inflated radii,
and the bound of that ball applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from trustml_ref.weight_robustness.bounds import layer_norms, per_layer_epsilons
from trustml_ref.weight_robustness.network import Weights


def rademacher_bound(
    weights: Weights, eps: float | Sequence[float], x_max_inf: float, n_samples: int
) -> float:
    """Empirical Rademacher complexity bound of the perturbed class's logits
    :math:`\\{x\\mapsto \\hat f_y(x)\\}`.

    .. math:: \\hat{\\mathfrak R}_n \\le X_\\infty \\sqrt{\\frac{2\\ln(2
       n_0)}{n}}\\ \\prod_{k=1}^{L} 2\\,(\\beta_k + n_{k-1}\\varepsilon_k)

    with :math:`X_\\infty = \\max_i \\|x_i\\|_\\infty`: Massart's lemma for the input
    layer, then one factor :math:`2B_k` per layer (an :math:`\\ell_1` ball of radius
    :math:`B_k` over a 1-Lipschitz activation with :math:`\\sigma(0) = 0`, by the
    contraction lemma).
    """
    eps_list = per_layer_epsilons(eps, len(weights))
    if x_max_inf < 0 or n_samples < 1:
        raise ValueError(
            f"x_max_inf must be >= 0 and n_samples >= 1, got {x_max_inf} and "
            f"{n_samples}"
        )
    _, betas = layer_norms(weights)
    product = math.prod(
        2 * (float(b) + w.shape[1] * e) for b, w, e in zip(betas, weights, eps_list)
    )
    return (
        x_max_inf
        * math.sqrt(2 * math.log(2 * weights[0].shape[1]) / n_samples)
        * product
    )


def margin_generalization_bound(
    empirical_margin_loss: float,
    rademacher: float,
    n_classes: int,
    rho: float,
    n_samples: int,
    confidence: float = 0.05,
) -> float:
    """Multi-class margin bound (Mohri et al. 2018, Thm 9.2): with probability
    :math:`1-\\eta`,

    .. math:: \\Pr[\\text{error}] \\le \\hat L_\\rho + \\frac{4K}{\\rho}\\,\\mathfrak
       R_n + \\sqrt{\\frac{\\ln(1/\\eta)}{2n}},

    where :math:`\\hat L_\\rho` is the fraction of training points with worst margin
    below :math:`\\rho` and :math:`\\eta` = ``confidence``.
    """
    if rho <= 0 or not 0 < confidence < 1 or n_classes < 2:
        raise ValueError(
            f"need rho > 0, confidence in (0, 1), n_classes >= 2; got {rho}, "
            f"{confidence}, {n_classes}"
        )
    return (
        empirical_margin_loss
        + 4 * n_classes / rho * rademacher
        + math.sqrt(math.log(1 / confidence) / (2 * n_samples))
    )
