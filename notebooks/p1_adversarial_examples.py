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
# (primer-adversarial)=
# # Primer P1: adversarial examples and threat models
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/p1_adversarial_examples.ipynb)

# %% [markdown]
# **Summary.** An accurate classifier can be made wrong by a perturbation too small to matter to a
# person. This primer shows it on handwritten digits, derives why it happens for the simplest model
# (a linear one, where the worst perturbation has a closed form), and names the ingredients of a
# *threat model*: what may change, by how much, and what the attacker knows. The robustness chapters
# of the book all start from these definitions.
#
# **Learning goals.** After this primer you can
# - state a threat model: perturbation set, budget, attacker knowledge;
# - derive the worst $\ell_\infty$ perturbation of a linear classifier and its margin drop;
# - run projected gradient descent on inputs and read an accuracy-versus-budget curve.
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
import torch
from IPython.display import display
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue, paired_difference
from trustml_ref.data import digits
from trustml_ref.io import record_results
from trustml_ref.tables import results_table
from trustml_ref.weight_robustness import (
    class_margins,
    closed_form_margin_drop,
    mlp_forward,
    pgd_attack,
    worst_margin,
)
from trustml_ref.weight_robustness.training import (
    adversarial_loss,
    cross_entropy_loss,
    train,
)

run = trustml_ref.setup(PROFILE, SEED, DEVICE)
EPOCHS = run.pick(smoke=8, book=40, colab=40)
STEPS = run.pick(smoke=10, book=20, colab=40)
data = digits(seed=SEED)
x_test, y_test = data.x_test, data.y_test

# %% [markdown]
# ## Motivation: small changes, wrong answers
#
# A small ReLU network reaches high accuracy on 8×8 digits (pixels in $[0, 1]$). We then let an
# attacker change every pixel by at most $\varepsilon$ and search for the change that hurts most (the
# attacked pixels are not clipped back to $[0, 1]$ here; the images below show them clipped).

# %%
model = train(
    (64, 32, 32, 10),
    data.x_train,
    data.y_train,
    cross_entropy_loss(),
    epochs=EPOCHS,
    generator=run.generator,
    desc="training",
)
W = [w.detach() for w in model.weights]
clean_acc = float((mlp_forward(W, x_test).argmax(1) == y_test).float().mean())
eps_show = 0.1
attack = pgd_attack(
    W, x_test, y_test, 0.0, eps_show, steps=STEPS, generator=run.generator
)
flipped = (attack.margins <= 0).nonzero().squeeze(1)[:5]

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 5, figsize=(8, 3.4))
for col, i in enumerate(flipped.tolist()):
    x_adv = x_test[i] + attack.input_delta[i]
    for row, image in enumerate((x_test[i], x_adv)):
        axes[row, col].imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        label = int(mlp_forward(W, image[None]).argmax())
        axes[row, col].set_title(
            f"{'clean' if row == 0 else 'attacked'}: {label}", fontsize=8
        )
        axes[row, col].axis("off")
plt.suptitle(f"every pixel moved by at most {eps_show}")
plt.show()

# %%
print(
    f"clean accuracy {clean_acc:.3f}; under an l_inf attack of {eps_show}: "
    f"{attack.accuracy:.3f}"
)


# %% [markdown]
# ## Derivation: the linear case
#
# A **threat model** fixes three things: the *perturbation set* (here the $\ell_\infty$ ball
# $\{\hat x : \|\hat x - x\|_\infty \le \varepsilon\}$; other chapters perturb weights, quantum states or
# prompts), the *budget* $\varepsilon$, and the attacker's *knowledge* (white box: the model and its
# gradients, as in this primer; black box: queries only).
#
# For a linear classifier $f(x) = Wx$ the worst perturbation has a closed form. The margin of class
# $y$ over $j$ changes by $(W_y - W_j)^\top(\hat x - x)$, and over the $\ell_\infty$ ball
#
# $$
# \min_{\|\hat x - x\|_\infty \le \varepsilon} (W_y - W_j)^\top(\hat x - x) = -\varepsilon\,\|W_y - W_j\|_1,
# $$ (eq-p1-linear)
#
# attained by $\hat x = x - \varepsilon\,\mathrm{sign}(W_y - W_j)$ (Hölder's inequality, with equality). In
# high dimension $\|W_y - W_j\|_1$ is large even when each weight is small, so a tiny $\varepsilon$ per
# coordinate adds up to a large change {cite:p}`goodfellow2015explaining`. For a network, projected
# gradient descent (PGD) repeats the signed step locally and projects back onto the ball
# {cite:p}`madry2018towards`.
#
# ## From scratch

