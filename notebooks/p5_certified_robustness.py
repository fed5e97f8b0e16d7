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
# (primer-certified)=
# # Primer P5: certified robustness, from margins to privacy
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/p5_certified_robustness.ipynb)

# %% [markdown]
# **Summary.** An attack that fails proves nothing: a stronger one might succeed. A *certificate*
# proves that no perturbation in the threat model changes the prediction. This primer derives three
# ways to get one: a Lipschitz bound on the margin, interval bound propagation, and, for randomised
# classifiers, differential privacy, which bounds how much any small change of the input can move the
# output probabilities. We implement each from scratch, check that no attack ever beats them,
# graduate to the package, and measure the gap between what attacks find and what certificates
# prove on handwritten digits. The three robustness chapters of the book are each one of these ideas
# applied to a new threat.
#
# **Learning goals.** After this primer you can
# - say why certified accuracy ≤ true robust accuracy ≤ accuracy under any attack;
# - derive a Lipschitz certificate and an interval-bound certificate for a ReLU network;
# - turn $(\varepsilon,\delta)$-differential privacy into a certified radius, and compare it with the tight
#   radius of Gaussian randomised smoothing.
#
# **Runtime.** `smoke`: seconds; `book`: about a minute on a 2-core CPU; `colab`: the same. Data:
# scikit-learn's digits.

# %% tags=["remove-cell"]
# Colab only: install trustml_ref beside Colab's own torch (pinned, so it is never
# reinstalled).
import importlib.metadata
import subprocess
import sys

if "google.colab" in sys.modules:
    torch_pin = f"torch=={importlib.metadata.version('torch')}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "trustml_ref @ git+https://github.com/trustml/trustml@main",
            torch_pin,
        ],
        check=True,
    )

# %% tags=["parameters"]
# "smoke" (seconds, for tests), "book" (default, 2-core CPU), "colab" (larger, CPU)
PROFILE = "book"
SEED = 0
DEVICE = "auto"  # "auto" picks CUDA when available
RESULTS_PATH = None  # tests pass a path here; the key results are written to it as JSON

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from scipy.stats import norm
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.certification import (
    dp_smoothing_radius,
    gaussian_smoothing_radius,
    smoothed_certify,
)
from trustml_ref.claims import claim, glue, proportion_difference
from trustml_ref.data import digits
from trustml_ref.io import record_results
from trustml_ref.privacy.gaussian import gaussian_delta
from trustml_ref.quantum_cert import certified_radius
from trustml_ref.tables import results_table
from trustml_ref.weight_robustness import (
    certified_margins,
    closed_form_margin_drop,
    ibp_margin_lower,
    mlp_forward,
    pgd_attack,
    worst_margin,
)
from trustml_ref.weight_robustness.training import (
    adversarial_loss,
    certified_loss,
    cross_entropy_loss,
    train,
)

run = trustml_ref.setup(PROFILE, SEED, DEVICE)  # small networks: the CPU is fine
EPOCHS = run.pick(smoke=6, book=40, colab=40)
STEPS = run.pick(smoke=10, book=20, colab=40)  # PGD steps
# noisy copies per test point for smoothing
SAMPLES = run.pick(smoke=200, book=10_000, colab=100_000)
data = digits(seed=SEED)
x_test, y_test = data.x_test, data.y_test

# %% [markdown]
# ## Motivation: what does an attack prove?
#
# Take the digits network of {ref}`the adversarial-examples primer <primer-adversarial>`, trained
# on PGD examples at $\ell_\infty$ budget $0.1$, and attack it at that budget twice: with one signed
# gradient step, and with projected gradient descent (PGD), twenty steps (ten in the `smoke` profile) from three random starts.

# %%
WIDTHS = (64, 64, 10)


def trained(loss, desc: str, progress_bar: bool = True) -> list[torch.Tensor]:
    """The weights of a network trained on the digits with ``loss``, seeded by SEED."""
    fit = train(
        WIDTHS,
        data.x_train,
        data.y_train,
        loss,
        epochs=EPOCHS,
        generator=torch.Generator().manual_seed(SEED),
        desc=desc,
        progress_bar=progress_bar,
    )
    return [w.detach() for w in fit.weights]


W_pgd = trained(adversarial_loss(0.0, 0.1), "PGD training")
one_step = pgd_attack(
    W_pgd, x_test, y_test, 0.0, 0.1, steps=1, step_factor=2.0, generator=run.generator
)
strong = pgd_attack(
    W_pgd, x_test, y_test, 0.0, 0.1, steps=STEPS, restarts=3, generator=run.generator
)
print(
    "accuracy at eps = 0.1: clean "
    f"{float((mlp_forward(W_pgd, x_test).argmax(1) == y_test).float().mean()):.3f}, "
    f"one-step attack {one_step.accuracy:.3f}, PGD {strong.accuracy:.3f}"
)

