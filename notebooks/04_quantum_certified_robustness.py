# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# (chapter-quantum-certified)=
# # Certified robustness of quantum classifiers through quantum noise
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/notebooks/04_quantum_certified_robustness.ipynb)

# %% [markdown]
# **Summary.** Quantum hardware is noisy, and noise is usually the enemy. {cite:t}`huang2023certified`
# turn it into a guarantee: noise makes a quantum classifier *differentially private* with respect
# to its input state, and differential privacy bounds how much any small change of the input can
# move the output probabilities, which certifies the prediction. We derive the exact privacy level
# of any noisy circuit from its Heisenberg-picture measurement operators, show that random rotation
# noise is a depolarising channel in disguise (and that a fixed rotation axis gives nothing), derive
# the certified radius, make it honest for finite shots, translate it into feature space, and test it
# against attacks on a trained PennyLane classifier.
#
# **Learning goals.** After this chapter you can
# - define quantum differential privacy with trace-distance neighbours and compute the exact
#   $\varepsilon$ of a noisy circuit;
# - derive the depolarising channel as the average of random rotations, and state PennyLane's convention;
# - turn $\varepsilon$ into a certified trace-distance radius, with exact probabilities and with shots;
# - translate the radius into an $\ell_2$ radius on amplitude-encoded features, and compare it with attacks.
#
# **Runtime.** `smoke`: under a minute; `book`: under a minute on a 2-core CPU; `colab`: a few
# minutes (more shots, more test points). Data: scikit-learn's digits and iris; simulators from PennyLane.
#
# **Read first.** {doc}`p6_quantum_noise` (qubits, channels, the trace distance) and {doc}`p5_certified_robustness` (from differential privacy to a certificate).

# %% tags=["remove-cell"]
# Colab only: install trustml_ref beside Colab's own torch (pinned, so it is never reinstalled).
import importlib.metadata, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules:
    torch_pin = f"torch=={importlib.metadata.version('torch')}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "trustml_ref[quantum] @ git+https://github.com/trustml/trustml@main", torch_pin], check=True)  # noqa: E501

# %% tags=["parameters"]
PROFILE = "book"  # "smoke" (seconds, for tests), "book" (default, 2-core CPU), "colab" (GPU)
SEED = 0
DEVICE = "auto"  # "auto" picks CUDA when available
RESULTS_PATH = None  # tests pass a path here; the key results are written to it as JSON

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pennylane as qml
import torch
from IPython.display import display
from sklearn.decomposition import PCA
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue, proportion_difference
from trustml_ref.data import digits, iris
from trustml_ref.io import record_results
from trustml_ref.quantum_cert import (
    amplitude_input_radius,
    certified_radius,
    depolarizing_epsilon,
    depolarizing_kappa,
    epsilon_from_kappa,
    feature_flip_radius,
    kappa_star,
    mixing_attack_radius,
    pennylane_depolarizing_parameter,
    rotation_noise_kraus,
    rotation_noise_replacement,
    shot_certified_radius,
)
from trustml_ref.quantum_cert.classifier import QuantumClassifier, train_classifier
from trustml_ref.tables import results_table

run = trustml_ref.setup(PROFILE, SEED, DEVICE)  # simulation runs on the CPU; DEVICE is unused here
EPOCHS = run.pick(smoke=8, book=40, colab=80)
N_LAYERS = run.pick(smoke=3, book=4, colab=6)
N_SHOTS = run.pick(smoke=500, book=2000, colab=20000)
N_ATTACK = run.pick(smoke=10, book=86, colab=86)  # test points attacked in feature space
MC_SAMPLES = run.pick(smoke=2000, book=40000, colab=400000)

# Digits 0 vs 1 -> 16 PCA features -> amplitude encoding on 4 qubits. The features are shifted to be
# non-negative: amplitude encoding cannot tell x from -x (a global phase), and centred PCA features
# of the two digits point in nearly opposite directions.
d = digits(dtype=torch.float64, seed=SEED)
keep_train, keep_test = d.y_train < 2, d.y_test < 2
pca = PCA(16, random_state=SEED).fit(d.x_train[keep_train].numpy())
shift = torch.as_tensor(pca.transform(d.x_train[keep_train].numpy())).min(0).values
x_train = torch.as_tensor(pca.transform(d.x_train[keep_train].numpy())) - shift
x_test = torch.as_tensor(pca.transform(d.x_test[keep_test].numpy())) - shift
y_train, y_test = d.y_train[keep_train], d.y_test[keep_test]
print(f"digits 0/1: {len(y_train)} train, {len(y_test)} test, {x_train.shape[1]} features")

# %% [markdown]
# ## Motivation: a noiseless quantum classifier is fragile
#
# We train a variational classifier (four qubits, amplitude encoding, a few layers of general
# rotations and a CNOT ring, class = outcome of the first qubit) and attack its input features with
# projected gradient descent through the circuit: how far must the features move to flip the
# prediction?

