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
# (primer-dp)=
# # Primer P2: differential privacy, from one query to training
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/p2_differential_privacy.ipynb)

# %% [markdown]
# **Summary.** A released statistic can give away whether one person's record was used. Differential
# privacy bounds that leak by making the output's distribution nearly the same with or without any
# one record. This primer shows the leak on a mean, recalls the Gaussian mechanism, and then builds
# the tools every private-training method in the book uses: Rényi differential privacy, its
# composition over many steps, its conversion to $(\varepsilon,\delta)$, DP-SGD with amplification
# by sampling, and PATE's noisy vote. It ends where the visual-prompting chapter starts.
#
# **Learning goals.** After this primer you can
# - state $(\varepsilon,\delta)$-DP and Rényi DP, and the Rényi DP of the Gaussian mechanism;
# - compose many mechanisms and convert the total to $(\varepsilon,\delta)$, and say why this beats adding up $\varepsilon$'s;
# - describe one DP-SGD step and what the accountant tracks;
# - compute PATE's data-independent cost and say why it needs many teachers.
#
# **Runtime.** `smoke`: seconds; `book`: under a minute on a 2-core CPU; `colab`: the same. Data:
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
            "trustml_ref[dp] @ git+https://github.com/trustml/trustml@main",
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
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import optimize, special
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue, proportion_difference
from trustml_ref.data import digits
from trustml_ref.io import record_results
from trustml_ref.privacy import gaussian_delta
from trustml_ref.privacy.pate import (
    calibrate_gnmax_sigma,
    eps_from_rdp,
    gnmax,
    log_q_gnmax,
    one_teacher_neighbours,
    rdp_gnmax_data_independent,
)
from trustml_ref.tables import results_table
from trustml_ref.training import accuracy, fit
from trustml_ref.visual_prompting import train_dpsgd