# %% [markdown]
# The stronger attack finds more errors, and nothing says a third attack would not find more still.
# Every attack gives an *upper* bound on the accuracy that survives every perturbation in the ball.
# To know how much really survives we need a *lower* bound: a proof, per test point, that the
# prediction cannot change.
#
# ## Derivation
#
# ### Certificates are lower bounds on the margin
#
# A classifier $f:\mathbb R^n\to\mathbb R^K$ predicts $y$ at $x$. Write the margins $m_j(\hat x) = f_y(\hat x) - f_j(\hat x)$.
# The prediction is robust on a ball $B(x)$ exactly when
#
# $$
# \min_{\hat x\in B(x)} m_j(\hat x) > 0 \quad\text{for every } j \ne y .
# $$ (eq-p5-margin)
#
# An attack evaluates $m_j$ at some points of the ball, so it bounds the minimum from *above*; a
# certificate is any computable $\underline m_j \le \min_{B(x)} m_j$ with $\underline m_j > 0$. Averaged over a
# test set, certified accuracy $\le$ true robust accuracy $\le$ accuracy under any attack, and the
# width of that sandwich is what we do not know.
#
# ### Lipschitz certificates
#
# If every margin is $L_j$-Lipschitz in the threat model's norm, $|m_j(\hat x) - m_j(x)| \le L_j\|\hat x - x\|$,
# then $m_j(x) > L_j\varepsilon$ certifies the ball of radius $\varepsilon$ {cite:p}`tsuzuku2018lipschitz`. For a bias-free ReLU
# network $z^k = \mathrm{ReLU}(W^k z^{k-1})$, $f = W^L z^{L-1}$ in $\ell_\infty$: ReLU is 1-Lipschitz coordinatewise,
# $\|W\Delta\|_\infty \le \beta(W)\|\Delta\|_\infty$ with $\beta(W) = \max_i\sum_j|W_{ij}|$ (the largest row $\ell_1$ norm), and
# $|(W^L_y - W^L_j)^\top\Delta| \le \|W^L_y - W^L_j\|_1\|\Delta\|_\infty$ (Hölder). Chaining the layers,
#
# $$
# |m_j(\hat x) - m_j(x)| \le \varepsilon\,\|W^L_y - W^L_j\|_1\prod_{k<L}\beta(W^k)
# \quad\text{for } \|\hat x - x\|_\infty\le\varepsilon .
# $$ (eq-p5-lipschitz)
#
# The bound holds for every $x$ at once, so it pays the worst case at every layer, even for neurons
# that are off at this $x$.
#
# ### Interval bound propagation
#
# Track a box that contains every reachable activation {cite:p}`gowal2018ibp`. Write a box as a centre
# $\mu$ and a radius $r\ge0$. A linear map sends it into the box with centre $W\mu$ and radius $|W|r$
# (coordinatewise the exact range), and ReLU is monotone, so $[\ell, u]\mapsto[\mathrm{ReLU}(\ell), \mathrm{ReLU}(u)]$.
# Starting from $\mu = x$, $r = \varepsilon\mathbf 1$ and bounding the margin directly in the last layer,
#
# $$
# m_j(\hat x) \ge (W^L_y - W^L_j)^\top\mu^{L-1} - |W^L_y - W^L_j|^\top r^{L-1} =: \underline m_j .
# $$ (eq-p5-ibp)
#
# It depends on $x$: a neuron whose whole interval is negative contributes nothing.
#
# ### From differential privacy to certificates
#
# Now let the classifier be randomised: $A(x)$ is a class drawn with probabilities $p_c(x)$. Suppose
# $A$ is $(\varepsilon, \delta)$-differentially private with respect to its input, for any two inputs in the
# ball: $p_c(\hat x) \le e^\varepsilon p_c(x) + \delta$ and $p_c(x) \le e^\varepsilon p_c(\hat x) + \delta$ (the definition of
# {ref}`the privacy primer <primer-dp>`, read for single outcomes). Then $p_a(\hat x) \ge e^{-\varepsilon}(p_a(x) - \delta)$ for the
# top class $a$ and $p_b(\hat x) \le e^\varepsilon p_b(x) + \delta$ for every other class, so the prediction is kept
# on the whole ball when {cite:p}`lecuyer2019certified`
#
# $$
# e^{-\varepsilon}\big(p_a - \delta\big) > e^{\varepsilon}p_b + \delta .
# $$ (eq-p5-dp)
#
# *Gaussian smoothing* makes any classifier $f$ private: $A(x) = f(x + \xi)$ with $\xi\sim\mathcal N(0,\sigma^2 I)$ is
# post-processing of the Gaussian mechanism $x\mapsto x+\xi$, whose sensitivity over the $\ell_2$ ball of radius
# $r$ is $r$. Its exact privacy profile {eq}`eq-gaussian-delta` gives, for each $\varepsilon$, the smallest valid
# $\delta(\varepsilon; \sigma, r)$, which grows with $r$; the certified radius is the largest $r$ at which some
# $\varepsilon$ satisfies {eq}`eq-p5-dp`. PixelDP {cite:p}`lecuyer2019certified` used the classical
# calibration $\varepsilon = r\sqrt{2\ln(1.25/\delta)}/\sigma$, valid only for $\varepsilon < 1$. The quantum chapter
# uses {eq}`eq-p5-dp` with $\delta = 0$ and trace distance in place of $\ell_2$.
#
# The DP route is valid but not tight. For Gaussian smoothing the tight radius is known
# {cite:p}`cohen2019certified`: with $p_a > p_b$,
#
# $$
# R = \frac{\sigma}{2}\Big(\Phi^{-1}(p_a) - \Phi^{-1}(p_b)\Big),
# $$ (eq-p5-cohen)
#
# and a linear classifier attains it (see the exercise on {ref}`tightness <ex-p5-tight>`). In practice $p_a$ is estimated from
# noisy copies, and a one-sided Clopper–Pearson lower bound with $p_b = 1 - p_a$ makes the radius hold
# with probability $1-\alpha$.
#
# ## From scratch

