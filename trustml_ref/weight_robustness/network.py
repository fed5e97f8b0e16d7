"""Bias-free ReLU networks, the setting of both weight-perturbation chapters.

:math:`z^0 = x`, :math:`z^k = \\sigma(W^k z^{k-1})` for :math:`k < L`, :math:`f = W^L
z^{L-1}`, with :math:`\\sigma = \\mathrm{ReLU}` (non-negative, monotone, 1-Lipschitz,
:math:`\\sigma(0)=0`). Derived in ``notebooks/05_weight_perturbation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Weights = Sequence[torch.Tensor]


class BiasFreeMLP(nn.Module):
    """A bias-free ReLU MLP with layer widths ``widths = (n_0, n_1, ..., n_L)``."""

    def __init__(
        self, widths: Sequence[int], *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if len(widths) < 2 or any(int(w) < 1 for w in widths):
            raise ValueError(
                "widths must list at least two positive sizes (n_0, ..., n_L), got "
                f"{tuple(widths)}"
            )
        self.widths = tuple(int(w) for w in widths)
        self.weights = nn.ParameterList()
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            # He-uniform: keeps activations' scale through ReLU layers
            bound = (6.0 / n_in) ** 0.5
            w = (torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(list(self.weights), x)


def weights_of(model: nn.Module | Weights) -> list[torch.Tensor]:
    """The weight matrices :math:`W^1..W^L` of a network the theory covers.

    Accepts a :class:`BiasFreeMLP`, an ``nn.Sequential`` alternating bias-free
    ``nn.Linear`` and ``nn.ReLU`` (ending in a Linear), or a list of matrices with
    matching shapes. Anything else (biases, other activations, shape mismatches) raises
    ``ValueError``.
    """
    if isinstance(model, BiasFreeMLP):
        weights = list(model.weights)
    elif isinstance(model, nn.Sequential):
        weights = []
        for i, layer in enumerate(model):
            expect_linear = i % 2 == 0
            if expect_linear and isinstance(layer, nn.Linear):
                if layer.bias is not None:
                    raise ValueError(
                        f"model[{i}] has a bias; the bounds hold for bias-free "
                        "networks (Linear(..., bias=False))"
                    )
                weights.append(layer.weight)
            elif not expect_linear and type(layer) is nn.ReLU:
                continue
            else:
                want = (
                    "a bias-free nn.Linear"
                    if expect_linear
                    else "nn.ReLU (non-negative, monotone, 1-Lipschitz)"
                )
                raise ValueError(
                    f"model[{i}] is {type(layer).__name__}; expected {want}"
                )
        if not isinstance(model[-1], nn.Linear):
            raise ValueError(
                "model must end in an nn.Linear layer (the logits f = W^L z^{L-1})"
            )
    elif isinstance(model, (list, tuple)):
        weights = list(model)
    else:
        raise TypeError(
            "model must be a BiasFreeMLP, an nn.Sequential or a list of weight "
            f"matrices, got {type(model).__name__}"
        )
    if not weights:
        raise ValueError("model has no weight matrices")
    for k, (a, b) in enumerate(zip(weights[:-1], weights[1:]), start=1):
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            raise ValueError(
                f"weights W^{k} {tuple(a.shape)} and W^{k + 1} {tuple(b.shape)} do not "
                "chain"
            )
    return weights


def apply_weight(w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``W z`` for a shared matrix (n, m) or per-example matrices (B, n, m)."""
    return z @ w.T if w.dim() == 2 else torch.einsum("bij,bj->bi", w, z)


def hidden_activations(weights: Weights, x: torch.Tensor) -> list[torch.Tensor]:
    """The inputs of every layer, :math:`[z^0 = x, z^1, ..., z^{L-1}]`.

    Each weight may be shared, shape ``(n_k, n_{k-1})``, or per example, ``(B, n_k,
    n_{k-1})``.
    """
    if x.dim() != 2 or x.shape[1] != weights[0].shape[-1]:
        raise ValueError(
            f"x must have shape (batch, {weights[0].shape[-1]}), got {tuple(x.shape)}"
        )
    hidden = [x]
    for w in weights[:-1]:
        hidden.append(torch.relu(apply_weight(w, hidden[-1])))
    return hidden


def mlp_forward(weights: Weights, x: torch.Tensor) -> torch.Tensor:
    """Logits :math:`f(x) = W^L z^{L-1}` (shapes as in :func:`hidden_activations`)."""
    return apply_weight(weights[-1], hidden_activations(weights, x)[-1])


def class_margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:math:`f_y - f_j` for every class ``j``, shape ``(B, K)`` (zero at ``j = y``)."""
    return logits.gather(1, y[:, None]) - logits


def worst_margin(margins: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:math:`\\min_{j \\ne y} m_{yj}`: positive exactly when the prediction is ``y``
    (ties count as errors)."""
    return margins.scatter(1, y[:, None], float("inf")).min(dim=1).values
