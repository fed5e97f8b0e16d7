"""Quantum DP, rotation noise and certificates of trustml_ref.quantum_cert."""

from __future__ import annotations

import math
import subprocess
import sys

import pennylane as qml
import pytest
import torch

from trustml_ref.certification import clopper_pearson
from trustml_ref.quantum_cert import (
    PAULIS,
    amplitude_input_radius,
    apply_kraus,
    born_probabilities,
    certified_radius,
    check_density_matrix,
    depolarize,
    depolarize_qubit_adjoint,
    depolarizing_epsilon,
    depolarizing_kappa,
    epsilon_from_kappa,
    kappa_star,
    pennylane_depolarizing_parameter,
    rotation,
    rotation_noise_kraus,
    rotation_noise_replacement,
    shot_certified_radius,
    shot_class_bounds,
    shot_trace_distance_radius,
    trace_distance_contraction,
    trace_distance_radius,
)
from trustml_ref.quantum_cert.attacks import feature_flip_radius, mixing_attack_radius
from trustml_ref.quantum_cert.classifier import QuantumClassifier

C = torch.complex128


def random_state(d: int, g: torch.Generator, rank: int | None = None) -> torch.Tensor:
    a = torch.randn(d, rank or d, generator=g, dtype=torch.float64) + 1j * torch.randn(
        d, rank or d, generator=g, dtype=torch.float64
    )
    rho = a @ a.mH
    return rho / torch.diagonal(rho).sum()


def random_state_vector(d: int, g: torch.Generator) -> torch.Tensor:
    v = torch.randn(d, generator=g, dtype=torch.float64) + 1j * torch.randn(
        d, generator=g, dtype=torch.float64
    )
    return v / torch.linalg.vector_norm(v)


def probabilities(ops: list[torch.Tensor], states: torch.Tensor) -> torch.Tensor:
    """Outcome probabilities <psi|M|psi> of pure states (batch, d) for
    Heisenberg-picture operators."""
    return torch.stack(
        [torch.einsum("bi,ij,bj->b", states.conj(), m, states).real for m in ops], 1
    )


def shot_counts(probs: torch.Tensor, shots: int, g: torch.Generator) -> torch.Tensor:
    """Measured counts (rows, outcomes): ``shots`` draws from each row, row by row."""
    return torch.stack(
        [
            torch.bincount(
                torch.multinomial(row, shots, replacement=True, generator=g),
                minlength=len(row),
            )
            for row in probs
        ]
    )


def trace_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return 0.5 * float(torch.linalg.eigvalsh(a - b).abs().sum())


def test_reference_values():
    assert depolarizing_kappa(0.2, 2) == pytest.approx(9.0)
    assert depolarizing_epsilon(0.2, d=2, tau=0.05, rank=1) == pytest.approx(
        math.log(1.4)
    )
    kappa = depolarizing_kappa(0.1, 2)
    assert float(
        certified_radius(torch.tensor([[0.7, 0.3]]), kappa)[0]
    ) == pytest.approx(0.029307, abs=5e-7)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.7, 1.0])