# %%
def lipschitz_drop_scratch(weights, eps):
    """Equation (eq-p5-lipschitz): the bound on |m_j(x^) - m_j(x)| for all class pairs,
    shape (K, K)."""
    lipschitz = 1.0
    for w in weights[:-1]:
        lipschitz = lipschitz * w.abs().sum(dim=1).max()
    w_last = weights[-1]
    return eps * lipschitz * (w_last[:, None, :] - w_last[None, :, :]).abs().sum(-1)


def ibp_margin_scratch(weights, x, eps):
    """Equation (eq-p5-ibp): lower bounds on f_i - f_j over the l_inf ball, shape (B,
    K, K)."""
    mu, r = x, torch.full_like(x, eps)
    for w in weights[:-1]:
        mu, r = mu @ w.T, r @ w.abs().T
        low, high = torch.relu(mu - r), torch.relu(mu + r)
        mu, r = (high + low) / 2, (high - low) / 2
    diff = weights[-1][:, None, :] - weights[-1][None, :, :]  # (K, K, n): W_i - W_j
    return torch.einsum("ijn,bn->bij", diff, mu) - torch.einsum(
        "ijn,bn->bij", diff.abs(), r
    )


def dp_radius_scratch(p_a, p_b, privacy, r_max, iterations=60):
    """Largest r in [0, r_max] at which (eq-p5-dp) holds for some (eps, delta) that
    privacy(r) returns.

    privacy(r) -> (eps, delta): tensors of valid pairs for perturbations of size r,
    growing with r.
    """

    def certified(r):
        eps, delta = privacy(r)
        return bool(
            (torch.exp(-eps) * (p_a - delta) > torch.exp(eps) * p_b + delta).any()
        )

    lo, hi = 0.0, r_max
    if not certified(1e-12 * r_max):
        return 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if certified(mid) else (lo, mid)
    return lo


def gaussian_exact_privacy(sigma, n_eps=2000, eps_max=5.0):
    """(eps, delta(eps)) pairs of the Gaussian mechanism at sensitivity r: equation
    (eq-gaussian-delta)."""
    eps = torch.linspace(0, eps_max, n_eps, dtype=torch.float64)
    return lambda r: (eps, gaussian_delta(eps, sigma, r))


def gaussian_classical_privacy(sigma, n_delta=2000):
    """(eps, delta) pairs of the classical calibration eps = r sqrt(2 ln(1.25/delta)) /
    sigma, eps < 1 only."""
    delta = torch.logspace(-12, -0.1, n_delta, dtype=torch.float64)

    def pairs(r):
        eps = r * torch.sqrt(2 * torch.log(1.25 / delta)) / sigma
        return eps[eps < 1], delta[eps < 1]

    return pairs


# %% [markdown]
# ## Numerical check
#
# Soundness first: on the PGD-trained network at $\varepsilon = 0.03$, no point of the ball may have a
# margin below either certificate. We try random corners of the box (where a ReLU network's margin
# tends to be smallest), uniform points inside it, and the PGD attack's own best points.

# %%
EPS_CHECK = 0.03
xs, ys = x_test[:40], y_test[:40]
# (B, K): m_j(x)
margins_clean = mlp_forward(W_pgd, xs).gather(1, ys[:, None]) - mlp_forward(W_pgd, xs)
lip_lower = margins_clean - lipschitz_drop_scratch(W_pgd, EPS_CHECK)[ys]
ibp_lower = ibp_margin_scratch(W_pgd, xs, EPS_CHECK)[torch.arange(len(ys)), ys]
lowest_seen = margins_clean.clone()
g = torch.Generator().manual_seed(SEED)
for _ in tqdm(range(run.pick(smoke=50, book=1000, colab=1000)), desc="random points"):
    corner = torch.randint(0, 2, xs.shape, generator=g) * 2.0 - 1
    for delta in (
        EPS_CHECK * corner,
        EPS_CHECK * (2 * torch.rand(xs.shape, generator=g) - 1),
    ):
        out = mlp_forward(W_pgd, xs + delta)
        lowest_seen = torch.minimum(lowest_seen, out.gather(1, ys[:, None]) - out)