# %%
clf = QuantumClassifier(4, N_LAYERS, 2, encoding="amplitude", generator=run.generator)
train_classifier(clf, x_train, y_train, epochs=EPOCHS, lr=0.05, generator=run.generator, desc="training the VQC")
with torch.no_grad():
    clean_probs = clf(x_test)
clean_acc = float((clean_probs.argmax(1) == y_test).float().mean())
radii = [0.02 * 1.3**k for k in range(run.pick(smoke=16, book=22, colab=26))]
flip = feature_flip_radius(clf, x_test[:N_ATTACK], 0.0, radii)
relative_flip = flip / x_test[:N_ATTACK].norm(dim=1)
print(f"clean test accuracy {clean_acc:.3f}; PGD flips {int(torch.isfinite(flip).sum())} of {N_ATTACK} test points "
      f"within an l2 radius of {radii[-1]:.2f}; median flip radius = {relative_flip[torch.isfinite(relative_flip)].median():.1%} of ||x||")

# %% tags=["hide-input"]
fig, ax = plt.subplots()
ax.hist(relative_flip[torch.isfinite(relative_flip)].numpy(), bins=15)
ax.set(xlabel="smallest flipping $\\|\\delta\\|_2 / \\|x\\|_2$ found by PGD", ylabel="test points", title="noiseless classifier under attack")
plt.show()


