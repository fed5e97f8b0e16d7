import numpy as np
import pytest
import torch

from trustml_ref import assert_close


def test_accepts_mixed_types_within_tolerance():
    assert_close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), rtol=1e-8)
    assert_close(0.1 + 0.2, 0.3, rtol=1e-12)
    assert_close(torch.tensor([float("inf")]), [float("inf")])
    assert_close(torch.empty(0), np.empty(0))


def test_reports_worst_element_and_name():
    with pytest.raises(
        AssertionError, match=r"sigma: 1 of 4 elements differ; worst at index \(1, 0\)"
    ):
        assert_close(
            np.array([[1.0, 2.0], [3.5, 4.0]]),
            np.array([[1.0, 2.0], [3.0, 4.0]]),
            name="sigma",
        )


def test_nan_never_passes_and_shapes_must_match():
    with pytest.raises(AssertionError, match="differ"):
        assert_close([float("nan")], [float("nan")])
    with pytest.raises(AssertionError, match="differ"):
        assert_close([float("inf")], [-float("inf")])
    with pytest.raises(
        AssertionError, match=r"shape \(3,\) differs from expected shape \(1, 3\)"
    ):
        assert_close(np.zeros(3), np.zeros((1, 3)))


def test_tolerance_is_relative_to_expected():
    assert_close(1000.0 + 0.5, 1000.0, rtol=1e-3, atol=0)
    with pytest.raises(AssertionError):
        assert_close(1.0 + 0.5, 1.0, rtol=1e-3, atol=0)


def test_rejects_non_numeric_input():
    with pytest.raises(TypeError, match="actual must be a number, array or tensor"):
        assert_close(object(), 1.0)
