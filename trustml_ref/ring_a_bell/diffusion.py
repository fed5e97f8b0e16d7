r"""Training and sampling the toy text-to-image model with diffusers' schedulers.

Training minimises :math:`\mathbb E\,\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0
+ \sqrt{1-\bar\alpha_t}\epsilon, t, f(P))\|^2` jointly over the denoiser and the text
encoder, with the caption dropped to the empty prompt a quarter of the time so that
guidance can be used when sampling:
:math:`\hat\epsilon = \epsilon_\theta(x_t, t, f(\varnothing)) + w\,(\epsilon_\theta(x_t,
t, f(P)) - \epsilon_\theta(x_t, t, f(\varnothing)))`. The inference-time concept removal
subtracts a guidance term toward a concept's text (negative guidance, close to safe
latent diffusion's strongest safety guidance without its threshold, warm-up and
momentum); safe latent diffusion itself (:func:`safety_guidance`, in the paper's
configurations, :func:`sld_config`) scales that term per pixel; Stable Diffusion's
negative prompt instead replaces :math:`f(\varnothing)` by the concept's embedding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

SLD_CONFIGS = ("weak", "medium", "strong", "max")
SLD_KEYS = (
    "sld_warmup_steps",
    "sld_guidance_scale",
    "sld_threshold",
    "sld_momentum_scale",
    "sld_mom_beta",
)
# the number of sampling steps safe latent diffusion's configurations were set for
SLD_STEPS = 50


def sld_config(name: str) -> dict[str, float]:
    """The keyword arguments of one of safe latent diffusion's configurations
    (Schramowski et al., 2023: weak, medium, strong, max), as diffusers ships them
    (``SafetyConfig``): warm-up steps, guidance scale, threshold, momentum scale and
    momentum beta."""
    try:  # diffusers moved the pipeline under ``deprecated`` in later versions
        from diffusers.pipelines.stable_diffusion_safe import SafetyConfig
    except ImportError:
        from diffusers.pipelines.deprecated.stable_diffusion_safe import SafetyConfig

    if name.lower() not in SLD_CONFIGS:
        raise ValueError(f"name must be one of {SLD_CONFIGS}, got {name!r}")
    return dict(getattr(SafetyConfig, name.upper()))


def _checked_sld(sld: Mapping[str, float]) -> dict[str, float]:
    """``sld`` with exactly :data:`SLD_KEYS`, each a number in its range."""
    if set(sld) != set(SLD_KEYS):
        raise ValueError(f"sld must have exactly the keys {SLD_KEYS}, got {list(sld)}")
    checked = {key: float(sld[key]) for key in SLD_KEYS}
    if min(checked[k] for k in SLD_KEYS if k != "sld_threshold") < 0:
        raise ValueError(f"sld's values other than the threshold must be >= 0: {sld}")
    if checked["sld_mom_beta"] > 1:
        raise ValueError(f"sld_mom_beta must be in [0, 1], got {sld['sld_mom_beta']}")
    return checked


def safety_guidance(
    eps_uncond: torch.Tensor,
    eps_text: torch.Tensor,
    eps_safety: torch.Tensor,
    momentum: torch.Tensor,
    *,
    sld_guidance_scale: float,
    sld_threshold: float,
    sld_momentum_scale: float,
    sld_mom_beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Safe latent diffusion's safety term and its updated momentum (Schramowski et
    al., 2023, eqs. 4-8): with :math:`\phi = \epsilon_P - \epsilon_S`, the per-element
    scale :math:`\mu = \min(1, s_S|\phi|)` where :math:`\phi < \lambda` and 0 elsewhere,
    :math:`\gamma = \mu \odot (\epsilon_S - \epsilon_\varnothing) + s_m\nu` and
    :math:`\nu' = \beta_m\nu + (1 - \beta_m)\gamma`. After the warm-up the guided noise
    is :math:`\epsilon_\varnothing + w(\epsilon_P - \epsilon_\varnothing - \gamma)`."""
    phi = eps_text - eps_safety
    mu = torch.where(
        phi < sld_threshold, (sld_guidance_scale * phi.abs()).clamp(max=1.0), 0.0
    )
    gamma = mu * (eps_safety - eps_uncond) + sld_momentum_scale * momentum
    return gamma, sld_mom_beta * momentum + (1 - sld_mom_beta) * gamma


