"""A variational quantum classifier in PennyLane (``default.qubit``, backprop,
broadcasting).

Encoding: amplitude (:math:`2^n` features, normalised) or angle (:math:`n` features, one
``RY`` each). Ansatz: ``n_layers`` layers of a general rotation on every qubit and a
ring of CNOTs. Read-out: the computational-basis outcomes of the first :math:`m =
\\lceil\\log_2 K\\rceil` qubits; class :math:`k` is outcome :math:`k` (outcomes beyond
:math:`K` belong to no class). Each outcome's projector has rank :math:`r = 2^{n-m}`, so
:math:`d_{\\text{eff}} = d/r = 2^m`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pennylane as qml
import torch
from torch import nn

from trustml_ref.quantum_cert.channels import (
    DTYPE,
    born_probabilities,
    check_probability,
    depolarize_qubit_adjoint,
    pennylane_depolarizing_parameter,
)
from trustml_ref.training import epoch_batches, minimise

ENCODINGS = ("amplitude", "angle")
LOCAL_NOISE = ("every_layer", "input")


def _check_local_noise(local_noise: str) -> None:
    if local_noise not in LOCAL_NOISE:
        raise ValueError(
            f"local_noise must be 'every_layer' or 'input', got {local_noise!r}"
        )


class QuantumClassifier(nn.Module):
    """Class probabilities :math:`y_k(x) = \\mathrm{Tr}(M_k\\,U\\mathcal
    E(\\rho(x))U^\\dagger)` under optional noise."""

    def __init__(
        self,
        n_qubits: int,
        n_layers: int,
        n_classes: int,
        encoding: str = "amplitude",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if n_qubits < 1 or n_layers < 1 or not 2 <= n_classes <= 2**n_qubits:
            raise ValueError(
                f"need n_qubits >= 1, n_layers >= 1 and 2 <= n_classes <= 2**n_qubits; "
                f"got {n_qubits}, {n_layers}, {n_classes}"
            )
        self.n_qubits, self.n_layers, self.n_classes, self.encoding = (
            n_qubits,
            n_layers,
            n_classes,
            encoding,
        )
        self.n_readout = max(1, math.ceil(math.log2(n_classes)))
        self.weights = nn.Parameter(
            0.1
            * torch.randn(
                n_layers, n_qubits, 3, generator=generator, dtype=torch.float64
            )
        )
        self.wires = list(range(n_qubits))
        self._pure = qml.QNode(
            self._circuit,
            qml.device("default.qubit", wires=n_qubits),
            interface="torch",
            diff_method="backprop",
        )

    @property
    def n_features(self) -> int:
        return 2**self.n_qubits if self.encoding == "amplitude" else self.n_qubits

    @property
    def d_eff(self) -> int:
        """:math:`d / r = 2^m`: the dimension over the rank of one outcome's
        projector."""
        return 2**self.n_readout

    def check_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"x must have shape (batch, {self.n_features}) for {self.encoding} "
                "encoding on "
                f"{self.n_qubits} qubits, got {tuple(x.shape)}"
            )
        if self.encoding == "amplitude" and (x.norm(dim=1) == 0).any():
            raise ValueError("amplitude encoding needs non-zero feature vectors")
        return x

    def _encode(self, x: torch.Tensor) -> None:
        if self.encoding == "amplitude":
            qml.AmplitudeEmbedding(x, wires=self.wires, normalize=True)
        else:
            qml.AngleEmbedding(x, wires=self.wires, rotation="Y")

    def _layer(self, w: torch.Tensor) -> None:
        for q in self.wires:
            qml.Rot(w[..., q, 0], w[..., q, 1], w[..., q, 2], wires=q)
        if self.n_qubits > 1:
            for q in self.wires:
                qml.CNOT(wires=[q, (q + 1) % self.n_qubits])

    def _circuit(self, x: torch.Tensor, weights: torch.Tensor):
        self._encode(x)
        for layer in range(self.n_layers):
            self._layer(weights[layer])
        return qml.probs(wires=self.wires[: self.n_readout])

    def outcome_probs_fn(
        self,
        p_global: float = 0.0,
        p_local: float = 0.0,
        local_noise: str = "every_layer",
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> outcome probabilities`` of the noisy circuit, shape (batch,
        :math:`2^m`), differentiable in ``x``; local noise's operators are built once.

        Global depolarising noise of replacement ``p_global`` on the encoded state gives
        :math:`(1-p)\\,y + p/2^m` (it commutes with the unitary and the maximally mixed
        state gives uniform outcomes). With ``p_local > 0`` every qubit is depolarised
        as well (see :meth:`heisenberg_operators`), and the probabilities are Born's
        rule on its operators.
        """
        check_probability(p_global, "p_global", allow_zero=True)
        check_probability(p_local, "p_local", allow_zero=True)
        if p_local > 0:
            ops = self.heisenberg_operators(p_global, p_local, local_noise)

            def noisy(x: torch.Tensor) -> torch.Tensor:
                return born_probabilities(ops, self.encoded_states(x))

            return noisy

        def depolarised(x: torch.Tensor) -> torch.Tensor:
            probs = self._pure(self.check_features(x), self.weights)
            return (1 - p_global) * probs + p_global / self.d_eff

        return depolarised

    def outcome_probs(
        self,
        x: torch.Tensor,
        p_global: float = 0.0,
        p_local: float = 0.0,
        local_noise: str = "every_layer",
    ) -> torch.Tensor:
        """Read-out outcome probabilities of :meth:`outcome_probs_fn` at ``x``."""
        return self.outcome_probs_fn(p_global, p_local, local_noise)(x)

    def forward(
        self,
        x: torch.Tensor,
        p_global: float = 0.0,
        p_local: float = 0.0,
        local_noise: str = "every_layer",
    ) -> torch.Tensor:
        """Class probabilities (the first ``n_classes`` outcomes), shape (batch,
        n_classes)."""
        return self.outcome_probs(x, p_global, p_local, local_noise)[
            :, : self.n_classes
        ]

    def local_noise_probs(
        self, x: torch.Tensor, p_local: float, local_noise: str = "every_layer"
    ) -> torch.Tensor:
        """Outcome probabilities with every qubit depolarised (replacement ``p_local``)
        before every layer (``"every_layer"``) or only on the encoded state
        (``"input"``), simulated on ``default.mixed``: an independent check of
        :meth:`heisenberg_operators`."""
        check_probability(p_local, "p_local", allow_zero=True)
        _check_local_noise(local_noise)
        q = pennylane_depolarizing_parameter(p_local)

        def circuit(xi, weights):
            self._encode(xi)
            for layer in range(self.n_layers):
                if local_noise == "every_layer" or layer == 0:
                    for wire in self.wires:
                        qml.DepolarizingChannel(q, wires=wire)
                self._layer(weights[layer])
            return qml.probs(wires=self.wires[: self.n_readout])

        node = qml.QNode(
            circuit, qml.device("default.mixed", wires=self.n_qubits), interface="torch"
        )
        x = self.check_features(x)
        return torch.stack([node(xi, self.weights.detach()) for xi in x])

    def layer_unitaries(self) -> list[torch.Tensor]:
        """The unitary of each ansatz layer, :math:`2^n \\times 2^n` (PennyLane's wire
        order)."""
        w = self.weights.detach()
        return [
            torch.as_tensor(
                qml.matrix(self._layer, wire_order=self.wires)(w[layer]), dtype=DTYPE
            )
            for layer in range(self.n_layers)
        ]

    def readout_projectors(self) -> list[torch.Tensor]:
        """:math:`M_k` for every read-out outcome: a basis projector on the read-out
        qubits times :math:`I`."""
        rest = torch.eye(2 ** (self.n_qubits - self.n_readout), dtype=DTYPE)
        return [
            torch.kron(torch.diag(torch.eye(self.d_eff, dtype=DTYPE)[k]), rest)
            for k in range(self.d_eff)
        ]

    def heisenberg_operators(
        self,
        p_global: float = 0.0,
        p_local: float = 0.0,
        local_noise: str = "every_layer",
    ) -> list[torch.Tensor]:
        """:math:`\\tilde M_k = \\mathcal E^\\dagger(M_k)` of the whole noisy circuit
        after encoding.

        Walks the circuit backwards: conjugation by each layer unitary, the adjoint of
        per-qubit depolarising noise (``p_local``) before each layer
        (``local_noise="every_layer"``: ``n_layers`` stages, the first on the encoded
        state, none after the last layer, as :meth:`local_noise_probs` simulates) or
        only on the encoded state (``"input"``, what random rotation noise on the input
        gives), and global depolarising (``p_global``) on the encoded state, :math:`M
        \\mapsto (1-p)M + p\\,\\mathrm{Tr}(M)/d\\,I`.
        """
        check_probability(p_global, "p_global", allow_zero=True)
        check_probability(p_local, "p_local", allow_zero=True)
        _check_local_noise(local_noise)
        d = 2**self.n_qubits
        ops = []
        for m in self.readout_projectors():
            for layer, u in reversed(list(enumerate(self.layer_unitaries()))):
                m = u.mH @ m @ u
                if local_noise == "every_layer" or layer == 0:
                    for wire in self.wires:
                        m = depolarize_qubit_adjoint(m, p_local, wire, self.n_qubits)
            m = (1 - p_global) * m + p_global * torch.diagonal(m).sum() / d * torch.eye(
                d, dtype=DTYPE
            )
            ops.append(m)
        return ops

    def encoded_states(self, x: torch.Tensor) -> torch.Tensor:
        """State vectors :math:`|\\psi(x)\\rangle` after encoding, shape (batch,
        :math:`2^n`)."""

        def encode_only(xi):
            self._encode(xi)
            return qml.state()

        node = qml.QNode(
            encode_only,
            qml.device("default.qubit", wires=self.n_qubits),
            interface="torch",
        )
        return torch.as_tensor(node(self.check_features(x)), dtype=DTYPE)


