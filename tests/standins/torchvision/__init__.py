"""A stand-in for torchvision in the colab-profile test of chapter 3, which needs a
download (ImageNet weights) and a torchvision build that matches this machine's CPU
torch (PyPI's does not load here). It offers only what ``imagenet_source`` calls:
``models.get_model_weights(arch).DEFAULT`` and ``models.get_model(arch, weights=...)``,
a small convolutional network with batch norm and 1,000 ImageNet outputs."""

from torchvision import models  # noqa: F401

__version__ = "0.0+standin"