@pytest.mark.parametrize("n_read", [1, 2])
def test_kappa_method_equals_closed_form_for_depolarising(p, n_read):
    clf = QuantumClassifier(3, 2, 2**n_read, generator=torch.Generator().manual_seed(0))
    kappa = kappa_star(clf.heisenberg_operators(p_global=p))
    assert kappa == pytest.approx(depolarizing_kappa(p, clf.d_eff), rel=1e-9)
    for tau in (0.0, 0.01, 0.3, 1.0):
        assert epsilon_from_kappa(kappa, tau) == pytest.approx(
            depolarizing_epsilon(p, 8, tau, rank=8 // 2**n_read), rel=1e-9
        )


def tau_neighbour(rho: torch.Tensor, other: torch.Tensor, tau: float) -> torch.Tensor:
    """A state on the segment from rho towards other, at trace distance at most tau
    from rho."""
    t = min(1.0, tau / max(trace_distance(other, rho), 1e-12))
    return (1 - t) * rho + t * other  # trace distance t * TD(other, rho)


def test_random_search_never_exceeds_epsilon():
    g = torch.Generator().manual_seed(1)
    clf = QuantumClassifier(2, 2, 2, generator=g)
    p, tau = 0.3, 0.1
    ops = clf.heisenberg_operators(p_global=p, p_local=0.05)
    eps = epsilon_from_kappa(kappa_star(ops), tau)
    worst = 0.0
    for _ in range(500):
        rho = random_state(4, g, rank=int(torch.randint(1, 5, (1,), generator=g)))
        sigma = tau_neighbour(rho, random_state(4, g, rank=1), tau)
        assert trace_distance(rho, sigma) <= tau + 1e-12
        for subset in ([0], [1], [0, 1]):
            m = sum(ops[k] for k in subset)
            a, b = torch.trace(m @ rho).real, torch.trace(m @ sigma).real
            worst = max(worst, abs(float(torch.log(a / b))))
    assert 0 < worst <= eps + 1e-12


def test_epsilon_is_attained_by_the_eigenvector_pair():
    clf = QuantumClassifier(2, 2, 2, generator=torch.Generator().manual_seed(2))
    ops = clf.heisenberg_operators(p_global=0.25)
    tau = 0.2
    evals, evecs = torch.linalg.eigh(ops[0])
    sigma = evecs[:, :1] @ evecs[:, :1].mH
    rho = (1 - tau) * sigma + tau * evecs[:, -1:] @ evecs[:, -1:].mH
    assert trace_distance(rho, sigma) == pytest.approx(tau)
    ratio = torch.trace(ops[0] @ rho).real / torch.trace(ops[0] @ sigma).real
    assert math.log(float(ratio)) == pytest.approx(
        epsilon_from_kappa(kappa_star(ops), tau), rel=1e-9
    )


def test_fixed_axis_rotation_gives_no_privacy():
    # Dephasing (random rotation about Z only) leaves |0><0| and |1><1| fixed: kappa is
    # infinite.
    kraus = [math.sqrt(0.5) * rotation("Z", t) for t in (0.4, -0.4)]
    adjoint = [
        sum(k.mH @ m @ k for k in kraus)
        for m in (
            torch.diag(torch.tensor([1.0, 0.0], dtype=C)),
            torch.diag(torch.tensor([0.0, 1.0], dtype=C)),
        )
    ]
    assert math.isinf(kappa_star(adjoint))
    assert (
        math.isinf(epsilon_from_kappa(math.inf, 0.1))
        and epsilon_from_kappa(math.inf, 0.0) == 0.0
    )


def test_rotation_noise_three_ways():
    angles = torch.tensor([0.3, 0.9, 1.7], dtype=torch.float64)
    p = rotation_noise_replacement(float(torch.cos(angles).mean()))
    g = torch.Generator().manual_seed(3)
    rho = random_state(2, g)
    by_kraus = apply_kraus(rho, rotation_noise_kraus(angles))
    trace_one = sum(k.mH @ k for k in rotation_noise_kraus(angles))
    assert torch.allclose(trace_one, torch.eye(2, dtype=C), atol=1e-12)
    assert torch.allclose(by_kraus, depolarize(rho, p), atol=1e-12)

    dev = qml.device("default.mixed", wires=1)

    @qml.qnode(dev)
    def pennylane_channel(state, q):
        qml.QubitDensityMatrix(state, wires=0)
        qml.DepolarizingChannel(q, wires=0)
        return qml.density_matrix(0)

    out = torch.as_tensor(
        pennylane_channel(rho.numpy(), pennylane_depolarizing_parameter(p)), dtype=C
    )
    assert torch.allclose(out, depolarize(rho, p), atol=1e-12)

    # Monte Carlo on default.qubit with broadcasting: random angle and axis (+-X, +-Y,
    # +-Z) per sample.
    n = 60_000
    theta = angles[torch.randint(0, 3, (n,), generator=g)] * (
        torch.randint(0, 2, (n,), generator=g) * 2 - 1
    )
    axis = torch.randint(0, 3, (n,), generator=g)
    evals, evecs = torch.linalg.eigh(rho)
    mc = torch.zeros(2, 2, dtype=C)
    qdev = qml.device("default.qubit", wires=1)
    for a, gate in enumerate((qml.RX, qml.RY, qml.RZ)):
        t = theta[axis == a].numpy()

        @qml.qnode(qdev)
        def rotated(vec, t=t, gate=gate):
            qml.StatePrep(vec, wires=0)
            gate(t, wires=0)
            return qml.state()

        for lam, vec in zip(evals, evecs.T):
            states = torch.as_tensor(rotated(vec.numpy()), dtype=C)
            mc += (
                float(lam) * (states[:, :, None] * states[:, None, :].conj()).sum(0) / n
            )
    assert torch.allclose(mc, depolarize(rho, p), atol=1.5e-2)


def test_depolarise_qubit_adjoint_matches_kron_formula():
    g = torch.Generator().manual_seed(4)
    m = random_state(4, g)
    traced_out_0 = torch.einsum("ijik->jk", m.reshape(2, 2, 2, 2))
    expected0 = 0.7 * m + 0.3 * torch.kron(PAULIS["I"] / 2, traced_out_0)
    assert torch.allclose(depolarize_qubit_adjoint(m, 0.3, 0, 2), expected0, atol=1e-12)
    traced_out_1 = torch.einsum("ijkj->ik", m.reshape(2, 2, 2, 2))
    expected1 = 0.7 * m + 0.3 * torch.kron(traced_out_1, PAULIS["I"] / 2)
    assert torch.allclose(depolarize_qubit_adjoint(m, 0.3, 1, 2), expected1, atol=1e-12)


def test_heisenberg_operators_predict_the_noisy_simulation():
    clf = QuantumClassifier(3, 2, 2, generator=torch.Generator().manual_seed(5))
    x = torch.rand(
        4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6)
    )
    psi = clf.encoded_states(x)
    rho = psi[:, :, None] * psi[:, None, :].conj()
    ops = clf.heisenberg_operators(p_local=0.15)
    predicted = torch.stack([torch.einsum("bij,ji->b", rho, m).real for m in ops], 1)
    assert torch.allclose(predicted, clf.local_noise_probs(x, 0.15), atol=1e-10)


