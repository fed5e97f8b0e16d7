"""Differential privacy building blocks shared by the chapters."""

from trustml_ref.privacy.gaussian import (
    analytic_gaussian_sigma,
    classical_gaussian_sigma,
    gaussian_delta,
    gaussian_mechanism,
)

__all__ = [
    "analytic_gaussian_sigma",
    "classical_gaussian_sigma",
    "gaussian_delta",
    "gaussian_mechanism",
]
