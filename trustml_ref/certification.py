r"""Certificates shared by several chapters: confidence bounds, and from differential
privacy to robustness.

- :func:`clopper_pearson`: exact one-sided binomial confidence bounds (finite shots or
  samples).
- :func:`dp_certifies`: the DP robustness condition (Lecuyer et al. 2019): if the
  randomised classifier is :math:`(\varepsilon,\delta)`-DP for every perturbation in the
  ball, then :math:`e^{-\varepsilon}(p_a - \delta) > e^{\varepsilon} p_b + \delta` keeps
  its prediction there.
- Randomised smoothing with Gaussian noise, :math:`g(x) = \arg\max_c P(f(x + \mathcal
  N(0, \sigma^2 I)) = c)`, certified in :math:`\ell_2`:
  :func:`gaussian_smoothing_radius` (the tight radius of Cohen et al. 2019),
  :func:`dp_smoothing_radius` (the same noise certified through the Gaussian mechanism's
  privacy profile) and :func:`smoothed_certify` (Monte Carlo prediction and radius with
  confidence :math:`1-\alpha`).

Derived in ``notebooks/p5_certified_robustness``; the quantum chapter uses the DP
condition with :math:`\delta = 0`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy import stats

from trustml_ref.checks import check_positive
from trustml_ref.privacy.gaussian import gaussian_delta


def clopper_pearson(
    successes: torch.Tensor, trials: int, alpha: float, side: str
) -> torch.Tensor:
    """One-sided Clopper-Pearson bound at level ``alpha``: ``side="lower"`` or
    ``"upper"``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    k = torch.as_tensor(successes, dtype=torch.float64).numpy()
    if side == "lower":
        bound = stats.beta.ppf(alpha, k, trials - k + 1)
        bound[k == 0] = 0.0
    elif side == "upper":
        bound = stats.beta.ppf(1 - alpha, k + 1, trials - k)
        bound[k == trials] = 1.0
    else:
        raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")
    return torch.as_tensor(bound, dtype=torch.float64)