# %%
def linear_attack_scratch(w, x, y, eps):
    """Worst l_inf perturbation of a linear model against each class j: returns the
    margin drop per j."""
    diff = w[y] - w  # (K, n): W_y - W_j
    x_adv = x - eps * torch.sign(diff)  # one adversarial input per target class j
    # the drop, equal to eps * ||W_y - W_j||_1
    return (diff * x).sum(1) - (diff * x_adv).sum(1)


# %% [markdown]
# ## Numerical check
#
# Against brute force: on a linear model with four inputs, enumerate all $2^4$ corners of the box
# (a linear function is extreme at a corner) and compare.

# %%
g = torch.Generator().manual_seed(SEED)
worst_error = 0.0
for _ in tqdm(range(run.pick(smoke=20, book=200, colab=200)), desc="brute force"):
    w, x = (
        torch.randn(3, 4, generator=g, dtype=torch.float64),
        torch.randn(4, generator=g, dtype=torch.float64),
    )
    eps = float(torch.rand(1, generator=g))
    corners = torch.cartesian_prod(
        *[torch.tensor([-eps, eps], dtype=torch.float64)] * 4
    )
    brute = torch.stack(
        [
            ((w[0] - w[j]) * x).sum() - ((w[0] - w[j]) * (x + corners)).sum(1).min()
            for j in range(3)
        ]
    )
    worst_error = max(
        worst_error, float((brute - linear_attack_scratch(w, x, 0, eps)).abs().max())
    )
print(f"largest difference from brute force: {worst_error:.1e}")
assert worst_error < 1e-12

# %% [markdown]
# ## Graduation
#
# For a one-layer network the book's certificate of {doc}`the weight-perturbation chapter
# <05_weight_perturbation>`, with only the input perturbed, is exactly {eq}`eq-p1-linear`: the bound is tight.

# %%
w_lin = torch.randn(10, 64, generator=g, dtype=torch.float64)
for i in range(5):
    x_i, y_i = x_test[i].double(), int(y_test[i])
    package = closed_form_margin_drop([w_lin], x_i[None], [0.0], eps_x=0.05)[0, y_i]
    trustml_ref.assert_close(
        package,
        linear_attack_scratch(w_lin, x_i, y_i, 0.05),
        rtol=1e-12,
        name="linear drop",
    )
print("graduated: the package's certificate equals the exact linear attack")

# %% [markdown]
# ## Experiment: accuracy against the budget
#
# Accuracy under PGD as $\varepsilon$ grows, for the standard network and for one trained on PGD
# examples at $\varepsilon = 0.1$ (adversarial training), with random uniform noise of the same size as a
# control.