def test_input_only_local_noise_is_per_qubit_depolarising_of_the_encoded_state():
    clf = QuantumClassifier(2, 3, 2, generator=torch.Generator().manual_seed(10))
    x = torch.rand(
        3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(11)
    )
    psi = clf.encoded_states(x)
    rho = psi[:, :, None] * psi[:, None, :].conj()
    noisy = rho
    # the channel is self-adjoint, so it acts on states as on operators
    for wire in range(2):
        noisy = torch.stack([depolarize_qubit_adjoint(r, 0.3, wire, 2) for r in noisy])
    expected = torch.stack(
        [
            torch.stack([torch.trace(m @ r).real for m in clf.heisenberg_operators()])
            for r in noisy
        ]
    )
    got = torch.stack(
        [
            torch.einsum("bij,ji->b", rho, m).real
            for m in clf.heisenberg_operators(p_local=0.3, local_noise="input")
        ],
        1,
    )
    assert torch.allclose(got, expected, atol=1e-12)
    every = torch.stack(
        [
            torch.einsum("bij,ji->b", rho, m).real
            for m in clf.heisenberg_operators(p_local=0.3)
        ],
        1,
    )
    assert not torch.allclose(got, every, atol=1e-6)
    with pytest.raises(ValueError, match="local_noise must be"):
        clf.heisenberg_operators(local_noise="output")


@pytest.mark.parametrize("seed", range(8))
def test_certificate_is_sound_for_random_classifiers(seed):
    """No state within the certified radius changes the noisy prediction."""
    g = torch.Generator().manual_seed(seed)
    clf = QuantumClassifier(2, 2, 2, generator=g)
    p = 0.1 + 0.5 * float(torch.rand(1, generator=g))
    ops = clf.heisenberg_operators(p_global=p)
    kappa = depolarizing_kappa(p, clf.d_eff)
    for _ in range(25):
        rho = random_state(4, g, rank=1)
        y = torch.stack([torch.trace(m @ rho).real for m in ops])[None]
        tau = float(certified_radius(y, kappa)[0])
        if tau == 0:
            continue
        label = int(y.argmax())
        for _ in range(20):
            sigma = tau_neighbour(
                rho,
                random_state(4, g, rank=int(torch.randint(1, 5, (1,), generator=g))),
                tau,
            )
            y_sigma = torch.stack([torch.trace(m @ sigma).real for m in ops])
            assert int(y_sigma.argmax()) == label