warnings.filterwarnings("ignore", module="opacus")
run = trustml_ref.setup(PROFILE, SEED, DEVICE)
EPOCHS = run.pick(smoke=3, book=15, colab=15)
EPS_GRID = run.pick(
    smoke=[1.0, 8.0],
    book=[0.5, 1.0, 2.0, 4.0, 8.0],
    colab=[0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
)
ORDERS = np.concatenate([np.linspace(1.1, 10.9, 99), np.arange(11, 257, dtype=float)])

# %% [markdown]
# ## Motivation: a mean that gives a person away
#
# A hospital publishes the average of a bounded score over its patients, and next month the average
# over the same patients plus one. The difference of the two averages, times the count, is the new
# patient's score, exactly. Nothing secret was released, and yet one record was. Adding noise to each
# release blurs this difference; the question is how much noise buys how much protection.

# %%
rng = np.random.default_rng(SEED)
scores = rng.uniform(0, 1, 200)
newcomer = 0.93
before, after = scores.mean(), np.append(scores, newcomer).mean()
recovered = after * 201 - before * 200
print(f"score recovered from two exact means: {recovered:.6f} (true {newcomer})")
sigma_mean = 0.02
noisy = [
    (np.append(scores, newcomer).mean() + rng.normal(0, sigma_mean)) * 201
    - (scores.mean() + rng.normal(0, sigma_mean)) * 200
    for _ in range(5)
]
print("the same attack on means with Gaussian noise of std 0.02:", np.round(noisy, 2))

# %% [markdown]
# ## Derivation
#
# A randomised mechanism $M$ is $(\varepsilon,\delta)$-differentially private {cite:p}`dwork2014algorithmic`
# if for all data sets $D, D'$ differing in one record and all output sets $S$,
# $\Pr[M(D)\in S] \le e^\varepsilon \Pr[M(D')\in S] + \delta$. The Gaussian mechanism
# $M(D) = q(D) + \mathcal N(0, \sigma^2 I)$, for a query with $\ell_2$ sensitivity
# $\Delta = \max\|q(D) - q(D')\|_2$, has the exact privacy profile used in {ref}`the conventions chapter <chapter-conventions>`.
#
# **Rényi DP.** $M$ is $(\alpha, \rho)$-RDP {cite:p}`mironov2017renyi` if the Rényi divergence of order $\alpha > 1$
# between $M(D)$ and $M(D')$ is at most $\rho$ for all neighbours. For two Gaussians with the same
# variance and means $\Delta$ apart the divergence is in closed form, so
#
# $$
# \rho_{\text{Gauss}}(\alpha) = \frac{\alpha\,\Delta^2}{2\sigma^2}.
# $$ (eq-p2-rdp-gauss)
#
# **Composition.** Running mechanisms one after another (each may depend on the previous outputs)
# adds their RDP at every order: $\rho(\alpha) = \sum_k \rho_k(\alpha)$. **Conversion.** An $(\alpha,\rho)$-RDP
# mechanism is $(\rho + \ln(1/\delta)/(\alpha - 1), \delta)$-DP for every $\delta$, so
#
# $$
# \varepsilon(\delta) = \min_{\alpha>1}\ \rho(\alpha) + \frac{\ln(1/\delta)}{\alpha - 1}.
# $$ (eq-p2-conversion)
#
# Adding up $\varepsilon$'s (basic composition) grows linearly in the number of steps $k$; the RDP route
# grows like $\sqrt{k}$ for small per-step cost, which is what makes private training possible.
#
# **DP-SGD** {cite:p}`abadi2016deep` is this recipe applied to gradient descent: clip each example's
# gradient to norm $C$ (so one example moves the sum by at most $C$: sensitivity $C$), add
# $\mathcal N(0, \sigma^2C^2)$, step. Each step is a Gaussian mechanism on a random batch; sampling
# each example with probability $q$ amplifies privacy further, and an *accountant* (Opacus's RDP
# or PRV accountant) composes all steps. **PATE** protects data differently (only noisy votes of
# teachers trained on disjoint data leave); {ref}`chapter-visual-prompting-dp` derives both.
#
# ## From scratch


# %%
def rdp_gaussian_scratch(alpha, sigma, sensitivity=1.0):
    """Equation (eq-p2-rdp-gauss) at each order."""
    return np.asarray(alpha, dtype=float) * sensitivity**2 / (2 * sigma**2)


def eps_scratch(orders, rdp, delta):
    """Equation (eq-p2-conversion): minimise over the given orders."""
    orders, rdp = np.asarray(orders, dtype=float), np.asarray(rdp, dtype=float)
    return float(np.min(rdp + math.log(1 / delta) / (orders - 1)))


# %% [markdown]
# ## Numerical check
#
# Composing $k$ Gaussian mechanisms of noise $\sigma$ and sensitivity 1 is exactly one Gaussian
# mechanism of noise $\sigma/\sqrt k$ (stack the $k$ answers; the sensitivity of the stack is $\sqrt k$).
# Its exact $\varepsilon(\delta)$ therefore follows from the closed-form privacy profile, and the RDP bound
# must never be below it. Basic composition (add the single-step $\varepsilon$'s) is the third curve.

# %%
sigma, delta = 20.0, 1e-5
steps = np.unique(
    np.geomspace(1, run.pick(smoke=1000, book=10_000, colab=10_000), 25).astype(int)
)


def exact_eps(sigma_eff):
    if float(gaussian_delta(0.0, sigma_eff)) <= delta:
        return 0.0
    return optimize.brentq(
        lambda e: float(gaussian_delta(e, sigma_eff)) - delta, 0.0, 500.0
    )


single = exact_eps(sigma)
curves = {"basic composition": [], "RDP": [], "exact": []}
for k in tqdm(steps, desc="composition"):
    curves["basic composition"].append(k * single)
    curves["RDP"].append(
        eps_scratch(ORDERS, k * rdp_gaussian_scratch(ORDERS, sigma), delta)
    )
    curves["exact"].append(exact_eps(sigma / math.sqrt(k)))
# a valid bound is never below the truth
assert all(r >= e - 1e-9 for r, e in zip(curves["RDP"], curves["exact"]))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in curves.items():
    ax.plot(steps, values, label=name)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="composed Gaussian mechanisms (sigma = 20)",
    ylabel=r"$\varepsilon$ at $\delta = 10^{-5}$",
    title="composition: adding up vs Rényi DP vs exact",
)
ax.legend()
plt.show()

# %%
k_last = int(steps[-1])
print(f"one step: exact eps {single:.3f}")
print(
    f"after {k_last} steps: basic {curves['basic composition'][-1]:.1f}, RDP "
    f"{curves['RDP'][-1]:.2f}, "
    f"exact {curves['exact'][-1]:.2f}"
)
rdp_excess = curves["RDP"][-1] / curves["exact"][-1] - 1
basic_factor = curves["basic composition"][-1] / curves["exact"][-1]
claim(
    f"after {k_last} steps RDP is within 15% of the exact epsilon",
    rdp_excess < 0.15,
    rdp_excess=rdp_excess,
)
claim(
    f"after {k_last} steps basic composition overstates epsilon more than tenfold",
    basic_factor > 10,
    basic_over_exact=basic_factor,
)
glue("p2_k_last", k_last)
glue("p2_rdp_excess", 100 * rdp_excess)
glue("p2_basic_factor", basic_factor)


