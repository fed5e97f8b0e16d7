"""Noise channels on density matrices, and random rotation noise as a depolarising
channel.

Conventions (derived in ``notebooks/04_quantum_certified_robustness``):

- *replacement probability* :math:`p`: the depolarising channel
  :math:`\\mathcal D_p(\\rho) = (1-p)\\rho + p\\,I/d` replaces the state by the
  maximally mixed one with probability :math:`p`;
- PennyLane's ``qml.DepolarizingChannel(q)`` applies Paulis with probability :math:`q/3`
  each, which is replacement :math:`p = 4q/3` on one qubit
  (:func:`pennylane_depolarizing_parameter` converts);
- random rotation noise rotates a qubit by an angle :math:`\\theta` about an axis drawn
  uniformly from :math:`\\pm X, \\pm Y, \\pm Z`; on average it is :math:`\\mathcal D_p`
  with :math:`p = \\tfrac23(1 - \\mathbb E\\cos\\theta)`
  (:func:`rotation_noise_replacement`).
"""

from __future__ import annotations

import math

import torch

DTYPE = torch.complex128
PAULIS: dict[str, torch.Tensor] = {
    "I": torch.eye(2, dtype=DTYPE),
    "X": torch.tensor([[0, 1], [1, 0]], dtype=DTYPE),
    "Y": torch.tensor([[0, -1j], [1j, 0]], dtype=DTYPE),
    "Z": torch.tensor([[1, 0], [0, -1]], dtype=DTYPE),
}


def check_probability(p: float, name: str = "p", *, allow_zero: bool = False) -> float:
    """Validate a probability in (0, 1] (or [0, 1] with ``allow_zero``)."""
    low_ok = p >= 0 if allow_zero else p > 0
    if not (low_ok and p <= 1) or math.isnan(p):
        raise ValueError(
            f"{name} must lie in {'[0' if allow_zero else '(0'}, 1], got {p!r}"
        )
    return float(p)


def check_density_matrix(
    rho: torch.Tensor, name: str = "rho", atol: float = 1e-8
) -> torch.Tensor:
    """A square, Hermitian, unit-trace, positive semidefinite matrix (or a batch of
    them)."""
    if rho.dim() < 2 or rho.shape[-1] != rho.shape[-2]:
        raise ValueError(
            f"{name} must be square (..., d, d), got shape {tuple(rho.shape)}"
        )
    rho = rho.to(DTYPE)
    if not torch.allclose(rho, rho.mH, atol=atol):
        raise ValueError(f"{name} must be Hermitian")
    trace = torch.diagonal(rho, dim1=-2, dim2=-1).sum(-1).real
    if not torch.allclose(trace, torch.ones_like(trace), atol=atol):
        raise ValueError(
            f"{name} must have unit trace, got {trace.flatten()[:3].tolist()}"
        )
    if torch.linalg.eigvalsh(rho).min() < -atol:
        raise ValueError(f"{name} must be positive semidefinite")
    return rho


def depolarize(rho: torch.Tensor, p: float) -> torch.Tensor:
    """Global depolarising channel :math:`(1-p)\\rho + p I/d` with replacement
    probability ``p``."""
    check_probability(p, allow_zero=True)
    d = rho.shape[-1]
    return (1 - p) * rho + p * torch.eye(d, dtype=rho.dtype) / d


def depolarize_qubit_adjoint(
    operator: torch.Tensor, p: float, qubit: int, n_qubits: int
) -> torch.Tensor:
    """Heisenberg picture of depolarising qubit ``qubit`` (wire order big-endian, as
    PennyLane's).

    The channel is unital and self-adjoint: :math:`M \\mapsto (1-p)M +
    p\\,\\tfrac{I_q}{2}\\otimes\\mathrm{Tr}_q M`.
    """
    check_probability(p, allow_zero=True)
    if not 0 <= qubit < n_qubits:
        raise ValueError(f"qubit must lie in [0, {n_qubits}), got {qubit}")
    d = 2**n_qubits
    t = operator.reshape([2] * (2 * n_qubits))
    # partial trace over the qubit
    traced = torch.diagonal(t, dim1=qubit, dim2=n_qubits + qubit).sum(-1)
    # put the identity back on that qubit: outer product with I/2, restoring the axis
    # order
    restored = (
        traced.unsqueeze(qubit).unsqueeze(n_qubits + qubit)
        * PAULIS["I"].reshape(
            [2 if i in (qubit, n_qubits + qubit) else 1 for i in range(2 * n_qubits)]
        )
        / 2
    )
    return (1 - p) * operator + p * restored.reshape(d, d)


