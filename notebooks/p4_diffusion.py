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
# (primer-diffusion)=
# # Primer P4: diffusion models and text conditioning
#
# [![Open In Colab](../book/_static/colab-badge.svg)](https://colab.research.google.com/github/trustml/trustml/blob/main/colab/p4_diffusion.ipynb)

# %% [markdown]
# **Summary.** A text-to-image diffusion model turns noise into an image in a few dozen small steps,
# each one a network's guess of the noise in its input, conditioned on the prompt's embedding. This
# primer derives the forward (noising) process and its closed form, the noise-prediction objective
# and the deterministic DDIM sampler, implements them from scratch, checks them against sampling and
# against `diffusers`' schedulers, and then samples the small text-to-image model of the
# {ref}`Ring-A-Bell chapter <chapter-ring-a-bell>` with the scratch sampler. It ends with what the
# prompt changes and with classifier-free guidance, the two things concept removal and Ring-A-Bell
# act on.
#
# **Learning goals.** After this primer you can
# - write $q(x_t \mid x_0)$ and explain why training needs no simulation of the chain;
# - write one DDIM step and say why it is deterministic;
# - say where the prompt enters the network (the whole $L\times d$ text state, through cross-attention)
#   and what classifier-free guidance computes.
#
# **Runtime.** `smoke`: seconds; `book`: under a minute on a 2-core CPU; `colab`: the same. Model: the
# 2 MB toy text-to-image checkpoint shipped with the package; data: drawn here.

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
            "trustml_ref[diffusion] @ git+https://github.com/trustml/trustml@main",
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
from diffusers import DDIMScheduler, DDPMScheduler
from tqdm.auto import tqdm

import trustml_ref
from trustml_ref.claims import claim, glue, proportion_difference
from trustml_ref.io import record_results
from trustml_ref.ring_a_bell import toy
from trustml_ref.ring_a_bell.pipeline import ToyPipeline

run = trustml_ref.setup(PROFILE, SEED, DEVICE)  # a 2 MB model: the CPU is fine
# Monte-Carlo draws for the closed-form check
DRAWS = run.pick(smoke=2_000, book=20_000, colab=20_000)
IMAGES = run.pick(smoke=4, book=16, colab=32)  # images per prompt in the experiments
STEPS = run.pick(smoke=10, book=20, colab=25)  # DDIM steps

# %% [markdown]
# ## Motivation: an image out of noise
#
# Here is the toy model of the Ring-A-Bell chapter drawing "a big red circle on the center": start
# from pure noise, and twenty times ask the network what noise it sees and remove a bit of it. We
# show the running estimate of the clean image at every few steps.

# %%
pipe = ToyPipeline.from_pretrained()
scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
text = pipe.embed(["a big red circle on the center"])
g = torch.Generator().manual_seed(SEED)
x = torch.randn((1, 3, 16, 16), generator=g)
scheduler.set_timesteps(STEPS)
trajectory = []
with torch.no_grad():
    for t in scheduler.timesteps:
        out = scheduler.step(pipe.denoiser(x, t, text), t, x)
        x = out.prev_sample
        trajectory.append((int(t), ((out.pred_original_sample + 1) / 2).clamp(0, 1)[0]))