# %% [markdown]
# ## Graduation
#
# The package's conversion ({func}`~trustml_ref.privacy.pate.eps_from_rdp` with `"pate"`, the one derived above), and Opacus's RDP of the
# (subsampled) Gaussian mechanism at sampling rate 1, which must equal {eq}`eq-p2-rdp-gauss` times the steps.

# %%
from opacus.accountants.analysis.rdp import compute_rdp

rdp_k = 100 * rdp_gaussian_scratch(ORDERS, sigma)
trustml_ref.assert_close(
    torch.tensor(eps_from_rdp(ORDERS, rdp_k, delta, "pate")[0]),
    torch.tensor(eps_scratch(ORDERS, rdp_k, delta)),
    rtol=1e-12,
    name="epsilon from RDP",
)
trustml_ref.assert_close(
    torch.as_tensor(
        compute_rdp(q=1.0, noise_multiplier=sigma, steps=100, orders=ORDERS)
    ),
    torch.as_tensor(rdp_k),
    rtol=1e-9,
    name="Opacus RDP at q = 1",
)
print(
    "graduated: conversion and the Gaussian RDP agree with the package and with Opacus"
)

# %% [markdown]
# ## Amplification by sampling, and who the neighbour is
#
# Two details decide what number an accountant reports.
#
# **Sampling.** DP-SGD does not use every example at every step: it puts each example in the batch
# with probability $q$ (Poisson sampling). An example left out cannot affect that step, and the
# step's privacy loss shrinks accordingly. For the Gaussian mechanism with sensitivity 1 and noise
# $\sigma$ and an integer order $\alpha \ge 2$, the sampled mechanism's RDP under add/remove
# neighbours is {cite:p}`mironov2019sampled`
#
# $$
# \rho_q(\alpha) = \frac{1}{\alpha - 1}\,\ln \sum_{k=0}^{\alpha} \binom{\alpha}{k}(1-q)^{\alpha-k}q^k
# \exp\!\Big(\frac{k^2-k}{2\sigma^2}\Big),
# $$ (eq-p2-sampled)
#
# which at $q = 1$ keeps only $k = \alpha$ and gives back {eq}`eq-p2-rdp-gauss`. For small $q$ it is
# close to $q^2$ times a constant, so at an equal number of *epochs* ($T = E/q$ steps) the total
# RDP falls roughly like $q$: small batches are cheaper in privacy, at the cost of more steps.
#
# **The neighbour.** "Differing in one record" has two readings. *Add/remove*: $D'$ is $D$ with one
# record more or less (Opacus's, this book's). *Substitution*: one record is replaced by another.
# A clipped-gradient sum moves by at most $C$ under add/remove but by up to $2C$ under
# substitution (one gradient out, another in), so the same mechanism's Gaussian RDP is four times
# larger under substitution: its $\varepsilon$ at noise $\sigma$ equals add/remove's at $\sigma/2$.
# A guarantee means little without its neighbour relation.


# %%
def rdp_sampled_scratch(alpha: int, q: float, sigma: float) -> float:
    """Equation (eq-p2-sampled) for one integer order, in log space."""
    k = np.arange(alpha + 1)
    log_binom = special.gammaln(alpha + 1) - special.gammaln(k + 1)
    log_binom = log_binom - special.gammaln(alpha - k + 1)
    with np.errstate(divide="ignore"):  # log(0) at q = 1 drops those terms
        log_terms = (
            log_binom
            + special.xlog1py(alpha - k, -q)  # (alpha - k) ln(1 - q), 0 when k = alpha
            + special.xlogy(k, q)
            + (k**2 - k) / (2 * sigma**2)
        )
    return float(special.logsumexp(log_terms)) / (alpha - 1)


def rdp_sampled_orders(orders, q: float, sigma: float) -> np.ndarray:
    """:func:`rdp_sampled_scratch` at every integer order of ``orders``."""
    return np.array([rdp_sampled_scratch(int(a), q, sigma) for a in orders])


