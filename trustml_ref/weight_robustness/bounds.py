"""Certified margins of bias-free ReLU networks under weight (and input) perturbations.

Weights may move elementwise by :math:`|\\hat W^k - W^k| \\le \\varepsilon_k` (one
:math:`\\varepsilon_k` per layer, 0 switches a layer off; IBP and the attacks also take
per-entry radii, :func:`layer_radii`) and, for the joint case, the input by
:math:`\\|\\hat x - x\\|_\\infty \\le \\varepsilon_x`. Three certificates, each a
lower bound on every pairwise margin :math:`\\hat f_i - \\hat f_j`, tightest last:

- :func:`closed_form_margin_drop`, the two-sequence recursion (Tsai et al. 2021
  setting);
- :func:`tightened_margin_drop`, its data-dependent tightening (exact when only the
  last layer moves);
- :func:`ibp_margin_lower`, interval bound propagation with interval weights.

Derived in ``notebooks/05_weight_perturbation`` (weights) and
``notebooks/06_joint_robustness`` (joint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from trustml_ref.checks import check_nonnegative
from trustml_ref.weight_robustness.network import (
    Weights,
    class_margins,
    hidden_activations,
    mlp_forward,
    worst_margin,
)

Radius = float | torch.Tensor


def per_layer_epsilons(eps: float | Sequence[float], n_layers: int) -> list[float]:
    """Validate :math:`(\\varepsilon_1, ..., \\varepsilon_L)`, one number per layer; a
    single number applies to every layer. (Per-entry radii: :func:`layer_radii`.)"""
    if isinstance(eps, torch.Tensor) or (
        not isinstance(eps, (int, float))
        and any(isinstance(e, torch.Tensor) for e in eps)
    ):
        raise ValueError(
            "eps must give one number per layer here; per-entry radii (tensors) are "
            "supported by the IBP certificate and the attacks only"
        )
    values = (
        [float(eps)] * n_layers
        if isinstance(eps, (int, float))
        else [float(e) for e in eps]
    )
    if len(values) != n_layers:
        raise ValueError(
            f"eps must give one value per layer ({n_layers} layers), got {len(values)} "
            "values"
        )
    for k, e in enumerate(values, start=1):
        if not math.isfinite(e) or e < 0:
            raise ValueError(f"eps for layer {k} must be a finite number >= 0, got {e}")
    return values


def layer_radii(eps: float | Sequence[Radius], weights: Weights) -> list[Radius]:
    """Validate the radii of the box :math:`|\\hat W^k_{ij} - W^k_{ij}| \\le
    \\varepsilon^k_{ij}`: per layer a number (every entry) or a tensor shaped like
    :math:`W^k` (per entry, as from :func:`relative_radii`). An all-zero tensor becomes
    0.0, so that "does layer k move" is ``is_active(radius)``."""
    if isinstance(eps, (int, float)) or not any(
        isinstance(e, torch.Tensor) for e in eps
    ):
        return per_layer_epsilons(eps, len(weights))
    if len(eps) != len(weights):
        raise ValueError(
            f"eps must give one value per layer ({len(weights)} layers), got "
            f"{len(eps)} values"
        )
    radii: list[Radius] = []
    for k, (e, w) in enumerate(zip(eps, weights), start=1):
        if not isinstance(e, torch.Tensor):
            radii.append(per_layer_epsilons([e], 1)[0])
            continue
        if e.shape != w.shape:
            raise ValueError(
                f"eps for layer {k} must be a number or a tensor of W^{k}'s shape "
                f"{tuple(w.shape)}, got shape {tuple(e.shape)}"
            )
        if not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
            raise ValueError(f"eps for layer {k} must be finite and >= 0 entrywise")
        radii.append(e.detach().to(w.dtype) if bool((e > 0).any()) else 0.0)
    return radii


def is_active(radius: Radius) -> bool:
    """Whether a radius from :func:`layer_radii` lets its layer move."""
    return isinstance(radius, torch.Tensor) or radius > 0


def relative_radii(
    weights: Weights, rho: float | Sequence[float]
) -> list[torch.Tensor]:
    """Per-entry relative radii :math:`\\varepsilon^k_{ij} = \\rho_k |W^k_{ij}|`: each
    weight may move by a fraction :math:`\\rho_k` of its own size, a ball that a
    function-preserving rescaling of the layers leaves unchanged."""
    rhos = per_layer_epsilons(rho, len(weights))
    return [r * w.detach().abs() for r, w in zip(rhos, weights)]


def pair_radius(eps_last: Radius, i, j) -> Radius:
    """Radius of :math:`\\hat W^L_i - \\hat W^L_j`: :math:`\\varepsilon^L_i +
    \\varepsilon^L_j` per entry (rows move independently)."""
    if isinstance(eps_last, torch.Tensor):
        return eps_last[i] + eps_last[j]
    return 2 * eps_last


def layer_norms(weights: Weights) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """:math:`\\gamma_k = \\max_j \\sum_i |W^k_{ij}|` (max column :math:`\\ell_1`,
    :math:`\\|W\\|_{1\\to1}`) and :math:`\\beta_k = \\max_i \\sum_j |W^k_{ij}|` (max row
    :math:`\\ell_1`, :math:`\\|W\\|_{\\infty\\to\\infty}`)."""
    gammas = [w.abs().sum(dim=0).max() for w in weights]
    betas = [w.abs().sum(dim=1).max() for w in weights]
    return gammas, betas


def _pairwise_row_l1(w_last: torch.Tensor) -> torch.Tensor:
    """:math:`\\|W^L_i - W^L_j\\|_1` for all class pairs, shape (K, K)."""
    return (w_last[:, None, :] - w_last[None, :, :]).abs().sum(-1)


def closed_form_margin_drop(
    weights: Weights, x: torch.Tensor, eps: float | Sequence[float], eps_x: float = 0.0
) -> torch.Tensor:
    """Bound on :math:`|\\Delta(f_i - f_j)|` for all pairs, shape ``(B, K, K)``.

    .. math::
        S_0 = \\|x\\|_1 + n_0\\varepsilon_x,\\ \\delta_0 = \\varepsilon_x,\\quad
        \\delta_k = \\beta_k\\delta_{k-1} + \\varepsilon_k S_{k-1},\\ S_k = (\\gamma_k
        + n_k\\varepsilon_k) S_{k-1},

        |\\Delta(f_i - f_j)| \\le \\|W^L_i - W^L_j\\|_1\\,\\delta_{L-1} +
        2\\varepsilon_L S_{L-1}.
    """
    eps_list = per_layer_epsilons(eps, len(weights))
    eps_x = check_nonnegative(eps_x, "eps_x")
    gammas, betas = layer_norms(weights)
    s = x.abs().sum(dim=1) + x.shape[1] * eps_x
    delta = torch.full_like(s, eps_x)
    for w, e, gamma, beta in zip(weights[:-1], eps_list[:-1], gammas[:-1], betas[:-1]):
        delta = beta * delta + e * s
        s = (gamma + w.shape[0] * e) * s
    pair = _pairwise_row_l1(weights[-1])
    drop = pair[None] * delta[:, None, None] + 2 * eps_list[-1] * s[:, None, None]
    return drop * (1 - torch.eye(pair.shape[0], dtype=drop.dtype))


def tightened_margin_drop(
    weights: Weights, x: torch.Tensor, eps: float | Sequence[float], eps_x: float = 0.0
) -> torch.Tensor:
    """Data-dependent tightening of :func:`closed_form_margin_drop`, shape ``(B, K,
    K)``.

    Tracks a deviation bound per neuron, :math:`d_k = |W^k| d_{k-1} + \\varepsilon_k
    S_{k-1}\\mathbf 1` (:math:`d_0 = \\varepsilon_x \\mathbf 1`), and :math:`S_k =
    \\min\\big((\\gamma_k + n_k\\varepsilon_k)S_{k-1},\\ \\|z^k\\|_1 + \\mathbf 1^\\top
    d_k\\big)` from the clean activations :math:`z^k`; then :math:`|\\Delta(f_i - f_j)|
    \\le |W^L_i - W^L_j|^\\top d_{L-1} + 2\\varepsilon_L S_{L-1}`. Never looser than the
    closed form; exact (:math:`2\\varepsilon_L\\|z^{L-1}\\|_1`) when only the last layer
    moves.
    """
    eps_list = per_layer_epsilons(eps, len(weights))
    eps_x = check_nonnegative(eps_x, "eps_x")
    gammas, _ = layer_norms(weights)
    hidden = hidden_activations(weights, x)
    s = x.abs().sum(dim=1) + x.shape[1] * eps_x
    d = torch.full_like(x, eps_x)
    for w, e, gamma, z in zip(weights[:-1], eps_list[:-1], gammas[:-1], hidden[1:]):
        d = d @ w.abs().T + e * s[:, None]
        s = torch.minimum(
            (gamma + w.shape[0] * e) * s, z.abs().sum(dim=1) + d.sum(dim=1)
        )
    w_last = weights[-1]
    pair_abs = (w_last[:, None, :] - w_last[None, :, :]).abs()  # (K, K, n)
    drop = (
        torch.einsum("ijn,bn->bij", pair_abs, d) + 2 * eps_list[-1] * s[:, None, None]
    )
    return drop * (1 - torch.eye(w_last.shape[0], dtype=drop.dtype))


def _interval_product_sum(
    w_lo: torch.Tensor, w_hi: torch.Tensor, l: torch.Tensor, u: torch.Tensor
):
    """Bounds of :math:`\\sum_m w_m z_m` over :math:`w \\in [w_{lo}, w_{hi}]`,
    :math:`z \\in [l, u]`.

    ``w_*`` has shape ``(*S, m)``, ``l, u`` shape ``(B, m)``; returns two tensors ``(B,
    *S)``. Each product's extremes lie at the corners of its box.
    """
    shape = (l.shape[0],) + (1,) * (w_lo.dim() - 1) + (l.shape[1],)
    l, u = l.reshape(shape), u.reshape(shape)
    corners = torch.stack([w_lo * l, w_lo * u, w_hi * l, w_hi * u])
    return corners.min(dim=0).values.sum(-1), corners.max(dim=0).values.sum(-1)


def ibp_bounds(
    weights: Weights, x: torch.Tensor, eps: float | Sequence[float], eps_x: float = 0.0
):
    """Interval bounds :math:`[l_k, u_k]` of every hidden activation :math:`\\hat z^k`,
    ``k = 0..L-1``."""
    eps_list = layer_radii(eps, weights)
    eps_x = check_nonnegative(eps_x, "eps_x")
    l, u = x - eps_x, x + eps_x
    bounds = [(l, u)]
    for w, e in zip(weights[:-1], eps_list[:-1]):
        lo, hi = _interval_product_sum(w - e, w + e, l, u)
        l, u = torch.relu(lo), torch.relu(hi)
        bounds.append((l, u))
    return bounds


def ibp_margin_lower(
    weights: Weights, x: torch.Tensor, eps: float | Sequence[float], eps_x: float = 0.0
) -> torch.Tensor:
    """IBP lower bound on :math:`\\hat f_i - \\hat f_j` for all pairs, shape ``(B, K,
    K)``.

    The margin is bounded as one interval product, :math:`(\\hat W^L_i - \\hat
    W^L_j)^\\top \\hat z^{L-1}` with :math:`\\hat W^L_i - \\hat W^L_j \\in [W^L_i -
    W^L_j \\pm (\\varepsilon^L_i + \\varepsilon^L_j)]`, rather than :math:`\\hat
    f_i` and :math:`\\hat f_j` separately (rows of :math:`W^L` move independently).
    """
    eps_last = layer_radii(eps, weights)[-1]
    l, u = ibp_bounds(weights, x, eps, eps_x)[-1]
    w_last = weights[-1]
    k = torch.arange(w_last.shape[0])
    diff = w_last[:, None, :] - w_last[None, :, :]
    radius = pair_radius(eps_last, k[:, None], k[None, :])
    lower, _ = _interval_product_sum(diff - radius, diff + radius, l, u)
    return lower * (1 - torch.eye(w_last.shape[0], dtype=lower.dtype))


CERTIFICATES = ("closed_form", "tightened", "ibp")


def certified_margins(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    eps_x: float = 0.0,
    method: str = "ibp",
) -> torch.Tensor:
    """Certified lower bounds on :math:`\\hat f_y - \\hat f_j` for every class ``j``,
    shape ``(B, K)``.

    The prediction is certified when every entry but ``j = y`` (which is 0) is positive:
    ``worst_margin(certified_margins(...), y) > 0``.
    """
    if method not in CERTIFICATES:
        raise ValueError(f"method must be one of {CERTIFICATES}, got {method!r}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    index = y[:, None, None].expand(-1, 1, weights[-1].shape[0])
    if method == "ibp":
        return ibp_margin_lower(weights, x, eps, eps_x).gather(1, index).squeeze(1)
    drop_fn = (
        closed_form_margin_drop if method == "closed_form" else tightened_margin_drop
    )
    drop = drop_fn(weights, x, eps, eps_x).gather(1, index).squeeze(1)
    return class_margins(mlp_forward(weights, x), y) - drop


def robust_cross_entropy(lower_margins: torch.Tensor) -> torch.Tensor:
    """Upper bound on the cross-entropy over the perturbation set, per example.

    :math:`\\mathrm{CE}(\\hat f, y) = \\log\\sum_j e^{-(\\hat f_y - \\hat f_j)} \\le
    \\log\\sum_j e^{-\\underline m_{yj}}` for certified lower margins :math:`\\underline
    m_{yj}` (:math:`\\underline m_{yy} = 0`). It is at most :math:`\\mathrm{CE}(f, y) +
    \\max_j \\text{drop}_{yj}`, the error bound of the joint chapter.
    """
    return torch.logsumexp(-lower_margins, dim=1)


def certified_accuracy(
    weights: Weights,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    eps_x: float = 0.0,
    method: str = "ibp",
) -> float:
    """Fraction of examples whose prediction is ``y`` for every perturbation in the
    ball (certified)."""
    return float(
        (worst_margin(certified_margins(weights, x, y, eps, eps_x, method), y) > 0)
        .float()
        .mean()
    )
