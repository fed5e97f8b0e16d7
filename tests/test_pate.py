"""PATE aggregation and its privacy analysis (trustml_ref.privacy.pate) against
TF-Privacy's semantics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from booktools import ROOT

from trustml_ref.privacy import pate
from trustml_ref.privacy import smooth_sensitivity as smooth

REF = json.loads((ROOT / "tests" / "data" / "pate_reference.json").read_text())
ORDERS = np.array(REF["orders"])
VOTES = np.array(REF["votes"], dtype=float)


@pytest.mark.parametrize("sigma", REF["sigmas"])
def test_log_q_and_data_dependent_rdp_match_reference(sigma):
    log_q = pate.log_q_gnmax(VOTES, sigma)
    np.testing.assert_allclose(log_q, REF["logq"][str(sigma)], rtol=1e-6)
    np.testing.assert_allclose(
        pate.rdp_gnmax(log_q, sigma, ORDERS),
        REF["rdp"][str(sigma)],
        rtol=1e-6,
        atol=1e-300,
    )


def test_threshold_and_total_cost_match_reference():
    log_pr = pate.log_pr_answered(VOTES, REF["threshold"], REF["sigma1"])
    np.testing.assert_allclose(log_pr, REF["logpr"], rtol=1e-6)
    np.testing.assert_allclose(
        pate.rdp_threshold(log_pr, REF["sigma1"], ORDERS),
        REF["rdp_threshold"],
        rtol=1e-6,
    )
    total = pate.confident_gnmax_rdp(
        VOTES, REF["threshold"], REF["sigma1"], REF["sigma2"], ORDERS
    )
    np.testing.assert_allclose(total, REF["total_rdp"], rtol=1e-6)
    eps, order = pate.eps_from_rdp(ORDERS, total, 1e-5, "pate")
    assert (
        eps == pytest.approx(REF["eps_delta_1e-5"][0], rel=1e-6)
        and order == REF["eps_delta_1e-5"][1]
    )


def test_data_dependent_never_exceeds_data_independent():
    rng = np.random.default_rng(0)
    votes = np.vstack(
        [
            rng.multinomial(250, rng.dirichlet(np.full(10, a)))
            for a in rng.uniform(0.05, 3, 300)
        ]
    ).astype(float)
    for sigma in (5.0, 20.0, 60.0):
        dependent = pate.rdp_gnmax(pate.log_q_gnmax(votes, sigma), sigma, ORDERS)
        assert np.all(
            dependent <= pate.rdp_gnmax_data_independent(sigma, ORDERS)[None, :] + 1e-15
        )
        assert np.all(dependent >= 0)
    total_dep = pate.confident_gnmax_rdp(votes, 150, 50.0, 40.0, ORDERS)
    total_ind = pate.confident_gnmax_rdp(
        votes, 150, 50.0, 40.0, ORDERS, data_dependent=False
    )
    assert np.all(total_dep <= total_ind + 1e-12)


def test_rdp_in_q_is_monotone_then_flat():
    # TF-Privacy's test: below q0 the bound decreases as q halves; above it, it is the
    # data-independent one.
    sigma, order = 15.0, 32.0
    neg_log_q0 = 4.7
    halving = [
        pate.rdp_gnmax(-neg_log_q0 - math.log(2**k), sigma, [order])[0, 0]
        for k in range(4)
    ]
    assert all(a > b for a, b in zip(halving[:-1], halving[1:]))
    flat = [
        pate.rdp_gnmax(math.log(math.exp(-neg_log_q0) + d), sigma, [order])[0, 0]
        for d in (0.1, 0.2, 0.3, 0.4)
    ]
    assert flat == [order / sigma**2] * 4


def test_one_teacher_neighbours_move_one_vote():
    owner, w = pate.one_teacher_neighbours([[2, 0, 1], [0, 0, 3]])
    v = np.array([[2, 0, 1], [0, 0, 3]], float)[owner]
    assert len(w) == 4 + 2  # row 0: 2 donors x 2 targets; row 1: 1 donor x 2 targets
    assert np.all(w.sum(1) == v.sum(1)) and np.all(np.abs(w - v).sum(1) == 2)
    assert np.all(w >= 0) and len({tuple(r) for r in w[owner == 0]}) == 4


def test_realised_cost_counts_gnmax_on_answered_queries_only():
    T, s1, s2 = REF["threshold"], REF["sigma1"], REF["sigma2"]
    step1 = pate.rdp_threshold(pate.log_pr_answered(VOTES, T, s1), s1, ORDERS)
    step2 = pate.rdp_gnmax(pate.log_q_gnmax(VOTES, s2), s2, ORDERS)
    mask = np.arange(len(VOTES)) % 3 == 0
    np.testing.assert_allclose(
        pate.confident_gnmax_rdp(VOTES, T, s1, s2, ORDERS, answered=mask),
        step1.sum(0) + step2[mask].sum(0),
        rtol=1e-12,
    )
    none = np.zeros(len(VOTES), bool)
    every = np.ones(len(VOTES), bool)
    low, high = (
        pate.confident_gnmax_rdp(VOTES, T, s1, s2, ORDERS, answered=m)
        for m in (none, every)
    )
    expected = pate.confident_gnmax_rdp(VOTES, T, s1, s2, ORDERS)
    assert np.all(low <= expected) and np.all(expected <= high)
    ind = pate.confident_gnmax_rdp(
        VOTES, T, s1, s2, ORDERS, answered=mask, data_dependent=False
    )
    np.testing.assert_allclose(
        ind,
        len(VOTES) * ORDERS / (2 * s1**2) + mask.sum() * ORDERS / s2**2,
        rtol=1e-12,
    )
    for bad in (mask[:-1], mask.astype(int)):
        with pytest.raises(ValueError, match=r"answered must be a boolean array"):
            pate.confident_gnmax_rdp(VOTES, T, s1, s2, ORDERS, answered=bad)


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
    # P[argmax = 0] = P[N(0, 2 sigma^2) < 10] for the two leading classes (the third
    # never wins)
    from scipy import stats

    expected = stats.norm.cdf(10, scale=math.sqrt(2) * 10.0)
    assert abs((labels == 0).mean() - expected) < 4 * math.sqrt(
        expected * (1 - expected) / len(labels)
    )
    answered, labels = pate.confident_gnmax(votes, 110.0, 10.0, 10.0, rng)
    p_answer = stats.norm.sf(110 - 100, scale=10.0)
    assert abs(answered.mean() - p_answer) < 4 * math.sqrt(
        p_answer * (1 - p_answer) / len(answered)
    )
    assert np.all(labels[~answered] == -1)
    assert math.isclose(
        math.exp(pate.log_pr_answered(votes[:1], 110.0, 10.0)[0]),
        p_answer,
        rel_tol=1e-12,
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: pate.log_q_gnmax(VOTES, -1.0), "sigma must be a finite number > 0"),
        (lambda: pate.log_q_gnmax(np.zeros((0, 3)), 1.0), "non-empty"),
        (lambda: pate.log_q_gnmax([[1.0]], 1.0), r"classes >= 2"),
        (lambda: pate.log_q_gnmax([[1.0, -2.0]], 1.0), "non-negative"),
        (lambda: pate.rdp_gnmax([0.5], 1.0, ORDERS), "log_q must be <= 0"),
        (lambda: pate.rdp_gnmax([-1.0], 1.0, [1.0, 2.0]), "orders > 1"),
        (lambda: pate.eps_from_rdp(ORDERS, ORDERS[:-1], 1e-5), "must match orders"),
        (lambda: pate.eps_from_rdp(ORDERS, ORDERS, 1.5), r"delta must lie in \(0, 1\)"),
        (
            lambda: pate.eps_from_rdp(ORDERS, ORDERS, 1e-5, "opacus"),
            "conversion must be",
        ),
        (
            lambda: pate.log_pr_answered(VOTES, 150, 0.0),
            "sigma1 must be a finite number > 0",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- smooth sensitivity and the sanitised epsilon
# -------------------------------------------------

SS = REF["smooth_sensitivity"]


def _tf_range(votes: np.ndarray, n: int) -> np.ndarray:
    """Distances TF-Privacy's threshold loop covers (it stops one short of max(top, n -
    top))."""
    top = np.round(votes.max(axis=1)).astype(int)
    return np.maximum(top, n - top)


def test_local_sensitivity_gnmax_matches_tf_privacy_tests():
    # the two cases of TF-Privacy's smooth_sensitivity_test.py ("going right", "going
    # left")
    right = smooth.local_sensitivity_gnmax([10, 0, 0], 10, 0.5, 1.5)[0]
    np.testing.assert_allclose(
        right[:10],
        [3.13503646e-17, 1.60178280e-08, 5.90681786e-03] + [5.99981308] * 7,
        rtol=1e-8,
    )
    left = smooth.local_sensitivity_gnmax([1000, 500, 300, 200, 0], 2000, 250.0, 10.0)[
        0
    ]
    np.testing.assert_allclose(
        left[:2000],
        [0.0] * 298 + [2.77693450548e-7, 2.10853979548e-6] + [2.73113623988e-6] * 1700,
        rtol=1e-8,
    )
    # the plateau continues to distance N
    assert right[10] == right[9] and left[2000] == left[1999]


def test_local_sensitivity_threshold_matches_tf_privacy_tests():
    high = smooth.local_sensitivity_threshold([20, 10, 0], 30, 16, 2.0, 10.0)[0]
    expected = [0] * 3 + [
        1.48454129e-04,
        1.47826870e-02,
        3.94153241e-02,
        6.45775697e-02,
        9.01543247e-02,
        1.16054002e-01,
        1.42180452e-01,
        1.42180452e-01,
        1.48454129e-04,
        1.47826870e-02,
        3.94153241e-02,
        6.45775697e-02,
        9.01543266e-02,
        1.16054000e-01,
        1.42180452e-01,
        1.68302106e-01,
        1.93127860e-01,
    ]
    np.testing.assert_allclose(high[:20], expected, rtol=1e-7, atol=1e-12)
    # distance 20 reaches max = 0, a valid histogram TF's loop omits; beyond it nothing
    # is reachable
    assert high[20] == pytest.approx(high[19]) and np.all(high[21:] == 0)
    low = smooth.local_sensitivity_threshold([20, 10, 0], 30, 2, 2.0, 10.0)[0]
    np.testing.assert_allclose(
        low[:12],
        [
            1.60212079e-01,
            2.07021132e-01,
            2.07021132e-01,
            1.93127860e-01,
            1.68302106e-01,
            1.42180452e-01,
            1.16054002e-01,
            9.01543247e-02,
            6.45775697e-02,
            3.94153241e-02,
            1.47826870e-02,
            1.48454129e-04,
        ],
        rtol=1e-7,
    )


def test_local_sensitivities_match_reference_histograms():
    votes = np.array(SS["votes"])[:5]
    n, order = SS["num_teachers"], SS["order"]
    np.testing.assert_allclose(
        smooth.local_sensitivity_gnmax(votes, n, SS["sigma2"], order)[:, :n],
        SS["ls_gnmax_first5"],
        rtol=1e-6,
        atol=1e-300,
    )
    mine = smooth.local_sensitivity_threshold(
        votes, n, SS["threshold"], SS["sigma1"], order
    )
    for row, ref, stop in zip(mine, SS["ls_threshold_first5"], _tf_range(votes, n)):
        np.testing.assert_allclose(row[:stop], ref[:stop], rtol=1e-6, atol=1e-300)


def test_realised_cost_local_sensitivity_bounds_every_one_teacher_change():
    # brute force over 240 random histograms: no single teacher's vote change moves
    # a query's realised cost by more than LS_T(0) + [answered] LS_G(0); the expected
    # cost (weighted by Pr[answered]) breaks the analogous bound
    rng = np.random.default_rng(11)
    n, T, s1, s2, order = 250, 150.0, 60.0, 100.0, 20.0
    v = np.vstack(
        [
            rng.multinomial(n, rng.dirichlet(np.full(10, a)))
            for a in rng.uniform(0.05, 2, 240)
        ]
    ).astype(float)
    ls_t = smooth.local_sensitivity_threshold(v, n, T, s1, order)[:, 0]
    ls_g = smooth.local_sensitivity_gnmax(v, n, s2, order)[:, 0]
    owner, w = pate.one_teacher_neighbours(v)

    def costs_at(votes):
        thr, gn, p = pate.confident_gnmax_query_costs(votes, T, s1, s2, [order])
        return thr[:, 0], gn[:, 0], p

    (thr, gn, p), (thr_w, gn_w, p_w) = costs_at(v), costs_at(w)

    def worst_change(cost, cost_w):
        out = np.zeros(len(v))
        np.maximum.at(out, owner, np.abs(cost_w - cost[owner]))
        return out

    for answered in (False, True):
        change = worst_change(thr + answered * gn, thr_w + answered * gn_w)
        bound = ls_t + answered * ls_g
        assert np.all(change <= bound * (1 + 1e-9) + 1e-15)
    exp_change = worst_change(thr + p * gn, thr_w + p_w * gn_w)
    expected_violations = int(np.sum(exp_change > (ls_t + p * ls_g) * (1 + 1e-9)))
    assert expected_violations > len(v) // 10


def test_sanitized_epsilon_releases_the_realised_cost_and_is_deterministic():
    votes = np.array(SS["votes"])
    n, T, s1, s2, order = (
        SS["num_teachers"],
        SS["threshold"],
        SS["sigma1"],
        SS["sigma2"],
        SS["order"],
    )
    answered, _ = pate.confident_gnmax(votes, T, s1, s2, np.random.default_rng(1))
    assert 0 < answered.sum() < len(votes)

    def release(mask, seed=0):
        return smooth.sanitized_epsilon(
            votes,
            n,
            T,
            s1,
            s2,
            order,
            SS["delta"],
            np.random.default_rng(seed),
            answered=mask,
        )

    out = release(answered)
    assert out.rdp == pytest.approx(
        pate.confident_gnmax_rdp(votes, T, s1, s2, [order], answered=answered)[0],
        rel=1e-12,
    )
    ls = smooth.local_sensitivity_threshold(votes, n, T, s1, order).sum(0)
    ls = ls + smooth.local_sensitivity_gnmax(votes[answered], n, s2, order).sum(0)
    assert out.smooth_sensitivity == pytest.approx(
        smooth.smooth_sensitivity(ls, out.beta), rel=1e-12
    )
    assert out.sigma_ss == pytest.approx(
        (order * math.exp(2 * out.beta) / out.smooth_sensitivity) ** (1 / 3)
    )
    assert out.rdp_release > 0
    assert out.eps_upper == pytest.approx(
        pate.eps_from_rdp(
            [order],
            [out.rdp + 2 * out.smooth_sensitivity * out.sigma_ss + out.rdp_release],
            SS["delta"],
        )[0]
    )
    # the released value is the private cost plus SS * sigma_ss * N(0, 1): same seed,
    # same release
    assert release(answered) == out
    z = (out.released_rdp - out.rdp) / (out.smooth_sensitivity * out.sigma_ss)
    assert z == pytest.approx(np.random.default_rng(0).standard_normal())
    # fewer answers, less cost and less sensitivity
    nothing = release(np.zeros(len(votes), bool))
    assert nothing.rdp < out.rdp
    with pytest.raises(ValueError, match="answered must be a boolean array"):
        release(answered[:-1])


def test_smooth_sensitivity_bounds_every_neighbour():
    # soundness of the local sensitivity at distance 0: no histogram one teacher away
    # changes beta by more
    rng = np.random.default_rng(3)
    sigma, order, n = 40.0, 10.0, 50
    assert all(smooth.check_conditions_gnmax(sigma, 4, order))
    for _ in range(40):
        v = rng.multinomial(n, rng.dirichlet(np.full(4, 0.3))).astype(float)
        ls0 = smooth.local_sensitivity_gnmax(v, n, sigma, order)[0, 0]
        beta = smooth.beta_gnmax(pate.log_q_gnmax(v, sigma), sigma, order)[0]
        for i in range(4):
            for j in range(4):
                if i != j and v[i] > 0:
                    w = v.copy()
                    w[i] -= 1
                    w[j] += 1
                    other = smooth.beta_gnmax(pate.log_q_gnmax(w, sigma), sigma, order)[
                        0
                    ]
                    assert abs(other - beta) <= ls0 * (1 + 1e-9) + 1e-15
    ls = smooth.local_sensitivity_gnmax(v, n, sigma, order)[0]
    assert (
        smooth.smooth_sensitivity(ls, 0.0) == ls.max()
        and smooth.smooth_sensitivity(ls, 0.1) <= ls.max()
    )


def test_conditions_c5_c6_match_tf_privacy():
    assert smooth.check_conditions_gnmax(20, 10, 25.0) == (True, False)
    assert smooth.check_conditions_gnmax(30, 10, 25.0) == (True, True)
    with pytest.raises(ValueError, match="conditions C5-C6 fail for sigma2=20"):
        smooth.sanitized_epsilon(
            np.array(SS["votes"]),
            250,
            150,
            60.0,
            20.0,
            25.0,
            1e-6,
            np.random.default_rng(0),
            answered=np.ones(len(SS["votes"]), bool),
        )


def test_gnss_rdp_and_bad_inputs():
    # b = 0: the plain Gaussian mechanism
    assert smooth.rdp_gnss(0.0, 2.0, 3.0) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match=r"order must lie in \(1, 1/\(2 beta\)\)"):
        smooth.rdp_gnss(0.1, 1.0, 6.0)
    with pytest.raises(ValueError, match="num_teachers=5"):
        smooth.local_sensitivity_gnmax([[4, 3]], 5, 1.0, 2.0)
    with pytest.raises(ValueError, match="order must be a finite Rényi order > 1"):
        smooth.local_sensitivity_threshold([[4, 1]], 5, 3, 1.0, 1.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        smooth.smooth_sensitivity([1.0, 2.0], -0.1)


def test_calibrated_sigma_spends_exactly_epsilon_and_grows_with_queries():
    sigmas = [pate.calibrate_gnmax_sigma(q, 4.0, 1e-5, ORDERS) for q in (10, 40, 160)]
    assert sigmas == sorted(sigmas)
    eps, _ = pate.eps_from_rdp(
        ORDERS, 40 * pate.rdp_gnmax_data_independent(sigmas[1], ORDERS), 1e-5
    )
    assert eps == pytest.approx(4.0, rel=1e-9)
    # one conversion for PATE and DP-SGD: Mironov's would have PATE add more noise
    assert pate.calibrate_gnmax_sigma(40, 4.0, 1e-5, ORDERS, "pate") > sigmas[1]
    with pytest.raises(ValueError, match="out of reach"):
        pate.calibrate_gnmax_sigma(10, 0.01, 1e-5, [1.5, 2.0])
    with pytest.raises(ValueError, match="queries must be a positive integer"):
        pate.calibrate_gnmax_sigma(0, 1.0, 1e-5, ORDERS)