INT_ORDERS = np.arange(2, 65)
SIGMA_Q = 1.1  # the noise multiplier of this section
for q_check in (1.0, 0.1, 0.01):
    trustml_ref.assert_close(
        torch.as_tensor(rdp_sampled_orders(INT_ORDERS, q_check, SIGMA_Q)),
        torch.as_tensor(
            compute_rdp(q=q_check, noise_multiplier=SIGMA_Q, steps=1, orders=INT_ORDERS)
        ),
        rtol=1e-8,
        name=f"sampled Gaussian RDP at q = {q_check}",
    )
trustml_ref.assert_close(
    torch.as_tensor(rdp_sampled_orders(INT_ORDERS, 1.0, SIGMA_Q)),
    torch.as_tensor(rdp_gaussian_scratch(INT_ORDERS, SIGMA_Q)),
    rtol=1e-10,
    name="q = 1 is the Gaussian mechanism",
)
print("equation (eq-p2-sampled) agrees with Opacus's accountant at every integer order")

# %% [markdown]
# The same noise $\sigma = 1.1$, the same 15 epochs, three sampling rates, and both neighbour
# relations for the full batch ($q = 1$, where substitution is add/remove at $\sigma/2$):

# %%
amplification = []
for q_rate in (1.0, 0.1, 0.01):
    steps_q = int(round(15 / q_rate))
    rdp_q = steps_q * rdp_sampled_orders(INT_ORDERS, q_rate, SIGMA_Q)
    amplification.append(
        {
            "sampling rate q": q_rate,
            "steps (15 epochs)": steps_q,
            "epsilon, add/remove": eps_scratch(INT_ORDERS, rdp_q, 1e-5),
        }
    )
substitution = eps_scratch(
    INT_ORDERS, 15 * rdp_gaussian_scratch(INT_ORDERS, SIGMA_Q / 2), 1e-5
)
results_table(
    amplification,
    digits=2,
    caption=(
        f"sigma = {SIGMA_Q}, delta = 1e-5; at q = 1 substitution gives epsilon "
        f"{substitution:.1f}"
    ),
)

# %%
eps_by_q = [row["epsilon, add/remove"] for row in amplification]
claim(
    "at equal noise and epochs, sampling amplifies: epsilon falls as q falls from 1 to "
    "0.1 to 0.01",
    eps_by_q[0] > eps_by_q[1] > eps_by_q[2],
    epsilon=eps_by_q,
)
glue("p2_eps_full", eps_by_q[0])
glue("p2_eps_sampled", eps_by_q[2])
glue("p2_eps_substitution", substitution)

# %% [markdown]
# Fifteen epochs at $\sigma = 1.1$ cost $\varepsilon \approx$ {glue:text}`p2_eps_full:.1f` with full
# batches and {glue:text}`p2_eps_sampled:.2f` when each step samples 1% of the data: the noise per
# step is the same, but each example is exposed in only a fraction of the steps. Under
# substitution the full-batch figure becomes {glue:text}`p2_eps_substitution:.1f`.

# %% [markdown]
# ## PATE: privacy from the teachers' agreement
#
# PATE {cite:p}`papernot2018scalable` never trains on the private data with noise. It splits the
# data into $k$ disjoint parts, trains one *teacher* on each, and labels public inputs with the
# teachers' noisy plurality, the GNMax aggregator: for the vote histogram $n \in \mathbb N^{C}$ of
# one query ($n_j$ teachers say class $j$),
#
# $$
# \text{GNMax}(n) = \arg\max_j \big(n_j + \mathcal N(0, \sigma^2)\big).
# $$ (eq-p2-gnmax)
#
# A student trained on these labels is all that leaves. **The unit of privacy.** A record sits in
# one teacher's part (assigned by a hash of its id,
# {func}`~trustml_ref.visual_prompting.hash_partition`, so adding or removing it changes only that
# teacher), and changing one teacher moves one vote: one count falls by one, another rises by
# one. The histogram moves by at most $\sqrt 2$ in $\ell_2$, and {eq}`eq-p2-rdp-gauss` with
# $\Delta^2 = 2$ gives $\alpha/\sigma^2$ per answered query, whatever the votes: the
# *data-independent* cost. It composes over $T$ queries to $T\alpha/\sigma^2$, so the noise that buys a fixed $\varepsilon$
# grows like $\sqrt T$, while the margin it must not drown (the plurality's lead over the
# runner-up) is at most $k$. The prediction, before any run: PATE's labels are useful only when
# $k$ is large against $\sigma$; if 100 teachers answered 1,000 queries at $\varepsilon = 1$ as
# accurately as 1,000 teachers, this account would be wrong.