def _check_pair(
    p_a: torch.Tensor, p_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    p_a = torch.as_tensor(p_a, dtype=torch.float64)
    p_b = torch.as_tensor(p_b, dtype=torch.float64)
    if p_a.shape != p_b.shape:
        raise ValueError(
            f"p_a and p_b must have the same shape, got {tuple(p_a.shape)} and "
            f"{tuple(p_b.shape)}"
        )
    for name, p in (("p_a", p_a), ("p_b", p_b)):
        if torch.isnan(p).any() or (p < 0).any() or (p > 1).any():
            raise ValueError(f"{name} must be probabilities in [0, 1]")
    if (p_a + p_b > 1 + 1e-6).any():  # float32 inputs round
        raise ValueError(
            "p_a + p_b must be at most 1 (they bound two different classes)"
        )
    return p_a, p_b


def dp_certifies(
    p_a: torch.Tensor, p_b: torch.Tensor, epsilon: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    r"""The DP robustness condition, elementwise (broadcasts):

    .. math:: e^{-\varepsilon}(p_a - \delta) > e^{\varepsilon} p_b + \delta .

    ``p_a`` bounds the top class's probability from below, ``p_b`` every other class's
    from above.
    """
    p_a, p_b = _check_pair(p_a, p_b)
    epsilon = torch.as_tensor(epsilon, dtype=torch.float64)
    delta = torch.as_tensor(delta, dtype=torch.float64)
    if (epsilon < 0).any() or (delta < 0).any():
        raise ValueError("epsilon and delta must be >= 0")
    return torch.exp(-epsilon) * (p_a - delta) > torch.exp(epsilon) * p_b + delta


def gaussian_smoothing_radius(
    p_a: torch.Tensor, sigma: float, p_b: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The tight :math:`\ell_2` radius of Gaussian smoothing (Cohen et al. 2019, Thm
    1):

    .. math:: R = \tfrac{\sigma}{2}\big(\Phi^{-1}(p_a) - \Phi^{-1}(p_b)\big),

    with :math:`p_b = 1 - p_a` by default (then :math:`R = \sigma\Phi^{-1}(p_a)`); 0
    where :math:`p_a \le p_b` (nothing certified).
    """
    sigma = check_positive(sigma, "sigma")
    p_a = torch.as_tensor(p_a, dtype=torch.float64)
    p_a, p_b = _check_pair(p_a, 1 - p_a if p_b is None else p_b)
    ndtri = torch.special.ndtri
    radius = sigma / 2 * (ndtri(p_a) - ndtri(p_b))
    return torch.where(p_a > p_b, radius, torch.zeros_like(radius))


def dp_smoothing_radius(
    p_a: torch.Tensor,
    sigma: float,
    p_b: torch.Tensor | None = None,
    *,
    n_epsilons: int = 256,
    iterations: int = 50,
) -> torch.Tensor:
    r"""The largest :math:`\ell_2` radius :math:`r` that :func:`dp_certifies` for some
    :math:`\varepsilon`, with :math:`\delta(\varepsilon)` the exact privacy profile of
    the Gaussian mechanism of sensitivity :math:`r`
    (:func:`~trustml_ref.privacy.gaussian.gaussian_delta`).

    Adding :math:`\mathcal N(0,\sigma^2 I)` to the input is that mechanism for any two
    inputs at distance :math:`\le r`, and :math:`\delta` grows with :math:`r`, so the
    certified set is an interval :math:`[0, R)`: bisection on :math:`r`, a grid over
    :math:`\varepsilon \in [0, \tfrac12\ln(p_a/p_b)]` (beyond it the condition fails at
    :math:`\delta = 0`). Never above :func:`gaussian_smoothing_radius`, which is tight;
    0 where :math:`p_a \le p_b`.
    """
    sigma = check_positive(sigma, "sigma")
    p_a = torch.as_tensor(p_a, dtype=torch.float64)
    p_a, p_b = _check_pair(p_a, 1 - p_a if p_b is None else p_b)
    flat_a, flat_b = p_a.reshape(-1, 1), p_b.reshape(-1, 1)
    eps_max = 0.5 * torch.log(flat_a / flat_b.clamp_min(1e-300)).clamp_min(0.0)
    epsilons = eps_max * torch.linspace(0, 1, n_epsilons, dtype=torch.float64)
    lo = torch.zeros_like(flat_a)
    # no valid certificate exceeds it
    hi = gaussian_smoothing_radius(flat_a, sigma, flat_b) * (1 + 1e-6) + 1e-12
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = dp_certifies(
            flat_a, flat_b, epsilons, gaussian_delta(epsilons, sigma, mid)
        ).any(dim=1, keepdim=True)
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    return lo.reshape(p_a.shape)


def smoothed_certify(
    classify: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma: float,
    n_classes: int,
    *,
    n_select: int = 100,
    n_estimate: int = 1000,
    alpha: float = 0.001,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Prediction, lower confidence bound :math:`\underline{p_a}` and certified
    :math:`\ell_2` radius of the Gaussian-smoothed ``classify`` at each row of ``x``
    (Cohen et al. 2019, CERTIFY).

    ``classify`` maps a batch ``(N, d)`` to class indices ``(N,)``. ``n_select`` noisy
    copies pick the candidate class; ``n_estimate`` fresh copies give
    :math:`\underline{p_a}` (one-sided Clopper-Pearson at level ``alpha``); the radius
    is :math:`\sigma\Phi^{-1}(\underline{p_a})`. Where :math:`\underline{p_a} \le 1/2`
    the prediction is ``-1`` (abstain) and the radius 0. With probability at least
    :math:`1-\alpha` per example, a returned class is the smoothed classifier's
    prediction everywhere within its radius.
    """
    sigma = check_positive(sigma, "sigma")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (batch, features), got {tuple(x.shape)}")
    if n_select < 1 or n_estimate < 1:
        raise ValueError(
            f"n_select and n_estimate must be >= 1, got {n_select} and {n_estimate}"
        )

    def counts(n: int) -> torch.Tensor:
        out = torch.zeros(x.shape[0], n_classes, dtype=torch.long)
        per_batch = max(1, batch_size // n)
        for start in range(0, x.shape[0], per_batch):
            rows = x[start : start + per_batch]
            noisy = rows.repeat_interleave(n, 0)
            noisy = noisy + sigma * torch.randn(
                noisy.shape, generator=generator, dtype=x.dtype
            )
            labels = classify(noisy).reshape(len(rows), n)
            if labels.min() < 0 or labels.max() >= n_classes:
                raise ValueError(
                    f"classify must return class indices in [0, {n_classes}), got "
                    f"{labels.min()}..{labels.max()}"
                )
            out[start : start + len(rows)] = torch.nn.functional.one_hot(
                labels, n_classes
            ).sum(1)
        return out

    with torch.no_grad():
        candidate = counts(n_select).argmax(1)
        hits = counts(n_estimate).gather(1, candidate[:, None]).squeeze(1)
    p_lower = clopper_pearson(hits, n_estimate, alpha, "lower")
    radius = gaussian_smoothing_radius(p_lower, sigma)  # 0 where p_lower <= 1/2
    return (
        torch.where(p_lower > 0.5, candidate, torch.full_like(candidate, -1)),
        p_lower,
        radius,
    )
