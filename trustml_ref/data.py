"""Small data sets that ship with pip packages, so every default run works offline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Train and test tensors of one data set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def _seeded_split(
    x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int
) -> Split:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


def digits(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Split:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled
    to [0, 1].

    The split is random but seeded: the same ``seed`` gives the same split everywhere.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.as_tensor(data.data / 16.0, dtype=dtype)
    return _seeded_split(
        x, torch.as_tensor(data.target, dtype=torch.long), test_fraction, seed
    )


def iris(
    test_fraction: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Split:
    """scikit-learn's iris flowers (150 examples, 4 features, 3 classes), features
    scaled to [0, 1] by the range of the whole data set. Seeded split as in
    :func:`digits`."""
    from sklearn.datasets import load_iris

    data = load_iris()
    x = torch.as_tensor(data.data, dtype=dtype)
    x = (x - x.min(0).values) / (x.max(0).values - x.min(0).values)
    return _seeded_split(
        x, torch.as_tensor(data.target, dtype=torch.long), test_fraction, seed
    )


OPENML_DATASETS = {"mnist_784": 255.0, "CIFAR_10": 255.0}
"""Data sets the colab profile downloads from OpenML, with the value that scales pixels
to [0, 1]."""


def openml(
    name: str,
    n_train: int,
    n_test: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Split:
    """A seeded subset of an OpenML image data set (colab profile only: this downloads).

    ``name`` is ``"mnist_784"`` (70,000 images, 784 pixels) or ``"CIFAR_10"`` (60,000
    images, 3,072 values); pixels are scaled to [0, 1] and flattened; ``n_train +
    n_test`` examples are drawn without replacement. Uses scikit-learn's
    ``fetch_openml`` (no torchvision), cached under ``TRUSTML_CACHE``.
    """
    if name not in OPENML_DATASETS:
        raise ValueError(f"name must be one of {sorted(OPENML_DATASETS)}, got {name!r}")
    if n_train < 1 or n_test < 1:
        raise ValueError(
            f"n_train and n_test must be positive, got {n_train} and {n_test}"
        )
    from sklearn.datasets import fetch_openml

    from trustml_ref.config import cache_dir

    try:
        import pandas  # noqa: F401  (fetch_openml parses dense data with it)
    except ImportError as error:
        raise ImportError(
            "openml needs pandas, which Colab ships; elsewhere pip install pandas "
            "(trustml_ref[openml])"
        ) from error

    x, y = fetch_openml(
        name,
        version=1,
        return_X_y=True,
        as_frame=False,
        data_home=str(cache_dir() / "openml"),
    )
    if n_train + n_test > len(y):
        raise ValueError(
            f"{name} has {len(y)} examples; n_train + n_test = {n_train + n_test} is "
            "too many"
        )
    order = np.random.default_rng(seed).permutation(len(y))[: n_train + n_test]
    xs = torch.as_tensor(
        np.asarray(x, dtype=np.float64)[order] / OPENML_DATASETS[name], dtype=dtype
    )
    ys = torch.as_tensor(np.asarray(y).astype(np.int64)[order])
    return Split(xs[:n_train], ys[:n_train], xs[n_train:], ys[n_train:])
