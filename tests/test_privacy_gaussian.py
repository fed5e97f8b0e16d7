import math

import pytest
import torch
from scipy import integrate, stats

from trustml_ref.privacy import (
    analytic_gaussian_sigma,
    classical_gaussian_sigma,
    gaussian_delta,
    gaussian_mechanism,
)


def hockey_stick_by_quadrature(eps: float, sigma: float, sens: float) -> float:
    """delta(eps) = integral of (p(y) - e^eps q(y))_+ for p = N(sens, sigma^2), q =
    N(0, sigma^2)."""
    p, q = stats.norm(sens, sigma), stats.norm(0, sigma)
    # p > e^eps q exactly when y > sigma^2 eps / sens + sens / 2
    y0 = sigma**2 * eps / sens + sens / 2
    value, _ = integrate.quad(
        lambda y: p.pdf(y) - math.exp(eps) * q.pdf(y), y0, math.inf, epsabs=1e-14
    )
    return value


@pytest.mark.parametrize(
    "eps,sigma,sens",
    [(0.1, 1.0, 1.0), (1.0, 2.0, 1.0), (3.0, 0.5, 1.0), (0.5, 4.0, 3.0)],
)
def test_delta_matches_quadrature_of_the_definition(eps, sigma, sens):
    assert float(gaussian_delta(eps, sigma, sens)) == pytest.approx(
        hockey_stick_by_quadrature(eps, sigma, sens), rel=1e-7, abs=1e-13
    )


def test_reference_values():
    # sigma = sqrt(2 ln(1.25/1e-5)) for eps = 1, delta = 1e-5 (Dwork & Roth, Thm A.1)
    assert classical_gaussian_sigma(0.5, 1e-5) == pytest.approx(
        2 * math.sqrt(2 * math.log(125000)), rel=1e-14
    )
    # At eps = 0 the hockey stick is the total variation distance 2 Phi(sens / (2
    # sigma)) - 1.
    assert float(gaussian_delta(0.0, 1.0)) == pytest.approx(
        2 * stats.norm.cdf(0.5) - 1, rel=1e-12
    )


def test_delta_is_monotone_and_broadcasts():
    eps = torch.linspace(0, 5, 50)
    d = gaussian_delta(eps, 1.0)
    assert d.shape == (50,) and d.dtype == torch.float64
    assert torch.all(d[1:] <= d[:-1]) and torch.all(d >= 0)
    by_sigma = gaussian_delta(1.0, torch.tensor([0.5, 1.0, 2.0, 4.0]))
    assert torch.all(by_sigma[1:] < by_sigma[:-1])
    assert torch.isfinite(gaussian_delta(500.0, 0.05))


@pytest.mark.parametrize("eps", [0.05, 0.3, 0.99])
@pytest.mark.parametrize("delta", [1e-9, 1e-5, 0.1])
def test_classical_sigma_is_valid_and_analytic_is_tight(eps, delta):
    classical = classical_gaussian_sigma(eps, delta)
    assert float(gaussian_delta(eps, classical)) <= delta
    analytic = analytic_gaussian_sigma(eps, delta)
    assert analytic < classical
    assert (
        float(gaussian_delta(eps, analytic))
        <= delta
        < float(gaussian_delta(eps, analytic * (1 - 1e-6)))
    )


def test_analytic_sigma_scales_with_sensitivity():
    assert analytic_gaussian_sigma(2.0, 1e-6, 3.0) == pytest.approx(
        3 * analytic_gaussian_sigma(2.0, 1e-6), rel=1e-9
    )


def test_mechanism_adds_noise_of_the_stated_scale():
    g = torch.Generator().manual_seed(0)
    out = gaussian_mechanism(
        torch.zeros(200_000, dtype=torch.float64), 2.5, generator=g
    )
    assert abs(float(out.mean())) < 5 * 2.5 / math.sqrt(200_000)
    assert float(out.std()) == pytest.approx(2.5, rel=0.01)
    again = gaussian_mechanism(
        torch.zeros(200_000, dtype=torch.float64),
        2.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(out, again)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: classical_gaussian_sigma(1.0, 1e-5), r"epsilon must lie in \(0, 1\)"),
        (lambda: classical_gaussian_sigma(0.5, 0.0), r"delta must lie in \(0, 1\)"),
        (lambda: classical_gaussian_sigma(0.5, 1e-5, -1.0), "sensitivity must be > 0"),
        (lambda: gaussian_delta(-0.1, 1.0), "epsilon must be >= 0"),
        (lambda: gaussian_delta(1.0, 0.0), "sigma must be > 0"),
        (lambda: gaussian_delta(1.0, float("nan")), "sigma must be > 0"),
        (lambda: analytic_gaussian_sigma(0.0, 1e-5), "epsilon must be > 0"),
        (lambda: analytic_gaussian_sigma(1.0, 1.0), r"delta must lie in \(0, 1\)"),
    ],
)
def test_bad_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mechanism_rejects_non_float_tensors():
    with pytest.raises(TypeError, match="value must be a floating-point tensor"):
        gaussian_mechanism(torch.arange(3), 1.0)
    with pytest.raises(TypeError, match="value must be a torch.Tensor"):
        gaussian_mechanism([0.0], 1.0)  # type: ignore[arg-type]