# %% [markdown]
# A perturbation of a fraction of the feature norm flips predictions (how many, and how large a
# fraction, is printed above), and nothing in the classifier tells us in advance which. We want a certificate: a radius within which *no*
# perturbation, of the features or of the quantum state itself, can change the prediction.
#
# ## Derivation
#
# **Quantum differential privacy** {cite:p}`zhou2017differential`. A noisy quantum algorithm is a channel
# $\mathcal E$ followed by a measurement $\{M_k\}$; outcome $k$ has probability $\mathrm{Tr}(M_k\mathcal E(\rho))$.
# Two states are *$\tau$-neighbours* when their trace distance $T(\rho,\sigma) = \tfrac12\|\rho-\sigma\|_1$ is at most
# $\tau$. The algorithm is $\varepsilon$-DP if for all $\tau$-neighbours and every set of outcomes $S$, with
# $M_S = \sum_{k\in S} M_k$,
#
# $$
# \mathrm{Tr}(M_S\,\mathcal E(\rho)) \le e^{\varepsilon}\,\mathrm{Tr}(M_S\,\mathcal E(\sigma)).
# $$ (eq-qdp)
#
# Move the channel onto the measurement (the Heisenberg picture): $\mathrm{Tr}(M_S\mathcal E(\rho)) = \mathrm{Tr}(\tilde M_S\rho)$ with
# $\tilde M_S = \mathcal E^\dagger(M_S)$, a positive operator.
#
# ```{prf:theorem} The exact privacy level of a noisy measurement
# :label: thm-q-kappa
#
# Let $\kappa^* = \max_S \lambda_{\max}(\tilde M_S)/\lambda_{\min}(\tilde M_S)$ over non-empty outcome sets. Then
# the smallest $\varepsilon$ in {eq}`eq-qdp` is
#
# $$
# \varepsilon^* = \ln\big(1 + (\kappa^* - 1)\,\tau\big),
# $$ (eq-q-eps)
#
# infinite if some $\tilde M_S$ is singular.
# ```
#
# ```{prf:proof}
# Write $\rho - \sigma = \Delta_+ - \Delta_-$ with positive parts of trace $T(\rho,\sigma) \le \tau$. Then
# $\mathrm{Tr}(\tilde M\rho) - \mathrm{Tr}(\tilde M\sigma) = \mathrm{Tr}(\tilde M\Delta_+) - \mathrm{Tr}(\tilde M\Delta_-) \le \tau(\lambda_{\max} - \lambda_{\min})$
# and $\mathrm{Tr}(\tilde M\sigma) \ge \lambda_{\min}$, so the ratio is at most $1 + \tau(\kappa - 1)$. It is attained by
# $\sigma = |v_{\min}\rangle\langle v_{\min}|$ and $\rho = (1-\tau)\sigma + \tau|v_{\max}\rangle\langle v_{\max}|$, whose trace
# distance is exactly $\tau$ (the eigenvectors are orthogonal).
# ```
#
# **Depolarising noise.** For $\mathcal D_p(\rho) = (1-p)\rho + p I/d$ before a unitary circuit $U$ and a
# projective read-out whose outcome projectors have rank $r$: $\tilde M_S = (1-p)U^\dagger M_S U + p\,\tfrac{|S| r}{d} I$,
# with eigenvalues $(1-p) + p|S|r/d$ and $p|S|r/d$. The worst set is a single outcome:
#
# $$
# \kappa = 1 + \frac{(1-p)\,d}{p\,r}, \qquad \varepsilon = \ln\Big(1 + \frac{(1-p)\,d\,\tau}{p\,r}\Big).
# $$ (eq-q-depol)
#
# With $d/r = d_{\text{eff}}$ this only depends on how many outcomes the read-out distinguishes.
#
# **Random rotation noise is depolarising.** Rotate a qubit by $R_P(\theta) = \cos\tfrac\theta2 I - i\sin\tfrac\theta2 P$
# with the axis drawn uniformly from $\pm X, \pm Y, \pm Z$. The sign symmetry kills the cross terms, and
# $\sum_{P\in\{X,Y,Z\}} P\rho P = 2I - \rho$ for a qubit, so
#
# $$
# \begin{aligned}
# \mathbb E\big[R\rho R^\dagger\big] &= \mathbb E\big[\cos^2\tfrac\theta2\big]\rho + \tfrac13\mathbb E\big[\sin^2\tfrac\theta2\big](2I - \rho) \\
#  &= (1-p)\rho + p\,\tfrac I2,\qquad p = \tfrac23\big(1 - \mathbb E\cos\theta\big).
# \end{aligned}
# $$ (eq-q-rotation)
#
# PennyLane's `qml.DepolarizingChannel(q)` applies $X, Y, Z$ with probability $q/3$ each, which by the
# same identity is replacement $p = 4q/3$: the parameter is *not* the replacement probability. If the
# axis is fixed (say $Z$ only), the channel is dephasing: $|0\rangle\langle0|$ and $|1\rangle\langle1|$ pass
# unchanged, two states at trace distance 1 stay perfectly distinguishable, $\tilde M_0$ is singular and
# no finite $\varepsilon$ exists. The paper's exact channel and theorem statement could not be checked
# here; the chapter implements the channel above and proves its guarantee.
#
# ```{prf:theorem} Certified robustness from quantum DP
# :label: thm-q-cert
#
# If the noisy classifier is $\varepsilon$-DP for $\tau$-neighbours and its class probabilities at $\rho$
# satisfy $y_{\max} > e^{2\varepsilon} y_{\text{second}}$, then every $\sigma$ with $T(\rho,\sigma)\le\tau$ gets
# the same prediction. For depolarising noise this holds for every
#
# $$
# \tau \le \tau^* = \frac{\sqrt{y_{\max}/y_{\text{second}}} - 1}{\kappa - 1} = \frac{p}{d_{\text{eff}}(1-p)}\Big(\sqrt{y_{\max}/y_{\text{second}}} - 1\Big).
# $$ (eq-q-radius)
# ```
#
# ```{prf:proof}
# DP in both directions gives $y_k(\sigma) \ge e^{-\varepsilon}y_k(\rho)$ and $y_j(\sigma) \le e^{\varepsilon}y_j(\rho)$.
# So for the top class $a$ and any $j \ne a$: $y_a(\sigma) \ge e^{-\varepsilon}y_{\max} > e^{\varepsilon}y_{\text{second}} \ge y_j(\sigma)$
# {cite:p}`lecuyer2019certified`. Solving $e^{2\varepsilon} = y_{\max}/y_{\text{second}}$ with {eq}`eq-q-eps` gives {eq}`eq-q-radius`.
# ```
#
# **Finite shots.** Hardware gives counts, not probabilities. A one-sided Clopper-Pearson lower
# bound on the top class and upper bounds on the others, each at level $\alpha/K$ (Bonferroni), hold
# together with probability $1-\alpha$; plugging them into {eq}`eq-q-radius` gives a radius that is valid
# with that confidence: with probability at least $1-\alpha$ it is no larger than the exact radius.
#
# **Back to features.** Amplitude encoding maps $x$ to $|\psi(x)\rangle = x/\|x\|$. For pure states the
# trace distance is the sine of the angle between the vectors, and $\sin\angle(x, x+\delta) \le \|\delta\|_2/\|x\|_2$,
# so every feature perturbation with $\|\delta\|_2 \le \tau^*\|x\|_2$ is certified too.
#
# ## From scratch
#
# $\kappa^*$ by enumerating outcome sets, and the radius.

# %%
def kappa_scratch(ops):
    """max over non-empty outcome sets of lambda_max / lambda_min (inf if singular)."""
    ### BEGIN SOLUTION ex-q-kappa-impl
    best = 1.0
    for mask in range(1, 2 ** len(ops)):
        m = sum(op for k, op in enumerate(ops) if mask >> k & 1)
        ev = torch.linalg.eigvalsh(m)
        best = math.inf if ev[0] <= 1e-15 else max(best, float(ev[-1] / ev[0]))
        if math.isinf(best):
            return best
    return best
    ### END SOLUTION