def test_trace_distance_radius_reference_values_and_bad_input():
    probs = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.2, 0.1]], dtype=torch.float64)
    assert torch.allclose(
        trace_distance_radius(probs),
        torch.tensor([0.2, 0.0, 0.05], dtype=torch.float64),
    )
    assert torch.allclose(
        trace_distance_radius(probs, 0.5),
        torch.tensor([0.4, 0.0, 0.1], dtype=torch.float64),
    )
    # capped at the largest distance
    assert float(trace_distance_radius(torch.tensor([[1.0, 0.0]]), 0.1)[0]) == 1.0
    with pytest.raises(ValueError, match="contraction must lie in"):
        trace_distance_radius(probs, 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_dp_radius_below_trace_distance_radius_below_attacks(seed):
    """On random classifiers and noise levels: DP radius <= trace-distance radius <=
    mixing attack's flip distance at every point; no random neighbour inside the
    trace-distance radius flips the prediction; and under global noise the
    trace-distance radius does not depend on p."""
    g = torch.Generator().manual_seed(seed)
    clf = QuantumClassifier(2, 2, 2, generator=g)
    states = torch.stack([random_state_vector(4, g) for _ in range(30)])
    clean = probabilities(clf.heisenberg_operators(), states)
    for p in (0.05, 0.2, 0.5, 0.9):
        ops = clf.heisenberg_operators(p_global=p)
        y = probabilities(ops, states)
        dp = certified_radius(y, depolarizing_kappa(p, clf.d_eff))
        tv = trace_distance_radius(y, contraction=1 - p)
        attack = mixing_attack_radius(ops, states)
        assert torch.all(dp <= tv + 1e-12), (p, (dp - tv).max())
        assert torch.all(tv <= attack + 1e-9), (p, (tv - attack).max())
        # the same at every p
        assert torch.allclose(tv, trace_distance_radius(clean), atol=1e-12)
        for i in range(5):
            rho = torch.outer(states[i], states[i].conj())
            tau = float(tv[i])
            for _ in range(10):
                sigma = tau_neighbour(
                    rho,
                    random_state(
                        4, g, rank=int(torch.randint(1, 5, (1,), generator=g))
                    ),
                    tau,
                )
                y_sigma = torch.stack([torch.trace(m @ sigma).real for m in ops])
                assert int(y_sigma.argmax()) == int(y[i].argmax()) or tau == 0


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_dp_over_trace_distance_radius_closed_form(p):
    """One-qubit read-out (kappa = 1 + 2(1-p)/p): tau_DP / tau_TV = p (r + 1) /
    (sqrt(r) + 1), r = y_max / y_second."""
    # what noise p can output
    top = (1 - p) * torch.linspace(0.55, 1.0, 12, dtype=torch.float64) + p / 2
    probs = torch.stack([top, 1 - top], 1)
    r = top / (1 - top)
    dp, tv = (
        certified_radius(probs, depolarizing_kappa(p, 2)),
        trace_distance_radius(probs, contraction=1 - p),
    )
    # both radii are capped at 1, the largest trace distance
    inside = (dp < 1) & (tv < 1)
    assert inside.sum() >= 4
    assert torch.allclose(
        (dp / tv)[inside], (p * (r + 1) / (r.sqrt() + 1))[inside], rtol=1e-9
    )
    # noise p keeps r <= (2 - p) / p, where p (r + 1) <= sqrt(r) + 1
    assert torch.all(dp <= tv + 1e-12)


def test_shot_certificates_never_exceed_exact_ones():
    """With probability >= 1 - alpha per point a shot-based radius is at most the exact
    one; at alpha = 0.01 none of these 200 seeded points exceeds it."""
    # everything below draws from g: the test is deterministic
    g = torch.Generator().manual_seed(7)
    # Dirichlet(1, 1, 1) by normalised exponentials
    raw = -torch.log(torch.rand(200, 3, generator=g, dtype=torch.float64))
    probs = raw / raw.sum(1, keepdim=True)
    kappa = depolarizing_kappa(0.3, 4)
    exact = certified_radius(probs, kappa)
    counts = shot_counts(probs, 2000, g)
    prediction, radius = shot_certified_radius(counts, kappa, alpha=0.01)
    agree = prediction == probs.argmax(1)
    assert torch.all(radius[agree] <= exact[agree] + 1e-12)
    # a wrong prediction from shots must not be certified at this confidence
    assert torch.all(radius[~agree] == 0)
    assert (radius > 0).float().mean() > 0.5


def test_rotation_noise_range_matches_the_certificates():
    """The largest replacement rotation noise can give, E cos = -1/2, is p = 1, the
    largest that depolarizing_kappa accepts: one range for both."""
    assert rotation_noise_replacement(-0.5) == pytest.approx(1.0)
    assert depolarizing_kappa(rotation_noise_replacement(-0.5), 2) == pytest.approx(1.0)


def class_bound_failures(
    probs: torch.Tensor, shots: int, trials: int, level: float | None, g
) -> dict:
    """How often the bounds miss, over ``trials`` seeded count vectors. "certificate":
    the predicted class's probability is below its lower bound, or the largest other
    class's is above the upper bound (what the radius needs); "any bound": the predicted
    class's lower bound or some other class's own upper bound misses (what a Bonferroni
    proof over the bounds must control). ``level`` overrides the package's choice of
    per-bound level."""
    counts = shot_counts(probs.expand(trials, -1), shots, g).double()
    prediction = counts.argmax(1)
    if level is None:
        level = 0.05 / 2 if len(probs) == 2 else 0.05 / (2 * len(probs))
        assert torch.equal(
            shot_class_bounds(counts, alpha=0.05)[1],
            clopper_pearson(
                counts.gather(1, prediction[:, None]).squeeze(1), shots, level, "lower"
            ),
        )
    lower = clopper_pearson(
        counts.gather(1, prediction[:, None]).squeeze(1), shots, level, "lower"
    )
    uppers = clopper_pearson(counts, shots, level, "upper")
    upper = uppers.scatter(1, prediction[:, None], 0.0).max(1).values
    others = (
        probs.expand(trials, -1).scatter(1, prediction[:, None], -1.0).max(1).values
    )
    low_miss = lower > probs[prediction]
    own_miss = (uppers < probs).scatter(1, prediction[:, None], False).any(1)
    return {
        "certificate": float((low_miss | (others > upper)).double().mean()),
        "any bound": float((low_miss | own_miss).double().mean()),
    }


def test_shot_class_bounds_hold_with_probability_one_minus_alpha():
    """The predicted class is the one whose count ran high, so K bounds at alpha / K, as
    this package used before, have no proof: with three near-tied classes they miss 7.9%
    of the time. All 2K bounds at alpha / (2K) hold, on both events; two outcomes need
    only alpha / 2 (one class's lower bound is the other's upper bound). Binomial error
    of 4000 trials at 5%: 0.0034."""
    g = torch.Generator().manual_seed(12)
    tied = torch.tensor([0.34, 0.33, 0.33], dtype=torch.float64)
    # the old rule
    assert (
        class_bound_failures(tied, 1000, 4000, 0.05 / 3, g)["any bound"] > 0.05 + 0.01
    )
    for probs, shots in [
        (tied, 1000),
        (torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64), 1000),
        (torch.tensor([0.45, 0.45, 0.1], dtype=torch.float64), 200),
        (torch.tensor([0.5, 0.5], dtype=torch.float64), 100),
    ]:
        missed = class_bound_failures(probs, shots, 4000, None, g)
        assert max(missed.values()) <= 0.05 + 0.01, (probs, missed)
    counts = torch.tensor([[60.0, 40.0], [30.0, 70.0]])
    prediction, lower, upper = shot_class_bounds(counts, alpha=0.1)
    assert prediction.tolist() == [0, 1]
    assert torch.allclose(lower, 1 - upper, atol=1e-12)
    assert torch.allclose(
        lower, clopper_pearson(torch.tensor([60.0, 70.0]), 100, 0.05, "lower")
    )
    three = torch.tensor([[60.0, 30.0, 10.0]])
    assert torch.allclose(
        shot_class_bounds(three, 0.06)[1],
        clopper_pearson(torch.tensor([60.0]), 100, 0.01, "lower"),
    )