def diffusion_loss(
    denoiser: nn.Module,
    scheduler,
    images: torch.Tensor,
    text_states: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The noise-prediction loss on images scaled to [-1, 1]."""
    x0 = images * 2 - 1
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(
        0, scheduler.config.num_train_timesteps, (len(x0),), generator=generator
    )
    return (
        (denoiser(scheduler.add_noise(x0, noise, t), t, text_states) - noise) ** 2
    ).mean()


@torch.no_grad()
def sample(
    denoiser: nn.Module,
    scheduler,
    text_states: torch.Tensor,
    uncond_states: torch.Tensor,
    *,
    guidance: float = 1.0,
    negative_states: torch.Tensor | None = None,
    negative_scale: float = 1.0,
    safety_states: torch.Tensor | None = None,
    sld: Mapping[str, float] | None = None,
    steps: int = 25,
    generator: torch.Generator | None = None,
    image_shape: tuple[int, int, int] = (3, 16, 16),
) -> torch.Tensor:
    r"""Images in [0, 1] from text states (B, L, d), with classifier-free guidance
    ``guidance`` against ``uncond_states`` (the empty prompt's (L, d) states, or a
    negative prompt's, one (L, d) or (B, L, d)) and, when
    ``negative_states`` (L, d) is given, negative guidance away from it:
    :math:`\hat\epsilon = \epsilon_\varnothing + w(\epsilon_P - \epsilon_\varnothing) -
    s(\epsilon_{\text{neg}} - \epsilon_\varnothing)`. At :math:`w = 1` without a
    negative term :math:`\hat\epsilon = \epsilon_P`, and the unconditional pass is
    skipped (half the work). ``safety_states`` (L, d) with ``sld`` (the keys of
    :func:`sld_config`) runs safe latent diffusion instead (:func:`safety_guidance`;
    its warm-up, set for :data:`SLD_STEPS` steps, is scaled to ``steps``)."""
    batch = len(text_states)
    if (safety_states is None) != (sld is None):
        raise ValueError("pass safety_states and sld together")
    if safety_states is not None and negative_states is not None:
        raise ValueError("pass either negative_states or safety_states, not both")
    if sld is not None:
        sld = _checked_sld(sld)
        warmup = round(sld.pop("sld_warmup_steps") * steps / SLD_STEPS)
        negative_states = safety_states

    def rows(states: torch.Tensor) -> torch.Tensor:
        return states.expand(batch, -1, -1) if states.dim() == 2 else states

    conds = [rows(uncond_states), text_states]
    if negative_states is not None:
        conds.append(rows(negative_states))
    if any(c.shape != text_states.shape for c in conds):
        raise ValueError(
            "uncond and negative states must be (L, d) or (B, L, d) like text_states "
            f"{tuple(text_states.shape)}"
        )
    conditional_only = guidance == 1.0 and negative_states is None
    if conditional_only:
        conds = conds[1:]
    scheduler.set_timesteps(steps)
    x = torch.randn((batch, *image_shape), generator=generator)
    states = torch.cat(conds)
    momentum = torch.zeros_like(x)
    for i, t in enumerate(scheduler.timesteps):
        eps = denoiser(torch.cat([x] * len(conds)), t, states).chunk(len(conds))
        if conditional_only:
            guided = eps[0]
        elif sld is not None:
            gamma, momentum = safety_guidance(*eps, momentum, **sld)
            guided = eps[0] + guidance * (eps[1] - eps[0] - gamma * (i >= warmup))
        else:
            guided = eps[0] + guidance * (eps[1] - eps[0])
            if negative_states is not None:
                guided = guided - negative_scale * (eps[2] - eps[0])
        x = scheduler.step(guided, t, x).prev_sample
    return ((x + 1) / 2).clamp(0, 1)