def train_classifier(
    clf: QuantumClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    p_global: float = 0.0,
    epochs: int = 60,
    lr: float = 0.05,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    desc: str | None = None,
) -> list[float]:
    """Adam on the negative log-likelihood of the class probabilities renormalised over
    the classes (outcomes that belong to no class are dropped), on the shared loop of
    :mod:`trustml_ref.training`; returns the mean loss per epoch."""
    x = clf.check_features(x)
    if y.shape != (x.shape[0],) or y.min() < 0 or y.max() >= clf.n_classes:
        raise ValueError(
            f"y must hold {x.shape[0]} labels in [0, {clf.n_classes}), got shape "
            f"{tuple(y.shape)}"
        )

    def nll(indices: torch.Tensor, _: float) -> torch.Tensor:
        probs = clf(x[indices], p_global)
        return -torch.log(
            probs.gather(1, y[indices, None]).squeeze(1) / probs.sum(1)
        ).mean()

    batches = epoch_batches(x.shape[0], batch_size, epochs, generator)
    losses = minimise(
        torch.optim.Adam(clf.parameters(), lr=lr), nll, batches, desc=desc
    )
    per_epoch = batches.steps_per_epoch
    return [
        sum(losses[i : i + per_epoch]) / per_epoch
        for i in range(0, len(losses), per_epoch)
    ]
