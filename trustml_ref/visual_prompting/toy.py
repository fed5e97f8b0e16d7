"""The chapter's offline world: a source model pre-trained on public digits, a private
target task on others.

scikit-learn's 1,797 8×8 digits are split in two parts. The *source* part is public and
labelled: the source model is trained on it, clean, on its 16×16 canvas. The *target*
part is the private task: the same ten digits, but noisier (Gaussian pixel noise), at
their native 8×8 size, and with new labels: a fixed random permutation of the digits
taken modulo ``target_classes`` (by default five classes, each the union of two digits),
so the label map from source to target classes has to be learned. It is split into
private training data (for DP-SGD or PATE's teachers), a public unlabelled pool (PATE's
student queries; its labels are used only to score) and a test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trustml_ref.visual_prompting.prompt import place_on_canvas


@dataclass(frozen=True)
class TargetTask:
    """The private task: labelled private images, a public pool PATE's student may query
    (its labels are for scoring only), and a test set."""

    x_private: torch.Tensor
    y_private: torch.Tensor
    x_public: torch.Tensor
    y_public: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class DigitDomains(TargetTask):
    """The target task on (n, 1, 8, 8) digits, plus the public source data on the
    canvas."""

    # : (n, 1, canvas, canvas) public source images, on the canvas
    x_source: torch.Tensor
    y_source: torch.Tensor  #: digit
    # : target label of digit d is permutation[d] % target_classes
    permutation: torch.Tensor


def digit_domains(
    canvas: int = 16,
    inner: int = 12,
    seed: int = 0,
    public: int = 200,
    test: int = 300,
    noise: float = 0.2,
    target_classes: int = 5,
    source_fraction: float = 0.5,
) -> DigitDomains:
    """Split the digits into the public source part (``source_fraction`` of them) and
    the private/public/test target part."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.as_tensor(data.target)
    order = torch.as_tensor(rng.permutation(len(y)))
    if not 0 < source_fraction < 1:
        raise ValueError(f"source_fraction must lie in (0, 1), got {source_fraction}")
    n_source = int(source_fraction * len(y))
    src, tgt = order[:n_source], order[n_source:]
    if public + test >= len(tgt):
        raise ValueError(
            f"public + test must leave private data: {public} + {test} >= {len(tgt)} "
            "target images"
        )
    perm = torch.as_tensor(rng.permutation(10))
    noisy = (
        x[tgt]
        + noise
        * torch.as_tensor(rng.standard_normal(x[tgt].shape), dtype=torch.float32)
    ).clamp(0, 1)
    if not 2 <= target_classes <= 10:
        raise ValueError(f"target_classes must lie in [2, 10], got {target_classes}")
    labels = perm[y[tgt]] % target_classes
    p, t = public, public + test
    return DigitDomains(
        x_private=noisy[t:],
        y_private=labels[t:],
        x_public=noisy[:p],
        y_public=labels[:p],
        x_test=noisy[p:t],
        y_test=labels[p:t],
        x_source=place_on_canvas(x[src], canvas, inner),
        y_source=y[src],
        permutation=perm,
    )


class SourceCNN(nn.Module):
    """A small convolutional source model with GroupNorm (no batch statistics, so
    DP-safe when frozen)."""

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.GroupNorm(4, width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.GroupNorm(4, 2 * width),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.GroupNorm(4, 2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LinearProbe(nn.Module):
    """The transfer-learning baseline: a linear classifier on the frozen source model's
    features."""

    def __init__(
        self, source: SourceCNN, canvas: int, inner: int, classes: int
    ) -> None:
        super().__init__()
        self.features, self.canvas, self.inner = source.features, canvas, inner
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.head = nn.Linear(source.head.in_features, classes)

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(place_on_canvas(x, self.canvas, self.inner)))


def scratch_mlp(pixels: int = 64, classes: int = 5, hidden: int = 64) -> nn.Module:
    """The from-scratch baseline on the raw target pixels."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )
