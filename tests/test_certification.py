"""Shared certificates: the DP condition and randomised smoothing
(trustml_ref.certification)."""

import math

import pytest
import torch
from scipy import stats

from trustml_ref.certification import (
    clopper_pearson,
    dp_certifies,
    dp_smoothing_radius,
    gaussian_smoothing_radius,
    smoothed_certify,
)
from trustml_ref.privacy.gaussian import gaussian_delta


def test_gaussian_smoothing_radius_reference_values():
    # sigma * Phi^{-1}(p_a), and the two-sided form sigma/2 (Phi^{-1}(p_a) -
    # Phi^{-1}(p_b))
    r = gaussian_smoothing_radius(torch.tensor([0.9, 0.99, 0.5, 0.2]), 0.5)
    assert torch.allclose(
        r,
        torch.tensor(
            [0.5 * stats.norm.ppf(0.9), 0.5 * stats.norm.ppf(0.99), 0.0, 0.0],
            dtype=torch.float64,
        ),
    )
    two = gaussian_smoothing_radius(
        torch.tensor([0.7], dtype=torch.float64),
        1.0,
        torch.tensor([0.1], dtype=torch.float64),
    )
    assert math.isclose(
        float(two), 0.5 * (stats.norm.ppf(0.7) - stats.norm.ppf(0.1)), rel_tol=1e-12
    )


def test_gaussian_smoothing_is_tight_on_a_linear_classifier():
    # For f(x) = 1[w.x + b > 0] the smoothed p_a is Phi(|w.x + b| / (sigma |w|)): the
    # radius is the exact
    # distance to the decision boundary, so no certificate can be larger.
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(5, generator=g, dtype=torch.float64), 0.3
    x = torch.randn(20, 5, generator=g, dtype=torch.float64)
    distance = (x @ w + b).abs() / w.norm()
    p_a = torch.special.ndtr(distance / 0.7)
    assert torch.allclose(
        gaussian_smoothing_radius(p_a, 0.7), distance, rtol=1e-9, atol=1e-12
    )


def test_dp_condition_and_its_radius():
    # e^-.5 .8 = .485 > e^.5 .2 = .33
    assert bool(dp_certifies(torch.tensor(0.8), torch.tensor(0.2), 0.5, 0.0))
    # .397 < .403
    assert not bool(dp_certifies(torch.tensor(0.8), torch.tensor(0.2), 0.7, 0.0))
    assert not bool(dp_certifies(torch.tensor(0.8), torch.tensor(0.2), 0.0, 0.31))
    p_a = torch.linspace(0.3, 0.999, 60, dtype=torch.float64)
    dp = dp_smoothing_radius(p_a, 0.25)
    tight = gaussian_smoothing_radius(p_a, 0.25)
    assert (
        (dp <= tight + 1e-12).all()
        and (dp[p_a <= 0.5] == 0).all()
        and (dp[p_a > 0.5] > 0).all()
    )
    # a more confident classifier is certified at least as far
    assert (dp.diff() >= -1e-12).all()
    # the radius is the edge: certified just inside, not on a fine epsilon grid just
    # outside
    for pa, r in zip(p_a[p_a > 0.55].tolist()[::10], dp[p_a > 0.55].tolist()[::10]):
        eps = (
            0.5
            * math.log(pa / (1 - pa))
            * torch.linspace(0, 1, 4000, dtype=torch.float64)
        )
        inside = dp_certifies(
            torch.tensor(pa),
            torch.tensor(1 - pa),
            eps,
            gaussian_delta(eps, 0.25, 0.999 * r),
        ).any()
        outside = dp_certifies(
            torch.tensor(pa),
            torch.tensor(1 - pa),
            eps,
            gaussian_delta(eps, 0.25, 1.01 * r),
        ).any()
        assert inside and not outside


def test_certificates_reject_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smoothing_radius(torch.tensor([0.9]), 0.0)
    with pytest.raises(ValueError, match="p_a"):
        dp_smoothing_radius(torch.tensor([1.2]), 0.5)
    with pytest.raises(ValueError, match="at most 1"):
        dp_certifies(torch.tensor(0.8), torch.tensor(0.3), 0.1, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        gaussian_smoothing_radius(torch.tensor([0.8, 0.7]), 1.0, torch.tensor([0.1]))
    with pytest.raises(ValueError, match="x must have shape"):
        smoothed_certify(lambda z: z[:, 0].long(), torch.zeros(3), 0.5, 2)
    with pytest.raises(ValueError, match="class indices"):
        smoothed_certify(
            lambda z: torch.full((len(z),), 5),
            torch.zeros(2, 3),
            0.5,
            2,
            n_select=4,
            n_estimate=4,
        )


def test_smoothed_certify_is_sound_and_deterministic_on_a_linear_classifier():
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def classify(z):
        return (z @ w > 0.1).long()

    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    distance = (x @ w - 0.1).abs() / w.norm()
    pred, p_lower, radius = smoothed_certify(
        classify, x, 0.5, 2, n_estimate=2000, generator=torch.Generator().manual_seed(2)
    )
    again = smoothed_certify(
        classify, x, 0.5, 2, n_estimate=2000, generator=torch.Generator().manual_seed(2)
    )
    assert all(torch.equal(a, b) for a, b in zip((pred, p_lower, radius), again))
    certified = pred >= 0
    assert certified.sum() > 20 and (pred[certified] == classify(x)[certified]).all()
    # never beyond the true boundary (alpha = 0.001)
    assert (radius[certified] <= distance[certified]).all()
    # and close to it
    assert (radius[~certified] == 0).all() and (
        radius[certified] > distance[certified].clamp_max(1.2) - 0.2
    ).all()


def test_clopper_pearson_reference_value():
    lower = clopper_pearson(torch.tensor([90.0]), 100, 0.05, "lower")
    assert math.isclose(float(lower), stats.beta.ppf(0.05, 90, 11), rel_tol=1e-12)
