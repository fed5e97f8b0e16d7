"""PATE: noisy aggregation of teacher votes and its data-dependent Rényi DP analysis.

Semantics follow Papernot et al. (2018), "Scalable private learning with PATE", as
implemented in TF-Privacy's ``research/pate_2018/core.py`` (the tests pin reference
values computed with it); everything here is vectorised over queries and Rényi orders.
For a vote histogram :math:`n \\in \\mathbb N^K` per query:

- GNMax releases :math:`\\arg\\max_j (n_j + \\mathcal N(0, \\sigma^2))`; its
  data-independent RDP is :math:`\\alpha/\\sigma^2`; with :math:`q \\ge
  \\Pr[\\text{output} \\ne \\arg\\max n]` from a union bound (Proposition 7) the
  data-dependent bound of Theorem 6 applies where its conditions hold.
- Confident-GNMax first checks :math:`\\max_j n_j + \\mathcal N(0, \\sigma_1^2) \\ge T`
  (RDP of a mechanism of sensitivity 1) and answers with GNMax(:math:`\\sigma_2`) only
  then. Which queries were answered is released, so the cost of a run is the *realised*
  one, :math:`\\sum_i \\mathrm{RDP}_{\\text{threshold}} + \\sum_{\\text{answered}}
  \\mathrm{RDP}_{\\text{GNMax}}`; the *expected* cost (answers weighted by
  :math:`\\Pr[\\text{answered}]`) is a forecast made before the run, not a guarantee.
- RDP to :math:`(\\varepsilon,\\delta)`: :func:`eps_from_rdp` offers PATE's conversion
  (Mironov 2017: :math:`\\varepsilon = \\min_\\alpha \\mathrm{RDP}(\\alpha) +
  \\ln(1/\\delta)/(\\alpha-1)`) and the tighter one of Balle et al. (2020) that Opacus
  uses; they give different :math:`\\varepsilon` for the same curve. The default is
  Balle et al.'s, so that PATE and DP-SGD (Opacus) are converted alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special, stats

from trustml_ref.checks import check_positive

ArrayLike = Sequence[float] | np.ndarray


def check_votes(votes: ArrayLike) -> np.ndarray:
    """Vote histograms as a float array of shape (queries, classes >= 2), checked."""
    v = np.atleast_2d(np.asarray(votes, dtype=np.float64))
    if v.ndim != 2 or v.shape[1] < 2 or v.shape[0] == 0:
        raise ValueError(
            "votes must have shape (queries, classes >= 2) and be non-empty, got "
            f"{v.shape}"
        )
    if np.any(v < 0) or not np.all(np.isfinite(v)):
        raise ValueError("votes must be finite and non-negative")
    return v


def _check_orders(orders: ArrayLike) -> np.ndarray:
    a = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or np.any(a <= 1) or not np.all(np.isfinite(a)):
        raise ValueError(
            "orders must be a non-empty 1-D list of finite Rényi orders > 1"
        )
    return a


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """:math:`\\log(1 - e^x)` for :math:`x \\le 0`, stable at both ends."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x < -math.log(2), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def one_teacher_neighbours(votes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Every histogram one teacher's changed vote away from each row of ``votes``
    (one vote moved from class ``i`` to class ``j != i``, where ``n_i > 0``).

    Returns ``(owner, neighbours)``: ``neighbours[r]`` is a neighbour of
    ``votes[owner[r]]``. For brute-force checks of sensitivity bounds.
    """
    v = check_votes(votes)
    owners, rows = [], []
    for i in range(v.shape[1]):
        for j in range(v.shape[1]):
            if i != j:
                has = v[:, i] > 0
                w = v[has].copy()
                w[:, i] -= 1
                w[:, j] += 1
                owners.append(np.flatnonzero(has))
                rows.append(w)
    return np.concatenate(owners), np.vstack(rows)


def log_q_gnmax(votes: ArrayLike, sigma: float) -> np.ndarray:
    """Upper bound on :math:`\\ln\\Pr[\\text{GNMax} \\ne \\arg\\max n]` per query
    (Proposition 7):

    :math:`\\ln\\sum_{j\\ne j^*}\\Pr[\\mathcal N(0, 2\\sigma^2) \\ge n_{j^*} - n_j]`,
    capped at :math:`\\ln(1 - 1/K)`.
    """
    v, sigma = check_votes(votes), check_positive(sigma, "sigma")
    top = np.argmax(v, axis=1)
    gaps = v[np.arange(len(v)), top][:, None] - v
    logsf = stats.norm.logsf(gaps, scale=math.sqrt(2) * sigma)
    logsf[np.arange(len(v)), top] = -np.inf
    return np.minimum(special.logsumexp(logsf, axis=1), math.log(1 - 1 / v.shape[1]))


def rdp_gnmax_data_independent(sigma: float, orders: ArrayLike) -> np.ndarray:
    """:math:`\\alpha/\\sigma^2` for every order (Proposition 8)."""
    return _check_orders(orders) / check_positive(sigma, "sigma") ** 2


def rdp_gnmax(log_q: ArrayLike, sigma: float, orders: ArrayLike) -> np.ndarray:
    """Data-dependent RDP of GNMax given :math:`\\ln q` per query (Theorem 6), shape
    (queries, orders).

    With :math:`\\mu_2 = \\sigma\\sqrt{\\ln(1/q)}`, :math:`\\mu_1 = \\mu_2 + 1`,
    :math:`\\varepsilon_i = \\mu_i/\\sigma^2`: where :math:`\\alpha < \\mu_1`,
    :math:`\\mu_2 > 1`, :math:`q` lies in the theorem's range and :math:`\\ln(1/q) >
    \\varepsilon_2`, the bound :math:`\\frac{1}{\\alpha-1}\\ln\\big((1-q)A^{\\alpha-1} +
    qB^{\\alpha-1}\\big)` with :math:`A = (1-q)/(1 -
    (qe^{\\varepsilon_2})^{(\\mu_2-1)/\\mu_2})` and :math:`B =
    e^{\\varepsilon_1}/q^{1/(\\mu_1-1)}` is used when smaller than
    :math:`\\alpha/\\sigma^2`; :math:`q = 0` costs nothing.
    """
    sigma, a = check_positive(sigma, "sigma"), _check_orders(orders)
    lq = np.atleast_1d(np.asarray(log_q, dtype=np.float64))
    if np.any(lq > 0) or np.any(np.isnan(lq)):
        raise ValueError("log_q must be <= 0 (a log-probability)")
    var = sigma**2
    out = np.broadcast_to(a / var, (lq.size, a.size)).copy()
    zero = np.isneginf(lq)
    out[zero] = 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mu2 = np.sqrt(var * -lq)
        mu1 = mu2 + 1
        eps2 = mu2 / var
        valid = (
            (~zero)
            & (mu2 > 1)
            & (-lq > eps2)
            & (
                lq
                <= (mu2 - 1) * eps2
                - mu2 * (np.log1p(1 / (mu1 - 1)) + np.log1p(1 / (mu2 - 1)))
            )
        )
        dependent = rdp_gnmax_bound(np.where(zero, -1.0, lq), sigma, a)
        use = valid[:, None] & (mu1[:, None] > a[None, :])
    out = np.where(use, np.minimum(out, dependent), out)
    return out


def rdp_gnmax_bound(log_q: np.ndarray, sigma: float, orders: np.ndarray) -> np.ndarray:
    """Theorem 6's expression, shape (queries, orders), for finite ``log_q`` < 0 and
    without checking its conditions (callers do: :func:`rdp_gnmax` per query, the
    smooth-sensitivity analysis through :math:`q_0`)."""
    var = sigma**2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mu2 = np.sqrt(var * -log_q)
        mu1 = mu2 + 1
        eps1, eps2 = mu1 / var, mu2 / var
        log1q = _log1mexp(log_q)
        log_a = log1q - _log1mexp(np.minimum((log_q + eps2) * (1 - 1 / mu2), 0.0))
        log_b = eps1 - log_q / (mu1 - 1)
        am1 = (orders - 1)[None, :]
        return (
            np.logaddexp(
                log1q[:, None] + am1 * log_a[:, None],
                log_q[:, None] + am1 * log_b[:, None],
            )
            / am1
        )


def log_pr_answered(votes: ArrayLike, threshold: float, sigma1: float) -> np.ndarray:
    """:math:`\\ln\\Pr[\\max_j n_j + \\mathcal N(0, \\sigma_1^2) \\ge T]` per query
    (max vote rounded, as PATE 2018)."""
    v, sigma1 = check_votes(votes), check_positive(sigma1, "sigma1")
    return stats.norm.logsf(threshold - np.round(v.max(axis=1)), scale=sigma1)


def rdp_threshold(log_pr: ArrayLike, sigma1: float, orders: ArrayLike) -> np.ndarray:
    """Data-dependent RDP of the threshold check (sensitivity 1, hence GNMax's bound at
    :math:`\\sqrt2\\sigma_1`)."""
    lp = np.atleast_1d(np.asarray(log_pr, dtype=np.float64))
    return rdp_gnmax(
        np.minimum(lp, _log1mexp(lp)),
        math.sqrt(2) * check_positive(sigma1, "sigma1"),
        orders,
    )


def rdp_threshold_data_independent(sigma1: float, orders: ArrayLike) -> np.ndarray:
    """:math:`\\alpha/(2\\sigma_1^2)`."""
    return rdp_gnmax_data_independent(
        math.sqrt(2) * check_positive(sigma1, "sigma1"), orders
    )


def confident_gnmax_rdp(
    votes: ArrayLike,
    threshold: float,
    sigma1: float,
    sigma2: float,
    orders: ArrayLike,
    *,
    answered: ArrayLike | None = None,
    data_dependent: bool = True,
) -> np.ndarray:
    """Total RDP over all queries of Confident-GNMax, per order.

    With ``answered`` (the boolean mask the threshold step released, one entry per
    query) it is the realised cost :math:`\\sum_i \\mathrm{RDP}_{\\text{thr}} +
    \\sum_{i\\ \\text{answered}} \\mathrm{RDP}_{\\text{GNMax}}`, the cost of the run
    that happened. Without it, the expected cost :math:`\\sum_i
    \\mathrm{RDP}_{\\text{thr}} +
    \\Pr[\\text{answered}_i]\\,\\mathrm{RDP}_{\\text{GNMax}}`: a forecast before the
    run. Data-dependent values depend on the private votes and are not publishable as
    they are (:func:`~trustml_ref.privacy.smooth_sensitivity.sanitized_epsilon`).
    """
    step1, step2, p_answered = confident_gnmax_query_costs(
        votes, threshold, sigma1, sigma2, orders, data_dependent=data_dependent
    )
    weight = (
        p_answered
        if answered is None
        else check_answered(answered, len(p_answered)).astype(np.float64)
    )
    return (step1 + weight[:, None] * step2).sum(axis=0)


def confident_gnmax_query_costs(
    votes: ArrayLike,
    threshold: float,
    sigma1: float,
    sigma2: float,
    orders: ArrayLike,
    *,
    data_dependent: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: the threshold step's RDP and GNMax's RDP, each of shape (queries,
    orders), and :math:`\\Pr[\\text{answered}]` (queries,): the terms
    :func:`confident_gnmax_rdp` sums."""
    v = check_votes(votes)
    a = _check_orders(orders)
    lp = log_pr_answered(v, threshold, sigma1)
    if data_dependent:
        step1 = rdp_threshold(lp, sigma1, a)
        step2 = rdp_gnmax(log_q_gnmax(v, sigma2), sigma2, a)
    else:
        step1 = np.broadcast_to(
            rdp_threshold_data_independent(sigma1, a), (len(v), a.size)
        )
        step2 = np.broadcast_to(rdp_gnmax_data_independent(sigma2, a), (len(v), a.size))
    return step1, step2, np.exp(lp)


def check_answered(answered: ArrayLike, queries: int) -> np.ndarray:
    """The released mask of answered queries as a boolean array of length
    ``queries``, checked."""
    mask = np.asarray(answered)
    if mask.dtype != np.bool_ or mask.shape != (queries,):
        raise ValueError(
            f"answered must be a boolean array of shape ({queries},) (one entry per "
            f"query), got dtype {mask.dtype} and shape {mask.shape}"
        )
    return mask


def eps_from_rdp(
    orders: ArrayLike, rdp: ArrayLike, delta: float, conversion: str = "balle2020"
) -> tuple[float, float]:
    """:math:`(\\varepsilon, \\alpha^*)` from an RDP curve.

    ``"pate"`` (Mironov 2017, used by PATE 2018): :math:`\\min_\\alpha
    \\mathrm{RDP}(\\alpha) + \\ln(1/\\delta)/(\\alpha-1)`. ``"balle2020"`` (Balle et al.
    2020, Thm 21; Opacus's, and the default): :math:`\\min_\\alpha
    \\mathrm{RDP}(\\alpha) + \\ln((\\alpha-1)/\\alpha) - (\\ln\\delta +
    \\ln\\alpha)/(\\alpha-1)`, never larger.
    """
    a = _check_orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if r.shape != a.shape:
        raise ValueError(f"rdp must match orders in shape, got {r.shape} and {a.shape}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if conversion == "pate":
        eps = r - math.log(delta) / (a - 1)
    elif conversion == "balle2020":
        eps = np.maximum(
            r + np.log1p(-1 / a) - (math.log(delta) + np.log(a)) / (a - 1), 0.0
        )
    else:
        raise ValueError(
            f"conversion must be 'pate' or 'balle2020', got {conversion!r}"
        )
    best = int(np.argmin(eps))
    return float(eps[best]), float(a[best])


def calibrate_gnmax_sigma(
    queries: int,
    epsilon: float,
    delta: float,
    orders: ArrayLike,
    conversion: str = "balle2020",
) -> float:
    r"""The GNMax noise :math:`\sigma` whose data-independent cost over ``queries``
    answers, :math:`\mathrm{RDP}(\alpha) = Q\alpha/\sigma^2`, converts to exactly
    ``epsilon`` at ``delta``; it uses no private data."""
    if int(queries) != queries or queries < 1:
        raise ValueError(f"queries must be a positive integer, got {queries!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    a = _check_orders(orders)

    def gap(log_sigma: float) -> float:
        rdp = queries * rdp_gnmax_data_independent(math.exp(log_sigma), a)
        return eps_from_rdp(a, rdp, delta, conversion)[0] - epsilon

    lo, hi = -10.0, 15.0
    if gap(lo) < 0 or gap(hi) > 0:
        raise ValueError(
            f"epsilon={epsilon} is out of reach with these orders (the delta term "
            "alone is "
            f"{eps_from_rdp(a, np.zeros_like(a), delta, conversion)[0]:.3g})"
        )
    return math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12))


def gnmax(votes: ArrayLike, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """GNMax labels: :math:`\\arg\\max_j (n_j + \\mathcal N(0, \\sigma^2))` per
    query."""
    v, sigma = check_votes(votes), check_positive(sigma, "sigma")
    return np.argmax(v + rng.normal(0.0, sigma, v.shape), axis=1)


def confident_gnmax(
    votes: ArrayLike,
    threshold: float,
    sigma1: float,
    sigma2: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Confident-GNMax: ``(answered, labels)``; ``labels`` is -1 where the query was
    not answered."""
    v = check_votes(votes)
    answered = (
        v.max(axis=1) + rng.normal(0.0, check_positive(sigma1, "sigma1"), len(v))
        >= threshold
    )
    labels = np.where(answered, gnmax(v, sigma2, rng), -1)
    return answered, labels