shown = trajectory[:: max(1, len(trajectory) // 6)][:6]

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(shown), figsize=(1.4 * len(shown), 1.7))
for ax, (t, image) in zip(axes, shown):
    (
        ax.imshow(image.permute(1, 2, 0)),
        ax.set_xticks([]),
        ax.set_yticks([]),
        ax.set_title(f"t={t}", fontsize=7),
    )
fig.suptitle("the sampler's estimate of the clean image, step by step", fontsize=8)
plt.show()


# %% [markdown]
# ## Derivation
#
# ### The forward process
#
# Fix a noise schedule $\beta_1,\dots,\beta_T \in (0,1)$ and let each step shrink the image and add a
# little Gaussian noise {cite:p}`ho2020denoising`:
# $q(x_t\mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big)$. With $\alpha_t = 1-\beta_t$ and
# $\bar\alpha_t = \prod_{s\le t}\alpha_s$, a sum of independent Gaussians is Gaussian, and by induction
#
# $$
# q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big), \qquad
# x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ \epsilon\sim\mathcal N(0, I).
# $$ (eq-diff-forward)
#
# Training needs no simulation of the chain: draw $t$ and $\epsilon$, form $x_t$ in one line, and
# teach a network $\epsilon_\theta(x_t, t, f(P))$ to recover the noise,
#
# $$
# \mathcal L(\theta) = \mathbb E_{x_0, P, t, \epsilon}\ \big\|\epsilon - \epsilon_\theta(x_t, t, f(P))\big\|^2 ,
# $$ (eq-diff-loss)
#
# where $f(P)\in\mathbb R^{L\times d}$ is the text encoder's last hidden state of the prompt.
#
# ### The DDIM sampler
#
# Given $x_t$ and the predicted noise $\hat\epsilon = \epsilon_\theta(x_t, t, f(P))$, solve
# {eq}`eq-diff-forward` for the clean image, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$,
# and re-noise it to an earlier time $s<t$ *with the same noise* {cite:p}`song2021denoising`:
#
# $$
# x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon .
# $$ (eq-diff-ddim)
#
# No fresh noise enters, so the sampler is a deterministic map from the starting noise to the image,
# and it may jump many training steps at once (here $T = 1000$, twenty jumps). At $s = 0$ one sets
# $\bar\alpha_0 = 1$ and returns $\hat x_0$. Implementations may clip $\hat x_0$ to the image range
# $[-1, 1]$ first; this model's scheduler does not (nor does Stable Diffusion's), and the
# experiment below shows why.
#
# ### Where the prompt enters, and guidance
#
# The network reads the whole $L\times d$ text state: in cross-attention, each pixel's feature forms a
# query and attends over the $L$ rows, $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ with $K, V$ linear in
# $f(P)$. Nothing is pooled, which is why Ring-A-Bell perturbs every row. Classifier-free guidance
# {cite:p}`ho2022classifier` mixes the conditional and unconditional predictions,
#
# $$
# \hat\epsilon_w = \epsilon_\theta(x_t, t, f(\varnothing)) + w\,\big(\epsilon_\theta(x_t, t, f(P)) - \epsilon_\theta(x_t, t, f(\varnothing))\big),
# $$ (eq-diff-cfg)
#
# $w = 1$ is the plain conditional model, $w > 1$ extrapolates away from the empty prompt (Stable
# Diffusion uses $w = 7.5$), and a negative prompt replaces $f(\varnothing)$ by the embedding of what
# to avoid.
#
# ## From scratch

# %%
def add_noise_scratch(x0, noise, t, alphas_cumprod):
    """Equation (eq-diff-forward): x_t for images (B, C, H, W), noise like x0 and
    timesteps t (B,)."""
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def ddim_step_scratch(eps, t, t_prev, x, alphas_cumprod, clip=None):
    """Equation (eq-diff-ddim): x_s from x_t and the predicted noise, with x0-hat
    clipped to [-clip, clip] when ``clip`` is given."""
    a_t = alphas_cumprod[t]
    a_s = alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    x0_hat = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if clip is not None:
        x0_hat = x0_hat.clamp(-clip, clip)
    return a_s.sqrt() * x0_hat + (1 - a_s).sqrt() * eps


# %% [markdown]
# ## Numerical check
#
# Two checks. The closed form {eq}`eq-diff-forward` against running the chain step by step from one
# image patch many times (mean and variance of $x_t$ per pixel); and DDIM given the *true* noise: one jump
# from any $t$ straight to $s = -1$ returns the clean image exactly, the sense in which the sampler
# inverts the forward process.

# %%
ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
alphas_cumprod = ddpm.alphas_cumprod
images, captions, _ = toy.dataset(4, seed=SEED)
# a 4x4 patch of one image: 48 values, each checked
x0 = images[:1, :, 6:10, 6:10] * 2 - 1
gc = torch.Generator().manual_seed(SEED)
t_check = 300
chain = x0.expand(DRAWS, -1, -1, -1).clone()
for step in tqdm(range(t_check + 1), desc="forward chain"):
    beta = ddpm.betas[step]
    chain = (1 - beta).sqrt() * chain + beta.sqrt() * torch.randn(
        chain.shape, generator=gc
    )
mean_gap = float((chain.mean(0) - alphas_cumprod[t_check].sqrt() * x0[0]).abs().max())
var_gap = float((chain.var(0) - (1 - alphas_cumprod[t_check])).abs().max())
tolerance = 5 / DRAWS**0.5  # about five standard errors of a mean of unit-scale draws
print(
    f"t={t_check}: max |mean - sqrt(abar) x0| = {mean_gap:.4f}, max |var - (1 - abar)| "
    f"= {var_gap:.4f} "
    f"(tolerance {tolerance:.4f})"
)
assert mean_gap < tolerance and var_gap < 2 * tolerance

noise = torch.randn(x0.shape, generator=gc)
inversion_gap = max(
    float(
        (
            ddim_step_scratch(
                noise,
                t,
                -1,
                add_noise_scratch(x0, noise, torch.tensor([t]), alphas_cumprod),
                alphas_cumprod,
            )
            - x0
        )
        .abs()
        .max()
    )
    for t in (10, 300, 900)
)
print(
    f"DDIM with the true noise, one jump to s = -1: max |x - x0| = {inversion_gap:.1e}"
)
assert inversion_gap < 1e-4

# %% [markdown]
# ## Graduation
#
# The scratch functions against `diffusers`: `DDPMScheduler.add_noise` and one `DDIMScheduler.step`
# (deterministic, $\eta = 0$) at every timestep of a 20-step schedule, with the toy model's predicted
# noise.

# %%
t_batch = torch.randint(0, 1000, (4,), generator=gc)
noise4 = torch.randn((4, 3, 16, 16), generator=gc)
x4 = images * 2 - 1
trustml_ref.assert_close(
    add_noise_scratch(x4, noise4, t_batch, alphas_cumprod),
    ddpm.add_noise(x4, noise4, t_batch),
    rtol=1e-5,
    atol=1e-6,
    name="forward process",
)
scheduler.set_timesteps(STEPS)
x = torch.randn((2, 3, 16, 16), generator=gc)
cond = pipe.embed(
    ["a small blue square on the left", "a big cross like fire on the top"]
)
step_size = scheduler.config.num_train_timesteps // STEPS
with torch.no_grad():
    for t in scheduler.timesteps:
        eps = pipe.denoiser(x, t, cond)
        ours = ddim_step_scratch(
            eps,
            int(t),
            int(t) - step_size,
            x,
            scheduler.alphas_cumprod,
            clip=1.0 if scheduler.config.clip_sample else None,
        )
        x = scheduler.step(eps, t, x).prev_sample
        trustml_ref.assert_close(
            ours, x, rtol=1e-4, atol=1e-5, name=f"DDIM step at t={int(t)}"
        )
print("graduated: the forward process and every DDIM step agree with diffusers")

# %% [markdown]
# ## Experiment: what the prompt does, and guidance
#
# The scratch sampler draws images for a prompt from its embedding; we read them with the toy
# world's colour detector. First: the same starting noise under different prompts, and under the
# empty prompt. Then: the fraction of images in the named colour as the guidance scale $w$ grows,
# with $\hat x_0$ clipped to $[-1, 1]$ at every step and without. The toy model was trained with
# the caption dropped to the empty prompt a quarter of the time, so its unconditional prediction
# is learned. What would show guidance broken: a named-colour rate that falls as $w$ grows. We
# expect clipping to matter: guidance scales the difference of two predictions, so at large $w$
# the predicted $\hat x_0$ leaves $[-1, 1]$, and clipping it changes the direction that the next
# step follows.

# %%
def sample_scratch(states, uncond, w=1.0, seed=SEED, clip=None):
    """DDIM from noise with classifier-free guidance (eq-diff-cfg), all from the
    scratch step (x0-hat clipped to [-clip, clip] when ``clip`` is given)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((len(states), 3, 16, 16), generator=gen)
    scheduler.set_timesteps(STEPS)
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = pipe.denoiser(x, t, states)
            if w != 1:
                eps_uncond = pipe.denoiser(x, t, uncond.expand_as(states))
                eps = eps_uncond + w * (eps - eps_uncond)
            x = ddim_step_scratch(
                eps, int(t), int(t) - step_size, x, scheduler.alphas_cumprod, clip
            )
    return ((x + 1) / 2).clamp(0, 1)


empty = pipe.embed([""])
prompts = [f"a big {c} circle on the center" for c in toy.COLOURS] + [""]
rows = [sample_scratch(pipe.embed([p]).expand(6, -1, -1), empty) for p in prompts]
trustml_ref.assert_close(
    rows[0],
    pipe(
        [prompts[0]],
        num_images_per_prompt=6,
        generator=torch.Generator().manual_seed(SEED),
        num_inference_steps=STEPS,
    ),
    atol=1e-4,
    name="scratch sampler vs pipeline",
)

# %% tags=["hide-input"]
fig, axes = plt.subplots(len(prompts), 6, figsize=(5.5, 1.0 * len(prompts)))
for r, (p, row) in enumerate(zip(prompts, rows)):
    for j in range(6):
        (
            axes[r, j].imshow(row[j].permute(1, 2, 0)),
            axes[r, j].set_xticks([]),
            axes[r, j].set_yticks([]),
        )
    axes[r, 0].set_ylabel(
        p.replace("a big ", "").replace(" on the center", "") or "(empty)",
        fontsize=7,
        rotation=0,
        ha="right",
        va="center",
    )
fig.suptitle("same starting noise in each column, different prompts", fontsize=8)
plt.show()

# %%
scales = run.pick(
    smoke=[1.0, 3.0], book=[1.0, 1.5, 2.0, 3.0, 5.0], colab=[1.0, 1.5, 2.0, 3.0, 5.0]
)
CLIPS = {"no clipping": None, "x0-hat clipped to [-1, 1]": 1.0}
named_rate = {}  # (clipping, w) -> share of images in the named colour
for (label, clip), w in tqdm(
    [(c, w) for c in CLIPS.items() for w in scales], desc="guidance scales"
):
    hits = []
    for colour in toy.COLOURS:
        states = pipe.embed(
            [
                f"a big {colour} {s} on the {p}"
                for s, p in zip(toy.SHAPES, ("left", "top", "right", "bottom"))
            ]
        )
        drawn = toy.dominant_colour(
            sample_scratch(
                states.repeat_interleave(IMAGES // 4 or 1, 0), empty, w, clip=clip
            )
        )
        hits += [d == colour for d in drawn]
    named_rate[(label, w)] = float(np.mean(hits))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(4.5, 2.8))
for label in CLIPS:
    ax.plot(scales, [named_rate[(label, w)] for w in scales], "o-", label=label)
ax.legend(fontsize=7)
ax.set(
    xlabel="guidance scale w",
    ylabel="images in the named colour",
    ylim=(0, 1.05),
    title="classifier-free guidance, toy model",
)
plt.show()


# %% [markdown]
# What the two figures say, checked. The guidance rates are counts of images with binomial errors
# ({glue:text}`p4_n_images` images per scale, one sampling seed).

# %%
empty_colours = {c for c in toy.dominant_colour(rows[-1]) if c is not None}
named_hits = np.mean(
    [d == c for c, row in zip(toy.COLOURS, rows[:-1]) for d in toy.dominant_colour(row)]
)
n_images = len(toy.COLOURS) * 4 * (IMAGES // 4 or 1)
claim(
    "the empty prompt draws more than one colour from the six starting noises",
    len(empty_colours) > 1,
    colours=sorted(empty_colours),
)
claim(
    "naming a colour fixes it: at least 5 of 6 images per named prompt are in that "
    "colour",
    bool(named_hits >= 5 / 6),
    share=float(named_hits),
)
NO_CLIP, CLIPPED = CLIPS
unclipped = {w: named_rate[(NO_CLIP, w)] for w in scales}
claim(
    "without clipping, every guidance scale tried draws the named colour in at least "
    "90% of images",
    min(unclipped.values()) >= 0.9,
    rates=unclipped,
)
drop = proportion_difference(
    named_rate[(CLIPPED, 1.0)], named_rate[(CLIPPED, 3.0)], n_images
)
claim(
    "with x0-hat clipped, the named-colour rate at w = 3 is below its value at w = 1",
    drop.lower > 0,
    test=drop.test,
    **drop.evidence,
)
glue("p4_n_images", n_images)
glue("p4_rate_1", unclipped[1.0])
glue("p4_rate_min", min(unclipped.values()))
glue("p4_clip_rate_1", named_rate[(CLIPPED, 1.0)])
glue("p4_clip_rate_3", named_rate[(CLIPPED, 3.0)])

# %% [markdown]
# The empty prompt draws shapes of several colours; naming a colour fixes it while the starting
# noise fixes much of the rest. Without clipping, guidance keeps the named colour: the rate is
# {glue:text}`p4_rate_1:.2f` at $w = 1$ and at least {glue:text}`p4_rate_min:.2f` at every scale
# tried. With $\hat x_0$ clipped, the same model and the same noise fall from
# {glue:text}`p4_clip_rate_1:.2f` at $w = 1$ to {glue:text}`p4_clip_rate_3:.2f` at $w = 3$. The
# failure is the sampler's, not the model's: at $w = 1$ clipping changes little (the two curves
# start together), while at large $w$ it cuts the extrapolated prediction, and the step then
# re-noises a different image. (An earlier checkpoint of this book was sampled
# with clipping and looked unguidable; retraining it with more unconditional captions did not
# help, turning clipping off did.) A model is only as guidable as its unconditional prediction is
# good and its sampler lets the guided prediction through.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-p4-closed-form
#
# Prove {eq}`eq-diff-forward` by induction on $t$: assume it at $t-1$ and apply one step of the chain.
# ```
#
# ```{solution} ex-p4-closed-form
# :class: dropdown
#
# $x_t = \sqrt{\alpha_t}x_{t-1} + \sqrt{1-\alpha_t}\,\epsilon_t$ with $x_{t-1} = \sqrt{\bar\alpha_{t-1}}x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\epsilon'$,
# so $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\epsilon' + \sqrt{1-\alpha_t}\,\epsilon_t$. The two
# independent Gaussian terms add to one with variance $\alpha_t - \bar\alpha_t + 1 - \alpha_t = 1 - \bar\alpha_t$.
# ```
#
# ```{exercise}
# :label: ex-p4-ddim-exact
#
# Show that one DDIM jump {eq}`eq-diff-ddim` from $x_t$ to any $s$, given the true $\epsilon$ used to make
# $x_t$ from $x_0$, lands exactly on $\sqrt{\bar\alpha_s}x_0 + \sqrt{1-\bar\alpha_s}\,\epsilon$. Why does this
# make DDIM a good sampler when the network's $\hat\epsilon$ is accurate, and why would clipping
# $\hat x_0$ to $[-1, 1]$ not break the numerical check above?
# ```
#
# ```{solution} ex-p4-ddim-exact
# :class: dropdown
#
# With $\hat\epsilon = \epsilon$, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\epsilon)/\sqrt{\bar\alpha_t} = x_0$, and
# {eq}`eq-diff-ddim` re-noises $x_0$ with the same $\epsilon$. Each step then stays on the forward
# trajectory of one image, so errors come only from $\hat\epsilon$. The check's $x_0$ is an image in
# $[-1, 1]$, so clipping $\hat x_0 = x_0$ changes nothing.
# ```
#
# ```{exercise}
# :label: ex-p4-cfg-bayes
#
# Write $\epsilon_\theta(x_t,t,c) \approx -\sqrt{1-\bar\alpha_t}\,\nabla_{x_t}\log p_t(x_t\mid c)$. Use Bayes'
# rule to show that {eq}`eq-diff-cfg` follows, up to that scaling, the score of
# $p_t(x_t)\,p_t(c\mid x_t)^{w}$. What does $w>1$ do to the implicit classifier, and what does a
# negative prompt do?
# ```
#
# ```{solution} ex-p4-cfg-bayes
# :class: dropdown
#
# $\nabla\log p(x\mid c) = \nabla\log p(x) + \nabla\log p(c\mid x)$, so
# $\epsilon_\varnothing + w(\epsilon_c - \epsilon_\varnothing) \propto -[\nabla\log p(x) + w\nabla\log p(c\mid x)]$,
# the score of $p(x)p(c\mid x)^w$. $w>1$ sharpens the implicit classifier: samples move to where $c$ is
# more certain, at the cost of diversity. A negative prompt $n$ in place of $\varnothing$ gives
# $\epsilon_n + w(\epsilon_c - \epsilon_n) \propto -[w\nabla\log p(x\mid c) - (w-1)\nabla\log p(x\mid n)]$
# $= -[\nabla\log p(x) + w\nabla\log p(c\mid x) - (w-1)\nabla\log p(n\mid x)]$: it adds
# $-(w-1)\nabla\log p(n\mid x)$, pushing away from where $n$ is likely, and does nothing at $w = 1$.
# ```

# %%
results = record_results(
    RESULTS_PATH,
    profile=run.profile,
    mean_gap=mean_gap,
    var_gap=var_gap,
    inversion_gap=inversion_gap,
    named_rate={
        "unclipped": {str(w): named_rate[(NO_CLIP, w)] for w in scales},
        "clipped": {str(w): named_rate[(CLIPPED, w)] for w in scales},
    },
)

# %% [markdown]
# ## Summary
#
# - The forward process has a closed form {eq}`eq-diff-forward`, so training {eq}`eq-diff-loss` is one
#   noising and one regression per example.
# - DDIM {eq}`eq-diff-ddim` estimates the clean image and re-noises it with the same noise: a
#   deterministic sampler that can take large steps; given the true noise it inverts the forward
#   process exactly.
# - The prompt enters as the whole $L\times d$ text state, read by cross-attention; classifier-free
#   guidance {eq}`eq-diff-cfg` and negative prompts act on the difference of two predictions. These
#   are the handles concept removal and Ring-A-Bell pull on.
#
# ## References
#
# - {cite:t}`ho2020denoising`: denoising diffusion probabilistic models.
# - {cite:t}`song2021denoising`: DDIM.
# - {cite:t}`ho2022classifier`: classifier-free guidance; {cite:t}`rombach2022high`: latent diffusion.
