r"""Concept removal targets: ESD fine-tuning and UCE's closed-form edit of the
cross-attention (negative guidance and the negative prompt live in the pipeline's
sampler).

ESD (Gandikota et al., 2023) fine-tunes a copy :math:`\theta` of the denoiser so that,
conditioned on a prompt :math:`c` that names the concept, it predicts what the frozen
original :math:`\theta^*` predicts when guided *away* from the concept:

.. math:: \epsilon_\theta(x_t, t, c) \approx \epsilon_{\theta^*}(x_t, t, \varnothing) -
   \eta_{\text{esd}}\,
          \big(\epsilon_{\theta^*}(x_t, t, c) - \epsilon_{\theta^*}(x_t, t,
          \varnothing)\big).

``esd_finetune`` is ESD-x by default: it updates only the parameters that read the text
(for Stable Diffusion the cross-attention layers; for the toy denoiser also its
pooled-text FiLM path, where it has one). ESD-u, which the paper uses for concepts not
tied to a word, updates every other parameter instead (``trainable=reads_no_text``).
Three documented deviations from the paper's recipe:

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


def reads_no_text(name: str) -> bool:
    """ESD-u's parameters: every toy denoiser parameter that does not read the text
    (the complement of :func:`reads_text`). For a diffusers ``UNet2DConditionModel``
    pass ``lambda n: "attn2" not in n`` instead."""
    return not reads_text(name)


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
    """A new denoiser with the concept erased (ESD-x, or ESD-u with
    ``trainable=reads_no_text``; see the module); ``pipe`` is not modified."""
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


def uce_map(
    concept: torch.Tensor,
    target: torch.Tensor,
    preserve: torch.Tensor | None = None,
    *,
    preserve_weight: float = 1.0,
    ridge: float = 0.1,
) -> torch.Tensor:
    r"""The (d, d) matrix :math:`M` of UCE's closed-form edit (Gandikota et al., 2024),
    :math:`W' = W M` for every projection :math:`W` (out, d) that reads the same rows:
    the :math:`W'` that maps each concept row :math:`c_i` where :math:`W` maps its
    target row :math:`t_i`, keeps the preserved rows :math:`p_j` and stays near
    :math:`W`,

    .. math:: \min_{W'} \sum_i \|W'c_i - W t_i\|^2 + \lambda \sum_j \|W'p_j -
       W p_j\|^2 + \rho \|W' - W\|_F^2,

    .. math:: M = (T^\top C + \lambda P^\top P + \rho I)\,(C^\top C +
       \lambda P^\top P + \rho I)^{-1},

    with the rows stacked in ``concept`` :math:`C` and ``target`` :math:`T` (n, d) and
    ``preserve`` :math:`P` (m, d); :math:`\lambda` = ``preserve_weight``, :math:`\rho` =
    ``ridge``. Solved in float64 (and returned so)."""
    if concept.dim() != 2 or concept.shape != target.shape:
        raise ValueError(
            "concept and target must both be (n, d), got "
            f"{tuple(concept.shape)} and {tuple(target.shape)}"
        )
    d = concept.shape[1]
    if preserve is not None and (preserve.dim() != 2 or preserve.shape[1] != d):
        raise ValueError(f"preserve must be (m, {d}), got {tuple(preserve.shape)}")
    if preserve_weight < 0 or ridge <= 0:
        raise ValueError(
            "preserve_weight must be >= 0 and ridge > 0, got "
            f"{preserve_weight}, {ridge}"
        )
    c, t = concept.detach().double(), target.detach().double()
    keep = ridge * torch.eye(d, dtype=torch.float64)
    if preserve is not None:
        p = preserve.detach().double()
        keep = keep + preserve_weight * p.T @ p
    # M = B A^-1 with A symmetric, so M^T = A^-1 B^T
    return torch.linalg.solve(c.T @ c + keep, (t.T @ c + keep).T).T


def uce_weight(
    weight: torch.Tensor,
    concept: torch.Tensor,
    target: torch.Tensor,
    preserve: torch.Tensor | None = None,
    *,
    preserve_weight: float = 1.0,
    ridge: float = 0.1,
) -> torch.Tensor:
    """UCE's edit of one projection ``weight`` (out, d): :math:`W' = W M` with
    :math:`M` from :func:`uce_map` (see there for the objective); returned in
    ``weight``'s dtype."""
    if weight.dim() != 2:
        raise ValueError(f"weight must be (out, d), got {tuple(weight.shape)}")
    d = weight.shape[1]
    if concept.dim() != 2 or concept.shape[1] != d or concept.shape != target.shape:
        raise ValueError(
            f"concept and target must both be (n, {d}), got {tuple(concept.shape)} and "
            f"{tuple(target.shape)}"
        )
    m = uce_map(concept, target, preserve, preserve_weight=preserve_weight, ridge=ridge)
    return (weight.detach().double() @ m).to(weight.dtype)


def cross_attention_projections(denoiser: nn.Module) -> dict[str, torch.Tensor]:
    """The key and value projection weights that read the text, (out, d) each: those
    of every ``nn.MultiheadAttention`` (the toy denoiser's; where keys and values have
    the queries' width they are views of the key and value rows of its
    ``in_proj_weight``, named ``[keys]`` and ``[values]``) and of every diffusers
    cross-attention (``attn2.to_k``/``to_v`` in Stable Diffusion's UNet)."""
    found: dict[str, torch.Tensor] = {}
    for name, module in denoiser.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            if module.k_proj_weight is not None:
                found[f"{name}.k_proj_weight"] = module.k_proj_weight
                found[f"{name}.v_proj_weight"] = module.v_proj_weight
            else:
                e = module.embed_dim
                found[f"{name}.in_proj_weight[keys]"] = module.in_proj_weight[e : 2 * e]
                found[f"{name}.in_proj_weight[values]"] = module.in_proj_weight[2 * e :]
        elif getattr(module, "is_cross_attention", False) and hasattr(module, "to_k"):
            found[f"{name}.to_k.weight"] = module.to_k.weight
            found[f"{name}.to_v.weight"] = module.to_v.weight
    if not found:
        raise ValueError("the denoiser has no cross-attention key/value projection")
    return found


def uce_erase(
    text_encoder: nn.Module,
    tokenizer,
    denoiser: nn.Module,
    concept_prompts: Sequence[str],
    target_prompts: Sequence[str],
    preserve_prompts: Sequence[str] | None = None,
    *,
    preserve_weight: float = 1.0,
    ridge: float = 0.1,
) -> nn.Module:
    """A copy of ``denoiser`` whose cross-attention keys and values read each concept
    prompt as they read its target prompt, keeping the preserved prompts: :math:`W' =
    W M` on every projection of :func:`cross_attention_projections`, with one
    :func:`uce_map` for all (they read the same rows). The rows are every row of the
    prompts' last hidden states (padded context), so a concept prompt and its target
    should differ in one word of one token each, keeping the rows aligned.
    ``denoiser`` is not modified; nothing is trained."""
    from trustml_ref.ring_a_bell.concept import text_embedding

    concept = _prompts(concept_prompts, "concept_prompts")
    target = list(target_prompts)  # "" (the unconditional prompt) is a target too
    if not all(isinstance(t, str) for t in target):
        raise ValueError(f"target_prompts must be a list of prompts, got {target!r}")
    if len(concept) != len(target):
        raise ValueError(
            f"concept_prompts and target_prompts must pair up, got {len(concept)} and "
            f"{len(target)}"
        )

    def rows(prompts: list[str]) -> torch.Tensor:
        states = text_embedding(text_encoder, tokenizer, prompts)
        return states.reshape(-1, states.shape[-1]).float().cpu()

    c, t = rows(concept), rows(target)
    p = (
        rows(_prompts(preserve_prompts, "preserve_prompts"))
        if preserve_prompts is not None
        else None
    )
    # every projection reads the same rows: one map serves them all
    m = uce_map(c, t, p, preserve_weight=preserve_weight, ridge=ridge)
    edited = copy.deepcopy(denoiser)
    with torch.no_grad():
        # in place, so that the views of a shared in-projection write through
        for weight in cross_attention_projections(edited).values():
            weight.copy_((weight.double() @ m.to(weight.device)).to(weight.dtype))
    return edited.eval()
