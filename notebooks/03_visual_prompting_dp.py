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
# (chapter-visual-prompting-dp)=
# # Visual prompting under differential privacy: DP-SGD and PATE
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/03_visual_prompting_dp.ipynb)

# %% [markdown]
# **Summary.** Training on private data with differential privacy costs accuracy, and the cost is
# worst when the private data set is small. {cite:t}`li2023visualprompting` spend the privacy budget
# on very few parameters: a *visual prompt* around the input of a frozen model pre-trained on public
# data, and a label map from its classes to the private task's classes. They train it with DP-SGD,
# and with PATE, where many prompt "teachers" each see a disjoint slice of the private data and only
# noisy aggregates of their votes are released (Prom-PATE). We derive the prompt and its per-example
# gradient, the PATE aggregation and its data-dependent Rényi-DP analysis, including the smooth-sensitivity
# release of the data-dependent cost, check each against an independent computation, and run every
# method on one small cross-domain task, reporting what the toy shows and what it does not.
#
# **Learning goals.** After this chapter you can
# - write the visual prompt and label map, and derive the per-example gradient DP-SGD clips;
# - explain why a frozen batch-norm layer in training mode breaks DP without any error, and guard against it;
# - compute GNMax's data-independent and data-dependent privacy cost, and convert RDP to $(\varepsilon,\delta)$ in two ways;
# - say when PATE beats DP-SGD and when it cannot, in terms of teachers, data and queries;
# - say which domain gaps an input prompt can close, and test it against a label map, a linear
#   probe and fine-tuning on a target whose gap is known.
#
# **Runtime.** `smoke`: about a minute; `book`: about 8 minutes on a 2-core CPU; `colab`: the toy
# world at book size (`TOY_SIZES = "colab"`: more seeds and teachers, and private sets of
# 1,000 to 50,000 glyphs for PATE and DP-SGD; not timed), then CIFAR-10 through a
# frozen ImageNet ResNet-18 (downloads): an estimated 15 to 30 minutes on a Colab T4 (not timed
# on Colab). Data in `smoke` and `book`: scikit-learn's digits and glyphs drawn from the fonts
# matplotlib ships; every model is trained here.
#
# **Read first.** {doc}`p2_differential_privacy` (the Gaussian mechanism, Rényi DP, DP-SGD and PATE in brief).

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
# "smoke" (seconds, for tests), "book" (default, 2-core CPU), "colab" (larger, GPU)
PROFILE = "book"
SEED = 0
DEVICE = "auto"  # "auto" picks CUDA when available
RESULTS_PATH = None  # tests pass a path here; the key results are written to it as JSON
TOY_SIZES = "book"  # colab profile: the toy at book size (minutes); "colab": larger

# %%
import copy
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import (
    claim,
    glue,
    mean_difference,
    paired_difference,
    proportion_difference,
)
from trustml_ref.io import record_results
from trustml_ref.privacy import pate
from trustml_ref.privacy.smooth_sensitivity import (
    check_conditions_gnmax,
    local_sensitivity_gnmax,
    local_sensitivity_threshold,
    sanitized_epsilon,
)
from trustml_ref.tables import results_table
from trustml_ref.visual_prompting import (
    PromptedClassifier,
    VisualPrompt,
    accuracy,
    fit,
    glyphs,
    predict,
    train_dpsgd,
    train_teachers,
    vote_counts,
)
from trustml_ref.visual_prompting.toy import (
    LinearProbe,
    SourceCNN,
    digit_domains,
    scratch_mlp,
)

# Opacus warns about its secure RNG and hook details
warnings.filterwarnings("ignore", module="opacus")
warnings.filterwarnings("ignore", message="Full backward hook")
# tiny models: the CPU is faster than moving them to a GPU
run = trustml_ref.setup(PROFILE, SEED, DEVICE, toy_sizes=TOY_SIZES)
SOURCE_EPOCHS = run.pick(smoke=10, book=40, colab=40)
# full-data training, non-private and DP-SGD
EPOCHS = run.pick(smoke=8, book=30, colab=30)
# teachers see few examples: more passes
TEACHER_EPOCHS = run.pick(smoke=30, book=100, colab=100)
TEACHER_STEPS = run.pick(
    smoke=30, book=100, colab=100
)  # each on 32 of a teacher's slice
SEEDS = run.pick(smoke=1, book=3, colab=5)
SHOTS = run.pick(smoke=[8, 40], book=[8, 20, 40, 80, 160], colab=[8, 20, 40, 80, 160])
EPS_GRID = run.pick(
    smoke=[2.0, 8.0], book=[1.0, 2.0, 4.0, 8.0], colab=[0.5, 1.0, 2.0, 4.0, 8.0]
)
TEACHER_COUNTS = run.pick(
    smoke=[10, 25], book=[10, 25, 50, 100], colab=[10, 25, 50, 100, 200]
)
QUERIES = 40  # labels the PATE student asks for (fixed before looking at any vote)
DELTA = 1e-5
ORDERS = np.concatenate(
    [np.arange(1.5, 10, 0.5), np.arange(10, 100, 2.0), np.geomspace(100, 2000, 20)]
)
CANVAS, INNER, CLASSES = 16, 12, 5

# %% [markdown]
# ## Motivation: a small private data set, and DP-SGD from scratch
#
# Our world is built from scikit-learn's 8×8 digits ({mod}`trustml_ref.visual_prompting.toy`). Half of
# them are *public*: a small CNN, the source model, is trained on them at its own 16×16 input size.
# The other half is the *private* target task: the same kind of images but noisier and at 8×8, with
# five new classes, each the union of two digits under a random relabelling (so a label map has to be
# learned). About 400 labelled private images are for training; 200 unlabelled ones play the public
# pool PATE's student may query; 300 are the test set.

# %%
world = digit_domains(CANVAS, INNER, seed=SEED)
x_priv, y_priv, x_test, y_test = (
    world.x_private,
    world.y_private,
    world.x_test,
    world.y_test,
)
print(
    f"source (public, labelled): {len(world.y_source)}; private: {len(y_priv)}; public "
    "pool: "
    f"{len(world.y_public)}; test: {len(y_test)}"
)
print("target class of each digit 0..9:", (world.permutation % CLASSES).tolist())

torch.manual_seed(SEED)
source = fit(SourceCNN(), world.x_source, world.y_source, epochs=SOURCE_EPOCHS, lr=3e-3)
for p in source.parameters():
    p.requires_grad_(False)
