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
# (chapter-conventions)=
# # How to read and run this book
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/00_conventions.ipynb)

# %% [markdown]
# **Summary.** Every chapter of this book follows one pattern: state the method's mathematics,
# implement it from scratch in a few lines, check the implementation numerically against
# something independent, show that it equals the tested function in the `trustml_ref`
# package ("graduation"), and from then on use the package for an honest experiment whose
# every number is computed as the page is built. This chapter runs that pattern once, on the
# smallest method in the book: the Gaussian mechanism of differential privacy.
#
# **Learning goals.** After this chapter you can
# - run any chapter in one of three profiles (`smoke`, `book`, `colab`) and know what each costs;
# - read a derivation, its from-scratch code and its numerical check side by side;
# - recognise a graduation cell and know what it guarantees;
# - compute the noise the Gaussian mechanism needs for a given $(\varepsilon, \delta)$, two ways.
#
# **Runtime.** `smoke`: a few seconds; `book`: under a minute on a 2-core CPU; `colab`: the same
# with more Monte-Carlo samples. No GPU and no downloads are needed.

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
import math

import matplotlib.pyplot as plt
import torch
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue
from trustml_ref.io import record_results
from trustml_ref.privacy import (
    analytic_gaussian_sigma,
    classical_gaussian_sigma,
    gaussian_delta,
)

run = trustml_ref.setup(PROFILE, SEED, DEVICE)
# Monte-Carlo samples per check
N_MC = run.pick(smoke=20_000, book=2_000_000, colab=20_000_000)

# %% [markdown]
# ## Motivation: releasing a statistic without exposing a person
#
# A hospital publishes the average of a bounded measurement over its patients. If one
# patient's record changes, the exact average moves by a known amount, and anyone who
# knows all the other records can read that patient's value back out of it. Differential
# privacy {cite:p}`dwork2014algorithmic` asks for a release whose *distribution* barely
# changes when one record changes. The Gaussian mechanism gets there by adding noise; the
# question this chapter answers is *how much*.
#
# ## Derivation
#
# A query $q$ maps a data set to $\mathbb{R}^d$. Its $\ell_2$-sensitivity is the most one
# record can move it, $\Delta = \max_{x \simeq x'} \lVert q(x) - q(x') \rVert_2$, over
# neighbouring data sets $x \simeq x'$. The Gaussian mechanism releases
#
# $$
# M(x) = q(x) + Z, \qquad Z \sim \mathcal{N}(0, \sigma^2 I_d).
# $$ (eq-gaussian-mechanism)
#
# $M$ is $(\varepsilon, \delta)$-differentially private if
# $\Pr[M(x) \in S] \le e^{\varepsilon} \Pr[M(x') \in S] + \delta$ for all neighbours and all
# sets $S$. The smallest such $\delta$ is the *hockey-stick divergence*
# $\delta(\varepsilon) = \mathbb{E}_{y \sim M(x)}\big[(1 - e^{\varepsilon - L(y)})_+\big]$ of the
# *privacy loss* $L(y) = \ln \frac{p_{M(x)}(y)}{p_{M(x')}(y)}$, maximised over neighbours.
#
# For Gaussians only the direction $q(x) - q(x')$ matters, so the worst case is one
# dimension with a shift of $\Delta$. Expanding the two log-densities gives
# $L(y) = \frac{\Delta}{\sigma^2}\,(y - q(x)) + \frac{\Delta^2}{2\sigma^2}$ along that direction,
# hence $L \sim \mathcal N(\mu, 2\mu)$ with $\mu = \Delta^2 / (2\sigma^2)$. Integrating the
# hockey stick against this Gaussian gives a closed form
# {cite:p}`balle2018improving`:
#
# $$
# \delta(\varepsilon) = \Phi\!\left(\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\right)
#   - e^{\varepsilon}\, \Phi\!\left(-\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\right).
# $$ (eq-gaussian-delta)
#
# Textbooks usually quote a simpler sufficient condition instead.
#
# ```{prf:theorem} Classical Gaussian mechanism
# :label: thm-classical-gaussian
#
# For $\varepsilon \in (0, 1)$ and $\delta \in (0, 1)$, the mechanism
# {eq}`eq-gaussian-mechanism` with $\sigma = \Delta \sqrt{2 \ln(1.25/\delta)} / \varepsilon$
# is $(\varepsilon, \delta)$-differentially private {cite:p}`dwork2014algorithmic`.
# ```
#
# Because {eq}`eq-gaussian-delta` is exact and decreasing in $\sigma$, bisection on it finds
# the *smallest* admissible $\sigma$ for any $\varepsilon > 0$: the analytic Gaussian
# mechanism. Both fit in a few lines.