def radius_scratch(probs, kappa):
    """Equation (eq-q-radius) for every row of class probabilities."""
    ### BEGIN SOLUTION ex-q-radius-impl
    top2 = probs.topk(2, dim=1).values
    return ((torch.sqrt(top2[:, 0] / top2[:, 1]) - 1) / (kappa - 1)).clamp(0, 1)
    ### END SOLUTION


# %% [markdown]
# ## Numerical check
#
# Three checks, each against something independent of the formula it tests:
#
# 1. random rotation noise, simulated three ways: Monte-Carlo rotations on `default.qubit` with
#    parameter broadcasting, its Kraus channel on `default.mixed`, and PennyLane's
#    `DepolarizingChannel` at $q = 3p/4$ with $p$ from {eq}`eq-q-rotation`;
# 2. $\kappa^*$ from the circuit's Heisenberg operators against the closed form {eq}`eq-q-depol`;
# 3. random $\tau$-neighbour pairs never exceed $\varepsilon^*$, and the eigenvector pair attains it.

# %%
angles = torch.tensor([0.4, 1.1, 2.0], dtype=torch.float64)  # a symmetric angle distribution: +-theta with equal weight
p_rot = rotation_noise_replacement(float(torch.cos(angles).mean()))
state_in = np.array([np.cos(0.3), np.exp(0.7j) * np.sin(0.3)])  # an arbitrary pure qubit state


@qml.qnode(qml.device("default.qubit", wires=1))
def rotated(axis_index: int, theta):
    qml.StatePrep(state_in, wires=0)
    [qml.RX, qml.RY, qml.RZ][axis_index](theta, wires=0)
    return qml.density_matrix(0)


gen = torch.Generator().manual_seed(SEED)
axis = torch.randint(0, 3, (MC_SAMPLES,), generator=gen)
theta = angles[torch.randint(0, len(angles), (MC_SAMPLES,), generator=gen)] * (torch.randint(0, 2, (MC_SAMPLES,), generator=gen) * 2 - 1)
rho_mc = sum(np.asarray(rotated(a, theta[axis == a].numpy())).sum(0) for a in tqdm(range(3), desc="Monte-Carlo rotations")) / MC_SAMPLES


@qml.qnode(qml.device("default.mixed", wires=1))
def through(channel: str):
    qml.StatePrep(state_in, wires=0)
    if channel == "kraus":
        qml.QubitChannel([k.numpy() for k in rotation_noise_kraus(angles)], wires=0)
    else:
        qml.DepolarizingChannel(pennylane_depolarizing_parameter(p_rot), wires=0)
    return qml.density_matrix(0)


rho_kraus, rho_pl = np.asarray(through("kraus")), np.asarray(through("depolarizing"))
print(f"replacement p = {p_rot:.4f}; |MC - Kraus| = {np.abs(rho_mc - rho_kraus).max():.1e} "
      f"(Monte-Carlo error ~ {1 / math.sqrt(MC_SAMPLES):.0e}); |Kraus - DepolarizingChannel| = {np.abs(rho_kraus - rho_pl).max():.1e}")
assert np.abs(rho_kraus - rho_pl).max() < 1e-12 and np.abs(rho_mc - rho_kraus).max() < 5 / math.sqrt(MC_SAMPLES)

p_check = 0.2
ops_global = clf.heisenberg_operators(p_global=p_check)
print(f"kappa from Heisenberg operators {kappa_scratch(ops_global):.6f}; closed form {depolarizing_kappa(p_check, clf.d_eff):.6f}")
assert abs(kappa_scratch(ops_global) - depolarizing_kappa(p_check, clf.d_eff)) < 1e-9

tau_check, worst_log_ratio = 0.05, 0.0
eps_check = math.log1p((kappa_scratch(ops_global) - 1) * tau_check)
for _ in tqdm(range(run.pick(smoke=50, book=500, colab=5000)), desc="random neighbour pairs"):
    a = torch.randn(16, 16, generator=gen, dtype=torch.complex128)
    rho = a @ a.mH
    rho /= torch.trace(rho)
    b = torch.randn(16, 1, generator=gen, dtype=torch.complex128)
    other = b @ b.mH / (b.mH @ b)
    td = 0.5 * float(torch.linalg.eigvalsh(other - rho).abs().sum())
    sigma = rho + min(1.0, tau_check / td) * (other - rho)
    for m in ops_global:
        worst_log_ratio = max(worst_log_ratio, abs(math.log(float(torch.trace(m @ rho).real / torch.trace(m @ sigma).real))))
print(f"eps* = {eps_check:.4f}; largest |log ratio| over random tau-neighbours {worst_log_ratio:.4f}")
assert worst_log_ratio <= eps_check + 1e-12

# %% [markdown]
# The three simulations of rotation noise agree (to Monte-Carlo error for the sampled one), the
# Heisenberg operators reproduce the closed form, and random neighbours stay inside $\varepsilon^*$: random
# pairs come nowhere near it, which is why the attaining pair of the proof matters.
#
# ## Graduation
#
# `trustml_ref.quantum_cert` implements the same quantities ({ref}`API reference <api-quantum-cert>`);
# they must equal the scratch versions on the classifier's own operators.

