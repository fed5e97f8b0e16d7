"""Certify a test set of a quantum classifier under random rotation noise: analytic
versus Monte Carlo.

The noise rotates every qubit of the encoded state by an angle drawn from a symmetric
set about an axis drawn from +-X, +-Y, +-Z. Analytically this is per-qubit depolarising
noise with replacement p = 2/3 (1 - E cos theta), so one Heisenberg-picture evaluation
per input gives the exact noisy probabilities and kappa* gives epsilon. The Monte-Carlo
baseline samples rotations (PennyLane, default.qubit with broadcasting), averages the
output probabilities and replaces them by Hoeffding confidence bounds at level alpha
before computing the same radius.

Both run here on the same trained classifier; the script prints the time of each, their
ratio and the certified accuracy of each at a few radii. Run: ``python
benchmarks/quantum_certify.py [--samples 2000] [--alpha 0.05]``.
"""

from __future__ import annotations

import argparse
import math
import time

import pennylane as qml
import torch
from sklearn.decomposition import PCA

from trustml_ref.data import digits
from trustml_ref.quantum_cert import (
    certified_radius,
    kappa_star,
    rotation_noise_replacement,
)
from trustml_ref.quantum_cert.certify import _radius
from trustml_ref.quantum_cert.classifier import QuantumClassifier, train_classifier

ANGLES = torch.tensor([0.3, 0.8, 1.4], dtype=torch.float64)


def data():
    d = digits(dtype=torch.float64)
    keep_train, keep_test = d.y_train < 2, d.y_test < 2
    pca = PCA(16, random_state=0).fit(d.x_train[keep_train].numpy())
    shift = torch.as_tensor(pca.transform(d.x_train[keep_train].numpy())).min(0).values
    x_train = torch.as_tensor(pca.transform(d.x_train[keep_train].numpy())) - shift
    x_test = torch.as_tensor(pca.transform(d.x_test[keep_test].numpy())) - shift
    return x_train, d.y_train[keep_train], x_test, d.y_test[keep_test]


def analytic(
    clf: QuantumClassifier, x: torch.Tensor, p: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Exact noisy probabilities (one evaluation per input), radii and kappa*."""
    ops = clf.heisenberg_operators(p_local=p, local_noise="input")
    kappa = kappa_star(ops)
    psi = clf.encoded_states(x)
    probs = torch.stack(
        [torch.einsum("bi,ij,bj->b", psi.conj(), m, psi).real for m in ops], 1
    )
    return probs, certified_radius(probs, kappa), kappa


def monte_carlo(
    clf: QuantumClassifier,
    x: torch.Tensor,
    kappa: float,
    samples: int,
    alpha: float,
    seed: int,
):
    """Sampled rotations, averaged probabilities, Hoeffding bounds at level alpha /
    classes, then radii."""
    gen = torch.Generator().manual_seed(seed)
    dev = qml.device("default.qubit", wires=clf.n_qubits)

    @qml.qnode(dev, interface="torch")
    def noisy(xi, axes, thetas):
        qml.AmplitudeEmbedding(xi, wires=clf.wires, normalize=True)
        for wire in clf.wires:
            for a, gate in enumerate((qml.RX, qml.RY, qml.RZ)):
                gate(torch.where(axes[:, wire] == a, thetas[:, wire], 0.0), wires=wire)
        for layer in range(clf.n_layers):
            clf._layer(clf.weights.detach()[layer])
        return qml.probs(wires=clf.wires[: clf.n_readout])

    means = []
    for xi in x:
        axes = torch.randint(0, 3, (samples, clf.n_qubits), generator=gen)
        signs = torch.randint(0, 2, (samples, clf.n_qubits), generator=gen) * 2 - 1
        thetas = (
            ANGLES[
                torch.randint(0, len(ANGLES), (samples, clf.n_qubits), generator=gen)
            ]
            * signs
        )
        means.append(noisy(xi, axes, thetas).mean(0))
    means = torch.stack(means)
    slack = math.sqrt(math.log(2 * means.shape[1] / alpha) / (2 * samples))
    top2 = means.topk(2, dim=1)
    lower, upper = (
        (top2.values[:, 0] - slack).clamp_min(0),
        (top2.values[:, 1] + slack).clamp_max(1),
    )
    radius = torch.where(
        lower > upper, _radius(lower, upper, kappa), torch.zeros_like(lower)
    )
    return means, radius


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--n-test", type=int, default=86)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = data()
    x_test, y_test = x_test[: args.n_test], y_test[: args.n_test]
    clf = QuantumClassifier(4, 4, 2, generator=torch.Generator().manual_seed(0))
    train_classifier(
        clf, x_train, y_train, epochs=30, generator=torch.Generator().manual_seed(0)
    )
    p = rotation_noise_replacement(float(torch.cos(ANGLES).mean()))
    print(
        f"rotation noise: angles {ANGLES.tolist()}, replacement p = {p:.4f} per qubit; "
        f"{len(y_test)} test inputs"
    )

    start = time.perf_counter()
    probs, radius, kappa = analytic(clf, x_test, p)
    t_analytic = time.perf_counter() - start
    start = time.perf_counter()
    mc_probs, mc_radius = monte_carlo(
        clf, x_test, kappa, args.samples, args.alpha, seed=1
    )
    t_mc = time.perf_counter() - start

    print(
        "max |MC mean - exact probability| = "
        f"{float((mc_probs - probs).abs().max()):.3f}"
    )
    print(f"analytic    {t_analytic:8.3f} s")
    print(
        f"Monte Carlo {t_mc:8.3f} s   ({args.samples} samples per input, Hoeffding at "
        f"alpha = {args.alpha})"
    )
    print(
        f"ratio Monte Carlo / analytic = {t_mc / t_analytic:,.0f}x (kappa* = "
        f"{kappa:.3f})"
    )
    correct_a, correct_m = probs.argmax(1) == y_test, mc_probs.argmax(1) == y_test
    for tau in (0.0, 0.01, 0.02, 0.05):
        acc_a = float(((radius >= tau) & (radius > 0) & correct_a).float().mean())
        acc_m = float(((mc_radius >= tau) & (mc_radius > 0) & correct_m).float().mean())
        print(
            f"certified accuracy at tau = {tau:.2f}: analytic {acc_a:.3f}, Monte Carlo "
            f"{acc_m:.3f}"
        )


if __name__ == "__main__":
    main()
