"""Empirical attacks inside the certified balls: projected gradient descent on the
margin, and the strong attack built on it.

Every attack covers the threat models of the two chapters: weights only (``eps_x = 0``),
inputs only (all ``eps`` zero), and joint. Weight perturbations are either *per example*
(each input gets its own :math:`\\hat W`, the setting of the certificate:
:func:`pgd_attack`, :func:`strong_attack`) or *universal* (one :math:`\\hat W` for the
whole batch, a faulty or tampered model: :func:`universal_pgd_attack`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from trustml_ref.checks import check_nonnegative
from trustml_ref.weight_robustness.bounds import (
    Radius,
    certified_margins,
    is_active,
    layer_radii,
    pair_radius,
)
from trustml_ref.weight_robustness.network import (
    Weights,
    apply_weight,
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
    shape: tuple[int, ...], eps: Radius, generator: torch.Generator | None, dtype
) -> torch.Tensor:
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * eps


def _check_budget(steps: int, restarts: int) -> None:
    if steps < 1 or restarts < 1:
        raise ValueError(
            f"steps and restarts must be >= 1, got steps={steps}, restarts={restarts}"
        )


def _clean(weights: Weights, x: torch.Tensor, y: torch.Tensor) -> AttackResult:
    """The clean network as an attack result (no perturbation)."""
    margins = worst_margin(class_margins(mlp_forward(weights, x), y), y)
    return AttackResult(margins, [None] * len(weights), None)


def _pgd_iterates(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_list: list[Radius],
    eps_x: float,
    *,
    steps: int,
    restarts: int,
    step_factor: float,
    generator: torch.Generator | None,
    universal: bool,
) -> Iterator[tuple[torch.Tensor, list, torch.Tensor | None]]:
    """Signed-gradient descent on the margins from random starts, projected onto the
    boxes; yields ``(margins, weight deltas, input delta)`` at every iterate of every
    restart. Universal weight deltas have the weights' shapes (one for the batch) and
    descend on the sum of the still-positive margins; per-example ones have a batch
    dimension and descend on the sum of the margins."""
    batch = x.shape[0]
    for _ in range(restarts):
        deltas = [
            _random_box(
                tuple(w.shape) if universal else (batch, *w.shape),
                e,
                generator,
                w.dtype,
            ).requires_grad_()
            if is_active(e)
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
            yield margins.detach(), deltas, dx
            if step == steps:
                break
            objective = margins.clamp_min(0).sum() if universal else margins.sum()
            grads = torch.autograd.grad(objective, [t for t, _ in leaves])
            with torch.no_grad():
                for (t, bound), g in zip(leaves, grads):
                    t.sub_(step_factor * bound / steps * g.sign()).clamp_(-bound, bound)


def pgd_attack(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[Radius],
    eps_x: float = 0.0,
    *,
    steps: int = 20,
    restarts: int = 1,
    step_factor: float = 2.5,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Minimise :math:`\\min_{j\\ne y}(\\hat f_y - \\hat f_j)` per example (each input
    its own :math:`\\hat W`, the setting of the certificates) by signed-gradient steps
    of size ``step_factor * eps / steps``, projected onto :math:`|\\hat W^k - W^k| \\le
    \\varepsilon_k` and :math:`\\|\\hat x - x\\|_\\infty \\le \\varepsilon_x`, from a
    random start, ``restarts`` times; per example, the lowest margin seen at any iterate
    of any restart is kept (each is a valid perturbation for that example).
    """
    weights = [w.detach() for w in weights]
    eps_list = layer_radii(eps, weights)
    eps_x = check_nonnegative(eps_x, "eps_x")
    _check_budget(steps, restarts)
    best = _clean(weights, x, y)
    if eps_x == 0 and not any(map(is_active, eps_list)):
        return best  # an empty ball: the clean network is the only point in it
    for margins, deltas, dx in _pgd_iterates(
        weights,
        x,
        y,
        eps_list,
        eps_x,
        steps=steps,
        restarts=restarts,
        step_factor=step_factor,
        generator=generator,
        universal=False,
    ):
        with torch.no_grad():
            better = margins < best.margins
            best.margins = torch.where(better, margins, best.margins)
            best.weight_deltas = [
                None
                if d is None
                else torch.where(better[:, None, None], d, d if old is None else old)
                .detach()
                .clone()
                for d, old in zip(deltas, best.weight_deltas)
            ]
            if dx is not None:
                old = dx if best.input_delta is None else best.input_delta
                best.input_delta = (
                    torch.where(better[:, None], dx, old).detach().clone()
                )
    return best