print(
    "source model, accuracy on its own training data: "
    f"{accuracy(source, world.x_source, world.y_source):.3f}"
)

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for i in range(8):
    axes[0, i].imshow(world.x_source[i, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[0, i].set_title(f"digit {int(world.y_source[i])}", fontsize=8)
    axes[1, i].imshow(x_priv[i, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, i].set_title(f"class {int(y_priv[i])}", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("source", fontsize=8)
axes[1, 0].set_ylabel("private", fontsize=8)
fig.suptitle(
    "public source images (16×16 canvas) and private target images (8×8, noisy, "
    "relabelled)",
    fontsize=9,
)
plt.show()


# %% [markdown]
# A small network trained from scratch on the private images does well without privacy. With
# DP-SGD at a strict budget it loses much of that (below): every step clips each example's gradient and
# adds noise to their sum, and 400 examples give little signal to average the noise against.

# %%
def scratch_model():
    return scratch_mlp(64, CLASSES)


torch.manual_seed(SEED)
motivation_clear = accuracy(
    fit(scratch_model(), x_priv, y_priv, epochs=EPOCHS, lr=1e-2), x_test, y_test
)
strict = train_dpsgd(
    scratch_model(),
    x_priv,
    y_priv,
    epsilon=EPS_GRID[0],
    delta=DELTA,
    epochs=EPOCHS,
    lr=1e-2,
    seed=SEED,
)
motivation_dp = accuracy(strict.model, x_test, y_test)
print(
    f"from scratch, non-private: {motivation_clear:.3f}; DP-SGD at eps = "
    f"{EPS_GRID[0]:g}: {motivation_dp:.3f} "
    f"(noise multiplier {strict.noise_multiplier:.2f})"
)
private_cost = proportion_difference(motivation_clear, motivation_dp, len(y_test))
claim(
    f"DP-SGD at eps = {EPS_GRID[0]:g} costs the scratch network accuracy",
    private_cost.lower > 0,
    test=private_cost.test + " (one seed)",
    **private_cost.evidence,
)
glue("vp_eps_strict", EPS_GRID[0])
glue("vp_scratch_clear", motivation_clear)
glue("vp_scratch_dp", motivation_dp)

# %% [markdown]
# ## Derivation
#
# ### The visual prompt and the label map
#
# Let $f:\mathbb R^{S\times S}\to\mathbb R^{K_s}$ be the frozen source model (logits over $K_s$ source
# classes). A target image $x$ is resized to $s\times s$ and zero-padded to the canvas, $P(x)$; the
# prompt is a trainable image $W$ squashed by $\tanh$ and restricted to the border by the mask $M$
# ($M_{ij} = 1$ outside the central $s\times s$ window):
#
# $$
# \tilde x = P(x) + \tanh(W)\odot M,\qquad \hat y(x) = A\,f(\tilde x) + c,
# $$ (eq-vp)
#
# with a label map $A\in\mathbb R^{K_t\times K_s}$, $c\in\mathbb R^{K_t}$. Only $\theta = (W, A, c)$ is trained
# ($16^2 + 5\cdot 10 + 5 = 311$ numbers here; the paper's border of 16 pixels around 192 on a
# 224-pixel ImageNet model has $3\cdot(224^2 - 192^2) = 39{,}936$ pixels). $\tanh$ keeps the prompt's pixels in
# $(-1, 1)$ whatever $W$ becomes.
#
# ### Per-example gradients, and why DP-SGD needs them
#
# DP-SGD {cite:p}`abadi2016deep` bounds each example's influence on a step: with per-example
# gradients $g_i = \nabla_\theta \ell_i$, clipping $\bar g_i = g_i \min(1, C/\|g_i\|_2)$, and a batch $B$,
#
# $$
# \theta \leftarrow \theta - \eta\,\frac{1}{|B|}\Big(\sum_{i\in B}\bar g_i + \mathcal N(0, \sigma^2C^2 I)\Big).
# $$ (eq-dpsgd)
#
# Adding or removing one example changes the sum by at most $C$, so each step is a Gaussian mechanism
# of sensitivity $C$; an accountant composes the steps under Poisson sampling. Everything rests on
# $g_i$ depending on example $i$ alone. For the prompt, $\tilde x_i$ depends on $W$ through the same
# elementwise map for every example, so with $\gamma_i = \partial\ell_i/\partial\tilde x_i$ (what backpropagation
# delivers at the prompt's output) the chain rule gives
#
# $$
# \frac{\partial \ell_i}{\partial W} = \gamma_i \odot M \odot \big(1 - \tanh^2 W\big).
# $$ (eq-vp-grad)
#
# Opacus {cite:p}`yousefpour2021opacus` computes per-example gradients layer by layer from such rules.
# For a module without one, Opacus 1.6 falls back to functorch (a vectorised per-example backward
# pass); registering the closed form {eq}`eq-vp-grad` instead is a choice, made here so that the rule
# is written down and checked ({func}`~trustml_ref.visual_prompting.prompt_grad_sample`). Two traps break the premise silently.
# A module that keeps *buffers* updated in `forward` leaks data into state that is not privatised
# (our prompt builds $M$ in `forward` instead). And a *batch-norm layer in training mode* normalises
# each example with the batch's mean and variance, so $\ell_i$ depends on every $x_j$ in the batch: one
# example moves all clipped gradients, and the sensitivity is no longer $C$. Opacus refuses trainable
# batch norm, but a *frozen* one left in training mode still computes batch statistics and passes its
# checks. {class}`~trustml_ref.visual_prompting.PromptedClassifier` keeps its frozen backbone in eval
# mode and raises if a batch-norm layer is switched back.
#
# ### PATE: teachers, noisy votes and their privacy cost
#
# PATE {cite:p}`papernot2017semi,papernot2018scalable` splits the private data into $k$ disjoint
# slices and trains one teacher on each. For a query $x$ from a public pool, $n_j(x)$ teachers vote
# for class $j$.
#
# **The unit of privacy** in this chapter is one private image, and two data sets are neighbours
# when one has one image more than the other (add/remove). DP-SGD's accountant analyses Poisson
# sampling under exactly this relation. PATE's analysis needs one image to change one teacher,
# and that depends on how slices are drawn: a random permutation of $0..n-1$ cut into $k$ pieces
# shifts every later image into another slice when one image is added. The package assigns image
# $i$ to teacher $h(\mathrm{id}_i) \bmod k$ for a hash $h$
# ({func}`~trustml_ref.visual_prompting.hash_partition`): adding or removing an image changes one
# slice, one teacher's vote moves to another class at most, and the histogram $n$ moves by one vote
# from one class to another. (Under substitution, replacing one image, two teachers can change.)
# GNMax answers
#
# $$
# \mathcal M_\sigma(n) = \arg\max_j\,\big(n_j + \mathcal N(0,\sigma^2)\big),
# $$ (eq-gnmax)
#
# which is $(\alpha, \alpha/\sigma^2)$-RDP {cite:p}`mironov2017renyi` for every order $\alpha$, whatever $n$ is
# (data-independent). When the teachers agree, the answer is almost certainly the plurality $j^*$ and
# the mechanism leaks much less. With $Z_j - Z_{j^*}\sim\mathcal N(0, 2\sigma^2)$, a union bound gives
#
# $$
# q(n) = \sum_{j\ne j^*}\Pr\big[\mathcal N(0, 2\sigma^2) \ge n_{j^*} - n_j\big]
# = \sum_{j\ne j^*}\tfrac12\operatorname{erfc}\Big(\frac{n_{j^*}-n_j}{2\sigma}\Big)
# \;\ge\; \Pr[\mathcal M_\sigma(n)\ne j^*],
# $$ (eq-pate-q)
#
# and Theorem 6 of {cite:t}`papernot2018scalable` turns $q$ into a bound on the RDP. It applies to a
# mechanism that is $(\mu_1, \varepsilon_1)$- and $(\mu_2, \varepsilon_2)$-RDP for two orders
# $\mu_1, \mu_2 > 1$ of our choice and whose output is $j^*$ with probability at least $1 - q$. GNMax is
# $(\mu, \mu/\sigma^2)$-RDP at every $\mu$; PATE's choice, which nearly minimises the bound, is
#
# $$
# \mu_2 = \sigma\sqrt{\ln(1/q)},\qquad \mu_1 = \mu_2 + 1,\qquad \varepsilon_i = \mu_i/\sigma^2 .
# $$
#
# If $\mu_2 > 1$, $q\,e^{\varepsilon_2} < 1$ and $q \le e^{(\mu_2-1)\varepsilon_2}\big/\big(\tfrac{\mu_1}{\mu_1-1}\cdot\tfrac{\mu_2}{\mu_2-1}\big)^{\mu_2}$,
# then for every order $\alpha < \mu_1$
#
# $$
# \mathrm{RDP}(\alpha) \le \frac{1}{\alpha-1}\ln\Big((1-q)\,A^{\alpha-1} + q\,B^{\alpha-1}\Big),\qquad
# A = \frac{1-q}{1 - (q e^{\varepsilon_2})^{(\mu_2-1)/\mu_2}},\quad B = \frac{e^{\varepsilon_1}}{q^{1/(\mu_1-1)}},
# $$ (eq-pate-thm6)
#
# which tends to 0 as $q \to 0$. The conditions are checked per query in
# {func}`~trustml_ref.privacy.pate.rdp_gnmax`, and the smaller of {eq}`eq-pate-thm6` and
# $\alpha/\sigma^2$ is used. Confident-GNMax first asks whether $\max_j n_j + \mathcal N(0,\sigma_1^2) \ge T$ and
# answers only then, so queries the teachers disagree on cost only the threshold test. Which
# queries were answered is published, so the cost of a run is the *realised* sum
# $\sum_i \mathrm{RDP}_{\text{thr}, i}(\alpha) + \sum_{i \text{ answered}} \mathrm{RDP}_{\text{GNMax}, i}(\alpha)$; weighting the second
# sum by $\Pr[\text{answered}]$ instead gives the *expected* cost, a forecast before the run. Both
# methods here convert RDP to $(\varepsilon, \delta)$ with the conversion of {cite:t}`balle2020hypothesis`,
# which Opacus uses for DP-SGD,
#
# $$
# \varepsilon(\delta) = \min_\alpha\ \mathrm{RDP}(\alpha) + \ln\frac{\alpha-1}{\alpha} - \frac{\ln\delta + \ln\alpha}{\alpha-1};
# $$ (eq-rdp-eps-balle)
#
# PATE's paper uses the simpler one of {cite:t}`mironov2017renyi`,
#
# $$
# \varepsilon(\delta) = \min_\alpha\ \mathrm{RDP}(\alpha) + \frac{\ln(1/\delta)}{\alpha-1},
# $$ (eq-rdp-eps)
#
# which gives a larger $\varepsilon$ for the same curve: calibrated with it, PATE would add more noise than
# DP-SGD at the same nominal budget ({func}`~trustml_ref.privacy.pate.eps_from_rdp` offers both;
# Experiment 3 prints the two noise scales).
# The package's PATE analysis is pinned in its tests to values computed with TF-Privacy's reference
# implementation ({ref}`API reference <api-privacy>`; the prompt and training code are under
# {ref}`api-visual-prompting`).
#
# ### Releasing a data-dependent cost
#
# ```{important}
# A data-dependent $\varepsilon$ is computed from the private votes. Publishing it, or choosing $T$ and
# $\sigma$ by it, leaks information about the data, so it is **not** a differential-privacy guarantee
# until it has been sanitised. In this chapter:
# - DP-SGD's $\varepsilon$ (Opacus's accountant, for the planned steps) and GNMax's data-independent
#   $\varepsilon$ calibrated before any vote is seen are guarantees;
# - Confident-GNMax's data-independent realised $\varepsilon$ depends on the run only through the public
#   set of answered queries (strictly, a cost known only after the run needs fully adaptive
#   composition, a privacy filter that stops at a budget fixed in advance; PATE reports it as is,
#   and so do we);
# - the expected cost is a forecast of a run, not a guarantee for the run that happened;
# - the data-dependent realised $\varepsilon$ is private; its smooth-sensitivity release (below) is the
#   publishable value, and it carries its own cost.
# ```
#
# Papernot et al. release the data-dependent cost with smooth sensitivity {cite:p}`nissim2007smooth`:
# the local sensitivity $LS(d)$ is the largest change of the cost that one more teacher change can
# cause at distance $d$ from the actual votes, $SS_b = \max_d e^{-bd}LS(d)$, and the released cost is
# the true one plus $SS_b\cdot\mathcal N(0,\sigma_{ss}^2)$, which itself costs the RDP of their
# Theorem 23 ({mod}`trustml_ref.privacy.smooth_sensitivity`). *Which* cost is released matters. For
# the realised cost one teacher moves query $i$'s term by at most $LS_{\text{thr},i} +
# [i\text{ answered}]\,LS_{\text{GNMax},i}$, and these add up over queries. For the expected cost the
# analogous sum $LS_{\text{thr},i} + \Pr[\text{answered}_i]\,LS_{\text{GNMax},i}$ is *not* a bound: one
# teacher also moves $\Pr[\text{answered}_i]$. The package releases the realised cost; Experiment 4
# checks both statements by brute force.
#
# ## From scratch
#
# The prompt {eq}`eq-vp` for images already of size $s$, its per-example gradient {eq}`eq-vp-grad`,
# and the bound {eq}`eq-pate-q`.

# %%
def prompt_scratch(x, w, canvas, inner):
    """Equation (eq-vp) for (B, C, inner, inner) images: zero-pad to the canvas, add
    tanh(w) on the border."""
    ### BEGIN SOLUTION ex-vp-prompt
    pad = (canvas - inner) // 2
    mask = torch.ones(canvas, canvas, dtype=w.dtype)
    mask[pad : pad + inner, pad : pad + inner] = 0
    return F.pad(x, (pad, pad, pad, pad)) + torch.tanh(w) * mask
    ### END SOLUTION


def prompt_grad_scratch(gamma, w, canvas, inner):
    """Equation (eq-vp-grad): per-example gradients (B, C, canvas, canvas) from gamma_i
    = dl_i / dx~_i."""
    margin = (canvas - inner) // 2
    # M: the border
    mask = F.pad(torch.zeros(inner, inner, dtype=w.dtype), (margin,) * 4, value=1.0)
    return gamma * mask * (1 - torch.tanh(w) ** 2)


def log_q_scratch(votes, sigma):
    """Equation (eq-pate-q) per row of vote counts, capped at ln(1 - 1/K) like the
    package."""
    ### BEGIN SOLUTION ex-vp-logq
    out = []
    for v in np.asarray(votes, dtype=float):
        top = int(np.argmax(v))
        q = sum(
            stats.norm.sf(v[top] - v[j], scale=math.sqrt(2) * sigma)
            for j in range(len(v))
            if j != top
        )
        out.append(math.log(min(q, 1 - 1 / len(v))))
    return np.array(out)
    ### END SOLUTION


# %% [markdown]
# ## Numerical check
#
# 1. The per-example gradient {eq}`eq-vp-grad` against autograd run one example at a time through the
#    whole prompted model (frozen source model and label map included).
# 2. The bound {eq}`eq-pate-q` against the actual error rate of GNMax, estimated by sampling the noise:
#    it must never be exceeded, and it is tight when one runner-up dominates.

# %%
torch.manual_seed(SEED)
w_check = 0.5 * torch.randn(1, CANVAS, CANVAS)
label_map = torch.nn.Linear(10, CLASSES)
x_check = F.interpolate(
    x_priv[:6], size=(INNER, INNER), mode="bilinear", align_corners=False
)
y_check = y_priv[:6]

per_example = []
for i in range(len(y_check)):
    w = w_check.clone().requires_grad_(True)
    loss = F.cross_entropy(
        label_map(source(prompt_scratch(x_check[i : i + 1], w, CANVAS, INNER))),
        y_check[i : i + 1],
    )
    per_example.append(torch.autograd.grad(loss, w)[0])
per_example = torch.stack(per_example)

canvas_in = (
    prompt_scratch(x_check, w_check, CANVAS, INNER).detach().requires_grad_(True)
)
losses = F.cross_entropy(label_map(source(canvas_in)), y_check, reduction="none")
# row i is dl_i / dx~_i: examples do not interact
gamma = torch.autograd.grad(losses.sum(), canvas_in)[0]
grad_gap = float(
    (prompt_grad_scratch(gamma, w_check, CANVAS, INNER) - per_example).abs().max()
)
print(
    "per-example prompt gradients, formula vs autograd one by one: max |difference| = "
    f"{grad_gap:.2e}"
)

rng = np.random.default_rng(SEED)
draws = run.pick(smoke=20_000, book=200_000, colab=1_000_000)
q_rows = []
for votes in ([30, 20, 0, 0, 0], [30, 22, 18, 5, 0], [40, 5, 5, 0, 0]):
    sigma = 6.0
    noisy = np.asarray(votes, float) + rng.normal(0, sigma, (draws, len(votes)))
    empirical = float((noisy.argmax(1) != np.argmax(votes)).mean())
    bound = math.exp(log_q_scratch([votes], sigma)[0])
    se = math.sqrt(max(empirical * (1 - empirical), 1 / draws) / draws)
    q_rows.append((votes, empirical, bound))
    print(
        f"votes {votes}, sigma {sigma}: Pr[GNMax != plurality] = {empirical:.4f} ± "
        f"{se:.4f}, bound q = {bound:.4f}"
    )
    assert empirical <= bound + 4 * se
q_slack = max(b / max(e, 1 / draws) for _, e, b in q_rows)

# %% [markdown]
# ## Graduation
#
# The package's {class}`~trustml_ref.visual_prompting.VisualPrompt`, Opacus's per-example gradients
# through the registered rule, and {func}`~trustml_ref.privacy.pate.log_q_gnmax` against the scratch
# versions; from here on the chapter uses the package.

# %%
from trustml_ref.visual_prompting import opacus_grad_samples

prompt = VisualPrompt(1, CANVAS, INNER)
with torch.no_grad():
    prompt.weight.copy_(w_check)
trustml_ref.assert_close(
    prompt(x_check),
    prompt_scratch(x_check, w_check, CANVAS, INNER),
    rtol=1e-6,
    name="prompted canvas",
)

model = PromptedClassifier(source, prompt, 10, CLASSES)
model.label_map.load_state_dict(label_map.state_dict())
# float32, the same terms summed in another order: agreement to about 1e-5 relative is
# rounding
trustml_ref.assert_close(
    opacus_grad_samples(model, x_check, y_check)["prompt.weight"],
    per_example,
    rtol=1e-4,
    atol=1e-6,
    name="Opacus per-example prompt gradients",
)

votes_check = np.random.default_rng(SEED).multinomial(
    50, [0.5, 0.2, 0.1, 0.1, 0.1], size=20
)
trustml_ref.assert_close(
    torch.as_tensor(pate.log_q_gnmax(votes_check, 8.0)),
    torch.as_tensor(log_q_scratch(votes_check, 8.0)),
    rtol=1e-9,
    name="log q",
)
print(
    "graduated: prompt, per-example gradients and the GNMax bound agree with the "
    "package"
)


# %% [markdown]
# What {eq}`eq-pate-thm6` buys, for one query of 50 teachers at $\sigma = 8$: the more the teachers
# agree, the smaller $q$, and the cheaper the answer at every order where the theorem applies;
# where it does not, the data-independent $\alpha/\sigma^2$ is all we have.

# %% tags=["hide-input"]
alphas = np.linspace(1.5, 40, 200)
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(
    alphas,
    pate.rdp_gnmax_data_independent(8.0, alphas),
    "k--",
    label="data-independent",
)
for votes in ([46, 1, 1, 1, 1], [40, 6, 2, 1, 1], [30, 15, 5, 0, 0]):
    lq = pate.log_q_gnmax([votes], 8.0)
    ax.plot(
        alphas,
        pate.rdp_gnmax(lq, 8.0, alphas)[0],
        label=f"votes {votes}, q = {math.exp(lq[0]):.1e}",
    )
ax.set(
    xlabel=r"Rényi order $\alpha$",
    ylabel=r"RDP($\alpha$) of one answer",
    yscale="log",
    title=r"GNMax, $\sigma = 8$: Theorem 6's bound against $\alpha/\sigma^2$",
)
ax.legend(fontsize=7)
plt.show()


# %% [markdown]
# ## Experiment 1: what the frozen model is worth, without privacy
#
# Four learners on the private training data, by number of labelled examples: a network from
# scratch; the label map alone on the frozen source model (no prompt); the prompt with the label
# map {eq}`eq-vp`; and a linear probe on the source model's last features (the transfer-learning
# baseline the paper compares with). Few labelled examples per learner is exactly the regime of a
# PATE teacher.

# %%
def prompted_model():
    return PromptedClassifier(source, VisualPrompt(1, CANVAS, INNER), 10, CLASSES)


def label_map_model():
    m = prompted_model()
    m.prompt.weight.requires_grad_(False)
    return m


def probe_model():
    return LinearProbe(source, CANVAS, INNER, CLASSES)


LEARNERS = {
    "scratch": (scratch_model, 1e-2),
    "label map only": (label_map_model, 0.05),
    "prompt + label map": (prompted_model, 0.05),
    "linear probe": (probe_model, 0.05),
}
shots = [*SHOTS, len(y_priv)]
few_shot = {name: [] for name in LEARNERS}
# per n, the accuracy of each seed (paired across learners)
few_shot_runs = {name: [] for name in LEARNERS}
for n in tqdm(shots, desc="few-shot"):
    for name, (make, lr) in LEARNERS.items():
        accs = []
        for s in range(SEEDS):
            idx = torch.as_tensor(np.random.default_rng(s).permutation(len(y_priv))[:n])
            torch.manual_seed(s)
            # about the same number of steps for every n
            epochs = max(EPOCHS, 3000 // n)
            accs.append(
                accuracy(
                    fit(
                        make(),
                        x_priv[idx],
                        y_priv[idx],
                        epochs=epochs,
                        lr=lr,
                        progress=False,
                    ),
                    x_test,
                    y_test,
                )
            )
        few_shot[name].append((float(np.mean(accs)), float(np.std(accs))))
        few_shot_runs[name].append(accs)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, rows in few_shot.items():
    mean, std = np.array(rows).T
    ax.errorbar(shots, mean, yerr=std, marker="o", capsize=3, label=name)
ax.set(
    xscale="log",
    xlabel="labelled private examples",
    ylabel="test accuracy",
    title=f"transfer from the frozen source model ({SEEDS} seeds, mean ± std)",
)
ax.legend()
plt.show()

# %%
for name, rows in few_shot.items():
    print(
        f"{name:>20}: " + ", ".join(f"n={n}: {m:.3f}" for n, (m, _) in zip(shots, rows))
    )


# %% [markdown]
# The conclusions compare learners trained on the same examples from the same seed, paired over
# the {glue:text}`vp_seeds` seeds and decided at two standard errors.

# %%
def paired_at(runs: dict, a: str, b: str, i: int):
    return paired_difference(runs[a][i], runs[b][i])


few = [i for i, n in enumerate(shots) if n <= 40]
glue("vp_seeds", SEEDS)
glue("vp_few_max", shots[few[-1]])
if SEEDS > 1:
    for name in ("label map only", "prompt + label map", "linear probe"):
        pooled = paired_difference(
            [a for i in few for a in few_shot_runs[name][i]],
            [b for i in few for b in few_shot_runs["scratch"][i]],
        )
        claim(
            f"with at most {shots[few[-1]]} labelled examples, {name} on the frozen "
            "model beats scratch",
            pooled.lower > 0,
            test=pooled.test + " (numbers of examples x seeds)",
            **pooled.evidence,
        )
    prompt_gain = [
        paired_at(few_shot_runs, "prompt + label map", "label map only", i)
        for i in range(len(shots))
    ]
    claim(
        "training the prompt adds nothing detectable over the label map alone, at any "
        "number of examples",
        all(d.lower <= 0 for d in prompt_gain),
        test=prompt_gain[0].test,
        mean_difference=[d.mean for d in prompt_gain],
    )
    claim(
        "on the means, prompt + label map is below the label map alone at every number "
        "of examples",
        all(d.mean < 0 for d in prompt_gain),
        mean_difference=[d.mean for d in prompt_gain],
    )
gap_few = few_shot["label map only"][0][0] - few_shot["scratch"][0][0]
gap_all = few_shot["label map only"][-1][0] - few_shot["scratch"][-1][0]
claim(
    "with all private examples the scratch network closes most of its gap to the label "
    "map",
    gap_all < gap_few / 2,
    gap_fewest=gap_few,
    gap_all=gap_all,
)
glue("vp_gap_few", gap_few)
glue("vp_gap_all", gap_all)
halving = [(n, n // 2) for n in shots if n // 2 in shots and n % 2 == 0]


def halving_cost(name: str, n: int) -> float:
    """Mean accuracy at n // 2 examples minus at n."""
    return few_shot[name][shots.index(n // 2)][0] - few_shot[name][shots.index(n)][0]


glue(
    "vp_halving",
    "; ".join(
        f"from {n} to {h} examples, scratch {halving_cost('scratch', n):+.3f} and "
        f"prompt + label map {halving_cost('prompt + label map', n):+.3f}"
        for n, h in reversed(halving)
    )
    or "no halving pair in this profile",
)
glue(
    "vp_prompt_vs_map",
    float(
        np.mean(
            [
                m - l
                for (m, _), (l, _) in zip(
                    few_shot["prompt + label map"], few_shot["label map only"]
                )
            ]
        )
    ),
)

# %% [markdown]
# Read the figure before trusting the method. The frozen source model is worth a lot when labels
# are few: with up to {glue:text}`vp_few_max` examples every learner on top of it beats the network
# from scratch. Training the prompt does not help here: prompt + label map is, on average over the
# numbers of examples, {glue:text}`vp_prompt_vs_map:+.3f` against the label map alone. Our guess at
# the reason, tested in Experiment 1b below: the target domain differs from the source only by
# noise and scale, which the label map can absorb, while the paper's gains from the prompt come
# from large, real domain shifts (ImageNet to medical or satellite images) that this toy does not
# have. With all
# private examples the scratch network closes most of its gap to the label map (from
# {glue:text}`vp_gap_few:.2f` at the fewest examples to {glue:text}`vp_gap_all:.2f`), as it should
# on 8×8 digits.

# %% [markdown]
# ## Experiment 1b: a domain gap that a prompt can close
#
# The guess above can be tested, with a target whose gap to the source is known and can be
# switched on. {mod}`trustml_ref.visual_prompting.glyphs` draws characters from the fonts
# matplotlib ships, each one thickened or thinned, rotated, sheared, shifted and blurred at random,
# as many i.i.d. images as a run asks for. The *source* model is trained on digits and capital
# letters in the 16 DejaVu and STIX faces (36 classes, public data). The private *target* is the
# ten digits in the five Computer Modern faces the source never saw (one of them draws old-style
# figures), at three levels of shift:
#
# - *fonts only*: the new faces, nothing else;
# - *texture*: one fixed pattern $T$ added to every image, $x + 0.5\,T$. This gap is additive and
#   the same for every image, so a full-canvas prompt with $\tanh(W) = -0.5\,T$ undoes it wherever
#   the sum was not clipped; a border prompt cannot reach the glyph;
# - *inversion*: half of the images become $1 - x$. No single additive pattern turns both halves
#   back.
#
# The colab profile (`TOY_SIZES = "colab"`) adds a fourth level, *elastic*: each image warped by
# its own smooth random displacement field of 1 pixel RMS. No fixed pattern undoes a warp that
# differs per image, so the reading below predicts at most a small gain of the full-canvas prompt
# over the label map there, as with the fonts alone (an exploratory run at one seed measured
# +0.03); the book profile does not run it, and no claim checks it.
#
# Six learners see the same {glue:text}`vp_glyph_n` labelled target images per seed: a network
# from scratch; the label map alone (the glyph at its full 16 pixels, no prompt); the paper's
# border prompt (the glyph shrunk to 12 pixels inside a learnt 2-pixel frame) with the label map;
# a *full-canvas* prompt, added to the whole image, with the label map; the linear probe; and
# fine-tuning every weight of a copy of the source model, the strongest non-private baseline.
#
# What we expect, written before the run (an exploratory run at one seed agreed):
#
# 1. *Fonts only*: little is left to fix; the full-canvas prompt gains less than 0.03 over the
#    label map.
# 2. *Texture*: the full-canvas prompt beats the label map and the linear probe, paired over the
#    seeds at two standard errors; the border prompt does not beat the label map.
# 3. *Inversion*: neither prompt beats the network trained from scratch.
#
# The reading "a prompt helps when it can undo the gap" would be wrong if the full-canvas prompt
# failed to beat the label map under the texture, or beat the network from scratch under the
# inversion.

# %%
GLYPH_N = run.pick(smoke=300, book=1000, colab=5000)  # labelled target images
GLYPH_EPOCHS = run.pick(smoke=3, book=15, colab=15)
SHIFTS = {
    "fonts only": {},
    "texture": dict(texture_amplitude=0.5),
    "inversion": dict(invert=0.5),
}
if run.pick(smoke=False, book=False, colab=True):  # a fourth level: a warp per image
    SHIFTS["elastic"] = dict(elastic=1.0)
x_glyph, y_glyph = glyphs.glyphs(
    run.pick(smoke=3000, book=30_000, colab=30_000), seed=SEED
)
torch.manual_seed(SEED)
glyph_source = fit(
    SourceCNN(classes=len(glyphs.SOURCE_CHARS)),
    x_glyph,
    y_glyph,
    epochs=run.pick(smoke=2, book=6, colab=6),
    batch_size=128,
    lr=3e-3,
)
x_check, y_check = glyphs.glyphs(4000, seed=SEED + 1)
glue("vp_glyph_source_accuracy", accuracy(glyph_source, x_check, y_check))
glue("vp_glyph_n", GLYPH_N)


def target_glyphs(n: int, knobs: dict, seed: int):
    """n target digits in the held-out faces, shifted by ``knobs``."""
    x, y = glyphs.glyphs(n, glyphs.TARGET_FACES, glyphs.DIGITS, seed=seed)
    return glyphs.shift(x, seed=seed, **knobs), y


# %% tags=["hide-input"]
fig, axes = plt.subplots(1 + len(SHIFTS), 10, figsize=(8, 0.85 * (1 + len(SHIFTS))))
rows = {"source faces": glyphs.glyphs(10, chars=glyphs.DIGITS, seed=SEED)[0]}
rows |= {name: target_glyphs(10, knobs, SEED)[0] for name, knobs in SHIFTS.items()}
for r, (name, images) in enumerate(rows.items()):
    for c in range(10):
        axes[r, c].imshow(images[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", fontsize=8)
fig.suptitle("one draw per column: a source face, then the target at three shifts")
plt.show()


# %%
def frozen_prompt(model: PromptedClassifier) -> PromptedClassifier:
    model.prompt.weight.requires_grad_(False)
    return model


def fine_tuned(source: SourceCNN, classes: int) -> SourceCNN:
    model = copy.deepcopy(source)
    model.head = torch.nn.Linear(model.head.in_features, classes)
    return model.requires_grad_(True)


def prompted(region: str, inner: int) -> PromptedClassifier:
    prompt = VisualPrompt(1, 16, inner, region=region)
    return PromptedClassifier(glyph_source, prompt, len(glyphs.SOURCE_CHARS), 10)


GLYPH_LEARNERS = {  # name -> (model, Adam learning rate)
    "scratch": (lambda: scratch_mlp(256, 10, 128), 3e-3),
    "label map only": (lambda: frozen_prompt(prompted("full", 16)), 1e-2),
    "border prompt + label map": (lambda: prompted("border", 12), 1e-2),
    "full-canvas prompt + label map": (lambda: prompted("full", 16), 1e-2),
    "linear probe": (lambda: LinearProbe(glyph_source, 16, 16, 10), 1e-2),
    "fine-tuning": (lambda: fine_tuned(glyph_source, 10), 3e-3),
}

# %%
glyph_runs = {}  # (shift, learner) -> test accuracy per seed (seeds paired)
for shift_name, knobs in tqdm(SHIFTS.items(), desc="shifts"):
    x_test_g, y_test_g = target_glyphs(2000, knobs, SEED + 999)
    for s in range(SEEDS):
        x_g, y_g = target_glyphs(GLYPH_N, knobs, SEED + 100 + s)
        for name, (make, lr) in GLYPH_LEARNERS.items():
            torch.manual_seed(s)
            model = fit(
                make(), x_g, y_g, epochs=GLYPH_EPOCHS, lr=lr, seed=s, progress=False
            )
            glyph_runs.setdefault((shift_name, name), []).append(
                accuracy(model, x_test_g, y_test_g)
            )

# %%
def winner(runs: dict) -> str:
    """The learner with the best mean if it beats the runner-up by more than two
    standard errors of their paired difference over the seeds, else "tie"."""
    best, second = sorted(runs, key=lambda name: -np.mean(runs[name]))[:2]
    if SEEDS < 2:
        return f"{best} (one seed)"
    return best if paired_difference(runs[best], runs[second]).lower > 0 else "tie"


results_table(
    [
        {
            "learner": name,
            **{
                shift: f"{np.mean(glyph_runs[shift, name]):.3f} "
                f"± {np.std(glyph_runs[shift, name]):.3f}"
                for shift in SHIFTS
            },
        }
        for name in GLYPH_LEARNERS
    ]
    + [
        {
            "learner": "winner (2 standard errors)",
            **{
                shift: winner(
                    {name: glyph_runs[shift, name] for name in GLYPH_LEARNERS}
                )
                for shift in SHIFTS
            },
        }
    ],
    caption=f"glyph target: test accuracy, mean ± std over {SEEDS} seeds, "
    f"{GLYPH_N} labelled images",
)


# %%
def glyph_gain(shift: str, a: str, b: str):
    """Learner a minus learner b at one shift, paired over the seeds."""
    return paired_difference(glyph_runs[shift, a], glyph_runs[shift, b])


def mean_gain(shift: str, a: str, b: str) -> float:
    """Learner a minus learner b at one shift, on the means over the seeds."""
    return float(np.mean(glyph_runs[shift, a]) - np.mean(glyph_runs[shift, b]))


FULL, BORDER = "full-canvas prompt + label map", "border prompt + label map"
for name, (shift, a, b) in {
    "fonts_gain": ("fonts only", FULL, "label map only"),
    "texture_gain": ("texture", FULL, "label map only"),
    "texture_probe": ("texture", FULL, "linear probe"),
    "texture_vs_finetune": ("texture", FULL, "fine-tuning"),
    "border_gain": ("texture", BORDER, "label map only"),
    "inversion_gap": ("inversion", FULL, "scratch"),
}.items():
    glue(f"vp_glyph_{name}", mean_gain(shift, a, b))
x_plain, _ = glyphs.glyphs(2000, glyphs.TARGET_FACES, glyphs.DIGITS, seed=SEED + 999)
shifted = x_plain + SHIFTS["texture"]["texture_amplitude"] * glyphs.texture(16)
glue("vp_glyph_clipped", float(((shifted < 0) | (shifted > 1)).float().mean()))
claim(
    "fonts only: the full-canvas prompt gains less than 0.03 over the label map "
    "(mean over seeds)",
    mean_gain("fonts only", FULL, "label map only") < 0.03,
    difference=mean_gain("fonts only", FULL, "label map only"),
)
if SEEDS > 1:
    for rival in ("label map only", "linear probe"):
        gain = glyph_gain("texture", FULL, rival)
        claim(
            f"texture: the full-canvas prompt beats the {rival.split(' only')[0]}",
            gain.lower > 0,
            test=gain.test,
            **gain.evidence,
        )
    border_vs_map = glyph_gain("texture", BORDER, "label map only")
    claim(
        "texture: the border prompt does not beat the label map alone",
        border_vs_map.lower <= 0,
        test=border_vs_map.test,
        **border_vs_map.evidence,
    )
    inverted = [glyph_gain("inversion", p, "scratch") for p in (FULL, BORDER)]
    claim(
        "inversion: neither prompt beats the network from scratch",
        all(d.lower <= 0 for d in inverted),
        test=inverted[0].test,
        mean_difference=[d.mean for d in inverted],
    )

# %% [markdown]
# All three predictions are checked by the claims above. The source model reads the source faces
# at {glue:text}`vp_glyph_source_accuracy:.3f` (36 classes). With the new fonts alone, the
# full-canvas prompt adds {glue:text}`vp_glyph_fonts_gain:+.3f` over the label map: there is
# little left to fix, as in Experiment 1. Under the texture, it adds
# {glue:text}`vp_glyph_texture_gain:+.3f` over the label map and
# {glue:text}`vp_glyph_texture_probe:+.3f` over the linear probe, and against fine-tuning every
# weight of the source model it is {glue:text}`vp_glyph_texture_vs_finetune:+.3f` (mean over
# seeds, not tested): when the gap is additive, the input is the right place to fix it. The paper's border prompt, which cannot touch
# the glyph, changes the label map's accuracy by {glue:text}`vp_glyph_border_gain:+.3f` there.
# Under the inversion the full-canvas prompt is {glue:text}`vp_glyph_inversion_gap:+.3f` against a
# network from scratch. So the prompt wins where one input pattern can undo the shift, and
# the toy of Experiment 1 showed nothing because its shift was not of that kind. The rest of this
# chapter's DP-SGD and PATE experiments run on both worlds: the digits of Experiment 1
# (Experiments 2, 3 and 4) and the glyphs (Experiments 2b and 4b).
#
# ## Experiment 2: DP-SGD over a privacy budget grid
#
# The same private data, the same $\delta = 10^{-5}$, and for each $\varepsilon$ Opacus calibrates the noise
# multiplier for the planned epochs with its RDP accountant; we train the scratch network, the prompt
# with its label map, and the linear probe, each with DP-SGD {eq}`eq-dpsgd`.

# %%
dp_learners = {
    k: LEARNERS[k] for k in ("scratch", "prompt + label map", "linear probe")
}


def dpsgd_accuracy(make, lr, x, y, eps, epochs, seed, test, spent) -> float:
    """Test accuracy on ``test`` = (x, y) of ``make()`` trained with DP-SGD at
    (eps, DELTA); appends (eps, the eps spent) to ``spent``."""
    result = train_dpsgd(
        make(),
        x,
        y,
        epsilon=eps,
        delta=DELTA,
        epochs=epochs,
        lr=lr,
        seed=seed,
        progress=False,
    )
    spent.append((eps, result.epsilon))
    return accuracy(result.model, *test)


dpsgd = {name: [] for name in dp_learners}
dpsgd_runs = {name: [] for name in dp_learners}  # per eps, the accuracy of each seed
dpsgd_spent = []
for eps in tqdm(EPS_GRID, desc="DP-SGD grid"):
    for name, (make, lr) in dp_learners.items():
        accs = [
            dpsgd_accuracy(
                make, lr, x_priv, y_priv, eps, EPOCHS, s, (x_test, y_test), dpsgd_spent
            )
            for s in range(SEEDS)
        ]
        dpsgd[name].append((float(np.mean(accs)), float(np.std(accs))))
        dpsgd_runs[name].append(accs)
nonprivate = {name: rows[-1][0] for name, rows in few_shot.items()}

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.6))
for (name, rows), color in zip(dpsgd.items(), ("C0", "C2", "C3")):
    mean, std = np.array(rows).T
    ax.errorbar(
        EPS_GRID,
        mean,
        yerr=std,
        marker="o",
        capsize=3,
        color=color,
        label=f"DP-SGD: {name}",
    )
    ax.axhline(nonprivate[name], color=color, ls=":", lw=1)
ax.set(
    xscale="log",
    xlabel=r"$\varepsilon$ ($\delta = 10^{-5}$)",
    ylabel="test accuracy",
    title="DP-SGD (dotted: the same learner without privacy)",
)
ax.legend(fontsize=8)
plt.show()

# %%
for name, rows in dpsgd.items():
    print(
        f"{name:>20}: "
        + ", ".join(f"eps={e:g}: {m:.3f}" for e, (m, _) in zip(EPS_GRID, rows))
    )
print(
    "largest epsilon spent / target:",
    max(spent / target for target, spent in dpsgd_spent),
)


# %% [markdown]
# The claims pair the learners by seed (the seed fixes the noise and the batches of DP-SGD).

# %%
if SEEDS > 1:
    for name in ("prompt + label map", "linear probe"):
        d = paired_at(dpsgd_runs, name, "scratch", 0)
        claim(
            f"at eps = {EPS_GRID[0]:g}, DP-SGD on the frozen model ({name}) beats "
            "DP-SGD from scratch",
            d.lower > 0,
            test=d.test,
            **d.evidence,
        )
    probe_vs_prompt = [
        paired_at(dpsgd_runs, "linear probe", "prompt + label map", i)
        for i in range(len(EPS_GRID))
    ]
    claim(
        "under DP-SGD the prompt beats the linear probe at no eps",
        not any(d.upper < 0 for d in probe_vs_prompt),
        test=probe_vs_prompt[0].test,
        probe_minus_prompt=[d.mean for d in probe_vs_prompt],
    )
    probe_pooled = paired_difference(
        [a for acc in dpsgd_runs["linear probe"] for a in acc],
        [b for acc in dpsgd_runs["prompt + label map"] for b in acc],
    )
    claim(
        "under DP-SGD the linear probe beats the prompt, pooled over eps",
        probe_pooled.lower > 0,
        test=probe_pooled.test + " (eps x seeds)",
        **probe_pooled.evidence,
    )
glue(
    "vp_dp_probe_gain",
    100
    * float(
        np.mean(dpsgd_runs["linear probe"]) - np.mean(dpsgd_runs["prompt + label map"])
    ),
)
glue("vp_dp_prompt", dpsgd["prompt + label map"][0][0])
glue("vp_dp_probe", dpsgd["linear probe"][0][0])
glue("vp_dp_scratch", dpsgd["scratch"][0][0])

# %% [markdown]
# At $\varepsilon$ = {glue:text}`vp_eps_strict` DP-SGD reaches {glue:text}`vp_dp_scratch:.3f` from
# scratch, {glue:text}`vp_dp_prompt:.3f` with the prompt and {glue:text}`vp_dp_probe:.3f` with the
# linear probe: the frozen model's features are worth as much under privacy as without it. The
# probe, with fewer trainable numbers than the prompt, is ahead of it under DP-SGD: by
# {glue:text}`vp_dp_probe_gain:.0f` points on average over the budgets (paired by seed), and the
# prompt is ahead at no $\varepsilon$.

# %% [markdown]
# ## Experiment 2b: DP-SGD where the prompt has a gap to close
#
# Experiment 1b gave the full-canvas prompt a gap it closes, without privacy. Does its lead
# survive DP-SGD? Every trainable number receives the same noise, so the learner with more of
# them pays more: the label map trains {glue:text}`vp_glyph_label_map_params` numbers, the
# full-canvas prompt with its label map {glue:text}`vp_glyph_prompt_params`, the linear probe
# {glue:text}`vp_glyph_probe_params` and fine-tuning {glue:text}`vp_glyph_finetune_params`. We
# train the five learners of Experiment 1b that have no border (the border prompt lost without
# privacy) with DP-SGD on the textured target, at the same $(\varepsilon, \delta)$, the same
# add/remove neighbour relation (Opacus's accountant) and the same number of steps: a larger $N$
# gets fewer epochs, so it buys a smaller sampling rate, not more updates.
#
# What we expect, written before the run (an exploratory run at two seeds informed it):
#
# 4. With $N = 1000$ at $\varepsilon = 1$, the noise eats the prompt's lead: it does not beat the
#    label map.
# 5. A looser budget ($\varepsilon = 4$) or more data ($N = 5000$ at $\varepsilon = 1$) brings the
#    lead back: the full-canvas prompt beats the label map.
# 6. Fine-tuning every weight is below the full-canvas prompt in every setting.
#
# If the prompt failed to beat the label map with five times the data at $\varepsilon = 1$, then
# under DP the prompt's extra parameters would not pay for themselves at any size this chapter
# can run.

# %%
# (N, eps): the strict setting, a looser budget, and five times the data
STRICT, LOOSER, MORE_DATA = run.pick(
    smoke=[(300, 2.0), (300, 8.0), (1500, 2.0)],
    book=[(1000, 1.0), (1000, 4.0), (5000, 1.0)],
    colab=[(1000, 1.0), (1000, 4.0), (5000, 1.0)],
)
DP_GLYPH = run.pick(  # every (N, eps) setting run
    smoke=[STRICT, LOOSER, MORE_DATA],
    book=[STRICT, LOOSER, MORE_DATA],
    colab=[(n, e) for n in (1000, 5000, 10_000, 50_000) for e in (0.5, 1.0, 2.0, 4.0)],
)
DP_GLYPH_STEPS = run.pick(smoke=30, book=234, colab=234)  # about 15 epochs at N = 1000
DP_GLYPH_LEARNERS = {  # name -> (model, Adam learning rate under DP-SGD)
    name: (make, 1e-3 if name == "fine-tuning" else lr)
    for name, (make, lr) in GLYPH_LEARNERS.items()
    if name != BORDER
}
GLUE_KEYS = {"label map only": "label_map", FULL: "prompt"}
GLUE_KEYS |= {"linear probe": "probe", "fine-tuning": "finetune"}
for name, key in GLUE_KEYS.items():
    model = DP_GLYPH_LEARNERS[name][0]()
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    glue(f"vp_glyph_{key}_params", count)

# %%
texture = SHIFTS["texture"]
x_test_t, y_test_t = target_glyphs(2000, texture, SEED + 999)
dp_glyph_runs = {}  # ((N, eps), learner) -> test accuracy per seed (seeds paired)
dp_glyph_spent = []  # (target eps, spent eps)
for n, eps in tqdm(DP_GLYPH, desc="DP-SGD on glyphs"):
    epochs = max(1, round(DP_GLYPH_STEPS * 64 / n))
    for s in range(SEEDS):
        x_g, y_g = target_glyphs(n, texture, SEED + 100 + s)
        for name, (make, lr) in DP_GLYPH_LEARNERS.items():
            accuracy_t = dpsgd_accuracy(
                make, lr, x_g, y_g, eps, epochs, s, (x_test_t, y_test_t), dp_glyph_spent
            )
            dp_glyph_runs.setdefault(((n, eps), name), []).append(accuracy_t)
claim(
    "every DP-SGD run on the glyphs spent at most its target epsilon",
    all(spent <= target * (1 + 1e-6) for target, spent in dp_glyph_spent),
    worst_ratio=max(spent / target for target, spent in dp_glyph_spent),
)

# %%
results_table(
    [
        {
            "N": n,
            "eps": eps,
            **{
                name: f"{np.mean(dp_glyph_runs[(n, eps), name]):.3f} "
                f"± {np.std(dp_glyph_runs[(n, eps), name]):.3f}"
                for name in DP_GLYPH_LEARNERS
            },
            "winner (2 standard errors)": winner(
                {name: dp_glyph_runs[(n, eps), name] for name in DP_GLYPH_LEARNERS}
            ),
        }
        for n, eps in DP_GLYPH
    ],
    caption=f"DP-SGD on the textured glyph target, delta = {DELTA:g}: test accuracy, "
    f"mean ± std over {SEEDS} seeds",
)


# %%
def dp_glyph_gain(setting: tuple, a: str, b: str):
    """Learner a minus learner b in one (N, eps) setting, paired over the seeds."""
    return paired_difference(dp_glyph_runs[setting, a], dp_glyph_runs[setting, b])


def dp_glyph_mean(setting: tuple, a: str, b: str) -> float:
    return float(
        np.mean(dp_glyph_runs[setting, a]) - np.mean(dp_glyph_runs[setting, b])
    )


for key, (n, eps) in zip(
    ("strict", "looser", "more_data"), (STRICT, LOOSER, MORE_DATA)
):
    glue(f"vp_dpg_{key}", dp_glyph_mean((n, eps), FULL, "label map only"))
    glue(f"vp_dpg_{key}_setting", f"N = {n} at eps = {eps:g}")
if SEEDS > 1:
    strict = dp_glyph_gain(STRICT, FULL, "label map only")
    claim(
        f"DP-SGD, N = {STRICT[0]}, eps = {STRICT[1]:g}: the full-canvas prompt does "
        "not beat the label map",
        strict.lower <= 0,
        test=strict.test,
        **strict.evidence,
    )
    for setting in (LOOSER, MORE_DATA):
        gain = dp_glyph_gain(setting, FULL, "label map only")
        claim(
            f"DP-SGD, N = {setting[0]}, eps = {setting[1]:g}: the full-canvas prompt "
            "beats the label map",
            gain.lower > 0,
            test=gain.test,
            **gain.evidence,
        )
    finetune = [dp_glyph_gain(st, FULL, "fine-tuning") for st in DP_GLYPH]
    claim(
        "DP-SGD: fine-tuning is below the full-canvas prompt in every setting",
        all(d.lower > 0 for d in finetune),
        test=finetune[0].test,
        prompt_minus_finetuning=[d.mean for d in finetune],
    )

# %% [markdown]
# The prompt's lead over the label map under DP-SGD is {glue:text}`vp_dpg_strict:+.3f` with
# {glue:text}`vp_dpg_strict_setting`, {glue:text}`vp_dpg_looser:+.3f` with
# {glue:text}`vp_dpg_looser_setting`, and {glue:text}`vp_dpg_more_data:+.3f` with
# {glue:text}`vp_dpg_more_data_setting` (means over the seeds; the claims above decide them at two
# standard errors). What helps without privacy helps under it only
# when there is enough data or budget to pay for the extra parameters, and fine-tuning, with the
# most parameters, is the worst transfer learner under DP-SGD here. This is the paper's argument
# for training few parameters, measured on a toy where it could have failed. One caveat against
# fine-tuning's number: every learner got one learning rate, fixed before the run and not tuned
# per setting, and DP fine-tuning is known to need larger batches than the 64 used here.

# %% [markdown]
# ## Experiment 3: PATE with scratch teachers and with prompt teachers
#
# $k$ teachers on the hash-assigned slices of the 400 private examples; the student asks for $Q = 40$ labels of
# public-pool images through GNMax {eq}`eq-gnmax` and trains the same kind of model on them. The noise
# $\sigma$ for each $\varepsilon$ is calibrated *data-independently* ($Q\alpha/\sigma^2$ converted by {eq}`eq-rdp-eps-balle`),
# so the guarantee holds without looking at the votes; the data-dependent cost of the same answers
# is computed beside it (the claims below compare the two). Prompt teachers with a prompt student is
# Prom-PATE.

# %% [markdown]
# The teachers first: $k$ models of one kind, each trained on its own slice, and their votes on
# the public pool.

# %%
pool, pool_labels = world.x_public, world.y_public
teacher_kinds = {
    "scratch teachers": LEARNERS["scratch"],
    "prompt teachers (Prom-PATE)": LEARNERS["prompt + label map"],
}


def teachers_and_votes(make, lr: float, k: int):
    """k teachers on disjoint slices of the private set and their votes on the pool."""
    teachers = train_teachers(
        make,
        x_priv,
        y_priv,
        k,
        steps=TEACHER_STEPS,
        batch_size=max(1, len(y_priv) // k),  # about a slice per step
        lr=lr,
        seed=SEED,
        progress=False,
    )
    predictions = teachers.predict(pool)
    return teachers, predictions, vote_counts(predictions, CLASSES)


# %% [markdown]
# Then one student per $\varepsilon$ and seed: GNMax labels for the first $Q$ pool images at the
# calibrated $\sigma$, and a fresh model trained on them.

# %%
def pate_students(make, lr: float, votes) -> list[dict]:
    """Per eps: sigma, the data-dependent eps of the same answers, and the students'
    label and test accuracy over SEEDS fresh draws of the GNMax noise."""
    students = []
    for eps in EPS_GRID:
        sigma = pate.calibrate_gnmax_sigma(QUERIES, eps, DELTA, ORDERS)
        rdp = pate.confident_gnmax_rdp(votes[:QUERIES], -np.inf, 1.0, sigma, ORDERS)
        dependent = pate.eps_from_rdp(ORDERS, rdp, DELTA)[0]
        label_accs, student_accs = [], []
        for s in range(SEEDS):  # fresh GNMax noise and a fresh student per seed
            labels = pate.gnmax(votes[:QUERIES], sigma, np.random.default_rng(s))
            torch.manual_seed(s)
            student = fit(
                make(),
                pool[:QUERIES],
                torch.as_tensor(labels),
                epochs=TEACHER_EPOCHS,
                lr=lr,
                progress=False,
            )
            label_accs.append(float((labels == pool_labels[:QUERIES].numpy()).mean()))
            student_accs.append(accuracy(student, x_test, y_test))
        students.append(
            {
                "eps": eps,
                "sigma": sigma,
                "eps_data_dependent": dependent,
                "label_accuracy": float(np.mean(label_accs)),
                "student_accuracy": float(np.mean(student_accs)),
                "student_std": float(np.std(student_accs)),
                "student_runs": student_accs,
            }
        )
    return students


# %%
pate_runs = {}
for k in tqdm(TEACHER_COUNTS, desc="teacher counts"):
    for kind, (make, lr) in teacher_kinds.items():
        # teacher i sees slice i for both kinds
        teachers, predictions, votes = teachers_and_votes(make, lr, k)
        students = pate_students(make, lr, votes)
        teacher_accs = (teachers.predict(x_test) == y_test).float().mean(1).tolist()
        pate_runs[(k, kind)] = {
            "teacher_accuracy": float(np.mean(teacher_accs)),
            "teacher_runs": teacher_accs,
            "plurality_accuracy": float(
                (votes.argmax(1) == pool_labels.numpy()).mean()
            ),
            "votes": votes,
            "predictions": predictions,
            "students": students,
        }

k_main = TEACHER_COUNTS[-2] if len(TEACHER_COUNTS) > 2 else TEACHER_COUNTS[-1]

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for kind, color in zip(teacher_kinds, ("C0", "C2")):
    rows = pate_runs[(k_main, kind)]["students"]
    axes[0].errorbar(
        EPS_GRID,
        [r["student_accuracy"] for r in rows],
        yerr=[r["student_std"] for r in rows],
        marker="o",
        capsize=3,
        color=color,
        label=f"PATE, {kind}",
    )
axes[0].plot(
    EPS_GRID,
    [m for m, _ in dpsgd["prompt + label map"]],
    "s--",
    color="C2",
    alpha=0.6,
    label="DP-SGD, prompt",
)
axes[0].plot(
    EPS_GRID,
    [m for m, _ in dpsgd["linear probe"]],
    "s--",
    color="C3",
    alpha=0.6,
    label="DP-SGD, linear probe",
)
axes[0].set(
    xscale="log",
    xlabel=r"$\varepsilon$",
    ylabel="student test accuracy",
    title=f"{k_main} teachers, {QUERIES} queries ({SEEDS} seeds)",
)
axes[0].legend(fontsize=7)
eps_mid = EPS_GRID[len(EPS_GRID) // 2]
for kind, color in zip(teacher_kinds, ("C0", "C2")):
    runs = [pate_runs[(k, kind)] for k in TEACHER_COUNTS]
    axes[1].plot(
        TEACHER_COUNTS,
        [r["teacher_accuracy"] for r in runs],
        "o:",
        color=color,
        label=f"one teacher ({kind.split()[0]})",
    )
    axes[1].plot(
        TEACHER_COUNTS,
        [
            next(s["student_accuracy"] for s in r["students"] if s["eps"] == eps_mid)
            for r in runs
        ],
        "o-",
        color=color,
        label=f"student at eps={eps_mid:g} ({kind.split()[0]})",
    )
axes[1].set(
    xscale="log",
    xlabel="teachers k (400 private examples in all)",
    ylabel="test accuracy",
    title="more teachers: each sees less",
)
axes[1].legend(fontsize=7)
for kind, color in zip(teacher_kinds, ("C0", "C2")):
    v = pate_runs[(k_main, kind)]["votes"]
    axes[2].hist(
        v.max(1) / k_main,
        bins=np.linspace(0, 1, 21),
        alpha=0.6,
        color=color,
        label=kind,
    )
axes[2].set(
    xlabel="fraction of teachers voting for the plurality",
    ylabel="public queries",
    title="teacher agreement",
)
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %%
results_table(
    [
        {
            "teachers k": k,
            "teacher kind": kind.split()[0],
            "one teacher": r["teacher_accuracy"],
            "plurality on the pool": r["plurality_accuracy"],
            **{
                f"student, eps={st['eps']:g}": st["student_accuracy"]
                for st in r["students"]
            },
        }
        for (k, kind), r in pate_runs.items()
    ],
    caption=f"PATE: test accuracy by number of teachers ({SEEDS} seeds per student)",
)

# %% [markdown]
# The noise of each $\varepsilon$, calibrated with the conversion both methods use here
# ({cite:t}`balle2020hypothesis`, as Opacus does for DP-SGD), and what Mironov's conversion, the one
# PATE's paper uses, would have demanded:

# %%
results_table(
    {
        "eps": EPS_GRID,
        "sigma (Balle et al., used)": [
            pate.calibrate_gnmax_sigma(QUERIES, e, DELTA, ORDERS) for e in EPS_GRID
        ],
        "sigma (Mironov)": [
            pate.calibrate_gnmax_sigma(QUERIES, e, DELTA, ORDERS, "pate")
            for e in EPS_GRID
        ],
    },
    caption=f"GNMax noise for {QUERIES} queries, delta = {DELTA:g}",
)


# %% [markdown]
# The conclusions. Teachers of the two kinds are paired by their slice of the private data;
# students by $\varepsilon$ and seed (the seed fixes the GNMax noise and the student's training).

# %%
SCRATCH_T, PROMPT_T = teacher_kinds
teacher_gain = {
    k: paired_difference(
        pate_runs[(k, PROMPT_T)]["teacher_runs"],
        pate_runs[(k, SCRATCH_T)]["teacher_runs"],
    )
    for k in TEACHER_COUNTS
}
claim(
    "one prompt teacher is more accurate than one scratch teacher, at every number of "
    "teachers",
    all(d.lower > 0 for d in teacher_gain.values()),
    test="paired over teachers (same slice) at each k",
    mean_difference={str(k): d.mean for k, d in teacher_gain.items()},
)


# %% [markdown]
# Teachers that share one frozen backbone may share its mistakes. If they do, their plurality gains
# less over one teacher than a plurality of independently trained networks: more votes do not
# average out an error every teacher makes. Two measures on the public pool, at every $k$: the mean
# pairwise correlation of the teachers' 0/1 errors, and how concentrated the wrong votes are (per
# query, the share of its wrong votes that go to the most popular wrong class, averaged over the
# queries with at least two wrong votes).

# %%
truth = pool_labels.numpy()


def error_correlation(predictions: torch.Tensor) -> float:
    """Mean correlation, over pairs of teachers, of their 0/1 errors on the pool."""
    errors = (predictions.numpy() != truth).astype(float)
    errors = errors[errors.std(1) > 0]  # a teacher never (or always) wrong has none
    c = np.corrcoef(errors)
    return float(c[~np.eye(len(c), dtype=bool)].mean())


def wrong_vote_concentration(predictions: torch.Tensor) -> float:
    """Mean share of a query's wrong votes that go to its most popular wrong class."""
    p = predictions.numpy()
    shares = []
    for q in range(p.shape[1]):
        wrong = p[p[:, q] != truth[q], q]
        if len(wrong) > 1:
            shares.append(np.bincount(wrong).max() / len(wrong))
    return float(np.mean(shares))


agreement = [
    {
        "teachers k": k,
        "teacher kind": kind.split()[0],
        "one teacher": r["teacher_accuracy"],
        "plurality": r["plurality_accuracy"],
        "plurality gain": r["plurality_accuracy"] - r["teacher_accuracy"],
        "error correlation": error_correlation(r["predictions"]),
        "wrong-vote concentration": wrong_vote_concentration(r["predictions"]),
    }
    for (k, kind), r in pate_runs.items()
]
results_table(agreement, caption="how the teachers' mistakes combine, on the pool")

# %%
concentration = {
    (row["teachers k"], row["teacher kind"]): row["wrong-vote concentration"]
    for row in agreement
}
claim(
    "at every k the prompt teachers' wrong votes are more concentrated on one class "
    "than the scratch teachers'",
    all(
        concentration[(k, "prompt")] > concentration[(k, "scratch")]
        for k in TEACHER_COUNTS
    ),
    test="one partition, one draw of teachers per k (a description, not a test)",
    prompt=[concentration[(k, "prompt")] for k in TEACHER_COUNTS],
    scratch=[concentration[(k, "scratch")] for k in TEACHER_COUNTS],
)
correlations = [row["error correlation"] for row in agreement]
glue("vp_corr_lo", min(correlations))
glue("vp_corr_hi", max(correlations))

# %% [markdown]
# The pairwise correlation of errors is small for both kinds (between {glue:text}`vp_corr_lo:.2f`
# and {glue:text}`vp_corr_hi:.2f`): teachers trained on a handful of images each are wrong in
# mostly different places. But when prompt teachers are wrong they more often agree on *the same*
# wrong class, the shared backbone's confusion, and a concentrated wrong class is what can outvote
# the right one in a noisy plurality. Compare the plurality gains in the table: whether the shared
# backbone costs the prompt teachers' plurality its lead depends on $k$ in this toy.


# %%
def student_runs(k: int, kind: str) -> list[float]:
    return [a for st in pate_runs[(k, kind)]["students"] for a in st["student_runs"]]


student_gain = {
    k: paired_difference(student_runs(k, PROMPT_T), student_runs(k, SCRATCH_T))
    for k in TEACHER_COUNTS
}
student_verdict = {
    k: d.verdict("Prom-PATE", "scratch teachers") for k, d in student_gain.items()
}
many = [k for k in TEACHER_COUNTS if k >= 50]
if SEEDS > 1:
    claim(
        "at no number of teachers is the scratch-teacher student ahead of Prom-PATE's",
        all(d.upper >= 0 for d in student_gain.values()),
        test=student_gain[TEACHER_COUNTS[0]].test + " (eps x seeds) at each k",
        mean_difference={str(k): d.mean for k, d in student_gain.items()},
    )
    for k in many:
        claim(
            f"with {k} teachers Prom-PATE's student beats the scratch-teacher student",
            student_gain[k].lower > 0,
            test=student_gain[k].test + " (eps x seeds)",
            **student_gain[k].evidence,
        )
results_table(
    [
        {
            "teachers k": k,
            "Prom-PATE minus scratch teachers": d.mean,
            "2 standard errors": 2 * d.se,
            "verdict": student_verdict[k],
        }
        for k, d in student_gain.items()
    ],
    caption="students, paired by eps and seed",
)

# %%
best_pate = [
    max(
        pate_runs[(k, kind)]["students"][i]["student_accuracy"]
        for k in TEACHER_COUNTS
        for kind in teacher_kinds
    )
    for i in range(len(EPS_GRID))
]
claim(
    "at every eps the best PATE student (over k and teacher kind) is below DP-SGD with "
    "the prompt",
    all(p < d for p, (d, _) in zip(best_pate, dpsgd["prompt + label map"])),
    best_pate=best_pate,
    dpsgd_prompt=[d for d, _ in dpsgd["prompt + label map"]],
)
saving = min(
    st["eps_data_dependent"] / st["eps"]
    for r in pate_runs.values()
    for st in r["students"]
)
claim(
    "the data-dependent analysis saves at most a quarter of epsilon on these votes",
    saving >= 0.75,
    smallest_ratio=saving,
)
glue("vp_k_many", ", ".join(map(str, many)))
glue(
    "vp_k_ahead",
    ", ".join(str(k) for k, v in student_verdict.items() if v == "Prom-PATE ahead"),
)
glue(
    "vp_k_tie",
    ", ".join(str(k) for k, v in student_verdict.items() if v.startswith("no "))
    or "none",
)
glue("vp_queries", QUERIES)
glue("vp_saving", 100 * (1 - saving))
for k, d in student_gain.items():
    glue(f"vp_student_gain_{k}", d.mean)

# %% [markdown]
# What the measurements say, in this toy:
#
# - **Prompt teachers are better teachers.** Each one sees only $400/k$ examples, and a learner on top
#   of the frozen model needs far fewer (Experiment 1): one prompt teacher is more accurate than one
#   scratch teacher at every $k$. Whether that makes a better *student* depends on $k$: Prom-PATE's
#   student was ahead with {glue:text}`vp_k_ahead` teachers, and no difference was detected with
#   {glue:text}`vp_k_tie` (the table above; the claims check that it is ahead from $k = 50$ on, and
#   behind nowhere). Which small $k$ land on which side moves with the partition of the private
#   data into slices: the permutation split this chapter used before found no difference at 10 or 25. The
#   student built on the prompt needs only {glue:text}`vp_queries` labels.
# - **PATE does not beat DP-SGD here.** A query's answer is only as good as the teachers' agreement,
#   and with 400 private examples more teachers means weaker ones: agreement stays low, the noise
#   needed for $\varepsilon$ swamps the margin, and the data-dependent analysis saves little (at most
#   {glue:text}`vp_saving:.0f`% of $\varepsilon$). The paper's setting differs in scale:
#   tens of thousands of private images and hundreds to a thousand teachers, each still accurate.
#   The next experiment shows, with the analysis alone, what more teachers of the same quality buy.
#
# ## Experiment 4: Confident-GNMax, data-dependent privacy and its sanitised release
#
# With the prompt teachers of the left panel above ($k = 50$ in the `book` profile) we answer the whole public pool with
# Confident-GNMax at $T = 0.7k$, $\sigma_1 = 0.16k$, $\sigma_2 = 0.08k$ (fractions we picked while building
# the toy, after seeing its votes: exactly the kind of tuning on private data the paper does and no
# analysis charges). The $\varepsilon$ reported for this run is the *realised* one: the threshold step of
# every query and GNMax on the answered ones, data-dependent (private) and data-independent.
#
# What the paper's experiments lead one to expect, and what would show it wrong here: the
# data-dependent cost should be well below the data-independent one where teachers agree, and its
# sanitised release should cost a little more than the private value but stay well below the
# data-independent $\varepsilon$. A release near or above the data-independent value, or a
# sensitivity bound that a single teacher breaks, would contradict it.
#
# To see how the cost moves with scale we then resample teachers *of the same quality* to larger
# ensembles (bootstrap over our teachers' predictions) and run only the analysis, with the
# *expected* cost. These are what-ifs, not guarantees: a bootstrap ensemble repeats teachers, so one
# private image would sit in several slices; the numbers forecast what $k$ independent teachers of
# the same quality, trained on more private data, would cost.

# %%
big = pate_runs[(k_main, "prompt teachers (Prom-PATE)")]
rng = np.random.default_rng(SEED)


def confident_parameters(k):
    """T, sigma_1, sigma_2 as fractions of k, fixed before any vote is drawn."""
    return 0.7 * k, 0.16 * k, 0.08 * k


def confident_eps(votes, k, answered=None, data_dependent=True):
    """(eps, order) of Confident-GNMax: realised given the answered mask, else the
    expected cost (a forecast)."""
    rdp = pate.confident_gnmax_rdp(
        votes,
        *confident_parameters(k),
        ORDERS,
        answered=answered,
        data_dependent=data_dependent,
    )
    return pate.eps_from_rdp(ORDERS, rdp, DELTA)


T, s1, s2 = confident_parameters(k_main)
answered, labels = pate.confident_gnmax(big["votes"], T, s1, s2, rng)
expected_answered = float(np.exp(pate.log_pr_answered(big["votes"], T, s1)).sum())
dep_eps, dep_order = confident_eps(big["votes"], k_main, answered)
ind_eps, _ = confident_eps(big["votes"], k_main, answered, data_dependent=False)
answered_accuracy = (
    float((labels[answered] == pool_labels.numpy()[answered]).mean())
    if answered.any()
    else 0.0
)
print(
    f"{k_main} prompt teachers, {len(pool)} queries: answered {int(answered.sum())} "
    f"(expected {expected_answered:.1f}); "
    f"label accuracy on answered {answered_accuracy:.3f} vs all plurality labels "
    f"{big['plurality_accuracy']:.3f}"
)
print(
    f"realised eps: data-dependent {dep_eps:.2f} (order {dep_order:g}, private), "
    f"data-independent {ind_eps:.2f}, delta = {DELTA:g}"
)

scale = {"k": [], "dependent": [], "independent": [], "answered": []}
for k_sim in run.pick(
    smoke=[k_main, 250], book=[k_main, 250, 1000], colab=[k_main, 250, 1000, 4000]
):
    pick = rng.integers(0, k_main, size=k_sim)
    votes_sim = vote_counts(big["predictions"][torch.as_tensor(pick)], CLASSES)
    d_eps, _ = confident_eps(votes_sim, k_sim)
    i_eps, _ = confident_eps(votes_sim, k_sim, data_dependent=False)
    T_sim, s1_sim, _ = confident_parameters(k_sim)
    ans = float(np.exp(pate.log_pr_answered(votes_sim, T_sim, s1_sim)).sum())
    for key, value in zip(scale, (k_sim, d_eps, i_eps, ans)):
        scale[key].append(value)

sanitized = None
conditions = check_conditions_gnmax(s2, CLASSES, dep_order)
if all(conditions):
    sanitized = sanitized_epsilon(
        big["votes"], k_main, T, s1, s2, dep_order, DELTA, rng, answered=answered
    )
    print(
        f"sanitised release at order {dep_order:g}: private RDP {sanitized.rdp:.3f}, "
        "smooth sensitivity "
        f"{sanitized.smooth_sensitivity:.2e} (beta {sanitized.beta:.4f}), noise "
        f"sigma_ss {sanitized.sigma_ss:.1f}; "
        f"released eps {sanitized.eps:.2f}, mean + 2 std {sanitized.eps_upper:.2f}"
    )
else:
    print(
        f"conditions C5-C6 fail for sigma2 = {s2:g} at order {dep_order:g}: no "
        f"sanitised release ({conditions})"
    )

# %% [markdown]
# The release rests on the sensitivity bound, so check it by brute force: for every query and every
# change of one teacher's vote, does the query's cost move by more than its bound? Once for the
# realised cost of an answered query (the worst case: threshold and GNMax terms) and once for the
# expected cost, on our votes and on 200 random histograms of as many teachers.

# %%
def per_query_costs(votes, k, order):
    """Threshold cost, GNMax cost and Pr[answered] of each query, at one order."""
    thr, gn, p = pate.confident_gnmax_query_costs(
        votes, *confident_parameters(k), [order]
    )
    return thr[:, 0], gn[:, 0], p


def bound_failures(votes, k, order):
    """Queries where some one-teacher change exceeds the bound: (realised, expected)."""
    T_k, s1_k, s2_k = confident_parameters(k)
    ls_t = local_sensitivity_threshold(votes, k, T_k, s1_k, order)[:, 0]
    ls_g = local_sensitivity_gnmax(votes, k, s2_k, order)[:, 0]
    owner, neighbours = pate.one_teacher_neighbours(votes)
    thr, gn, p = per_query_costs(votes, k, order)
    thr_n, gn_n, p_n = per_query_costs(neighbours, k, order)

    def worst_change(cost, cost_n):
        out = np.zeros(len(votes))
        np.maximum.at(out, owner, np.abs(cost_n - cost[owner]))
        return out

    tol = 1 + 1e-9
    realised = worst_change(thr + gn, thr_n + gn_n) > (ls_t + ls_g) * tol
    expected = worst_change(thr + p * gn, thr_n + p_n * gn_n) > (ls_t + p * ls_g) * tol
    return int(realised.sum()), int(expected.sum())


random_votes = np.vstack(
    [
        rng.multinomial(k_main, rng.dirichlet(np.full(CLASSES, a)))
        for a in rng.uniform(0.05, 2, 200)
    ]
).astype(float)
failures = {
    "our votes": bound_failures(big["votes"], k_main, dep_order),
    "random histograms": bound_failures(random_votes, k_main, dep_order),
}
results_table(
    [
        {
            "histograms": name,
            "queries": len(v),
            "bound fails, realised cost": f[0],
            "bound fails, expected cost": f[1],
        }
        for (name, f), v in zip(failures.items(), (big["votes"], random_votes))
    ],
    caption=f"one-teacher changes against the local sensitivity, order {dep_order:g}",
)

# %%
claim(
    "no one-teacher change moves a query's realised cost by more than its bound",
    all(f[0] == 0 for f in failures.values()),
    test="brute force over every one-teacher change",
    failures={k: f[0] for k, f in failures.items()},
)
claim(
    "the expected cost's per-query bound fails on some of the random histograms",
    failures["random histograms"][1] > 0,
    test="brute force over every one-teacher change",
    failures={k: f[1] for k, f in failures.items()},
)
glue("vp_expected_fail", failures["random histograms"][1])

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(scale["k"], scale["independent"], "o--", label="data-independent")
ax.plot(scale["k"], scale["dependent"], "o-", label="data-dependent")
for k_sim, d_eps, ans in zip(scale["k"], scale["dependent"], scale["answered"]):
    ax.annotate(
        f"{ans:.0f} answered",
        (k_sim, d_eps),
        textcoords="offset points",
        xytext=(4, 6),
        fontsize=7,
    )
ax.set(
    xscale="log",
    yscale="log",
    xlabel="teachers of the same quality (bootstrapped)",
    ylabel=rf"$\varepsilon$ for {len(pool)} queries",
    title=r"Confident-GNMax, $T = 0.7k$, $\sigma_1 = 0.16k$, $\sigma_2 = 0.08k$",
)
ax.legend()
plt.show()

# %%
for k_sim, d_eps, i_eps, ans in zip(*scale.values()):
    print(
        f"{k_sim:>5} teachers: eps data-dependent {d_eps:.3f}, data-independent "
        f"{i_eps:.3f}, "
        f"expected answers {ans:.1f}"
    )
fraction = [d / i for d, i in zip(scale["dependent"], scale["independent"])]
claim(
    "with the noise fixed relative to k, the data-independent epsilon falls as k grows",
    scale["independent"] == sorted(scale["independent"], reverse=True),
    eps=scale["independent"],
)
# With T and sigma_1 fixed fractions of k, a query whose plurality holds a fraction f of
# the teachers is answered with probability Phi((f - 0.7) / 0.16) whatever k: the
# bootstrapped ensembles' expected answers approach that limit as their vote fractions
# settle on the 50 teachers' own (small ensembles answer more: their noisy maximum is
# biased upwards).
plurality_fraction = np.asarray(big["votes"]).max(axis=1) / k_main
answered_limit = float(stats.norm.cdf((plurality_fraction - 0.7) / 0.16).sum())
claim(
    "the bootstrapped ensembles' expected number of answered queries approaches its "
    "large-k limit: within 10% of it at the largest k",
    abs(scale["answered"][-1] / answered_limit - 1) <= 0.1,
    answered=scale["answered"],
    limit=answered_limit,
)
glue("vp_answered_small", scale["answered"][0])
glue("vp_answered_large", scale["answered"][-1])
glue("vp_answered_limit", answered_limit)
claim(
    "the data-dependent epsilon stays between half and 90% of the data-independent one "
    "at every k",
    all(0.5 <= f <= 0.9 for f in fraction),
    fraction=fraction,
)
if sanitized is not None:
    claim(
        "the sanitised release costs more than the private data-dependent value",
        sanitized.eps > dep_eps,
        released=sanitized.eps,
        private=dep_eps,
    )
    claim(
        "the sanitised release (mean + 2 std) saves less than a tenth of the "
        "data-independent epsilon, or costs more",
        sanitized.eps_upper >= 0.9 * ind_eps,
        released_upper=sanitized.eps_upper,
        data_independent=ind_eps,
    )
    glue("vp_released_upper", sanitized.eps_upper)
glue("vp_realised_dep", dep_eps)
glue("vp_realised_ind", ind_eps)
glue("vp_fraction_lo", min(fraction))
glue("vp_fraction_hi", max(fraction))


# %% [markdown]
# With the noise fixed *relative* to $k$, labels stay as accurate and a similar number of queries
# is answered ({glue:text}`vp_answered_small:.1f` expected at the smallest $k$,
# {glue:text}`vp_answered_large:.1f` at the largest, approaching the limit
# {glue:text}`vp_answered_limit:.1f` set by the teachers' own agreement), but the margins between
# classes grow with $k$ in votes while one private example still moves one vote: the cost per answer, $\alpha/\sigma_2^2$, falls like $1/k^2$. The
# data-dependent bound stays a roughly constant fraction of the data-independent one (between
# {glue:text}`vp_fraction_lo:.2f` and {glue:text}`vp_fraction_hi:.2f`), because
# $q$ depends on margin$/\sigma_2$, which this scaling keeps fixed; it saves much more when teachers
# are nearly unanimous, which ours are not. Either way the regime where PATE wins needs private
# data for many *accurate* teachers, which is what 400 images cannot supply. The smooth-sensitivity
# release adds its own cost and noise on top of the private value, and its bound held for every
# one-teacher change we tried; the same bound written for the expected cost failed on
# {glue:text}`vp_expected_fail` of the 200 random histograms.
#
# For the run itself the expectation failed: the realised data-dependent $\varepsilon$ is
# {glue:text}`vp_realised_dep:.2f` against {glue:text}`vp_realised_ind:.2f` data-independent, but the
# sanitised release (mean + 2 standard deviations, the value one would plan with) is
# {glue:text}`vp_released_upper:.2f`. With 50 teachers that agree this little, sanitising the
# data-dependent cost costs more than it saves, and the data-independent $\varepsilon$ is the one to
# report. The paper's regime, hundreds of teachers that mostly agree, is where the release pays.
#
# ## Experiment 4b: PATE on the glyph world
#
# Experiments 3 and 4 could not let PATE win: 400 private images give at most a hundred weak
# teachers. The glyph world has no such limit, so here PATE gets {glue:text}`vp_pate_n` private
# images of the textured target of Experiment 2b, the setting in which the full-canvas prompt beat
# the label map under DP-SGD at $\varepsilon = 1$. Teachers of three kinds (a network from
# scratch, the label map alone, the full-canvas prompt with its label map; the colab profile adds
# the linear probe), $k$ of each on the same hash slices, all $k$ trained as one vectorised model
# ({func}`~trustml_ref.visual_prompting.train_teachers`: each teacher takes its own Adam steps on
# minibatches of its own slice). The student sees a public pool of unlabelled target images and
# asks about the first {glue:text}`vp_pate_queries` of them.
#
# The aggregator is Confident-GNMax with its parameters fixed before any vote exists:
# $T = 0.6k$ and $\sigma_1 = \sigma_2 = \sigma$, with $\sigma$ calibrated so that the
# data-independent cost of answering *every* query, $Q\alpha(1/\sigma^2 + 1/(2\sigma^2))$, is
# exactly the target $\varepsilon$ at $\delta = 10^{-5}$. That $\varepsilon$ is a guarantee under the
# same add/remove neighbour relation as DP-SGD's (one example moves one teacher's vote), so the
# students compare with Experiment 2b's DP-SGD learners at the same $(\varepsilon, \delta)$ and
# $N$. Beside it we report the realised data-dependent cost of the same answers, which is private
# until sanitised (Experiment 4). The student is the full-canvas prompt with its label map,
# trained on the answered labels; one round of pseudo-labels then adds the pool images it labels
# with confidence at least 0.9 on a weak view (a shift of at most one pixel), and the
# semi-supervised student trains on strong views of every image (a shift of up to two pixels, a
# cutout and noise, drawn afresh for every minibatch): the weak/strong pair of FixMatch
# {cite:p}`sohn2020fixmatch`, in one round instead of FixMatch's online loop. A control student gets the
# *true* labels of the same answered queries. The zero-label floor is the source model itself,
# reading the target through its ten digit classes.
#
# What we expect, written before the run (an exploratory run at two seeds informed it):
#
# 7. Prompt teachers are better teachers: their plurality is right on more queries than the
#    label-map teachers', at every $k$.
# 8. At this $N$ PATE does not reach DP-SGD: at $\varepsilon = 1$, DP-SGD's full-canvas prompt
#    (Experiment 2b) beats the best PATE student by more than two standard errors. The noise that
#    buys $\varepsilon = 1$ for {glue:text}`vp_pate_queries` queries is larger than most margins of
#    a few hundred teachers that each saw a few dozen images.
# 9. At $\varepsilon = 1$ the labels, not their number, hold the student back: the clean-label
#    control beats the student on the same queries.
#
# PATE would win here if its best student at $\varepsilon = 1$ came within two standard errors of
# DP-SGD; the paper's regime (tens of thousands of private images, teachers that mostly agree) is
# what the colab profile moves towards with larger $N$.

# %%
# private target images; the claims and the single-N tables read the largest
PATE_N = run.pick(smoke=[300], book=[5000], colab=[1000, 10_000, 50_000])
N_PATE = PATE_N[-1]
K_PATE = run.pick(smoke=[10, 20], book=[100, 250], colab=[100, 250, 1000])
EPS_PATE = run.pick(smoke=[2.0], book=[1.0, 4.0], colab=[0.5, 1.0, 2.0, 4.0])
EPS_COMPARE = run.pick(smoke=2.0, book=1.0, colab=1.0)  # DP-SGD ran (N_PATE, this)
QUERIES_G = run.pick(smoke=100, book=200, colab=200)  # fixed before any vote
POOL_G = run.pick(smoke=300, book=2000, colab=5000)  # unlabelled public images
PATE_EPOCHS, PATE_BATCH = run.pick(smoke=5, book=20, colab=20), 8
TEACHER_KINDS_G = run.pick(
    smoke=("scratch", "label map only", FULL),
    book=("scratch", "label map only", FULL),
    colab=("scratch", "label map only", FULL, "linear probe"),
)
x_pate, y_pate = target_glyphs(N_PATE, texture, SEED + 300)
x_pool, y_pool = target_glyphs(POOL_G, texture, SEED + 400)  # y_pool: scoring only
truth_g = y_pool[:QUERIES_G].numpy()
glue("vp_pate_n", N_PATE)
glue("vp_pate_queries", QUERIES_G)

# %% [markdown]
# The teachers and their votes: per $k$, the steps give each teacher about
# {glue:text}`vp_pate_epochs` passes over its slice whatever its size.

# %%
pate_votes = {}  # (N, k, kind) -> vote histograms on the queries, (QUERIES_G, 10)
glyph_teachers = {}  # at N_PATE: (k, kind) -> predictions, (k, QUERIES_G)
for n in PATE_N:
    x_n, y_n = (
        (x_pate, y_pate) if n == N_PATE else target_glyphs(n, texture, SEED + 300)
    )
    for k in tqdm(K_PATE, desc=f"teacher counts, N = {n}"):
        steps = max(1, round(PATE_EPOCHS * n / k / PATE_BATCH))
        for kind in TEACHER_KINDS_G:
            make, lr = GLYPH_LEARNERS[kind]
            teachers = train_teachers(
                make,
                x_n,
                y_n,
                k,
                steps=steps,
                batch_size=PATE_BATCH,
                lr=lr,
                seed=SEED,
                progress=False,
            )
            predictions = teachers.predict(x_pool[:QUERIES_G])
            pate_votes[(n, k, kind)] = vote_counts(predictions, 10)
            if n == N_PATE:
                glyph_teachers[(k, kind)] = predictions
glyph_votes = {key[1:]: v for key, v in pate_votes.items() if key[0] == N_PATE}
glue("vp_pate_epochs", PATE_EPOCHS)


def plurality_correct(k: int, kind: str) -> np.ndarray:
    """Per query: 1 where the teachers' plurality is the true class."""
    return (glyph_votes[(k, kind)].argmax(1) == truth_g).astype(float)


results_table(
    [
        {
            "teachers k": k,
            "teacher kind": kind,
            "one teacher": float((p == y_pool[:QUERIES_G]).float().mean()),
            "plurality": plurality_correct(k, kind).mean(),
            "mean plurality share": float((glyph_votes[(k, kind)].max(1) / k).mean()),
        }
        for (k, kind), p in glyph_teachers.items()
    ],
    caption=f"glyph PATE: teachers on the {QUERIES_G} queries ({N_PATE} private "
    "images; accuracy scored with labels no learner sees)",
)

# %% [markdown]
# The noise each $\varepsilon$ buys, and a check that it is calibrated: the data-independent cost
# of answering every query converts back to the target.

# %%
def confident_sigma(eps: float) -> float:
    """sigma_1 = sigma_2: GNMax's sigma for Q queries, widened by sqrt(1 + 1/2) for
    the threshold step's alpha / (2 sigma_1^2)."""
    return pate.calibrate_gnmax_sigma(QUERIES_G, eps, DELTA, ORDERS) * math.sqrt(1.5)


every = np.ones(QUERIES_G, dtype=bool)
worst = {
    eps: pate.eps_from_rdp(
        ORDERS,
        pate.confident_gnmax_rdp(
            np.zeros((QUERIES_G, 10)),
            0.0,
            confident_sigma(eps),
            confident_sigma(eps),
            ORDERS,
            answered=every,
            data_dependent=False,
        ),
        DELTA,
    )[0]
    for eps in EPS_PATE
}
# for exercise ex-vp-margin: the two-class margin GNMax keeps with probability 0.95
sigma_compare = confident_sigma(EPS_COMPARE)
margin_needed = stats.norm.ppf(0.95) * math.sqrt(2) * sigma_compare
glue("vp_pate_sigma_compare", sigma_compare)
glue("vp_pate_margin_needed", margin_needed)
glue("vp_pate_share_needed", (K_PATE[-1] + margin_needed) / (2 * K_PATE[-1]))
claim(
    "answering every query at the calibrated sigma costs exactly the target epsilon",
    all(abs(worst[e] / e - 1) < 1e-6 for e in EPS_PATE),
    eps=worst,
)
results_table(
    {"eps": EPS_PATE, "sigma_1 = sigma_2": [confident_sigma(e) for e in EPS_PATE]},
    caption=f"Confident-GNMax noise for {QUERIES_G} queries, delta = {DELTA:g}",
)


# %% [markdown]
# The students. Per teacher count, teacher kind, $\varepsilon$ and seed (the seed fixes the
# aggregator's noise and the student's training): the answered queries and their labels, a
# student on them, the semi-supervised student, and the clean-label control.

# %%
def pate_student(
    x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int = 30, augment=None
):
    """The full-canvas prompt with its label map, trained on (x, y) (on a fresh
    ``augment`` view of every minibatch, if given)."""
    torch.manual_seed(seed)
    make, lr = GLYPH_LEARNERS[FULL]
    return fit(
        make(), x, y, epochs=epochs, lr=lr, seed=seed, progress=False, augment=augment
    )


@torch.no_grad()
def pseudo_labelled(
    student, x: torch.Tensor, y: torch.Tensor, seed: int, tau: float = 0.9
):
    """(x, y) plus the pool images the student labels with confidence >= tau on a
    weak view (a shift of at most one pixel)."""
    weak = glyphs.weak_view(x_pool, torch.Generator().manual_seed(seed))
    confidence, label = torch.softmax(student(weak), 1).max(1)
    keep = confidence >= tau
    return torch.cat([x, x_pool[keep]]), torch.cat([y, label[keep]])


glyph_students = []
for (n, k, kind), votes in tqdm(pate_votes.items(), desc="students"):
    for eps in EPS_PATE:
        sigma = confident_sigma(eps)
        for s in range(SEEDS):
            rng = np.random.default_rng(s)
            answered, labels = pate.confident_gnmax(votes, 0.6 * k, sigma, sigma, rng)
            rdp = pate.confident_gnmax_rdp(
                votes, 0.6 * k, sigma, sigma, ORDERS, answered=answered
            )
            row = dict(n=n, k=k, kind=kind, eps=eps, seed=s)
            row["answered"] = int(answered.sum())
            row["answered_mask"] = answered
            row["eps_data_dependent"], row["order"] = pate.eps_from_rdp(
                ORDERS, rdp, DELTA
            )
            if answered.any():
                idx = torch.as_tensor(np.flatnonzero(answered))
                x_a, y_a = x_pool[idx], torch.as_tensor(labels[answered])
                student = pate_student(x_a, y_a, s)
                semi = pate_student(
                    *pseudo_labelled(student, x_a, y_a, s),
                    s,
                    epochs=15,
                    augment=glyphs.strong_view,
                )
                clean = pate_student(x_a, y_pool[idx], s)
                row["label accuracy"] = float((y_a == y_pool[idx]).float().mean())
                for name, model in (
                    ("student", student),
                    ("semi-supervised", semi),
                    ("clean labels", clean),
                ):
                    row[name] = accuracy(model, x_test_t, y_test_t)
            glyph_students.append(row)

# %% tags=["hide-input"]
with torch.no_grad():  # SOURCE_CHARS starts with the ten digits
    source_digit_logits = glyph_source(x_test_t)[:, : len(glyphs.DIGITS)]
zero_label = float((source_digit_logits.argmax(1) == y_test_t).float().mean())
glue("vp_pate_zero_label", zero_label)


def seed_values(k: int, kind: str, eps: float, column: str, n: int = N_PATE) -> list:
    """One column of the students' rows at (N, k, kind, eps), per seed (a run with no
    answer scores 0.1, chance)."""
    return [
        r.get(column, 0.1)
        for r in glyph_students
        if (r["n"], r["k"], r["kind"], r["eps"]) == (n, k, kind, eps)
    ]


def student_mean(k, kind, eps, column="student") -> tuple[float, float]:
    """Mean and std over seeds of one column."""
    v = seed_values(k, kind, eps, column)
    return float(np.mean(v)), float(np.std(v))


results_table(
    [
        {
            "teachers k": k,
            "teacher kind": kind,
            "eps": eps,
            "answered": np.mean(seed_values(k, kind, eps, "answered")),
            **{
                column: "{:.3f} ± {:.3f}".format(*student_mean(k, kind, eps, column))
                for column in (
                    "label accuracy",
                    "student",
                    "semi-supervised",
                    "clean labels",
                )
            },
            "data-dependent eps (private)": np.mean(
                seed_values(k, kind, eps, "eps_data_dependent")
            ),
        }
        for k in K_PATE
        for kind in TEACHER_KINDS_G
        for eps in EPS_PATE
    ],
    caption=f"glyph PATE students: test accuracy, mean ± std over {SEEDS} seeds; "
    f"zero-label floor (the source model) {zero_label:.3f}",
)

# %% [markdown]
# The three $\varepsilon$ of one run side by side: for the prompt teachers at the largest $k$, seed
# 0, the guarantee (data-independent, every query), the realised data-dependent cost (private)
# and its smooth-sensitivity release (Experiment 4), where conditions C5–C6 hold at the
# data-dependent optimum's order.

# %%
k_hi = K_PATE[-1]
three_eps = []
for run_0 in glyph_students:  # seed 0 of the prompt teachers at the largest k
    if (run_0["n"], run_0["k"], run_0["kind"], run_0["seed"]) != (
        N_PATE,
        k_hi,
        FULL,
        0,
    ):
        continue
    eps, order, sigma = run_0["eps"], run_0["order"], confident_sigma(run_0["eps"])
    row = {"eps (guarantee)": eps, "answered": run_0["answered"]}
    row["data-dependent (private)"] = run_0["eps_data_dependent"]
    row["order"] = order
    if all(check_conditions_gnmax(sigma, 10, order)):
        release = sanitized_epsilon(
            glyph_votes[(k_hi, FULL)],
            k_hi,
            0.6 * k_hi,
            sigma,
            sigma,
            order,
            DELTA,
            np.random.default_rng(1),
            answered=run_0["answered_mask"],
        )
        row["sanitised release"] = release.eps
        row["release, mean + 2 std"] = release.eps_upper
    three_eps.append(row)
results_table(
    three_eps, caption=f"{k_hi} prompt teachers: three epsilons of one run (seed 0)"
)

# %%
released = [r for r in three_eps if "sanitised release" in r]
glue("vp_pate_released_lo", min(r["release, mean + 2 std"] for r in released))
glue("vp_pate_released_eps_lo", min(r["eps (guarantee)"] for r in released))
claim(
    "where conditions C5-C6 hold, the sanitised release (mean + 2 std) is below the "
    "guarantee the noise was calibrated to",
    bool(released)
    and all(r["release, mean + 2 std"] < r["eps (guarantee)"] for r in released),
    released={r["eps (guarantee)"]: r["release, mean + 2 std"] for r in released},
)

# %%
for k in K_PATE:
    better = paired_difference(
        plurality_correct(k, FULL), plurality_correct(k, "label map only")
    )
    if k in (K_PATE[0], K_PATE[-1]):
        end = "lo" if k == K_PATE[0] else "hi"
        glue(f"vp_pate_plurality_gain_{end}", better.mean)
        glue(f"vp_pate_k_{end}", k)
    claim(
        f"{k} teachers: the prompt teachers' plurality is right on more queries than "
        "the label-map teachers'",
        better.lower > 0,
        test=better.test + " (queries)",
        **better.evidence,
    )


def runs_of(eps: float, column: str) -> dict:
    """(k, kind) -> the per-seed values of one column at one eps."""
    return {
        (k, kind): seed_values(k, kind, eps, column)
        for k in K_PATE
        for kind in TEACHER_KINDS_G
    }


claim(
    "the realised data-dependent epsilon is below the guarantee in every run",
    all(r["eps_data_dependent"] < r["eps"] for r in glyph_students),
    worst_ratio=max(r["eps_data_dependent"] / r["eps"] for r in glyph_students),
)
rows_with_answers = [r for r in glyph_students if "student" in r and r["n"] == N_PATE]
semi_gain = paired_difference(
    [r["semi-supervised"] for r in rows_with_answers],
    [r["student"] for r in rows_with_answers],
)
students = {
    (key, column): v
    for column in ("student", "semi-supervised")
    for key, v in runs_of(EPS_COMPARE, column).items()
}
best = max(students, key=lambda key: np.mean(students[key]))
dpsgd_prompt = dp_glyph_runs[(N_PATE, EPS_COMPARE), FULL]
clean_runs = runs_of(EPS_COMPARE, "clean labels")
clean_pairs = [
    pair
    for key, runs in runs_of(EPS_COMPARE, "student").items()
    for pair in zip(clean_runs[key], runs)
]
glue("vp_pate_semi_gain", semi_gain.mean)
glue("vp_pate_eps_compare", EPS_COMPARE)
glue("vp_pate_best", float(np.mean(students[best])))
glue("vp_pate_best_name", f"{best[0][1]} teachers, k = {best[0][0]}, {best[1]}")
glue("vp_pate_dpsgd", float(np.mean(dpsgd_prompt)))
glue("vp_pate_clean_gain", float(np.mean([c - s for c, s in clean_pairs])))
if SEEDS > 1 and (N_PATE, EPS_COMPARE) == (5000, 1.0):  # predictions 8, 9 name it
    claim(
        "the pseudo-label round adds less than 0.05 to the student (upper end of two "
        "standard errors)",
        semi_gain.upper < 0.05,
        test=semi_gain.test + " (every teacher count, kind, eps and seed)",
        **semi_gain.evidence,
    )
    gap = mean_difference(dpsgd_prompt, students[best])
    claim(
        "N = 5000, eps = 1: DP-SGD's full-canvas prompt beats the best PATE student",
        gap.lower > 0,
        test=gap.test,
        best_pate=f"{best}",
        **gap.evidence,
    )
    claim(
        "N = 5000, eps = 1: every PATE student is below the zero-label floor",
        all(np.mean(v) < zero_label for v in students.values()),
        best_pate=float(np.mean(students[best])),
        zero_label=zero_label,
    )
    label_gap = paired_difference(*zip(*clean_pairs))
    claim(
        "N = 5000, eps = 1: the clean-label control beats the PATE student on the "
        "same queries",
        label_gap.lower > 0,
        test=label_gap.test + " (teacher count, kind and seed)",
        **label_gap.evidence,
    )

# %%
results_table(
    [
        {
            "teachers k": k,
            "eps": eps,
            "best student (mean)": max(
                np.mean(v) for (kk, _), v in runs_of(eps, "student").items() if kk == k
            ),
            "winner among teacher kinds (2 standard errors)": winner(
                {kind: runs_of(eps, "student")[(k, kind)] for kind in TEACHER_KINDS_G}
            ),
        }
        for k in K_PATE
        for eps in EPS_PATE
    ],
    caption="which teachers make the best student (seeds paired by the aggregator's "
    "noise seed)",
)


# %% [markdown]
# PATE against DP-SGD by the size of the private set and the budget: for each $(N,
# \varepsilon)$ the best PATE student (over teacher counts, kinds and the pseudo-label round)
# against the best DP-SGD learner of Experiment 2b, where DP-SGD ran at that setting. Both are
# picked by their means, and PATE picks among more configurations, which favours PATE. The
# winner is decided at two Welch standard errors over the seeds (the two methods' seeds are
# not paired). The book runs one $N$; the colab profile runs
# $N \in \{1000, 10\,000, 50\,000\}$ at every $\varepsilon$.


# %%
def best_of(runs: dict) -> tuple[str, list]:
    """The configuration with the best mean, and its values per seed."""
    best = max(runs, key=lambda key: np.mean(runs[key]))
    return best, runs[best]


def pate_against_dpsgd(n: int, eps: float) -> dict:
    """One row of the table: the best PATE student and DP-SGD learner at (n, eps)."""
    pate_name, pate_runs = best_of(
        {
            f"{kind} teachers, k = {k}, {column}": seed_values(k, kind, eps, column, n)
            for k in K_PATE
            for kind in TEACHER_KINDS_G
            for column in ("student", "semi-supervised")
        }
    )
    row = {"N": n, "eps": eps, "best PATE student": pate_name}
    row["PATE"] = f"{np.mean(pate_runs):.3f} ± {np.std(pate_runs):.3f}"
    if ((n, eps), FULL) not in dp_glyph_runs:
        return row | {"best DP-SGD learner": "not run", "DP-SGD": "-", "winner": "-"}
    dp_name, dp_runs = best_of(
        {name: dp_glyph_runs[(n, eps), name] for name in DP_GLYPH_LEARNERS}
    )
    row["best DP-SGD learner"] = dp_name
    row["DP-SGD"] = f"{np.mean(dp_runs):.3f} ± {np.std(dp_runs):.3f}"
    if SEEDS < 2:
        return row | {"winner": "one seed"}
    gap = mean_difference(pate_runs, dp_runs)
    return row | {
        "winner": "PATE" if gap.lower > 0 else "DP-SGD" if gap.upper < 0 else "tie"
    }


results_table(
    [pate_against_dpsgd(n, eps) for n in PATE_N for eps in EPS_PATE],
    caption=f"PATE against DP-SGD on the textured glyphs, delta = {DELTA:g}: test "
    f"accuracy, mean ± std over {SEEDS} seeds; zero-label floor {zero_label:.3f}",
)

# %% [markdown]
# DP-SGD through the same student: the full-canvas prompt trained with DP-SGD on the same
# {glue:text}`vp_pate_n` private images at the same $(\varepsilon, \delta)$ labels the whole public
# pool (post-processing: no further privacy cost), and the PATE students' architecture trains on
# those labels. If the student lost much against the DP-SGD model it learns from, the comparison
# of PATE and DP-SGD above would partly measure the student.

# %%
make_dp, lr_dp = DP_GLYPH_LEARNERS[FULL]
dpsgd_students = []
for s in range(SEEDS):
    result = train_dpsgd(
        make_dp(),
        x_pate,
        y_pate,
        epsilon=EPS_COMPARE,
        delta=DELTA,
        epochs=max(1, round(DP_GLYPH_STEPS * 64 / N_PATE)),
        lr=lr_dp,
        seed=s,
        progress=False,
    )
    pool_labels_dp = predict(result.model, x_pool)
    dpsgd_students.append(
        {
            "DP-SGD model": accuracy(result.model, x_test_t, y_test_t),
            "its pool labels": float((pool_labels_dp == y_pool).float().mean()),
            "student on them": accuracy(
                pate_student(x_pool, pool_labels_dp, s, epochs=15), x_test_t, y_test_t
            ),
        }
    )
results_table(
    dpsgd_students,
    caption=f"DP-SGD at eps = {EPS_COMPARE:g} on the same {N_PATE} images, and the "
    "same student on its pool labels (one row per seed)",
)

# %%
dpsgd_student_runs = [r["student on them"] for r in dpsgd_students]
glue("vp_pate_dpsgd_student", float(np.mean(dpsgd_student_runs)))
if SEEDS > 1 and (N_PATE, EPS_COMPARE) == (5000, 1.0):
    student_loss = paired_difference(
        [r["DP-SGD model"] for r in dpsgd_students], dpsgd_student_runs
    )
    claim(
        "the student loses less than 0.05 against the DP-SGD model whose pool labels "
        "it learns (upper end of two standard errors)",
        student_loss.upper < 0.05,
        test=student_loss.test + " (seeds)",
        **student_loss.evidence,
    )
    versus = mean_difference(dpsgd_student_runs, students[best])
    claim(
        "N = 5000, eps = 1: the same student beats the best PATE student when DP-SGD "
        "labels its pool",
        versus.lower > 0,
        test=versus.test,
        **versus.evidence,
    )

# %% [markdown]
# What the run shows. Prompt teachers are the better teachers: their plurality is right on
# {glue:text}`vp_pate_plurality_gain_lo:+.2f` more of the queries than the label-map teachers'
# with {glue:text}`vp_pate_k_lo` teachers and {glue:text}`vp_pate_plurality_gain_hi:+.2f` with
# {glue:text}`vp_pate_k_hi` (prediction 7). But at
# $\varepsilon =$ {glue:text}`vp_pate_eps_compare` the best PATE student,
# {glue:text}`vp_pate_best:.3f` ({glue:text}`vp_pate_best_name`), stays below DP-SGD's full-canvas
# prompt on the same target, $N$ and $(\varepsilon, \delta)$, {glue:text}`vp_pate_dpsgd:.3f`
# (prediction 8), and the same queries with their true labels would have given the student
# {glue:text}`vp_pate_clean_gain:+.3f`
# (prediction 9): the aggregator's noise, calibrated for a guarantee, is larger than the margins of
# teachers this weak, and the threshold step, under the same noise, does not keep out the queries
# on which the teachers split (the label accuracy column). Worse, every student at this
# $\varepsilon$ is below the zero-label floor, {glue:text}`vp_pate_zero_label:.3f`: the source
# model reading the textured digits through its own ten digit classes, with no private label at
# all. Noisy labels teach a fresh label map less than the source model already knows. The
# pseudo-label round (labels from a weak view, training on strong views) changes the student by
# {glue:text}`vp_pate_semi_gain:+.3f` on average (paired over every run; the claim is one-sided, less
# than 0.05 added): a student confident about pool images mostly repeats what it already knows,
# its mistakes included. The realised
# data-dependent $\varepsilon$ is below the guarantee in every run, but it is private until
# sanitised; here the sanitised release stays below the guarantee too (at $\varepsilon =$
# {glue:text}`vp_pate_released_eps_lo` it is {glue:text}`vp_pate_released_lo:.2f` at mean + 2
# standard deviations), unlike the fifty weakly agreeing teachers of Experiment 4. Either way the
# students are the same: the accounting changes what one may report, not what was learnt. The
# comparison does not hinge on the student: trained on the pool labels of the DP-SGD model, the
# same student reaches {glue:text}`vp_pate_dpsgd_student:.3f` (claims above).
#
# So with {glue:text}`vp_pate_n` private images the glyph world repeats Experiment 3's verdict for a
# stated reason: PATE needs teachers that agree by margins larger than the guarantee's noise, which
# takes more private data per teacher than this $N$ leaves a few hundred teachers. The colab
# profile fills the table of PATE against DP-SGD for $N \in \{1000, 10\,000, 50\,000\}$ with
# up to 1,000 teachers and $\varepsilon \in \{0.5, 1, 2, 4\}$ (its claims are not checked:
# the book's predictions name the book's $N$).

# %% [markdown]
# ## On Colab: CIFAR-10 through an ImageNet model
#
# The `colab` profile adds the paper's real setting on a GPU: CIFAR-10 as the private task and a
# frozen ImageNet ResNet-18 from torchvision as the source model (its batch norm in eval mode),
# the prompt as a 16-pixel border around the image resized to 192 inside 224, and a label map from
# 1,000 ImageNet classes to 10. Both the data and the weights are downloaded, so this cell does
# nothing in the `book` and `smoke` profiles; it reuses exactly the functions used above.

# %%
colab_results = None
if run.profile == "colab":
    from trustml_ref.visual_prompting.sources import cifar10_task, imagenet_source

    if run.device.type != "cuda":
        warnings.warn(
            "the ImageNet part runs without a GPU: expect hours, not minutes "
            "(Colab: Runtime > Change runtime type > GPU)",
            stacklevel=1,
        )

    # at smoke sizes (as the tests run this cell on stand-ins) a few images and epochs
    n_private, n_public, n_test = run.pick(
        smoke=(32, 16, 16), book=(10_000, 1_000, 2_000), colab=(10_000, 1_000, 2_000)
    )
    cifar_epochs, n_cifar_teachers = run.pick(smoke=(1, 2), book=(5, 50), colab=(5, 50))
    cifar = cifar10_task(n_private, n_public, n_test, seed=SEED)
    imagenet = imagenet_source("resnet18").to(run.device)

    def cifar_prompted():
        return PromptedClassifier(imagenet, VisualPrompt(3, 224, 192), 1000, 10).to(
            run.device
        )

    colab_results = {"dpsgd": {}, "prom_pate": {}}
    for eps in tqdm(EPS_GRID, desc="CIFAR-10 DP-SGD"):
        result = train_dpsgd(
            cifar_prompted(),
            cifar.x_private,
            cifar.y_private,
            epsilon=eps,
            delta=DELTA,
            epochs=cifar_epochs,
            batch_size=256,
            lr=0.05,
            seed=SEED,
        )
        colab_results["dpsgd"][eps] = accuracy(result.model, cifar.x_test, cifar.y_test)
    cifar_teachers = train_teachers(
        cifar_prompted,
        cifar.x_private,
        cifar.y_private,
        n_cifar_teachers,
        steps=run.pick(smoke=2, book=100, colab=100),
        batch_size=16,
        lr=0.05,
        seed=SEED,
        teachers_per_call=5,
    )
    cifar_votes = vote_counts(cifar_teachers.predict(cifar.x_public, 2048), 10)
    for eps in EPS_GRID:
        sigma = pate.calibrate_gnmax_sigma(len(cifar_votes), eps, DELTA, ORDERS)
        labels = torch.as_tensor(
            pate.gnmax(cifar_votes, sigma, np.random.default_rng(SEED))
        )
        student = fit(
            cifar_prompted(),
            cifar.x_public,
            labels,
            epochs=2 * cifar_epochs,
            lr=0.05,
            progress=False,
        )
        colab_results["prom_pate"][eps] = accuracy(student, cifar.x_test, cifar.y_test)
    print("CIFAR-10 test accuracy by epsilon:", colab_results)
else:
    print(
        "CIFAR-10 with an ImageNet model runs in the colab profile only (it downloads "
        "data and weights)."
    )

# %% [markdown]
# ## The batch-norm trap
#
# Why the guard exists, measured: in training mode a batch-norm layer makes example 0's output
# depend on example 1's input; in eval mode it does not. Then the guard refuses the first case.

# %%
bn_backbone = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1),
    torch.nn.BatchNorm2d(4),
    torch.nn.ReLU(),
    torch.nn.Flatten(),
    torch.nn.Linear(4 * CANVAS * CANVAS, 10),
)
coupling = {}
for mode in ("train", "eval"):
    bn_backbone.train(mode == "train")
    xb = torch.rand(4, 1, CANVAS, CANVAS, requires_grad=True)
    bn_backbone(xb)[0].sum().backward()
    coupling[mode] = float(xb.grad[1:].abs().sum())
    print(
        f"batch norm in {mode} mode: |d output_0 / d inputs of the other examples| = "
        f"{coupling[mode]:.3g}"
    )
guarded = PromptedClassifier(bn_backbone, VisualPrompt(1, CANVAS, INNER), 10, CLASSES)
# what a stray model.backbone.train() or a framework callback does
guarded.backbone[1].train()
try:
    guarded(x_priv[:2])
    guard_fired = False
except RuntimeError as err:
    guard_fired = True
    print("guard:", err)

# %% [markdown]
# ## What the toy shows, and what the paper claims
#
# {cite:t}`li2023visualprompting` report that prompting a frozen ImageNet model, trained with DP-SGD or
# as PATE teachers, beats training from scratch under the same budget, and that Prom-PATE gives
# their best privacy-utility trade-off on CIFAR-10 and on cross-domain medical and satellite data.
# Here we measured the first part (transfer beats scratch when labels per learner are few, and
# prompt teachers beat scratch teachers) but not the second: at 400 private images PATE trails
# DP-SGD, under DP-SGD a linear probe beats the prompt (by {glue:text}`vp_dp_probe_gain:.0f` points
# on average), and the prompt itself added nothing over the label map in this toy. The toy cannot
# let the prompt win for a structural reason: its target classes are unions of the source's own
# digits, so a label map nearly solves the task and the prompt has no domain gap to bridge.
# Experiment 1b gives it one: where the gap is one additive pattern, a full-canvas prompt closes
# it, without privacy and, given enough data or budget, under DP-SGD (Experiment 2b). PATE on that
# world (Experiment 4b) gets better teachers from the prompt, but at 5,000 private images and
# $\varepsilon = 1$ its students still trail DP-SGD: the paper's Prom-PATE result needs teachers
# that agree by wider margins than this $N$ allows, which the colab profile tests at larger $N$.
# Two caveats of the
# paper's evaluation, which this chapter shares and states: accuracy is reported on the test split with no separate
# validation split for choosing hyper-parameters, and the Confident-GNMax parameters are tuned on the
# private votes, a privacy cost the analysis does not charge.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-vp-q2
#
# For two classes with votes $(n_1, n_2)$, $n_1 > n_2$, show that {eq}`eq-pate-q` is exact, not just a
# bound. Evaluate it for $(30, 20)$ and $\sigma = 6$ and compare with the first line of the numerical check.
# ```
#
# ```{solution} ex-vp-q2
# :class: dropdown
#
# With two classes GNMax errs exactly when $Z_2 - Z_1 \ge n_1 - n_2$, and $Z_2 - Z_1 \sim \mathcal N(0, 2\sigma^2)$;
# the union bound has one term, so it is an equality. $\Pr[\mathcal N(0, 72)\ge 10] = \tfrac12\operatorname{erfc}(10/12)
# \approx 0.120$. The check uses five classes with three at zero votes, which adds three terms of
# $\Pr[\mathcal N(0,72)\ge 30] \approx 2\cdot10^{-4}$ each, so bound and sampled rate agree closely.
# ```
#
# ```{exercise}
# :label: ex-vp-eps-hand
#
# A teacher ensemble answers 100 queries with GNMax at $\sigma = 40$. Compute the data-independent
# $\varepsilon$ at $\delta = 10^{-5}$ by minimising {eq}`eq-rdp-eps` over $\alpha$ by hand (treat $\alpha$ as continuous),
# then check with `pate.eps_from_rdp`. How many queries can you afford at $\varepsilon = 2$?
# ```
#
# ```{solution} ex-vp-eps-hand
# :class: dropdown
#
# $\mathrm{RDP}(\alpha) = 100\alpha/1600 = \alpha/16$. Minimising $\alpha/16 + \ln(10^5)/(\alpha - 1)$ gives
# $\alpha - 1 = \sqrt{16\ln 10^5} \approx 13.6$, so $\varepsilon \approx 14.6/16 + 11.51/13.6 \approx 0.91 + 0.85 = 1.76$.
# `pate.eps_from_rdp(orders, 100 * orders / 40**2, 1e-5, "pate")` agrees up to the grid of orders (the
# default conversion, Balle et al.'s, gives less). For
# $\varepsilon = 2$: $Q\alpha/1600 + 11.51/(\alpha - 1)$ at its minimum is $Q/1600 + 2\sqrt{11.51\,Q/1600}$; setting it to 2
# gives $Q \approx 127$ (`pate.calibrate_gnmax_sigma` with `"pate"` solves the inverse problem).
# ```
#
# ```{exercise}
# :label: ex-vp-bn
#
# Show that with a batch-norm layer in training mode, removing one example from a batch can change
# *every* other example's clipped gradient, so the sensitivity of the clipped sum in {eq}`eq-dpsgd` is
# not $C$. What is a valid bound on the change of the sum, and why do eval-mode batch norm and
# GroupNorm not have this problem?
# ```
#
# ```{solution} ex-vp-bn
# :class: dropdown
#
# In training mode the layer computes $(h_i - \mu_B)/\sigma_B$ with $\mu_B, \sigma_B$ from the whole batch;
# removing example $j$ changes $\mu_B$ and $\sigma_B$, hence $h_i$'s normalised value, the loss $\ell_i$ and the
# gradient $g_i$ for every $i$ (the cell above measures the coupling). Each clipped gradient still has
# norm at most $C$, so the sum can move by up to $2C$ per remaining example plus $C$ for the removed
# one: $(2|B| - 1)C$, not $C$. Noise calibrated to $C$ is then far too small. Eval-mode batch norm
# uses fixed running statistics, and GroupNorm normalises within one example, so $\ell_i$ depends
# on $x_i$ alone.
# ```
#
# ```{exercise}
# :label: ex-vp-scale
#
# Rerun Experiment 3 with the private data cut to half (use `world.x_private[:200]`). Which learner
# loses most, the scratch teachers or the prompt teachers, and what does this predict for the
# comparison of PATE and DP-SGD as the private data set grows?
# ```
#
# ```{solution} ex-vp-scale
# :class: dropdown
#
# Halving the data halves each teacher's slice, and Experiment 1 already measured what halving the
# examples of one learner costs (mean over seeds): {glue:text}`vp_halving`. Neither kind loses
# more at every slice size in this toy, so the answer depends on $k$, and the rerun is how to find
# it at yours. What the argument of the paper predicts, and this chapter did not measure: with more
# private data PATE can use more teachers without weakening them, agreement and with it the
# data-dependent saving grow (Experiment 4's what-ifs), while DP-SGD gains only through a smaller
# sampling rate; the paper reports PATE ahead at CIFAR-10's scale.
# ```
#
# ```{exercise}
# :label: ex-vp-margin
#
# In Experiment 4b the aggregator's noise at $\varepsilon =$ {glue:text}`vp_pate_eps_compare` is
# $\sigma_2 =$ {glue:text}`vp_pate_sigma_compare:.1f` (the noise table). Take two classes: how
# large must the plurality's margin $n_1 - n_2$ be for GNMax to return the plurality with
# probability at least 0.95? With $k =$ {glue:text}`vp_pate_k_hi` teachers split between the two
# classes, what share of them must vote for the plurality? Compare with the mean plurality share
# in the teacher table, and say what this predicts for the students.
# ```
#
# ```{solution} ex-vp-margin
# :class: dropdown
#
# GNMax returns the other class when $Z_2 - Z_1 \ge n_1 - n_2$ with $Z_2 - Z_1 \sim \mathcal N(0,
# 2\sigma_2^2)$ (exercise {ref}`ex-vp-q2`), so the margin must satisfy $n_1 - n_2 \ge
# \Phi^{-1}(0.95)\sqrt2\,\sigma_2 \approx 2.33\,\sigma_2 =$
# {glue:text}`vp_pate_margin_needed:.0f` votes. With $n_1 + n_2 = k$ that is a share $n_1/k \ge
# (k + 2.33\sigma_2)/(2k) =$ {glue:text}`vp_pate_share_needed:.2f` (a share above 1 cannot be
# reached at all). The teachers' mean plurality share in the table is far below it, so most
# answered labels at this $\varepsilon$ are close to a coin flip among the classes the teachers
# split over, which is what the label accuracy column and prediction 9 show. The margin grows
# with $\sqrt Q$ through $\sigma_2$ and the votes grow with $k$, so PATE at a fixed
# $\varepsilon$ needs more teachers that stay accurate: more private data.
# ```
#
# ```{exercise}
# :label: ex-vp-texture
#
# In Experiment 1b the texture maps an image to $\operatorname{clip}(x + aT)$ with $a = 0.5$ and
# $|T| \le 1$. Which full-canvas prompt $W$ undoes it exactly on the pixels that were not clipped,
# and can $\tanh$ represent it? What does it leave behind on the clipped pixels, and why can the
# border prompt not do the same?
# ```
#
# ```{solution} ex-vp-texture
# :class: dropdown
#
# Adding $\tanh(W) = -aT$ gives back $x$ wherever $0 \le x + aT \le 1$; since $|aT| \le 0.5 < 1$,
# $W = \operatorname{artanh}(-aT)$ exists and is bounded, so gradient descent can reach it. Where
# the sum was clipped the information is gone: dark background under a negative texture was
# clipped to 0 and comes back as $+a|T|$, a faint copy of the pattern, and bright ink under a
# positive texture comes back darker. In the target images {glue:text}`vp_glyph_clipped:.0%` of
# the pixels were clipped, which is why the learnt prompt gets close to, not exactly to,
# the accuracy without texture. The border prompt adds nothing inside the window where the glyph
# sits ($M = 0$ there), so the texture on the glyph stays; all it can do is move the source
# model's features by what it adds around them.
# ```

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    motivation={
        "nonprivate": motivation_clear,
        "dpsgd": motivation_dp,
        "eps": EPS_GRID[0],
    },
    grad_gap=grad_gap,
    q_slack=q_slack,
    shots=shots,
    few_shot={k: [m for m, _ in v] for k, v in few_shot.items()},
    eps_grid=EPS_GRID,
    dpsgd={k: [m for m, _ in v] for k, v in dpsgd.items()},
    dpsgd_spent_over_target=max(spent / target for target, spent in dpsgd_spent),
    pate={
        f"{k}|{kind}": {
            "teacher_accuracy": r["teacher_accuracy"],
            "students": r["students"],
        }
        for (k, kind), r in pate_runs.items()
    },
    confident={
        "k": k_main,
        "answered": int(answered.sum()),
        "answered_accuracy": answered_accuracy,
        "eps_dependent": dep_eps,
        "eps_independent": ind_eps,
    },
    scale=scale,
    sensitivity_failures={
        name: {"realised": f[0], "expected": f[1]} for name, f in failures.items()
    },
    sanitized=None
    if sanitized is None
    else {
        "eps": sanitized.eps,
        "eps_upper": sanitized.eps_upper,
        "rdp": sanitized.rdp,
        "rdp_release": sanitized.rdp_release,
    },
    bn_coupling=coupling,
    guard_fired=guard_fired,
    colab=colab_results,
)

# %% [markdown]
# ## Summary
#
# - A visual prompt {eq}`eq-vp` and a label map train a few hundred parameters on top of a frozen
#   model; their per-example gradient {eq}`eq-vp-grad` is elementwise, which is all DP-SGD needs. A
#   frozen batch-norm layer left in training mode silently breaks the per-example premise: guard it.
# - PATE's GNMax costs $\alpha/\sigma^2$ per answer whatever the votes; when teachers agree, the bound
#   {eq}`eq-pate-q` and Theorem 6 {eq}`eq-pate-thm6` make the data-dependent cost smaller, and
#   smooth sensitivity lets that cost be published: the *realised* cost, whose per-query
#   sensitivity bound holds (checked by brute force), not the expected one, whose bound fails.
#   Confident-GNMax spends little on queries the teachers disagree on.
# - Privacy statements need a unit and a neighbour relation: one image, added or removed. Slices
#   assigned by a hash of each image's id make one image change one teacher; both methods are
#   converted to $(\varepsilon, \delta)$ the same way {eq}`eq-rdp-eps-balle`.
# - Measured here: the frozen source model beats training from scratch when each learner has few
#   labels, so prompt teachers beat scratch teachers; with only 400 private images PATE trails
#   DP-SGD; the analysis shows the cost falling like $1/k^2$ with more teachers of the same quality,
#   which is what a larger private data set buys.
# - Whether the prompt helps depends on the gap: on glyphs in unseen fonts under a fixed additive
#   texture, a full-canvas prompt beats the label map and the linear probe and comes close to
#   fine-tuning, while the paper's border prompt, which cannot reach the glyph, does not; under
#   contrast inversion neither prompt beats a network from scratch (claims of Experiment 1b).
#   Under DP-SGD that lead needs data or budget: at the strictest setting it is gone, with a
#   looser $\varepsilon$ or five times the data it is back, and fine-tuning every weight is the
#   worst transfer learner (Experiment 2b). PATE on the textured glyphs (Experiment 4b): prompt
#   teachers' pluralities are right more often than label-map teachers', yet at 5,000 private
#   images and a guaranteed $\varepsilon = 1$ the students trail DP-SGD, and their labels (not
#   their number) are what holds them back.
#
# ## References
#
# - {cite:t}`li2023visualprompting`: visual prompting under differential privacy, Prom-PATE.
# - {cite:t}`papernot2017semi` and {cite:t}`papernot2018scalable`: PATE, GNMax, Confident-GNMax, the data-dependent analysis and smooth-sensitivity release.
# - {cite:t}`abadi2016deep`: DP-SGD. {cite:t}`yousefpour2021opacus`: Opacus.
# - {cite:t}`mironov2017renyi`: Rényi differential privacy; {cite:t}`balle2020hypothesis`: the tighter RDP conversion.
# - {cite:t}`nissim2007smooth`: smooth sensitivity. {cite:t}`elsayed2019adversarial` and {cite:t}`bahng2022visual`: reprogramming and visual prompts.