attack_check = pgd_attack(
    W_pgd, xs, ys, 0.0, EPS_CHECK, steps=STEPS, restarts=3, generator=run.generator
)
off_diagonal = torch.ones_like(lowest_seen, dtype=torch.bool).scatter(
    1, ys[:, None], False
)
ibp_slack = float((lowest_seen - ibp_lower)[off_diagonal].min())
lip_slack = float((lowest_seen - lip_lower)[off_diagonal].min())
attack_slack = float((attack_check.margins - worst_margin(ibp_lower, ys)).min())
print(
    f"lowest sampled margin minus the bound: IBP {ibp_slack:.4f}, Lipschitz "
    f"{lip_slack:.4f}; "
    f"PGD's worst margin minus IBP's: {attack_slack:.4f}  (all must be >= 0)"
)
assert min(ibp_slack, lip_slack, attack_slack) >= -1e-5

# %% [markdown]
# The DP route next. On a *linear* binary classifier the smoothed probability is known in closed
# form, $p_a = \Phi(d/\sigma)$ with $d$ the distance to the decision boundary, so {eq}`eq-p5-cohen` must give
# exactly $d$, and any valid certificate must stay below it.

# %%
sigma_check = 0.5
distances = torch.linspace(
    0.02, 1.5, run.pick(smoke=6, book=25, colab=25), dtype=torch.float64
)
p_lin = torch.special.ndtr(distances / sigma_check)
cohen_lin = sigma_check * torch.special.ndtri(p_lin)
dp_exact_lin = torch.tensor(
    [
        dp_radius_scratch(p, 1 - p, gaussian_exact_privacy(sigma_check), 2.0)
        for p in p_lin
    ],
    dtype=torch.float64,
)
dp_classical_lin = torch.tensor(
    [
        dp_radius_scratch(p, 1 - p, gaussian_classical_privacy(sigma_check), 2.0)
        for p in p_lin
    ],
    dtype=torch.float64,
)
tight_error = float((cohen_lin - distances).abs().max())
print(f"Cohen's radius vs the true distance: max error {tight_error:.1e}")
assert (
    tight_error < 1e-9
    and (dp_exact_lin <= distances + 1e-9).all()
    and (dp_classical_lin <= dp_exact_lin + 1e-9).all()
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(p_lin, distances, "k-", label="true distance = Cohen et al. (eq-p5-cohen)")
ax.plot(p_lin, dp_exact_lin, "o-", ms=3, label="DP, exact Gaussian profile")
ax.plot(
    p_lin, dp_classical_lin, "s-", ms=3, label="DP, classical calibration (PixelDP)"
)
ax.set(
    xlabel="smoothed probability of the top class $p_a$",
    ylabel="certified $\\ell_2$ radius",
    title=f"one linear classifier, $\\sigma$ = {sigma_check}",
)
ax.legend(fontsize=7)
plt.show()

# %%
dp_share = float((dp_exact_lin / distances)[-1])
print(
    f"at p_a = {float(p_lin[-1]):.3f}: DP (exact profile) certifies {dp_share:.2f} of "
    "the true distance, "
    f"the classical calibration {float((dp_classical_lin / distances)[-1]):.2f}"
)


# %% [markdown]
# Near $p_a = 1/2$ the DP route with the exact privacy profile nearly matches the tight radius; for
# confident predictions it certifies a fraction of it (printed above), and the classical
# calibration less still. The privacy accountant matters here as it does in training.
#
# ## Graduation
#
# The package's weight-robustness certificates with the weights held fixed ($\varepsilon_k = 0$, only the
# input moves) are these two input certificates; `trustml_ref.certification` ({ref}`API reference <api-certification>`)
# has the smoothing radii;
# and the quantum chapter's radius is the DP route with $\varepsilon(\tau) = \ln(1 + (\kappa-1)\tau)$, $\delta = 0$.

# %%
trustml_ref.assert_close(
    closed_form_margin_drop(W_pgd, xs, 0.0, eps_x=EPS_CHECK),
    lipschitz_drop_scratch(W_pgd, EPS_CHECK).expand(len(xs), -1, -1),
    rtol=1e-5,
    atol=1e-6,
    name="Lipschitz",
)
trustml_ref.assert_close(
    ibp_margin_lower(W_pgd, xs, 0.0, eps_x=EPS_CHECK),
    ibp_margin_scratch(W_pgd, xs, EPS_CHECK),
    rtol=1e-5,
    atol=1e-5,
    name="IBP",
)
trustml_ref.assert_close(
    dp_smoothing_radius(p_lin, sigma_check),
    dp_exact_lin,
    rtol=2e-3,
    atol=1e-6,
    name="DP smoothing radius",
)
trustml_ref.assert_close(
    gaussian_smoothing_radius(p_lin, sigma_check),
    cohen_lin,
    rtol=1e-12,
    name="Cohen radius",
)
probs = torch.tensor(
    [[0.6, 0.3, 0.1], [0.45, 0.44, 0.11], [0.9, 0.05, 0.05]], dtype=torch.float64
)
kappa = 7.0
quantum_scratch = torch.tensor(
    [
        dp_radius_scratch(
            p[0],
            p[1],
            lambda tau: (
                torch.log1p((kappa - 1) * torch.tensor([tau], dtype=torch.float64)),
                torch.zeros(1, dtype=torch.float64),
            ),
            1.0,
        )
        for p in probs
    ],
    dtype=torch.float64,
)
trustml_ref.assert_close(
    certified_radius(probs, kappa),
    quantum_scratch,
    rtol=1e-9,
    atol=1e-12,
    name="quantum radius",
)
print(
    "graduated: Lipschitz and IBP certificates, both smoothing radii, and the quantum "
    "chapter's radius"
)

# %% [markdown]
# ## Experiment 1: the sandwich, and what training does to it
#
# Three networks with the same architecture: trained normally, trained on PGD examples at
# $\varepsilon = 0.1$, and trained on the IBP bound at $\varepsilon = 0.1$ (the certified loss of
# {doc}`the weight-perturbation chapter <05_weight_perturbation>` with the weights fixed). For each
# budget we report the accuracy under the two attacks (upper bounds) and the two certificates (lower
# bounds). As a soundness check at every budget, every certified test point must also survive PGD.

# %%
nets = {
    "standard": trained(cross_entropy_loss(), "standard training"),
    "PGD-trained": W_pgd,
    "IBP-trained": trained(certified_loss(0.0, 0.1), "IBP training"),
}

# %%
budgets = run.pick(
    smoke=[0.0, 0.05, 0.1],
    book=[0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15],
    colab=[0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15],
)
sandwich = {
    name: {k: [] for k in ("one-step attack", "PGD", "IBP", "Lipschitz")}
    for name in nets
}
# certified points PGD breaks; points Lipschitz certifies and IBP does not
unsound = ibp_misses = 0
for eps in tqdm(budgets, desc="budgets"):
    for name, W in nets.items():
        pgd = pgd_attack(
            W,
            x_test,
            y_test,
            0.0,
            eps,
            steps=STEPS,
            restarts=3,
            generator=run.generator,
        )
        ibp_ok = (
            worst_margin(certified_margins(W, x_test, y_test, 0.0, eps, "ibp"), y_test)
            > 0
        )
        lip_ok = (
            worst_margin(
                certified_margins(W, x_test, y_test, 0.0, eps, "closed_form"), y_test
            )
            > 0
        )
        unsound += int(((ibp_ok | lip_ok) & (pgd.margins <= 0)).sum())
        ibp_misses += int((lip_ok & ~ibp_ok).sum())
        row = sandwich[name]
        row["one-step attack"].append(
            pgd_attack(
                W,
                x_test,
                y_test,
                0.0,
                eps,
                steps=1,
                step_factor=2.0,
                generator=run.generator,
            ).accuracy
        )
        row["PGD"].append(pgd.accuracy)
        row["IBP"].append(float(ibp_ok.float().mean()))
        row["Lipschitz"].append(float(lip_ok.float().mean()))
print(f"certified test points broken by PGD, over all budgets and networks: {unsound}")
assert unsound == 0

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True)
for ax, (name, row) in zip(axes, sandwich.items()):
    ax.fill_between(budgets, row["IBP"], row["PGD"], color="0.85", label="unknown")
    for key, style in (
        ("one-step attack", "v--"),
        ("PGD", "o-"),
        ("IBP", "s-"),
        ("Lipschitz", "^-"),
    ):
        ax.plot(budgets, row[key], style, ms=4, label=key)
    ax.set(title=name, xlabel="$\\ell_\\infty$ budget $\\varepsilon$", ylim=(0, 1.02))