def universal_pgd_attack(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[Radius],
    *,
    steps: int = 20,
    restarts: int = 1,
    step_factor: float = 2.5,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """One :math:`\\hat W` for the whole batch (a faulty or tampered model): PGD as in
    :func:`pgd_attack` on the sum of the still-positive margins (pushing correct
    examples over), keeping the iterate with the most errors (ties: the lowest mean
    margin). Weight deltas have the weights' shapes."""
    weights = [w.detach() for w in weights]
    eps_list = layer_radii(eps, weights)
    _check_budget(steps, restarts)
    best = _clean(weights, x, y)
    if not any(map(is_active, eps_list)):
        return best
    best_errors = int((best.margins <= 0).sum())
    for margins, deltas, _ in _pgd_iterates(
        weights,
        x,
        y,
        eps_list,
        0.0,
        steps=steps,
        restarts=restarts,
        step_factor=step_factor,
        generator=generator,
        universal=True,
    ):
        errors = int((margins <= 0).sum())
        if errors > best_errors or (
            errors == best_errors and margins.mean() < best.margins.mean()
        ):
            best_errors = errors
            best = AttackResult(
                margins.clone(),
                [None if d is None else d.detach().clone() for d in deltas],
                None,
            )
    return best


def random_weight_noise(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[Radius],
    *,
    samples: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Worst margins, shape ``(samples, B)``, under random sign noise
    :math:`\\hat W^k = W^k \\pm \\varepsilon_k`.

    Each sample is one perturbed network (a corner of the box, the largest random
    perturbation the box allows), applied to every input.
    """
    eps_list = layer_radii(eps, weights)
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


def _best_response(
    weights: Weights,
    z: torch.Tensor,
    y: torch.Tensor,
    j: torch.Tensor,
    eps_list: list[Radius],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The exact minimum of :math:`\\hat f_y - \\hat f_j` over the last two layers'
    boxes, given the input ``z`` of layer :math:`L-1` (of layer :math:`L` when
    :math:`L = 1`), one pair ``(y, j)`` per row.

    With :math:`a = \\sigma(h)`, :math:`a \\ge 0`, the last layer's worst case is
    :math:`\\sum_i d_i a_i`, :math:`d = W^L_y - W^L_j - (\\varepsilon^L_y +
    \\varepsilon^L_j)`; each pre-activation :math:`h_i` ranges over :math:`W^{L-1}_i z
    \\pm \\varepsilon^{L-1}_i |z|` independently (:math:`\\varepsilon_{L-1}\\|z\\|_1`
    for one radius per layer), so :math:`h_i` takes its lower end where :math:`d_i > 0`
    and its upper end elsewhere. Returns the value, shape ``(P,)``; the slack
    :math:`\\sum_{i: d_i < 0} d_i \\min(\\hat h_i, 0)`, which the descent adds, times a
    small leak, to get a gradient where every unit that would lower the margin is off;
    and the two per-row perturbations that realise the value.
    """
    rows = torch.arange(z.shape[0])
    eps_last, w_last = eps_list[-1], weights[-1]
    radius = pair_radius(eps_last, y, j)
    if len(weights) == 1:  # the last layer's input z may have either sign
        a, delta_prev = z, None
        value = ((w_last[y] - w_last[j]) * a - radius * a.abs()).sum(1)
        slack = torch.zeros_like(value)
    else:
        eps_prev = eps_list[-2]
        d = w_last[y] - w_last[j] - radius
        lower = torch.where(d > 0, -1.0, 1.0).to(z.dtype)
        reach = (
            apply_weight(eps_prev, z.abs())
            if isinstance(eps_prev, torch.Tensor)
            else eps_prev * z.abs().sum(1, True)
        )
        h = apply_weight(weights[-2], z) + lower * reach
        a = torch.relu(h)
        value = (d * a).sum(1)
        slack = (d * torch.where(d < 0, h.clamp_max(0), 0)).sum(1)
        delta_prev = (
            eps_prev * lower[:, :, None] * z.sign()[:, None, :]
            if is_active(eps_prev)
            else None
        )
    if isinstance(eps_last, torch.Tensor):
        radius_y, radius_j = eps_last[y], eps_last[j]
    else:
        radius_y = radius_j = eps_last
    delta_last = torch.zeros(z.shape[0], *w_last.shape, dtype=z.dtype)
    delta_last[rows, y] = -radius_y * a.sign()
    delta_last[rows, j] += radius_j * a.sign()
    return value, slack, delta_prev, delta_last


def strong_attack(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[Radius],
    eps_x: float = 0.0,
    *,
    steps: int = 100,
    restarts: int = 8,
    generator: torch.Generator | None = None,
    stop_at: float | None = None,
    pairs_per_chunk: int = 2048,
) -> AttackResult:
    """The strongest per-example attack of the package, for weights, inputs or both.

    It starts from the untargeted :func:`pgd_attack` with the same budget, then attacks
    every pair :math:`(y, j)` whose IBP lower bound is below the margin found so far
    (the other pairs cannot lower it), targeted. In a pair the last two layers take
    their exact best response (the worst last layer is :math:`\\hat W^L_y = W^L_y -
    \\varepsilon_L`, :math:`\\hat W^L_j = W^L_j + \\varepsilon_L` on the non-negative
    :math:`z^{L-1}`; then each unit of layer :math:`L-1` independently takes the end of
    its pre-activation interval that lowers the margin, where IBP is exact), and the
    earlier layers and the input are found by gradient descent on that exact value:
    steps decaying from half the radius to zero (cosine), the gradient's sign and the
    max-normalised gradient on alternate restarts, the first from the clean point, the
    others from random corners and random interior points, each end point also
    rounded to the box's nearest corner. When only the last two
    layers move, the result is the exact worst case. Every margin returned is
    realised: the perturbation is applied through the network and the lowest margin
    over all classes kept.

    With ``stop_at`` (say 0, when only accuracy matters), examples whose margin is
    already at or below it after the untargeted start are not attacked further. In the
    exact case the untargeted start is skipped.
    """
    eps_list = layer_radii(eps, weights)
    # exact when nothing before the last two layers moves: no untargeted start needed
    n_free = max(len(weights) - 2, 0)
    exact = eps_x == 0 and not any(map(is_active, eps_list[:n_free]))
    best = pgd_attack(
        weights,
        x,
        y,
        0.0 if exact else eps_list,
        eps_x,
        steps=steps,
        restarts=restarts,
        generator=generator,
    )
    if eps_x == 0 and not any(map(is_active, eps_list)):
        return best
    weights = [w.detach() for w in weights]
    best.weight_deltas = [
        torch.zeros(x.shape[0], *w.shape, dtype=x.dtype)
        if d is None and is_active(e)
        else d
        for w, d, e in zip(weights, best.weight_deltas, eps_list)
    ]
    if best.input_delta is None and eps_x > 0:
        best.input_delta = torch.zeros_like(x)
    with torch.no_grad():
        lower = certified_margins(weights, x, y, eps_list, eps_x, "ibp")
    lower[torch.arange(x.shape[0]), y] = float("inf")
    if stop_at is not None:
        lower[best.margins <= stop_at] = float("inf")
    example, j = torch.nonzero(lower < best.margins[:, None], as_tuple=True)
    for start in range(0, len(j), pairs_per_chunk):
        pairs = slice(start, start + pairs_per_chunk)
        deltas, dx = _descend(
            weights,
            x[example[pairs]],
            y[example[pairs]],
            j[pairs],
            eps_list,
            eps_x,
            steps,
            restarts,
            generator,
        )
        _keep_realised(
            weights, x, y, example[pairs], j[pairs], eps_list, deltas, dx, best
        )
    return best


def _through_free_layers(
    weights: Weights,
    x: torch.Tensor,
    deltas: list,
    dx: torch.Tensor | None,
) -> torch.Tensor:
    """The input of layer L-1 (of layer L if L = 1) under the descended
    perturbations."""
    z = x if dx is None else x + dx
    for w, d in zip(weights[: max(len(weights) - 2, 0)], deltas):
        z = torch.relu(apply_weight(w if d is None else w + d, z))
    return z


def _start(
    shape: tuple[int, ...], r: Radius, restart: int, generator, dtype
) -> torch.Tensor:
    """Restart 0 starts at the clean point, odd restarts at a random corner of the box,
    even ones uniformly inside it."""
    if restart == 0:
        return torch.zeros(shape, dtype=dtype)
    start = _random_box(shape, r, generator, dtype)
    return r * start.sign() if restart % 2 == 1 else start


def _direction(g: torch.Tensor, restart: int) -> torch.Tensor:
    """The step direction: the gradient's sign on even restarts, the gradient scaled to
    unit max-norm per row on odd ones (it can follow a valley that is not diagonal)."""
    if restart % 2 == 0:
        return g.sign()
    scale = g.abs().flatten(1).amax(1).clamp_min(1e-30)
    return g / scale.view(-1, *[1] * (g.dim() - 1))


def _descend(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    j: torch.Tensor,
    eps_list: list[Radius],
    eps_x: float,
    steps: int,
    restarts: int,
    generator: torch.Generator | None,
) -> tuple[list, torch.Tensor | None]:
    """Per pair (row), the perturbations of the layers before the last two and of
    the input that give the lowest best-response value found."""
    n_free = max(len(weights) - 2, 0)
    radii = [*eps_list[:n_free], eps_x]
    shapes = [(len(y), *w.shape) for w in weights[:n_free]] + [tuple(x.shape)]

    def value(perturbation: list) -> tuple[torch.Tensor, torch.Tensor]:
        z = _through_free_layers(weights, x, perturbation[:-1], perturbation[-1])
        return _best_response(weights, z, y, j, eps_list)[:2]

    best = [
        torch.zeros(sh, dtype=x.dtype) if is_active(r) else None
        for sh, r in zip(shapes, radii)
    ]
    if not any(map(is_active, radii)):
        return best[:-1], best[-1]
    with torch.no_grad():
        best_value = value(best)[0]
    for restart in range(restarts):
        current = [
            None
            if not is_active(r)
            else _start(sh, r, restart, generator, x.dtype).requires_grad_()
            for sh, r in zip(shapes, radii)
        ]
        leaves = [(t, r) for t, r in zip(current, radii) if t is not None]
        for step in range(steps + 1):
            exact, slack = value(current)
            best_value = _keep_better(best, best_value, current, exact.detach())
            if step == steps:
                break
            # the direction from a leaky surrogate: it moves off plateaus of dead units
            surrogate = (exact + 0.01 * slack).sum()
            grads = torch.autograd.grad(surrogate, [t for t, _ in leaves])
            size = 0.25 * (1 + math.cos(math.pi * step / steps))
            with torch.no_grad():
                for (t, r), g in zip(leaves, grads):
                    t.sub_(size * r * _direction(g, restart)).clamp_(-r, r)
        corner = [None if t is None else r * t.sign() for t, r in zip(current, radii)]
        with torch.no_grad():
            best_value = _keep_better(best, best_value, corner, value(corner)[0])
    return best[:-1], best[-1]


def _keep_better(
    best: list, best_value: torch.Tensor, candidate: list, value: torch.Tensor
) -> torch.Tensor:
    """Copy the rows of ``candidate`` whose value beats ``best_value`` into ``best``;
    returns the updated values."""
    better = value < best_value
    if better.any():
        for kept, c in zip(best, candidate):
            if c is not None:
                kept[better] = c.detach()[better]
    return torch.where(better, value, best_value)


def _keep_realised(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    example: torch.Tensor,
    j: torch.Tensor,
    eps_list: list[Radius],
    deltas: list,
    dx: torch.Tensor | None,
    best: AttackResult,
) -> None:
    """Apply each pair's perturbation (with the last two layers' best response)
    through the network and keep, per example, the lowest realised margin where it
    beats ``best``."""
    xb, yb = x[example], y[example]
    with torch.no_grad():
        z = _through_free_layers(weights, xb, deltas, dx)
        _, _, delta_prev, delta_last = _best_response(weights, z, yb, j, eps_list)
        last = delta_last if is_active(eps_list[-1]) else None
        full = [*deltas, delta_prev, last] if len(weights) > 1 else [last]
        perturbed = [w if d is None else w + d for w, d in zip(weights, full)]
        realised = worst_margin(
            class_margins(mlp_forward(perturbed, xb if dx is None else xb + dx), yb), yb
        )
        # per example, its pair with the lowest realised margin
        order = torch.argsort(realised, stable=True)
        order = order[torch.argsort(example[order], stable=True)]
        first = torch.ones(len(order), dtype=torch.bool)
        first[1:] = example[order][1:] != example[order][:-1]
        chosen = order[first]
        winners = example[chosen]
        better = realised[chosen] < best.margins[winners]
        chosen, winners = chosen[better], winners[better]
        best.margins[winners] = realised[chosen]
        for k, d in enumerate(full):
            if d is not None:
                best.weight_deltas[k][winners] = d[chosen]
        if dx is not None:
            best.input_delta[winners] = dx[chosen]
