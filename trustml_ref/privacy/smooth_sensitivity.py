r"""Smooth sensitivity of PATE's data-dependent privacy cost and its sanitised release.

The data-dependent RDP :math:`\beta(n)` of Confident-GNMax depends on the private votes,
so it cannot be published as is. Papernot et al. (2018, Section 4 and Appendix B) bound
how much one teacher changes it: the local sensitivity at distance :math:`d`,
:math:`LS(d)`, is the largest change of :math:`\beta` between two neighbouring vote
histograms, one of them :math:`d` teacher changes away from ours. The smooth sensitivity
:math:`SS_b = \max_d e^{-bd} LS(d)` then scales Gaussian noise for releasing the cost
(the GNSS mechanism, their Theorem 23).

Semantics follow TF-Privacy's ``research/pate_2018/smooth_sensitivity.py`` (tests pin
its values): the GNMax cost :math:`\beta(q)` as a function of the bound :math:`q` is
data-dependent below the crossing point :math:`q_0` and data-independent above it; one
teacher moves :math:`q` at most to :math:`b_u(q)` or :math:`b_l(q)`. Two deliberate
differences: arrays cover every distance :math:`0..N` (TF stops at :math:`N-1`), and the
walk over distances is vectorised over queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from trustml_ref.checks import check_positive
from trustml_ref.privacy.pate import (
    ArrayLike,
    check_answered,
    check_votes,
    confident_gnmax_rdp,
    eps_from_rdp,
    log_pr_answered,
    log_q_gnmax,
    rdp_gnmax_bound,
    rdp_threshold,
)


def _check_order(order: float) -> float:
    if not (order > 1 and math.isfinite(order)):
        raise ValueError(f"order must be a finite Rényi order > 1, got {order!r}")
    return float(order)


def _check_teachers(votes: np.ndarray, num_teachers: int) -> int:
    if int(num_teachers) != num_teachers or num_teachers < 1:
        raise ValueError(
            f"num_teachers must be a positive integer, got {num_teachers!r}"
        )
    if np.any(votes.sum(axis=1) > num_teachers + 1e-9):
        raise ValueError(
            f"votes sum to more than num_teachers={num_teachers} in some query"
        )
    return int(num_teachers)


@lru_cache(maxsize=256)
def log_q0_gnmax(sigma: float, order: float) -> float:
    r""":math:`\ln q_0`: above it the data-independent :math:`\alpha/\sigma^2` beats
    Theorem 6's bound.

    Root of :math:`\beta_{\text{dep}}(\ln q) = \alpha/\sigma^2`, bracketed below the
    natural upper bound :math:`\min(-(1+1/\sigma)^2, -((\alpha-0.99)/\sigma)^2,
    -1/\sigma^2)` where Theorem 6's conditions hold.
    """
    sigma, order = check_positive(sigma, "sigma"), _check_order(order)
    independent = order / sigma**2

    def gap(lq: float) -> float:
        return (
            float(rdp_gnmax_bound(np.array([lq]), sigma, np.array([order]))[0, 0])
            - independent
        )

    upper = min(
        -((1 + 1 / sigma) ** 2), -(((order - 0.99) / sigma) ** 2), -1 / sigma**2
    )
    if gap(upper) < 0:
        return upper
    lower = 2 * upper
    while gap(lower) > 0:
        lower *= 1.5
        if lower < -1e4:
            raise ArithmeticError(
                f"no crossing point q0 found for sigma={sigma}, order={order}"
            )
    return float(optimize.brentq(gap, lower, upper))


def log_q1_gnmax(sigma: float, order: float, num_classes: int) -> float:
    r""":math:`\ln q_1 = \ln b_l(q_0)`: the smallest :math:`q` one teacher can reach
    from :math:`q_0`."""
    return float(
        _log_q_neighbours(np.array([log_q0_gnmax(sigma, order)]), sigma, num_classes)[
            1
        ][0]
    )


def beta_gnmax(log_q: ArrayLike, sigma: float, order: float) -> np.ndarray:
    r"""GNMax's RDP at one order as a function of :math:`\ln q`: Theorem 6 below
    :math:`q_0`, :math:`\alpha/\sigma^2` above; :math:`q = 0` costs 0."""
    lq = np.asarray(log_q, dtype=np.float64)
    out = np.full(lq.shape, order / sigma**2)
    below = lq < log_q0_gnmax(sigma, order)
    if np.any(below):
        finite = below & np.isfinite(lq)
        out[finite] = rdp_gnmax_bound(lq[finite], sigma, np.array([order]))[:, 0]
        out[below & np.isneginf(lq)] = 0.0
    return out


def _log_q_neighbours(
    log_q: np.ndarray, sigma: float, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\ln b_u(q), \ln b_l(q)` with :math:`b_{u,l}(q) =
    \frac{m-1}{2}\operatorname{erfc}(\operatorname{erfc}^{-1}(\frac{2q}{m-1}) \mp
    \frac1\sigma)`: the largest and smallest :math:`q` one teacher's change can produce
    (Proposition 13)."""
    core = special.erfcinv(2 * np.exp(log_q) / (num_classes - 1))
    with np.errstate(divide="ignore"):
        up = np.log(
            np.minimum(1.0, (num_classes - 1) / 2 * special.erfc(core - 1 / sigma))
        )
        low = np.log((num_classes - 1) / 2 * special.erfc(core + 1 / sigma))
    return up, low