# %%
trustml_ref.assert_close(kappa_star(ops_global), kappa_scratch(ops_global), rtol=1e-12, name="kappa*")
noisy = clf(x_test, p_check).detach()
trustml_ref.assert_close(certified_radius(noisy, depolarizing_kappa(p_check, clf.d_eff)),
                         radius_scratch(noisy, depolarizing_kappa(p_check, clf.d_eff)), rtol=1e-12, name="radius")
trustml_ref.assert_close(depolarizing_epsilon(p_check, 16, tau_check, rank=8), eps_check, rtol=1e-12, name="epsilon")
print("graduated: package kappa*, epsilon and radius equal the scratch versions")

# %% [markdown]
# ## Experiment 1: privacy, accuracy and certified accuracy as noise grows
#
# Global depolarising noise of replacement probability $p$ on the encoded state. Because it commutes
# with the circuit, the noisy probabilities are $(1-p)y + p/2$: the *prediction* never changes, but the
# margin shrinks. Certified accuracy at radius $\tau$ counts test points that are correct and certified.
# Dashed lines use a finite number of shots per point (in the plot title) with confidence $1-\alpha = 0.95$.

# %%
noise_levels = [0.05, 0.1, 0.2, 0.4]
taus = np.linspace(0, 0.08, 41)
curves, shot_curves, shot_exceeds, radii_by_p, predictions = {}, {}, {}, {}, {}
for p in tqdm(noise_levels, desc="noise levels"):
    probs = clf(x_test, p).detach()
    kappa = depolarizing_kappa(p, clf.d_eff)
    radius = certified_radius(probs, kappa)
    radii_by_p[p], predictions[p] = radius, probs.argmax(1)
    correct = probs.argmax(1) == y_test
    curves[p] = [float(((radius >= t) & (radius > 0) & correct).float().mean()) for t in taus]
    counts = torch.stack([torch.bincount(torch.multinomial(row, N_SHOTS, replacement=True, generator=gen), minlength=2) for row in probs])
    prediction, shot_radius = shot_certified_radius(counts, kappa, alpha=0.05)
    shot_curves[p] = [float(((shot_radius >= t) & (shot_radius > 0) & (prediction == y_test)).float().mean()) for t in taus]
    shot_exceeds[p] = int((shot_radius > radius + 1e-12).sum())  # allowed with probability <= alpha per point

# %% tags=["hide-input"]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
ps = np.linspace(0.01, 1, 100)
for tau in (0.01, 0.05, 0.1):
    ax0.semilogy(ps, [depolarizing_epsilon(p, 16, tau, rank=8) for p in ps], label=f"$\\tau$ = {tau}")
ax0.set(xlabel="replacement probability $p$", ylabel="$\\varepsilon$", title="privacy of global depolarising noise")
ax0.legend()
for p in noise_levels:
    line, = ax1.plot(taus, curves[p], label=f"p = {p}")
    ax1.plot(taus, shot_curves[p], "--", color=line.get_color())
ax1.set(xlabel="trace-distance radius $\\tau$", ylabel="certified accuracy", ylim=(0, 1.02),
        title=f"exact (solid) and {N_SHOTS} shots (dashed)")
ax1.legend()
plt.show()

# %%
half = {p: f"{taus[np.argmax(np.array(c) < 0.5)]:.3f}" if min(c) < 0.5 else f"> {taus[-1]:.2f}" for p, c in curves.items()}
print(f"clean accuracy {clean_acc:.3f} (unchanged by global depolarising noise); radius where certified accuracy "
      f"drops below 50%: " + ", ".join(f"p={p}: {t}" for p, t in half.items()))
print(f"test points whose shot-based radius exceeds the exact one (each has probability <= 5%): {shot_exceeds}")

noiseless_prediction = clf(x_test, 0.0).detach().argmax(1)
claim("global depolarising noise changes no prediction, at any p",
      all(torch.equal(predictions[p], noiseless_prediction) for p in noise_levels))
claim("the DP-certified radius of every test point grows with p",
      all(bool((radii_by_p[a] <= radii_by_p[b] + 1e-12).all()) for a, b in zip(noise_levels, noise_levels[1:])))
n_radii = len(y_test) * len(noise_levels)
share = sum(shot_exceeds.values()) / n_radii
claim("shot-based radii exceed the exact ones no more often than alpha = 5% allows (two binomial errors)",
      share <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n_radii), share=share, radii=n_radii)
glue("q_shot_share", 100 * share)