def rotation(axis: str, theta: torch.Tensor) -> torch.Tensor:
    """:math:`R_P(\\theta) = e^{-i\\theta P/2} = \\cos\\tfrac\\theta2 I -
    i\\sin\\tfrac\\theta2 P`, batched over ``theta``."""
    if axis not in ("X", "Y", "Z"):
        raise ValueError(f"axis must be 'X', 'Y' or 'Z', got {axis!r}")
    theta = torch.as_tensor(theta, dtype=torch.float64)[..., None, None]
    return torch.cos(theta / 2) * PAULIS["I"] - 1j * torch.sin(theta / 2) * PAULIS[axis]


def rotation_noise_replacement(cos_mean: float) -> float:
    """Replacement probability :math:`p = \\tfrac23(1 - \\mathbb E\\cos\\theta)` of
    random rotation noise.

    Defined for :math:`\\mathbb E\\cos\\theta \\ge -1/2`, where :math:`p \\le 1` (the
    range :func:`~trustml_ref.quantum_cert.depolarizing_kappa` accepts).
    """
    if not -0.5 <= cos_mean <= 1.0:
        raise ValueError(
            "cos_mean must lie in [-1/2, 1] (replacement p in [0, 1]), got "
            f"{cos_mean}; below -1/2 "
            "X, Y and Z each outweigh I, outside the replacement model the "
            "certificates assume"
        )
    return 2.0 * (1.0 - cos_mean) / 3.0


def rotation_noise_kraus(
    angles: torch.Tensor, weights: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Kraus operators of random rotation noise for a discrete angle distribution.

    One operator :math:`\\sqrt{w_a/6}\\,R_{\\pm P}(\\theta_a)` per angle, axis and sign
    (``weights`` default to uniform). Their completeness :math:`\\sum K^\\dagger K = I`
    holds for any distribution.
    """
    angles = torch.as_tensor(angles, dtype=torch.float64).flatten()
    weights = (
        torch.full_like(angles, 1 / len(angles))
        if weights is None
        else torch.as_tensor(weights, dtype=torch.float64)
    )
    if (
        weights.shape != angles.shape
        or (weights < 0).any()
        or not math.isclose(float(weights.sum()), 1.0, rel_tol=1e-9)
    ):
        raise ValueError(
            "weights must be non-negative, sum to 1 and match angles in shape"
        )
    return [
        torch.sqrt(w / 6) * rotation(axis, sign * theta)
        for theta, w in zip(angles, weights)
        for axis in ("X", "Y", "Z")
        for sign in (1.0, -1.0)
    ]


def born_probabilities(
    heisenberg_operators: list[torch.Tensor], states: torch.Tensor
) -> torch.Tensor:
    """:math:`\\langle\\psi|\\tilde M_k|\\psi\\rangle` for pure ``states`` (batch, d),
    shape (batch, K).

    With the Heisenberg operators :math:`\\tilde M_k = \\mathcal E^\\dagger(M_k)` of a
    noisy circuit these are its outcome probabilities; differentiable in ``states``.
    """
    states = torch.as_tensor(states).to(DTYPE)
    if states.dim() != 2 or any(
        m.shape != (states.shape[1],) * 2 for m in heisenberg_operators
    ):
        raise ValueError(
            "states must be (batch, d) and every operator (d, d); got "
            f"{tuple(states.shape)}"
        )
    return torch.stack(
        [
            torch.einsum("bi,ij,bj->b", states.conj(), m, states).real
            for m in heisenberg_operators
        ],
        1,
    )


def apply_kraus(rho: torch.Tensor, kraus: list[torch.Tensor]) -> torch.Tensor:
    """:math:`\\sum_k K_k \\rho K_k^\\dagger`."""
    return sum(k @ rho.to(DTYPE) @ k.mH for k in kraus)


def pennylane_depolarizing_parameter(p_replacement: float) -> float:
    """The ``p`` of ``qml.DepolarizingChannel`` that gives replacement
    ``p_replacement`` on one qubit: :math:`3p/4`."""
    check_probability(p_replacement, "p_replacement", allow_zero=True)
    return 0.75 * p_replacement