def _local_sensitivity_at_q(
    log_q: np.ndarray, sigma: float, num_classes: int, order: float
) -> np.ndarray:
    r"""Algorithm 3: :math:`\max(\beta(b_u(q)) - \beta(q), \beta(q) - \beta(b_l(q)))`,
    with :math:`q` in :math:`[q_1, q_0]` replaced by :math:`q_1 = b_l(q_0)` (where the
    maximum is attained)."""
    lq0 = log_q0_gnmax(sigma, order)
    lq1 = log_q1_gnmax(sigma, order, num_classes)
    lq = np.asarray(log_q, dtype=np.float64)
    lq = np.where((lq >= lq1) & (lq <= lq0), lq1, lq)
    up, low = _log_q_neighbours(lq, sigma, num_classes)
    beta = beta_gnmax(lq, sigma, order)
    return np.maximum(
        beta_gnmax(up, sigma, order) - beta, beta - beta_gnmax(low, sigma, order)
    )


def local_sensitivity_gnmax(
    votes: ArrayLike, num_teachers: int, sigma: float, order: float
) -> np.ndarray:
    r"""Local sensitivity of GNMax's RDP at distance :math:`d = 0..N` per query, shape
    (queries, N+1).

    Algorithms 4–5 of Papernot et al. (2018): from the sorted histogram, move one vote
    at a time from the runner-up to the leader while :math:`q > q_0` (towards the
    data-dependent regime), or from the leader to the runner-up while :math:`q < q_1`;
    beyond that every distance reaches the plateau :math:`LS(q_1)`.
    """
    v = np.sort(check_votes(votes), axis=1)[:, ::-1].copy()
    n = _check_teachers(v, num_teachers)
    sigma, order = check_positive(sigma, "sigma"), _check_order(order)
    m = v.shape[1]
    lq0 = log_q0_gnmax(sigma, order)
    lq1 = log_q1_gnmax(sigma, order, m)
    plateau = _local_sensitivity_at_q(np.array([lq1]), sigma, m, order)[0]
    out = np.full((len(v), n + 1), plateau)
    lq = log_q_gnmax(v, sigma)
    out[:, 0] = _local_sensitivity_at_q(lq, sigma, m, order)
    go_left = lq > lq0
    active = go_left | (lq < lq1)
    for d in range(1, n + 1):
        active &= np.where(go_left, (lq > lq0) & (v[:, 1] > 0), lq < lq1)
        if not active.any():
            break
        step = np.where(go_left, 1.0, -1.0)[active]
        v[active, 0] += step
        v[active, 1] -= step
        v[active] = np.sort(v[active], axis=1)[:, ::-1]
        lq[active] = log_q_gnmax(v[active], sigma)
        out[active, d] = _local_sensitivity_at_q(lq[active], sigma, m, order)
    return out


def local_sensitivity_threshold(
    votes: ArrayLike, num_teachers: int, threshold: float, sigma1: float, order: float
) -> np.ndarray:
    r"""Local sensitivity of the threshold step's RDP at distance :math:`d = 0..N` per
    query.

    The cost depends on the votes only through the rounded maximum :math:`v`; at
    distance :math:`d` the maximum is :math:`v \pm d`, and one more teacher moves it by
    one: :math:`LS(d) = \max_{u \in \{v-d, v+d\}} \max_{u' = u \pm 1} |\beta_T(u') -
    \beta_T(u)|`.
    """
    v = check_votes(votes)
    n = _check_teachers(v, num_teachers)
    sigma1, order = check_positive(sigma1, "sigma1"), _check_order(order)
    counts = np.arange(n + 1, dtype=np.float64)
    cost = rdp_threshold(
        log_pr_answered(np.column_stack([counts, np.zeros(n + 1)]), threshold, sigma1),
        sigma1,
        [order],
    )[:, 0]
    step = np.abs(np.diff(cost))  # |beta(u+1) - beta(u)|, u = 0..n-1
    ls_at = np.maximum(
        np.concatenate([[-np.inf], step]), np.concatenate([step, [-np.inf]])
    )
    top = np.round(v.max(axis=1)).astype(int)
    d = np.arange(n + 1)
    out = np.zeros((len(v), n + 1))
    for sign in (1, -1):
        u = top[:, None] + sign * d[None, :]
        inside = (u >= 0) & (u <= n)
        out = np.maximum(out, np.where(inside, ls_at[np.clip(u, 0, n)], 0.0))
    return out


def check_conditions_gnmax(
    sigma: float, num_classes: int, order: float, grid: int = 4000
) -> tuple[bool, bool]:
    r"""Conditions C5 and C6 of Papernot et al. (2018, App. B.4.2) under which Algorithm
    3 bounds the local sensitivity: :math:`\beta(q)` is non-decreasing on :math:`(0,
    q_0)` (C5) and :math:`\beta(b_u(q)) - \beta(q)` is non-decreasing on :math:`(0,
    b_l(q_0))` (C6). Checked numerically on a log-spaced grid of :math:`q` (TF-Privacy
    differentiates symbolically); a False means the sanitised :math:`\varepsilon` must
    not be released.
    """
    sigma, order = check_positive(sigma, "sigma"), _check_order(order)
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    lq0 = log_q0_gnmax(sigma, order)

    def non_decreasing(values: np.ndarray) -> bool:
        return bool(
            np.all(np.diff(values) >= -1e-12 * np.maximum(1.0, np.abs(values[1:])))
        )

    def bound(lq: np.ndarray) -> np.ndarray:
        return rdp_gnmax_bound(lq, sigma, np.array([order]))[:, 0]

    lq = np.linspace(max(lq0 * 50, -700.0), lq0, grid, endpoint=False)
    c5 = non_decreasing(bound(lq))
    if not c5:
        return False, False
    lq1 = log_q1_gnmax(sigma, order, num_classes)
    lq = np.linspace(max(lq1 * 50, -700.0), lq1, grid, endpoint=False)
    up = _log_q_neighbours(lq, sigma, num_classes)[0]
    return c5, non_decreasing(bound(up) - bound(lq))


def smooth_sensitivity(local: ArrayLike, beta: float) -> np.ndarray:
    r""":math:`SS_b = \max_d e^{-bd}\,LS(d)` over the last axis."""
    ls = np.asarray(local, dtype=np.float64)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    return np.max(ls * np.exp(-beta * np.arange(ls.shape[-1])), axis=-1)


def rdp_gnss(beta: float, sigma: float, order: float) -> float:
    r"""RDP of releasing :math:`f(x) + SS_b(x)\,\mathcal N(0, \sigma^2)` (Theorem 23),
    valid for :math:`1 < \alpha < 1/(2b)`:

    :math:`\frac{\alpha e^{2b}}{\sigma^2} + \frac{b\alpha - \frac12\ln(1 - 2\alpha
    b)}{\alpha - 1}`.
    """
    sigma, order = check_positive(sigma, "sigma"), _check_order(order)
    if beta < 0 or (beta > 0 and not order < 1 / (2 * beta)):
        raise ValueError(
            "order must lie in (1, 1/(2 beta)) = (1, "
            f"{1 / (2 * beta) if beta else math.inf:.4g}), "
            f"got order={order}, beta={beta}"
        )
    return order * math.exp(2 * beta) / sigma**2 + (
        beta * order - 0.5 * math.log1p(-2 * order * beta)
    ) / (order - 1)


