"""PATE aggregation and its privacy analysis (trustml_ref.privacy.pate) against TF-Privacy's semantics."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from booktools import ROOT

from trustml_ref.privacy import pate

REF = json.loads((ROOT / "tests" / "data" / "pate_reference.json").read_text())
ORDERS = np.array(REF["orders"])
VOTES = np.array(REF["votes"], dtype=float)


@pytest.mark.parametrize("sigma", REF["sigmas"])
def test_log_q_and_data_dependent_rdp_match_reference(sigma):
    log_q = pate.log_q_gnmax(VOTES, sigma)
    np.testing.assert_allclose(log_q, REF["logq"][str(sigma)], rtol=1e-6)
    np.testing.assert_allclose(pate.rdp_gnmax(log_q, sigma, ORDERS), REF["rdp"][str(sigma)], rtol=1e-6, atol=1e-300)


def test_threshold_and_total_cost_match_reference():
    log_pr = pate.log_pr_answered(VOTES, REF["threshold"], REF["sigma1"])
    np.testing.assert_allclose(log_pr, REF["logpr"], rtol=1e-6)
    np.testing.assert_allclose(pate.rdp_threshold(log_pr, REF["sigma1"], ORDERS), REF["rdp_threshold"], rtol=1e-6)
    total = pate.confident_gnmax_rdp(VOTES, REF["threshold"], REF["sigma1"], REF["sigma2"], ORDERS)
    np.testing.assert_allclose(total, REF["total_rdp"], rtol=1e-6)
    eps, order = pate.eps_from_rdp(ORDERS, total, 1e-5)
    assert eps == pytest.approx(REF["eps_delta_1e-5"][0], rel=1e-6) and order == REF["eps_delta_1e-5"][1]


def test_data_dependent_never_exceeds_data_independent():
    rng = np.random.default_rng(0)
    votes = np.vstack([rng.multinomial(250, rng.dirichlet(np.full(10, a))) for a in rng.uniform(0.05, 3, 300)]).astype(float)
    for sigma in (5.0, 20.0, 60.0):
        dependent = pate.rdp_gnmax(pate.log_q_gnmax(votes, sigma), sigma, ORDERS)
        assert np.all(dependent <= pate.rdp_gnmax_data_independent(sigma, ORDERS)[None, :] + 1e-15)
        assert np.all(dependent >= 0)
    total_dep = pate.confident_gnmax_rdp(votes, 150, 50.0, 40.0, ORDERS)
    total_ind = pate.confident_gnmax_rdp(votes, 150, 50.0, 40.0, ORDERS, data_dependent=False)
    assert np.all(total_dep <= total_ind + 1e-12)


def test_rdp_in_q_is_monotone_then_flat():
    # TF-Privacy's test: below q0 the bound decreases as q halves; above it, it is the data-independent one.
    sigma, order = 15.0, 32.0
    neg_log_q0 = 4.7
    halving = [pate.rdp_gnmax(-neg_log_q0 - math.log(2**k), sigma, [order])[0, 0] for k in range(4)]
    assert all(a > b for a, b in zip(halving[:-1], halving[1:]))
    flat = [pate.rdp_gnmax(math.log(math.exp(-neg_log_q0) + d), sigma, [order])[0, 0] for d in (0.1, 0.2, 0.3, 0.4)]
    assert flat == [order / sigma**2] * 4


def test_conversions_differ_and_balle_is_never_larger():
    rdp = ORDERS / (2 * 3.0**2)
    pate_eps, _ = pate.eps_from_rdp(ORDERS, rdp, 1e-5, "pate")
    balle_eps, _ = pate.eps_from_rdp(ORDERS, rdp, 1e-5, "balle2020")
    assert balle_eps < pate_eps
    deltas = [1e-60, 1e-6, 0.1, 0.999]
    eps = [pate.eps_from_rdp(ORDERS, rdp, d)[0] for d in deltas]
    assert eps == sorted(eps, reverse=True)


def test_aggregation_statistics():
    rng = np.random.default_rng(1)
    votes = np.tile([100.0, 90.0, 10.0], (20000, 1))
    labels = pate.gnmax(votes, 10.0, rng)
    # P[argmax = 0] = P[N(0, 2 sigma^2) < 10] for the two leading classes (the third never wins)
    from scipy import stats

    expected = stats.norm.cdf(10, scale=math.sqrt(2) * 10.0)
    assert abs((labels == 0).mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / len(labels))
    answered, labels = pate.confident_gnmax(votes, 110.0, 10.0, 10.0, rng)
    p_answer = stats.norm.sf(110 - 100, scale=10.0)
    assert abs(answered.mean() - p_answer) < 4 * math.sqrt(p_answer * (1 - p_answer) / len(answered))
    assert np.all(labels[~answered] == -1)
    assert math.isclose(math.exp(pate.log_pr_answered(votes[:1], 110.0, 10.0)[0]), p_answer, rel_tol=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: pate.log_q_gnmax(VOTES, -1.0), "sigma must be a positive number"),
        (lambda: pate.log_q_gnmax(np.zeros((0, 3)), 1.0), "non-empty"),
        (lambda: pate.log_q_gnmax([[1.0]], 1.0), r"classes >= 2"),
        (lambda: pate.log_q_gnmax([[1.0, -2.0]], 1.0), "non-negative"),
        (lambda: pate.rdp_gnmax([0.5], 1.0, ORDERS), "log_q must be <= 0"),
        (lambda: pate.rdp_gnmax([-1.0], 1.0, [1.0, 2.0]), "orders > 1"),
        (lambda: pate.eps_from_rdp(ORDERS, ORDERS[:-1], 1e-5), "must match orders"),
        (lambda: pate.eps_from_rdp(ORDERS, ORDERS, 1.5), r"delta must lie in \(0, 1\)"),
        (lambda: pate.eps_from_rdp(ORDERS, ORDERS, 1e-5, "opacus"), "conversion must be"),
        (lambda: pate.log_pr_answered(VOTES, 150, 0.0), "sigma1 must be a positive number"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