def test_shot_trace_distance_radius_is_the_exact_one_on_its_bounds():
    g = torch.Generator().manual_seed(13)
    probs = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5]], dtype=torch.float64)
    counts = shot_counts(probs, 5000, g)
    prediction, radius = shot_trace_distance_radius(counts, contraction=0.8, alpha=0.05)
    _, lower, upper = shot_class_bounds(counts, alpha=0.05)
    assert torch.allclose(radius, ((lower - upper) / 1.6).clamp(0, 1))
    assert (
        torch.all(radius <= trace_distance_radius(probs, 0.8) + 1e-12)
        and radius[2] == 0
    )
    assert prediction[:2].tolist() == [0, 0]


def test_trace_distance_contraction_reference_values():
    """1 for a noiseless projective read-out, exactly 1 - p under global depolarising
    noise, below 1 and falling with p under local noise."""
    clf = QuantumClassifier(3, 2, 2, generator=torch.Generator().manual_seed(14))
    assert trace_distance_contraction(clf.heisenberg_operators()) == pytest.approx(
        1.0, abs=1e-12
    )
    for p in (0.1, 0.5):
        assert trace_distance_contraction(
            clf.heisenberg_operators(p_global=p)
        ) == pytest.approx(1 - p, abs=1e-12)
    local = [
        trace_distance_contraction(
            clf.heisenberg_operators(p_local=p, local_noise=where)
        )
        for where in ("input", "every_layer")
        for p in (0.05, 0.2)
    ]
    assert local[0] > local[1] and local[2] > local[3] and max(local) < 1
    # more noise, more contraction
    assert local[2] <= local[0] + 1e-12 and local[3] <= local[1] + 1e-12


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("local_noise", ["input", "every_layer"])
def test_local_noise_certificates_are_sound(seed, local_noise):
    """Under local noise: the trace-distance radius with the circuit's contraction and
    the DP radius with its kappa* never exceed the mixing attack's flip distance, no
    random neighbour inside them flips the prediction, and feature PGD never flips
    inside the feature-space radius."""
    g = torch.Generator().manual_seed(20 + seed)
    clf = QuantumClassifier(2, 2, 2, generator=g)
    p = 0.05 + 0.4 * float(torch.rand(1, generator=g))
    ops = clf.heisenberg_operators(p_local=p, local_noise=local_noise)
    x = torch.rand(12, 4, dtype=torch.float64, generator=g) + 0.1
    states = clf.encoded_states(x)
    y = born_probabilities(ops, states)
    assert torch.allclose(
        y, clf.outcome_probs(x, p_local=p, local_noise=local_noise), atol=1e-12
    )
    assert torch.allclose(
        y[:3], clf.local_noise_probs(x[:3], p, local_noise), atol=1e-8
    )
    tv = trace_distance_radius(y, trace_distance_contraction(ops))
    dp = certified_radius(y, kappa_star(ops))
    attack = mixing_attack_radius(ops, states)
    assert torch.all(tv <= attack + 1e-9) and torch.all(dp <= attack + 1e-9)
    for i in range(4):
        rho = torch.outer(states[i], states[i].conj())
        for _ in range(10):
            sigma = tau_neighbour(
                rho,
                random_state(4, g, rank=int(torch.randint(1, 5, (1,), generator=g))),
                float(tv[i]),
            )
            y_sigma = torch.stack([torch.trace(m @ sigma).real for m in ops])
            assert int(y_sigma.argmax()) == int(y[i].argmax()) or tv[i] == 0
    flip = feature_flip_radius(
        clf,
        x,
        0.0,
        [0.02 * 1.4**k for k in range(14)],
        p_local=p,
        local_noise=local_noise,
    )
    assert torch.all(amplitude_input_radius(x, tv) <= flip)