# %%
def delta_scratch(eps: float, sigma: float, sens: float = 1.0) -> float:
    """Equation (eq-gaussian-delta), written directly with the normal CDF."""
    ### BEGIN SOLUTION ex-conventions-delta
    a, b = sens / (2 * sigma), eps * sigma / sens
    cdf = torch.special.ndtr(torch.tensor([a - b, -a - b], dtype=torch.float64))
    return float(cdf[0] - math.exp(eps) * cdf[1])
    ### END SOLUTION


def sigma_classical_scratch(eps: float, delta: float, sens: float = 1.0) -> float:
    """The theorem's noise scale."""
    ### BEGIN SOLUTION ex-conventions-sigma
    return sens * math.sqrt(2 * math.log(1.25 / delta)) / eps
    ### END SOLUTION


# %% [markdown]
# ## Numerical check
#
# The closed form rests on the derivation above. We check it against the *definition*
# instead: draw $y \sim M(x)$, evaluate the privacy loss from the two densities directly, and
# average $(1 - e^{\varepsilon - L})_+$. The Monte-Carlo mean must agree with
# {eq}`eq-gaussian-delta` within a few standard errors at every $\varepsilon$.

# %%
def delta_monte_carlo(
    eps: float, sigma: float, n: int, generator: torch.Generator
) -> tuple[float, float]:
    """Mean and standard error of (1 - exp(eps - L))_+ for y ~ N(1, sigma^2) against
    N(0, sigma^2)."""
    y = 1.0 + sigma * torch.randn(n, generator=generator, dtype=torch.float64)
    log_p = -((y - 1.0) ** 2) / (2 * sigma**2)  # shared normalising constants cancel
    log_q = -(y**2) / (2 * sigma**2)
    h = (1 - torch.exp(eps - (log_p - log_q))).clamp_min(0)
    return float(h.mean()), float(h.std() / math.sqrt(n))


sigma_check = 1.0
checks = []
for eps in tqdm([0.1, 0.5, 1.0, 2.0], desc="Monte-Carlo check"):
    mc, se = delta_monte_carlo(eps, sigma_check, N_MC, run.generator)
    exact = delta_scratch(eps, sigma_check)
    z = (mc - exact) / se
    checks.append(z)
    print(
        f"eps={eps:4.1f}  closed form {exact:.5f}  Monte Carlo {mc:.5f} +- {se:.5f}  "
        f"(z = {z:+.2f})"
    )
assert max(abs(z) for z in checks) < 5, "closed form disagrees with the definition"

# %% [markdown]
# ## Graduation
#
# The package's functions are written once, documented, and unit-tested (see
# {ref}`the API reference <api-privacy>`). A graduation cell asserts that they agree with
# the from-scratch code on the same inputs; from here on the chapter uses the package.

# %%
grid = [(eps, delta) for eps in (0.05, 0.3, 0.9) for delta in (1e-9, 1e-5, 0.1)]
for eps, delta in grid:
    sigma = sigma_classical_scratch(eps, delta)
    trustml_ref.assert_close(
        classical_gaussian_sigma(eps, delta), sigma, rtol=1e-12, name="classical sigma"
    )
    trustml_ref.assert_close(
        gaussian_delta(eps, sigma),
        delta_scratch(eps, sigma),
        rtol=1e-9,
        atol=1e-15,
        name="delta(eps)",
    )
