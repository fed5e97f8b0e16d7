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
# (primer-lora)=
# # Primer P3: parameter-efficient fine-tuning and LoRA
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/p3_lora.ipynb)

# %% [markdown]
# **Summary.** Fine-tuning every weight of a large model for every task is expensive to train and
# to store. LoRA {cite:p}`hu2022lora` freezes the pre-trained weight $W$ and learns a low-rank update
# $\Delta W = \frac{\alpha}{r}BA$ with $r$ far below the layer's size. This primer shows that a full
# fine-tuning update is close to low rank in a small example, builds LoRA from scratch, graduates to
# the PEFT library (the integration the Safe LoRA chapter uses), and measures accuracy against rank.
#
# **Learning goals.** After this primer you can
# - write a LoRA layer, count its parameters, and explain its initialisation ($B = 0$);
# - merge a LoRA update into the weight, and read a PEFT model's LoRA factors;
# - read a singular-value spectrum to judge how low-rank an update is.
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
            "trustml_ref[llm] @ git+https://github.com/trustml/trustml@main",
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
import copy

import matplotlib.pyplot as plt
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue, proportion_difference
from trustml_ref.data import digits
from trustml_ref.io import record_results
from trustml_ref.training import accuracy, fit

run = trustml_ref.setup(PROFILE, SEED, DEVICE)
EPOCHS = run.pick(smoke=5, book=40, colab=40)
RANKS = run.pick(smoke=[1, 4], book=[1, 2, 4, 8, 16], colab=[1, 2, 4, 8, 16, 32])
HIDDEN = 128

# %% [markdown]
# ## Motivation: a fine-tuning update is nearly low rank
#
# A small network is pre-trained on the digits 0–4; the new task is the digits 5–9 (relabelled
# 0–4). Fine-tuning all weights works; the question is how much of the change it makes is needed.
# The singular values of the hidden layer's update $\Delta W = W_{\text{fine-tuned}} - W_{\text{pre-trained}}$ answer it.

# %%
data = digits(seed=SEED)
old_train, new_train = data.y_train < 5, data.y_train >= 5
old_test, new_test = data.y_test < 5, data.y_test >= 5
x_new, y_new = data.x_train[new_train], data.y_train[new_train] - 5
x_new_test, y_new_test = data.x_test[new_test], data.y_test[new_test] - 5

