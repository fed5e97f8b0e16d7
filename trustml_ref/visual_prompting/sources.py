"""The Colab profile's real setting: an ImageNet-pretrained torchvision model and
CIFAR-10 (both downloaded).

Neither runs on the default path: torchvision is imported only inside
:func:`imagenet_source` (PyPI's torchvision does not import beside the CPU-only torch
the book is built with), and :func:`cifar10_task` downloads CIFAR-10 from OpenML through
:func:`trustml_ref.data.openml`.
"""

from __future__ import annotations

import torch
from torch import nn

from trustml_ref.visual_prompting.toy import TargetTask

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Per-channel :math:`(x - \\mu)/s` in front of a model trained on normalised
    images."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(
                "mean and std must have one entry per channel and std > 0, got "
                f"{mean}, {std}"
            )
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def imagenet_source(arch: str = "resnet18") -> nn.Module:
    """torchvision's ImageNet classifier ``arch`` with its default weights behind
    ImageNet normalisation: (B, 3, 224, 224) images in [0, 1] to 1,000 logits; frozen
    and in eval mode (its batch norm uses running statistics, as
    :class:`~trustml_ref.visual_prompting.PromptedClassifier` requires). Downloads the
    weights."""
    try:
        import torchvision  # lazy: Colab profile only
    except ImportError as error:
        raise ImportError(
            "imagenet_source needs torchvision, which Colab ships; elsewhere install "
            "the torchvision build that matches your torch (trustml_ref[vision])"
        ) from error

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    model = nn.Sequential(
        Normalize(IMAGENET_MEAN, IMAGENET_STD),
        torchvision.models.get_model(arch, weights=weights),
    )
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def cifar10_task(
    n_private: int, n_public: int, n_test: int, seed: int = 0
) -> TargetTask:
    """A seeded CIFAR-10 subset from OpenML as (N, 3, 32, 32) images in [0, 1] (OpenML
    stores the red, green and blue planes one after another, as the original data set
    does). Downloads."""
    from trustml_ref.data import openml

    split = openml("CIFAR_10", n_private + n_public, n_test, seed=seed)
    x = split.x_train.view(-1, 3, 32, 32)
    return TargetTask(
        x_private=x[:n_private],
        y_private=split.y_train[:n_private],
        x_public=x[n_private:],
        y_public=split.y_train[n_private:],
        x_test=split.x_test.view(-1, 3, 32, 32),
        y_test=split.y_test,
    )