axes[0].set_ylabel("accuracy (attacks) / certified accuracy")
axes[0].legend(fontsize=7)
plt.show()

# %%
display(
    results_table(
        [
            {"network": name, "budget": eps, **{k: vals[i] for k, vals in row.items()}}
            for name, row in sandwich.items()
            for i, eps in enumerate(budgets)
        ],
        digits=2,
        caption="Accuracy under the attacks and certified accuracy, by network and "
        "budget",
    )
)
at_train = budgets.index(0.1)
band = {
    name: row["PGD"][at_train] - row["IBP"][at_train] for name, row in sandwich.items()
}
print(
    "width of the unknown band at eps = 0.1 (PGD minus IBP): "
    + ", ".join(f"{k} {v:.2f}" for k, v in band.items())
)


# %% [markdown]
# The conclusions, checked on this run (one network per training; accuracies on
# {glue:text}`p5_n_test` test points).

# %%
std, pgd_row, ibp_row = (
    sandwich["standard"],
    sandwich["PGD-trained"],
    sandwich["IBP-trained"],
)
collapse = [
    e for e, a, c in zip(budgets, std["PGD"], std["IBP"]) if a >= 0.5 and c <= 0.1
]
claim(
    "no certified test point is broken by PGD, at any budget, for any network",
    unsound == 0,
    broken=unsound,
)
claim(
    "IBP certifies every point the Lipschitz bound certifies",
    ibp_misses == 0,
    lipschitz_only=ibp_misses,
)
claim(
    "for the standard network some budget leaves PGD accuracy >= 0.5 while IBP "
    "certifies <= 0.1",
    bool(collapse),
    budgets=collapse,
)
claim(
    "the Lipschitz certificate of the standard network is below 0.05 from eps = 0.03 "
    "on",
    max(c for e, c in zip(budgets, std["Lipschitz"]) if e >= 0.03) < 0.05,
    lipschitz=std["Lipschitz"],
)
claim(
    "at eps = 0.1 the PGD-trained network's band (PGD minus IBP) is wider than 0.5",
    band["PGD-trained"] > 0.5,
    band=band["PGD-trained"],
)
claim(
    "IBP training narrows the band at eps = 0.1 at least threefold",
    band["IBP-trained"] * 3 < band["PGD-trained"],
    bands=band,
)
claim(
    "IBP training costs at most 5 points of clean accuracy",
    std["PGD"][0] - ibp_row["PGD"][0] <= 0.05,
    clean={name: row["PGD"][0] for name, row in sandwich.items()},
)
claim(
    "the Lipschitz certificate is below 0.05 at eps = 0.1 for every training",
    max(row["Lipschitz"][at_train] for row in sandwich.values()) < 0.05,
)
glue("p5_n_test", len(y_test))
for name, width in band.items():
    glue(f"p5_band_{name.split('-')[0].lower()}", width)
