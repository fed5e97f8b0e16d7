"""The two calls ``trustml_ref.visual_prompting.sources.imagenet_source`` makes."""

from types import SimpleNamespace

import torch
from torch import nn


def get_model_weights(arch: str) -> SimpleNamespace:
    return SimpleNamespace(DEFAULT=f"{arch}-standin-weights")


def get_model(arch: str, weights=None) -> nn.Module:
    """A (B, 3, 224, 224) -> (B, 1000) network; seeded, so runs repeat."""
    if weights != f"{arch}-standin-weights":
        raise ValueError(f"unexpected weights {weights!r}")
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=7, stride=4, padding=3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 1000),
    )
