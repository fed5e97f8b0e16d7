"""PATE 2018 privacy analysis of 10,000 queries: a per-query scalar loop against the
vectorised analysis.

Random vote histograms of 250 teachers over 10 classes, Confident-GNMax with T=150,
sigma1=50, sigma2=40, a grid of Rényi orders. The baseline analyses one query at a time
with plain Python and SciPy scalars (the semantics of TF-Privacy's
research/pate_2018/core.py, written out here); ours is
``trustml_ref.privacy.pate.confident_gnmax_rdp`` on all queries at once. Both run here;
the script checks that the epsilons agree and prints the time ratio from this run.

Run: ``python benchmarks/pate_analysis.py [--queries 10000]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from trustml_ref.privacy import pate


def _log1mexp(x: float) -> float:
    return math.log1p(-math.exp(x)) if x < -math.log(2) else math.log(-math.expm1(x))


def scalar_rdp_gnmax(log_q: float, sigma: float, order: float) -> float:
    var = sigma**2
    if math.isinf(log_q):
        return 0.0
    independent = order / var
    mu2 = math.sqrt(var * -log_q)
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / var, mu2 / var
    if not (
        mu1 > order
        and mu2 > 1
        and -log_q > eps2
        and log_q
        <= (mu2 - 1) * eps2
        - mu2 * (math.log1p(1 / (mu1 - 1)) + math.log1p(1 / (mu2 - 1)))
    ):
        return independent
    log1q = _log1mexp(log_q)
    log_a = (order - 1) * (log1q - _log1mexp((log_q + eps2) * (1 - 1 / mu2)))
    log_b = (order - 1) * (eps1 - log_q / (mu1 - 1))
    return min(independent, np.logaddexp(log1q + log_a, log_q + log_b) / (order - 1))


def scalar_query(
    votes: np.ndarray,
    threshold: float,
    sigma1: float,
    sigma2: float,
    orders: np.ndarray,
) -> np.ndarray:
    top = int(np.argmax(votes))
    terms = [
        stats.norm.logsf(votes[top] - v, scale=math.sqrt(2) * sigma2)
        for j, v in enumerate(votes)
        if j != top
    ]
    m = max(terms)
    log_q = min(
        m + math.log(sum(math.exp(t - m) for t in terms)), math.log(1 - 1 / len(votes))
    )
    log_pr = stats.norm.logsf(threshold - round(max(votes)), scale=sigma1)
    log_q1 = min(log_pr, _log1mexp(log_pr))
    return np.array(
        [
            scalar_rdp_gnmax(log_q1, math.sqrt(2) * sigma1, a)
            + math.exp(log_pr) * scalar_rdp_gnmax(log_q, sigma2, a)
            for a in orders
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    votes = np.vstack(
        [
            rng.multinomial(250, rng.dirichlet(np.full(10, a)))
            for a in rng.uniform(0.05, 2, args.queries)
        ]
    ).astype(float)
    orders = np.concatenate(
        [np.linspace(1.1, 10.9, 99), np.arange(11, 101), [128, 256, 512]]
    )
    params = dict(threshold=150.0, sigma1=50.0, sigma2=40.0)

    start = time.perf_counter()
    loop_total = sum(
        scalar_query(v, params["threshold"], params["sigma1"], params["sigma2"], orders)
        for v in votes
    )
    t_loop = time.perf_counter() - start
    start = time.perf_counter()
    ours_total = pate.confident_gnmax_rdp(
        votes, params["threshold"], params["sigma1"], params["sigma2"], orders
    )
    t_ours = time.perf_counter() - start

    eps_loop, _ = pate.eps_from_rdp(orders, loop_total, 1e-5)
    eps_ours, order = pate.eps_from_rdp(orders, ours_total, 1e-5)
    assert math.isclose(eps_loop, eps_ours, rel_tol=1e-9), (eps_loop, eps_ours)
    print(
        f"{args.queries} queries x {len(orders)} orders: eps = {eps_ours:.4f} at order "
        f"{order:g} (delta = 1e-5), both ways"
    )
    print(
        f"per-query loop {t_loop:8.2f} s   vectorised {t_ours:8.3f} s   speed-up "
        f"x{t_loop / t_ours:,.0f}"
    )


if __name__ == "__main__":
    main()
