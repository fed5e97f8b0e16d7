"""The toy text-to-image pipeline: tokenizer, text encoder, denoiser and scheduler,
called like diffusers' Stable Diffusion pipelines (``prompt`` or ``prompt_embeds``,
guidance, steps, generator). Three concept removals act at sampling time:
``negative_guidance``, an extra guidance term away from a text; ``safety_concept`` with
``sld``, safe latent diffusion, which scales that term per pixel; and
``negative_prompt``, diffusers' negative prompt, which replaces the unconditional prompt
and so does nothing at guidance scale 1.

The attack itself needs only the text encoder and tokenizer; generation goes through
``__call__``, so a ``StableDiffusionPipeline`` can stand in for this class on the Colab
profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trustml_ref.ring_a_bell.concept import text_embedding
from trustml_ref.ring_a_bell.diffusion import sample, sld_config

CHECKPOINT = Path(__file__).resolve().parent / "checkpoint"


def _load_exact(model_class, directory: Path) -> nn.Module:
    """``model_class.from_pretrained(directory)`` in eval mode, refusing any missing,
    unexpected or mis-shaped weight (a checkpoint another library version wrote under
    other names would otherwise load as random weights, with warnings only)."""
    model, info = model_class.from_pretrained(directory, output_loading_info=True)
    problems = {
        kind: sorted(info.get(kind) or [])
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    problems = {kind: names for kind, names in problems.items() if names}
    if problems or info.get("error_msgs"):
        listed = "; ".join(
            f"{kind.replace('_', ' ')}: {names[:3]}{' ...' if len(names) > 3 else ''}"
            for kind, names in problems.items()
        )
        raise ValueError(
            f"{directory} does not match {model_class.__name__} ({listed or info}): "
            "the checkpoint was saved under other weight names (another library "
            "version?); retrain it with tools/train_ring_a_bell_toy.py"
        )
    return model.eval()


@dataclass
class ToyPipeline:
    tokenizer: object
    text_encoder: nn.Module
    denoiser: nn.Module
    scheduler: object

    @classmethod
    def from_pretrained(cls, path: str | Path = CHECKPOINT) -> ToyPipeline:
        """Load the four components saved by ``tools/train_ring_a_bell_toy.py`` (local
        files only)."""
        from diffusers import DDIMScheduler
        from transformers import CLIPTextModel, PreTrainedTokenizerFast

        from trustml_ref.ring_a_bell.denoiser import TinyTextDenoiser

        path = Path(path)
        if not (path / "denoiser").is_dir():
            raise FileNotFoundError(
                f"no toy checkpoint at {path} (expected tokenizer/, text_encoder/, "
                "denoiser/, scheduler/)"
            )
        return cls(
            PreTrainedTokenizerFast.from_pretrained(path / "tokenizer"),
            _load_exact(CLIPTextModel, path / "text_encoder"),
            _load_exact(TinyTextDenoiser, path / "denoiser"),
            DDIMScheduler.from_pretrained(path / "scheduler"),
        )

    def with_denoiser(self, denoiser: nn.Module) -> ToyPipeline:
        """The same pipeline with another denoiser (e.g. a concept-erased one)."""
        return replace(self, denoiser=denoiser)

    def embed(self, prompts: list[str]) -> torch.Tensor:
        return text_embedding(self.text_encoder, self.tokenizer, prompts)

    def _negative_states(
        self,
        negative: str | Sequence[str] | None,
        n_prompts: int,
        argument: str = "negative_guidance",
    ) -> torch.Tensor | None:
        """(L, d) states for one negative text (or a list of copies of one), (n, L, d)
        for one per prompt; None without one."""
        if negative is None or isinstance(negative, str):
            return self.embed([negative])[0] if negative else None
        negatives = list(negative)
        if len(negatives) != n_prompts:
            raise ValueError(
                f"{argument} must be one text or one per prompt ({n_prompts}), "
                f"got {len(negatives)}"
            )
        if len(set(negatives)) == 1:
            return self.embed(negatives[:1])[0] if negatives[0] else None
        return self.embed(negatives)

    def __call__(
        self,
        prompt: list[str] | None = None,
        *,
        prompt_embeds: torch.Tensor | None = None,
        negative_guidance: str | Sequence[str] | None = None,
        negative_scale: float = 1.0,
        negative_prompt: str | Sequence[str] | None = None,
        safety_concept: str | None = None,
        sld: str | Mapping[str, float] | None = None,
        num_images_per_prompt: int = 1,
        guidance_scale: float = 1.0,
        num_inference_steps: int = 25,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Images (prompts × num_images_per_prompt, 3, 16, 16) in [0, 1], grouped by
        prompt, with classifier-free guidance ``guidance_scale`` (the shipped model is
        gated at 1, 3 and 7.5, :data:`GATE_GUIDANCE`; 1 skips the unconditional pass).
        ``negative_guidance`` steers away from a concept by negative guidance (the
        term :math:`-s(\\epsilon_{\\text{neg}} - \\epsilon_\\varnothing)`, ``s`` =
        ``negative_scale``): one text for every prompt, or a list of one per prompt.
        ``negative_prompt`` is Stable Diffusion's: its embedding replaces the empty
        prompt's in classifier-free guidance, :math:`\\hat\\epsilon = \\epsilon_N +
        w(\\epsilon_P - \\epsilon_N)`, so it does nothing at ``guidance_scale=1``.
        ``safety_concept`` with ``sld`` (a configuration's name, weak, medium, strong
        or max, or its keyword arguments, :func:`~.diffusion.sld_config`) is safe
        latent diffusion away from that text, as ``StableDiffusionPipelineSafe``
        runs it (:func:`~.diffusion.safety_guidance`; ``guidance_scale`` > 1)."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of prompt and prompt_embeds")
        states = self.embed(list(prompt)) if prompt is not None else prompt_embeds
        n_prompts = len(states)
        states = states.repeat_interleave(num_images_per_prompt, 0)
        negative = self._negative_states(negative_guidance, n_prompts)
        if negative is not None and negative.dim() == 3:
            negative = negative.repeat_interleave(num_images_per_prompt, 0)
        uncond = self._negative_states(negative_prompt, n_prompts, "negative_prompt")
        if (safety_concept is None) != (sld is None):
            raise ValueError("pass safety_concept and sld together")
        if safety_concept is not None and not safety_concept.strip():
            raise ValueError("safety_concept must be a non-empty text")
        if safety_concept is not None and negative_guidance is not None:
            raise ValueError(
                "pass either negative_guidance or safety_concept, not both"
            )
        if safety_concept is not None and guidance_scale <= 1:
            raise ValueError(
                "safe latent diffusion needs guidance_scale > 1 (its term is scaled "
                f"by it, and diffusers' pipeline skips it below), got {guidance_scale}"
            )
        safety = self.embed([safety_concept])[0] if safety_concept else None
        if isinstance(sld, str):
            sld = sld_config(sld)
        if uncond is None:
            uncond = self.embed([""])[0]
        elif uncond.dim() == 3:
            uncond = uncond.repeat_interleave(num_images_per_prompt, 0)
        return sample(
            self.denoiser,
            self.scheduler,
            states,
            uncond,
            guidance=guidance_scale,
            negative_states=negative,
            negative_scale=negative_scale,
            safety_states=safety,
            sld=sld,
            steps=num_inference_steps,
            generator=generator,
        )


# the classifier-free guidance scales at which the toy model's quality is gated
GATE_GUIDANCE = (1.0, 3.0, 7.5)


def quality_gates(
    pipe: ToyPipeline,
    images_per_prompt: int = 4,
    seed: int = 0,
    steps: int = 25,
    guidance_scale: float = 1.0,
) -> dict[str, float]:
    """How well the toy model learned its world, read by the detector, at classifier-
    free guidance ``guidance_scale``: for every colour, the fraction of images whose
    dominant colour is the one the prompt names (prompts over all shapes, one per shape
    and size, positions rotating), and for every correlated phrase of red the fraction
    of red images."""
    from trustml_ref.ring_a_bell import toy

    g = torch.Generator().manual_seed(seed)
    positions = list(toy.POSITIONS)
    report: dict[str, float] = {}
    for colour in toy.COLOURS:
        prompts = [
            f"a {size} {colour} {shape} on the {positions[i % len(positions)]}"
            for i, (size, shape) in enumerate(
                (s, h) for s in toy.SIZES for h in toy.SHAPES
            )
        ]
        images = pipe(
            prompts,
            num_images_per_prompt=images_per_prompt,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=g,
        )
        report[colour] = sum(c == colour for c in toy.dominant_colour(images)) / len(
            images
        )
    for phrase in toy.CORRELATED["red"]:
        prompts = [
            f"a big {shape} {phrase} on the {positions[i]}"
            for i, shape in enumerate(toy.SHAPES)
        ]
        images = pipe(
            prompts,
            num_images_per_prompt=images_per_prompt,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=g,
        )
        report[phrase] = float(toy.detect(images).float().mean())
    return report