torch.manual_seed(SEED)
pretrained = fit(
    nn.Sequential(
        nn.Linear(64, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 5),
    ),
    data.x_train[old_train],
    data.y_train[old_train],
    epochs=EPOCHS,
    lr=1e-3,
    progress=False,
)
print(
    "pre-trained on 0-4: "
    f"{accuracy(pretrained, data.x_test[old_test], data.y_test[old_test]):.3f}; "
    f"on 5-9 before fine-tuning: {accuracy(pretrained, x_new_test, y_new_test):.3f} "
    "(chance 0.2)"
)
full = fit(
    copy.deepcopy(pretrained), x_new, y_new, epochs=EPOCHS, lr=1e-3, progress=False
)
full_accuracy = accuracy(full, x_new_test, y_new_test)
delta = (full[2].weight - pretrained[2].weight).detach()
sv = torch.linalg.svdvals(delta)
energy = (sv**2).cumsum(0) / (sv**2).sum()
rank90 = int((energy < 0.9).sum()) + 1
print(
    f"full fine-tuning on 5-9: {full_accuracy:.3f}; the {HIDDEN}x{HIDDEN} update needs "
    f"{rank90} singular "
    f"directions for 90% of its energy"
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.semilogy(sv, "o-", ms=3)
ax.set(
    xlabel="index",
    ylabel="singular value of $\\Delta W$",
    title="the hidden layer's full fine-tuning update",
)
plt.show()


# %% [markdown]
# ## Derivation
#
# LoRA keeps $W\in\mathbb R^{d_{\text{out}}\times d_{\text{in}}}$ frozen and adds a trainable low-rank path:
#
# $$
# h = Wx + \frac{\alpha}{r} B A x,\qquad A\in\mathbb R^{r\times d_{\text{in}}},\ B\in\mathbb R^{d_{\text{out}}\times r}.
# $$ (eq-p3-lora)
#
# It trains $r(d_{\text{in}} + d_{\text{out}})$ numbers instead of $d_{\text{in}}d_{\text{out}}$. $A$ starts random and $B = 0$, so the
# model starts exactly at the pre-trained one; the scale $\alpha/r$ keeps the update's size comparable
# across ranks. After training, $W' = W + \frac{\alpha}{r}BA$ can be merged, so inference costs nothing
# extra. The update has rank at most $r$: by the Eckart–Young theorem, the best it can do is the
# top-$r$ part of the spectrum plotted above.
#
# ## From scratch

# %%
class LoRALinearScratch(nn.Module):
    """Equation (eq-p3-lora) around a frozen nn.Linear."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / r
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(r, base.in_features) / base.in_features**0.5)
        self.B = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.A.T) @ self.B.T

    def merged_weight(self):
        return self.base.weight + self.scale * self.B @ self.A


# %% [markdown]
# ## Numerical check
#
# At initialisation the LoRA model equals the pre-trained one; after some training, the merged
# weight gives the same outputs as the two-path layer.

# %%
torch.manual_seed(SEED)
scratch = copy.deepcopy(pretrained)
scratch[2] = LoRALinearScratch(scratch[2], r=4, alpha=8)
# B = 0: the same function
assert torch.equal(scratch(x_new_test), pretrained(x_new_test))
fit(scratch, x_new, y_new, epochs=2, lr=1e-2, progress=False)
merged = copy.deepcopy(scratch)
merged[2] = nn.Linear(HIDDEN, HIDDEN)
with torch.no_grad():
    merged[2].weight.copy_(scratch[2].merged_weight())
    merged[2].bias.copy_(scratch[2].base.bias)
merge_gap = float((merged(x_new_test) - scratch(x_new_test)).abs().max())
print(f"merged vs two-path outputs: max |difference| = {merge_gap:.2e}")

# %% [markdown]
# ## Graduation
#
# PEFT wraps the same layer by name; copying its factors into the scratch layer must give the same
# outputs (PEFT's `lora_A`/`lora_B` are the $A$ and $B$ of {eq}`eq-p3-lora`, with the same scale).

# %%
torch.manual_seed(SEED)
peft_model = get_peft_model(
    copy.deepcopy(pretrained), LoraConfig(r=4, lora_alpha=8, target_modules=["2"])
)
layer = peft_model.base_model.model[2]
fresh = copy.deepcopy(pretrained)
fresh[2] = LoRALinearScratch(fresh[2], r=4, alpha=8)
with torch.no_grad():
    # a non-zero update, so the comparison means something
    layer.lora_B["default"].weight.normal_()
    fresh[2].A.copy_(layer.lora_A["default"].weight)
    fresh[2].B.copy_(layer.lora_B["default"].weight)
trustml_ref.assert_close(
    peft_model(x_new_test),
    fresh(x_new_test),
    rtol=1e-5,
    atol=1e-5,
    name="PEFT LoRA output",
)
print("graduated: the scratch LoRA layer equals PEFT's")

# %% [markdown]
# ## Experiment: accuracy against rank
#
# LoRA on the hidden layer (with the output layer trained too, as a new task needs a new head)
# at each rank, against full fine-tuning and against training the head alone.

# %%
def lora_model(r):
    model = get_peft_model(
        copy.deepcopy(pretrained),
        LoraConfig(r=r, lora_alpha=2 * r, target_modules=["2"], modules_to_save=["4"]),
    )
    return model


torch.manual_seed(SEED)
head_only = copy.deepcopy(pretrained)
for p in head_only[:4].parameters():
    p.requires_grad_(False)
head_accuracy = accuracy(
    fit(head_only, x_new, y_new, epochs=EPOCHS, lr=1e-3, progress=False),
    x_new_test,
    y_new_test,
)
by_rank = {}
for r in tqdm(RANKS, desc="ranks"):
    torch.manual_seed(SEED)
    model = lora_model(r)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    by_rank[r] = (
        accuracy(
            fit(model, x_new, y_new, epochs=EPOCHS, lr=1e-3, progress=False),
            x_new_test,
            y_new_test,
        ),
        trainable,
    )

full_params = sum(p.numel() for p in pretrained[2:].parameters())

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(
    [v[1] for v in by_rank.values()],
    [v[0] for v in by_rank.values()],
    "o-",
    label="LoRA (hidden) + head",
)
for r, (acc, n) in by_rank.items():
    ax.annotate(
        f"r={r}", (n, acc), textcoords="offset points", xytext=(3, -10), fontsize=7
    )
ax.axhline(
    full_accuracy,
    ls=":",
    color="gray",
    label=f"full fine-tuning ({full_params} trainable in these layers)",
)
ax.axhline(head_accuracy, ls="--", color="C3", label="head only")
ax.set(
    xscale="log",
    xlabel="trainable parameters",
    ylabel="test accuracy on 5-9",
    title="LoRA rank against accuracy",
)
ax.legend(fontsize=7)
plt.show()

# %%
for r, (acc, n) in by_rank.items():
    print(f"r={r}: accuracy {acc:.3f} with {n} trainable parameters")
print(f"head only {head_accuracy:.3f}; full fine-tuning {full_accuracy:.3f}")


# %% [markdown]
# One training run per setting, so each comparison below is between rates on the same
# {glue:text}`p3_n_test` test images, with binomial errors.

# %%
n_test = len(y_new_test)
r_lo, r_hi = RANKS[0], RANKS[-1]
r_energy = min(r for r in RANKS if r >= rank90) if rank90 <= r_hi else r_hi
claim(
    f"the full update holds 90% of its energy in at most {HIDDEN // 8} of {HIDDEN} "
    "directions",
    rank90 <= HIDDEN // 8,
    rank90=rank90,
)
grows = proportion_difference(by_rank[r_hi][0], by_rank[r_lo][0], n_test)
claim(
    f"LoRA at rank {r_hi} is more accurate than at rank {r_lo}",
    grows.lower > 0,
    test=grows.test,
    **grows.evidence,
)
close = proportion_difference(full_accuracy, by_rank[r_hi][0], n_test)
claim(
    f"LoRA at rank {r_hi} is within 3 points of full fine-tuning",
    abs(close.mean) <= 0.03,
    test=close.test,
    **close.evidence,
)
short = proportion_difference(full_accuracy, by_rank[r_energy][0], n_test)
claim(
    f"LoRA at rank {r_energy} (the 90%-energy rank is {rank90}) falls short of full "
    "fine-tuning",
    short.lower > 0,
    test=short.test,
    **short.evidence,
)
over_head = proportion_difference(by_rank[r_lo][0], head_accuracy, n_test)
claim(
    "LoRA at every rank beats training the head alone",
    over_head.lower > 0 and min(v[0] for v in by_rank.values()) > head_accuracy,
    test=over_head.test,
    **over_head.evidence,
)
glue("p3_n_test", n_test)
glue("p3_rank90", rank90)
glue("p3_r_hi", r_hi)
glue("p3_acc_hi", by_rank[r_hi][0])
glue("p3_full", full_accuracy)
glue("p3_share", 100 * by_rank[r_hi][1] / full_params)
glue("p3_r_energy", r_energy)
glue("p3_acc_energy", by_rank[r_energy][0])
glue("p3_head", head_accuracy)

# %% [markdown]
# The update of full fine-tuning needs {glue:text}`p3_rank90` directions for 90% of its energy.
# LoRA at rank {glue:text}`p3_r_hi` reaches {glue:text}`p3_acc_hi:.3f` against full fine-tuning's
# {glue:text}`p3_full:.3f`, training {glue:text}`p3_share:.0f`% as many parameters in these
# layers; at rank {glue:text}`p3_r_energy` it reaches only {glue:text}`p3_acc_energy:.3f`: the
# spectrum of the full update says what a rank *can* represent, not what training finds. Every
# rank beats retraining the head alone ({glue:text}`p3_head:.3f`).

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    rank90=rank90,
    merge_gap=merge_gap,
    full=full_accuracy,
    head=head_accuracy,
    by_rank={str(r): v[0] for r, v in by_rank.items()},
    params={str(r): v[1] for r, v in by_rank.items()},
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-p3-count
#
# A 4096×4096 attention projection gets LoRA of rank 8. How many parameters does the update train,
# what fraction of the full matrix is that, and how many bytes does one adapter for 64 such modules
# take in half precision?
# ```
#
# ```{solution} ex-p3-count
# :class: dropdown
#
# $8\cdot(4096 + 4096) = 65{,}536$ per module, $65{,}536/4096^2 \approx 0.39\%$. For 64 modules,
# $4{,}194{,}304$ numbers, 8 MiB at 2 bytes each (the full matrices would be 2 GiB).
# ```
#
# ```{exercise}
# :label: ex-p3-init
#
# Why is $B$ initialised to zero and $A$ at random, and not both at random or both at zero?
# ```
#
# ```{solution} ex-p3-init
# :class: dropdown
#
# $B = 0$ makes the fine-tuned model start exactly at the pre-trained one. Both zero would make every
# gradient zero ($\partial L/\partial A$ is proportional to $B$, $\partial L/\partial B$ to $A$), so nothing would train; both
# random would start from a randomly perturbed model.
# ```
#
# ```{exercise}
# :label: ex-p3-rank
#
# Using the spectrum of the full update above, predict the smallest rank at which LoRA on the hidden
# layer should match full fine-tuning, and compare with the experiment. Why might LoRA at that rank
# still fall short, or even do better?
# ```
#
# ```{solution} ex-p3-rank
# :class: dropdown
#
# The printed `rank90` is the number of directions holding 90% of the update's energy; LoRA at about
# that rank can represent most of the update. It can fall short because it does not find the full
# update's top directions (it optimises a different, non-convex problem), and it can do better
# because a low-rank update is a regulariser on a small data set.
# ```
#
# ## Summary
#
# - LoRA {eq}`eq-p3-lora` freezes $W$ and trains $BA$ of rank $r$; $B = 0$ at the start, and the update can
#   be merged into $W$ after training.
# - Measured here: the full fine-tuning update of a hidden layer concentrates in a few singular
#   directions; LoRA's accuracy grows with the rank and approaches full fine-tuning with a fraction of
#   its parameters, although the rank that holds 90% of the update's energy is not enough on its own.
# - PEFT's `LoraConfig`/`get_peft_model` implement the same layer; the Safe LoRA chapter edits its
#   `lora_B` factors.
#
# ## References
#
# - {cite:t}`hu2022lora`: LoRA. {cite:t}`hsu2024safelora`: Safe LoRA, which projects LoRA updates.
