"""Quantum differential privacy of a noisy measurement, and the certificate it gives.

A noisy algorithm :math:`\\rho \\mapsto \\{\\mathrm{Tr}(M_k\\,\\mathcal E(\\rho))\\}_k`
is :math:`\\varepsilon`-DP for states within trace distance :math:`\\tau` when, for
every outcome set :math:`S` and all such pairs, :math:`\\mathrm{Tr}(M_S\\mathcal
E(\\rho)) \\le e^{\\varepsilon}\\,\\mathrm{Tr}(M_S\\mathcal E(\\sigma))`. With the
Heisenberg-picture operators :math:`\\tilde M_S = \\mathcal E^\\dagger(M_S)`, the exact
value is :math:`\\varepsilon^* = \\ln(1 + (\\kappa^* - 1)\\tau)` with :math:`\\kappa^* =
\\max_S \\lambda_{\\max}(\\tilde M_S)/\\lambda_{\\min}(\\tilde M_S)`. Derived in
``notebooks/04_quantum_certified_robustness``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from trustml_ref.quantum_cert.channels import DTYPE, check_probability


def _check_tau(tau: float) -> float:
    if not 0 <= tau <= 1 or math.isnan(tau):
        raise ValueError(f"tau (a trace distance) must lie in [0, 1], got {tau!r}")
    return float(tau)


def kappa_star(heisenberg_operators: Sequence[torch.Tensor]) -> float:
    """:math:`\\kappa^* = \\max_S \\lambda_{\\max}(\\tilde M_S) /
    \\lambda_{\\min}(\\tilde M_S)` over non-empty outcome sets.

    Returns ``inf`` when some :math:`\\tilde M_S` is singular (then no finite
    :math:`\\varepsilon` exists). The number of sets is :math:`2^K - 1`, so this is
    meant for a handful of outcomes.
    """
    ops = [torch.as_tensor(m, dtype=DTYPE) for m in heisenberg_operators]
    if not ops:
        raise ValueError("heisenberg_operators must not be empty")
    d = ops[0].shape[-1]
    if any(m.shape != (d, d) for m in ops):
        raise ValueError(f"every operator must have shape ({d}, {d})")
    if len(ops) > 16:
        raise ValueError(
            f"kappa_star enumerates 2^K outcome sets; K = {len(ops)} is too many (at "
            "most 16)"
        )
    eig = [
        torch.linalg.eigvalsh(sum(ops[i] for i in subset))
        for r in range(1, len(ops) + 1)
        for subset in itertools.combinations(range(len(ops)), r)
    ]
    kappa = 1.0
    for e in eig:
        low, high = float(e[0]), float(e[-1])
        if low <= 1e-15 * max(high, 1.0):
            return math.inf
        kappa = max(kappa, high / low)
    return kappa


def epsilon_from_kappa(kappa: float, tau: float) -> float:
    """:math:`\\varepsilon^* = \\ln(1 + (\\kappa - 1)\\tau)`; ``inf`` for infinite
    :math:`\\kappa` and :math:`\\tau > 0`."""
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa!r}")
    tau = _check_tau(tau)
    if math.isinf(kappa):
        return math.inf if tau > 0 else 0.0
    return math.log1p((kappa - 1) * tau)


def depolarizing_kappa(p: float, d_eff: float) -> float:
    """:math:`\\kappa = 1 + (1-p)\\,d_{\\text{eff}}/p` for global depolarising noise
    with replacement ``p``.

    :math:`d_{\\text{eff}} = d/r`, with :math:`r` the smallest rank of a measured
    projector sum.
    """
    check_probability(p)
    if d_eff < 1:
        raise ValueError(f"d_eff = d / rank must be >= 1, got {d_eff}")
    return 1 + (1 - p) * d_eff / p


def depolarizing_epsilon(p: float, d: int, tau: float, rank: int = 1) -> float:
    """The closed form
    :math:`\\varepsilon = \\ln\\big(1 + (1-p)\\,d\\,\\tau/(p\\,r)\\big)`."""
    if rank < 1 or rank > d:
        raise ValueError(f"rank must lie in [1, d={d}], got {rank}")
    return epsilon_from_kappa(depolarizing_kappa(p, d / rank), tau)
