r"""Training and sampling the toy text-to-image model with diffusers' schedulers.

Training minimises :math:`\mathbb E\,\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0
+ \sqrt{1-\bar\alpha_t}\epsilon, t, f(P))\|^2` jointly over the denoiser and the text
encoder, with the caption dropped to the empty prompt a quarter of the time so that
guidance can be used when sampling:
:math:`\hat\epsilon = \epsilon_\theta(x_t, t, f(\varnothing)) + w\,(\epsilon_\theta(x_t,
t, f(P)) - \epsilon_\theta(x_t, t, f(\varnothing)))`. The inference-time concept removal
subtracts a guidance term toward a concept's text (negative guidance, close to safe
latent diffusion's strongest safety guidance without its threshold, warm-up and
momentum); Stable Diffusion's negative prompt instead replaces :math:`f(\varnothing)`
by the concept's embedding.
"""

from __future__ import annotations

import torch
from torch import nn


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
    skipped (half the work)."""
    batch = len(text_states)

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
    for t in scheduler.timesteps:
        eps = denoiser(torch.cat([x] * len(conds)), t, states).chunk(len(conds))
        if conditional_only:
            guided = eps[0]
        else:
            guided = eps[0] + guidance * (eps[1] - eps[0])
            if negative_states is not None:
                guided = guided - negative_scale * (eps[2] - eps[0])
        x = scheduler.step(guided, t, x).prev_sample
    return ((x + 1) / 2).clamp(0, 1)