glue("p5_clean_std", std["PGD"][0])
glue("p5_clean_ibp", ibp_row["PGD"][0])

# %% [markdown]
# Read the grey band: the true robust accuracy lies somewhere in it. For the normally trained
# network both certificates collapse at budgets where attacks still leave most predictions standing,
# and the Lipschitz certificate, paying every layer's worst case, is empty almost at once. PGD training
# lifts the attack curves far more than the certificates: at its own training budget the band is
# {glue:text}`p5_band_pgd:.2f` wide, and from the attacks alone we cannot tell how much of its
# robustness is real. Training on the IBP bound itself narrows the band to
# {glue:text}`p5_band_ibp:.2f` at that budget, for a small loss of clean accuracy
# ({glue:text}`p5_clean_ibp:.2f` against {glue:text}`p5_clean_std:.2f`); then the certificate says
# most of what the attack says. IBP certified every point the Lipschitz bound certified, as it
# must ({ref}`ex-p5-ibp-linear`), and the Lipschitz certificate stays weak for every training.
# Chapters {doc}`05 <05_weight_perturbation>` and {doc}`06 <06_joint_robustness>` build the same
# sandwich for perturbed weights.
#
# ## Experiment 2: randomised smoothing, through DP and tightly
#
# Smoothing certifies $\ell_2$ balls, whatever the base network. We train base networks on inputs with
# Gaussian noise of the smoothing level $\sigma$ (so that they classify noisy inputs well), then run
# Monte Carlo certification (`smoothed_certify`: 10,000 noisy copies per test point in the `book` profile, confidence
# $1-\alpha$ with $\alpha = 0.001$) and compare the tight radius {eq}`eq-p5-cohen` with the DP route on the same
# lower bound $\underline{p_a}$.

# %%
def noisy_loss(sigma, generator):
    """Cross-entropy on inputs with Gaussian noise added: the base classifier sees what
    smoothing feeds it."""

    def loss(weights, x, y, progress):
        return torch.nn.functional.cross_entropy(
            mlp_forward(weights, x + sigma * torch.randn(x.shape, generator=generator)),
            y,
        )

    return loss


sigmas = run.pick(smoke=[0.25], book=[0.12, 0.25, 0.5], colab=[0.12, 0.25, 0.5])
radii = np.linspace(0, 1.5, 31)
smoothing = {}
for sigma in tqdm(sigmas, desc="noise levels"):
    W_base = trained(
        noisy_loss(sigma, torch.Generator().manual_seed(SEED)),
        f"training at sigma={sigma}",
        progress_bar=False,
    )
    pred, p_lower, r_cohen = smoothed_certify(
        lambda z: mlp_forward(W_base, z).argmax(1),
        x_test,
        sigma,
        10,
        n_select=100,
        n_estimate=SAMPLES,
        generator=run.generator,
    )
    r_dp = dp_smoothing_radius(p_lower, sigma)
    correct = (pred == y_test).numpy()
    smoothing[sigma] = {
        "tight": [float(np.mean(correct & (r_cohen.numpy() >= r))) for r in radii],
        "DP": [float(np.mean(correct & (r_dp.numpy() >= r))) for r in radii],
        "abstain": float((pred < 0).float().mean()),
        "median_ratio": float((r_dp[pred >= 0] / r_cohen[pred >= 0]).median()),
        "max_radius": float(r_cohen.max()),
        "dp_above_tight": int((r_dp > r_cohen + 1e-9).sum()),
    }

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for i, (sigma, res) in enumerate(smoothing.items()):
    ax.plot(radii, res["tight"], "-", color=f"C{i}", label=f"$\\sigma$={sigma}, tight")
    ax.plot(radii, res["DP"], "--", color=f"C{i}", label=f"$\\sigma$={sigma}, DP route")
ax.set(
    xlabel="$\\ell_2$ radius",
    ylabel="certified accuracy",
    ylim=(0, 1.02),
    title="Gaussian smoothing on digits",
)
ax.legend(fontsize=7)
plt.show()

# %%
for sigma, res in smoothing.items():
    print(
        f"sigma={sigma}: certified accuracy at r=0 {res['tight'][0]:.3f}, abstained "
        f"{res['abstain']:.3f}, "
        f"median DP/tight radius {res['median_ratio']:.2f}"
    )


