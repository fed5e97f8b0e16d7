"""Empirical attacks on noisy quantum classifiers, to set against the certificates.

- :func:`feature_flip_radius`: projected gradient descent on the classical features,
  through the QNode, over a grid of :math:`\\ell_2` radii; returns the smallest radius
  that flips the prediction.
- :func:`mixing_attack_radius`: the closest state, along the segment to the eigenvector
  that most favours another class, that flips the prediction: an upper bound on the true
  robust radius.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from trustml_ref.quantum_cert.channels import DTYPE

if TYPE_CHECKING:  # the classifier needs PennyLane; the radii and channels do not
    from trustml_ref.quantum_cert.classifier import QuantumClassifier


def feature_flip_radius(
    clf: QuantumClassifier,
    x: torch.Tensor,
    p_global: float,
    radii: Sequence[float],
    *,
    steps: int = 10,
    p_local: float = 0.0,
    local_noise: str = "every_layer",
) -> torch.Tensor:
    """Smallest radius in ``radii`` (ascending) at which :math:`\\ell_2` PGD on the
    features flips the noisy prediction, per example; ``inf`` where none does. Labels
    are the clean noisy predictions. The noise is that of
    :meth:`QuantumClassifier.outcome_probs` (global ``p_global``, and local ``p_local``
    as ``local_noise`` places it)."""
    radii = sorted(float(r) for r in radii)
    if not radii or radii[0] <= 0:
        raise ValueError("radii must be a non-empty list of positive numbers")
    x = clf.check_features(x).detach()
    outcomes = clf.outcome_probs_fn(p_global, p_local, local_noise)  # operators once

    def class_probs(z: torch.Tensor) -> torch.Tensor:
        return outcomes(z)[:, : clf.n_classes]

    with torch.no_grad():
        label = class_probs(x).argmax(1)
    found = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)
    for r in radii:
        todo = torch.isinf(found)
        if not todo.any():
            break
        xs, ys = x[todo], label[todo]
        delta = torch.zeros_like(xs, requires_grad=True)
        flipped = torch.zeros(len(ys), dtype=torch.bool)
        for _ in range(steps):
            probs = class_probs(xs + delta)
            top = probs.gather(1, ys[:, None]).squeeze(1)
            other = probs.scatter(1, ys[:, None], -1.0).max(1).values
            flipped |= (other >= top).detach()
            (grad,) = torch.autograd.grad((top - other).sum(), delta)
            with torch.no_grad():
                step = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                delta -= 2.5 * r / steps * step
                norm = delta.norm(dim=1, keepdim=True)
                delta *= (r / norm.clamp_min(1e-12)).clamp(max=1.0)
        with torch.no_grad():
            probs = class_probs(xs + delta)
            flipped |= probs.scatter(1, ys[:, None], -1.0).max(
                1
            ).values >= probs.gather(1, ys[:, None]).squeeze(1)
        idx = todo.nonzero().squeeze(1)
        found[idx[flipped]] = r
    return found


def mixing_attack_radius(
    heisenberg_operators: Sequence[torch.Tensor], states: torch.Tensor
) -> torch.Tensor:
    """Trace distance at which :math:`\\sigma_t = (1-t)\\rho + t|v\\rangle\\langle v|`
    flips the prediction.

    ``states`` are pure state vectors (batch, d). For the predicted class :math:`a` and
    each other class :math:`b`, :math:`v` is the top eigenvector of :math:`\\tilde M_b -
    \\tilde M_a`; the score difference is linear in :math:`t`, so the flip point is
    explicit. The trace distance of :math:`\\sigma_t` from :math:`\\rho` is
    :math:`t\\sqrt{1 - |\\langle\\psi|v\\rangle|^2}`. Returns the smallest over
    :math:`b` (``inf`` if no class can be reached).
    """
    ops = [torch.as_tensor(m, dtype=DTYPE) for m in heisenberg_operators]
    psi = torch.as_tensor(states, dtype=DTYPE)
    scores = torch.stack(
        [torch.einsum("bi,ij,bj->b", psi.conj(), m, psi).real for m in ops], 1
    )
    label = scores.argmax(1)
    best = torch.full((psi.shape[0],), float("inf"), dtype=torch.float64)
    for a in label.unique().tolist():
        rows = (label == a).nonzero().squeeze(1)
        for b in range(len(ops)):
            if b == a:
                continue
            evals, evecs = torch.linalg.eigh(ops[b] - ops[a])
            end = float(evals[-1])  # the score gap at t = 1, the same for every state
            if end <= 0:
                continue
            v = evecs[:, -1]
            start = scores[rows, b] - scores[rows, a]  # the score gap at t = 0
            t = -start / (end - start)
            overlap = (psi[rows].conj() @ v).abs() ** 2
            best[rows] = torch.minimum(
                best[rows], t * (1 - overlap).clamp_min(0.0).sqrt()
            )
    return best
