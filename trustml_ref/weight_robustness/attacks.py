"""Empirical attacks inside the certified balls: projected gradient descent on the
margin.

One routine covers every threat model of the two chapters: weights only (``eps_x = 0``),
inputs only (all ``eps`` zero), and joint. Weight perturbations are either *per example*
(each input gets its own :math:`\\hat W`, the setting of the certificate) or *universal*
(one :math:`\\hat W` for the whole batch, a faulty or tampered model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from trustml_ref.checks import check_nonnegative
from trustml_ref.weight_robustness.bounds import per_layer_epsilons
from trustml_ref.weight_robustness.network import (
    Weights,
    class_margins,
    mlp_forward,
    worst_margin,
)


@dataclass
class AttackResult:
    """The best perturbation found: worst-case margins per example and the
    perturbations themselves."""

    # (B,) min_{j != y} (f_y - f_j) at the best perturbation found
    margins: torch.Tensor
    # per layer: (n, m) universal, (B, n, m) per example, None if eps_k = 0
    weight_deltas: list[torch.Tensor | None]
    input_delta: torch.Tensor | None  # (B, n_0) or None

    @property
    def accuracy(self) -> float:
        return float((self.margins > 0).float().mean())


def _random_box(
    shape: tuple[int, ...], eps: float, generator: torch.Generator | None, dtype
) -> torch.Tensor:
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * eps


def pgd_attack(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    eps_x: float = 0.0,
    *,
    steps: int = 20,
    restarts: int = 1,
    universal: bool = False,
    step_factor: float = 2.5,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Minimise :math:`\\min_{j\\ne y}(\\hat f_y - \\hat f_j)` by signed-gradient steps
    of size ``step_factor * eps / steps``, projected onto :math:`|\\hat W^k - W^k| \\le
    \\varepsilon_k` and :math:`\\|\\hat x - x\\|_\\infty \\le \\varepsilon_x`, from a
    random start, ``restarts`` times.

    Per example, the lowest margin seen at any iterate of any restart is kept (each is a
    valid perturbation for that example). Universal attacks minimise the sum of the
    still-positive margins (pushing correct examples over) and keep the iterate with the
    most errors.
    """
    weights = [w.detach() for w in weights]
    eps_list = per_layer_epsilons(eps, len(weights))
    eps_x = check_nonnegative(eps_x, "eps_x")
    if steps < 1 or restarts < 1:
        raise ValueError(
            f"steps and restarts must be >= 1, got steps={steps}, restarts={restarts}"
        )
    batch = x.shape[0]
    best = AttackResult(
        worst_margin(class_margins(mlp_forward(weights, x), y), y),
        [None] * len(weights),
        None,
    )
    best_errors = int((best.margins <= 0).sum())
    if eps_x == 0 and not any(eps_list):
        return best  # an empty ball: the clean network is the only point in it
    for _ in range(restarts):
        deltas = [
            _random_box(
                tuple(w.shape) if universal else (batch, *w.shape),
                e,
                generator,
                w.dtype,
            ).requires_grad_()
            if e > 0
            else None
            for w, e in zip(weights, eps_list)
        ]
        dx = (
            _random_box(tuple(x.shape), eps_x, generator, x.dtype).requires_grad_()
            if eps_x > 0
            else None
        )
        leaves = [
            (d, e) for d, e in zip([*deltas, dx], [*eps_list, eps_x]) if d is not None
        ]
        for step in range(steps + 1):
            perturbed = [w if d is None else w + d for w, d in zip(weights, deltas)]
            margins = worst_margin(
                class_margins(mlp_forward(perturbed, x if dx is None else x + dx), y), y
            )
            with torch.no_grad():
                if universal:
                    errors = int((margins <= 0).sum())
                    if errors > best_errors or (
                        errors == best_errors and margins.mean() < best.margins.mean()
                    ):
                        best_errors = errors
                        best = AttackResult(
                            margins.detach().clone(),
                            [None if d is None else d.detach().clone() for d in deltas],
                            None if dx is None else dx.detach().clone(),
                        )
                else:
                    better = margins < best.margins
                    best.margins = torch.where(better, margins, best.margins).detach()
                    best.weight_deltas = [
                        None
                        if d is None
                        else torch.where(
                            better[:, None, None], d, d if old is None else old
                        )
                        .detach()
                        .clone()
                        for d, old in zip(deltas, best.weight_deltas)
                    ]
                    if dx is not None:
                        old = dx if best.input_delta is None else best.input_delta
                        best.input_delta = (
                            torch.where(better[:, None], dx, old).detach().clone()
                        )
            if step == steps:
                break
            objective = margins.clamp_min(0).sum() if universal else margins.sum()
            grads = torch.autograd.grad(objective, [t for t, _ in leaves])
            with torch.no_grad():
                for (t, bound), g in zip(leaves, grads):
                    t.sub_(step_factor * bound / steps * g.sign()).clamp_(-bound, bound)
    return best


def random_weight_noise(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    *,
    samples: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Worst margins, shape ``(samples, B)``, under random sign noise
    :math:`\\hat W^k = W^k \\pm \\varepsilon_k`.

    Each sample is one perturbed network (a corner of the box, the largest random
    perturbation the box allows), applied to every input.
    """
    eps_list = per_layer_epsilons(eps, len(weights))
    out = []
    with torch.no_grad():
        for _ in range(samples):
            noisy = [
                w
                + e
                * (
                    torch.randint(0, 2, w.shape, generator=generator).to(w.dtype) * 2
                    - 1
                )
                for w, e in zip(weights, eps_list)
            ]
            out.append(worst_margin(class_margins(mlp_forward(noisy, x), y), y))
    return torch.stack(out)


def last_layer_attack(
    weights: Weights, x: torch.Tensor, y: torch.Tensor, eps_last: float
) -> AttackResult:
    """The exact worst case when only :math:`W^L` moves, by at most ``eps_last`` per
    entry.

    With non-negative :math:`z = z^{L-1}` the worst perturbation for the pair :math:`(y,
    j)` lowers row :math:`y` and raises row :math:`j` by :math:`\\varepsilon_L` in every
    entry, whatever the input, giving :math:`f_y - f_j - 2\\varepsilon_L\\|z\\|_1`. The
    perturbation is applied through the network for every :math:`j` and the lowest
    margin kept, so the result is a realised attack.
    """
    if eps_last < 0:
        raise ValueError(f"eps_last must be >= 0, got {eps_last}")
    weights = [w.detach() for w in weights]
    _, hidden = mlp_forward(weights, x, return_hidden=True)
    if (hidden[-1] < 0).any():
        raise ValueError(
            "the last hidden layer has negative entries; the exact attack needs "
            "non-negative activations"
        )
    n_classes, batch = weights[-1].shape[0], x.shape[0]
    best_margins = torch.full((batch,), float("inf"), dtype=x.dtype)
    best_delta = torch.zeros(batch, *weights[-1].shape, dtype=x.dtype)
    rows = torch.arange(batch)
    for j in range(n_classes):
        delta = torch.zeros(batch, *weights[-1].shape, dtype=x.dtype)
        delta[rows, y] = -eps_last
        # cancels to 0 where j == y: that pair's margin is not a candidate
        delta[rows, j] += eps_last
        logits = mlp_forward([*weights[:-1], weights[-1] + delta], x)
        margin = logits[rows, y] - logits[:, j]
        better = (margin < best_margins) & (y != j)
        best_margins = torch.where(better, margin, best_margins)
        best_delta[better] = delta[better]
    return AttackResult(best_margins, [None] * (len(weights) - 1) + [best_delta], None)