print(f"graduated: package equals scratch code on {len(grid)} (eps, delta) pairs")

# %% [markdown]
# ## Experiment: how much noise does privacy cost?
#
# For a fixed $\delta$ we compare, over a range of $\varepsilon$, the classical noise scale, the
# analytic one, and the *true* $\delta$ that the classical scale achieves. The theorem
# promises nothing for $\varepsilon \ge 1$; we measure what actually happens there.

# %%
delta_target = 1e-5
eps_grid = torch.logspace(
    -1.5, 1.3, run.pick(smoke=12, book=60, colab=200), dtype=torch.float64
)
# The package's classical_gaussian_sigma refuses eps >= 1, where the theorem says
# nothing;
# to look past that range on purpose we evaluate the formula with the scratch function.
sigma_classical = torch.tensor(
    [sigma_classical_scratch(e, delta_target) for e in eps_grid.tolist()],
    dtype=torch.float64,
)
sigma_analytic = torch.tensor(
    [
        analytic_gaussian_sigma(e, delta_target)
        for e in tqdm(eps_grid.tolist(), desc="bisection")
    ],
    dtype=torch.float64,
)
true_delta = gaussian_delta(eps_grid, sigma_classical)
violates = true_delta > delta_target
first_violation = float(eps_grid[violates][0]) if violates.any() else None
saving_at_half = float(
    sigma_classical[eps_grid.sub(0.5).abs().argmin()]
    / sigma_analytic[eps_grid.sub(0.5).abs().argmin()]
)

# %% tags=["hide-input"]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.4))
ax0.loglog(eps_grid, sigma_classical, label="classical (theorem)")
ax0.loglog(eps_grid, sigma_analytic, label="analytic (exact $\\delta$)")
ax0.axvline(1.0, color="grey", lw=0.8, ls=":")
ax0.set(
    xlabel="$\\varepsilon$",
    ylabel="$\\sigma / \\Delta$",
    title=f"noise for $\\delta$ = {delta_target:g}",
)
ax0.legend()
ax1.loglog(eps_grid, true_delta, label="true $\\delta$ of the classical $\\sigma$")
ax1.axhline(delta_target, color="black", lw=0.8, ls="--", label="target $\\delta$")
ax1.axvline(1.0, color="grey", lw=0.8, ls=":")
ax1.set(
    xlabel="$\\varepsilon$",
    ylabel="$\\delta(\\varepsilon)$",
    title="what the classical scale achieves",
)
ax1.legend()
plt.show()

# %%
print(f"at eps = 0.5 the classical sigma is {saving_at_half:.2f}x the analytic one")
if first_violation is None:
    print("the classical sigma met the target delta at every eps on the grid")
else:
    print(
        "the classical sigma first misses the target delta at eps = "
        f"{first_violation:.2f}"
    )


# %% [markdown]
# What the two panels show is stated as *claims*: each conclusion of the text is a condition
# the run computes, checked where it is drawn (`trustml_ref.claim`). In the `book` and `colab`
# profiles a false claim stops the run, and with it the book build; in `smoke` it is only
# recorded. Numbers the text quotes are handed to it with `trustml_ref.glue`, so the sentence
# and the run cannot drift apart.

# %%
in_range = eps_grid < 1
claim(
    "for every eps < 1 on the grid the analytic sigma is below the classical one",
    bool((sigma_analytic[in_range] < sigma_classical[in_range]).all()),
    ratio_at_half=saving_at_half,
)
claim(
    "past some eps the classical sigma no longer delivers the target delta",
    first_violation is not None,
    first_violation_eps=first_violation,
)
glue("ratio_at_half", saving_at_half)
glue("first_violation", first_violation)

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    max_abs_z=max(abs(z) for z in checks),
    classical_over_analytic_at_half=saving_at_half,
    first_violation_eps=first_violation,
)

