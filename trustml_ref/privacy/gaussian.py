"""The Gaussian mechanism: noise scales and its exact privacy profile.

Derived in the chapter ``notebooks/00_conventions`` ("How to read and run this book").
"""

from __future__ import annotations

import math

import torch

Number = float | torch.Tensor


def _positive(value: Number, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if torch.isnan(t).any() or (t <= 0).any():
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return t


def _unit_interval(value: float, name: str) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return float(value)


def classical_gaussian_sigma(
    epsilon: float, delta: float, sensitivity: float = 1.0
) -> float:
    r"""Noise scale of the classical Gaussian mechanism (Dwork & Roth 2014, Thm A.1).

    .. math:: \sigma = \Delta_2 \sqrt{2 \ln(1.25/\delta)} / \varepsilon,

    which makes :func:`gaussian_mechanism` :math:`(\varepsilon,\delta)`-DP for
    :math:`\varepsilon \in (0, 1)` only; larger ``epsilon`` raises.
    """
    _unit_interval(epsilon, "epsilon")
    _unit_interval(delta, "delta")
    _positive(sensitivity, "sensitivity")
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def gaussian_delta(
    epsilon: Number, sigma: Number, sensitivity: Number = 1.0
) -> torch.Tensor:
    r"""Exact :math:`\delta(\varepsilon)` of the Gaussian mechanism (Balle & Wang 2018,
    Thm 8).

    .. math:: \delta(\varepsilon) = \Phi\!\left(\frac{\Delta}{2\sigma} -
       \frac{\varepsilon\sigma}{\Delta}\right)
              - e^{\varepsilon}\,\Phi\!\left(-\frac{\Delta}{2\sigma} -
                \frac{\varepsilon\sigma}{\Delta}\right)

    the smallest :math:`\delta` for which noise :math:`\mathcal N(0,\sigma^2)` on a
    query of :math:`\ell_2`-sensitivity :math:`\Delta` is
    :math:`(\varepsilon,\delta)`-DP. Broadcasts over tensor arguments; the second term
    is computed in log space so large :math:`\varepsilon` does not overflow. Returns
    float64.
    """
    eps = torch.as_tensor(epsilon, dtype=torch.float64)
    if torch.isnan(eps).any() or (eps < 0).any():
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    s = _positive(sigma, "sigma")
    d = _positive(sensitivity, "sensitivity")
    a = d / (2 * s)
    b = eps * s / d
    delta = torch.special.ndtr(a - b) - torch.exp(eps + torch.special.log_ndtr(-a - b))
    return delta.clamp_min(0.0)


def analytic_gaussian_sigma(
    epsilon: float, delta: float, sensitivity: float = 1.0, *, tol: float = 1e-12
) -> float:
    r"""Smallest :math:`\sigma` with :func:`gaussian_delta` :math:`\le \delta` (the
    analytic Gaussian mechanism).

    :math:`\delta(\varepsilon)` decreases in :math:`\sigma`, so bisection on
    :math:`\sigma` finds it; valid for every :math:`\varepsilon > 0`. The returned value
    satisfies the bound (it is the upper end of the final bracket).
    """
    _positive(epsilon, "epsilon")
    _unit_interval(delta, "delta")
    _positive(sensitivity, "sensitivity")
    lo, hi = 1e-6 * sensitivity, sensitivity
    while float(gaussian_delta(epsilon, hi, sensitivity)) > delta:
        lo, hi = hi, 2 * hi
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if float(gaussian_delta(epsilon, mid, sensitivity)) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def gaussian_mechanism(
    value: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Release :math:`M(x) = q(x) + \mathcal N(0, \sigma^2 I)` for a query result
    ``value``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"value must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(
            f"value must be a floating-point tensor, got dtype {value.dtype}"
        )
    _positive(sigma, "sigma")
    noise = torch.randn(
        value.shape, generator=generator, dtype=value.dtype, device=value.device
    )
    return value + sigma * noise
