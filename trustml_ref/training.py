"""The training loop the method subpackages share, and a plain classifier fit on it.

A run is an optimizer, a loss of a batch (example indices, or the tensors a data loader
yields) and of the training progress (for schedules such as an epsilon ramp), and a
sequence of such batches: :func:`minimise` takes one step per batch and returns the
losses. :func:`epoch_batches` gives the usual batches (each epoch a fresh permutation,
cut into slices); a method with another sampling scheme passes its own iterable.
Randomness comes only from the generators the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "EpochBatches",
    "accuracy",
    "check_xy",
    "epoch_batches",
    "fit",
    "minimise",
    "model_device",
    "predict",
]

Batches = Iterable[tuple[float, Any]]


@dataclass(frozen=True)
class EpochBatches:
    """``(progress, indices)`` for every step of ``epochs`` passes over ``n``
    examples: each epoch one permutation (drawn from ``generator`` when the epoch
    starts) cut into slices of ``batch_size``; ``progress`` is the fraction of steps
    done before this one. ``len`` is the number of steps."""

    n: int
    batch_size: int
    epochs: int
    generator: torch.Generator | None = None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __len__(self) -> int:
        return self.epochs * self.steps_per_epoch

    def __iter__(self) -> Iterator[tuple[float, torch.Tensor]]:
        for epoch in range(self.epochs):
            order = torch.randperm(self.n, generator=self.generator)
            for i, indices in enumerate(order.split(self.batch_size)):
                yield (epoch * self.steps_per_epoch + i) / len(self), indices


def epoch_batches(
    n: int,
    batch_size: int,
    epochs: int,
    generator: torch.Generator | None = None,
) -> EpochBatches:
    """The usual minibatches (:class:`EpochBatches`), with the arguments checked."""
    if n < 1 or batch_size < 1 or epochs < 0:
        raise ValueError(
            "need n >= 1, batch_size >= 1 and epochs >= 0, got "
            f"n={n}, batch_size={batch_size}, epochs={epochs}"
        )
    return EpochBatches(n, batch_size, epochs, generator)


def minimise(
    optimizer: torch.optim.Optimizer,
    loss: Callable[[Any, float], torch.Tensor],
    batches: Batches,
    *,
    total: int | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> list[float]:
    """For every ``(progress, batch)`` of ``batches``: zero the gradients,
    backpropagate ``loss(batch, progress)`` and step. Returns the loss of every step;
    ``total`` sizes the progress bar when ``batches`` has no ``len``."""
    losses = []
    for fraction, batch in tqdm(
        batches, total=total, desc=desc, disable=not progress, leave=False
    ):
        optimizer.zero_grad()
        value = loss(batch, fraction)
        value.backward()
        optimizer.step()
        losses.append(float(value.detach()))
    return losses


def model_device(model: nn.Module) -> torch.device:
    """Where the model lives: batches are moved there (data may stay on the CPU)."""
    return next(model.parameters()).device


def check_xy(x: torch.Tensor, y: torch.Tensor) -> None:
    """``x`` and ``y`` must be non-empty and of the same length."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"x and y must be non-empty with the same length, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> nn.Module:
    """Minibatch Adam on the cross-entropy of ``model(x)`` over its trainable
    parameters (:func:`epoch_batches` seeded by ``seed``); returns the model, trained
    in place and in eval mode. ``augment(batch, generator)``, if given, draws a fresh
    view of every minibatch (its generator seeded by ``seed`` too)."""
    check_xy(x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    device = model_device(model)
    model.train()
    views = torch.Generator().manual_seed(seed + 1)

    def loss(indices: torch.Tensor, _: float) -> torch.Tensor:
        batch = x[indices] if augment is None else augment(x[indices], views)
        return F.cross_entropy(model(batch.to(device)), y[indices].to(device))

    minimise(
        torch.optim.Adam(params, lr=lr),
        loss,
        epoch_batches(len(y), batch_size, epochs, torch.Generator().manual_seed(seed)),
        desc="fit",
        progress=progress,
    )
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted classes (argmax of ``model``), computed in eval mode in batches."""
    model.eval()
    device = model_device(model)
    return torch.cat([model(b.to(device)).argmax(1).cpu() for b in x.split(batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose prediction is ``y``."""
    check_xy(x, y)
    return float((predict(model, x) == y.cpu()).float().mean())