# %%
robust = train(
    (64, 32, 32, 10),
    data.x_train,
    data.y_train,
    adversarial_loss(0.0, 0.1),
    epochs=EPOCHS,
    generator=torch.Generator().manual_seed(SEED),
    desc="adversarial training",
)
W_rob = [w.detach() for w in robust.weights]
budgets = run.pick(
    smoke=[0.0, 0.1, 0.2],
    book=[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
    colab=[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
)
curves = {
    "standard, PGD": [],
    "adversarially trained, PGD": [],
    "standard, random noise": [],
}
correct = {name: [] for name in curves}  # per test point, for paired comparisons
for eps in tqdm(budgets, desc="budgets"):
    for name, weights in (("standard, PGD", W), ("adversarially trained, PGD", W_rob)):
        margins = pgd_attack(
            weights,
            x_test,
            y_test,
            0.0,
            eps,
            steps=STEPS,
            restarts=2,
            generator=run.generator,
        ).margins
        correct[name].append((margins > 0).float())
    noise = (torch.rand(x_test.shape, generator=run.generator) * 2 - 1) * eps
    correct["standard, random noise"].append(
        (
            worst_margin(class_margins(mlp_forward(W, x_test + noise), y_test), y_test)
            > 0
        ).float()
    )
    for name in curves:
        curves[name].append(float(correct[name][-1].mean()))

# %% tags=["hide-input"]
fig, ax = plt.subplots()
for name, accs in curves.items():
    ax.plot(budgets, accs, "o-", label=name)
ax.set(
    xlabel="$\\ell_\\infty$ budget $\\varepsilon$",
    ylabel="test accuracy",
    ylim=(0, 1.02),
    title="accuracy against the budget",
)
ax.legend()
plt.show()

# %%
display(
    results_table(
        {"budget": budgets, **curves}, digits=2, caption="Test accuracy by budget"
    )
)


# %% [markdown]
# The conclusions, each a paired comparison over the test points (one trained model per
# recipe: the spread over training seeds is not measured here).

# %%
at = {eps: i for i, eps in enumerate(budgets)}
noise_vs_pgd = paired_difference(
    correct["standard, random noise"][-1], correct["standard, PGD"][-1]
)
claim(
    f"at eps = {budgets[-1]} random noise leaves the standard network far more "
    "accurate than PGD does",
    noise_vs_pgd.lower > 0.5,
    test=noise_vs_pgd.test,
    **noise_vs_pgd.evidence,
)
trained_gain = paired_difference(
    correct["adversarially trained, PGD"][at[0.1]], correct["standard, PGD"][at[0.1]]
)
claim(
    "at its training budget eps = 0.1 the adversarially trained network resists PGD "
    "better",
    trained_gain.lower > 0,
    test=trained_gain.test,
    **trained_gain.evidence,
)
clean_cost = paired_difference(
    correct["standard, PGD"][0], correct["adversarially trained, PGD"][0]
)
claim(
    "adversarial training costs at most 3 points of clean accuracy here",
    clean_cost.upper <= 0.03,
    test=clean_cost.test,
    **clean_cost.evidence,
)
claim(
    f"at eps = {budgets[-1]} (3x the training budget) PGD breaks the trained network "
    "too",
    curves["adversarially trained, PGD"][-1] < 0.1,
    accuracy=curves["adversarially trained, PGD"][-1],
)
glue("p1_noise_acc", curves["standard, random noise"][-1])
glue("p1_pgd_acc", curves["standard, PGD"][-1])
glue("p1_eps_max", budgets[-1])
glue("p1_gain", trained_gain.mean)
glue("p1_clean_cost", clean_cost.mean)

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    clean_accuracy=clean_acc,
    brute_force_error=worst_error,
    budgets=budgets,
    curves=curves,
)

# %% [markdown]
# Random noise of the full budget ($\varepsilon$ = {glue:text}`p1_eps_max`) barely changes the
# accuracy ({glue:text}`p1_noise_acc:.2f`), while PGD with the same budget collapses it
# ({glue:text}`p1_pgd_acc:.2f`): robustness must be measured against the worst case in the
# threat model, not on average. Adversarial training buys robustness around the trained budget
# (+{glue:text}`p1_gain:.2f` accuracy under PGD at $\varepsilon = 0.1$); in this run it cost
# {glue:text}`p1_clean_cost:.2f` of clean accuracy, and its robustness does not extend far
# beyond that budget.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-p1-l2
#
# Derive the worst $\ell_2$ perturbation of a linear classifier and its margin drop.
# ```
#
# ```{solution} ex-p1-l2
# :class: dropdown
#
# By Cauchy-Schwarz, $\min_{\|\delta\|_2\le\varepsilon}(W_y - W_j)^\top\delta = -\varepsilon\|W_y - W_j\|_2$, at
# $\delta = -\varepsilon (W_y - W_j)/\|W_y - W_j\|_2$: the dual norm replaces $\ell_1$.
# ```
#
# ```{exercise}
# :label: ex-p1-dimension
#
# For $w \in \mathbb R^n$ with entries $\pm 1/\sqrt n$ (so $\|w\|_2 = 1$), how does the worst $\ell_\infty$
# margin drop grow with $n$ at fixed $\varepsilon$?
# ```
#
# ```{solution} ex-p1-dimension
# :class: dropdown
#
# $\varepsilon\|w\|_1 = \varepsilon\sqrt n$: it grows without bound with the dimension, which is why
# imperceptible per-pixel changes can move high-dimensional models far.
# ```
#
# ```{exercise}
# :label: ex-p1-threat
#
# Write the threat model of each chapter of this book: what is perturbed, in which set, by whom, and
# with what knowledge.
# ```
#
# ```{solution} ex-p1-threat
# :class: dropdown
#
# Weight perturbations: the weights, an elementwise box per layer, white box. Joint robustness:
# inputs and weights, a product of $\ell_\infty$ boxes. Quantum certified robustness: the input state,
# a trace-distance ball, any state in it. Safe LoRA: the fine-tuning data, chosen by whoever
# fine-tunes. Ring-A-Bell: the prompt, discrete tokens, black box on the text encoder.
# ```
#
# ## Summary
#
# - A threat model fixes the perturbation set, the budget and the attacker's knowledge.
# - For linear models the worst $\ell_\infty$ perturbation is $-\varepsilon\,\mathrm{sign}(W_y - W_j)$ and lowers
#   the margin by $\varepsilon\|W_y - W_j\|_1$ {eq}`eq-p1-linear`; PGD generalises it to networks.
# - Measured here: random noise is harmless where PGD breaks the classifier; adversarial training
#   buys robustness at its budget for at most a few points of clean accuracy, and none far beyond it.
#
# ## References
#
# - {cite:t}`goodfellow2015explaining`: adversarial examples and the linear explanation.
# - {cite:t}`madry2018towards`: PGD and adversarial training.