# %% [markdown]
# More noise buys a larger *certified* radius: $\tau^*$ grows like $p/(1-p)$ while the ratio
# $y_{\max}/y_{\text{second}}$ shrinks only slowly. Read this as a statement about the proof, not
# yet about the classifier: global noise changed no prediction, so whatever perturbation flips the
# noiseless classifier's answer flips the noisy one's too; what grows with $p$ is how much of that
# robustness the DP argument can prove. With global depolarising noise the clean accuracy
# does not drop at all, so here the trade-off is paid in *shots*: the noisier the output, the more
# shots it takes to tell the classes apart with confidence, and the shot-based curves (dashed) fall
# below the exact ones (a shot-based radius exceeded the exact one for
# {glue:text}`q_shot_share:.1f`% of the points, within the 5% the confidence level allows). On hardware, where noise also acts inside the circuit, accuracy pays as well.
#
# ## Experiment 2: the certificate against attacks
#
# For $p = 0.2$ we set the certified radius of each test point against two attacks: the mixing attack
# on the *state* (move toward the eigenvector of $\tilde M_b - \tilde M_a$ that most favours the other class,
# until the prediction flips) and PGD on the *features*, compared in feature space through
# $\|\delta\|_2 \le \tau^*\|x\|_2$. No attack may succeed inside the certified radius.

# %%
p_attack = 0.2
kappa_attack = depolarizing_kappa(p_attack, clf.d_eff)
probs = clf(x_test, p_attack).detach()
tau_cert = certified_radius(probs, kappa_attack)
tau_mix = mixing_attack_radius(clf.heisenberg_operators(p_global=p_attack), clf.encoded_states(x_test))
feature_cert = amplitude_input_radius(x_test[:N_ATTACK], tau_cert[:N_ATTACK])
feature_flip = feature_flip_radius(clf, x_test[:N_ATTACK], p_attack, radii)
assert torch.all(tau_cert <= tau_mix + 1e-12) and torch.all(feature_cert <= feature_flip)

# %% tags=["hide-input"]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
ax0.scatter(tau_cert, tau_mix, s=12)
top = float(tau_mix[torch.isfinite(tau_mix)].max())
ax0.plot([0, top], [0, top], "k--", lw=0.8, label="attack = certificate")
ax0.set(xlabel="certified $\\tau^*$", ylabel="mixing attack's flip distance", title="on the quantum state")
ax0.legend()
finite = torch.isfinite(feature_flip)
ax1.scatter(feature_cert[finite], feature_flip[finite], s=12)
top = float(feature_flip[finite].max())
ax1.plot([0, top], [0, top], "k--", lw=0.8)
ax1.set(xlabel="certified $\\|\\delta\\|_2$", ylabel="PGD flip radius", title="on the features")
plt.show()

# %%
ratio_state = float((tau_mix / tau_cert.clamp_min(1e-12))[tau_cert > 0].median())
ratio_feature = float((feature_flip / feature_cert.clamp_min(1e-12))[finite & (feature_cert > 0)].median())
print(f"every attack stayed outside the certified radius; median attack/certificate ratio: state {ratio_state:.1f}x, "
      f"features {ratio_feature:.1f}x")
claim("no attack flips a prediction inside its certified radius, on the state or on the features",
      bool(torch.all(tau_cert <= tau_mix + 1e-12) and torch.all(feature_cert <= feature_flip)))
glue("q_ratio_state", ratio_state)
glue("q_ratio_feature", ratio_feature)


# %% [markdown]
# The certificate holds on every point and is conservative: at the median the attacks need
# {glue:text}`q_ratio_state:.1f` times the certified radius on the state and
# {glue:text}`q_ratio_feature:.1f` times on the features: the DP argument bounds every outcome probability separately in the worst direction,
# while an attack must move one specific margin.
#
# ## Experiment 3: global versus local noise
#
# Noise on hardware acts inside the circuit. We depolarise every qubit (replacement $p$) after the
# encoding and after every layer, and compute $\varepsilon$ from $\kappa^*$ of the Heisenberg operators, which
# needs no closed form. We compare with global noise of the same $p$ and check the local model's
# probabilities against a `default.mixed` simulation.

# %%
local_levels = [0.02, 0.05, 0.1, 0.2, 0.4]
tau_fixed = 0.05
eps_global = [depolarizing_epsilon(p, 16, tau_fixed, rank=8) for p in local_levels]
eps_local, acc_local = [], []
for p in tqdm(local_levels, desc="local noise"):
    ops = clf.heisenberg_operators(p_local=p)
    eps_local.append(epsilon_from_kappa(kappa_star(ops), tau_fixed))
    psi = clf.encoded_states(x_test)
    probs_local = torch.stack([torch.einsum("bi,ij,bj->b", psi.conj(), m, psi).real for m in ops], 1)
    acc_local.append(float((probs_local.argmax(1) == y_test).float().mean()))
simulated = clf.local_noise_probs(x_test[:5], local_levels[1])
heis = clf.heisenberg_operators(p_local=local_levels[1])
predicted = torch.stack([torch.einsum("bi,ij,bj->b", psi[:5].conj(), m, psi[:5]).real for m in heis], 1)
assert torch.allclose(simulated, predicted, atol=1e-10)

