import numpy as np
import pytest
import torch

from trustml_ref import data


def test_digits_and_iris_are_seeded_and_scaled():
    a, b = data.digits(seed=3), data.digits(seed=3)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(
        a.x_test, data.digits(seed=4).x_test
    )
    assert (
        a.x_train.min() >= 0
        and a.x_train.max() <= 1
        and a.n_classes == 10
        and a.n_features == 64
    )
    assert len(a.y_train) + len(a.y_test) == 1797
    flowers = data.iris()
    assert (
        flowers.n_classes == 3
        and float(torch.cat([flowers.x_train, flowers.x_test]).max()) == 1.0
    )
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\)"):
        data.digits(test_fraction=1.0)


def test_openml_loader_converts_and_splits(monkeypatch, tmp_path):
    """The download cannot run here; the conversion around it is checked on a
    stand-in."""
    rng = np.random.default_rng(0)
    fake_x, fake_y = (
        rng.integers(0, 256, (50, 784)).astype(float),
        rng.integers(0, 10, 50).astype(str),
    )
    calls = []

    def fake_fetch(name, **kwargs):
        calls.append((name, kwargs))
        return fake_x, fake_y

    import sys
    import types

    import sklearn.datasets

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch)
    monkeypatch.setenv("TRUSTML_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pandas", None)  # not installed: a clear error
    with pytest.raises(ImportError, match="openml needs pandas"):
        data.openml("mnist_784", n_train=30, n_test=10, seed=1)
    monkeypatch.setitem(sys.modules, "pandas", types.ModuleType("pandas"))
    split = data.openml("mnist_784", n_train=30, n_test=10, seed=1)
    assert calls[0][0] == "mnist_784" and calls[0][1]["as_frame"] is False
    assert split.x_train.shape == (30, 784) and split.x_test.shape == (10, 784)
    assert (
        0 <= float(split.x_train.min())
        and float(split.x_train.max()) <= 1
        and split.y_train.dtype == torch.long
    )
    with pytest.raises(ValueError, match="too many"):
        data.openml("mnist_784", n_train=45, n_test=10)
    with pytest.raises(ValueError, match="name must be one of"):
        data.openml("imagenet", n_train=1, n_test=1)