# %%
lo, hi = sigmas[0], sigmas[-1]
cap = {sigma: sigma * float(norm.ppf(0.001 ** (1 / SAMPLES))) for sigma in sigmas}
claim(
    "no certified radius exceeds sigma * Phi^-1(alpha^(1/n)), the cap of n hits out of "
    "n",
    all(smoothing[sg]["max_radius"] <= cap[sg] + 1e-6 for sg in sigmas),
    max_radius=[smoothing[sg]["max_radius"] for sg in sigmas],
    cap=list(cap.values()),
)
claim(
    "the DP route never certifies a larger radius than the tight one",
    sum(r["dp_above_tight"] for r in smoothing.values()) == 0,
)
claim(
    "the DP route certifies less than the tight radius at the median, for every sigma",
    max(r["median_ratio"] for r in smoothing.values()) < 1,
)
if len(sigmas) > 1:
    cost = proportion_difference(
        smoothing[lo]["tight"][0], smoothing[hi]["tight"][0], len(y_test)
    )
    claim(
        f"sigma = {hi} certifies fewer points at r = 0 than sigma = {lo}",
        cost.lower > 0,
        test=cost.test,
        **cost.evidence,
    )
    claim(
        f"sigma = {hi} certifies a larger radius than sigma = {lo}",
        smoothing[hi]["max_radius"] > smoothing[lo]["max_radius"],
    )
glue("p5_ratio_lo", smoothing[lo]["median_ratio"])
glue("p5_ratio_hi", smoothing[hi]["median_ratio"])
glue("p5_sigma_lo", lo)
glue("p5_sigma_hi", hi)