def test_clopper_pearson_reference_values():
    # Exact binomial tails: P(X >= 5 | n=10, p_low) = alpha and P(X <= 5 | p_up) =
    # alpha.
    from scipy import stats

    low = float(clopper_pearson(torch.tensor([5.0]), 10, 0.05, "lower")[0])
    up = float(clopper_pearson(torch.tensor([5.0]), 10, 0.05, "upper")[0])
    assert stats.binom.sf(4, 10, low) == pytest.approx(0.05, rel=1e-6)
    assert stats.binom.cdf(5, 10, up) == pytest.approx(0.05, rel=1e-6)
    assert float(clopper_pearson(torch.tensor([0.0]), 10, 0.05, "lower")[0]) == 0.0


def test_amplitude_input_radius_bounds_the_trace_distance():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(100, 16, generator=g, dtype=torch.float64)
    tau = torch.rand(100, generator=g, dtype=torch.float64) * 0.5
    r = amplitude_input_radius(x, tau)
    delta = torch.randn(100, 16, generator=g, dtype=torch.float64)
    delta = delta / delta.norm(dim=1, keepdim=True) * r[:, None]
    a, b = (
        x / x.norm(dim=1, keepdim=True),
        (x + delta) / (x + delta).norm(dim=1, keepdim=True),
    )
    td = torch.sqrt((1 - (a * b).sum(1) ** 2).clamp_min(0))
    assert torch.all(td <= tau + 1e-12)


