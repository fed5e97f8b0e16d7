"""Argument checks shared by the subpackages: one rule and one message per kind."""

from __future__ import annotations

import math

__all__ = ["check_nonnegative", "check_positive"]


def check_positive(value: float, name: str) -> float:
    """``value`` as a float if finite and > 0, else a ``ValueError`` naming it."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative(value: float, name: str) -> float:
    """``value`` as a float if finite and >= 0, else a ``ValueError`` naming it."""
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
