"""Numerical comparison for checks and graduation cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a number, array or tensor, got {type(value).__name__}"
        ) from err


def assert_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    name: str = "value",
) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise (NaN
    never passes).

    Accepts numbers, NumPy arrays and tensors in any mix; both are compared in float64
    on the CPU. Shapes must match exactly (no broadcasting). The error names ``name``,
    the worst element, both values there and the tolerance.
    """
    a = _as_tensor(actual, "actual").to(torch.float64)
    e = _as_tensor(expected, "expected").to(torch.float64)
    if a.shape != e.shape:
        raise AssertionError(
            f"{name}: shape {tuple(a.shape)} differs from expected shape "
            f"{tuple(e.shape)}"
        )
    if a.numel() == 0:
        return
    finite = torch.isfinite(a) & torch.isfinite(e)
    excess = (a - e).abs() - (atol + rtol * e.abs())
    # Non-finite elements pass only when identical infinities; NaN never passes.
    excess = torch.where(
        finite, excess, torch.where(a == e, -1.0, float("inf")).to(torch.float64)
    )
    worst = int(torch.argmax(excess))
    if excess.flatten()[worst] > 0:
        index = (
            tuple(int(i) for i in np.unravel_index(worst, tuple(a.shape)))
            if a.dim()
            else ()
        )
        n_bad = int((excess > 0).sum())
        raise AssertionError(
            f"{name}: {n_bad} of {a.numel()} elements differ; worst at index {index}: "
            f"actual {a.flatten()[worst].item()!r}, expected "
            f"{e.flatten()[worst].item()!r} "
            f"(rtol={rtol}, atol={atol})"
        )