# %% tags=["hide-input"]
fig, ax = plt.subplots()
ax.semilogy(local_levels, eps_global, "o-", label="global, before the circuit")
ax.semilogy(local_levels, eps_local, "s-", label=f"local, every qubit after each of {N_LAYERS + 1} stages")
ax.set(xlabel="replacement probability $p$", ylabel=f"$\\varepsilon$ at $\\tau$ = {tau_fixed}", title="where the noise acts matters")
ax.legend()
plt.show()

# %%
display(results_table({"p": local_levels, "epsilon, global": eps_global, "epsilon, local": eps_local,
                       "accuracy, local noise": acc_local}, digits=4, caption=f"Noise on every qubit against one global channel (tau = {tau_fixed})"))
claim("local noise gives a smaller epsilon than global noise of the same p, at every p",
      all(lo < gl for lo, gl in zip(eps_local, eps_global)), eps_local=eps_local, eps_global=eps_global)
local_cost = proportion_difference(acc_local[0], acc_local[-1], len(y_test))
claim(f"local noise at p = {local_levels[-1]} lowers accuracy below its value at p = {local_levels[0]}",
      local_cost.lower > 0, test=local_cost.test, **local_cost.evidence)
glue("q_local_p", local_levels[-1])
glue("q_local_acc", acc_local[-1])


# %% [markdown]
# Local noise at the same $p$ acts many times (once per qubit per stage), so it gives a much smaller
# $\varepsilon$ than one global channel, but unlike global noise it also changes the predictions:
# the accuracy falls to {glue:text}`q_local_acc:.3f` at $p$ = {glue:text}`q_local_p`. This is the robustness–accuracy trade-off in its
# physical form.
#
# ## Experiment 4: three classes with angle encoding (iris)
#
# The same analysis for a 3-class problem: four iris features as rotation angles on four qubits,
# classes read from two qubits (outcomes 0, 1, 2; outcome 3 belongs to no class), so $d_{\text{eff}} = 4$.

# %%
flowers = iris(seed=SEED)
clf3 = QuantumClassifier(4, N_LAYERS, 3, encoding="angle", generator=run.generator)
train_classifier(clf3, flowers.x_train * math.pi, flowers.y_train, epochs=EPOCHS * 2, lr=0.05, generator=run.generator, desc="iris VQC")
iris_curves = {}
for p in noise_levels:
    probs = clf3(flowers.x_test * math.pi, p).detach()
    radius = certified_radius(probs, depolarizing_kappa(p, clf3.d_eff))
    correct = probs.argmax(1) == flowers.y_test
    iris_curves[p] = [float(((radius >= t) & correct).float().mean()) for t in taus]
iris_acc = iris_curves[noise_levels[0]][0]

# %% tags=["hide-input"]
fig, ax = plt.subplots()
for p in noise_levels:
    ax.plot(taus, iris_curves[p], label=f"p = {p}")
ax.set(xlabel="trace-distance radius $\\tau$", ylabel="certified accuracy", ylim=(0, 1.02), title="iris, 3 classes, angle encoding")
ax.legend()
plt.show()

# %%
print(f"iris test accuracy {iris_acc:.3f}")
claim("on iris too, certified accuracy at every radius grows with p",
      all(all(a <= b for a, b in zip(iris_curves[lo], iris_curves[hi])) for lo, hi in zip(noise_levels, noise_levels[1:])))
glue("q_iris_acc", iris_acc)


