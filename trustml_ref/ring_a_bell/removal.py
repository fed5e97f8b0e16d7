r"""Concept removal targets: ESD fine-tuning and the negative prompt.

ESD (Gandikota et al., 2023) fine-tunes a copy :math:`\theta` of the denoiser so that, conditioned on the
concept prompt :math:`c`, it predicts what the frozen original :math:`\theta^*` predicts when guided *away*
from the concept:

.. math:: \epsilon_\theta(x_t, t, c) \approx \epsilon_{\theta^*}(x_t, t, \varnothing) - \eta_{\text{esd}}\,
          \big(\epsilon_{\theta^*}(x_t, t, c) - \epsilon_{\theta^*}(x_t, t, \varnothing)\big).

``"esd-x"`` updates only the cross-attention layers (the prompt-dependent path, ESD's choice for
concepts named in prompts). ESD draws :math:`x_t` by running the model's own sampler part way; we noise
images the frozen model generated for the concept prompt to a random :math:`t` (the same distribution
for a converged sampler, much cheaper). The negative prompt needs no training: the concept's
embedding replaces the unconditional one in classifier-free guidance.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from tqdm.auto import tqdm

from trustml_ref.ring_a_bell.pipeline import ToyPipeline


def esd_finetune(pipe: ToyPipeline, concept_prompt: str, *, eta: float = 1.0, steps: int = 300, lr: float = 1e-3,
                 batch: int = 32, pool: int = 128, seed: int = 0, progress: bool = True) -> nn.Module:
    """A new denoiser with the concept erased (ESD-x); ``pipe`` is not modified."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be positive, got {steps}, {batch}")
    g = torch.Generator().manual_seed(seed)
    frozen = pipe.denoiser
    erased = copy.deepcopy(frozen).train()
    trainable = [p for name, p in erased.named_parameters() if "attn" in name]
    if not trainable:
        raise ValueError("the denoiser has no cross-attention parameters (names containing 'attn') to fine-tune")
    for name, p in erased.named_parameters():
        p.requires_grad_("attn" in name)
    c = pipe.embed([concept_prompt])
    empty = pipe.embed([""])
    images = pipe([concept_prompt], num_images_per_prompt=pool, generator=g) * 2 - 1
    optimizer = torch.optim.Adam(trainable, lr=lr)
    sched = pipe.scheduler
    for _ in tqdm(range(steps), desc="ESD", disable=not progress, leave=False):
        x0 = images[torch.randint(0, pool, (batch,), generator=g)]
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=g)
        xt = sched.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        with torch.no_grad():
            e_c = frozen(xt, t, c.expand(batch, -1, -1))
            e_u = frozen(xt, t, empty.expand(batch, -1, -1))
            goal = e_u - eta * (e_c - e_u)
        loss = ((erased(xt, t, c.expand(batch, -1, -1)) - goal) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p in erased.parameters():
        p.requires_grad_(False)
    return erased.eval()