# %% [markdown]
# The left panel shows the analytic scale below the classical one wherever the theorem
# applies: it pays for its simple form with extra noise, a factor of
# {glue:text}`ratio_at_half:.2f` at $\varepsilon = 0.5$. The right panel shows that the
# theorem's restriction to $\varepsilon < 1$ is not a formality of the proof alone: from
# $\varepsilon \approx$ {glue:text}`first_violation:.2f` on, the classical scale no longer
# delivers the promised $\delta$ at all.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-conventions-privacy-loss
#
# Show that for $y \sim \mathcal N(\Delta, \sigma^2)$ the privacy loss against
# $\mathcal N(0, \sigma^2)$ is distributed as $\mathcal N(\mu, 2\mu)$ with $\mu = \Delta^2/(2\sigma^2)$.
# ```
#
# ```{solution} ex-conventions-privacy-loss
# :class: dropdown
#
# $L(y) = \frac{y^2 - (y-\Delta)^2}{2\sigma^2} = \frac{2\Delta y - \Delta^2}{2\sigma^2}$ is affine in
# $y$, so it is Gaussian with mean $\frac{2\Delta^2 - \Delta^2}{2\sigma^2} = \mu$ and variance
# $\frac{\Delta^2}{\sigma^4}\sigma^2 = \frac{\Delta^2}{\sigma^2} = 2\mu$.
# ```
#
# ```{exercise}
# :label: ex-conventions-sensitivity
#
# The hospital releases the mean of $n$ values clipped to $[0, B]$. What is $\Delta$ when a
# neighbouring data set replaces one record? Using the analytic scale, how does the standard
# deviation of the released mean scale with $n$? Check your answer with
# `trustml_ref.privacy.analytic_gaussian_sigma`.
# ```
#
# ```{solution} ex-conventions-sensitivity
# :class: dropdown
#
# Replacing one value moves the sum by at most $B$ and the mean by at most $\Delta = B/n$.
# The noise scale is proportional to $\Delta$ (the mechanism is invariant under rescaling
# the query and $\sigma$ together), so the released mean's standard deviation is
# $\sigma(\varepsilon,\delta)\,B/n$, falling as $1/n$:
# `analytic_gaussian_sigma(eps, delta, B / n) == analytic_gaussian_sigma(eps, delta, 1.0) * B / n`
# up to the bisection tolerance.
# ```
#
# ```{exercise}
# :label: ex-conventions-profiles
#
# Run this chapter in the `smoke` profile with papermill
# (`papermill notebooks/00_conventions.ipynb out.ipynb -p PROFILE smoke -p RESULTS_PATH r.json`).
# Which recorded results change and why? Which must not?
# ```
#
# ```{solution} ex-conventions-profiles
# :class: dropdown
#
# The Monte-Carlo $z$-scores change (fewer samples, a different random stream) but must stay
# small; the coarser $\varepsilon$ grid moves `first_violation_eps` to the nearest grid point at or
# above the true crossing; the ratio at $\varepsilon = 0.5$ moves with the grid point nearest 0.5.
# Nothing that comes from a closed form may change beyond float rounding.
# ```
#
# ## Summary
#
# - Each chapter: derivation, from-scratch code, an independent numerical check, graduation
#   to `trustml_ref`, then an experiment whose numbers the page computes as it is built.
# - The Gaussian mechanism adds $\mathcal N(0,\sigma^2)$ noise scaled to the query's
#   $\ell_2$-sensitivity; its exact privacy profile {eq}`eq-gaussian-delta` gives the
#   smallest noise for a target $(\varepsilon,\delta)$.
# - The classical scale of {prf:ref}`thm-classical-gaussian` is simpler, noisier, and only valid for
#   $\varepsilon < 1$; past a measured $\varepsilon$ it does not give the promised $\delta$.
#
# ## References
#
# - {cite:t}`dwork2014algorithmic`, Appendix A: the classical Gaussian mechanism.
# - {cite:t}`balle2018improving`: the exact privacy profile and the analytic Gaussian mechanism.
