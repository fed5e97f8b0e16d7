"""Training losses for weight and joint robustness, and a small training loop.

Every loss has the signature ``loss(weights, x, y, progress) -> scalar`` where
``progress`` in [0, 1] is the fraction of training done (used by the epsilon ramp).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from trustml_ref.training import epoch_batches, minimise
from trustml_ref.weight_robustness.attacks import pgd_attack
from trustml_ref.weight_robustness.bounds import (
    certified_margins,
    layer_norms,
    per_layer_epsilons,
    robust_cross_entropy,
)
from trustml_ref.weight_robustness.network import BiasFreeMLP, Weights, mlp_forward

Loss = Callable[[Weights, torch.Tensor, torch.Tensor, float], torch.Tensor]


def cross_entropy_loss() -> Loss:
    """The standard loss."""

    def loss(
        weights: Weights, x: torch.Tensor, y: torch.Tensor, progress: float
    ) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(mlp_forward(weights, x), y)

    return loss


def log_norm_penalty(weights: Weights, eps: float | Sequence[float]) -> torch.Tensor:
    """:math:`\\sum_k \\log(\\beta_k + n_{k-1}\\varepsilon_k)`: the log of the
    weight-norm factor of the Rademacher bound of the perturbed class (see
    :mod:`.generalization`)."""
    eps_list = per_layer_epsilons(eps, len(weights))
    _, betas = layer_norms(weights)
    return sum(
        torch.log(b + w.shape[1] * e) for b, w, e in zip(betas, weights, eps_list)
    )


def certified_loss(
    eps: float | Sequence[float],
    eps_x: float = 0.0,
    *,
    kappa: float = 0.5,
    ramp: float = 0.5,
    norm_weight: float = 0.0,
    method: str = "ibp",
) -> Loss:
    """The theory-driven loss: :math:`(1-\\kappa)\\,\\mathrm{CE} +
    \\kappa\\,\\mathrm{CE}_{\\text{cert}}(t\\varepsilon) + \\lambda \\sum_k
    \\log(\\beta_k + n_{k-1}\\varepsilon_k)`.

    :math:`\\mathrm{CE}_{\\text{cert}}` is :func:`robust_cross_entropy` of the
    certified margins with every radius scaled by :math:`t = \\min(1,
    \\text{progress}/\\text{ramp})` (the epsilon ramp); the last term (weight
    ``norm_weight``) is :func:`log_norm_penalty`.
    """
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa must lie in [0, 1], got {kappa}")
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"ramp must lie in (0, 1], got {ramp}")

    def loss(
        weights: Weights, x: torch.Tensor, y: torch.Tensor, progress: float
    ) -> torch.Tensor:
        scale = min(1.0, progress / ramp)
        eps_now = [scale * e for e in per_layer_epsilons(eps, len(weights))]
        clean = torch.nn.functional.cross_entropy(mlp_forward(weights, x), y)
        total = clean
        if kappa > 0:
            robust = robust_cross_entropy(
                certified_margins(weights, x, y, eps_now, scale * eps_x, method)
            ).mean()
            total = (1 - kappa) * clean + kappa * robust
        if norm_weight > 0:
            total = total + norm_weight * log_norm_penalty(weights, eps)
        return total

    return loss


def adversarial_loss(
    eps: float | Sequence[float],
    eps_x: float = 0.0,
    *,
    steps: int = 5,
    generator: torch.Generator | None = None,
) -> Loss:
    """Cross-entropy at a PGD perturbation (per-example weights and inputs) found for
    the batch.

    ``generator`` draws PGD's random starts; give each training run its own, seeded
    like the run, so that runs paired by seed are paired in their attacks too (without
    it the starts come from torch's global generator).
    """

    def loss(
        weights: Weights, x: torch.Tensor, y: torch.Tensor, progress: float
    ) -> torch.Tensor:
        attack = pgd_attack(weights, x, y, eps, eps_x, steps=steps, generator=generator)
        perturbed = [
            w if d is None else w + d for w, d in zip(weights, attack.weight_deltas)
        ]
        x_adv = x if attack.input_delta is None else x + attack.input_delta
        return torch.nn.functional.cross_entropy(mlp_forward(perturbed, x_adv), y)

    return loss


def train(
    widths: Sequence[int],
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    desc: str | None = None,
    progress_bar: bool = True,
) -> BiasFreeMLP:
    """Train a fresh :class:`BiasFreeMLP` with Adam on minibatches (the shared loop of
    :mod:`trustml_ref.training`; ``generator`` draws the initial weights, then each
    epoch's order); returns the model."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of examples, got {x.shape[0]} and "
            f"{y.shape[0]}"
        )
    model = BiasFreeMLP(widths, generator=generator).to(x.dtype)
    weights = list(model.weights)

    def batch_loss(indices: torch.Tensor, progress: float) -> torch.Tensor:
        return loss(weights, x[indices], y[indices], progress)

    minimise(
        torch.optim.Adam(weights, lr=lr),
        batch_loss,
        epoch_batches(x.shape[0], batch_size, epochs, generator),
        desc=desc,
        progress=progress_bar,
    )
    return model