# %%
def gnmax_scratch(votes, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Equation (eq-p2-gnmax) for a batch of histograms (queries, classes)."""
    votes = np.asarray(votes, dtype=float)
    return np.argmax(votes + rng.normal(0.0, sigma, votes.shape), axis=1)


def teacher_votes(k: int, agree: float, queries: int, rng, classes: int = 10):
    """Histograms of ``k`` teachers of which each says class 0 with probability
    ``agree`` and a uniform other class otherwise."""
    labels = np.where(
        rng.random((queries, k)) < agree, 0, rng.integers(1, classes, (queries, k))
    )
    offset = classes * np.arange(queries)[:, None]
    flat = np.bincount((labels + offset).ravel(), minlength=classes * queries)
    return flat.reshape(queries, classes)


# %% [markdown]
# Three checks: one teacher moves a histogram by exactly $\sqrt 2$ in the worst case; the
# package's GNMax draws the same labels from the same generator, and its data-independent RDP
# is {eq}`eq-p2-rdp-gauss` at $\Delta = \sqrt 2$; and the union bound $q$ on the probability of
# an answer other than the plurality (the quantity PATE's data-dependent analysis in
# {ref}`chapter-visual-prompting-dp` is built on) is never below the rate a simulation measures.

# %%
rng_pate = np.random.default_rng(SEED)
hist = teacher_votes(100, 0.6, 1, rng_pate)
_, neighbours = one_teacher_neighbours(hist)
shift = np.linalg.norm(neighbours - hist[0], axis=1)
assert math.isclose(shift.max(), math.sqrt(2)), shift.max()
assert np.array_equal(
    gnmax_scratch(hist, 40.0, np.random.default_rng(1)),
    gnmax(hist, 40.0, np.random.default_rng(1)),
)
trustml_ref.assert_close(
    torch.as_tensor(rdp_gnmax_data_independent(40.0, ORDERS)),
    torch.as_tensor(rdp_gaussian_scratch(ORDERS, 40.0, sensitivity=math.sqrt(2))),
    rtol=1e-12,
    name="GNMax data-independent RDP",
)
margins = teacher_votes(100, 0.45, 200, rng_pate)
draws = np.stack([gnmax(margins, 20.0, rng_pate) for _ in range(400)])
flip_rate = (draws != margins.argmax(1)).mean(0)
bound = np.exp(log_q_gnmax(margins, 20.0))
flip_excess = float((flip_rate - bound).max())
print(
    f"one teacher moves the histogram by at most {shift.max():.4f} = sqrt(2); "
    "GNMax graduated; the simulated rate of non-plurality answers exceeds the bound "
    f"q by at most {flip_excess:+.3f} over 200 histograms (400 draws each)"
)

# %% [markdown]
# The noise a budget buys, against the votes it must not drown: $\sigma$ calibrated
# data-independently for $T$ answered queries at $\varepsilon$ ($\delta = 10^{-5}$), and the share
# of answers that are the plurality's label when 60% of the teachers agree (10 classes, 2,000
# simulated queries).

# %%
pate_rows = []
for queries in (100, 1000):
    for eps_pate in (1.0, 4.0):
        sigma_pate = calibrate_gnmax_sigma(queries, eps_pate, 1e-5, ORDERS)
        row = {"queries T": queries, "epsilon": eps_pate, "sigma": sigma_pate}
        for k in (100, 250, 1000):
            votes_k = teacher_votes(k, 0.6, 2000, rng_pate)
            row[f"plurality answers, k={k}"] = float(
                (gnmax(votes_k, sigma_pate, rng_pate) == votes_k.argmax(1)).mean()
            )
        pate_rows.append(row)
results_table(
    pate_rows,
    digits=2,
    caption="GNMax with data-independent noise: share of answers that are the "
    "teachers' plurality (chance: 0.10)",
)

# %%
hardest = next(r for r in pate_rows if r["queries T"] == 1000 and r["epsilon"] == 1.0)
claim(
    "the union bound q is never below the simulated rate of non-plurality answers "
    "(up to 3 binomial standard errors of 400 draws)",
    flip_excess <= 3 * math.sqrt(0.25 / 400),
    largest_excess=flip_excess,
)
claim(
    "at epsilon = 1 for 1,000 queries, 100 teachers' answers are mostly noise (under a "
    "third are the plurality) while 1,000 teachers' are mostly the plurality",
    hardest["plurality answers, k=100"] < 1 / 3
    and hardest["plurality answers, k=1000"] > 0.8,
    **{k: v for k, v in hardest.items() if k.startswith("plurality")},
)
glue("p2_pate_sigma", hardest["sigma"])
glue("p2_pate_k100", hardest["plurality answers, k=100"])
glue("p2_pate_k1000", hardest["plurality answers, k=1000"])

# %% [markdown]
# At $\varepsilon = 1$ for 1,000 queries the calibrated noise is $\sigma \approx$
# {glue:text}`p2_pate_sigma:.0f` votes: with 100 teachers only {glue:text}`p2_pate_k100:.2f` of the
# answers are the plurality's label, barely above chance, while 1,000 teachers give
# {glue:text}`p2_pate_k1000:.2f`. PATE needs many teachers, and each teacher sees only $1/k$ of the
# data, so it needs much data. What rescues it in practice is twofold: answer fewer queries (a
# semi-supervised student labels the rest itself) and pay by agreement, not by the worst case.
# Where the teachers agree by a wide margin, an answer other than the plurality is very unlikely
# (the bound $q$ above is tiny), and the *data-dependent* analysis charges such a query much less
# than $\alpha/\sigma^2$; that cost depends on the private votes, so it must itself be released
# privately (smooth sensitivity). {ref}`chapter-visual-prompting-dp` derives both steps.

# %% [markdown]
# ## Experiment: what privacy costs a classifier
#
# Logistic regression on the digits, trained without privacy and with DP-SGD through Opacus at a
# grid of $\varepsilon$ (noise calibrated by its accountant, $\delta = 10^{-5}$, per-example clipping at 1).

# %%
data = digits(seed=SEED)


def logistic():
    return torch.nn.Linear(64, 10)


torch.manual_seed(SEED)
clear = accuracy(
    fit(logistic(), data.x_train, data.y_train, epochs=EPOCHS, lr=0.05, progress=False),
    data.x_test,
    data.y_test,
)
private = {}
for eps in tqdm(EPS_GRID, desc="DP-SGD"):
    result = train_dpsgd(
        logistic(),
        data.x_train,
        data.y_train,
        epsilon=eps,
        delta=1e-5,
        epochs=EPOCHS,
        lr=0.05,
        seed=SEED,
        progress=False,
    )
    private[eps] = (
        accuracy(result.model, data.x_test, data.y_test),
        result.noise_multiplier,
        result.epsilon,
    )

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(EPS_GRID, [private[e][0] for e in EPS_GRID], "o-", label="DP-SGD")
ax.axhline(clear, ls=":", color="gray", label="non-private")
ax.set(
    xscale="log",
    xlabel=r"$\varepsilon$",
    ylabel="test accuracy",
    title="logistic regression on digits",
)
ax.legend()
plt.show()

# %%
print(f"non-private: accuracy {clear:.3f}")
for eps, (acc, noise, spent) in private.items():
    print(
        f"eps={eps:g}: accuracy {acc:.3f}, noise multiplier {noise:.2f}, spent "
        f"{spent:.3f}"
    )


# %% [markdown]
# Privacy costs this classifier accuracy, and the cost shrinks as the budget grows. Each
# $\varepsilon$ is one training run (one seed), so the claims compare rates on the
# {glue:text}`p2_n_test` test points with binomial errors, and the trend is stated only
# between the ends of the grid.

# %%
n_test = len(data.y_test)
acc_at = {eps: private[eps][0] for eps in EPS_GRID}
cost = proportion_difference(clear, acc_at[EPS_GRID[0]], n_test)
claim(
    f"at eps = {EPS_GRID[0]:g} DP-SGD is less accurate than the non-private model",
    cost.lower > 0,
    test=cost.test,
    **cost.evidence,
)
trend = proportion_difference(acc_at[EPS_GRID[-1]], acc_at[EPS_GRID[0]], n_test)
claim(
    f"accuracy at eps = {EPS_GRID[-1]:g} is higher than at eps = {EPS_GRID[0]:g}",
    trend.lower > 0,
    test=trend.test,
    **trend.evidence,
)
claim(
    "every private model stays below the non-private one",
    max(acc_at.values()) < clear,
    accuracies=list(acc_at.values()),
    non_private=clear,
)
glue("p2_n_test", n_test)
glue("p2_clear", clear)
glue("p2_eps_lo", EPS_GRID[0])
glue("p2_acc_lo", acc_at[EPS_GRID[0]])
glue("p2_eps_hi", EPS_GRID[-1])
glue("p2_acc_hi", acc_at[EPS_GRID[-1]])

# %% [markdown]
# Non-private logistic regression reaches {glue:text}`p2_clear:.3f`; DP-SGD at
# $\varepsilon$ = {glue:text}`p2_eps_lo` reaches {glue:text}`p2_acc_lo:.3f`, and at
# $\varepsilon$ = {glue:text}`p2_eps_hi` {glue:text}`p2_acc_hi:.3f`.

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    recovered=recovered,
    curves=curves,
    steps=[int(k) for k in steps],
    clear=clear,
    private={str(e): v[0] for e, v in private.items()},
    spent_over_target=max(v[2] / e for e, v in private.items()),
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-p2-rdp
#
# Derive {eq}`eq-p2-rdp-gauss`: compute the Rényi divergence of order $\alpha$ between $\mathcal N(0,\sigma^2)$
# and $\mathcal N(\Delta,\sigma^2)$.
# ```
#
# ```{solution} ex-p2-rdp
# :class: dropdown
#
# $D_\alpha(P\|Q) = \frac{1}{\alpha-1}\ln\int p^\alpha q^{1-\alpha}$. The exponent of $p^\alpha q^{1-\alpha}$ is
# $-\frac{1}{2\sigma^2}(\alpha x^2 + (1-\alpha)(x-\Delta)^2)$; completing the square leaves a Gaussian integral
# equal to 1 times $\exp(\frac{\alpha(\alpha-1)\Delta^2}{2\sigma^2})$. Hence $D_\alpha = \alpha\Delta^2/(2\sigma^2)$.
# ```
#
# ```{exercise}
# :label: ex-p2-budget
#
# With $\sigma = 20$ and sensitivity 1, how many Gaussian queries can you answer before $\varepsilon$ at
# $\delta = 10^{-5}$ exceeds 1, by basic composition and by RDP? Check with the curves above.
# ```
#
# ```{solution} ex-p2-budget
# :class: dropdown
#
# One query costs $\varepsilon_1 \approx 0.16$ (exact), so basic composition allows 6 queries. With RDP,
# $k\alpha/800 + 11.51/(\alpha-1)$ has minimum $\approx k/800 + 2\sqrt{11.51\,k/800}$; setting it to 1 gives $k \approx 16$
# (16 on this notebook's grid of orders), and the exact profile allows 28. The gap between basic
# composition and RDP grows with $k$: at {glue:text}`p2_k_last` steps RDP is
# {glue:text}`p2_rdp_excess:.0f`% above the exact value while basic composition is off by a
# factor of {glue:text}`p2_basic_factor:.0f`.
# ```
#
# ```{exercise}
# :label: ex-p2-clip
#
# Why does DP-SGD clip per-example gradients rather than the averaged batch gradient? What goes wrong
# if the clipping norm $C$ is much larger than typical gradient norms, and if it is much smaller?
# ```
#
# ```{solution} ex-p2-clip
# :class: dropdown
#
# The sensitivity is about one example: clipping each example's gradient bounds how far any single
# example can move the sum, whatever the others are; clipping the average bounds nothing per example.
# A large $C$ needs noise $\sigma C$ far above the signal; a small $C$ shrinks every gradient and biases
# the direction toward examples with small gradients. Practitioners tune $C$ near the median norm.
# ```
#
# ```{exercise}
# :label: ex-p2-sampled
#
# Evaluate {eq}`eq-p2-sampled` at $\alpha = 2$ in closed form. How does $\rho_q(2)$ scale with $q$
# for small $q$, and what does that say about $T = E/q$ steps at a fixed number of epochs $E$?
# Check your formula against `rdp_sampled_scratch(2, q, sigma)`.
# ```
#
# ```{solution} ex-p2-sampled
# :class: dropdown
#
# The three terms are $(1-q)^2$, $2q(1-q)$ and $q^2e^{1/\sigma^2}$; they sum to $1 + q^2(e^{1/\sigma^2} - 1)$, so
# $\rho_q(2) = \ln\big(1 + q^2(e^{1/\sigma^2}-1)\big) \approx q^2(e^{1/\sigma^2}-1)$ for small $q$. Over $T = E/q$
# steps the total is about $E\,q\,(e^{1/\sigma^2}-1)$: it falls linearly in $q$ at a fixed number of
# epochs, which is the amplification the table above shows. At $q = 1$ it is $\ln e^{1/\sigma^2} = 1/\sigma^2$,
# equation {eq}`eq-p2-rdp-gauss` at $\alpha = 2$.
# ```
#
# ```{exercise}
# :label: ex-p2-pate
#
# With the conversion {eq}`eq-p2-conversion`, minimise $T\alpha/\sigma^2 + \ln(1/\delta)/(\alpha-1)$
# over $\alpha$ and solve for the $\sigma$ that buys $\varepsilon$ for $T$ data-independent GNMax
# answers. Then estimate how many teachers, 60% of whom agree (10 classes), keep GNMax's answer
# the plurality's at least 90% of the time for $T = 1000$, $\varepsilon = 1$, $\delta = 10^{-5}$.
# Compare with the table above.
# ```
#
# ```{solution} ex-p2-pate
# :class: dropdown
#
# Writing $L = \ln(1/\delta)$, the minimum is at $\alpha - 1 = \sigma\sqrt{L/T}$ and equals
# $T/\sigma^2 + 2\sqrt{TL}/\sigma$. Setting it to $\varepsilon$ and solving the quadratic in $1/\sigma$
# gives $\sigma = T\big/\big(\sqrt{TL + \varepsilon T} - \sqrt{TL}\big)$, about $2\sqrt{TL}/\varepsilon$ when
# $\varepsilon \ll L$: $\sigma$ grows like $\sqrt T/\varepsilon$. For $T = 1000$, $\varepsilon = 1$:
# $L = 11.5$ and $\sigma \approx 219$ (the table's 181 uses the tighter conversion of Balle et al.).
# With $k$ teachers the plurality has about $0.6k$ votes and each other class about $0.044k$, a
# margin of $m \approx 0.56k$. The answer goes to a given other class with probability about
# $\Phi(-m/(\sqrt2\sigma))$ (the difference of two noises has variance $2\sigma^2$); for nine of them
# to total under 10%, $m/(\sqrt2\sigma) \gtrsim 2.3$, so $m \gtrsim 3.3\sigma \approx 600$ votes at
# $\sigma = 181$, about $k \approx 1{,}100$ teachers. The table's 1,000 teachers come near
# 0.9, as predicted; 100 or 250 teachers cannot.
# ```
#
# ## Summary
#
# - A mechanism is $(\varepsilon,\delta)$-DP when no single record changes its output distribution much; the
#   Gaussian mechanism achieves it with noise scaled to the $\ell_2$ sensitivity.
# - Rényi DP composes by addition {eq}`eq-p2-rdp-gauss` and converts to $(\varepsilon,\delta)$ by
#   {eq}`eq-p2-conversion`; measured here, it stays within {glue:text}`p2_rdp_excess:.0f`% of the
#   exact cost of {glue:text}`p2_k_last` Gaussian steps, where adding up $\varepsilon$'s is off by a
#   factor of {glue:text}`p2_basic_factor:.0f`.
# - Measured here: DP-SGD costs logistic regression on the digits accuracy, less as
#   $\varepsilon$ grows.
# - DP-SGD clips per-example gradients and adds Gaussian noise; an accountant composes the steps.
# - Sampling each example with probability $q$ amplifies privacy {eq}`eq-p2-sampled`: at equal noise
#   and epochs, $\varepsilon$ falls from {glue:text}`p2_eps_full:.1f` (full batches) to
#   {glue:text}`p2_eps_sampled:.2f` ($q = 0.01$) here. A guarantee names its neighbour relation:
#   substitution doubles a clipped sum's sensitivity.
# - PATE's GNMax costs $\alpha/\sigma^2$ per answered query whatever the votes; the noise a budget
#   buys grows like $\sqrt T$, so 100 teachers' labels at $\varepsilon = 1$ over 1,000 queries are
#   mostly noise (measured: {glue:text}`p2_pate_k100:.2f` plurality answers) and 1,000 teachers'
#   are not ({glue:text}`p2_pate_k1000:.2f`).
#
# ## References
#
# - {cite:t}`dwork2014algorithmic`: the definition and the Gaussian mechanism.
# - {cite:t}`mironov2017renyi`: Rényi differential privacy; {cite:t}`balle2020hypothesis`: a tighter conversion.
# - {cite:t}`abadi2016deep`: DP-SGD; {cite:t}`balle2018improving`: the analytic Gaussian mechanism.
# - {cite:t}`mironov2019sampled`: the Rényi DP of the sampled Gaussian mechanism.
# - {cite:t}`papernot2018scalable`: PATE with GNMax and its data-dependent analysis.