def test_classifier_probabilities_and_noise():
    clf = QuantumClassifier(
        4, 2, 3, encoding="angle", generator=torch.Generator().manual_seed(9)
    )
    x = torch.rand(5, 4, dtype=torch.float64)
    out = clf.outcome_probs(x)
    assert out.shape == (5, 4) and torch.allclose(
        out.sum(1), torch.ones(5, dtype=torch.float64)
    )
    assert torch.allclose(
        clf.outcome_probs(x, 1.0), torch.full((5, 4), 0.25, dtype=torch.float64)
    )
    assert clf(x, 0.3).shape == (5, 3)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: depolarizing_kappa(0.0, 2), r"p must lie in \(0, 1\]"),
        (lambda: depolarizing_kappa(1.2, 2), r"p must lie in \(0, 1\]"),
        (lambda: depolarizing_epsilon(0.2, 2, -0.1), "tau .* must lie in"),
        (lambda: epsilon_from_kappa(0.5, 0.1), "kappa must be >= 1"),
        (lambda: check_density_matrix(torch.eye(2, dtype=C)), "unit trace"),
        (
            lambda: check_density_matrix(
                torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=C)
            ),
            "Hermitian",
        ),
        (
            lambda: QuantumClassifier(2, 1, 2).outcome_probs(torch.rand(3, 3)),
            r"x must have shape \(batch, 4\)",
        ),
        (
            lambda: QuantumClassifier(2, 1, 2, encoding="angle").outcome_probs(
                torch.rand(3, 4)
            ),
            r"x must have shape \(batch, 2\)",
        ),
        (
            lambda: QuantumClassifier(2, 1, 2, encoding="basis"),
            "encoding must be one of",
        ),
        (
            lambda: QuantumClassifier(2, 1, 2).outcome_probs(torch.zeros(1, 4)),
            "non-zero feature vectors",
        ),
        (
            lambda: certified_radius(torch.tensor([0.7, 0.3]), 2.0),
            r"probs must have shape \(batch",
        ),
        (
            lambda: shot_certified_radius(torch.tensor([[3.0, 1.0], [2.0, 1.0]]), 2.0),
            "same positive number of shots",
        ),
        (lambda: rotation_noise_replacement(1.5), r"cos_mean must lie in \[-1/2, 1\]"),
        (
            lambda: rotation_noise_replacement(-0.6),
            r"cos_mean must lie in \[-1/2, 1\] \(replacement p",
        ),
        (
            lambda: trace_distance_contraction([torch.eye(2)]),
            r"n_classes must lie in \[2, 1\]",
        ),
        (
            lambda: shot_class_bounds(torch.tensor([[3.0, 1.0]]), alpha=1.5),
            r"alpha must lie in \(0, 1\)",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_math_imports_without_pennylane():
    # Channels, privacy levels and radii are plain tensor code: a chapter that only
    # needs them (the
    # certified-robustness primer) installs trustml_ref without the [quantum] extra.
    code = (
        "import sys; sys.modules['pennylane'] = None; import "
        "trustml_ref.quantum_cert as q; print(q.certified_radius)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