# %% [markdown]
# Larger $\sigma$ certifies larger radii but costs accuracy at small ones, and no radius beyond
# $\sigma\Phi^{-1}(\alpha^{1/n})$ can be certified with $n$ samples (the Clopper–Pearson bound of $n$
# hits out of $n$). The DP route, on the same estimate, certifies at the median
# {glue:text}`p5_ratio_lo:.2f` of the tight radius at $\sigma$ = {glue:text}`p5_sigma_lo` and
# {glue:text}`p5_ratio_hi:.2f` at $\sigma$ = {glue:text}`p5_sigma_hi`: a valid certificate, loose
# where predictions are confident. For scale: an $\ell_2$ ball of radius $r$ lies
# inside the $\ell_\infty$ ball of the same radius, and an $\ell_\infty$ ball of radius $\varepsilon$ in 64 dimensions
# inside the $\ell_2$ ball of radius $8\varepsilon$, so each certificate is best in its own norm.

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    motivation={"one_step": one_step.accuracy, "pgd": strong.accuracy},
    slack={"ibp": ibp_slack, "lipschitz": lip_slack, "attack": attack_slack},
    unsound=unsound,
    budgets=budgets,
    sandwich=sandwich,
    band=band,
    linear={"tight_error": tight_error, "dp_share_at_top": dp_share},
    smoothing={str(k): v for k, v in smoothing.items()},
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-p5-lipschitz-l2
#
# Redo {eq}`eq-p5-lipschitz` for the $\ell_2$ threat model. Which matrix norm replaces $\beta(W)$, and
# which vector norm replaces $\|W^L_y - W^L_j\|_1$? Why is the product of the layers' norms usually far
# larger than the network's true Lipschitz constant?
# ```
#
# ```{solution} ex-p5-lipschitz-l2
# :class: dropdown
#
# The spectral norm $\|W\|_2$ (largest singular value) replaces $\beta(W)$, and $\|W^L_y - W^L_j\|_2$ the
# $\ell_1$ norm (Cauchy–Schwarz). The product bounds every layer by its worst direction
# independently, but the direction that one layer stretches most is rarely the one the next layer
# stretches most, and ReLUs switch off coordinates; the true constant of the composition can be
# much smaller.
# ```
#
# ```{exercise}
# :label: ex-p5-ibp-linear
#
# Show that for a network with one layer ($L = 1$, $f = Wx$), {eq}`eq-p5-ibp` and {eq}`eq-p5-lipschitz`
# both equal the exact minimum margin, $m_j(x) - \varepsilon\|W_y - W_j\|_1$. From which layer on can they
# differ, and which one is larger there?
# ```
#
# ```{solution} ex-p5-ibp-linear
# :class: dropdown
#
# With $L = 1$, $\mu = x$, $r = \varepsilon\mathbf 1$ and {eq}`eq-p5-ibp` is $(W_y - W_j)^\top x - \varepsilon\|W_y - W_j\|_1$,
# the minimum over the box (attained at a corner, as in {eq}`eq-p1-linear`); the product in
# {eq}`eq-p5-lipschitz` is empty. From one hidden layer on they differ. IBP's radii satisfy
# $r^k \le |W^k|r^{k-1}$ (ReLU only narrows an interval), so $\|r^{L-1}\|_\infty \le \varepsilon\prod_{k<L}\beta(W^k)$, and the clean
# activation lies in every box. More is true: each IBP box lies inside the box centred at the
# *clean* activation $z^k$ with radius $d_k = \varepsilon\prod_{i\le k}\beta(W^i)$. By induction: if
# $[\mu^{k-1} \pm r^{k-1}] \subseteq [z^{k-1} \pm d_{k-1}]$, interval arithmetic through $W^k$ (exact
# for a linear map of a box) stays inside $W^k z^{k-1} \pm |W^k| d_{k-1}\mathbf 1 \subseteq W^k z^{k-1}
# \pm \beta(W^k) d_{k-1}$, and the ReLU, monotone and 1-Lipschitz in each coordinate, keeps the
# containment around $z^k = \mathrm{ReLU}(W^k z^{k-1})$. The last layer's minimum over the smaller
# box is at least its minimum over the larger one, which is exactly the Lipschitz bound
# $m_j(x) - \|W^L_y - W^L_j\|_1 d_{L-1}$. So IBP is never looser than the Lipschitz bound; the
# experiment checks it point by point, and on trained networks IBP is far tighter.
# ```
#
# ```{exercise}
# :label: ex-p5-tight
#
# Let $f(x) = \mathbb 1[w^\top x + b > 0]$ and $g$ its Gaussian smoothing. Show that $P(f(x+\xi) = 1) = \Phi\big((w^\top x + b)/(\sigma\|w\|)\big)$
# and that {eq}`eq-p5-cohen` with $p_b = 1 - p_a$ equals the distance from $x$ to the hyperplane. Why does
# this make the radius tight, that is, impossible to improve using $p_a$ alone?
# ```
#
# ```{solution} ex-p5-tight
# :class: dropdown
#
# $w^\top\xi \sim \mathcal N(0, \sigma^2\|w\|^2)$, so $P(w^\top(x+\xi) + b > 0) = \Phi((w^\top x + b)/(\sigma\|w\|))$, and
# $\sigma\Phi^{-1}(p_a) = (w^\top x + b)/\|w\|$, the signed distance. Any point beyond the hyperplane is
# classified differently by $g$, so no certificate for this $f$ can exceed the distance; and since
# a linear classifier with this $p_a$ exists, no certificate that only knows $p_a$ can be larger for
# any $f$. The numerical check above confirms it to $10^{-9}$.
# ```
#
# ```{exercise}
# :label: ex-p5-dp-small-p
#
# In the DP route, why does the optimal $\varepsilon$ lie in $[0, \tfrac12\ln(p_a/p_b)]$? Explain, from the shape
# of $\delta(\varepsilon)$, why the DP route nearly matches the tight radius when $p_a$ is close to $1/2$ and
# falls behind as $p_a\to 1$.
# ```
#
# ```{solution} ex-p5-dp-small-p
# :class: dropdown
#
# For $\varepsilon > \tfrac12\ln(p_a/p_b)$, $e^{-\varepsilon}p_a < e^{\varepsilon}p_b$ already with $\delta = 0$, and $\delta$ only hurts.
# At $\varepsilon = 0$, $\delta(0)$ is the total variation distance between $\mathcal N(0,\sigma^2)$ and $\mathcal N(r,\sigma^2)$,
# $2\Phi(r/2\sigma) - 1$, and the condition reads $p_a - p_b > 2\delta(0)$. For $p_a, p_b$ near $1/2$, use
# $\Phi^{-1}(p) \approx \sqrt{2\pi}(p - \tfrac12)$ and $2\Phi(t) - 1 \approx 2t/\sqrt{2\pi}$: both this radius and {eq}`eq-p5-cohen`
# are $\sigma\sqrt{2\pi}(p_a - p_b)/2$ to first order, so the DP route is nearly tight there. As $p_a\to1$ the tight
# radius grows without bound like $\sigma\Phi^{-1}(p_a)$, while one $(\varepsilon,\delta)$ pair must bound every event at
# once, including the ones that matter least here; the tight analysis uses the whole trade-off
# between the two Gaussians (the Neyman–Pearson lemma) for the one event that matters.
# ```

# %% [markdown]
# ## Summary
#
# - A certificate lower-bounds the worst margin over the threat model {eq}`eq-p5-margin`; attacks
#   upper-bound it. Certified accuracy ≤ true robust accuracy ≤ accuracy under attack.
# - Lipschitz certificates {eq}`eq-p5-lipschitz` are global and cheap but pay every layer's worst
#   case; interval bound propagation {eq}`eq-p5-ibp` uses the input and is far tighter on trained networks;
#   both become useful when the network is trained for them.
# - A randomised classifier that is $(\varepsilon,\delta)$-DP in its input is certified by {eq}`eq-p5-dp`. Gaussian
#   smoothing makes any classifier so; the DP route is valid, and the tight radius {eq}`eq-p5-cohen` is
#   larger for confident predictions.
#
# ## References
#
# - {cite:t}`tsuzuku2018lipschitz`: Lipschitz-margin certificates; {cite:t}`gowal2018ibp`: interval bound propagation.
# - {cite:t}`lecuyer2019certified`: certified robustness from differential privacy (PixelDP).
# - {cite:t}`cohen2019certified`: randomised smoothing and its tight radius.
# - {cite:t}`balle2018improving`: the exact privacy profile of the Gaussian mechanism.