# %% [markdown]
# With three classes and angle encoding the picture is the same: test accuracy
# {glue:text}`q_iris_acc:.3f`, and certified accuracy that grows with $p$ at every radius, because
# the proof becomes less loose, not because global noise changes the classifier.

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    clean_accuracy=clean_acc,
    rotation_noise_error=float(np.abs(rho_kraus - rho_pl).max()),
    kappa_check=kappa_scratch(ops_global),
    worst_log_ratio=worst_log_ratio,
    epsilon_check=eps_check,
    certified_curves={str(p): c for p, c in curves.items()},
    shot_curves={str(p): c for p, c in shot_curves.items()},
    shot_exceeds_exact={str(p): n for p, n in shot_exceeds.items()},
    n_test=len(y_test),
    attack_over_certificate={"state": ratio_state, "features": ratio_feature},
    eps_global=eps_global,
    eps_local=eps_local,
    accuracy_local=acc_local,
    iris_accuracy=iris_acc,
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-q-kappa
#
# Derive $\kappa$ for global depolarising noise with replacement $p$ on $n$ qubits when the read-out
# measures all $n$ qubits (every outcome has rank 1), and compare with reading out one qubit. Which
# read-out gives the better certificate, and what does that cost?
# ```
#
# ```{solution} ex-q-kappa
# :class: dropdown
#
# With rank-1 outcomes, $\kappa = 1 + (1-p)2^n/p$; with a one-qubit read-out, $r = 2^{n-1}$ and
# $\kappa = 1 + 2(1-p)/p$. Reading out fewer qubits gives a far smaller $\kappa$, hence a larger radius for
# the same probability ratio, but it also limits how many classes the read-out can express.
# ```
#
# ```{exercise}
# :label: ex-q-fixed-axis
#
# Show that rotating by a random angle about the fixed $Z$ axis gives no finite $\varepsilon$ for any
# $\tau > 0$, by exhibiting two states and an outcome set for which {eq}`eq-qdp` fails. Then check it
# with `kappa_star`.
# ```
#
# ```{solution} ex-q-fixed-axis
# :class: dropdown
#
# $R_Z(\theta)|0\rangle\langle0|R_Z(\theta)^\dagger = |0\rangle\langle0|$ for every $\theta$, and likewise for $|1\rangle$. With
# $\sigma = |1\rangle\langle1|$ and $\rho = (1-\tau)|1\rangle\langle1| + \tau|0\rangle\langle0|$ (trace distance $\tau$), the outcome
# $0$ of a $Z$ measurement has probability $\tau$ under $\rho$ and $0$ under $\sigma$: no $e^\varepsilon$ bounds the
# ratio. In code, $\tilde M_0 = \mathcal E^\dagger(|0\rangle\langle0|) = |0\rangle\langle0|$ is singular, and
# `kappa_star` returns `inf` (the test suite checks it).
# ```
#
# ```{exercise}
# :label: ex-q-radius
#
# A noisy binary classifier with global depolarising noise $p = 0.1$ and a one-qubit read-out
# ($d_{\text{eff}} = 2$) outputs $y = (0.7, 0.3)$. Compute the certified radius by hand, then the
# smallest number of shots for which a Clopper-Pearson certificate at 95% confidence is positive
# when the observed frequencies are exactly $0.7$ and $0.3$.
# ```
#
# ```{solution} ex-q-radius
# :class: dropdown
#
# $\kappa - 1 = 0.9\cdot2/0.1 = 18$ and $\tau^* = (\sqrt{0.7/0.3} - 1)/18 = 0.52753/18 \approx 0.0293$.
# For shots, increase $N$ until the lower bound of class 0 (level $0.025$) exceeds the upper bound of
# class 1: `shot_certified_radius(torch.tensor([[0.7 * N, 0.3 * N]]), 19.0)` is positive from a few
# dozen shots on; the radius then grows toward 0.0293 as $N$ grows.
# ```
#
# ```{exercise}
# :label: ex-q-phase
#
# This chapter shifts the PCA features to be non-negative before amplitude encoding. Explain what
# goes wrong with centred features, and why the shift does not break the feature-space certificate.
# ```
#
# ```{solution} ex-q-phase
# :class: dropdown
#
# $|\psi(-x)\rangle = -|\psi(x)\rangle$ is the same physical state, so a classifier cannot separate $x$ from
# $-x$; centred PCA features of two classes often point in nearly opposite directions, and accuracy
# collapses. The shift is a fixed translation of the inputs, so $\|\delta\|_2$ is unchanged and the
# bound $\sin\angle \le \|\delta\|_2/\|x'\|_2$ applies with $x'$ the shifted vector the circuit sees.
# ```
#
# ## Summary
#
# - Noise makes a quantum classifier differentially private with respect to trace-distance
#   neighbours; the exact $\varepsilon$ of any noisy circuit is $\ln(1 + (\kappa^*-1)\tau)$ with $\kappa^*$ from its
#   Heisenberg-picture measurement operators, and {eq}`eq-q-depol` for global depolarising noise.
# - Random rotations about uniformly random axes average to depolarising noise with
#   $p = \tfrac23(1-\mathbb E\cos\theta)$; PennyLane's parameter is $3p/4$; a fixed axis gives no privacy.
# - DP certifies the prediction for $\tau \le \tau^*$ {eq}`eq-q-radius`, with shots through Clopper-Pearson
#   bounds, and in feature space through $\|\delta\|_2 \le \tau^*\|x\|_2$. Measured here: every attack
#   stayed outside the certificate, which is conservative by a factor of about
#   {glue:text}`q_ratio_state:.0f` on the state.
# - Measured here: global depolarising noise changes no prediction, so the larger certified radius
#   it brings measures a less loose proof, not a more robust classifier; noise on every qubit gives
#   a smaller $\varepsilon$ and does cost accuracy.
#
# ## References
#
# - {cite:t}`huang2023certified`: certified robustness of quantum classifiers through quantum noise.
# - {cite:t}`du2021quantum`: depolarising noise protects quantum classifiers.
# - {cite:t}`zhou2017differential`: differential privacy for quantum algorithms, trace-distance neighbours.
# - {cite:t}`lecuyer2019certified`: from differential privacy to certified robustness (PixelDP).
