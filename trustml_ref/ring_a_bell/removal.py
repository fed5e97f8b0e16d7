r"""Concept removal targets: ESD fine-tuning (negative guidance lives in the
pipeline's sampler).

ESD (Gandikota et al., 2023) fine-tunes a copy :math:`\theta` of the denoiser so that,
conditioned on a prompt :math:`c` that names the concept, it predicts what the frozen
original :math:`\theta^*` predicts when guided *away* from the concept:

.. math:: \epsilon_\theta(x_t, t, c) \approx \epsilon_{\theta^*}(x_t, t, \varnothing) -
   \eta_{\text{esd}}\,
          \big(\epsilon_{\theta^*}(x_t, t, c) - \epsilon_{\theta^*}(x_t, t,
          \varnothing)\big).

``esd_finetune`` is ESD-x: it updates only the parameters that read the text (for Stable
Diffusion the cross-attention layers; for the toy denoiser also its pooled-text FiLM
path, through which colour mostly flows). Three documented deviations from the paper's
recipe:

- ESD trains on one prompt (the concept's word); here a *list* of prompts that name the
  concept in context can be given, because on the toy the word alone erases the concept
  only from about half of the prompts that name it (measured in the chapter);
- optional ``preserve_prompts`` add :math:`\lambda\,\|\epsilon_\theta(x_t,t,p) -
  \epsilon_{\theta^*}(x_t,t,p)\|^2` for prompts of other concepts (a preservation term,
  as in later erasure methods), which keeps the other colours intact;
- ESD draws :math:`x_t` by running the model's own sampler part way; we noise images the
  frozen model generated for the same prompt to a random :math:`t` (the same
  distribution for a converged sampler, much cheaper).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from trustml_ref.ring_a_bell.pipeline import ToyPipeline


def reads_text(name: str) -> bool:
    """The toy denoiser's text-reading parameters: cross-attention (``attn``) and the
    pooled-text FiLM path (``text_pool``). For a diffusers ``UNet2DConditionModel`` pass
    ``lambda n: "attn2" in n`` instead."""
    return "attn" in name or "text_pool" in name


def _prompts(value: str | Sequence[str], argument: str) -> list[str]:
    prompts = [value] if isinstance(value, str) else list(value)
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(
            f"{argument} must be a non-empty prompt or list of non-empty prompts, got "
            f"{value!r}"
        )
    return prompts


def esd_finetune(
    pipe: ToyPipeline,
    concept_prompts: str | Sequence[str],
    *,
    eta: float = 1.0,
    steps: int = 300,
    lr: float = 1e-3,
    batch: int = 32,
    images_per_prompt: int = 4,
    preserve_prompts: Sequence[str] | None = None,
    preserve_weight: float = 1.0,
    trainable: Callable[[str], bool] = reads_text,
    seed: int = 0,
    num_inference_steps: int = 20,
    progress: bool = True,
) -> nn.Module:
    """A new denoiser with the concept erased (ESD-x, see the module); ``pipe`` is not
    modified."""
    if steps < 1 or batch < 1 or images_per_prompt < 1:
        raise ValueError(
            f"steps, batch and images_per_prompt must be positive, got {steps}, "
            f"{batch}, {images_per_prompt}"
        )
    concept = _prompts(concept_prompts, "concept_prompts")
    preserve = (
        _prompts(preserve_prompts, "preserve_prompts")
        if preserve_prompts is not None
        else []
    )
    g = torch.Generator().manual_seed(seed)
    frozen = pipe.denoiser
    erased = copy.deepcopy(frozen).train()
    for name, p in erased.named_parameters():
        p.requires_grad_(trainable(name))
    params = [p for p in erased.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "no denoiser parameter matches `trainable`: nothing would be fine-tuned"
        )

    def pool(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images the frozen model draws for each prompt in [-1, 1], and each image's
        prompt embedding."""
        images = (
            pipe(
                prompts,
                num_images_per_prompt=images_per_prompt,
                generator=g,
                num_inference_steps=num_inference_steps,
            )
            * 2
            - 1
        )
        return images, pipe.embed(prompts).repeat_interleave(images_per_prompt, 0)

    def noised(
        images: torch.Tensor, t: torch.Tensor, idx: torch.Tensor
    ) -> torch.Tensor:
        return pipe.scheduler.add_noise(
            images[idx], torch.randn(images[idx].shape, generator=g), t
        )

    concept_images, concept_states = pool(concept)
    preserve_images, preserve_states = pool(preserve) if preserve else (None, None)
    empty = pipe.embed([""]).expand(batch, -1, -1)
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in tqdm(range(steps), desc="ESD", disable=not progress, leave=False):
        t = torch.randint(
            0, pipe.scheduler.config.num_train_timesteps, (batch,), generator=g
        )
        idx = torch.randint(0, len(concept_images), (batch,), generator=g)
        xt, c = noised(concept_images, t, idx), concept_states[idx]
        with torch.no_grad():
            e_c, e_u = frozen(xt, t, c), frozen(xt, t, empty)
            goal = e_u - eta * (e_c - e_u)
        loss = ((erased(xt, t, c) - goal) ** 2).mean()
        if preserve:
            idx = torch.randint(0, len(preserve_images), (batch,), generator=g)
            xp, p = noised(preserve_images, t, idx), preserve_states[idx]
            with torch.no_grad():
                keep = frozen(xp, t, p)
            loss = loss + preserve_weight * ((erased(xp, t, p) - keep) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p in erased.parameters():
        p.requires_grad_(False)
    return erased.eval()