@dataclass(frozen=True)
class SanitizedEpsilon:
    """The data-dependent cost at one order and the quantities of its GNSS release."""

    order: float
    rdp: float  #: realised data-dependent RDP of all queries at ``order`` (private)
    beta: float  #: smoothness parameter b
    smooth_sensitivity: float  #: SS_b of the realised cost
    sigma_ss: float  #: noise multiplier of the release
    rdp_release: float  #: RDP cost of the release itself (Theorem 23)
    released_rdp: float  #: the noisy, publishable RDP
    eps: float  #: (eps, delta) of aggregation + release at ``order``
    # : the same with the release's mean plus two standard deviations (what TF-Privacy
    # optimises)
    eps_upper: float


def sanitized_epsilon(
    votes: ArrayLike,
    num_teachers: int,
    threshold: float,
    sigma1: float,
    sigma2: float,
    order: float,
    delta: float,
    rng: np.random.Generator,
    *,
    answered: ArrayLike,
    betas: ArrayLike | None = None,
) -> SanitizedEpsilon:
    r"""Release Confident-GNMax's realised data-dependent cost with smooth sensitivity
    (Papernot et al. 2018, §4).

    The cost released is the realised one of
    :func:`~trustml_ref.privacy.pate.confident_gnmax_rdp`: every query's threshold step
    plus GNMax on the ``answered`` ones (that mask is public). One teacher changes it by
    at most :math:`LS(d) = \sum_i LS^{\text{thr}}_i(d) + \sum_{i\ \text{answered}}
    LS^{\text{GNMax}}_i(d)`. (The expected cost, weighted by
    :math:`\Pr[\text{answered}]`, has no such bound: one teacher also moves that
    probability.) For each :math:`b` in ``betas`` (default :math:`[0.3,
    0.495)/\alpha`) the noise :math:`\sigma_{ss} = (\alpha e^{2b}/SS_b)^{1/3}` minimises
    the release cost plus two noise standard deviations, and the best :math:`b` is
    kept. Choosing :math:`b` with the private votes is what the paper does; it is not
    itself charged. :math:`\varepsilon` uses
    :func:`~trustml_ref.privacy.pate.eps_from_rdp`'s default conversion at ``order``.
    Raises when conditions C5–C6 (:func:`check_conditions_gnmax`) fail for ``sigma2``
    at ``order``: the bound is then not proven and nothing may be released.
    """
    v = check_votes(votes)
    n = _check_teachers(v, num_teachers)
    order = _check_order(order)
    mask = check_answered(answered, len(v))
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if not all(check_conditions_gnmax(sigma2, v.shape[1], order)):
        raise ValueError(
            f"conditions C5-C6 fail for sigma2={sigma2}, order={order}: the "
            "smooth-sensitivity bound "
            "does not hold; use a larger sigma2 or another order"
        )
    rdp = float(
        confident_gnmax_rdp(v, threshold, sigma1, sigma2, [order], answered=mask)[0]
    )
    ls = local_sensitivity_threshold(v, n, threshold, sigma1, order).sum(axis=0)
    if mask.any():
        ls = ls + local_sensitivity_gnmax(v[mask], n, sigma2, order).sum(axis=0)
    grid = (
        np.arange(0.3 / order, 0.495 / order, 0.01 / order)
        if betas is None
        else np.asarray(betas, float)
    )
    best = None
    for b in grid:
        ss = float(smooth_sensitivity(ls, b))
        sigma_ss = (order * math.exp(2 * b) / ss) ** (1 / 3)
        cost = rdp_gnss(b, sigma_ss, order)
        if best is None or cost + 2 * ss * sigma_ss < best[0]:
            best = (cost + 2 * ss * sigma_ss, b, ss, sigma_ss, cost)
    _, b, ss, sigma_ss, cost = best
    released = rdp + ss * sigma_ss * float(rng.standard_normal())

    def eps(total_rdp: float) -> float:
        return eps_from_rdp([order], [total_rdp], delta)[0]

    return SanitizedEpsilon(
        order,
        rdp,
        float(b),
        ss,
        sigma_ss,
        float(cost),
        released,
        eps(released + cost),
        eps(rdp + 2 * ss * sigma_ss + cost),
    )
